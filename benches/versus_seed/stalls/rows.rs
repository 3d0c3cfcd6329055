//! The rows of issue 12's table.

use super::*;

// ---------------------------------------------------------------------------------------------
// The rows

/// Row 0: nothing runs; the prober's floor on this machine. Then, the server still idle, a
/// busy loop measures how much time the machine charges to a thread that does no work: the
/// part of the other rows' events that no code on the server can avoid.
pub(super) fn row_idle(kind: ServerKind) -> Row {
    let server = start_server(kind, &[]);
    let mut w = Watch::new(&server);
    w.reset();
    std::thread::sleep(Duration::from_secs(5));
    let obs = w.collect();
    let noise = busy_loop_noise(20.0);
    Row::new("0", "idle server (the prober's floor)", 0, obs)
        .note("5 s with nothing to do: the longest PING gap here is the machine's noise")
        .note(format!(
            "then a busy loop doing only arithmetic for {:.0} s: its thread CPU time jumped by \
             1 ms or more {} times between two iterations, at most {:.2} ms (wall clock: {:.2} ms)",
            noise.secs, noise.cpu_jumps_over_1ms, noise.cpu_jump_ms, noise.wall_jump_ms
        ))
}

/// Rows 7, 8, 9, 10 and 2 on one server: filling one event with the journal on (7, 9, 8 at
/// 1M), freeing it (10), filling another with the journal off (7, 9), digests beside a zset at
/// N (8), fork, MEMORY USAGE, COPY, DUMP/RESTORE, DEL (10), DEQUEUE until compaction (2),
/// FLUSHALL ASYNC (10).
pub(super) fn rows_big(kind: ServerKind, n: usize, rows: &dyn Fn(u32) -> bool, out: &mut Vec<Row>) {
    // DUMP of an event of ten million is ~530 MB: above the default 512 MB bulk limit.
    let server = start_server(
        kind,
        &[
            "--lazyfree-lazy-user-del",
            "yes",
            "--proto-max-bulk-len",
            "2gb",
        ],
    );
    let mut w = Watch::new(&server);
    let port = server.port;
    let first = n.min(1_000_000);

    // 7 + 9 (journal on), 8 at 1M.
    let key = "stall:grow";
    // Nobody polls these tickets: a day of HEARTBEAT keeps them waiting through the rows.
    cmd(
        &mut w.con,
        &["QUEUE.CONFIG", key, "SET", "HEARTBEAT", "86400000"],
    );
    let m0 = info_num(&mut w.con, "memory", "used_memory");
    w.reset();
    let a = fill(
        port,
        0..first,
        FILL_DEPTH,
        0,
        "fill (journal on)",
        enqueue(key),
    );
    let mut grow = w.collect();
    let mut event_bytes = info_num(&mut w.con, "memory", "used_memory") - m0;
    if rows(8) && n > first {
        fill_zset(&mut w.con, "stall:zset", 0..first);
        digest_rows(&mut w, key, "stall:zset", first, "journal on", out);
    }
    let m1 = info_num(&mut w.con, "memory", "used_memory");
    w.reset();
    let b = fill(
        port,
        first..n,
        FILL_DEPTH,
        0,
        "fill (journal on)",
        enqueue(key),
    );
    grow.merge(&w.collect());
    event_bytes += info_num(&mut w.con, "memory", "used_memory") - m1;
    let secs = a.secs + b.secs;
    let refused = a.failures + b.failures;
    let journal_len = info_num(&mut w.con, "keyspace", "db0");
    let _ = journal_len;
    out.push(
        Row::new(
            "7",
            "filling one event (QUEUE.ENQUEUE, journal on)",
            n,
            grow,
        )
        .note(format!(
            "{:.0} s, {:.0} joins/s pipelined by {FILL_DEPTH}, {refused} refused{}",
            secs,
            n as f64 / secs,
            a.first_failure
                .or(b.first_failure)
                .map_or(String::new(), |w| format!(" ({w})"))
        )),
    );
    let on_per_user = event_bytes as f64 / n as f64;
    // 10: DEL of the whole event and of its journal, lazily freed.
    if rows(10) {
        let journal = "{stall:grow}.journal";
        w.reset();
        let (_, del_ms) = timed(&mut w.con, &[b"DEL", key.as_bytes()]);
        let (_, jdel_ms) = timed(&mut w.con, &[b"DEL", journal.as_bytes()]);
        std::thread::sleep(Duration::from_millis(500));
        let lazy = info_num(&mut w.con, "memory", "lazyfreed_objects");
        out.push(
            Row::new("10", "DEL event + DEL journal (lazyfree-lazy-user-del yes)", n, w.collect())
                .note(format!(
                    "DEL event {del_ms:.2} ms, DEL journal {jdel_ms:.2} ms (client wall); lazyfreed_objects {lazy}"
                )),
        );
    } else {
        cmd(&mut w.con, &["DEL", key, "{stall:grow}.journal"]);
    }
    wait_lazyfree(&mut w.con);

    // 7 + 9 (journal off).
    let key = "stall:line";
    cmd(
        &mut w.con,
        &[
            "QUEUE.CONFIG",
            key,
            "SET",
            "JOURNAL",
            "0",
            "HEARTBEAT",
            "86400000",
        ],
    );
    let m2 = info_num(&mut w.con, "memory", "used_memory");
    w.reset();
    let c = fill(
        port,
        0..n,
        FILL_DEPTH,
        0,
        "fill (journal off)",
        enqueue(key),
    );
    let grow_off = w.collect();
    let off_per_user = (info_num(&mut w.con, "memory", "used_memory") - m2) as f64 / n as f64;
    out.push(
        Row::new(
            "7",
            "filling one event (QUEUE.ENQUEUE, journal off)",
            n,
            grow_off,
        )
        .note(format!("{:.0} s, {:.0} joins/s", c.secs, n as f64 / c.secs)),
    );
    let usage = crate::server_stats::memory_usage(&mut w.con, key);
    out.push(
        Row::new("9", "memory per waiting user", n, Observed::default()).note(format!(
            "used_memory delta / N: journal on {on_per_user:.1} B (event + journal stream), \
             journal off {off_per_user:.1} B; MEMORY USAGE / N (journal off) {:.1} B; goal <= 128 B",
            usage as f64 / n as f64
        )),
    );

    // 8 at N, beside a zset of N.
    if rows(8) {
        let have = if n > first { first } else { 0 };
        cmd(&mut w.con, &["DEL", "stall:zset"]);
        let _ = have;
        fill_zset(&mut w.con, "stall:zset", 0..n);
        digest_rows(&mut w, key, "stall:zset", n, "journal off", out);
    }

    if rows(10) {
        other_costs(&mut w, key, n, out);
    }

    if rows(2) {
        dequeue_until_compaction(&mut w, key, n, out);
    }

    if rows(10) {
        w.reset();
        let (_, ms) = timed(&mut w.con, &[b"FLUSHALL", b"ASYNC"]);
        std::thread::sleep(Duration::from_millis(500));
        out.push(
            Row::new("10", "FLUSHALL ASYNC (event + zset)", n, w.collect())
                .note(format!("{ms:.2} ms client wall")),
        );
    }
}

/// Waits until the lazy-free thread has nothing pending, so it does not share the next row.
pub(super) fn wait_lazyfree(con: &mut Connection) {
    let t = Instant::now();
    while info_num(con, "memory", "lazyfree_pending_objects") > 0 && t.elapsed().as_secs() < 120 {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Row 8: DEBUG DIGEST-VALUE of the event and of a zset of the same size.
pub(super) fn digest_rows(
    w: &mut Watch,
    key: &str,
    zset: &str,
    n: usize,
    label: &str,
    out: &mut Vec<Row>,
) {
    let mut ms = Vec::new();
    for k in [key, zset] {
        w.reset();
        let (r, t) = timed(&mut w.con, &[b"DEBUG", b"DIGEST-VALUE", k.as_bytes()]);
        r.expect("DEBUG DIGEST-VALUE");
        ms.push(t);
        let what = if k == key {
            format!("DEBUG DIGEST-VALUE event ({label})")
        } else {
            "DEBUG DIGEST-VALUE zset (Redis' own type)".to_string()
        };
        out.push(
            Row::new("8", what, n, w.collect())
                .exempt("operator DEBUG command, O(n)")
                .note(format!("{t:.0} ms client wall")),
        );
    }
    if let Some(last) = out.last_mut() {
        last.notes
            .push(format!("event / zset = {:.2}x", ms[0] / ms[1].max(0.001)));
    }
}

/// Row 10: fork, MEMORY USAGE, COPY, DUMP/RESTORE of the event and of the zset, UNLINK.
pub(super) fn other_costs(w: &mut Watch, key: &str, n: usize, out: &mut Vec<Row>) {
    // BGSAVE: the fork (latency event `fork`, INFO stats latest_fork_usec).
    w.reset();
    let (_, ms) = timed(&mut w.con, &[b"BGSAVE"]);
    let t = Instant::now();
    while info_num(&mut w.con, "persistence", "rdb_bgsave_in_progress") == 1
        && t.elapsed().as_secs() < 900
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let fork_us = info_num(&mut w.con, "stats", "latest_fork_usec");
    out.push(
        Row::new("10", "BGSAVE (event + zset)", n, w.collect())
            .exempt("fork copies page tables, as for any dataset of this size")
            .note(format!(
                "latest_fork_usec {fork_us}; BGSAVE returned in {ms:.1} ms; child ran {:.0} s",
                t.elapsed().as_secs_f64()
            )),
    );
    for (k, label) in [(key, "event"), ("stall:zset", "zset")] {
        w.reset();
        let (_, usage_ms) = timed(
            &mut w.con,
            &[b"MEMORY", b"USAGE", k.as_bytes(), b"SAMPLES", b"0"],
        );
        out.push(
            Row::new(
                "10",
                format!("MEMORY USAGE {label} SAMPLES 0"),
                n,
                w.collect(),
            )
            .note(format!("{usage_ms:.2} ms client wall")),
        );
        let copy = format!("{k}:copy");
        w.reset();
        let (r, copy_ms) = timed(&mut w.con, &[b"COPY", k.as_bytes(), copy.as_bytes()]);
        r.expect("COPY");
        out.push(
            Row::new("10", format!("COPY {label}"), n, w.collect())
                .exempt("inherent O(n), like Redis' own types")
                .note(format!("{copy_ms:.0} ms client wall")),
        );
        w.reset();
        let (r, dump_ms) = timed(&mut w.con, &[b"DUMP", k.as_bytes()]);
        let payload = match r.expect("DUMP") {
            Value::BulkString(b) => b,
            other => panic!("DUMP: {other:?}"),
        };
        out.push(
            Row::new("10", format!("DUMP {label}"), n, w.collect())
                .exempt("inherent O(n), like Redis' own types")
                .note(format!(
                    "{dump_ms:.0} ms client wall, {:.1} MB",
                    payload.len() as f64 / 1e6
                )),
        );
        let restored = format!("{k}:restored");
        w.reset();
        let (r, restore_ms) = timed(
            &mut w.con,
            &[b"RESTORE", restored.as_bytes(), b"0", &payload],
        );
        r.expect("RESTORE");
        drop(payload);
        out.push(
            Row::new("10", format!("RESTORE {label}"), n, w.collect())
                .exempt("inherent O(n), like Redis' own types")
                .note(format!("{restore_ms:.0} ms client wall")),
        );
        w.reset();
        let (_, unlink_ms) = timed(&mut w.con, &[b"UNLINK", copy.as_bytes()]);
        let (_, del_ms) = timed(&mut w.con, &[b"DEL", restored.as_bytes()]);
        std::thread::sleep(Duration::from_millis(300));
        out.push(
            Row::new(
                "10",
                format!("UNLINK copy + DEL restored {label} (lazyfree-lazy-user-del yes)"),
                n,
                w.collect(),
            )
            .note(format!(
                "UNLINK {unlink_ms:.2} ms, DEL {del_ms:.2} ms client wall"
            )),
        );
        wait_lazyfree(&mut w.con);
    }
}

/// Row 2: QUEUE.DEQUEUE COUNT 10000 from the head, again and again, until ended-ticket
/// compaction has run (and a second more, for the timer's share).
pub(super) fn dequeue_until_compaction(w: &mut Watch, key: &str, n: usize, out: &mut Vec<Row>) {
    let before = effects(&mut w.con, "compacted");
    w.reset();
    let mut calls = 0;
    let mut taken = 0usize;
    let mut worst_ms: f64 = 0.0;
    let mut compacted_at = None;
    let t = Instant::now();
    let limit = n + 1;
    while taken < limit {
        let (r, ms) = timed(
            &mut w.con,
            &[b"QUEUE.DEQUEUE", key.as_bytes(), b"COUNT", b"10000"],
        );
        let got = match r.expect("DEQUEUE") {
            Value::Array(a) => a.len(),
            _ => 0,
        };
        calls += 1;
        taken += got;
        worst_ms = worst_ms.max(ms);
        if got == 0 {
            break;
        }
        if calls % 20 == 0 {
            let c = effects(&mut w.con, "compacted");
            if c > before && compacted_at.is_none() {
                compacted_at = Some(calls);
            }
            // Go on for 100 more calls after the first compaction step.
            if compacted_at.is_some_and(|at| calls >= at + 100) {
                break;
            }
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    let steps = effects(&mut w.con, "compacted") - before;
    out.push(
        Row::new(
            "2",
            "QUEUE.DEQUEUE COUNT 10000 until compaction",
            n,
            w.collect(),
        )
        .note(format!(
            "{calls} calls took {} tickets in {:.0} s, longest call {worst_ms:.1} ms client \
                 wall; {steps} compaction steps (first seen after call {})",
            thousands(taken as f64),
            t.elapsed().as_secs_f64(),
            compacted_at.map_or("-".into(), |c| c.to_string())
        )),
    );
}

/// Row 1: a pre-queue of N opens; the first admission work, and positions during the reveal.
pub(super) fn row_prequeue(kind: ServerKind, n: usize, out: &mut Vec<Row>) {
    let server = start_server(kind, &[]);
    let mut w = Watch::new(&server);
    let key = "stall:pre";
    let far = server_ms(&mut w.con) + 3_600_000;
    cmd(
        &mut w.con,
        &[
            "QUEUE.CONFIG",
            key,
            "SET",
            "OPENS-AT",
            &far.to_string(),
            "HEARTBEAT",
            "3600000",
        ],
    );
    let every = (n / 1000).max(1);
    let f = fill(
        server.port,
        0..n,
        FILL_DEPTH,
        every,
        "pre-queue",
        enqueue(key),
    );
    let prequeue = field_i(&cmd(&mut w.con, &["QUEUE.INFO", key]), "prequeue");
    w.reset();
    let opens_at = server_ms(&mut w.con) + 1_000;
    cmd(
        &mut w.con,
        &[
            "QUEUE.CONFIG",
            key,
            "SET",
            "OPENS-AT",
            &opens_at.to_string(),
        ],
    );
    while server_ms(&mut w.con) < opens_at {
        std::thread::sleep(Duration::from_micros(200));
    }
    // The reveal: each sampled ticket's STATUS, then in one MULTI (nothing runs between) its
    // STATUS again and a window of RANGE around where it was: the entry with its serial must
    // be at the position STATUS gives.
    let (mut exact, mut wrong, mut said_prequeue, mut unverified) = (0, 0, 0, 0);
    let (mut first_wrong, mut first_prequeue) = (None, None);
    let mut worst_ms: f64 = 0.0;
    const WINDOW: i64 = 64;
    for (_, ticket) in &f.sampled {
        let serial = ticket.split('.').next().unwrap_or("").to_string();
        let t = Instant::now();
        let status: Value = redis::cmd("QUEUE.STATUS")
            .arg(key)
            .arg(ticket)
            .query(&mut w.con)
            .expect("STATUS");
        worst_ms = worst_ms.max(t.elapsed().as_secs_f64() * 1000.0);
        let position = field_i(&status, "position");
        if field_i(&status, "prequeue") == 1 {
            said_prequeue += 1;
            first_prequeue.get_or_insert(format!(
                "{ticket}: state {}, position {position}",
                record_field(&status, "state").map(text).unwrap_or_default()
            ));
            continue;
        }
        if position < 1 {
            continue; // called meanwhile
        }
        let start = (position - 1 - WINDOW).max(0);
        let (s, r): (Value, Value) = redis::pipe()
            .atomic()
            .cmd("QUEUE.STATUS")
            .arg(key)
            .arg(ticket)
            .cmd("QUEUE.RANGE")
            .arg(key)
            .arg(start)
            .arg(2 * WINDOW + 1)
            .query(&mut w.con)
            .expect("MULTI STATUS RANGE");
        let p = field_i(&s, "position");
        if p < 1 {
            continue;
        }
        let entries = match record_field(&r, "entries") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        let found = entries.iter().enumerate().find_map(|(i, e)| {
            (record_field(e, "serial").map(text).as_deref() == Some(serial.as_str()))
                .then(|| (start + i as i64 + 1, field_i(e, "position")))
        });
        match found {
            Some((at, reported)) if at == p && reported == p => exact += 1,
            Some((at, reported)) => {
                wrong += 1;
                first_wrong.get_or_insert(format!(
                    "{ticket}: STATUS position {p}, RANGE has it at {at} (its position field {reported})"
                ));
            }
            None => unverified += 1,
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let info_after = cmd(&mut w.con, &["QUEUE.INFO", key]);
    out.push(
        Row::new(
            "1",
            "pre-queue opens (OPENS-AT passes), first admission work",
            n,
            w.collect(),
        )
        .note(format!(
            "pre-queue {} before opening; after: opened {}, sessions {}, prequeue {}",
            thousands(prequeue as f64),
            field_i(&info_after, "opened"),
            field_i(&info_after, "sessions"),
            field_i(&info_after, "prequeue"),
        ))
        .note(format!(
            "{} sampled tickets during the reveal: {exact} positions exact (RANGE at the \
                 position holds that ticket), {wrong} wrong, {unverified} moved out of the \
                 window, {said_prequeue} said prequeue; slowest STATUS {worst_ms:.2} ms client \
                 wall{}{}",
            f.sampled.len(),
            first_wrong.map_or(String::new(), |w| format!("; first wrong: {w}")),
            first_prequeue.map_or(String::new(), |w| format!("; first prequeue: {w}"))
        )),
    );
}

/// Row 3: N tickets lapse while the server is down; the sweep after it starts again.
/// `aof_replica`: AOF on and a replica attached (it resyncs after the restart).
pub(super) fn row_sweep(kind: ServerKind, n: usize, aof_replica: bool, out: &mut Vec<Row>) {
    let extra: &[&str] = if aof_replica {
        &["--appendonly", "yes"]
    } else {
        &[]
    };
    let mut server = start_server(kind, extra);
    let replica = aof_replica.then(|| {
        let mut args: Vec<&str> = MONITORS.to_vec();
        args.extend_from_slice(&["--repl-timeout", "600"]);
        server.start_replica(&args)
    });
    let mut con = server.connection();
    let key = "stall:sweep";
    // Calibrate: how long the fill will take, so the heartbeat outlasts it.
    let probe_n = n.min(50_000);
    let t = Instant::now();
    fill(
        server.port,
        0..probe_n,
        FILL_DEPTH,
        0,
        "calibrate",
        enqueue("stall:calibrate"),
    );
    let per = t.elapsed().as_secs_f64() / probe_n as f64;
    cmd(
        &mut con,
        &["DEL", "stall:calibrate", "{stall:calibrate}.journal"],
    );
    // The calibration runs with the journal on, like the fill; a large line fills more slowly
    // than its first 50,000 joins: two and a half times the estimate.
    let heartbeat_ms = ((per * n as f64 * 2.5 + 10.0) * 1000.0) as u64;
    cmd(
        &mut con,
        &[
            "QUEUE.CONFIG",
            key,
            "SET",
            "HEARTBEAT",
            &heartbeat_ms.to_string(),
        ],
    );
    let started = server_ms(&mut con);
    let f = fill(server.port, 0..n, FILL_DEPTH, 0, "sweep fill", enqueue(key));
    let waiting = field_i(&cmd(&mut con, &["QUEUE.INFO", key]), "waiting");
    if aof_replica {
        // Let the replica take everything, then stop the primary abruptly.
        let offset = info_num(&mut con, "replication", "master_repl_offset");
        let mut r = replica.as_ref().expect("replica").connection();
        let t = Instant::now();
        while info_num(&mut r, "replication", "slave_repl_offset") < offset
            && t.elapsed().as_secs() < 300
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    } else {
        let t = Instant::now();
        cmd(&mut con, &["SAVE"]);
        progress(&format!("stalls: SAVE {:.1} s", t.elapsed().as_secs_f64()));
    }
    drop(con);
    server.kill();
    let lapse = started + heartbeat_ms + 500;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    if lapse > now {
        progress(&format!(
            "stalls: down for {:.0} s until every heartbeat lapses",
            (lapse - now) as f64 / 1000.0
        ));
        std::thread::sleep(Duration::from_millis(lapse - now));
    }
    let t = Instant::now();
    server.restart();
    let load_s = t.elapsed().as_secs_f64();
    let mut w = Watch::new(&server);
    w.reset();
    progress(&format!(
        "stalls: restarted in {load_s:.1} s, pid {}",
        server_pid(&mut w.con)
    ));
    let t = Instant::now();
    let mut left = waiting;
    while t.elapsed().as_secs() < 1800 {
        let v: redis::RedisResult<Value> = redis::cmd("QUEUE.LEN").arg(key).query(&mut w.con);
        left = v.map(|v| int(&v)).unwrap_or(-1);
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let sweep_s = t.elapsed().as_secs_f64();
    let obs = w.collect();
    let what = if aof_replica {
        "sweep of lapsed tickets after a restart (AOF, replica attached)"
    } else {
        "sweep of lapsed tickets after a restart (RDB)"
    };
    out.push(
        Row::new(if aof_replica { "3b" } else { "3" }, what, n, obs).note(format!(
        "fill {:.0} s with HEARTBEAT {} ms, {} waiting at stop; start-up (load) {load_s:.1} s; \
         sweep to {left} waiting took {sweep_s:.1} s",
        f.secs,
        heartbeat_ms,
        thousands(waiting as f64)
    )),
    );
    drop(replica);
}

/// Row 4: a replica whose 100,000 holds (all of the stock) have lapsed is promoted; the
/// first SEAT.HOLD needs a lapsed unit back, one of 1,000 units would need 1,000 returns
/// (TRYAGAIN expected); then the timer returns the rest.
pub(super) fn row_promotion(kind: ServerKind, out: &mut Vec<Row>) {
    let mut primary = start_server(kind, &[]);
    let replica = {
        let args: Vec<&str> = MONITORS.to_vec();
        primary.start_replica(&args)
    };
    let mut con = primary.connection();
    let key = "stall:seats";
    let ttl_ms: u64 = 20_000;
    cmd(&mut con, &["SEAT.ADD", key, "QTY", &HOLDS.to_string()]);
    cmd(
        &mut con,
        &[
            "QUEUE.CONFIG",
            key,
            "SET",
            "REQUIRE-PASS",
            "0",
            "HOLD-TTL",
            &ttl_ms.to_string(),
        ],
    );
    let first_hold = server_ms(&mut con);
    let f = fill(primary.port, 0..HOLDS, FILL_DEPTH, 0, "holds", |i, out| {
        let user = user_id(i);
        pack(
            &[b"SEAT.HOLD", key.as_bytes(), user.as_bytes(), b"QTY", b"1"],
            out,
        )
    });
    let last_hold = server_ms(&mut con);
    assert!(
        last_hold < first_hold + ttl_ms,
        "holding took longer than HOLD-TTL"
    );
    let offset = info_num(&mut con, "replication", "master_repl_offset");
    let mut r = replica.connection();
    while info_num(&mut r, "replication", "slave_repl_offset") < offset {
        std::thread::sleep(Duration::from_millis(50));
    }
    let held = field_i(&cmd(&mut r, &["SEAT.INFO", key]), "holds");
    drop(con);
    primary.kill();
    let wait = (last_hold + ttl_ms + 200).saturating_sub(server_ms(&mut r));
    std::thread::sleep(Duration::from_millis(wait));
    let mut w = Watch::new(&replica);
    let available_before = field_i(&cmd(&mut w.con, &["SEAT.INFO", key]), "available");
    let returned_before = effects(&mut w.con, "hold_expired");
    w.reset();
    let (_, promote_ms) = timed(&mut w.con, &[b"REPLICAOF", b"NO", b"ONE"]);
    let answer = |r: redis::RedisResult<Value>| match r {
        Ok(v) => format!("a hold (remaining {})", field_i(&v, "remaining")),
        Err(e) => seatq_testkit::reply::error_line(&e),
    };
    let (r1, first_ms) = timed(
        &mut w.con,
        &[b"SEAT.HOLD", key.as_bytes(), b"buyer", b"QTY", b"1"],
    );
    let (r2, big_ms) = timed(
        &mut w.con,
        &[b"SEAT.HOLD", key.as_bytes(), b"buyer2", b"QTY", b"1000"],
    );
    let (first, big) = (answer(r1), answer(r2));
    let t = Instant::now();
    let mut returned = 0;
    while t.elapsed().as_secs() < 600 {
        returned = effects(&mut w.con, "hold_expired") - returned_before;
        if returned >= HOLDS as u64 - 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let done_s = t.elapsed().as_secs_f64();
    out.push(
        Row::new(
            "4",
            "first SEAT.HOLD after promoting a replica (lapsed holds)",
            HOLDS,
            w.collect(),
        )
        .note(format!(
            "{} holds (all the stock) made in {:.1} s ({} refused), {held} on the replica; \
             SEAT.INFO available before promotion {available_before}; REPLICAOF NO ONE \
             {promote_ms:.1} ms; first SEAT.HOLD QTY 1 {first_ms:.2} ms -> {first}; SEAT.HOLD \
             QTY 1000 {big_ms:.2} ms -> {big}; the timer returned {returned} in {done_s:.1} s",
            thousands(HOLDS as f64),
            f.secs,
            f.failures
        )),
    );
}

/// Row 5: the timer with 10,000 and 100,000 events that have nothing due. Server CPU is read
/// over 10 s with the prober paused (its PINGs cost CPU too), beside the same with no event;
/// then the longest gap over 10 s with the prober on.
pub(super) fn row_idle_events(kind: ServerKind, out: &mut Vec<Row>) {
    let server = start_server(kind, &[]);
    let mut w = Watch::new(&server);
    let pid = server_pid(&mut w.con);
    let cpu_over = |w: &mut Watch| {
        w.prober.pause(true);
        let (c0, t0) = (cpu_of(pid), Instant::now());
        std::thread::sleep(Duration::from_secs(10));
        let cpu = (cpu_of(pid) - c0) / t0.elapsed().as_secs_f64();
        w.prober.pause(false);
        cpu * 100.0
    };
    let timer_runs = |w: &mut Watch| {
        let all = info(&mut w.con, "seatq");
        all.lines()
            .find_map(|l| l.strip_prefix("seatq_timer_runs_total:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let none = cpu_over(&mut w);
    let mut made = 0;
    for events in [10_000usize, 100_000] {
        fill(
            server.port,
            made..events,
            FILL_DEPTH,
            0,
            "idle events",
            |i, out| {
                let key = format!("idle:{i}");
                pack(
                    &[b"QUEUE.CONFIG", key.as_bytes(), b"SET", b"RATE", b"10"],
                    out,
                )
            },
        );
        made = events;
        // Their first upkeep (opening) runs now; what follows is idle.
        std::thread::sleep(Duration::from_secs(3));
        let runs0 = timer_runs(&mut w);
        let cpu = cpu_over(&mut w);
        let runs = timer_runs(&mut w) - runs0;
        w.reset();
        std::thread::sleep(Duration::from_secs(10));
        out.push(
            Row::new(
                "5",
                "timer with idle events (nothing due)",
                events,
                w.collect(),
            )
            .note(format!(
                "server CPU over 10 s without the prober: {cpu:.1}% of a core \
                     (/proc/{pid}/stat utime+stime), {none:.1}% with no event; {runs} timer \
                     runs in those 10 s"
            )),
        );
    }
}

/// Row 6: replies over tickets with maximal DATA; SEAT.STATUS of 10,000 seats, 1,000 per call.
pub(super) fn row_big_replies(kind: ServerKind, out: &mut Vec<Row>) {
    let server = start_server(kind, &[]);
    let mut w = Watch::new(&server);
    let key = "stall:big";
    cmd(&mut w.con, &["QUEUE.CONFIG", key, "SET", "JOURNAL", "0"]);
    let tickets = 10_000;
    let items = max_data();
    let f = fill(server.port, 0..tickets, 8, 0, "max DATA", |i, out| {
        let user = user_id(i);
        let mut args: Vec<&[u8]> = vec![b"QUEUE.ENQUEUE", key.as_bytes(), user.as_bytes(), b"DATA"];
        args.extend(items.iter().map(Vec::as_slice));
        pack(&args, out)
    });
    w.reset();
    let (r, range_ms) = timed(&mut w.con, &[b"QUEUE.RANGE", key.as_bytes(), b"0", b"1000"]);
    let r = r.expect("RANGE");
    let entries = match record_field(&r, "entries") {
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    };
    let next = field_i(&r, "next");
    out.push(
        Row::new("6", "QUEUE.RANGE key 0 1000, 128 KiB DATA per ticket", tickets, w.collect())
            .note(format!(
                "{entries} entries, next {next}, {range_ms:.2} ms client wall (fill {:.0} s, {} refused)",
                f.secs, f.failures
            )),
    );
    w.reset();
    let (mut calls, mut taken, mut worst) = (0, 0, 0.0f64);
    loop {
        let (r, ms) = timed(
            &mut w.con,
            &[b"QUEUE.DEQUEUE", key.as_bytes(), b"COUNT", b"10000"],
        );
        let got = match r.expect("DEQUEUE") {
            Value::Array(a) => a.len(),
            _ => 0,
        };
        worst = worst.max(ms);
        calls += 1;
        taken += got;
        if got == 0 {
            break;
        }
    }
    out.push(
        Row::new(
            "6",
            "QUEUE.DEQUEUE COUNT 10000, 128 KiB DATA per ticket",
            tickets,
            w.collect(),
        )
        .note(format!(
            "{calls} calls took {taken}, ~{} per reply; slowest {worst:.2} ms client wall",
            taken / (calls - 1).max(1)
        )),
    );
    let seats: Vec<String> = (0..10_000).map(|i| format!("S{i:063}")).collect();
    for chunk in seats.chunks(1000) {
        let mut c = redis::cmd("SEAT.ADD");
        c.arg("stall:hall");
        for s in chunk {
            c.arg(s);
        }
        let _: Value = c.query(&mut w.con).expect("SEAT.ADD");
    }
    // The whole hall, read as a client must: at most 1,000 seats per call.
    w.reset();
    let (mut n, mut ms) = (0, 0f64);
    for chunk in seats.chunks(1000) {
        let mut c = redis::cmd("SEAT.STATUS");
        c.arg("stall:hall");
        for s in chunk {
            c.arg(s);
        }
        let t = Instant::now();
        let r: Value = c.query(&mut w.con).expect("SEAT.STATUS");
        ms = ms.max(t.elapsed().as_secs_f64() * 1000.0);
        if let Value::Array(a) = r {
            n += a.len();
        }
    }
    out.push(
        Row::new(
            "6",
            "SEAT.STATUS of 10,000 seats (64-byte names), 1,000 per call",
            10_000,
            w.collect(),
        )
        .note(format!("{n} records, slowest call {ms:.2} ms client wall")),
    );
}
