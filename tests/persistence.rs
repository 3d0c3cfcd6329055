//! Replication, AOF, RDB and the keyspace operations on event keys, against real servers.

use std::time::Duration;

use redis::Connection;
use seatq_testkit::*;

/// A mixed workload touching every write path: joins with DATA and idempotency keys,
/// duplicates, leaves, dequeues, heartbeat renewals and expiry, idempotency purges, the
/// server calling the line, claims, no-shows, revokes, expired passes, holds, sales, releases
/// and a hold returned by the timer. It ends with everything settled (admission paused, no
/// session left), so copies can be compared.
fn workload(con: &mut Connection) {
    ok(
        con,
        &[
            "QUEUE.CONFIG",
            "short",
            "SET",
            "HEARTBEAT",
            "1000",
            "IDEMPOTENCY-TTL",
            "1000",
        ],
    );
    ok(con, &["QUEUE.PAUSE", "short"]);
    let mut short = Vec::new();
    for i in 0..30 {
        let user = format!("s-{i}");
        let idem = format!("idem-{i}");
        short.push(text(
            &record(&ok(
                con,
                &[
                    "QUEUE.ENQUEUE",
                    "short",
                    &user,
                    "IDEMPOTENCY",
                    &idem,
                    "DATA",
                    "n",
                    &user,
                ],
            ))["ticket"],
        ));
    }
    assert!(run(
        con,
        &["QUEUE.ENQUEUE", "short", "x", "IDEMPOTENCY", "idem-3"]
    )
    .is_err());
    ok(con, &["QUEUE.LEAVE", "short", &short[0]]);
    std::thread::sleep(Duration::from_millis(800));
    // Renew a few short tickets (over a quarter of HEARTBEAT has passed), let the rest lapse.
    for t in &short[1..4] {
        ok(con, &["QUEUE.STATUS", "short", t]);
    }
    wait_until(Duration::from_secs(10), || {
        let info = record(&ok(con, &["QUEUE.INFO", "short"]));
        int(&info["waiting"]) == 0 && int(&info["idempotency_keys"]) == 0
    });
    ok(
        con,
        &[
            "QUEUE.CONFIG",
            "{long}",
            "SET",
            "RATE",
            "20",
            "BURST",
            "2",
            "CAPACITY",
            "5",
            "CLAIM-TTL",
            "2000",
            "PASS-TTL",
            "1500",
            "JOURNAL-MAXAGE",
            "0",
            "REQUIRE-PASS",
            "off",
        ],
    );
    ok(con, &["QUEUE.PAUSE", "{long}"]);
    let mut long = Vec::new();
    for i in 0..200 {
        long.push(enqueue(con, "{long}", &format!("00000000-0000-0000-0000-{i:012}")).0);
    }
    for t in long.iter().step_by(7) {
        ok(con, &["QUEUE.LEAVE", "{long}", t]);
    }
    ok(con, &["QUEUE.DEQUEUE", "{long}", "COUNT", "25"]);
    ok(con, &["QUEUE.RESUME", "{long}"]);
    // The server calls 5 (CAPACITY); two claim, one is revoked, one leaves, the rest no-show
    // and free their places for the next.
    wait_until(Duration::from_secs(15), || {
        int(&record(&ok(con, &["QUEUE.INFO", "{long}"]))["sessions"]) == 5
    });
    let called: Vec<String> = journal(con, "{long}:journal")
        .iter()
        .filter(|e| field(&e.1, "type") == "admitted")
        .map(|e| field(&e.1, "user").to_string())
        .collect();
    ok(con, &["QUEUE.ADMIT", "{long}", "USER", &called[0]]);
    ok(con, &["QUEUE.ADMIT", "{long}", "USER", &called[1]]);
    ok(con, &["QUEUE.REVOKE", "{long}", "USER", &called[2]]);
    ok(con, &["QUEUE.LEAVE", "{long}", "USER", &called[3]]);
    // Seats on the same event: holds, a sale, a release and a hold left to lapse.
    ok(con, &["SEAT.ADD", "{long}", "A-1", "A-2", "A-3", "A-4"]);
    ok(con, &["SEAT.ADD", "{long}", "QTY", "40"]);
    ok(con, &["SEAT.HOLD", "{long}", &called[0], "A-1", "A-2"]);
    ok(con, &["SEAT.CONFIRM", "{long}", &called[0], "A-1"]);
    ok(con, &["SEAT.HOLD", "{long}", "buyer-2", "QTY", "5"]);
    ok(con, &["SEAT.RELEASE", "{long}", "buyer-2", "QTY", "2"]);
    ok(con, &["SEAT.HOLD", "{long}", "walker", "A-3", "TTL", "1"]);
    wait_until(Duration::from_secs(15), || {
        let kinds: Vec<String> = journal(con, "{long}:journal")
            .iter()
            .map(|e| field(&e.1, "type").to_string())
            .collect();
        let reasons: Vec<String> = journal(con, "{long}:journal")
            .iter()
            .map(|e| field(&e.1, "reason").to_string())
            .collect();
        kinds.iter().any(|k| k == "hold_expired")
            && reasons.iter().any(|r| r == "no_show")
            && reasons.iter().any(|r| r == "expired")
    });
    ok(con, &["QUEUE.PAUSE", "{long}"]);
    wait_until(Duration::from_secs(15), || {
        int(&record(&ok(con, &["QUEUE.INFO", "{long}"]))["sessions"]) == 0
    });
    settled(con);
}

/// Everything observable about the events, for comparing copies.
fn snapshot(con: &mut Connection) -> (String, Vec<String>, String) {
    let digest = text(&ok(con, &["DEBUG", "DIGEST"]));
    let journals = ["{short}.journal", "{long}:journal"]
        .iter()
        .map(|k| format!("{:?}", journal(con, k)))
        .collect();
    let info = format!(
        "{:?} {:?} {:?}",
        ok(con, &["SEAT.INFO", "{long}"]),
        record(&ok(con, &["QUEUE.INFO", "short"])).get("expired_total"),
        record(&ok(con, &["QUEUE.INFO", "{long}"])).get("waiting")
    );
    (digest, journals, info)
}

fn head_ticket(con: &mut Connection, key: &str) -> String {
    let range = record(&ok(con, &["QUEUE.RANGE", key, "0", "1"]));
    text(&record(&items(&range["entries"])[0])["ticket"])
}

#[test]
fn replica_and_aof_replay_end_identical() {
    for_each_server(|kind| {
        let mut primary = Server::start(kind, &["--appendonly", "yes", "--appendfsync", "always"]);
        let mut con = primary.connection();
        enqueue(&mut con, "{long}", "before-the-replica");
        // The replica's initial sync loads the event from an RDB (rdb_load) ...
        let replica = primary.start_replica(&[]);
        // ... and then follows the effects.
        workload(&mut con);
        assert_eq!(int(&ok(&mut con, &["WAIT", "1", "5000"])), 1);
        let on_primary = snapshot(&mut con);
        let mut rcon = replica.connection();
        wait_until(Duration::from_secs(5), || snapshot(&mut rcon) == on_primary);
        assert_eq!(snapshot(&mut rcon), on_primary, "replica equals primary");
        assert!(
            on_primary.1[0].contains("\"expired\""),
            "the timer expired tickets: {}",
            on_primary.1[0]
        );
        // Reads work on the replica; writes are refused there.
        let head = head_ticket(&mut rcon, "{long}");
        assert_eq!(int(&status(&mut rcon, "{long}", &head)["position"]), 1);
        assert!(err(&mut rcon, &["QUEUE.ENQUEUE", "{long}", "u"]).starts_with("READONLY"));
        drop(rcon);
        drop(replica);
        // The AOF replays to the same state.
        primary.restart();
        let mut con = primary.connection();
        assert_eq!(
            snapshot(&mut con),
            on_primary,
            "AOF replay equals the state before restart"
        );
    });
}

#[test]
fn aof_rewrite_without_rdb_preamble_and_debug_reload_keep_everything() {
    for_each_server(|kind| {
        let mut server = Server::start(
            kind,
            &["--appendonly", "yes", "--aof-use-rdb-preamble", "no"],
        );
        let mut con = server.connection();
        workload(&mut con);
        let before = snapshot(&mut con);
        ok(&mut con, &["BGREWRITEAOF"]);
        wait_until(Duration::from_secs(20), || {
            let info = text(&ok(&mut con, &["INFO", "persistence"]));
            info.contains("aof_rewrite_in_progress:0")
                && info.contains("aof_rewrite_scheduled:0")
                && info.contains("aof_last_bgrewrite_status:ok")
        });
        let aof_dir = server.dir.join("appendonlydir");
        let rewritten = std::fs::read_dir(&aof_dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().contains(".base.aof"))
            .expect("base AOF");
        let base = std::fs::read(rewritten.path()).unwrap();
        assert!(
            base.windows(8).any(|w| w == b"SNAPSHOT"),
            "the rewrite used the type's aof_rewrite"
        );
        server.restart();
        let mut con = server.connection();
        assert_eq!(
            snapshot(&mut con),
            before,
            "rewritten AOF reloads the same state"
        );
        ok(&mut con, &["DEBUG", "RELOAD"]);
        assert_eq!(snapshot(&mut con), before, "DEBUG RELOAD keeps everything");
        let head = head_ticket(&mut con, "{long}");
        assert_eq!(int(&status(&mut con, "{long}", &head)["position"]), 1);
    });
}

#[test]
fn copy_rename_move_dump_restore_expire_unlink_flush() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        ok(
            &mut con,
            &["QUEUE.CONFIG", "ev", "SET", "HEARTBEAT", "1000"],
        );
        ok(&mut con, &["QUEUE.PAUSE", "ev"]);
        let tickets: Vec<String> = (0..5)
            .map(|i| enqueue(&mut con, "ev", &format!("u{i}")).0)
            .collect();
        let original = digest(&mut con, "ev");

        ok(&mut con, &["COPY", "ev", "copied"]);
        assert_eq!(digest(&mut con, "copied"), original);
        ok(&mut con, &["QUEUE.LEAVE", "copied", &tickets[0]]);
        assert_eq!(digest(&mut con, "ev"), original, "a copy is independent");

        let dump = match ok(&mut con, &["DUMP", "ev"]) {
            redis::Value::BulkString(b) => b,
            other => panic!("DUMP: {other:?}"),
        };
        redis::cmd("RESTORE")
            .arg("restored")
            .arg(0)
            .arg(&dump)
            .query::<()>(&mut con)
            .unwrap();
        assert_eq!(digest(&mut con, "restored"), original);
        let mut corrupt = dump.clone();
        corrupt.truncate(dump.len() / 2);
        corrupt.extend_from_slice(&dump[dump.len() - 10..]);
        assert!(redis::cmd("RESTORE")
            .arg("bad")
            .arg(0)
            .arg(&corrupt)
            .query::<()>(&mut con)
            .is_err());

        ok(&mut con, &["RENAME", "copied", "renamed"]);
        ok(&mut con, &["MOVE", "restored", "1"]);
        // The timer follows renamed, restored and moved events: their tickets lapse by themselves.
        wait_until(Duration::from_secs(6), || {
            int(&ok(&mut con, &["QUEUE.LEN", "ev"])) == 0
                && int(&ok(&mut con, &["QUEUE.LEN", "renamed"])) == 0
        });
        let mut db1 = redis::Client::open(format!("{}1", server.url()))
            .unwrap()
            .get_connection()
            .unwrap();
        wait_until(Duration::from_secs(6), || {
            int(&ok(&mut db1, &["QUEUE.LEN", "restored"])) == 0
        });
        assert_eq!(
            text(&status(&mut con, "renamed", &tickets[1])["state"]),
            "expired"
        );

        let usage_small = int(&ok(&mut con, &["MEMORY", "USAGE", "ev"]));
        for i in 0..20_000 {
            if i % 1000 == 0 {
                ok(
                    &mut con,
                    &["QUEUE.CONFIG", "big", "SET", "HEARTBEAT", "60000"],
                );
            }
            redis::cmd("QUEUE.ENQUEUE")
                .arg("big")
                .arg(format!("user-{i}"))
                .query::<redis::Value>(&mut con)
                .unwrap();
        }
        let usage_big = int(&ok(&mut con, &["MEMORY", "USAGE", "big"]));
        assert!(
            usage_big > usage_small + 20_000 * 40,
            "MEMORY USAGE grows with the line: {usage_small} -> {usage_big}"
        );
        assert_eq!(int(&ok(&mut con, &["UNLINK", "big"])), 1);
        assert_eq!(int(&ok(&mut con, &["EXISTS", "big"])), 0);

        ok(&mut con, &["PEXPIRE", "ev", "50"]);
        wait_until(Duration::from_secs(3), || {
            int(&ok(&mut con, &["EXISTS", "ev"])) == 0
        });
        ok(&mut con, &["FLUSHALL"]);
        assert_eq!(int(&ok(&mut con, &["DBSIZE"])), 0);
        ok(&mut con, &["QUEUE.PAUSE", "ev"]);
        assert_eq!(enqueue(&mut con, "ev", "after-flush").1, 1);
    });
}

#[test]
fn migrate_moves_an_event_whole_and_the_target_keeps_sweeping_it() {
    for_each_server(|kind| {
        let source = Server::start(kind, &[]);
        let target = Server::start(kind, &[]);
        let mut con = source.connection();
        ok(
            &mut con,
            &["QUEUE.CONFIG", "ev", "SET", "HEARTBEAT", "1000"],
        );
        ok(&mut con, &["QUEUE.PAUSE", "ev"]);
        let tickets: Vec<String> = (0..3)
            .map(|i| enqueue(&mut con, "ev", &format!("u{i}")).0)
            .collect();
        let before = digest(&mut con, "ev");
        let port = target.port.to_string();
        assert_eq!(
            text(&ok(
                &mut con,
                &["MIGRATE", "127.0.0.1", &port, "ev", "0", "5000"]
            )),
            "OK"
        );
        assert_eq!(int(&ok(&mut con, &["EXISTS", "ev"])), 0);
        let mut tcon = target.connection();
        assert_eq!(digest(&mut tcon, "ev"), before);
        assert_eq!(int(&status(&mut tcon, "ev", &tickets[2])["position"]), 3);
        // Nobody polls: the target's timer drops the tickets (rdb_load registered the event).
        wait_until(Duration::from_secs(5), || {
            int(&ok(&mut tcon, &["QUEUE.LEN", "ev"])) == 0
        });
    });
}
