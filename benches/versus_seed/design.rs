//! The designs compared and the operations they run: each operation is built by the seed's
//! Lua side (`seed`), by seatq (`seatq`) or as one bare command (`floor`).

use std::time::{SystemTime, UNIX_EPOCH};

use redis::{Cmd, Connection};
use seatq_testkit::rng::splitmix64;

use crate::seed::Scripts;
use crate::{floor, seatq, seed};

/// Admission budget for both designs: the highest RATE seatq takes, so that no ADMIT is refused
/// for rate.
pub const ADMIT_RATE: u64 = 20_000;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Op {
    Enqueue,
    Status,
    Admit,
    Hold,
    Release,
}

impl Op {
    pub const ALL: [Op; 5] = [Op::Enqueue, Op::Status, Op::Admit, Op::Hold, Op::Release];

    pub fn name(self) -> &'static str {
        match self {
            Op::Enqueue => "ENQUEUE",
            Op::Status => "STATUS",
            Op::Admit => "ADMIT",
            Op::Hold => "HOLD",
            Op::Release => "RELEASE",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// The seed's Lua scripts over its own keys.
    Seed,
    /// seatq's commands on one event key.
    Seatq,
    /// One bare Redis command with comparable keys and values.
    Floor,
}

/// What one call is about: the user (by number), its ticket (seatq only; the seed and the
/// floor name users) and the seat.
pub struct Subject<'a> {
    pub user: usize,
    pub ticket: &'a str,
    pub seat: &'a str,
    /// seatq: the user's pass (SEAT.HOLD with REQUIRE-PASS on, the default).
    pub pass: &'a str,
}

/// 36 characters, UUID-shaped; the first 8 hex digits make the IDs sort in number order.
pub fn user_id(n: usize) -> String {
    format!("{:08x}-{:04x}-4000-8000-{:012x}", n, n % 65536, n)
}

/// The idempotency key of a user's join: the seed's dedupe key, seatq's IDEMPOTENCY.
pub fn request_id(user: &str) -> String {
    format!("req-{user}")
}

/// 32 hex characters, like seatq's pass (and the seed's token).
pub fn hex32(n: usize, salt: u64) -> String {
    let a = splitmix64(n as u64 ^ salt);
    format!("{:016x}{:016x}", a, splitmix64(a))
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

#[derive(Clone)]
pub struct Design {
    pub label: &'static str,
    pub kind: Kind,
    /// seatq: the event key. Seed and floor: the seed's event name (its key prefixes).
    pub key: String,
    /// seatq: the event's journal setting (on by default, as in the product).
    journal: bool,
    /// seatq: QUEUE.ENQUEUE passes an IDEMPOTENCY key, like the seed's dedupe key (default).
    idempotency: bool,
    /// In the commands section: the only operation this design runs (a variant of ENQUEUE).
    only: Option<Op>,
}

impl Design {
    pub fn new(label: &'static str, kind: Kind, key: &str) -> Design {
        Design {
            label,
            kind,
            key: key.to_string(),
            journal: true,
            idempotency: true,
            only: None,
        }
    }

    pub fn without_journal(mut self) -> Design {
        self.journal = false;
        self
    }

    /// QUEUE.ENQUEUE without IDEMPOTENCY (one ticket per user is native to seatq).
    pub fn without_idempotency(mut self) -> Design {
        self.idempotency = false;
        self
    }

    /// A variant row in the commands section: it runs `op` and nothing else.
    pub fn running_only(mut self, op: Op) -> Design {
        self.only = Some(op);
        self
    }

    pub fn runs(&self, op: Op) -> bool {
        self.only.is_none_or(|only| only == op)
    }

    /// How this seatq variant differs from the default, for the targets block.
    pub fn variant(&self) -> String {
        let mut v = Vec::new();
        if !self.journal {
            v.push("journal off");
        }
        if !self.idempotency {
            v.push("no IDEMPOTENCY");
        }
        v.join(", ")
    }

    /// The INFO commandstats entry that times `op` in this design.
    pub fn stat(&self, op: Op) -> &'static str {
        match self.kind {
            Kind::Seed => seed::STAT,
            Kind::Seatq => seatq::stat(op),
            Kind::Floor => floor::stat(op),
        }
    }

    /// What the row runs, for the tables.
    pub fn what(&self, op: Op) -> &'static str {
        match self.kind {
            Kind::Seed => seed::script(op).0,
            Kind::Seatq => seatq::what(op, self.idempotency),
            Kind::Floor => floor::what(op),
        }
    }

    pub fn cmd(&self, op: Op, scripts: &Scripts, s: &Subject) -> Cmd {
        match self.kind {
            Kind::Seed => seed::cmd(&self.key, op, scripts, s),
            Kind::Seatq => seatq::cmd(&self.key, self.idempotency, op, s),
            Kind::Floor => floor::cmd(&self.key, op, s),
        }
    }

    /// Creates the event (seatq) or the seed's keys, with `seats`.
    pub fn setup(&self, con: &mut Connection, seats: &[String]) {
        match self.kind {
            Kind::Seed => seed::setup(con, &self.key, seats),
            Kind::Seatq => seatq::setup(con, &self.key, self.journal, seats),
            Kind::Floor => {}
        }
    }
}
