//! What `INFO seatq` reports, shaped for Prometheus: counters that only grow (calls, errors by
//! code, every kind of state change), latency as cumulative histogram buckets per command (so
//! `rate()` and `histogram_quantile()` work over any window and sum across nodes), and gauges
//! summed over the events in the keyspace.
//!
//! Gauges are kept by deltas: every place that stores, changes or frees an event reports it
//! (free may run on a lazy-free thread, hence atomics).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::event::{Effect, Event};

/// Upper bounds of the latency buckets, in microseconds (the last bucket is +Inf).
pub const LATENCY_BOUNDS_US: [u64; 14] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000,
];

/// One command's calls (or the timer's runs), failures, total time and latency buckets (not
/// cumulative here).
#[derive(Clone, Default)]
pub struct CallStats {
    pub calls: u64,
    pub failed: u64,
    pub sum_ns: u64,
    pub buckets: [u64; LATENCY_BOUNDS_US.len() + 1],
}

impl CallStats {
    fn record(&mut self, ns: u64) {
        self.calls += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
        let b = LATENCY_BOUNDS_US
            .iter()
            .position(|&bound| ns <= bound * 1000)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.buckets[b] += 1;
    }

    /// Calls at or under each bound, the last one (+Inf) being every call.
    pub fn cumulative(&self) -> impl Iterator<Item = u64> + '_ {
        self.buckets.iter().scan(0, |sum, &n| {
            *sum += n;
            Some(*sum)
        })
    }
}

#[derive(Default)]
struct Calls {
    commands: BTreeMap<&'static str, CallStats>,
    errors: BTreeMap<&'static str, u64>,
    timer: CallStats,
}

static CALLS: Mutex<Option<Calls>> = Mutex::new(None);

/// Gauges summed over stored events: events, waiting tickets, sessions, holds.
static GAUGES: [AtomicI64; 4] = [const { AtomicI64::new(0) }; 4];

/// Every kind of state change, by the effect's name.
const EFFECT_NAMES: [&str; 27] = [
    "created",
    "configured",
    "joined",
    "touched",
    "left",
    "expired",
    "dequeued",
    "remembered",
    "purged",
    "compacted",
    "opened",
    "paused",
    "resumed",
    "closed",
    "reopened",
    "admitted",
    "claimed",
    "renewed",
    "session_ended",
    "seats_added",
    "stock_added",
    "held",
    "released",
    "sold",
    "hold_expired",
    "granted",
    "ranked",
];

static EFFECTS: [AtomicU64; EFFECT_NAMES.len()] = [const { AtomicU64::new(0) }; EFFECT_NAMES.len()];
pub static JOURNAL_ENTRIES: AtomicU64 = AtomicU64::new(0);

/// A command finished: its latency, and the error code it answered, if any.
pub fn record_call(command: &'static str, ns: u64, error: Option<&'static str>) {
    let mut guard = CALLS.lock().unwrap_or_else(|e| e.into_inner());
    let calls = guard.get_or_insert_with(Calls::default);
    let stats = calls.commands.entry(command).or_default();
    stats.record(ns);
    if let Some(code) = error {
        stats.failed += 1;
        *calls.errors.entry(code).or_default() += 1;
    }
}

/// The upkeep timer ran on a primary, for `ns`: timer runs happen outside any command, so
/// neither the slowlog nor the commands' latency sees them.
pub fn record_timer_run(ns: u64) {
    let mut guard = CALLS.lock().unwrap_or_else(|e| e.into_inner());
    guard.get_or_insert_with(Calls::default).timer.record(ns);
}

/// Per-command statistics and counts per error code, each sorted by name, and the timer's runs.
pub struct Snapshot {
    pub commands: Vec<(&'static str, CallStats)>,
    pub errors: Vec<(&'static str, u64)>,
    pub timer: CallStats,
}

pub fn snapshot() -> Snapshot {
    let guard = CALLS.lock().unwrap_or_else(|e| e.into_inner());
    let Some(calls) = guard.as_ref() else {
        return Snapshot {
            commands: Vec::new(),
            errors: Vec::new(),
            timer: CallStats::default(),
        };
    };
    Snapshot {
        commands: calls
            .commands
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect(),
        errors: calls.errors.iter().map(|(k, v)| (*k, *v)).collect(),
        timer: calls.timer.clone(),
    }
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

/// The name of an effect's kind (as in INFO's `seatq_effects_total`).
fn effect_index(effect: &Effect) -> usize {
    match effect {
        Effect::Created { .. } => 0,
        Effect::Configured(_) => 1,
        Effect::Joined { .. } => 2,
        Effect::Touched { .. } => 3,
        Effect::Left { .. } => 4,
        Effect::Expired { .. } => 5,
        Effect::Dequeued { .. } => 6,
        Effect::Remembered(_) => 7,
        Effect::Purged { .. } => 8,
        Effect::Compacted { .. } => 9,
        Effect::Opened { .. } => 10,
        Effect::Paused { .. } => 11,
        Effect::Resumed { .. } => 12,
        Effect::Closed { .. } => 13,
        Effect::Reopened { .. } => 14,
        Effect::Admitted { .. } => 15,
        Effect::Claimed { .. } => 16,
        Effect::Renewed { .. } => 17,
        Effect::SessionEnded { .. } => 18,
        Effect::SeatsAdded { .. } => 19,
        Effect::StockAdded { .. } => 20,
        Effect::Held { .. } => 21,
        Effect::Released { .. } => 22,
        Effect::Sold { .. } => 23,
        Effect::HoldExpired { .. } => 24,
        Effect::Granted { .. } => 25,
        Effect::Ranked(_) => 26,
    }
}

/// Counts an applied effect (on every copy: replicas count what they apply).
pub fn count_effect(effect: &Effect) {
    EFFECTS[effect_index(effect)].fetch_add(1, Ordering::Relaxed);
}

/// (name, count) of every kind of state change.
pub fn effects() -> impl Iterator<Item = (&'static str, u64)> {
    EFFECT_NAMES
        .iter()
        .zip(&EFFECTS)
        .map(|(name, n)| (*name, n.load(Ordering::Relaxed)))
}

/// (events, tickets waiting, sessions, holds).
pub fn gauges() -> [i64; 4] {
    [0, 1, 2, 3].map(|i| GAUGES[i].load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounded() {
        let mut stats = CallStats::default();
        for ns in [1_000, 4_999, 5_000, 5_001, 999_000, 2_000_000_000] {
            stats.record(ns);
        }
        let cumulative: Vec<u64> = stats.cumulative().collect();
        assert_eq!(cumulative.len(), LATENCY_BOUNDS_US.len() + 1);
        assert_eq!(cumulative[0], 3, "up to 5 us: 1, 4.999 and 5.0 us");
        assert_eq!(cumulative[1], 4, "5.001 us falls under 10 us");
        assert_eq!(cumulative[7], 5, "999 us under 1 ms");
        assert_eq!(*cumulative.last().unwrap(), 6, "+Inf counts every call");
        assert!(cumulative.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(stats.calls, 6);
    }
}
