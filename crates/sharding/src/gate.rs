//! What a shard may call on its own, besides its own RATE/BURST bucket and the global CAPACITY.
//!
//! - **Under a lease** (`now < lease.until`): the coordinator granted it a *ceiling* on its
//!   `admitted_total`. It calls while its admissions are below the ceiling. The ceiling is
//!   absolute, so a grant that arrives late or twice never lets it call more than granted.
//! - **Without a lease** (never granted, or the lease lapsed: the coordinator is gone or cannot
//!   reach it): a static share, RATE/K per second with a bucket of max(1, BURST/K), and at most
//!   the live sessions its last grant named (the part of CAPACITY the coordinator held for it:
//!   the shards' parts never sum above CAPACITY), or CAPACITY/K if it was never granted. The
//!   share's bucket starts empty when a lease lapses, so the switch adds no burst: K shards in
//!   fallback call at most RATE per second together.
//!
//! Times are the shard's own clock (ms; the fallback bucket in ns). Everything here is decided
//! on the primary and replayed on replicas from the effects (the lease from `GRANTED`, the
//! fallback bucket from each admission's time), so every copy agrees.

/// A GCRA token bucket on a nanosecond clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gcra {
    /// Theoretical arrival time of the next token, ns.
    pub tat_ns: u64,
}

impl Gcra {
    /// Whether one token of `cost_ns` can be taken at `now_ns` with a bucket of
    /// `tolerance_ns / cost_ns + 1` tokens.
    pub fn allows(&self, now_ns: u64, tolerance_ns: u64) -> bool {
        self.tat_ns <= now_ns.saturating_add(tolerance_ns)
    }

    pub fn consume(&mut self, now_ns: u64, cost_ns: u64) {
        self.tat_ns = self.tat_ns.max(now_ns).saturating_add(cost_ns);
    }

    /// When the next token can be taken (ns, not before `now_ns`).
    pub fn ready_ns(&self, now_ns: u64, tolerance_ns: u64) -> u64 {
        self.tat_ns.saturating_sub(tolerance_ns).max(now_ns)
    }

    /// Whole tokens available at `now_ns`.
    pub fn available(&self, now_ns: u64, cost_ns: u64, tolerance_ns: u64) -> u64 {
        let limit = now_ns.saturating_add(tolerance_ns);
        if self.tat_ns > limit || cost_ns == 0 {
            return 0;
        }
        let from = self.tat_ns.max(now_ns);
        (limit - from) / cost_ns + 1
    }
}

pub const NS_PER_MS: u64 = 1_000_000;

/// A coordinator's grant, as the shard keeps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lease {
    /// The coordinator's fencing epoch (grants with a lower one are refused).
    pub epoch: u64,
    /// Shard clock, ms: the lease holds while `now < until`.
    pub until: u64,
    /// `admitted_total` may reach this while the lease holds.
    pub ceiling: u64,
    /// The live sessions the shard may have once the lease lapses (its part of CAPACITY the
    /// coordinator holds for it); None: CAPACITY/K.
    pub capacity: Option<u64>,
    /// The calls between `base` and `ceiling` are spread evenly over `spread_ms` from
    /// `from_ms` (a tick's picks, called at the pace they were granted for, so that the shards'
    /// calls interleave in join order instead of coming shard by shard); 0: at once.
    pub spread_ms: u64,
    pub base: u64,
    pub from_ms: u64,
}

impl Lease {
    /// The admissions allowed by `now_ms` (the ceiling once the spread is over). The spread
    /// advances in steps of `step_ms` (K ms for K shards: each shard calls about every K ms,
    /// so the event's shards together wake about as often as one key calling every ms).
    pub fn allowed(&self, now_ms: u64, step_ms: u64) -> u64 {
        let extra = self.ceiling.saturating_sub(self.base);
        if self.spread_ms == 0 || extra == 0 || now_ms >= self.from_ms + self.spread_ms {
            return self.ceiling;
        }
        let step = step_ms.clamp(1, self.spread_ms);
        let elapsed = ((now_ms.saturating_sub(self.from_ms) / step + 1) * step).min(self.spread_ms);
        self.base + (extra * elapsed).div_ceil(self.spread_ms).min(extra)
    }

    /// When more than `admitted` is allowed (None: never under this lease).
    fn next_allowed(&self, admitted: u64, step_ms: u64) -> Option<u64> {
        if admitted >= self.ceiling {
            return None;
        }
        let extra = self.ceiling.saturating_sub(self.base);
        if self.spread_ms == 0 || extra == 0 || admitted < self.base {
            return Some(self.from_ms);
        }
        // The least elapsed time (ms, counting the current one) at which
        // base + ceil(extra * elapsed / spread) > admitted, then the first step reaching it.
        let done = admitted - self.base;
        let elapsed = (done * self.spread_ms) / extra + 1;
        let step = step_ms.clamp(1, self.spread_ms);
        Some(self.from_ms + (elapsed.div_ceil(step) - 1) * step)
    }
}

/// The settings a shard's share is computed from (the same on every shard of an event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub rate: u64,
    pub burst: u64,
    /// 0: no cap.
    pub capacity: u64,
    /// K (1 or more for a shard).
    pub shards: u64,
}

impl Budget {
    /// Time one admission costs in the static share: K / RATE seconds, rounded up (never
    /// more than RATE/K).
    pub fn share_cost_ns(&self) -> u64 {
        (self.shards.max(1) * 1_000_000_000).div_ceil(self.rate.max(1))
    }

    /// The share's bucket: max(1, BURST/K) admissions.
    pub fn share_burst(&self) -> u64 {
        (self.burst / self.shards.max(1)).max(1)
    }

    pub fn share_tolerance_ns(&self) -> u64 {
        (self.share_burst() - 1) * self.share_cost_ns()
    }

    /// How often a spread grant lets a shard call more: every K ms.
    pub fn step_ms(&self) -> u64 {
        self.shards.max(1)
    }

    /// Live sessions allowed in the static share (None: no cap). CAPACITY/K rounded down.
    pub fn share_capacity(&self) -> Option<u64> {
        (self.capacity > 0).then(|| self.capacity / self.shards.max(1))
    }
}

/// A shard's own state besides its line: the lease and the static share's bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardCore {
    pub lease: Lease,
    pub fallback: Gcra,
    /// Grants accepted (for QUEUE.INFO-style reporting).
    pub grants: u64,
}

/// What a shard may call now, besides its own bucket (decided once per upkeep step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// `next`: when more calls are allowed once `left` is spent (the spread's next step, or
    /// the lease's end).
    Lease { left: u64, until: u64, next: u64 },
    Fallback {
        bucket: Gcra,
        cost_ns: u64,
        tolerance_ns: u64,
    },
}

impl ShardCore {
    pub fn leased(&self, now_ms: u64) -> bool {
        now_ms < self.lease.until
    }

    pub fn gate(&self, now_ms: u64, admitted_total: u64, budget: &Budget) -> Gate {
        if self.leased(now_ms) {
            Gate::Lease {
                left: self
                    .lease
                    .allowed(now_ms, budget.step_ms())
                    .saturating_sub(admitted_total),
                until: self.lease.until,
                next: self
                    .lease
                    .next_allowed(admitted_total, budget.step_ms())
                    .map_or(self.lease.until, |t| t.max(now_ms + 1))
                    .min(self.lease.until),
            }
        } else {
            Gate::Fallback {
                bucket: self.fallback,
                cost_ns: budget.share_cost_ns(),
                tolerance_ns: budget.share_tolerance_ns(),
            }
        }
    }

    /// The live sessions allowed without a lease (None: no cap).
    pub fn fallback_capacity(&self, budget: &Budget) -> Option<u64> {
        let share = budget.share_capacity()?;
        Some(self.lease.capacity.unwrap_or(share))
    }

    /// Room under the capacity this shard may use now, given the room under CAPACITY
    /// (`global_room`, usize::MAX without a cap) and its live sessions.
    pub fn room(&self, now_ms: u64, global_room: usize, sessions: usize, budget: &Budget) -> usize {
        if self.leased(now_ms) {
            return global_room;
        }
        match self.fallback_capacity(budget) {
            Some(cap) => global_room.min((cap as usize).saturating_sub(sessions)),
            None => global_room,
        }
    }

    /// Whether a grant of `epoch` may apply (a lower epoch is a fenced-off coordinator).
    pub fn accepts(&self, epoch: u64) -> bool {
        epoch >= self.lease.epoch
    }

    /// Applies a grant. The static share's bucket is emptied as of the lease's end, so a lapse
    /// starts the share with its first call one interval later.
    /// Applies a grant at `at_ms` with `admitted` admissions so far; the calls it adds are
    /// spread over its `spread_ms` (calls granted before and not made yet stay available).
    pub fn grant(&mut self, mut lease: Lease, at_ms: u64, admitted: u64, budget: &Budget) {
        let carried = if self.leased(at_ms) {
            self.lease
                .allowed(at_ms, budget.step_ms())
                .min(lease.ceiling)
        } else {
            0
        };
        lease.base = carried.max(admitted).min(lease.ceiling);
        lease.from_ms = at_ms;
        self.lease = lease;
        self.grants += 1;
        let lapse_ns = lease.until.saturating_mul(NS_PER_MS);
        let empty = lapse_ns
            .saturating_add(budget.share_tolerance_ns())
            .saturating_add(budget.share_cost_ns());
        self.fallback.tat_ns = self.fallback.tat_ns.max(empty);
    }

    /// An admission at `at_ms` (replayed identically everywhere): outside a lease it spends the
    /// static share.
    pub fn admitted(&mut self, at_ms: u64, budget: &Budget) {
        if !self.leased(at_ms) {
            self.fallback
                .consume(at_ms.saturating_mul(NS_PER_MS), budget.share_cost_ns());
        }
    }
}

impl Gate {
    pub fn allows(&self, now_ms: u64) -> bool {
        match self {
            Gate::Lease { left, .. } => *left > 0,
            Gate::Fallback {
                bucket,
                tolerance_ns,
                ..
            } => bucket.allows(now_ms.saturating_mul(NS_PER_MS), *tolerance_ns),
        }
    }

    pub fn consume(&mut self, now_ms: u64) {
        match self {
            Gate::Lease { left, .. } => *left = left.saturating_sub(1),
            Gate::Fallback {
                bucket, cost_ns, ..
            } => bucket.consume(now_ms.saturating_mul(NS_PER_MS), *cost_ns),
        }
    }

    /// When a call may next be allowed (ms): now while granted calls are left, the lease's end
    /// when they are not (the static share starts then), the share's next token otherwise.
    pub fn ready_at(&self, now_ms: u64) -> u64 {
        match self {
            Gate::Lease { left: 0, next, .. } => (*next).max(now_ms),
            Gate::Lease { .. } => now_ms,
            Gate::Fallback {
                bucket,
                tolerance_ns,
                ..
            } => bucket
                .ready_ns(now_ms.saturating_mul(NS_PER_MS), *tolerance_ns)
                .div_ceil(NS_PER_MS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Budget = Budget {
        rate: 1000,
        burst: 40,
        capacity: 100,
        shards: 4,
    };

    /// Calls a shard makes from `from` to `to` ms, greedily every ms, with `admitted` so far.
    fn run(core: &mut ShardCore, from: u64, to: u64, admitted: &mut u64) -> u64 {
        let before = *admitted;
        for now in from..to {
            let mut gate = core.gate(now, *admitted, &B);
            while gate.allows(now) {
                gate.consume(now);
                core.admitted(now, &B);
                *admitted += 1;
            }
        }
        *admitted - before
    }

    #[test]
    fn the_static_share_is_rate_over_k() {
        let mut core = ShardCore::default();
        let mut admitted = 0;
        let n = run(&mut core, 10_000, 20_000, &mut admitted);
        // 250/s for 10 s plus a bucket of 10.
        assert!((2500..=2510).contains(&n), "{n}");
        assert_eq!(B.share_capacity(), Some(25));
    }

    #[test]
    fn a_lease_allows_up_to_its_ceiling_and_its_lapse_adds_no_burst() {
        let mut core = ShardCore::default();
        let mut admitted = 7;
        core.grant(
            Lease {
                epoch: 1,
                until: 1_000,
                ceiling: 57,
                capacity: None,
                ..Lease::default()
            },
            0,
            admitted,
            &B,
        );
        assert!(!core.accepts(0) && core.accepts(1));
        assert_eq!(run(&mut core, 0, 1_000, &mut admitted), 50, "the ceiling");
        assert_eq!(core.gate(999, admitted, &B).ready_at(999), 1_000);
        // From the lapse on: the share, starting empty (first call 4 ms later).
        assert_eq!(run(&mut core, 1_000, 1_004, &mut admitted), 0);
        assert_eq!(run(&mut core, 1_004, 2_004, &mut admitted), 250);
        assert_eq!(
            core.room(2_100, usize::MAX, 30, &B),
            0,
            "CAPACITY/K without a lease"
        );
        core.grant(
            Lease {
                epoch: 2,
                until: 5_000,
                ceiling: admitted,
                capacity: Some(45),
                ..Lease::default()
            },
            2_004,
            admitted,
            &B,
        );
        assert_eq!(
            core.room(2_500, 70, 30, &B),
            70,
            "under a lease: the global room"
        );
        assert_eq!(
            core.room(5_000, 70, 30, &B),
            15,
            "after it: the part the grant named"
        );
    }

    #[test]
    fn a_spread_grant_paces_its_calls() {
        let mut core = ShardCore::default();
        let lease = Lease {
            epoch: 1,
            until: 10_000,
            ceiling: 30,
            spread_ms: 100,
            ..Lease::default()
        };
        core.grant(lease, 1_000, 10, &B);
        let mut admitted = 10;
        let mut calls = Vec::new();
        for now in 1_000..1_200 {
            let gate = core.gate(now, admitted, &B);
            if let Gate::Lease { left, next, .. } = gate {
                if left == 0 && admitted < 30 {
                    assert!(next > now, "{now}: next {next}");
                    assert!(core.gate(next, admitted, &B).allows(next), "{next}");
                }
            }
            let mut gate = gate;
            while gate.allows(now) {
                gate.consume(now);
                admitted += 1;
                calls.push(now);
            }
        }
        assert_eq!(admitted, 30);
        assert_eq!(calls.first(), Some(&1_000));
        assert!(calls[19] >= 1_092, "spread over 100 ms: {calls:?}");
        // One call every 5 ms, in steps of K = 4 ms: never more than two steps apart, and
        // only at a step's start.
        assert!(calls.windows(2).all(|w| w[1] - w[0] <= 8), "{calls:?}");
        assert!(calls.iter().all(|t| (t - 1_000) % 4 == 0), "{calls:?}");
    }

    #[test]
    fn a_spread_in_steps_of_one_ms_calls_every_ms_it_may() {
        let lease = Lease {
            epoch: 1,
            until: 10_000,
            ceiling: 110,
            spread_ms: 100,
            base: 10,
            from_ms: 1_000,
            ..Lease::default()
        };
        for now in 1_000..1_100 {
            assert_eq!(lease.allowed(now, 1), 10 + (now - 1_000 + 1));
        }
        for step in [1, 3, 4, 7, 100, 1_000] {
            for admitted in 10..110 {
                let next = lease.next_allowed(admitted, step).unwrap();
                assert!(lease.allowed(next, step) > admitted, "{step} {admitted}");
                assert!(
                    next == 1_000 || lease.allowed(next - 1, step) <= admitted,
                    "{step} {admitted}: {next} is the first"
                );
            }
        }
    }

    #[test]
    fn buckets() {
        let mut g = Gcra::default();
        assert_eq!(g.available(1_000, 100, 400), 5);
        g.consume(1_000, 100);
        assert_eq!(g.available(1_000, 100, 400), 4);
        assert_eq!(g.ready_ns(1_000, 400), 1_000);
        for _ in 0..4 {
            g.consume(1_000, 100);
        }
        assert!(!g.allows(1_000, 400));
        assert_eq!(g.ready_ns(1_000, 400), 1_100);
    }
}
