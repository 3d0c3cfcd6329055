//! Admissions per second against RATE, from the journal's `admitted` entries (their stream IDs
//! are the server's times), over the part of the sale where the server had every reason to
//! call at RATE: enough tickets waiting, CAPACITY not in the way, no fault under way.

use crate::replay::Call;
use crate::sale::Settings;

/// The measured rate may differ from RATE by this much (fraction) where it is measured.
pub const RATE_TOLERANCE: f64 = 0.02;
/// Less measured time than this and the rate is not judged (too few calls to tell).
pub const MIN_MEASURED_MS: u64 = 1_000;
/// Calls this close (ms) after a fault ended are left out of the measure under `--chaos`.
const AFTER_FAULT_MS: u64 = 2_000;

/// What the admission timeline shows.
pub struct AdmissionView {
    pub calls: usize,
    /// First to last call, server time, ms.
    pub span_ms: u64,
    /// Tickets waiting (journal) before a call for it to count as saturated.
    pub waiting_threshold: u64,
    /// Calls and time inside saturated stretches (after each stretch's possible burst).
    pub measured_calls: u64,
    pub measured_ms: u64,
    pub stretches: usize,
    /// Longest gap between consecutive calls inside a stretch: (ms, seconds into the sale at
    /// which it ended).
    pub longest_gap: Option<(u64, f64)>,
    /// The three longest such gaps, longest first.
    pub top_gaps: Vec<(u64, f64)>,
    /// Gaps longer than 50 ms inside stretches.
    pub gaps_over_50ms: usize,
    /// Calls made with CAPACITY nearly full (sessions >= CAPACITY - bucket).
    pub capacity_bound_calls: usize,
}

impl AdmissionView {
    pub fn rate(&self) -> Option<f64> {
        (self.measured_ms > 0)
            .then(|| self.measured_calls as f64 * 1000.0 / self.measured_ms as f64)
    }

    /// Whether enough was measured to judge the rate.
    pub fn judged(&self) -> bool {
        self.measured_ms >= MIN_MEASURED_MS
    }

    pub fn within_tolerance(&self, rate: u64) -> bool {
        self.rate()
            .is_some_and(|r| (r - rate as f64).abs() <= rate as f64 * RATE_TOLERANCE)
    }

    pub fn overall_rate(&self) -> Option<f64> {
        (self.span_ms > 0).then(|| (self.calls - 1) as f64 * 1000.0 / self.span_ms as f64)
    }
}

/// `faults_ms`: spans of server time (ms since the epoch) when a fault was under way.
/// `origin_ms`: the server time the sale started at (times are reported from it).
pub fn analyse(
    calls: &[Call],
    settings: &Settings,
    faults_ms: &[(u64, u64)],
    origin_ms: u64,
) -> AdmissionView {
    let bucket = settings.bucket();
    // One second of calls waiting: the line cannot run dry within a measured stretch even if
    // some of those tickets have lapsed (lapsed ones are skipped without using the budget).
    let waiting_threshold = settings.rate.max(2 * bucket);
    let capacity_room = settings.capacity.saturating_sub(bucket);
    let in_fault = |at: u64| {
        faults_ms
            .iter()
            .any(|&(start, end)| at + 1 >= start && at <= end + AFTER_FAULT_MS)
    };
    let saturated = |c: &Call| {
        c.waiting_before >= waiting_threshold
            && c.sessions_before < capacity_room
            && !in_fault(c.at_ms)
    };
    let mut view = AdmissionView {
        calls: calls.len(),
        span_ms: match (calls.first(), calls.last()) {
            (Some(a), Some(b)) => b.at_ms - a.at_ms,
            _ => 0,
        },
        waiting_threshold,
        measured_calls: 0,
        measured_ms: 0,
        stretches: 0,
        longest_gap: None,
        top_gaps: Vec::new(),
        gaps_over_50ms: 0,
        capacity_bound_calls: calls
            .iter()
            .filter(|c| c.sessions_before >= capacity_room)
            .count(),
    };
    let mut i = 0;
    while i < calls.len() {
        if !saturated(&calls[i]) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j + 1 < calls.len() && saturated(&calls[j + 1]) {
            j += 1;
        }
        // calls[i..=j] is a stretch; its first bucket - 1 calls may be a burst.
        let start = i + (bucket as usize - 1);
        if start < j {
            view.stretches += 1;
            view.measured_calls += (j - start) as u64;
            view.measured_ms += calls[j].at_ms - calls[start].at_ms;
            for k in start + 1..=j {
                let gap = calls[k].at_ms - calls[k - 1].at_ms;
                if gap > 50 {
                    view.gaps_over_50ms += 1;
                }
                let at = calls[k].at_ms.saturating_sub(origin_ms) as f64 / 1000.0;
                if view.longest_gap.is_none_or(|(g, _)| gap > g) {
                    view.longest_gap = Some((gap, at));
                }
                if view.top_gaps.len() < 3 || gap > view.top_gaps[2].0 {
                    view.top_gaps.push((gap, at));
                    view.top_gaps.sort_by_key(|g| std::cmp::Reverse(g.0));
                    view.top_gaps.truncate(3);
                }
            }
        }
        i = j + 1;
    }
    view
}
