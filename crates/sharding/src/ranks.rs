//! Global positions in a sharded line. A shard knows its tickets' exact positions among its own
//! tickets; how many of the *other* shards' tickets are ahead is estimated from a rank table the
//! coordinator publishes: the whole event's waiting tickets counted by join time, sampled at up
//! to `MAX_POINTS` join times (the shards' own quantiles, merged), sent to each shard in its own
//! clock. A ticket that joined at `t` is at about `count(t) + 1`, less the calls made since the
//! table was taken (at the measured global call rate).
//!
//! Error: between two points the count is interpolated linearly, so the estimate is off by at
//! most the tickets between two neighbouring points (about waiting / points per shard, summed
//! over shards: `waiting / samples`), plus what changed since the table (joins never come ahead
//! of older tickets; leaves and expiries ahead make it too high until the next table, at most
//! a second later), plus the clock offsets the coordinator could not correct. The benchmark's
//! `--only shards` section measures it.

pub const MAX_POINTS: usize = 256;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RankTable {
    /// When the table was taken (the shard's clock, ms).
    pub at_ms: u64,
    /// Global calls per 1000 seconds (the coordinator's measured rate, for ETAs).
    pub rate_milli: u64,
    /// Waiting tickets in the whole event when taken.
    pub waiting: u64,
    /// (join time in the shard's clock, µs; waiting tickets of the whole event that joined
    /// before it), increasing in both.
    pub points: Vec<(u64, u64)>,
}

impl RankTable {
    /// Waiting tickets of the whole event that joined before `join_us` (interpolated).
    pub fn ahead(&self, join_us: u64) -> f64 {
        let p = &self.points;
        let Some(&(first_t, first_c)) = p.first() else {
            return 0.0;
        };
        if join_us <= first_t {
            return first_c as f64;
        }
        let i = p.partition_point(|&(t, _)| t <= join_us);
        if i >= p.len() {
            return p[p.len() - 1].1 as f64;
        }
        let ((t0, c0), (t1, c1)) = (p[i - 1], p[i]);
        let f = (join_us - t0) as f64 / (t1 - t0).max(1) as f64;
        c0 as f64 + f * (c1 as f64 - c0 as f64)
    }

    /// The global position (1-based) of a ticket that joined at `join_us`, at `now_ms`, given
    /// its exact `shard_position` (never less than that).
    pub fn position(&self, join_us: u64, shard_position: u64, now_ms: u64) -> u64 {
        let called =
            self.rate_milli as f64 / 1000.0 * now_ms.saturating_sub(self.at_ms) as f64 / 1000.0;
        let estimate = (self.ahead(join_us) - called).round().max(0.0) as u64 + 1;
        estimate.max(shard_position)
    }

    /// A pre-queue ticket's global position: its place among its shard's pre-queue, scaled to
    /// the whole event (the pre-queue orders are random shuffles, merged in proportion).
    pub fn prequeue_position(&self, shard_position: u64, shard_waiting: u64) -> u64 {
        if shard_waiting == 0 {
            return shard_position;
        }
        let scaled = (shard_position as f64 * self.waiting as f64 / shard_waiting as f64).round();
        (scaled as u64).max(shard_position)
    }

    /// The expected wait (ms) of the ticket at global `position`, at the global call rate.
    pub fn eta_ms(&self, position: u64) -> Option<u64> {
        (self.rate_milli > 0).then(|| {
            (position.saturating_sub(1) as f64 * 1_000_000.0 / self.rate_milli as f64).ceil() as u64
        })
    }
}

/// One shard's samples for the table: (position among its waiting tickets, 0-based; join
/// time in the coordinator's clock, µs), increasing.
pub type Samples = Vec<(u64, f64)>;

/// Tickets of one shard that joined before `t` (coordinator clock, µs), interpolated from its
/// samples; `waiting` is the shard's waiting count.
fn shard_ahead(samples: &Samples, waiting: u64, t: f64) -> f64 {
    let Some(&(p0, t0)) = samples.first() else {
        return 0.0;
    };
    if t <= t0 {
        return p0 as f64;
    }
    let i = samples.partition_point(|&(_, ts)| ts <= t);
    if i >= samples.len() {
        return waiting as f64;
    }
    let ((pa, ta), (pb, tb)) = (samples[i - 1], samples[i]);
    let f = (t - ta) / (tb - ta).max(1e-9);
    pa as f64 + f * (pb as f64 - pa as f64)
}

/// Builds the global table (join times in the coordinator's clock) from each shard's samples
/// and waiting count: the count at every sample time, thinned to `MAX_POINTS`.
pub fn merge(shards: &[(Samples, u64)]) -> Vec<(f64, u64)> {
    let mut times: Vec<f64> = shards
        .iter()
        .flat_map(|(s, _)| s.iter().map(|&(_, t)| t))
        .collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    let step = times.len().div_ceil(MAX_POINTS).max(1);
    let mut points: Vec<(f64, u64)> = times
        .iter()
        .step_by(step)
        .chain(times.last())
        .map(|&t| {
            let count: f64 = shards.iter().map(|(s, w)| shard_ahead(s, *w, t)).sum();
            (t, count.round() as u64)
        })
        .collect();
    points.dedup_by(|b, a| b.0 <= a.0);
    // Counts never decrease with time (rounding of interpolations could make them wiggle).
    let mut high = 0;
    for p in &mut points {
        high = high.max(p.1);
        p.1 = high;
    }
    points
}

/// The table as a shard sees it: join times shifted into its clock (`offset_us` = shard clock
/// minus coordinator clock).
pub fn for_shard(
    points: &[(f64, u64)],
    offset_us: f64,
    at_ms: u64,
    rate_milli: u64,
    waiting: u64,
) -> RankTable {
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(points.len());
    for &(t, c) in points {
        let local = (t + offset_us).max(0.0).round() as u64;
        match out.last() {
            Some(&(lt, _)) if local <= lt => {}
            _ => out.push((local, c)),
        }
    }
    RankTable {
        at_ms,
        rate_milli,
        waiting,
        points: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_from_two_shards() {
        // Shard A: tickets joining every 2 µs from 0; shard B every 2 µs from 1 µs, 1000 each.
        let sample = |offset: f64| -> Samples {
            (0..=10)
                .map(|k| (k * 100, offset + k as f64 * 200.0))
                .collect()
        };
        let merged = merge(&[(sample(0.0), 1001), (sample(1.0), 1001)]);
        let table = for_shard(&merged, 0.0, 1_000, 0, 2002);
        // A ticket of A at 1000 µs: 500 of A and 500 of B ahead.
        let p = table.position(1000, 501, 1_000);
        assert!((999..=1003).contains(&p), "{p}");
        assert_eq!(table.position(0, 1, 1_000), 1);
        assert!(table.eta_ms(10).is_none());
        let mut paced = table.clone();
        paced.rate_milli = 100_000; // 100 calls/s
        assert_eq!(paced.eta_ms(11), Some(100));
        // 2 s later, 200 were called.
        let later = paced.position(1000, 1, 3_000);
        assert!((799..=803).contains(&later), "{later}");
        assert_eq!(
            paced.position(1000, 900, 3_000),
            900,
            "never ahead of the shard"
        );
        assert_eq!(table.prequeue_position(10, 1001), 20);
    }

    #[test]
    fn thinned_and_monotonic() {
        let shards: Vec<(Samples, u64)> = (0..16)
            .map(|s| {
                let samples = (0..=64).map(|k| (k * 10, (k * 37 + s) as f64)).collect();
                (samples, 641)
            })
            .collect();
        let merged = merge(&shards);
        assert!(merged.len() <= MAX_POINTS + 1);
        assert!(merged
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
    }
}
