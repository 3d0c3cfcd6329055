//! The floor: one bare command per operation with comparable keys and values, what any
//! design pays at least.

use redis::Cmd;

use crate::design::{hex32, now_ms, user_id, Op, Subject};
use crate::seed;

pub fn stat(op: Op) -> &'static str {
    match op {
        Op::Enqueue => "xadd",
        Op::Status => "zrank",
        Op::Admit => "set",
        Op::Hold | Op::Release => "hset",
    }
}

pub fn what(op: Op) -> &'static str {
    match op {
        Op::Enqueue => "XADD (4 fields)",
        Op::Status => "ZRANK",
        Op::Admit => "SET .. EX",
        Op::Hold | Op::Release => "HSET",
    }
}

pub fn cmd(event: &str, op: Op, s: &Subject) -> Cmd {
    let user = user_id(s.user);
    let mut c;
    match op {
        Op::Enqueue => {
            c = redis::cmd("XADD");
            c.arg(format!("floor:stream:{{{event}}}"))
                .arg("*")
                .arg("token")
                .arg(hex32(s.user, 1))
                .arg("event_id")
                .arg(event)
                .arg("user_id")
                .arg(&user)
                .arg("timestamp")
                .arg(now_ms());
        }
        Op::Status => {
            c = redis::cmd("ZRANK");
            c.arg(seed::waiting_key(event)).arg(&user);
        }
        Op::Admit => {
            c = redis::cmd("SET");
            c.arg(format!("floor:pass:{{{event}}}:user:{user}"))
                .arg(hex32(s.user, 2))
                .arg("EX")
                .arg(900);
        }
        Op::Hold | Op::Release => {
            c = redis::cmd("HSET");
            c.arg(format!("floor:seat:status:{event}"))
                .arg(s.seat)
                .arg(if op == Op::Hold { "HOLD" } else { "AVAILABLE" });
        }
    }
    c
}
