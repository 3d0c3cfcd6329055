//! What `INFO seatq` reports: per-command calls, failures and latency percentiles, errors by
//! code, gauges summed over the events in the keyspace, and counters of what happened.
//!
//! Latencies go into a log-linear histogram (8 buckets per power of two, <= 12.5% error) of
//! fixed size, so memory stays bounded however long the server runs. Gauges are kept by
//! deltas: every place that stores, changes or frees an event reports it (free may run on a
//! lazy-free thread, hence atomics).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::event::{Effect, Event};

const SUB_BUCKETS: u64 = 8;
const BUCKETS: usize = 16 + 60 * SUB_BUCKETS as usize;

#[derive(Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    pub count: u64,
    pub sum_ns: u64,
    pub max_ns: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: vec![0; BUCKETS],
            count: 0,
            sum_ns: 0,
            max_ns: 0,
        }
    }
}

fn bucket_of(ns: u64) -> usize {
    if ns < 16 {
        return ns as usize;
    }
    let msb = 63 - u64::from(ns.leading_zeros());
    let sub = (ns >> (msb - 3)) & (SUB_BUCKETS - 1);
    (16 + (msb - 4) * SUB_BUCKETS + sub) as usize
}

/// The largest value that falls in bucket `b`.
fn bucket_top(b: usize) -> u64 {
    if b < 16 {
        return b as u64;
    }
    let (octave, sub) = (
        (b as u64 - 16) / SUB_BUCKETS + 4,
        (b as u64 - 16) % SUB_BUCKETS,
    );
    let step = 1u64 << (octave - 3);
    (1u64 << octave) + (sub + 1) * step - 1
}

impl Histogram {
    pub fn record(&mut self, ns: u64) {
        self.buckets[bucket_of(ns).min(BUCKETS - 1)] += 1;
        self.count += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    /// The `q` quantile (0..=1), as the top of its bucket, never above the maximum seen.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_top(b).min(self.max_ns);
            }
        }
        self.max_ns
    }
}

#[derive(Default, Clone)]
pub struct CommandStats {
    pub failed: u64,
    pub latency: Histogram,
}

#[derive(Default)]
struct Calls {
    commands: HashMap<&'static str, CommandStats>,
    errors: HashMap<&'static str, u64>,
}

static CALLS: Mutex<Option<Calls>> = Mutex::new(None);

/// Gauges summed over stored events: events, waiting tickets, live sessions, holds.
static GAUGES: [AtomicI64; 4] = [const { AtomicI64::new(0) }; 4];

pub static HOLDS_EXPIRED: AtomicU64 = AtomicU64::new(0);
pub static PASSES_ISSUED: AtomicU64 = AtomicU64::new(0);
pub static TICKETS_EXPIRED: AtomicU64 = AtomicU64::new(0);
pub static DUPLICATES: AtomicU64 = AtomicU64::new(0);
pub static JOURNAL_ENTRIES: AtomicU64 = AtomicU64::new(0);
pub static TIMER_RUNS: AtomicU64 = AtomicU64::new(0);

/// A command finished: its latency, and the error code it answered, if any.
pub fn record_call(command: &'static str, ns: u64, error: Option<&'static str>) {
    let mut guard = CALLS.lock().unwrap_or_else(|e| e.into_inner());
    let calls = guard.get_or_insert_with(Calls::default);
    let stats = calls.commands.entry(command).or_default();
    stats.latency.record(ns);
    if let Some(code) = error {
        stats.failed += 1;
        *calls.errors.entry(code).or_default() += 1;
        if code == "DUPLICATE" {
            DUPLICATES.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Per-command statistics and counts per error code, each sorted by name.
pub struct Snapshot {
    pub commands: Vec<(&'static str, CommandStats)>,
    pub errors: Vec<(&'static str, u64)>,
}

pub fn snapshot() -> Snapshot {
    let guard = CALLS.lock().unwrap_or_else(|e| e.into_inner());
    let Some(calls) = guard.as_ref() else {
        return Snapshot {
            commands: Vec::new(),
            errors: Vec::new(),
        };
    };
    let mut commands: Vec<_> = calls
        .commands
        .iter()
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    commands.sort_by_key(|c| c.0);
    let mut errors: Vec<_> = calls.errors.iter().map(|(k, v)| (*k, *v)).collect();
    errors.sort_unstable();
    Snapshot { commands, errors }
}

/// An event's share of the gauges.
#[derive(Clone, Copy)]
pub struct Gauges([i64; 4]);

impl Gauges {
    pub fn of(event: &Event) -> Self {
        Self([
            1,
            event.line.waiting() as i64,
            event.sessions.len() as i64,
            event.inventory.holds.len() as i64,
        ])
    }
}

fn add_gauges(values: [i64; 4], sign: i64) {
    for (g, v) in GAUGES.iter().zip(values) {
        g.fetch_add(sign * v, Ordering::Relaxed);
    }
}

/// An event entered the keyspace (created, loaded, restored, copied).
pub fn event_stored(event: &Event) {
    add_gauges(Gauges::of(event).0, 1);
}

/// An event left the keyspace (freed, possibly on a lazy-free thread).
pub fn event_freed(event: &Event) {
    add_gauges(Gauges::of(event).0, -1);
}

/// A stored event changed: its gauges moved from `before`.
pub fn event_changed(before: Gauges, event: &Event) {
    let after = Gauges::of(event).0;
    add_gauges(
        [
            0,
            after[1] - before.0[1],
            after[2] - before.0[2],
            after[3] - before.0[3],
        ],
        1,
    );
}

pub fn journal_entry() {
    JOURNAL_ENTRIES.fetch_add(1, Ordering::Relaxed);
}

/// Counts what an applied effect did.
pub fn count_effect(effect: &Effect) {
    let counter = match effect {
        Effect::HoldExpired { .. } => &HOLDS_EXPIRED,
        Effect::Admitted { .. } => &PASSES_ISSUED,
        Effect::Expired { .. } => &TICKETS_EXPIRED,
        _ => return,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// (events, tickets waiting, sessions, holds).
pub fn gauges() -> [i64; 4] {
    [0, 1, 2, 3].map(|i| GAUGES[i].load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for ns in [0u64, 1, 15, 16, 17, 100, 1_000, 12_345, 999_999, 1 << 40] {
            let b = bucket_of(ns);
            assert!(b >= last);
            last = b;
            assert!(bucket_top(b) >= ns, "{ns} fits its bucket");
            assert!(
                bucket_top(b) as f64 <= ns as f64 * 1.125 + 1.0,
                "{ns}: bucket too wide"
            );
        }
    }

    #[test]
    fn quantiles_within_an_eighth() {
        let mut h = Histogram::default();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        for (q, exact) in [(0.5, 500_000.0), (0.95, 950_000.0), (0.99, 990_000.0)] {
            let got = h.quantile(q) as f64;
            assert!(got >= exact && got <= exact * 1.125, "q{q}: {got}");
        }
        assert_eq!(h.quantile(1.0), 1_000_000);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }
}
