//! What the workers count: per-command latencies and error replies, and what the users saw.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::Value;

/// Unexpected replies described in the report (all are counted).
pub const SHOWN_PROBLEMS: usize = 10;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Command {
    Enqueue,
    Status,
    Admit,
    Leave,
    SeatStatus,
    SeatHold,
    SeatConfirm,
    SeatInfo,
}

pub const COMMANDS: [Command; 8] = [
    Command::Enqueue,
    Command::Status,
    Command::Admit,
    Command::Leave,
    Command::SeatStatus,
    Command::SeatHold,
    Command::SeatConfirm,
    Command::SeatInfo,
];

impl Command {
    pub fn name(self) -> &'static str {
        match self {
            Command::Enqueue => "QUEUE.ENQUEUE",
            Command::Status => "QUEUE.STATUS",
            Command::Admit => "QUEUE.ADMIT",
            Command::Leave => "QUEUE.LEAVE",
            Command::SeatStatus => "SEAT.STATUS",
            Command::SeatHold => "SEAT.HOLD",
            Command::SeatConfirm => "SEAT.CONFIRM",
            Command::SeatInfo => "SEAT.INFO",
        }
    }
}

/// Client-observed latencies and error replies of one command.
#[derive(Default)]
pub struct CommandStats {
    pub latencies_us: Vec<u32>,
    pub errors: BTreeMap<String, u64>,
}

pub struct Stats(pub [CommandStats; COMMANDS.len()]);

impl Stats {
    pub fn new() -> Stats {
        Stats(std::array::from_fn(|_| CommandStats::default()))
    }

    pub fn record(&mut self, command: Command, took: Duration, reply: &Value) {
        let entry = &mut self.0[command as usize];
        entry
            .latencies_us
            .push(took.as_micros().min(u32::MAX as u128) as u32);
        if let Value::ServerError(e) = reply {
            *entry.errors.entry(e.code().to_string()).or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: Stats) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            mine.latencies_us.extend(theirs.latencies_us);
            for (code, n) in theirs.errors {
                *mine.errors.entry(code).or_default() += n;
            }
        }
    }
}

/// How late the users' requests went out after they were due (the simulator's own lag: a
/// loaded machine makes clients slow, and their tickets, calls and holds lapse), by powers of
/// two of milliseconds.
#[derive(Default, Clone)]
pub struct Lag {
    /// buckets[k]: requests late by [2^(k-1), 2^k) ms (bucket 0: under 1 ms).
    pub buckets: [u64; 24],
    pub max_us: u64,
}

impl Lag {
    pub fn record(&mut self, late_us: u64) {
        let ms = late_us / 1000;
        let k = (64 - ms.leading_zeros() as usize).min(23);
        self.buckets[k] += 1;
        self.max_us = self.max_us.max(late_us);
    }

    pub fn merge(&mut self, o: &Lag) {
        for (a, b) in self.buckets.iter_mut().zip(o.buckets) {
            *a += b;
        }
        self.max_us = self.max_us.max(o.max_us);
    }

    /// The upper bound (ms) of the bucket holding the `q` quantile.
    pub fn quantile_ms(&self, q: f64) -> u64 {
        let total: u64 = self.buckets.iter().sum();
        let mut seen = 0;
        for (k, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen as f64 >= q * total as f64 {
                return 1 << k;
            }
        }
        1 << 23
    }

    /// Requests later than `ms`.
    pub fn over_ms(&self, ms: u64) -> u64 {
        let k = (64 - ms.leading_zeros() as usize).min(23);
        self.buckets[k + 1..].iter().sum()
    }
}

/// What the journal must show for a ticket, from what its user did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Expect {
    /// Stopped polling while waiting: `expired` (or, if called before the heartbeat lapsed,
    /// a session that ended as a no-show).
    Lapsed,
    /// Called and never claimed: the session ended as `no_show`.
    NoShow,
    /// Held and closed the tab: the session ended as `expired` (its pass lapsed).
    SessionExpired,
    /// Ended the session with QUEUE.LEAVE: `left`.
    SessionLeft,
    /// Bought: the session ended as `completed`.
    Completed,
    /// Left the line with QUEUE.LEAVE: `left` (or a session ended `left`, if the ticket was
    /// called just before).
    Left,
}

impl Expect {
    pub fn name(self) -> &'static str {
        match self {
            Expect::Lapsed => "lapsed while waiting",
            Expect::NoShow => "no-show",
            Expect::SessionExpired => "session expired",
            Expect::SessionLeft => "session left",
            Expect::Completed => "completed",
            Expect::Left => "left the line",
        }
    }
}

/// An expectation about one ticket: what, and the span of the user's activity (for `--chaos`,
/// which excuses expectations that a fault overlapped).
#[derive(Clone, Copy, Debug)]
pub struct Expectation {
    pub serial: u32,
    pub expect: Expect,
    pub from_us: u64,
    pub to_us: u64,
}

/// What the users saw, summed over the workers.
#[derive(Default)]
pub struct Outcome {
    pub lag: Lag,
    pub joined: u64,
    pub rejoined: u64,
    pub retried_joins: u64,
    pub duplicates_refused: u64,
    /// Retried joins refused as DUPLICATE without the ticket, which had lapsed meanwhile.
    pub duplicates_after_lapse: u64,
    /// Purchases confirmed after the buyer's pass had lapsed (the hold was still valid).
    pub bought_after_pass: u64,
    pub left_impatient: u64,
    pub left_sold_out_waiting: u64,
    pub abandoned_waiting: u64,
    pub probes: u64,
    pub gave_up_sold_out: u64,
    pub browsed_and_left: u64,
    /// Tickets that lapsed although their user meant to poll (the client was too slow).
    pub lapsed_waiting: u64,
    /// Calls a user learned of too late to claim (polls too far apart).
    pub missed_calls: u64,
    pub admitted_seen: u64,
    pub claimed: u64,
    pub no_shows: u64,
    pub holds_made: u64,
    pub abandoned_holds: Vec<u64>,
    /// Holds given up whose number the client never learned (the reply was lost).
    pub holds_without_number: u64,
    pub late_holds: Vec<u64>,
    pub late_confirms: u64,
    /// Lapses the server reported before the deadline it had given (module bugs).
    pub premature_lapses: u64,
    pub passes_lost: u64,
    pub limit_refusals: u64,
    /// Seats whose SEAT.CONFIRM reply came: acknowledged sales.
    pub bought: Vec<(usize, u32)>,
    /// Seats found sold to their user after a SEAT.CONFIRM whose reply was lost.
    pub bought_unacknowledged: Vec<(usize, u32)>,
    pub buyers: u64,
    pub inventory_samples: u64,
    pub inventory_mismatches: Vec<String>,
    pub unexpected: Vec<String>,
    pub unexpected_total: u64,
    /// Unexpected replies by kind (what was sent and the error code): how many, and when the
    /// first came (seconds since the start).
    pub unexpected_kinds: BTreeMap<String, (u64, f64)>,
    /// Acknowledged joins (serial, user), admissions seen by STATUS, claims (serials).
    pub ack_joins: Vec<(u32, u32)>,
    pub ack_admitted: Vec<u32>,
    pub ack_claims: Vec<u32>,
    pub expectations: Vec<Expectation>,
    pub linger_polls_ok: u64,
    pub lingerers_checked: u64,
    /// Lingering users whose session lapsed between two polls (the client came too late).
    pub lingerers_lapsed: u64,
    pub linger_failures: Vec<String>,
    // --chaos: the connection and what faults explain.
    pub reconnects: u64,
    pub replies_lost: u64,
    pub refused_not_primary: u64,
    pub resolved: u64,
    pub fault_casualties: BTreeMap<String, u64>,
}

impl Outcome {
    pub fn merge(&mut self, o: Outcome) {
        self.lag.merge(&o.lag);
        self.joined += o.joined;
        self.rejoined += o.rejoined;
        self.retried_joins += o.retried_joins;
        self.duplicates_refused += o.duplicates_refused;
        self.duplicates_after_lapse += o.duplicates_after_lapse;
        self.bought_after_pass += o.bought_after_pass;
        self.left_impatient += o.left_impatient;
        self.left_sold_out_waiting += o.left_sold_out_waiting;
        self.abandoned_waiting += o.abandoned_waiting;
        self.probes += o.probes;
        self.gave_up_sold_out += o.gave_up_sold_out;
        self.browsed_and_left += o.browsed_and_left;
        self.lapsed_waiting += o.lapsed_waiting;
        self.missed_calls += o.missed_calls;
        self.admitted_seen += o.admitted_seen;
        self.claimed += o.claimed;
        self.no_shows += o.no_shows;
        self.holds_made += o.holds_made;
        self.abandoned_holds.extend(o.abandoned_holds);
        self.holds_without_number += o.holds_without_number;
        self.late_holds.extend(o.late_holds);
        self.late_confirms += o.late_confirms;
        self.premature_lapses += o.premature_lapses;
        self.passes_lost += o.passes_lost;
        self.limit_refusals += o.limit_refusals;
        self.bought.extend(o.bought);
        self.bought_unacknowledged.extend(o.bought_unacknowledged);
        self.buyers += o.buyers;
        self.inventory_samples += o.inventory_samples;
        self.inventory_mismatches.extend(o.inventory_mismatches);
        self.ack_joins.extend(o.ack_joins);
        self.ack_admitted.extend(o.ack_admitted);
        self.ack_claims.extend(o.ack_claims);
        self.expectations.extend(o.expectations);
        self.linger_polls_ok += o.linger_polls_ok;
        self.lingerers_checked += o.lingerers_checked;
        self.lingerers_lapsed += o.lingerers_lapsed;
        self.linger_failures.extend(o.linger_failures);
        self.reconnects += o.reconnects;
        self.replies_lost += o.replies_lost;
        self.refused_not_primary += o.refused_not_primary;
        self.resolved += o.resolved;
        for (what, n) in o.fault_casualties {
            *self.fault_casualties.entry(what).or_default() += n;
        }
        self.unexpected_total += o.unexpected_total;
        for (kind, (n, at)) in o.unexpected_kinds {
            let e = self.unexpected_kinds.entry(kind).or_insert((0, at));
            e.0 += n;
            e.1 = e.1.min(at);
        }
        for problem in o.unexpected {
            if self.unexpected.len() < SHOWN_PROBLEMS {
                self.unexpected.push(problem);
            }
        }
    }

    /// Counts an unexpected reply by kind, first seen `at` seconds into the sale.
    pub fn count_unexpected(&mut self, kind: String, at: f64) {
        let e = self.unexpected_kinds.entry(kind).or_insert((0, at));
        e.0 += 1;
        e.1 = e.1.min(at);
    }

    pub fn record_unexpected(&mut self, problem: String) {
        self.unexpected_total += 1;
        if self.unexpected.len() < SHOWN_PROBLEMS {
            self.unexpected.push(problem);
        }
    }

    pub fn expect(&mut self, serial: u32, expect: Expect, from_us: u64, to_us: u64) {
        self.expectations.push(Expectation {
            serial,
            expect,
            from_us,
            to_us,
        });
    }
}
