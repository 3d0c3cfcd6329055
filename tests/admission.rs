//! Admission against real servers: the server calls the line at RATE within CAPACITY whatever
//! the clients do; sessions, their claims, passes and every way they end; operator controls;
//! the pre-queue.

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

/// Parses `NOT_READY position P retry_after_ms R`.
fn not_ready(e: &str) -> (u64, u64) {
    let w: Vec<&str> = e.split(' ').collect();
    assert!(
        w.len() == 5 && w[0] == "NOT_READY" && w[1] == "position" && w[3] == "retry_after_ms",
        "unexpected refusal: {e}"
    );
    (w[2].parse().unwrap(), w[4].parse().unwrap())
}

/// (server time, serial) of every `admitted` journal entry.
fn admitted(con: &mut Connection, journal_key: &str) -> Vec<(u64, u64)> {
    entries_of(con, journal_key, "admitted")
        .into_iter()
        .map(|(ms, e)| (ms, field(&e, "serial").parse().unwrap()))
        .collect()
}

fn entries_of(
    con: &mut Connection,
    journal_key: &str,
    kind: &str,
) -> Vec<(u64, Vec<(String, String)>)> {
    journal(con, journal_key)
        .into_iter()
        .filter(|e| field(&e.1, "type") == kind)
        .map(|e| (e.0.split('-').next().unwrap().parse().unwrap(), e.1))
        .collect()
}

fn claim(con: &mut Connection, key: &str, user: &str) -> String {
    text(&record(&ok(con, &["QUEUE.ADMIT", key, "USER", user]))["pass"])
}

#[test]
fn the_server_calls_the_line_at_rate_in_join_order_whatever_the_clients_do() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        ok(
            &mut con,
            &[
                "QUEUE.CONFIG",
                "sale",
                "SET",
                "RATE",
                "50",
                "BURST",
                "10",
                "HEARTBEAT",
                "60000",
            ],
        );
        ok(&mut con, &["QUEUE.PAUSE", "sale"]);
        let users: Vec<String> = (0..300).map(|i| format!("user-{i:04}")).collect();
        let tickets = join_all(&mut con, "sale", &users);
        // Nobody polls: the server calls anyway.
        ok(&mut con, &["QUEUE.RESUME", "sale"]);
        let started = server_ms(&mut con);
        std::thread::sleep(Duration::from_millis(3000));
        // A ticket still waiting is told its place and an honest time to come back (paused
        // here so that no call falls between the two questions).
        ok(&mut con, &["QUEUE.PAUSE", "sale"]);
        let s = status(&mut con, "sale", &tickets[299]);
        let position = int(&s["position"]) as u64;
        assert!(position > 100, "{s:?}");
        let (p, retry) = not_ready(&err(&mut con, &["QUEUE.ADMIT", "sale", &tickets[299]]));
        assert_eq!(p, position);
        assert_eq!(int(&s["eta_ms"]), -1, "paused: no ETA");
        ok(&mut con, &["QUEUE.RESUME", "sale"]);
        let s = status(&mut con, "sale", &tickets[299]);
        let eta = int(&s["eta_ms"]) as u64;
        let position = int(&s["position"]) as u64;
        assert!(
            eta.abs_diff((position - 1) * 20) <= (position - 1) * 20 / 5,
            "eta {eta} ms at position {position} and RATE 50"
        );
        assert!(
            (100..=15_000).contains(&retry),
            "retry_after_ms {retry} keeps the claim window and the heartbeat"
        );
        let calls = admitted(&mut con, "{sale}.journal");
        let serials: Vec<u64> = calls.iter().map(|c| c.1).collect();
        assert_eq!(
            serials,
            (0..serials.len() as u64).collect::<Vec<_>>(),
            "called in line order"
        );
        // The burst at once, then RATE: 10 + 50/s over the elapsed time (one tick of slack).
        let elapsed_ms = calls.last().unwrap().0 - started;
        let expected = 10 + elapsed_ms * 50 / 1000;
        assert!(
            (calls.len() as u64).abs_diff(expected) <= 3,
            "{} calls in {elapsed_ms} ms, expected about {expected}",
            calls.len()
        );
        for (i, &(t, _)) in calls.iter().enumerate() {
            let in_second = calls[i..].iter().take_while(|c| c.0 < t + 1000).count();
            assert!(in_second <= 60, "{in_second} calls in one second from {t}");
        }
        // The called learn it from STATUS and claim their pass.
        let first = status(&mut con, "sale", &tickets[0]);
        assert_eq!(
            (text(&first["state"]), int(&first["claimed"])),
            ("admitted".into(), 0)
        );
        let pass = text(&first["pass"]);
        let claimed = record(&ok(&mut con, &["QUEUE.ADMIT", "sale", &tickets[0]]));
        assert_eq!(
            (text(&claimed["pass"]), int(&claimed["existing"])),
            (pass.clone(), 0)
        );
        let again = record(&ok(&mut con, &["QUEUE.ADMIT", "sale", "USER", "user-0000"]));
        assert_eq!(
            (text(&again["pass"]), int(&again["existing"])),
            (pass, 1),
            "claiming is idempotent"
        );
    });
}

#[test]
fn a_no_show_at_the_front_costs_only_its_claim_window() {
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
                "1",
                "RATE",
                "1000",
                "CLAIM-TTL",
                "1000",
            ],
        );
        let t = join_all(&mut con, "ev", &["gone".into(), "next".into()]);
        assert_eq!(text(&status(&mut con, "ev", &t[0])["state"]), "admitted");
        assert_eq!(
            int(&status(&mut con, "ev", &t[1])["position"]),
            1,
            "CAPACITY 1: the next waits"
        );
        let start = Instant::now();
        // "gone" never claims; "next" polls.
        while text(&status(&mut con, "ev", &t[1])["state"]) == "waiting" {
            assert!(
                start.elapsed() < Duration::from_secs(4),
                "the no-show blocked the line"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(800) && waited < Duration::from_millis(1600),
            "called {waited:?} after the no-show's call"
        );
        assert_eq!(text(&status(&mut con, "ev", &t[0])["state"]), "no_show");
        assert_eq!(
            err(&mut con, &["QUEUE.ADMIT", "ev", &t[0]]),
            "TICKET_ENDED no_show"
        );
        let ended = entries_of(&mut con, "{ev}.journal", "session_ended");
        assert_eq!(
            (field(&ended[0].1, "reason"), field(&ended[0].1, "user")),
            ("no_show", "gone")
        );
        // A lapsed heartbeat is never called.
        ok(
            &mut con,
            &[
                "QUEUE.CONFIG",
                "ev",
                "SET",
                "HEARTBEAT",
                "1000",
                "CAPACITY",
                "0",
            ],
        );
        ok(&mut con, &["QUEUE.PAUSE", "ev"]);
        let late = join_all(&mut con, "ev", &["lapsing".into(), "alive".into()]);
        std::thread::sleep(Duration::from_millis(600));
        status(&mut con, "ev", &late[1]);
        std::thread::sleep(Duration::from_millis(500));
        ok(&mut con, &["QUEUE.RESUME", "ev"]);
        wait_until(Duration::from_secs(3), || {
            text(&status(&mut con, "ev", &late[1])["state"]) == "admitted"
        });
        assert_eq!(text(&status(&mut con, "ev", &late[0])["state"]), "expired");
    });
}

#[test]
fn capacity_frees_on_every_way_a_session_ends() {
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
                "1",
                "RATE",
                "1000",
                "BURST",
                "100",
                "PASS-TTL",
                "1500",
                "CLAIM-TTL",
                "60000",
            ],
        );
        ok(&mut con, &["SEAT.ADD", "ev", "A-1", "A-2"]);
        let users: Vec<String> = (0..6).map(|i| format!("u{i}")).collect();
        let tickets = join_all(&mut con, "ev", &users);
        // By ticket: a user is addressed only while they wait or have a session.
        let state = |con: &mut Connection, user: &str| {
            let i: usize = user[1..].parse().unwrap();
            text(&status(con, "ev", &tickets[i])["state"])
        };
        let live = |con: &mut Connection| int(&record(&ok(con, &["QUEUE.INFO", "ev"]))["sessions"]);
        // A join by an admitted user returns their session's ticket.
        let again = record(&ok(&mut con, &["QUEUE.ENQUEUE", "ev", "u0"]));
        assert_eq!(
            (text(&again["state"]), int(&again["existing"])),
            ("admitted".into(), 1)
        );
        // 1. LEAVE ends the session at once.
        claim(&mut con, "ev", "u0");
        assert_eq!(int(&ok(&mut con, &["QUEUE.LEAVE", "ev", "USER", "u0"])), 1);
        assert_eq!(
            state(&mut con, "u1"),
            "admitted",
            "the next user is called at once"
        );
        assert_eq!(live(&mut con), 1);
        // 2. A purchase ends it (CONFIRM-ENDS-SESSION is on by default).
        let pass = claim(&mut con, "ev", "u1");
        ok(&mut con, &["SEAT.HOLD", "ev", "u1", "A-1", "PASS", &pass]);
        ok(&mut con, &["SEAT.CONFIRM", "ev", "u1", "A-1"]);
        assert_eq!(state(&mut con, "u1"), "completed");
        assert_eq!(state(&mut con, "u2"), "admitted");
        // 3. REVOKE ends it.
        claim(&mut con, "ev", "u2");
        assert_eq!(int(&ok(&mut con, &["QUEUE.REVOKE", "ev", "USER", "u2"])), 1);
        assert_eq!(int(&ok(&mut con, &["QUEUE.REVOKE", "ev", &tickets[2]])), 0);

        assert_eq!(state(&mut con, "u2"), "revoked");
        assert_eq!(state(&mut con, "u3"), "admitted");
        // 4. An expired pass ends it without anyone asking.
        claim(&mut con, "ev", "u3");
        let start = Instant::now();
        wait_until(Duration::from_secs(4), || {
            state(&mut con, "u4") == "admitted"
        });
        assert!(
            start.elapsed() >= Duration::from_millis(1200),
            "freed before the pass lapsed"
        );
        assert_eq!(state(&mut con, "u3"), "expired");
        assert_eq!(live(&mut con), 1, "never more than CAPACITY");
        let reasons: Vec<String> = entries_of(&mut con, "{ev}.journal", "session_ended")
            .iter()
            .map(|e| field(&e.1, "reason").to_string())
            .collect();
        assert_eq!(reasons, ["left", "completed", "revoked", "expired"]);
        let info = record(&ok(&mut con, &["QUEUE.INFO", "ev"]));
        assert_eq!(
            (
                int(&info["admitted_total"]),
                int(&info["sessions_ended_total"])
            ),
            (5, 4)
        );
    });
}

#[test]
fn operators_pause_resume_close_and_reopen() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        ok(
            &mut con,
            &["QUEUE.CONFIG", "ev", "SET", "RATE", "1000", "BURST", "100"],
        );
        assert_eq!(int(&ok(&mut con, &["QUEUE.PAUSE", "ev"])), 1);
        assert_eq!(
            int(&ok(&mut con, &["QUEUE.PAUSE", "ev"])),
            0,
            "already paused"
        );
        let t = join_all(&mut con, "ev", &["a".into(), "b".into()]);
        std::thread::sleep(Duration::from_millis(300));
        let s = status(&mut con, "ev", &t[1]);
        assert_eq!(
            (text(&s["state"]), int(&s["position"]), int(&s["eta_ms"])),
            ("waiting".into(), 2, -1),
            "joins go on, nobody is called, no ETA"
        );
        assert_eq!(
            int(&record(&ok(&mut con, &["QUEUE.INFO", "ev"]))["paused"]),
            1
        );
        assert_eq!(int(&ok(&mut con, &["QUEUE.RESUME", "ev"])), 1);
        wait_until(Duration::from_secs(2), || {
            text(&status(&mut con, "ev", &t[1])["state"]) == "admitted"
        });
        assert_eq!(int(&ok(&mut con, &["QUEUE.CLOSE", "ev"])), 1);
        assert_eq!(
            err(&mut con, &["QUEUE.ENQUEUE", "ev", "c"]),
            "CLOSED the line is closed to new joins"
        );
        assert_eq!(
            text(&record(&ok(&mut con, &["QUEUE.ENQUEUE", "ev", "a"]))["state"]),
            "admitted",
            "those already in keep their place"
        );
        assert_eq!(int(&ok(&mut con, &["QUEUE.REOPEN", "ev"])), 1);
        enqueue(&mut con, "ev", "c");
        // CLOSES-AT closes the line by itself.
        let at = server_ms(&mut con) + 500;
        ok(
            &mut con,
            &["QUEUE.CONFIG", "ev", "SET", "CLOSES-AT", &at.to_string()],
        );
        enqueue(&mut con, "ev", "d");
        let mut attempt = 0;
        wait_until(Duration::from_secs(3), || {
            attempt += 1;
            run(&mut con, &["QUEUE.ENQUEUE", "ev", &format!("e{attempt}")]).is_err()
        });
        let kinds: Vec<String> = journal(&mut con, "{ev}.journal")
            .iter()
            .map(|e| field(&e.1, "type").to_string())
            .filter(|t| ["paused", "resumed", "closed", "reopened"].contains(&t.as_str()))
            .collect();
        assert_eq!(kinds, ["paused", "resumed", "closed", "reopened", "closed"]);
        // REOPEN after CLOSES-AT clears it, or the line would close again at once.
        assert_eq!(int(&ok(&mut con, &["QUEUE.REOPEN", "ev"])), 1);
        std::thread::sleep(Duration::from_millis(300));
        enqueue(&mut con, "ev", "f");
        assert_eq!(
            int(&record(&ok(&mut con, &["QUEUE.CONFIG", "ev", "GET", "CLOSES-AT"]))["closes-at"]),
            0
        );
    });
}

#[test]
fn passes_renew_up_to_the_maximum_verify_and_revoke() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        // JWT times are whole seconds: sessions end on whole seconds, when their pass's `exp` says.
        ok(
            &mut con,
            &[
                "QUEUE.CONFIG",
                "ev",
                "SET",
                "RATE",
                "1000",
                "PASS-TTL",
                "4000",
                "SESSION-MAX",
                "6000",
            ],
        );
        ok(&mut con, &["SEAT.ADD", "ev", "A-1", "A-2"]);
        enqueue(&mut con, "ev", "alice");
        let first = claim(&mut con, "ev", "alice");
        let verify =
            |con: &mut Connection, pass: &str| record(&ok(con, &["QUEUE.VERIFY", "ev", pass]));
        let v = verify(&mut con, &first);
        assert_eq!(
            (text(&v["state"]), text(&v["user"]), int(&v["serial"])),
            ("valid".into(), "alice".into(), 0)
        );
        std::thread::sleep(Duration::from_millis(1200));
        let renewed = record(&ok(&mut con, &["QUEUE.RENEW", "ev", "USER", "alice"]));
        let second = text(&renewed["pass"]);
        assert_ne!(second, first);
        std::thread::sleep(Duration::from_millis(1000));
        let capped = record(&ok(&mut con, &["QUEUE.RENEW", "ev", "USER", "alice"]));
        let admitted_ms = entries_of(&mut con, "{ev}.journal", "admitted")[0].0;
        assert_eq!(
            int(&capped["expires_at_ms"]) as u64,
            (admitted_ms + 6000).div_ceil(1000) * 1000,
            "SESSION-MAX (sessions end on whole seconds)"
        );

        let third = text(&capped["pass"]);
        ok(
            &mut con,
            &["SEAT.HOLD", "ev", "alice", "A-1", "PASS", &third],
        );
        assert_eq!(text(&verify(&mut con, &third)["state"]), "valid");
        assert_eq!(text(&verify(&mut con, "not.a.pass")["state"]), "invalid");
        assert_eq!(
            int(&ok(&mut con, &["QUEUE.REVOKE", "ev", "USER", "alice"])),
            1
        );
        assert_eq!(text(&verify(&mut con, &third)["state"]), "revoked");
        assert_eq!(
            err(
                &mut con,
                &["SEAT.HOLD", "ev", "alice", "A-2", "PASS", &third]
            ),
            "PASS_INVALID the pass is malformed, forged, expired, revoked or not this user's"
        );
        // A user is addressed while they wait or have a session; the ticket still answers after.
        assert!(
            err(&mut con, &["QUEUE.RENEW", "ev", "USER", "alice"]).starts_with("NO_SUCH_TICKET")
        );
        let ticket = text(&record(&ok(&mut con, &["QUEUE.VERIFY", "ev", &third]))["state"]);
        assert_eq!(ticket, "revoked");
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
                "RATE",
                "1000",
                "PASS-TTL",
                "1000",
            ],
        );
        ok(&mut con, &["SEAT.ADD", "ev", "A-1", "A-2", "A-3"]);
        let t = join_all(&mut con, "ev", &["alice".to_string(), "bob".to_string()]);
        let alice = claim(&mut con, "ev", "alice");
        let bob = claim(&mut con, "ev", "bob");
        assert_eq!(alice.split('.').count(), 3, "a JWT");
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
        let mut forged = alice.clone();
        forged.pop();
        forged.push(if alice.ends_with('A') { 'B' } else { 'A' });
        assert!(err(
            &mut con,
            &["SEAT.HOLD", "ev", "alice", "A-1", "PASS", &forged]
        )
        .starts_with("PASS_INVALID"));
        assert_eq!(
            int(&record(&ok(&mut con, &["SEAT.INFO", "ev"]))["seats_held"]),
            0,
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
        // PASS-TTL 1000: the pass expires at the next whole second after that.
        let expires_at = int(&status(&mut con, "ev", &t[0])["pass_expires_at_ms"]) as u64;
        assert!(expires_at % 1000 == 0 && expires_at <= server_ms(&mut con) + 2000);
        wait_until(Duration::from_secs(3), || server_ms(&mut con) > expires_at);
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
        assert!(err(&mut con, &["QUEUE.ADMIT", "ev", "0.0000000000000000"])
            .starts_with("NO_SUCH_TICKET"));
        assert!(
            err(&mut con, &["QUEUE.ADMIT", "missing", "0.0000000000000000"])
                .starts_with("NO_SUCH_TICKET")
        );
        assert!(err(&mut con, &["QUEUE.ADMIT", "ev", &t[1]]).starts_with("TICKET_ENDED left"));
        ok(&mut con, &["SET", "plain", "x"]);
        assert!(
            err(&mut con, &["QUEUE.ADMIT", "plain", "0.0000000000000000"]).starts_with("WRONGTYPE")
        );
        ok(&mut con, &["DEL", "plain"]);
        assert_eq!(text(&ok(&mut con, &["DEBUG", "DIGEST"])), before);
    });
}

#[test]
fn the_prequeue_is_shuffled_identically_on_replica_and_aof() {
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
                "1",
                "BURST",
                "1",
            ],
        );
        let users: Vec<String> = (0..60).map(|i| format!("early-{i:02}")).collect();
        let tickets = join_all(&mut con, "ev", &users);
        let s = status(&mut con, "ev", &tickets[0]);
        assert_eq!(
            (int(&s["position"]), text(&s["state"])),
            (0, "waiting".into()),
            "no position before opening: the order is not revealed"
        );
        assert!(
            int(&s["eta_ms"]) > 1000,
            "the ETA includes the wait for opening"
        );
        let (position, _) = not_ready(&err(&mut con, &["QUEUE.ADMIT", "ev", &tickets[0]]));
        assert_eq!(position, 0);
        wait_until(Duration::from_secs(5), || {
            int(&record(&ok(&mut con, &["QUEUE.INFO", "ev"]))["opened"]) == 1
        });
        let late = enqueue(&mut con, "ev", "late").1;
        assert!(
            late >= 60,
            "who joins after opening queues behind the pre-queue: {late}"
        );
        let order = |con: &mut Connection| -> Vec<String> {
            let r = record(&ok(con, &["QUEUE.RANGE", "ev", "0", "100"]));
            items(&r["entries"])
                .iter()
                .map(|r| text(&record(r)["user"]))
                .collect()
        };
        let called: Vec<String> = entries_of(&mut con, "{ev}.journal", "admitted")
            .iter()
            .map(|e| field(&e.1, "user").to_string())
            .collect();
        let waiting = order(&mut con);
        let mut shuffled = called.clone();
        shuffled.extend(waiting.iter().filter(|u| *u != "late").cloned());
        let mut sorted = shuffled.clone();
        sorted.sort();
        assert_eq!(sorted, users, "a permutation of the pre-queue");
        assert_ne!(shuffled, users, "the order changed");
        assert_eq!(waiting.last().unwrap(), "late");
        // Each ticket's position is its place in that order.
        for (k, user) in waiting.iter().enumerate().step_by(7) {
            let s = record(&ok(&mut con, &["QUEUE.STATUS", "ev", "USER", user]));
            assert_eq!(int(&s["position"]) as usize, k + 1);
        }
        ok(&mut con, &["QUEUE.PAUSE", "ev"]);
        assert_eq!(int(&ok(&mut con, &["WAIT", "1", "5000"])), 1);
        let digest = text(&ok(&mut con, &["DEBUG", "DIGEST"]));
        let before = order(&mut con);
        let mut rcon = replica.connection();
        wait_until(Duration::from_secs(5), || {
            text(&ok(&mut rcon, &["DEBUG", "DIGEST"])) == digest
        });
        assert_eq!(order(&mut rcon), before, "the replica has the same order");
        drop(rcon);
        drop(replica);
        primary.restart();
        let mut con = primary.connection();
        assert_eq!(
            text(&ok(&mut con, &["DEBUG", "DIGEST"])),
            digest,
            "AOF replay orders the same way"
        );
        assert_eq!(order(&mut con), before);
        let opened = journal(&mut con, "{ev}.journal")
            .iter()
            .filter(|e| field(&e.1, "type") == "opened")
            .count();
        assert_eq!(opened, 1, "the event opens once");
    });
}

#[test]
fn a_join_answers_the_state_its_own_command_left() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        ok(
            &mut con,
            &["QUEUE.CONFIG", "ev", "SET", "RATE", "1", "BURST", "1"],
        );
        // The first join is called by the same command (the bucket holds one call): it says so.
        let first = record(&ok(&mut con, &["QUEUE.ENQUEUE", "ev", "alice"]));
        assert_eq!(
            (text(&first["state"]), int(&first["position"])),
            ("admitted".into(), 0)
        );
        let s = status(&mut con, "ev", &text(&first["ticket"]));
        assert_eq!(text(&s["state"]), "admitted");
        // The second waits: the bucket is empty.
        let second = record(&ok(&mut con, &["QUEUE.ENQUEUE", "ev", "bob"]));
        assert_eq!(
            (text(&second["state"]), int(&second["position"])),
            ("waiting".into(), 1)
        );
    });
}

#[test]
fn the_prequeue_reveals_nothing_of_its_order_before_opening() {
    for_each_server(|kind| {
        let server = Server::start(kind, &[]);
        let mut con = server.connection();
        let opens_at = (server_ms(&mut con) + 3_600_000).to_string();
        ok(
            &mut con,
            &[
                "QUEUE.CONFIG",
                "ev",
                "SET",
                "OPENS-AT",
                &opens_at,
                "RATE",
                "1",
            ],
        );
        let users: Vec<String> = (0..50).map(|i| format!("u{i}")).collect();
        let tickets = join_all(&mut con, "ev", &users);
        let etas: Vec<i64> = tickets
            .iter()
            .map(|t| {
                let s = status(&mut con, "ev", t);
                assert_eq!(
                    (int(&s["position"]), text(&s["state"])),
                    (0, "waiting".into())
                );
                int(&s["eta_ms"])
            })
            .collect();
        // At RATE 1 the hidden rank would spread ETAs over 49 s: they differ by the time the
        // loop took, nothing more.
        let spread = etas.iter().max().unwrap() - etas.iter().min().unwrap();
        assert!(spread < 1_000, "ETAs {etas:?}");
        assert!(err(&mut con, &["QUEUE.RANGE", "ev", "0", "10"]).starts_with("NOT_OPEN"));
        assert!(
            err(&mut con, &["QUEUE.RENEW", "ev", &tickets[0]]).starts_with("NOT_READY position 0"),
            "no pass to renew yet"
        );
        let before = text(&ok(&mut con, &["DEBUG", "DIGEST"]));
        assert!(err(&mut con, &["QUEUE.DEQUEUE", "ev"]).starts_with("NOT_OPEN"));
        assert_eq!(text(&ok(&mut con, &["DEBUG", "DIGEST"])), before);
        let info = record(&ok(&mut con, &["QUEUE.INFO", "ev"]));
        assert_eq!(
            (info["head_serial"].clone(), info["tail_serial"].clone()),
            (redis::Value::Nil, redis::Value::Nil)
        );
        // Once open, the order shows.
        ok(&mut con, &["QUEUE.CONFIG", "ev", "SET", "OPENS-AT", "1"]);
        wait_until(Duration::from_secs(5), || {
            int(&record(&ok(&mut con, &["QUEUE.INFO", "ev"]))["opened"]) == 1
        });
        // Read together (MULTI/EXEC): the timer may call another ticket between two commands.
        let (range, waiting): (redis::Value, i64) = redis::pipe()
            .atomic()
            .cmd("QUEUE.RANGE")
            .arg("ev")
            .arg(0)
            .arg(100)
            .cmd("QUEUE.LEN")
            .arg("ev")
            .query(&mut con)
            .expect("RANGE and LEN");
        let range = record(&range);
        assert!(waiting > 0 && waiting < 50, "BURST called some");
        assert_eq!(items(&range["entries"]).len() as i64, waiting);
    });
}
