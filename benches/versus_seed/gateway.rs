//! The seed's flows as their gateway runs them (traffic-tacos/gateway-api,
//! `internal/routes/queue.go` and the `internal/queue` helpers it calls): every Redis call one
//! request makes, in order, with their key names and value shapes. Their three scripts are
//! restated in `benches/lua/gateway/` (EVALSHA, as go-redis `Script.Run` sends them); the
//! admission bucket goes as EVAL with its source, as their `TryAdmit` sends it. The gateway's
//! middleware (a rate-limit EVAL on every API request, idempotency GET/SET/SET on POSTs) is
//! left out: these flows are a lower bound of what one request costs their Redis.
//!
//! - join (`POST /queue/join`): the join script; then one pipeline of SET queue data (JSON,
//!   30 min), ZADD + EXPIRE of the event's zset, SET heartbeat (5 min), ZADD + EXPIRE of the
//!   position index; then, in a goroutine, the position: XRANGE of the user's stream, ZRANK in
//!   the position index, SET of the queue data again. 10 calls.
//! - status (`GET /queue/status`): EXISTS + EXPIRE heartbeat, GET queue data, ZRANK in the
//!   position index, three ZCOUNTs of the admission metrics (1, 5, 15 min windows), ZRANK in
//!   the event zset (eligibility). 8 calls.
//! - enter (`POST /queue/enter`), admitted past position 10: GET queue data, ZRANK, the bucket
//!   (EVAL), SET reservation (30 s), SET queue data, DEL heartbeat, ZREM from the event zset,
//!   ZADD + ZREMRANGEBYSCORE of the admission metrics. 9 calls. Refused (past position 100):
//!   GET queue data, ZRANK. 2 calls.
//! - leave (`DELETE /queue/leave`): GET queue data, DEL heartbeat, DEL queue data, ZREM,
//!   XRANGE of the user's stream, XDEL of the entry. 6 calls.
//! - hold / release: their scripts (the gateway itself never calls them: the reservation
//!   service does). 1 call each.

use redis::{Cmd, Connection};

use crate::design::{user_id, Op};

/// The scripts sent with EVALSHA, loaded once.
#[derive(Clone)]
pub struct GatewayScripts {
    join: String,
    hold: String,
    release: String,
}

pub const JOIN_LUA: &str = include_str!("../lua/gateway/join.lua");
pub const BUCKET_LUA: &str = include_str!("../lua/gateway/token_bucket.lua");
pub const HOLD_LUA: &str = include_str!("../lua/gateway/hold.lua");
pub const RELEASE_LUA: &str = include_str!("../lua/gateway/release.lua");

impl GatewayScripts {
    pub fn load(con: &mut Connection) -> GatewayScripts {
        let mut load = |src: &str| -> String {
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(src)
                .query(con)
                .expect("SCRIPT LOAD")
        };
        GatewayScripts {
            join: load(JOIN_LUA),
            hold: load(HOLD_LUA),
            release: load(RELEASE_LUA),
        }
    }
}

/// A user's waiting token (their uuid.New(); here derived from the user's number).
pub fn token(n: usize) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-a000-{:012x}",
        n ^ 0x5eed,
        n % 65536,
        n % 4096,
        n
    )
}

/// The Idempotency-Key header of the user's join (a UUID, required on POSTs).
fn idempotency_key(n: usize) -> String {
    format!("{:08x}-0000-4000-b000-{:012x}", n, n)
}

/// Their gateway's clock, in whole seconds (fixed for reproducible requests).
pub const NOW_S: u64 = 1_796_000_000;

fn queue_data(event: &str, n: usize, status: &str) -> String {
    format!(
        "{{\"event_id\":\"{event}\",\"user_id\":\"{}\",\"joined_at\":\"2026-12-01T23:45:00.123456789+09:00\",\"position\":0,\"status\":\"{status}\"}}",
        user_id(n)
    )
}

fn event_zset(event: &str) -> String {
    format!("queue:event:{{{event}}}")
}

fn position_index(event: &str) -> String {
    format!("position_index:{{{event}}}")
}

fn heartbeat(n: usize) -> String {
    format!("heartbeat:{}", token(n))
}

fn queue_key(n: usize) -> String {
    format!("queue:waiting:{}", token(n))
}

fn stream(event: &str, n: usize) -> String {
    format!("stream:event:{{{event}}}:user:{}", user_id(n))
}

fn metrics(event: &str) -> String {
    format!("metrics:admission:{event}")
}

fn seat_status(event: &str) -> String {
    format!("seat:status:{event}")
}

fn inventory(event: &str) -> String {
    format!("inventory:{event}")
}

fn cmd(words: &[&str]) -> Cmd {
    let mut c = redis::cmd(words[0]);
    for w in &words[1..] {
        c.arg(*w);
    }
    c
}

/// A flow as the gateway sends it: round trips, each one or more commands (a pipeline).
pub type Trips = Vec<Vec<Cmd>>;

fn singles(calls: Vec<Cmd>) -> Trips {
    calls.into_iter().map(|c| vec![c]).collect()
}

/// POST /queue/join for user `n` (the second join of the same request only runs the script,
/// which answers DUPLICATE, and the handler stops there). Round trips: the script, the
/// pipeline of 6, then the goroutine's 3 calls one by one.
pub fn join(s: &GatewayScripts, event: &str, n: usize, again: bool) -> Trips {
    let (user, tok) = (user_id(n), token(n));
    let dedupe = format!("dedupe:{{{event}}}:{}", idempotency_key(n));
    let calls = vec![cmd(&[
        "EVALSHA",
        &s.join,
        "2",
        &dedupe,
        &stream(event, n),
        &tok,
        event,
        &user,
        "300",
    ])];
    if again {
        return singles(calls);
    }
    // Their score is the join's Unix second (ties then order by the random token); here one
    // second per user, so the order is the users' and every run is the same.
    let score = (NOW_S + n as u64).to_string();
    let data = queue_data(event, n, "waiting");
    let pipeline = vec![
        cmd(&["SET", &queue_key(n), &data, "EX", "1800"]),
        cmd(&["ZADD", &event_zset(event), &score, &tok]),
        cmd(&["EXPIRE", &event_zset(event), "3600"]),
        cmd(&["SET", &heartbeat(n), "alive", "EX", "300"]),
        cmd(&["ZADD", &position_index(event), &score, &tok]),
        cmd(&["EXPIRE", &position_index(event), "3600"]),
    ];
    let mut trips = vec![calls, pipeline];
    trips.extend(singles(vec![
        // the goroutine: the entry by its ID (the user's stream holds that one entry)
        cmd(&["XRANGE", &stream(event, n), "-", "+"]),
        cmd(&["ZRANK", &position_index(event), &tok]),
        cmd(&["SET", &queue_key(n), &data, "EX", "1800"]),
    ]));
    trips
}

/// GET /queue/status for a waiting user `n`.
pub fn status(event: &str, n: usize) -> Trips {
    let tok = token(n);
    let m = metrics(event);
    let now = NOW_S;
    let window = |secs: u64| cmd(&["ZCOUNT", &m, &(now - secs).to_string(), &now.to_string()]);
    singles(vec![
        cmd(&["EXISTS", &heartbeat(n)]),
        cmd(&["EXPIRE", &heartbeat(n), "300"]),
        cmd(&["GET", &queue_key(n)]),
        cmd(&["ZRANK", &position_index(event), &tok]),
        window(60),
        window(300),
        window(900),
        cmd(&["ZRANK", &event_zset(event), &tok]),
    ])
}

/// POST /queue/enter for user `n`: admitted through the bucket (`admitted`), or refused for
/// its position.
pub fn enter(event: &str, n: usize, admitted: bool) -> Trips {
    let tok = token(n);
    let mut calls = vec![
        cmd(&["GET", &queue_key(n)]),
        cmd(&["ZRANK", &event_zset(event), &tok]),
    ];
    if !admitted {
        return singles(calls);
    }
    let reservation = format!(
        "{{\"event_id\":\"{event}\",\"granted_at\":\"2026-12-01T23:45:10.123456789+09:00\",\"user_id\":\"{}\",\"waiting_token\":\"{tok}\"}}",
        user_id(n)
    );
    let now = NOW_S.to_string();
    calls.extend([
        // capacity and refill raised so that every measured enter is admitted
        cmd(&[
            "EVAL",
            BUCKET_LUA,
            "1",
            &format!("admission:bucket:{event}"),
            "1000000000",
            "1000000",
            "1",
            &now,
        ]),
        cmd(&[
            "SET",
            &format!("queue:reservation:{}", token(n + 1_000_000_000)),
            &reservation,
            "EX",
            "30",
        ]),
        cmd(&[
            "SET",
            &queue_key(n),
            &queue_data(event, n, "ready"),
            "EX",
            "1800",
        ]),
        cmd(&["DEL", &heartbeat(n)]),
        cmd(&["ZREM", &event_zset(event), &tok]),
        cmd(&["ZADD", &metrics(event), &now, &user_id(n)]),
        cmd(&[
            "ZREMRANGEBYSCORE",
            &metrics(event),
            "-inf",
            &(NOW_S - 3600).to_string(),
        ]),
    ]);
    singles(calls)
}

/// DELETE /queue/leave for user `n`, whose join got stream entry `entry_id`.
pub fn leave(event: &str, n: usize, entry_id: &str) -> Trips {
    singles(vec![
        cmd(&["GET", &queue_key(n)]),
        cmd(&["DEL", &heartbeat(n)]),
        cmd(&["DEL", &queue_key(n)]),
        cmd(&["ZREM", &event_zset(event), &token(n)]),
        cmd(&["XRANGE", &stream(event, n), "-", "+"]),
        cmd(&["XDEL", &stream(event, n), entry_id]),
    ])
}

/// Their hold or release script for `seat` (user `n`).
pub fn seat(s: &GatewayScripts, event: &str, op: Op, n: usize, seat: &str) -> Trips {
    let hold_key = format!("hold:seat:{seat}");
    let c = if op == Op::Hold {
        cmd(&[
            "EVALSHA",
            &s.hold,
            "3",
            &seat_status(event),
            &hold_key,
            &inventory(event),
            seat,
            &user_id(n),
            "600",
        ])
    } else {
        cmd(&[
            "EVALSHA",
            &s.release,
            "3",
            &seat_status(event),
            &hold_key,
            &inventory(event),
            seat,
        ])
    };
    vec![vec![c]]
}

/// Ten tokens at the front of the event's zset that never enter: every measured enter then
/// stands at position 11, past the top-10 bypass, and goes through the bucket as most do.
pub fn front_blockers(event: &str) -> Vec<Cmd> {
    (0..10)
        .map(|i| cmd(&["ZADD", &event_zset(event), "0", &format!("blocker-{i}")]))
        .collect()
}

/// The seats, all AVAILABLE, and the inventory counter.
pub fn setup_seats(con: &mut Connection, event: &str, seats: &[String]) {
    for chunk in seats.chunks(1000) {
        let mut c = redis::cmd("HSET");
        c.arg(seat_status(event));
        for s in chunk {
            c.arg(s).arg("AVAILABLE");
        }
        let _: i64 = c.query(con).expect("HSET");
    }
    let _: () = redis::cmd("SET")
        .arg(inventory(event))
        .arg(seats.len())
        .query(con)
        .expect("SET");
}
