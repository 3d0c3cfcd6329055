//! The admission budget: a token bucket of `BURST` admissions refilled at `RATE` per second,
//! kept as GCRA state (one "theoretical arrival time"). Time is counted in units of
//! 1/(1000 x RATE) s, so one admission is exactly 1000 units at any RATE: no interval is rounded.
//!
//! Calls happen at upkeep steps, at best a millisecond apart, so the bucket always holds at
//! least `TICK_ALLOWANCE_MS` worth of RATE: at high RATE a step can catch up on the calls due
//! since the last one, whatever BURST says. No second sees more than
//! `RATE + max(BURST, RATE x TICK_ALLOWANCE_MS / 1000)` calls.

const UNITS_PER_ADMISSION: u128 = 1000;
/// Milliseconds of RATE the bucket holds at least (see above).
pub const TICK_ALLOWANCE_MS: u64 = 10;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdmissionBudget {
    /// Theoretical arrival time of the next admission, in units of 1/(1000 x RATE) s.
    pub tat: u128,
}

fn units(ms: u64, rate: u64) -> u128 {
    u128::from(ms) * u128::from(rate.max(1))
}

/// The bucket's size: BURST, or `TICK_ALLOWANCE_MS` of RATE if that is more.
pub fn bucket(rate: u64, burst: u64) -> u64 {
    burst
        .max(rate.saturating_mul(TICK_ALLOWANCE_MS) / 1000)
        .max(1)
}

fn tolerance(rate: u64, burst: u64) -> u128 {
    u128::from(bucket(rate, burst) - 1) * UNITS_PER_ADMISSION
}

impl AdmissionBudget {
    /// The earliest time (ms, not before `now`) at which an admission is allowed.
    pub fn ready_at(&self, now: u64, rate: u64, burst: u64) -> u64 {
        let allowed_from = self.tat.saturating_sub(tolerance(rate, burst));
        let ms = allowed_from.div_ceil(u128::from(rate.max(1)));
        (ms as u64).max(now)
    }

    pub fn allows(&self, now: u64, rate: u64, burst: u64) -> bool {
        self.tat <= units(now, rate) + tolerance(rate, burst)
    }

    /// Takes one admission at `now` (allowed or not: effects replay what the primary decided).
    pub fn consume(&mut self, now: u64, rate: u64) {
        self.tat = self.tat.max(units(now, rate)) + UNITS_PER_ADMISSION;
    }

    /// RATE changed: the same point in time in the new units, rounded up (never more budget).
    pub fn rescale(&mut self, from_rate: u64, to_rate: u64) {
        self.tat = (self.tat * u128::from(to_rate.max(1))).div_ceil(u128::from(from_rate.max(1)));
    }
}

/// Admissions per second over the last minute, for ETAs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateHistory {
    /// (second, admissions in that second), oldest first, at most `WINDOW_S` + 1 entries.
    pub seconds: std::collections::VecDeque<(u64, u64)>,
}

pub const WINDOW_S: u64 = 60;
/// Less history than this and the configured RATE is used instead.
const MIN_HISTORY_S: u64 = 5;

impl RateHistory {
    pub fn record(&mut self, at_ms: u64) {
        let second = at_ms / 1000;
        match self.seconds.back_mut() {
            Some((s, n)) if *s == second => *n += 1,
            Some((s, _)) if *s > second => {} // clock stepped back: ignore for the estimate
            _ => self.seconds.push_back((second, 1)),
        }
        while self
            .seconds
            .front()
            .is_some_and(|&(s, _)| s + WINDOW_S < second)
        {
            self.seconds.pop_front();
        }
    }

    /// Measured admissions per second over the complete seconds of the last minute, or
    /// `configured` while there are fewer than 5 seconds of history or none admitted.
    /// The first second with calls is left out while the window reaches it: calls began
    /// somewhere inside it (counted whole it reads low) and it holds the start-up burst.
    pub fn rate(&self, now_ms: u64, configured: u64) -> f64 {
        let current = now_ms / 1000;
        let Some(&(first, _)) = self.seconds.front() else {
            return configured as f64;
        };
        let from = (first + 1).max(current.saturating_sub(WINDOW_S));
        let span = current.saturating_sub(from);
        if span < MIN_HISTORY_S {
            return configured as f64;
        }
        let admitted: u64 = self
            .seconds
            .iter()
            .filter(|&&(s, _)| s >= from && s < current)
            .map(|&(_, n)| n)
            .sum();
        if admitted == 0 {
            return configured as f64;
        }
        admitted as f64 / span as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Admits greedily every millisecond for `ms` and returns the admission times.
    fn run(rate: u64, burst: u64, ms: u64) -> Vec<u64> {
        let mut b = AdmissionBudget::default();
        let mut times = Vec::new();
        for now in 0..ms {
            while b.allows(now, rate, burst) {
                b.consume(now, rate);
                times.push(now);
            }
        }
        times
    }

    #[test]
    fn burst_then_rate() {
        let mut b = AdmissionBudget::default();
        let (rate, burst) = (50, 10);
        let now = 1_000_000;
        for _ in 0..10 {
            assert!(b.allows(now, rate, burst));
            b.consume(now, rate);
        }
        assert!(!b.allows(now, rate, burst));
        assert_eq!(b.ready_at(now, rate, burst), now + 20, "one interval");
        assert!(b.allows(now + 20, rate, burst));
    }

    #[test]
    fn exact_at_every_rate_and_never_above_rate_plus_burst_in_a_second() {
        for (rate, burst) in [(1, 1), (7, 3), (100, 10), (600_000, 1), (1_000_000, 25)] {
            let ms = if rate > 1000 { 2_000 } else { 5_000 };
            let times = run(rate, burst, ms);
            let burst = bucket(rate, burst);
            // Refills over the ms - 1 milliseconds after the first, plus the full bucket.
            let expected = rate * (ms - 1) / 1000 + burst;
            let got = times.len() as u64;
            assert!(
                got <= expected && got + 2 >= expected,
                "rate {rate}: {got} admissions in {ms} ms, expected {expected}"
            );
            let mut start = 0;
            for (i, &t) in times.iter().enumerate() {
                while times[start] + 1000 <= t {
                    start += 1;
                }
                assert!(
                    (i - start + 1) as u64 <= rate + burst,
                    "rate {rate}: more than RATE + BURST in one second"
                );
            }
        }
    }

    #[test]
    fn rescaling_keeps_the_time_and_never_adds_budget() {
        let mut b = AdmissionBudget::default();
        for _ in 0..25 {
            b.consume(1000, 10);
        }
        let ready = b.ready_at(1000, 10, 20);
        b.rescale(10, 1000);
        assert!(
            b.ready_at(1000, 1000, 20) >= ready,
            "the next admission moves no earlier"
        );
        b.rescale(1000, 10);
        assert_eq!(b.ready_at(1000, 10, 20), ready);
    }

    #[test]
    fn measured_rate() {
        let mut h = RateHistory::default();
        assert_eq!(h.rate(10_000, 7), 7.0);
        for s in 0..20u64 {
            for k in 0..4 {
                h.record(s * 1000 + k);
            }
        }
        assert!((h.rate(20_000, 7) - 4.0).abs() < 1e-9);
        assert!(h.rate(70_000, 7) < 4.0, "old history ages out");
        assert_eq!(h.rate(200_000, 7), 7.0, "after a quiet minute, RATE again");
        assert!(h.seconds.len() as u64 <= WINDOW_S + 1);
    }

    /// A sale that starts late in a second, with a burst, measures its steady rate: the
    /// partial first second is not counted as a whole one.
    #[test]
    fn measured_rate_leaves_out_the_partial_first_second() {
        let mut h = RateHistory::default();
        let (rate, burst, start) = (100, 10, 900);
        for at in run(rate, burst, 6_000 - start) {
            h.record(start + at);
        }
        assert!(
            (h.rate(6_000, 50) - 100.0).abs() < 1.0,
            "{}",
            h.rate(6_000, 50)
        );
        assert_eq!(h.rate(5_500, 50), 50.0, "four complete seconds: RATE still");
    }
}
