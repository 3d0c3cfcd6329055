//! Admission against real servers: the budget, capacity, passes and the pre-queue shuffle.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::Connection;
use seatq_testkit::*;

fn server_ms(con: &mut Connection) -> u64 {
    let t = items(&ok(con, &["TIME"]));
    text(&t[0]).parse::<u64>().unwrap() * 1000 + text(&t[1]).parse::<u64>().unwrap() / 1000
}

fn join_all(con: &mut Connection, key: &str, users: &[String]) -> Vec<String> {
    let mut pipe = redis::pipe();
    for u in users {
        pipe.cmd("QUEUE.ENQUEUE").arg(key).arg(u);
    }
    let replies: Vec<redis::Value> = pipe.query(con).unwrap();
    replies.iter().map(|r| text(&record(r)["ticket"])).collect()
}

/// Parses `NOT_READY position P retry_after_ms R` / `RATE_LIMITED ...`.
fn refusal(e: &str) -> (String, u64, u64) {
    let w: Vec<&str> = e.split(' ').collect();
    assert!(
        w.len() == 5 && w[1] == "position" && w[3] == "retry_after_ms",
        "unexpected refusal: {e}"
    );
    (
        w[0].to_string(),
        w[2].parse().unwrap(),
        w[4].parse().unwrap(),
    )
}

fn admitted_entries(con: &mut Connection, journal_key: &str) -> Vec<(u64, String)> {
    journal(con, journal_key)
        .into_iter()
        .filter(|e| field(&e.1, "type") == "admitted")
        .map(|e| {
            (
                e.0.split('-').next().unwrap().parse().unwrap(),
                field(&e.1, "ticket").to_string(),
            )
        })
        .collect()
}

#[test]
fn a_thousand_pollers_get_the_rate_in_join_order_and_honest_retry_times() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        ok(
            &mut con,
            &["QUEUE.CONFIG", "sale", "SET", "RATE", "50", "BURST", "10"],
        );
        let users: Vec<String> = (0..1000).map(|i| format!("user-{i:04}")).collect();
        let tickets = join_all(&mut con, "sale", &users);
        let started = Instant::now();
        let polls: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = tickets
                .chunks(50)
                .map(|mine| {
                    let server = &server;
                    s.spawn(move || {
                        let mut con = server.connection();
                        let mut waiting: Vec<&String> = mine.iter().collect();
                        let mut polls = 0u64;
                        while started.elapsed() < Duration::from_secs(3) && !waiting.is_empty() {
                            waiting.retain(|t| {
                                polls += 1;
                                match run(&mut con, &["QUEUE.ADMIT", "sale", t]) {
                                    Ok(_) => false,
                                    Err(e) => {
                                        let line = error_line(&e);
                                        assert!(
                                            line.starts_with("NOT_READY")
                                                || line.starts_with("RATE_LIMITED"),
                                            "{line}"
                                        );
                                        true
                                    }
                                }
                            });
                        }
                        polls
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        let admitted = admitted_entries(&mut con, "{sale}:journal");
        let times: Vec<u64> = admitted.iter().map(|a| a.0).collect();
        for (i, &t) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|&&u| u < t + 1000).count();
            assert!(
                in_window <= 60,
                "{in_window} admissions within 1 s from {t} (RATE 50 + BURST 10)"
            );
        }
        let order: Vec<&String> = admitted.iter().map(|a| &a.1).collect();
        assert_eq!(
            order,
            tickets.iter().take(order.len()).collect::<Vec<_>>(),
            "admission order is join order, nobody twice"
        );
        let span_s = (times[times.len() - 1] - times[0]) as f64 / 1000.0;
        let measured = (admitted.len() as f64 - 10.0) / span_s;
        eprintln!(
            "admitted {} in {span_s:.2} s after {polls} polls: {measured:.1}/s after the burst (RATE 50)",
            admitted.len()
        );
        assert!(
            admitted.len() >= 100,
            "the budget was used: {}",
            admitted.len()
        );
        assert!(
            (40.0..=55.0).contains(&measured),
            "measured rate {measured:.1}/s against RATE 50"
        );

        // Honest retry_after: one client alone; sleeping for retry_after_ms is always enough.
        ok(
            &mut con,
            &["QUEUE.CONFIG", "honest", "SET", "RATE", "20", "BURST", "3"],
        );
        let users: Vec<String> = (0..20).map(|i| format!("h-{i}")).collect();
        let tickets = join_all(&mut con, "honest", &users);
        let (kind_, position, retry) =
            refusal(&err(&mut con, &["QUEUE.ADMIT", "honest", &tickets[1]]));
        assert_eq!((kind_.as_str(), position), ("NOT_READY", 2));
        assert!(retry > 0);
        let mut limited = 0;
        for t in &tickets[..12] {
            // Either admitted at once, or refused with a retry time after which it is admitted.
            if let Err(e) = run(&mut con, &["QUEUE.ADMIT", "honest", t]) {
                let (what, position, retry) = refusal(&error_line(&e));
                assert_eq!((what.as_str(), position), ("RATE_LIMITED", 1));
                assert!(
                    (1..=50).contains(&retry),
                    "retry_after_ms {retry} with RATE 20"
                );
                limited += 1;
                std::thread::sleep(Duration::from_millis(retry));
                let again = run(&mut con, &["QUEUE.ADMIT", "honest", t]);
                assert!(
                    again.is_ok(),
                    "retrying after {retry} ms must succeed: {:?}",
                    again.err().map(|e| error_line(&e))
                );
            }
        }
        assert!(limited >= 8, "the burst of 3 ran out: {limited} refusals");
        // The same ticket gets the same pass back.
        let first = record(&ok(&mut con, &["QUEUE.ADMIT", "honest", &tickets[0]]));
        assert_eq!(int(&first["existing"]), 1);
        assert_eq!(
            text(&status(&mut con, "honest", &tickets[0])["pass"]),
            text(&first["pass"])
        );
    });
}

#[test]
fn capacity_five_frees_on_leave_confirm_and_pass_lapse() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        ok(
            &mut con,
            &[
                "QUEUE.CONFIG",
                "ev",
                "SET",
                "CAPACITY",
                "5",
                "RATE",
                "1000",
                "BURST",
                "100",
                "PASS-TTL",
                "1500",
            ],
        );
        ok(&mut con, &["SEAT.ADD", "ev", "A-1", "A-2"]);
        let users: Vec<String> = (0..8).map(|i| format!("u{i}")).collect();
        let t = join_all(&mut con, "ev", &users);
        let mut passes = HashMap::new();
        for (i, ticket) in t.iter().enumerate().take(5) {
            passes.insert(
                i,
                text(&record(&ok(&mut con, &["QUEUE.ADMIT", "ev", ticket]))["pass"]),
            );
        }
        let admitted_at = Instant::now();
        assert_eq!(
            refusal(&err(&mut con, &["QUEUE.ADMIT", "ev", &t[5]])).0,
            "NOT_READY",
            "the sixth waits"
        );
        // A join by an admitted user returns their session's ticket.
        let again = record(&ok(&mut con, &["QUEUE.ENQUEUE", "ev", "u2"]));
        assert_eq!(
            (
                text(&again["ticket"]),
                text(&again["state"]),
                int(&again["existing"])
            ),
            (t[2].clone(), "admitted".into(), 1)
        );
        // 1. Leaving frees a place at once.
        assert_eq!(int(&ok(&mut con, &["QUEUE.LEAVE", "ev", &t[0]])), 1);
        ok(&mut con, &["QUEUE.ADMIT", "ev", &t[5]]);
        assert_eq!(
            refusal(&err(&mut con, &["QUEUE.ADMIT", "ev", &t[6]])).0,
            "NOT_READY"
        );
        // 2. Buying ends the session (CONFIRM-ENDS-SESSION is on by default).
        ok(
            &mut con,
            &["SEAT.HOLD", "ev", "u1", "A-1", "PASS", &passes[&1]],
        );
        ok(&mut con, &["SEAT.CONFIRM", "ev", "u1", "A-1"]);
        assert_eq!(text(&status(&mut con, "ev", &t[1])["state"]), "left");
        ok(&mut con, &["QUEUE.ADMIT", "ev", &t[6]]);
        assert_eq!(
            refusal(&err(&mut con, &["QUEUE.ADMIT", "ev", &t[7]])).0,
            "NOT_READY"
        );
        // 3. A lapsed pass frees its place without anyone calling for it.
        let mut admitted = None;
        while admitted.is_none() {
            assert!(
                admitted_at.elapsed() < Duration::from_secs(5),
                "no place freed by pass expiry"
            );
            if run(&mut con, &["QUEUE.ADMIT", "ev", &t[7]]).is_ok() {
                admitted = Some(admitted_at.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            admitted.unwrap() >= Duration::from_millis(1400),
            "freed before the pass lapsed: {admitted:?}"
        );
        assert_eq!(text(&status(&mut con, "ev", &t[2])["state"]), "expired");
        wait_until(Duration::from_secs(3), || {
            let reasons: Vec<String> = journal(&mut con, "{ev}:journal")
                .iter()
                .filter(|e| field(&e.1, "type") == "session_ended")
                .map(|e| field(&e.1, "reason").to_string())
                .collect();
            reasons.starts_with(&["leave".to_string(), "confirm".to_string()])
                && reasons.iter().filter(|r| *r == "pass_expired").count() >= 3
        });
    });
}

#[test]
fn require_pass_accepts_the_right_live_pass_only() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        ok(
            &mut con,
            &[
                "QUEUE.CONFIG",
                "ev",
                "SET",
                "REQUIRE-PASS",
                "on",
                "RATE",
                "1000",
                "PASS-TTL",
                "1000",
            ],
        );
        ok(&mut con, &["SEAT.ADD", "ev", "A-1", "A-2", "A-3"]);
        let t = join_all(&mut con, "ev", &["alice".to_string(), "bob".to_string()]);
        let alice = text(&record(&ok(&mut con, &["QUEUE.ADMIT", "ev", &t[0]]))["pass"]);
        let bob = text(&record(&ok(&mut con, &["QUEUE.ADMIT", "ev", &t[1]]))["pass"]);
        assert_eq!(alice.len(), 32, "128-bit pass as hex");
        assert_ne!(alice, bob);
        let s = status(&mut con, "ev", &t[0]);
        assert_eq!(
            (text(&s["state"]), text(&s["pass"])),
            ("admitted".into(), alice.clone())
        );
        assert!(err(&mut con, &["SEAT.HOLD", "ev", "alice", "A-1"]).starts_with("PASS_REQUIRED"));
        assert!(
            err(&mut con, &["SEAT.HOLD", "ev", "alice", "A-1", "PASS", &bob])
                .starts_with("PASS_INVALID")
        );
        assert!(err(
            &mut con,
            &["SEAT.HOLD", "ev", "alice", "A-1", "PASS", "not-a-pass"]
        )
        .starts_with("PASS_INVALID"));
        assert!(err(
            &mut con,
            &["SEAT.HOLD", "ev", "alice", "A-1", "PASS", &"0".repeat(32)]
        )
        .starts_with("PASS_INVALID"));
        assert_eq!(
            text(&record(&ok(&mut con, &["SEAT.INFO", "ev"]))["seats_held"]),
            "0",
            "nothing was held"
        );
        ok(
            &mut con,
            &["SEAT.HOLD", "ev", "alice", "A-1", "PASS", &alice],
        );
        ok(
            &mut con,
            &["SEAT.HOLD", "ev", "bob", "A-2", "PASS", &bob, "TTL", "60"],
        );
        assert_eq!(int(&ok(&mut con, &["QUEUE.LEAVE", "ev", &t[1]])), 1);
        assert!(
            err(&mut con, &["SEAT.HOLD", "ev", "bob", "A-3", "PASS", &bob])
                .starts_with("PASS_INVALID"),
            "a session that ended"
        );
        std::thread::sleep(Duration::from_millis(1100));
        assert!(
            err(
                &mut con,
                &["SEAT.HOLD", "ev", "alice", "A-3", "PASS", &alice]
            )
            .starts_with("PASS_INVALID"),
            "an expired pass"
        );
        let docs = format!("{:?}", ok(&mut con, &["COMMAND", "DOCS", "seat.hold"]));
        assert!(docs.contains("PASS"), "COMMAND DOCS lists PASS: {docs}");
        // Bad input for QUEUE.ADMIT changes nothing.
        let before = text(&ok(&mut con, &["DEBUG", "DIGEST"]));
        assert!(err(&mut con, &["QUEUE.ADMIT", "ev"]).starts_with("ERR wrong number of arguments"));
        assert!(err(&mut con, &["QUEUE.ADMIT", "ev", "1-0"]).starts_with("NO_SUCH_TICKET"));
        assert!(err(&mut con, &["QUEUE.ADMIT", "missing", "1-0"]).starts_with("NO_SUCH_TICKET"));
        assert!(err(&mut con, &["QUEUE.ADMIT", "ev", &t[1]]).starts_with("TICKET_ENDED left"));
        ok(&mut con, &["SET", "plain", "x"]);
        assert!(err(&mut con, &["QUEUE.ADMIT", "plain", "1-0"]).starts_with("WRONGTYPE"));
        ok(&mut con, &["DEL", "plain"]);
        assert_eq!(text(&ok(&mut con, &["DEBUG", "DIGEST"])), before);
    });
}

#[test]
fn the_prequeue_is_shuffled_once_and_identically_on_replica_and_aof() {
    for_each_server(|kind| {
        let mut primary = Server::start(kind, &["--appendonly", "yes", "--appendfsync", "always"]);
        let replica = primary.start_replica(&[]);
        let mut con = primary.connection();
        let opens_at = server_ms(&mut con) + 1500;
        ok(
            &mut con,
            &[
                "QUEUE.CONFIG",
                "ev",
                "SET",
                "OPENS-AT",
                &opens_at.to_string(),
                "RATE",
                "1000",
            ],
        );
        let users: Vec<String> = (0..60).map(|i| format!("early-{i:02}")).collect();
        let tickets = join_all(&mut con, "ev", &users);
        let (what, position, retry) = refusal(&err(&mut con, &["QUEUE.ADMIT", "ev", &tickets[0]]));
        assert_eq!((what.as_str(), position), ("NOT_READY", 1));
        assert!(
            retry > 1000 && retry <= 1500,
            "retry_after_ms {retry} is the time until opening"
        );
        assert!(
            int(&status(&mut con, "ev", &tickets[59])["eta_ms"]) > 1000,
            "the ETA includes the wait for opening"
        );
        wait_until(Duration::from_secs(5), || {
            journal(&mut con, "{ev}:journal")
                .iter()
                .any(|e| field(&e.1, "type") == "opened")
        });
        let late = enqueue(&mut con, "ev", "late").1;
        assert_eq!(
            late, 61,
            "who joins after opening queues behind the pre-queue"
        );
        let order = |con: &mut Connection| -> Vec<String> {
            items(&ok(con, &["QUEUE.RANGE", "ev", "0", "100"]))
                .iter()
                .map(|r| text(&record(r)["user"]))
                .collect()
        };
        let shuffled = order(&mut con);
        let mut sorted = shuffled[..60].to_vec();
        sorted.sort();
        assert_eq!(sorted, users, "a permutation of the pre-queue");
        assert_ne!(&shuffled[..60], &users[..], "the order changed");
        assert_eq!(shuffled[60], "late");
        // The new front is admitted; the old front waits its shuffled turn.
        let front =
            text(&record(&items(&ok(&mut con, &["QUEUE.RANGE", "ev", "0", "1"]))[0])["ticket"]);
        ok(&mut con, &["QUEUE.ADMIT", "ev", &front]);
        assert_eq!(int(&ok(&mut con, &["WAIT", "1", "5000"])), 1);
        let digest = text(&ok(&mut con, &["DEBUG", "DIGEST"]));
        let after_admit = order(&mut con);
        let mut rcon = replica.connection();
        wait_until(Duration::from_secs(5), || {
            text(&ok(&mut rcon, &["DEBUG", "DIGEST"])) == digest
        });
        assert_eq!(
            order(&mut rcon),
            after_admit,
            "the replica has the same order"
        );
        drop(rcon);
        drop(replica);
        primary.restart();
        let mut con = primary.connection();
        assert_eq!(
            text(&ok(&mut con, &["DEBUG", "DIGEST"])),
            digest,
            "AOF replay shuffles the same way"
        );
        assert_eq!(order(&mut con), after_admit);
        std::thread::sleep(Duration::from_millis(300));
        let opened = journal(&mut con, "{ev}:journal")
            .iter()
            .filter(|e| field(&e.1, "type") == "opened")
            .count();
        assert_eq!(opened, 1, "the shuffle happens once");
    });
}
