//! The admission budget: a token bucket of `BURST` admissions refilled at `RATE` per second,
//! kept as GCRA state (one "theoretical arrival time"), so it is a single integer that
//! replicates and persists exactly.

/// Microseconds, so RATE up to 1,000,000 per second has an exact integer interval.
const US_PER_S: u64 = 1_000_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdmissionBudget {
    /// Theoretical arrival time of the next admission, in microseconds of server time.
    pub tat_us: u64,
}

impl AdmissionBudget {
    fn interval_us(rate: u64) -> u64 {
        (US_PER_S / rate.max(1)).max(1)
    }

    fn tolerance_us(rate: u64, burst: u64) -> u64 {
        Self::interval_us(rate) * burst.max(1).saturating_sub(1)
    }

    /// Milliseconds until an admission is allowed (0: allowed now). Rounded up, so sleeping
    /// that long is always enough.
    pub fn wait_ms(&self, now_ms: u64, rate: u64, burst: u64) -> u64 {
        let now_us = now_ms.saturating_mul(1000);
        let allowed_at = self.tat_us.saturating_sub(Self::tolerance_us(rate, burst));
        allowed_at.saturating_sub(now_us).div_ceil(1000)
    }

    /// Takes one admission at `now_ms` (the caller checked `wait_ms` is 0).
    pub fn consume(&mut self, now_ms: u64, rate: u64) {
        self.tat_us = self.tat_us.max(now_ms.saturating_mul(1000)) + Self::interval_us(rate);
    }
}

/// Admissions per second over the last minute, for ETAs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateHistory {
    /// (second, admissions in that second), oldest first, at most `WINDOW_S` entries.
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
    /// `configured` while there are fewer than 5 seconds of history.
    pub fn rate(&self, now_ms: u64, configured: u64) -> f64 {
        let current = now_ms / 1000;
        let Some(&(first, _)) = self.seconds.front() else {
            return configured as f64;
        };
        let from = first.max(current.saturating_sub(WINDOW_S));
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
            // Nobody was admitted for a minute (a pause): the configured rate is the best guess
            // of what happens when admission resumes.
            return configured as f64;
        }
        admitted as f64 / span as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let mut b = AdmissionBudget::default();
        let (rate, burst) = (50, 10);
        let now = 1_000_000;
        for _ in 0..10 {
            assert_eq!(b.wait_ms(now, rate, burst), 0);
            b.consume(now, rate);
        }
        assert_eq!(
            b.wait_ms(now, rate, burst),
            20,
            "the 11th waits one interval"
        );
        assert_eq!(b.wait_ms(now + 20, rate, burst), 0);
        // Over any 1 s window at most RATE + BURST admissions.
        let mut b = AdmissionBudget::default();
        let mut times = Vec::new();
        for ms in 0..5000u64 {
            while b.wait_ms(ms, rate, burst) == 0 {
                b.consume(ms, rate);
                times.push(ms);
            }
        }
        for (i, &t) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|&&u| u < t + 1000).count();
            assert!(
                in_window as u64 <= rate + burst,
                "{in_window} admissions in 1 s from {t}"
            );
        }
        assert!(
            (times.len() as u64) >= 5 * rate,
            "the budget is used: {}",
            times.len()
        );
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
        assert_eq!(
            h.rate(200_000, 7),
            7.0,
            "after a minute without admissions, RATE again"
        );
        assert!(h.seconds.len() as u64 <= WINDOW_S + 1);
    }
}
