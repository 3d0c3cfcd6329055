//! The seed's design: its Lua scripts (`benches/lua/`, loaded once with SCRIPT LOAD, run with
//! EVALSHA) over Streams, ZSETs, hashes and strings, with the seed's own key names.

use redis::{Cmd, Connection};

use crate::design::{hex32, now_ms, request_id, user_id, Op, Subject, ADMIT_RATE};

/// INFO commandstats times every script as EVALSHA.
pub const STAT: &str = "evalsha";

/// The seed's script for `op`: its file name (shown in the tables) and its source.
pub fn script(op: Op) -> (&'static str, &'static str) {
    macro_rules! lua {
        ($file:literal) => {
            ($file, include_str!(concat!("../lua/", $file)))
        };
    }
    match op {
        Op::Enqueue => lua!("enqueue_atomic_streams.lua"),
        Op::Status => lua!("status_position.lua"),
        Op::Admit => lua!("admit_token_bucket.lua"),
        Op::Hold => lua!("hold_seat_atomic.lua"),
        Op::Release => lua!("release_seat_atomic.lua"),
    }
}

/// The scripts' SHA1s by operation, loaded once (FLUSHALL keeps them).
#[derive(Clone)]
pub struct Scripts([String; Op::ALL.len()]);

impl Scripts {
    pub fn load(con: &mut Connection) -> Scripts {
        Scripts(Op::ALL.map(|op| {
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(script(op).1)
                .query(con)
                .expect("SCRIPT LOAD")
        }))
    }

    fn sha(&self, op: Op) -> &str {
        &self.0[op as usize]
    }
}

/// The line: a ZSET of user IDs by join time (the floor's ZRANK reads it too).
pub fn waiting_key(event: &str) -> String {
    format!("queue:event:{{{event}}}:waiting")
}

/// One stream per waiting user.
pub fn stream_key(event: &str, user: &str) -> String {
    format!("stream:event:{{{event}}}:user:{user}")
}

/// Marks a join request as seen for 300 s.
pub fn dedupe_key(user: &str) -> String {
    format!("dedupe:{}", request_id(user))
}

fn seat_status_key(event: &str) -> String {
    format!("seat:status:{event}")
}

fn inventory_key(event: &str) -> String {
    format!("inventory:{event}")
}

pub fn cmd(event: &str, op: Op, scripts: &Scripts, s: &Subject) -> Cmd {
    let user = user_id(s.user);
    let mut c = redis::cmd("EVALSHA");
    c.arg(scripts.sha(op));
    match op {
        Op::Enqueue => {
            c.arg(3)
                .arg(dedupe_key(&user))
                .arg(stream_key(event, &user))
                .arg(waiting_key(event))
                .arg(hex32(s.user, 1))
                .arg(event)
                .arg(&user)
                .arg(300)
                .arg(now_ms());
        }
        Op::Status => {
            c.arg(1).arg(waiting_key(event)).arg(&user);
        }
        Op::Admit => {
            c.arg(3)
                .arg(waiting_key(event))
                .arg(format!("queue:event:{{{event}}}:bucket"))
                .arg(format!("pass:event:{{{event}}}:user:{user}"))
                .arg(&user)
                .arg(now_ms())
                .arg(ADMIT_RATE)
                .arg(ADMIT_RATE)
                .arg(900)
                .arg(hex32(s.user, 2));
        }
        Op::Hold | Op::Release => {
            c.arg(3)
                .arg(seat_status_key(event))
                .arg(inventory_key(event))
                .arg(format!("hold:seat:{}", s.seat))
                .arg(s.seat);
            if op == Op::Hold {
                c.arg(&user).arg(600);
            }
        }
    }
    c
}

/// The seats, all AVAILABLE, and the inventory counter.
pub fn setup(con: &mut Connection, event: &str, seats: &[String]) {
    for chunk in seats.chunks(1000) {
        let mut c = redis::cmd("HSET");
        c.arg(seat_status_key(event));
        for seat in chunk {
            c.arg(seat).arg("AVAILABLE");
        }
        let _: i64 = c.query(con).expect("HSET");
    }
    let _: () = redis::cmd("SET")
        .arg(inventory_key(event))
        .arg(seats.len())
        .query(con)
        .expect("SET");
}
