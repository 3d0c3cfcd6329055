//! seatq's commands on one event key.

use redis::{Cmd, Connection};

use crate::design::{request_id, user_id, Op, Subject, ADMIT_RATE};

/// seatq's command for `op`, and its name in INFO commandstats.
fn command(op: Op) -> (&'static str, &'static str) {
    match op {
        Op::Enqueue => ("QUEUE.ENQUEUE", "queue.enqueue"),
        Op::Status => ("QUEUE.STATUS", "queue.status"),
        Op::Admit => ("QUEUE.ADMIT", "queue.admit"),
        Op::Hold => ("SEAT.HOLD", "seat.hold"),
        Op::Release => ("SEAT.RELEASE", "seat.release"),
    }
}

pub fn stat(op: Op) -> &'static str {
    command(op).1
}

pub fn what(op: Op, idempotency: bool) -> &'static str {
    match op {
        Op::Enqueue if idempotency => "QUEUE.ENQUEUE .. IDEMPOTENCY",
        Op::Admit => "QUEUE.ADMIT (claim)",
        Op::Hold => "SEAT.HOLD .. PASS",
        _ => command(op).0,
    }
}

pub fn cmd(event: &str, idempotency: bool, op: Op, s: &Subject) -> Cmd {
    let mut c = redis::cmd(command(op).0);
    c.arg(event);
    match op {
        Op::Enqueue => {
            let user = user_id(s.user);
            c.arg(&user);
            if idempotency {
                c.arg("IDEMPOTENCY").arg(request_id(&user));
            }
        }
        Op::Status | Op::Admit => {
            c.arg(s.ticket);
        }
        Op::Hold | Op::Release => {
            c.arg(user_id(s.user)).arg(s.seat);
            if op == Op::Hold && !s.pass.is_empty() {
                c.arg("PASS").arg(s.pass);
            }
        }
    }
    c
}

/// The event with `seats`, an unlimited admission budget, a heartbeat and a claim window of a
/// day (nothing lapses during the run) and its journal setting, paused: tickets wait until
/// `call_all` lets the server call them (a call signs a pass: that work is timed apart from
/// the joins and polls).
pub fn setup(con: &mut Connection, event: &str, journal: bool, seats: &[String]) {
    let _: () = redis::cmd("QUEUE.CONFIG")
        .arg(event)
        .arg("SET")
        .arg("RATE")
        .arg(ADMIT_RATE)
        .arg("BURST")
        .arg(ADMIT_RATE)
        .arg("CAPACITY")
        .arg(0)
        .arg("HEARTBEAT")
        .arg(86_400_000)
        .arg("CLAIM-TTL")
        .arg(86_400_000)
        .arg("JOURNAL")
        .arg(if journal { "on" } else { "off" })
        .query(con)
        .expect("QUEUE.CONFIG");
    pause(con, event);
    for chunk in seats.chunks(1000) {
        let _: i64 = redis::cmd("SEAT.ADD")
            .arg(event)
            .arg(chunk)
            .query(con)
            .expect("SEAT.ADD");
    }
}

/// Stops calls: tickets join and wait.
pub fn pause(con: &mut Connection, event: &str) {
    let _: i64 = redis::cmd("QUEUE.PAUSE")
        .arg(event)
        .query(con)
        .expect("QUEUE.PAUSE");
}

/// Lets the server call the line (within CAPACITY) and waits until no ticket waits, or until
/// only `leave_waiting` do.
pub fn call_all(con: &mut Connection, event: &str, leave_waiting: i64) {
    let _: i64 = redis::cmd("QUEUE.RESUME")
        .arg(event)
        .query(con)
        .expect("QUEUE.RESUME");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        let n: i64 = redis::cmd("QUEUE.LEN")
            .arg(event)
            .query(con)
            .expect("QUEUE.LEN");
        if n <= leave_waiting {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{event}: {n} tickets still waiting"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
