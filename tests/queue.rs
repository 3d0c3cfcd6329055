//! The waiting line against real servers: the seed's cases and the contract's guarantees.
//! Events here are paused (nobody is admitted) unless a test is about admission.

use std::collections::HashSet;
use std::time::Duration;

use seatq_testkit::*;

fn paused(con: &mut redis::Connection, key: &str) {
    assert_eq!(int(&ok(con, &["QUEUE.PAUSE", key])), 1);
}

#[test]
fn seed_enqueue_atomic_then_duplicate() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        paused(&mut con, "concert");
        let r = record(&ok(
            &mut con,
            &[
                "QUEUE.ENQUEUE",
                "concert",
                "user-1",
                "IDEMPOTENCY",
                "dedupe-1",
            ],
        ));
        let ticket = text(&r["ticket"]);
        let (serial, tag) = ticket.split_once('.').expect("serial.tag");
        assert_eq!((serial, tag.len()), ("0", 16), "{ticket}");
        assert_eq!(
            (int(&r["position"]), text(&r["state"]), int(&r["existing"])),
            (1, "waiting".into(), 0)
        );
        // The same request retried: DUPLICATE with the user's own ticket.
        assert_eq!(
            err(
                &mut con,
                &[
                    "QUEUE.ENQUEUE",
                    "concert",
                    "user-1",
                    "IDEMPOTENCY",
                    "dedupe-1"
                ]
            ),
            format!("DUPLICATE {ticket}")
        );
        // Another user with the same key learns nothing about the first user's ticket.
        assert_eq!(
            err(
                &mut con,
                &[
                    "QUEUE.ENQUEUE",
                    "concert",
                    "user-2",
                    "IDEMPOTENCY",
                    "dedupe-1"
                ]
            ),
            "DUPLICATE the idempotency key was already used"
        );
        let entries = journal(&mut con, "{concert}.journal");
        let types: Vec<&str> = entries.iter().map(|e| field(&e.1, "type")).collect();
        assert_eq!(types, ["paused", "joined"]);
        assert_eq!(
            (field(&entries[1].1, "serial"), field(&entries[1].1, "user")),
            ("0", "user-1")
        );
        assert!(
            !format!("{entries:?}").contains(tag),
            "the journal never carries the ticket's secret part"
        );
        assert_eq!(int(&ok(&mut con, &["QUEUE.LEN", "concert"])), 1);
    });
}

#[test]
fn hundred_concurrent_requests_with_one_idempotency_key() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        paused(&mut server.connection(), "concert");
        let barrier = std::sync::Barrier::new(100);
        let outcomes: Vec<Result<String, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..100)
                .map(|_| {
                    let (server, barrier) = (&server, &barrier);
                    s.spawn(move || {
                        let mut con = server.connection();
                        barrier.wait();
                        // One user's request, retried by 100 connections at once.
                        run(
                            &mut con,
                            &[
                                "QUEUE.ENQUEUE",
                                "concert",
                                "user-1",
                                "IDEMPOTENCY",
                                "dedupe:concurrent-test",
                            ],
                        )
                        .map(|v| text(&record(&v)["ticket"]))
                        .map_err(|e| error_line(&e))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let successes: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(successes.len(), 1, "{outcomes:?}");
        let expected = format!("DUPLICATE {}", successes[0]);
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| o.as_ref().err() == Some(&expected))
                .count(),
            99
        );
        let mut con = server.connection();
        assert_eq!(int(&ok(&mut con, &["QUEUE.LEN", "concert"])), 1);
    });
}

#[test]
fn fifo_positions_one_to_five_and_users_isolated() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        paused(&mut con, "ev");
        let joined: Vec<(String, i64)> = ["user-A", "user-B", "user-C", "user-D", "user-E"]
            .iter()
            .map(|u| enqueue(&mut con, "ev", u))
            .collect();
        assert_eq!(
            joined.iter().map(|j| j.1).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        for (i, (ticket, _)) in joined.iter().enumerate() {
            let s = status(&mut con, "ev", ticket);
            assert_eq!(
                (int(&s["position"]), int(&s["ahead"])),
                (i as i64 + 1, i as i64)
            );
            assert_eq!(int(&s["eta_ms"]), -1, "no ETA while admission is paused");
            // Addressed by user, the same answer.
            let by_user = record(&ok(
                &mut con,
                &[
                    "QUEUE.STATUS",
                    "ev",
                    "USER",
                    &format!("user-{}", (b'A' + i as u8) as char),
                ],
            ));
            assert_eq!(text(&by_user["ticket"]), *ticket);
        }
        // One live ticket per user: joining again returns the same ticket.
        let again = record(&ok(&mut con, &["QUEUE.ENQUEUE", "ev", "user-C"]));
        assert_eq!(
            (
                text(&again["ticket"]),
                int(&again["existing"]),
                int(&again["position"])
            ),
            (joined[2].0.clone(), 1, 3)
        );
        // Events are isolated: the same users in another event get their own line.
        paused(&mut con, "other");
        assert_eq!(enqueue(&mut con, "other", "user-E").1, 1);
        assert_eq!(int(&ok(&mut con, &["QUEUE.LEN", "ev"])), 5);
        // DATA is stored with the ticket and listed by RANGE (not by STATUS: a poller needs
        // none of it).
        ok(
            &mut con,
            &[
                "QUEUE.ENQUEUE",
                "ev",
                "user-F",
                "DATA",
                "tier",
                "vip",
                "src",
                "app",
            ],
        );
        let range = record(&ok(&mut con, &["QUEUE.RANGE", "ev", "4", "10"]));
        let entries = items(&range["entries"]);
        assert_eq!(
            entries
                .iter()
                .map(|r| text(&record(r)["user"]))
                .collect::<Vec<_>>(),
            ["user-E", "user-F"]
        );
        let last = record(&entries[1]);
        assert_eq!((int(&last["position"]), int(&last["serial"])), (6, 5));
        assert_eq!(
            record(&last["data"])
                .iter()
                .map(|(k, v)| (k.clone(), text(v)))
                .collect::<std::collections::BTreeMap<_, _>>(),
            [
                ("src".to_string(), "app".to_string()),
                ("tier".to_string(), "vip".to_string())
            ]
            .into()
        );
        assert_eq!(int(&range["next"]), -1);
        // A field named twice is refused.
        assert!(err(
            &mut con,
            &["QUEUE.ENQUEUE", "ev", "user-G", "DATA", "a", "1", "a", "2"]
        )
        .starts_with("ERR DATA names a field twice"));
    });
}

#[test]
fn dequeue_removes_from_the_head() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        paused(&mut con, "ev");
        let tickets: Vec<String> = (0..3)
            .map(|i| enqueue(&mut con, "ev", &format!("u{i}")).0)
            .collect();
        let taken = items(&ok(&mut con, &["QUEUE.DEQUEUE", "ev"]));
        assert_eq!(taken.len(), 1);
        assert_eq!(text(&record(&taken[0])["ticket"]), tickets[0]);
        assert_eq!(text(&record(&taken[0])["user"]), "u0");
        assert_eq!(int(&ok(&mut con, &["QUEUE.LEN", "ev"])), 2);
        assert_eq!(
            text(&status(&mut con, "ev", &tickets[0])["state"]),
            "dequeued"
        );
        assert_eq!(int(&status(&mut con, "ev", &tickets[1])["position"]), 1);
        assert_eq!(
            items(&ok(&mut con, &["QUEUE.DEQUEUE", "ev", "COUNT", "10"])).len(),
            2
        );
        assert_eq!(
            items(&ok(&mut con, &["QUEUE.DEQUEUE", "ev", "COUNT", "10"])).len(),
            0
        );
        assert_eq!(items(&ok(&mut con, &["QUEUE.DEQUEUE", "missing"])).len(), 0);
        assert_eq!(
            int(&ok(&mut con, &["EXISTS", "missing"])),
            0,
            "a read-like DEQUEUE creates nothing"
        );
        let types: Vec<String> = journal(&mut con, "{ev}.journal")
            .iter()
            .map(|e| field(&e.1, "type").to_string())
            .collect();
        assert_eq!(
            types,
            ["paused", "joined", "joined", "joined", "dequeued", "dequeued", "dequeued"]
        );
        let info = record(&ok(&mut con, &["QUEUE.INFO", "ev"]));
        assert_eq!(
            (
                int(&info["waiting"]),
                int(&info["dequeued_total"]),
                int(&info["joined_total"])
            ),
            (0, 3, 3)
        );
    });
}

#[test]
fn journal_is_trimmed_by_age() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        ok(
            &mut con,
            &["QUEUE.CONFIG", "{sale}:ev", "SET", "JOURNAL-MAXAGE", "1000"],
        );
        paused(&mut con, "{sale}:ev");
        for i in 0..3 {
            enqueue(&mut con, "{sale}:ev", &format!("old-{i}"));
        }
        assert_eq!(int(&ok(&mut con, &["XLEN", "{sale}:ev:journal"])), 4);
        std::thread::sleep(Duration::from_millis(1200));
        enqueue(&mut con, "{sale}:ev", "fresh");
        wait_until(Duration::from_secs(5), || {
            int(&ok(&mut con, &["XLEN", "{sale}:ev:journal"])) == 1
        });
        let entries = journal(&mut con, "{sale}:ev:journal");
        assert_eq!(field(&entries[0].1, "user"), "fresh");
        // The queue itself is untouched by trimming.
        assert_eq!(int(&ok(&mut con, &["QUEUE.LEN", "{sale}:ev"])), 4);
    });
}

#[test]
fn fifty_concurrent_connections_get_distinct_dense_positions() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        paused(&mut server.connection(), "ev");
        let joined: Vec<(String, i64)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..50)
                .map(|c| {
                    let server = &server;
                    s.spawn(move || {
                        let mut con = server.connection();
                        (0..20)
                            .map(|i| enqueue(&mut con, "ev", &format!("c{c}-u{i}")))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let mut positions: Vec<i64> = joined.iter().map(|j| j.1).collect();
        positions.sort_unstable();
        assert_eq!(
            positions,
            (1..=1000).collect::<Vec<_>>(),
            "positions are distinct and dense"
        );
        assert_eq!(
            joined.iter().map(|j| &j.0).collect::<HashSet<_>>().len(),
            1000
        );
        // Position order equals serial (arrival) order, and STATUS agrees with the join reply.
        let serial = |t: &str| t.split_once('.').unwrap().0.parse::<u64>().unwrap();
        let mut by_position = joined.clone();
        by_position.sort_by_key(|j| j.1);
        assert!(by_position
            .windows(2)
            .all(|w| serial(&w[0].0) < serial(&w[1].0)));
        let mut con = server.connection();
        for (ticket, position) in joined.iter().step_by(37) {
            assert_eq!(int(&status(&mut con, "ev", ticket)["position"]), *position);
        }
    });
}

#[test]
fn leaving_in_the_middle_shifts_everyone_behind() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        paused(&mut con, "ev");
        let tickets: Vec<String> = (1..=5)
            .map(|i| enqueue(&mut con, "ev", &format!("u{i}")).0)
            .collect();
        assert_eq!(int(&ok(&mut con, &["QUEUE.LEAVE", "ev", &tickets[2]])), 1);
        assert_eq!(
            int(&ok(&mut con, &["QUEUE.LEAVE", "ev", &tickets[2]])),
            0,
            "leaving twice changes nothing"
        );
        let positions: Vec<i64> = tickets
            .iter()
            .map(|t| int(&status(&mut con, "ev", t)["position"]))
            .collect();
        assert_eq!(positions, [1, 2, 0, 3, 4]);
        assert_eq!(text(&status(&mut con, "ev", &tickets[2])["state"]), "left");
        assert_eq!(int(&ok(&mut con, &["QUEUE.LEN", "ev"])), 4);
        // Leaving by user works the same.
        assert_eq!(int(&ok(&mut con, &["QUEUE.LEAVE", "ev", "USER", "u5"])), 1);
        // The users who left may join again, at the back, with a new ticket.
        let (again, position) = enqueue(&mut con, "ev", "u3");
        assert_eq!(position, 4);
        assert_ne!(again, tickets[2]);
    });
}

#[test]
fn a_ticket_whose_heartbeat_lapses_disappears_by_itself() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        ok(
            &mut con,
            &["QUEUE.CONFIG", "ev", "SET", "HEARTBEAT", "1000"],
        );
        paused(&mut con, "ev");
        let abandoned = enqueue(&mut con, "ev", "gone").0;
        let polling = enqueue(&mut con, "ev", "here").0;
        let start = std::time::Instant::now();
        // Nobody touches the abandoned ticket; the other one polls every 300 ms.
        while int(&ok(&mut con, &["QUEUE.LEN", "ev"])) == 2 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "abandoned ticket was never removed"
            );
            assert_eq!(text(&status(&mut con, "ev", &polling)["state"]), "waiting");
            std::thread::sleep(Duration::from_millis(300));
        }
        assert!(
            start.elapsed() >= Duration::from_millis(900),
            "removed before its heartbeat lapsed"
        );
        assert_eq!(int(&status(&mut con, "ev", &polling)["position"]), 1);
        assert_eq!(
            text(&status(&mut con, "ev", &abandoned)["state"]),
            "expired"
        );
        let expired: Vec<_> = journal(&mut con, "{ev}.journal")
            .into_iter()
            .filter(|e| field(&e.1, "type") == "expired")
            .collect();
        assert_eq!(expired.len(), 1);
        assert_eq!(
            (field(&expired[0].1, "serial"), field(&expired[0].1, "user")),
            ("0", "gone")
        );
    });
}

#[test]
fn idempotency_keys_expire_after_their_ttl() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        ok(
            &mut con,
            &["QUEUE.CONFIG", "ev", "SET", "IDEMPOTENCY-TTL", "1000"],
        );
        paused(&mut con, "ev");
        enqueue_idem(&mut con, "a", "k");
        assert!(
            err(&mut con, &["QUEUE.ENQUEUE", "ev", "b", "IDEMPOTENCY", "k"])
                .starts_with("DUPLICATE")
        );
        std::thread::sleep(Duration::from_millis(1100));
        enqueue_idem(&mut con, "b", "k");
        // The timer purges expired keys from memory too.
        wait_until(Duration::from_secs(5), || {
            std::thread::sleep(Duration::from_millis(100));
            int(&record(&ok(&mut con, &["QUEUE.INFO", "ev"]))["idempotency_keys"]) == 0
        });
    });

    fn enqueue_idem(con: &mut redis::Connection, user: &str, key: &str) -> String {
        text(&record(&ok(con, &["QUEUE.ENQUEUE", "ev", user, "IDEMPOTENCY", key]))["ticket"])
    }
}

#[test]
fn one_user_with_a_million_idempotency_keys_keeps_one_record() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        paused(&mut con, "ev");
        let mut pipe = redis::pipe();
        for i in 0..20_000 {
            pipe.cmd("QUEUE.ENQUEUE")
                .arg("ev")
                .arg("same-user")
                .arg("IDEMPOTENCY")
                .arg(format!("k{i}"));
        }
        let _: Vec<redis::Value> = pipe.query(&mut con).unwrap();
        let info = record(&ok(&mut con, &["QUEUE.INFO", "ev"]));
        assert_eq!(
            (int(&info["waiting"]), int(&info["idempotency_keys"])),
            (1, 1),
            "a key is remembered only by the join that made a ticket"
        );
    });
}

#[test]
fn journal_consumers_blocked_in_xread_are_woken() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        paused(&mut con, "ev");
        enqueue(&mut con, "ev", "first");
        let reader = std::thread::scope(|s| {
            let h = s.spawn(|| {
                let mut reader = server.connection();
                ok(
                    &mut reader,
                    &["XREAD", "BLOCK", "5000", "STREAMS", "{ev}.journal", "$"],
                )
            });
            std::thread::sleep(Duration::from_millis(300));
            enqueue(&mut con, "ev", "second");
            h.join().unwrap()
        });
        assert!(format!("{reader:?}").contains("second"), "{reader:?}");
    });
}

#[test]
fn keyspace_notifications_for_writes() {
    for_each_server(|kind| {
        let server = Server::start(kind, &["--notify-keyspace-events", "KEA"]);
        let mut sub = server.connection();
        let mut pubsub = sub.as_pubsub();
        pubsub.psubscribe("__keyevent@0__:*").unwrap();
        pubsub
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut con = server.connection();
        paused(&mut con, "ev");
        let t = enqueue(&mut con, "ev", "u").0;
        ok(&mut con, &["QUEUE.LEAVE", "ev", &t]);
        let mut seen = Vec::new();
        while let Ok(msg) = pubsub.get_message() {
            seen.push((
                msg.get_channel_name().to_string(),
                msg.get_payload::<String>().unwrap(),
            ));
            if seen.iter().any(|(c, _)| c.ends_with("queue.left")) {
                break;
            }
        }
        let has = |event: &str, key: &str| seen.iter().any(|(c, k)| c.ends_with(event) && k == key);
        assert!(
            has("queue.paused", "ev")
                && has("queue.joined", "ev")
                && has("xadd", "{ev}.journal")
                && has("queue.left", "ev"),
            "{seen:?}"
        );
    });
}

#[test]
fn module_configs_set_the_defaults_of_new_events() {
    for_each_server(|kind| {
        let server = Server::start(kind, &["--seatq.heartbeat-ms", "5000"]);
        let mut con = server.connection();
        assert_eq!(
            items(&ok(&mut con, &["CONFIG", "GET", "seatq.heartbeat-ms"]))
                .iter()
                .map(text)
                .collect::<Vec<_>>(),
            ["seatq.heartbeat-ms", "5000"]
        );
        ok(&mut con, &["CONFIG", "SET", "seatq.journal", "0"]);
        enqueue(&mut con, "ev", "u");
        let cfg = record(&ok(&mut con, &["QUEUE.CONFIG", "ev", "GET"]));
        assert_eq!(
            (
                int(&cfg["heartbeat"]),
                int(&cfg["journal"]),
                int(&cfg["require-pass"])
            ),
            (5000, 0, 1)
        );
        assert_eq!(
            int(&ok(&mut con, &["EXISTS", "{ev}.journal"])),
            0,
            "JOURNAL off writes no journal"
        );
        assert!(run(&mut con, &["CONFIG", "SET", "seatq.heartbeat-ms", "5"]).is_err());
        assert!(run(&mut con, &["CONFIG", "SET", "seatq.rate", "abc"]).is_err());
        // An existing event keeps its own settings.
        ok(&mut con, &["CONFIG", "SET", "seatq.heartbeat-ms", "7000"]);
        assert_eq!(
            int(&record(&ok(&mut con, &["QUEUE.CONFIG", "ev", "GET", "HEARTBEAT"]))["heartbeat"]),
            5000
        );
    });
}

#[test]
fn the_repository_redis_conf_loads_the_module() {
    // redis.conf names the module by a path relative to the repository; point it at this build.
    let conf = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/redis.conf")).unwrap();
    let conf = conf.replace(
        "target/release/libseatq.so",
        server::module_path().to_str().unwrap(),
    );
    // A directory of its own: redis.conf turns on the AOF, which must load nothing else.
    let dir = std::env::temp_dir().join(format!("seatq-conf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("redis.conf"), conf).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    struct Stop(std::process::Child, std::path::PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
    let child = std::process::Command::new(ServerKind::Redis.binary())
        .arg(dir.join("redis.conf"))
        .args([
            "--port",
            &port.to_string(),
            "--daemonize",
            "no",
            "--logfile",
            "",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _stop = Stop(child, dir);
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut con = None;
    wait_until(Duration::from_secs(10), || {
        con = client.get_connection().ok();
        con.is_some()
    });
    let mut con = con.unwrap();
    let modules = format!("{:?}", ok(&mut con, &["MODULE", "LIST"]));
    assert!(modules.contains("seatq"), "{modules}");
    let hb = items(&ok(&mut con, &["CONFIG", "GET", "seatq.heartbeat-ms"]));
    assert_eq!(text(&hb[1]), "60000");
    // RATE 100, BURST 10: the first join is called by its own command.
    let joined = record(&ok(&mut con, &["QUEUE.ENQUEUE", "ev", "u"]));
    assert_eq!(text(&joined["state"]), "admitted");
}

#[test]
fn commands_declare_flags_and_key_specs() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        let flags = |con: &mut redis::Connection, name: &str| {
            let info = items(&ok(con, &["COMMAND", "INFO", name]));
            format!("{:?}", items(&info[0])[2])
        };
        for (name, sample, must, must_not) in [
            (
                "queue.enqueue",
                &["u"][..],
                &["write", "denyoom", "fast"][..],
                &["readonly"][..],
            ),
            ("queue.status", &["0.00"], &["readonly", "fast"], &["write"]),
            ("queue.leave", &["0.00"], &["write", "fast"], &["denyoom"]),
            (
                "queue.admit",
                &["USER", "u"],
                &["write", "denyoom", "fast"],
                &["readonly"],
            ),
            (
                "queue.renew",
                &["0.00"],
                &["write", "denyoom", "fast"],
                &["readonly"],
            ),
            (
                "queue.revoke",
                &["0.00"],
                &["write", "fast"],
                &["readonly", "denyoom"],
            ),
            ("queue.verify", &["pass"], &["readonly", "fast"], &["write"]),
            ("queue.pause", &[], &["write"], &["readonly"]),
            ("queue.resume", &[], &["write"], &["readonly"]),
            ("queue.close", &[], &["write"], &["readonly"]),
            ("queue.reopen", &[], &["write"], &["readonly"]),
            ("queue.dequeue", &[], &["write"], &["readonly", "fast"]),
            ("queue.len", &[], &["readonly", "fast"], &["write"]),
            (
                "queue.range",
                &["0", "1"],
                &["readonly"],
                &["write", "fast"],
            ),
            ("queue.info", &[], &["readonly", "fast"], &["write"]),
            (
                "queue.config",
                &["GET"],
                &["write", "denyoom"],
                &["readonly"],
            ),
            ("seat.add", &["A-1"], &["write", "denyoom"], &["readonly"]),
            (
                "seat.hold",
                &["u", "A-1"],
                &["write", "denyoom", "fast"],
                &["readonly"],
            ),
            (
                "seat.release",
                &["u", "A-1"],
                &["write", "fast"],
                &["denyoom"],
            ),
            (
                "seat.confirm",
                &["u", "A-1"],
                &["write", "fast"],
                &["denyoom"],
            ),
            ("seat.status", &["A-1"], &["readonly", "fast"], &["write"]),
            ("seat.info", &[], &["readonly", "fast"], &["write"]),
            ("seatq.apply", &["x"], &["write"], &["readonly", "fast"]),
        ] {
            let f = flags(&mut con, name);
            for m in must {
                assert!(f.contains(m), "{name} lacks {m}: {f}");
            }
            for m in must_not {
                assert!(!f.contains(&format!("\"{m}\"")), "{name} has {m}: {f}");
            }
            let mut getkeys = vec!["COMMAND", "GETKEYS", name, "the-event"];
            getkeys.extend_from_slice(sample);
            let keys = items(&ok(&mut con, &getkeys));
            assert_eq!(
                keys.iter().map(text).collect::<Vec<_>>(),
                ["the-event"],
                "{name}"
            );
            let docs = format!("{:?}", ok(&mut con, &["COMMAND", "DOCS", name]));
            assert!(
                docs.contains("summary") && docs.contains("arguments"),
                "{name}: {docs}"
            );
        }
        // COMMAND INFO does not show may-replicate; CLIENT PAUSE WRITE does: it holds
        // may-replicate commands (STATUS may renew a heartbeat) but lets plain reads through.
        paused(&mut con, "ev");
        let ticket = enqueue(&mut con, "ev", "u").0;
        ok(&mut con, &["CLIENT", "PAUSE", "600", "WRITE"]);
        let mut other = server.connection();
        let started = std::time::Instant::now();
        ok(&mut other, &["QUEUE.LEN", "ev"]);
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "plain reads are not paused"
        );
        status(&mut other, "ev", &ticket);
        assert!(
            started.elapsed() >= Duration::from_millis(400),
            "STATUS is held by CLIENT PAUSE WRITE"
        );
    });
}
