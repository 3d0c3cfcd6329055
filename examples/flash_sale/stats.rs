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
    pub joined: u64,
    pub rejoined: u64,
    pub retried_joins: u64,
    pub duplicates_refused: u64,
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
    /// Acknowledged joins (serial, user), admissions seen by STATUS, claims (serials).
    pub ack_joins: Vec<(u32, u32)>,
    pub ack_admitted: Vec<u32>,
    pub ack_claims: Vec<u32>,
    pub expectations: Vec<Expectation>,
    pub linger_polls_ok: u64,
    pub lingerers_checked: u64,
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
        self.joined += o.joined;
        self.rejoined += o.rejoined;
        self.retried_joins += o.retried_joins;
        self.duplicates_refused += o.duplicates_refused;
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
        self.linger_failures.extend(o.linger_failures);
        self.reconnects += o.reconnects;
        self.replies_lost += o.replies_lost;
        self.refused_not_primary += o.refused_not_primary;
        self.resolved += o.resolved;
        for (what, n) in o.fault_casualties {
            *self.fault_casualties.entry(what).or_default() += n;
        }
        self.unexpected_total += o.unexpected_total;
        for problem in o.unexpected {
            if self.unexpected.len() < SHOWN_PROBLEMS {
                self.unexpected.push(problem);
            }
        }
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
