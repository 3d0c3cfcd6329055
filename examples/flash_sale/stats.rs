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

/// What the users saw, summed over the workers.
#[derive(Default)]
pub struct Outcome {
    pub joined: u64,
    pub retried_joins: u64,
    pub duplicates_refused: u64,
    pub left_impatient: u64,
    pub left_sold_out_waiting: u64,
    pub gave_up_sold_out: u64,
    pub lapsed_waiting: u64,
    pub admitted: u64,
    pub holds_made: u64,
    pub abandoned_holds: Vec<u64>,
    pub late_holds: Vec<u64>,
    pub passes_lost: u64,
    pub limit_refusals: u64,
    pub bought: Vec<(usize, u32)>,
    pub buyers: u64,
    pub inventory_samples: u64,
    pub inventory_mismatches: Vec<String>,
    pub unexpected: Vec<String>,
    pub unexpected_total: u64,
}

impl Outcome {
    pub fn merge(&mut self, o: Outcome) {
        self.joined += o.joined;
        self.retried_joins += o.retried_joins;
        self.duplicates_refused += o.duplicates_refused;
        self.left_impatient += o.left_impatient;
        self.left_sold_out_waiting += o.left_sold_out_waiting;
        self.gave_up_sold_out += o.gave_up_sold_out;
        self.lapsed_waiting += o.lapsed_waiting;
        self.admitted += o.admitted;
        self.holds_made += o.holds_made;
        self.abandoned_holds.extend(o.abandoned_holds);
        self.late_holds.extend(o.late_holds);
        self.passes_lost += o.passes_lost;
        self.limit_refusals += o.limit_refusals;
        self.bought.extend(o.bought);
        self.buyers += o.buyers;
        self.inventory_samples += o.inventory_samples;
        self.inventory_mismatches.extend(o.inventory_mismatches);
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
}
