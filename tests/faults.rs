//! What operators do during a sale, at the sizes where it used to break: compaction with live
//! sessions then every way a snapshot is loaded; CLIENT PAUSE WRITE and FAILOVER while tickets,
//! passes and holds lapse; a hand-edited AOF; journals that are written by someone else.

use std::time::Duration;

use redis::Connection;
use seatq_testkit::*;

fn info_field(con: &mut Connection, section: &str, field: &str) -> String {
    let text: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// One admitted user, then `n` joins drained by DEQUEUE: past the tombstone allowance, so the
/// oldest ended tickets are compacted away while the admitted user's session lives on.
fn sale_past_compaction(con: &mut Connection, n: usize) -> String {
    ok(
        con,
        &[
            "QUEUE.CONFIG",
            "big",
            "SET",
            "RATE",
            "1000",
            "CAPACITY",
            "1",
            "PASS-TTL",
            "3600000",
            "CLAIM-TTL",
            "3600000",
            "JOURNAL",
            "off",
        ],
    );
    enqueue(con, "big", "vip");
    let pass = text(&record(&ok(con, &["QUEUE.ADMIT", "big", "USER", "vip"]))["pass"]);
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("QUEUE.ENQUEUE")
            .arg("big")
            .arg(format!("u{i}"))
            .ignore();
        if i % 5_000 == 4_999 {
            pipe.cmd("QUEUE.DEQUEUE")
                .arg("big")
                .arg("COUNT")
                .arg(5_000)
                .ignore();
        }
    }
    let _: () = pipe.query(con).unwrap();
    // A DEQUEUE reply stops at its byte bound: take until the line is empty.
    while int(&ok(con, &["QUEUE.LEN", "big"])) > 0 {
        ok(con, &["QUEUE.DEQUEUE", "big", "COUNT", "10000"]);
    }
    let info = record(&ok(con, &["QUEUE.INFO", "big"]));
    assert_eq!(int(&info["dequeued_total"]), n as i64);
    // Compaction goes on in small steps after the last DEQUEUE: let it finish.
    settled(con);
    pass
}

/// The admitted user is still in: STATUS by user and by ticket, their pass verifies, and LEAVE
/// frees their place.
fn admitted_user_is_intact(con: &mut Connection, pass: &str, leave: bool) {
    let s = record(&ok(con, &["QUEUE.STATUS", "big", "USER", "vip"]));
    assert_eq!(
        (text(&s["state"]), text(&s["pass"])),
        ("admitted".into(), pass.to_string())
    );
    let by_ticket = status(con, "big", &text(&s["ticket"]));
    assert_eq!(text(&by_ticket["state"]), "admitted");
    assert_eq!(
        text(&record(&ok(con, &["QUEUE.VERIFY", "big", pass]))["state"]),
        "valid"
    );
    if leave {
        assert_eq!(int(&ok(con, &["QUEUE.LEAVE", "big", "USER", "vip"])), 1);
        assert_eq!(
            int(&record(&ok(con, &["QUEUE.INFO", "big"]))["sessions"]),
            0
        );
    }
}

#[test]
fn compaction_keeps_live_sessions_and_every_snapshot_loads() {
    for_each_server(|kind| {
        let mut server = Server::start(
            kind,
            &["--appendonly", "yes", "--aof-use-rdb-preamble", "no"],
        );
        let mut con = server.connection();
        let pass = sale_past_compaction(&mut con, 100_010);
        let dump_before = digest(&mut con, "big");
        // Compaction ran: most of the 100,011 tickets are forgotten, the session is not.
        let usage = int(&ok(&mut con, &["MEMORY", "USAGE", "big"]));
        assert!(
            usage < 100_011 * 24,
            "tombstones were compacted: {usage} bytes"
        );
        admitted_user_is_intact(&mut con, &pass, false);
        // SAVE + restart (RDB), DEBUG RELOAD, COPY, DUMP/RESTORE.
        ok(&mut con, &["SAVE"]);
        ok(&mut con, &["DEBUG", "RELOAD"]);
        assert_eq!(digest(&mut con, "big"), dump_before, "DEBUG RELOAD");
        admitted_user_is_intact(&mut con, &pass, false);
        ok(&mut con, &["COPY", "big", "copy"]);
        assert_eq!(digest(&mut con, "copy"), dump_before, "COPY");
        let dump = match ok(&mut con, &["DUMP", "big"]) {
            redis::Value::BulkString(b) => b,
            other => panic!("DUMP: {other:?}"),
        };
        redis::cmd("RESTORE")
            .arg("restored")
            .arg(0)
            .arg(&dump)
            .query::<()>(&mut con)
            .unwrap();
        assert_eq!(digest(&mut con, "restored"), dump_before, "RESTORE");
        // A replica's full sync loads it.
        let replica = server.start_replica(&[]);
        let mut rcon = replica.connection();
        assert_eq!(digest(&mut rcon, "big"), dump_before, "full sync");
        drop(rcon);
        drop(replica);
        // An AOF rewrite without RDB preamble (the SNAPSHOT form), then a restart.
        ok(&mut con, &["BGREWRITEAOF"]);
        wait_until(Duration::from_secs(30), || {
            info_field(&mut con, "persistence", "aof_rewrite_in_progress") == "0"
                && info_field(&mut con, "persistence", "aof_rewrite_scheduled") == "0"
        });
        server.restart();
        let mut con = server.connection();
        assert_eq!(
            digest(&mut con, "big"),
            dump_before,
            "AOF rewrite + restart"
        );
        admitted_user_is_intact(&mut con, &pass, true);
    });
}

#[test]
fn a_lapsed_user_who_rejoins_never_holds_two_sessions() {
    for_each_server(|kind| {
        let server = Server::start(kind, &["--appendonly", "yes"]);
        let mut con = server.connection();
        // Pass and claim window of one second; the timer looks rarely, so the old session is
        // still there (lapsed) when the user comes back.
        ok(
            &mut con,
            &["CONFIG", "SET", "seatq.timer-interval-ms", "1000"],
        );
        ok(
            &mut con,
            &[
                "QUEUE.CONFIG",
                "ev",
                "SET",
                "RATE",
                "1000",
                "PASS-TTL",
                "1000",
                // Claimed at once; a long window so that a loaded machine's delay is no no-show.
                "CLAIM-TTL",
                "10000",
            ],
        );
        for round in 0..5 {
            enqueue(&mut con, "ev", "alice");
            let claimed = record(&ok(&mut con, &["QUEUE.ADMIT", "ev", "USER", "alice"]));
            // Sessions end on whole seconds: wait until this one has lapsed.
            let expires_at = int(&claimed["expires_at_ms"]);
            wait_until(Duration::from_secs(3), || {
                let time = items(&ok(&mut con, &["TIME"]));
                int(&time[0]) * 1000 + int(&time[1]) / 1000 > expires_at
            });
            let info = record(&ok(&mut con, &["QUEUE.INFO", "ev"]));
            assert!(int(&info["sessions"]) <= 1, "round {round}: {info:?}");
        }
        ok(&mut con, &["DEBUG", "RELOAD"]);
        assert!(int(&record(&ok(&mut con, &["QUEUE.INFO", "ev"]))["admitted_total"]) >= 5);
    });
}

/// Tickets, passes and holds lapsing, every second, on an event with AOF and a replica.
fn lapsing_sale(con: &mut Connection, key: &str, users: usize) {
    ok(
        con,
        &[
            "QUEUE.CONFIG",
            key,
            "SET",
            "RATE",
            "200",
            "BURST",
            "20",
            "HEARTBEAT",
            "1000",
            "PASS-TTL",
            "1000",
            "CLAIM-TTL",
            "1000",
            "REQUIRE-PASS",
            "off",
        ],
    );
    let seats: Vec<String> = (0..200).map(|i| format!("S-{i}")).collect();
    redis::cmd("SEAT.ADD")
        .arg(key)
        .arg(&seats)
        .query::<i64>(con)
        .unwrap();
    let mut pipe = redis::pipe();
    for i in 0..users {
        pipe.cmd("QUEUE.ENQUEUE")
            .arg(key)
            .arg(format!("u{i}"))
            .ignore();
        pipe.cmd("SEAT.HOLD")
            .arg(key)
            .arg(format!("h{i}"))
            .arg(format!("S-{}", i % 200))
            .arg("TTL")
            .arg(1)
            .ignore();
    }
    let _: () = pipe.query(con).unwrap_or(());
}

#[test]
fn client_pause_write_and_failover_while_everything_lapses() {
    for_each_server(|kind| {
        let primary = Server::start(kind, &["--appendonly", "yes", "--appendfsync", "always"]);
        let replica = primary.start_replica(&["--appendonly", "yes"]);
        let mut con = primary.connection();
        let mut rcon = replica.connection();
        lapsing_sale(&mut con, "sale", 2_000);
        // CLIENT PAUSE WRITE while tickets, passes and holds lapse: the primary must not
        // propagate (it used to abort), and the work it skipped happens after the pause.
        for _ in 0..3 {
            ok(&mut con, &["CLIENT", "PAUSE", "1500", "WRITE"]);
            std::thread::sleep(Duration::from_millis(1700));
            assert_eq!(
                text(&ok(&mut con, &["PING"])),
                "PONG",
                "the primary survived the pause"
            );
        }
        lapsing_sale(&mut con, "sale", 500);
        // FAILOVER to the replica and back, with lapses in flight both times.
        for (from, to) in [(&primary, &replica), (&replica, &primary)] {
            let mut fcon = from.connection();
            std::thread::sleep(Duration::from_millis(300));
            ok(&mut fcon, &["FAILOVER", "TIMEOUT", "5000"]);
            let mut tcon = to.connection();
            wait_until(Duration::from_secs(10), || {
                info_field(&mut tcon, "replication", "role") == "master"
            });
            wait_until(Duration::from_secs(10), || {
                info_field(&mut fcon, "replication", "role") == "slave"
                    && info_field(&mut fcon, "replication", "master_link_status") == "up"
            });
            assert_eq!(
                text(&ok(&mut fcon, &["PING"])),
                "PONG",
                "the old primary survived FAILOVER"
            );
            lapsing_sale(&mut tcon, "sale", 300);
        }
        // Everything lapses and is ended by whoever is primary now; both copies agree.
        let settled_primary = settled(&mut con);
        assert_eq!(int(&ok(&mut con, &["WAIT", "1", "5000"])), 1);
        wait_until(Duration::from_secs(10), || {
            text(&ok(&mut rcon, &["DEBUG", "DIGEST"])) == settled_primary
        });
        let info = record(&ok(&mut con, &["QUEUE.INFO", "sale"]));
        let seats = record(&ok(&mut con, &["SEAT.INFO", "sale"]));
        assert_eq!(
            (
                int(&info["waiting"]),
                int(&info["sessions"]),
                int(&seats["holds"])
            ),
            (0, 0, 0)
        );
        assert!(
            int(&seats["holds_expired_total"]) > 0
                && int(&info["expired_total"]) + int(&info["admitted_total"]) > 0
        );
        assert_eq!(
            journal(&mut con, "{sale}.journal"),
            journal(&mut rcon, "{sale}.journal")
        );
    });
}

#[test]
fn a_hand_edited_aof_cannot_produce_a_state_that_does_not_load() {
    for_each_server(|kind| {
        let mut server = Server::start(
            kind,
            &[
                "--appendonly",
                "yes",
                "--aof-use-rdb-preamble",
                "no",
                "--appendfsync",
                "always",
            ],
        );
        let mut con = server.connection();
        ok(
            &mut con,
            &["QUEUE.CONFIG", "ev", "SET", "REQUIRE-PASS", "off"],
        );
        ok(&mut con, &["SEAT.ADD", "ev", "A-1", "A-2"]);
        ok(&mut con, &["SEAT.ADD", "ev", "QTY", "5"]);
        ok(&mut con, &["SEAT.HOLD", "ev", "alice", "A-1"]);
        ok(&mut con, &["SEAT.CONFIRM", "ev", "alice", "A-1"]);
        let digest_before = text(&ok(&mut con, &["DEBUG", "DIGEST"]));
        // Effects that do not fit: sell a seat nobody holds, sell the sold seat again, hold more
        // GA stock than exists, admit a ticket that never joined, a second event creation.
        let aof_dir = server.dir.join("appendonlydir");
        let incr = std::fs::read_dir(&aof_dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().contains(".incr.aof"))
            .expect("an incremental AOF")
            .path();
        let forged: &[&[&str]] = &[
            &[
                "SEATQ.APPLY",
                "ev",
                "SOLD",
                "99999999999999-0",
                "mallory",
                "0",
                "1",
                "A-2",
            ],
            &[
                "SEATQ.APPLY",
                "ev",
                "SOLD",
                "99999999999999-1",
                "alice",
                "0",
                "1",
                "A-1",
            ],
            &[
                "SEATQ.APPLY",
                "ev",
                "HELD",
                "99999999999999-2",
                "9",
                "mallory",
                "1",
                "100",
                "0",
            ],
            &[
                "SEATQ.APPLY",
                "ev",
                "ADMITTED",
                "99999999999999-3",
                "77",
                "1",
                "2",
                "3",
                "x.y.z",
            ],
            &["SEATQ.APPLY", "ev", "CREATED", &"00".repeat(32), "0"],
        ];
        let mut text_aof = String::new();
        for args in forged {
            text_aof.push_str(&format!("*{}\r\n", args.len()));
            for a in *args {
                text_aof.push_str(&format!("${}\r\n{a}\r\n", a.len()));
            }
        }
        drop(con);
        server.kill();
        let mut bytes = std::fs::read(&incr).unwrap();
        bytes.extend_from_slice(text_aof.as_bytes());
        std::fs::write(&incr, bytes).unwrap();
        server.restart();
        let mut con = server.connection();
        assert_eq!(
            text(&ok(&mut con, &["DEBUG", "DIGEST"])),
            digest_before,
            "no forged effect applied"
        );
        let seats = record(&ok(&mut con, &["SEAT.INFO", "ev"]));
        assert_eq!(
            (int(&seats["seats_sold"]), int(&seats["ga_available"])),
            (1, 5)
        );
        // And what is there still saves and loads.
        ok(&mut con, &["DEBUG", "RELOAD"]);
        assert_eq!(text(&ok(&mut con, &["DEBUG", "DIGEST"])), digest_before);
    });
}

#[test]
fn journals_are_one_per_event_and_a_blocked_journal_refuses_writes_whole() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        // `x`, `{x}` and `{x}:journal` name three journals: `{x}.journal`, `{x}:journal`,
        // `{x}:journal:journal`. With `{x}:journal` an event, `{x}` finds its journal key taken
        // and refuses writes: the rule keeps journals apart, not arbitrary keys.
        for key in ["x", "{x}:journal"] {
            ok(&mut con, &["QUEUE.PAUSE", key]);
            enqueue(&mut con, key, "u");
        }
        for (journal_key, entries) in [("{x}.journal", 2), ("{x}:journal:journal", 2)] {
            assert_eq!(
                int(&ok(&mut con, &["XLEN", journal_key])),
                entries,
                "{journal_key}"
            );
        }
        assert!(err(&mut con, &["QUEUE.ENQUEUE", "{x}", "v"]).starts_with("JOURNAL_UNAVAILABLE"));
        assert_eq!(
            int(&ok(&mut con, &["EXISTS", "{x}"])),
            0,
            "a refused write creates nothing"
        );
        ok(&mut con, &["DEL", "{x}:journal"]);
        enqueue(&mut con, "{x}", "v");
        let kinds: Vec<String> = journal(&mut con, "{x}:journal")
            .iter()
            .map(|e| field(&e.1, "type").to_string())
            .collect();
        assert_eq!(kinds[0], "joined");
        // A client SETs a journal: writes are refused whole, with a clear error, and the timer
        // logs it once a minute, not ten times a second.
        ok(
            &mut con,
            &[
                "QUEUE.CONFIG",
                "ev",
                "SET",
                "HEARTBEAT",
                "1000",
                "RATE",
                "1000",
            ],
        );
        let t = enqueue(&mut con, "ev", "a").0;
        ok(&mut con, &["DEL", "{ev}.journal"]);
        ok(&mut con, &["SET", "{ev}.journal", "oops"]);
        let before = text(&ok(&mut con, &["DEBUG", "DIGEST"]));
        let e = err(&mut con, &["QUEUE.ENQUEUE", "ev", "b"]);
        assert!(e.starts_with("JOURNAL_UNAVAILABLE the journal key {ev}.journal holds a value that is not a stream"), "{e}");
        assert!(err(&mut con, &["QUEUE.LEAVE", "ev", &t]).starts_with("JOURNAL_UNAVAILABLE"));
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(
            text(&ok(&mut con, &["DEBUG", "DIGEST"])),
            before,
            "nothing changed, not even by the timer"
        );
        let warnings = server.log().matches("upkeep of ev").count();
        assert!(warnings <= 1, "{warnings} warnings in 2.5 s");
        // An XADD at the largest ID: the next write is refused whole, nothing changes.
        ok(&mut con, &["DEL", "{ev}.journal"]);
        ok(
            &mut con,
            &[
                "XADD",
                "{ev}.journal",
                "18446744073709551615-18446744073709551615",
                "type",
                "foreign",
            ],
        );
        let before = text(&ok(&mut con, &["DEBUG", "DIGEST"]));
        let e = err(&mut con, &["QUEUE.ENQUEUE", "ev", "c"]);
        assert!(
            e.starts_with(
                "JOURNAL_UNAVAILABLE the journal of ev already holds entries at or after"
            ),
            "{e}"
        );
        assert_eq!(text(&ok(&mut con, &["DEBUG", "DIGEST"])), before);
        // The operator removes the foreign journal: outside a cluster a new one starts.
        ok(&mut con, &["DEL", "{ev}.journal"]);
        enqueue(&mut con, "ev", "c");
        assert!(int(&ok(&mut con, &["XLEN", "{ev}.journal"])) >= 1);
    });
}
