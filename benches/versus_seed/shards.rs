//! `--only shards`: the sharded mode simulated, millisecond by millisecond, up to 10,000,000
//! users, with the coordinator's own code (`seatq_sharding::Planner`: the merge, the grants,
//! the accounting of unreachable shards) and the shard side's own rules
//! (`seatq_sharding::ShardCore`: lease, ceiling, static share; `JoinIndex`: join times in µs;
//! `RankTable`: global positions), so what is measured is what runs. No server is involved.
//!
//! The sale: N users join (30% in the first 5 s, 50% over the next minute with a 5x burst in
//! the first second of every 15, 20% over the following 4 minutes); each user's shard is
//! `shard_of(user, K)`; 20% of users abandon at a random moment of their first 10 minutes and
//! their ticket lapses a HEARTBEAT (60 s) later (a lapsed ticket met at the front is expired,
//! not called). Every shard's clock is off by up to 5 ms (uniform in [-5, +5] ms), and every
//! read of a shard takes 0.1-1 ms there and back. RATE = N / 500 per second, BURST = RATE / 10,
//! tick 100 ms, lease 1 s. Each shard calls what its lease (or static share) and its own
//! RATE/BURST bucket allow, every millisecond.
//!
//! Measured: displacement = the order a user was admitted in minus the rank of their join
//! among admitted users (p50, p99, max of its absolute value); admissions in the busiest
//! sliding second and the mean over the drain; the drain time against one key's (the same
//! sale on one unsharded key); the global position estimate against the true position
//! (sampled every 10 s). A failure run adds CAPACITY, sessions that end, the coordinator
//! killed (5 s without ticks, then a new coordinator with a new epoch) and a shard unreachable
//! from the coordinator for 3 s.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use seatq_sharding::gate::NS_PER_MS;
use seatq_sharding::planner::{Outcome, Read};
use seatq_sharding::{
    shard_of, Budget, Front, Gcra, GrantReply, JoinIndex, Lease, Planner, PlannerConfig, RankTable,
    ShardCore,
};
use seatq_testkit::rng::Rng;
use seatq_testkit::stats::percentile;

use crate::options::Options;
use crate::report::{print_table, thousands};
use crate::targets::Findings;

const HEARTBEAT_MS: u64 = 60_000;
const TICK_MS: u64 = 100;
const LEASE_MS: u64 = 1_000;
const MAX_OFFSET_US: i64 = 5_000;

#[derive(Clone, Copy)]
struct Scenario {
    users: usize,
    /// 0: one unsharded key (the reference).
    shards: usize,
    correct_offsets: bool,
    /// CAPACITY, sessions that end, the coordinator killed, a shard unreachable.
    failures: bool,
}

/// What one run found.
struct Outcomes {
    admitted: usize,
    p50: u64,
    p99: u64,
    max: u64,
    busiest_second: u64,
    mean_rate: f64,
    drain_ms: u64,
    /// (p50, p99) of |estimate - true| and p99 of it relative to the true position.
    position_error: Option<(u64, u64, f64)>,
    max_sessions: u64,
    wall_s: f64,
}

struct Shard {
    offset_us: i64,
    line: VecDeque<(u32, u32)>,
    next_serial: u32,
    joins: JoinIndex,
    core: ShardCore,
    own: Gcra,
    admitted: u64,
    sessions: u64,
    /// When sessions end (true ms), for the capacity run.
    ends: BinaryHeap<Reverse<u64>>,
    ranks: Option<RankTable>,
}

impl Shard {
    fn clock_ms(&self, t_us: i64) -> u64 {
        ((t_us + self.offset_us).max(0) / 1000) as u64
    }
}

/// The sale's arrival curve: users joined by each ms, over 305 s.
fn arrivals(users: usize) -> Vec<u64> {
    let end_ms = 305_000usize;
    let mut weight = vec![0f64; end_ms];
    for (t, w) in weight.iter_mut().enumerate() {
        *w = match t {
            0..5_000 => 0.30 / 5_000.0,
            5_000..65_000 => {
                // 5x in the first second of each 15: 19 units per 15 s.
                let unit = 0.50 / (4.0 * 19.0 * 1_000.0);
                if (t - 5_000) % 15_000 < 1_000 {
                    5.0 * unit
                } else {
                    unit
                }
            }
            _ => 0.20 / 240_000.0,
        };
    }
    let total: f64 = weight.iter().sum();
    let mut acc = 0.0;
    weight
        .iter()
        .map(|w| {
            acc += w / total;
            ((acc * users as f64).round() as u64).min(users as u64)
        })
        .collect()
}

fn run(s: Scenario, seed: u64) -> Outcomes {
    let started = Instant::now();
    let n = s.users;
    let rate = (n as u64 / 500).max(10);
    let burst = (rate / 10).max(1);
    let capacity = if s.failures { rate * 10 } else { 0 };
    let k = s.shards.max(1);
    let sharded = s.shards > 0;
    let mut rng = Rng::new(seed);
    let by_ms = arrivals(n);
    // When each user's ticket lapses (u32::MAX: never).
    let lapse: Vec<u32> = (0..n)
        .map(|u| {
            let joined = by_ms.partition_point(|&c| c <= u as u64) as u64;
            if rng.chance(20) {
                (joined + rng.below(600_000) + HEARTBEAT_MS) as u32
            } else {
                u32::MAX
            }
        })
        .collect();
    let budget = Budget {
        rate,
        burst,
        capacity,
        shards: k as u64,
    };
    let own_cost = 1_000_000_000u64.div_ceil(rate);
    let own_tolerance = (burst.max(rate * 10 / 1000).max(1) - 1) * own_cost;
    let mut shards: Vec<Shard> = (0..k)
        .map(|_| Shard {
            offset_us: if sharded {
                rng.between((0, 2 * MAX_OFFSET_US as u64)) as i64 - MAX_OFFSET_US
            } else {
                0
            },
            line: VecDeque::new(),
            next_serial: 0,
            joins: JoinIndex::default(),
            core: ShardCore::default(),
            own: Gcra::default(),
            admitted: 0,
            sessions: 0,
            ends: BinaryHeap::new(),
            ranks: None,
        })
        .collect();
    let config = |correct: bool| {
        let mut c = PlannerConfig::new(k);
        c.tick_ms = TICK_MS;
        c.lease_ms = LEASE_MS;
        c.correct_offsets = correct;
        c
    };
    let mut epoch = 1;
    let mut planner = Planner::new(config(s.correct_offsets), epoch);
    let mut order = vec![u32::MAX; n];
    let mut admitted_total = 0u32;
    let mut per_ms: Vec<u32> = Vec::new();
    let mut next_user = 0usize;
    let mut errors: Vec<u64> = Vec::new();
    let mut relative: Vec<f64> = Vec::new();
    let mut max_sessions = 0u64;
    let limit_ms = 3_000_000u64;
    let mut t = 0u64;
    loop {
        // Arrivals in this ms, spread evenly over it.
        let upto = by_ms.get(t as usize).copied().unwrap_or(n as u64) as usize;
        let count = upto - next_user;
        for j in 0..count {
            let u = next_user + j;
            let t_us = (t * 1000) as i64 + ((2 * j + 1) * 1000 / (2 * count)) as i64;
            let shard = if sharded {
                shard_of(&(u as u32).to_be_bytes(), k as u32) as usize
            } else {
                0
            };
            let sh = &mut shards[shard];
            let serial = sh.next_serial;
            sh.next_serial += 1;
            let at = sh.clock_ms(t_us);
            sh.joins.record(serial, at);
            sh.line.push_back((serial, u as u32));
        }
        next_user = upto;
        // Sessions that end.
        for sh in shards.iter_mut() {
            while sh.ends.peek().is_some_and(|Reverse(e)| *e <= t) {
                sh.ends.pop();
                sh.sessions -= 1;
            }
        }
        let coordinator_down = s.failures && (100_000..106_000).contains(&t);
        if s.failures && t == 106_000 {
            // A new coordinator takes over with a new epoch.
            epoch += 1;
            planner = Planner::new(config(s.correct_offsets), epoch);
        }
        let unreachable = |i: usize| s.failures && i == 1 % k && (150_000..153_000).contains(&t);
        if sharded && !coordinator_down && t % TICK_MS == 0 {
            let now_ns = t * NS_PER_MS;
            let samples = if planner.wants_samples(now_ns) {
                planner.config.samples
            } else {
                0
            };
            let reads: Vec<Read> = (0..k)
                .map(|i| {
                    let d1 = rng.between((50, 500));
                    let d2 = rng.between((50, 500));
                    let sh = &shards[i];
                    let front = (!unreachable(i)).then(|| {
                        front(
                            sh,
                            &lapse,
                            t,
                            d1,
                            planner.front_count(i),
                            samples,
                            &budget,
                            i,
                        )
                    });
                    Read {
                        sent_ns: now_ns,
                        received_ns: now_ns + (d1 + d2) * 1000,
                        front,
                    }
                })
                .collect();
            let first = planner
                .tick(now_ns, reads)
                .expect("one coordinator at a time");
            for o in first {
                let outcome = grant(
                    &mut shards[o.shard],
                    &o.grant,
                    t,
                    &budget,
                    unreachable(o.shard),
                );
                planner.report(o.shard, now_ns, outcome).unwrap();
            }
            for o in planner.second_phase(now_ns) {
                let outcome = grant(
                    &mut shards[o.shard],
                    &o.grant,
                    t,
                    &budget,
                    unreachable(o.shard),
                );
                planner.report(o.shard, now_ns, outcome).unwrap();
            }
        }
        // Each shard calls what it may, in a rotating order.
        let mut admitted_now = 0u32;
        for r in 0..k {
            let i = (r + t as usize) % k;
            let sh = &mut shards[i];
            let now = sh.clock_ms((t * 1000) as i64);
            let now_ns = now * NS_PER_MS;
            let mut gate = sharded.then(|| sh.core.gate(now, sh.admitted, &budget));
            let global_room = if capacity > 0 {
                capacity.saturating_sub(sh.sessions) as usize
            } else {
                usize::MAX
            };
            let mut room = if sharded {
                sh.core
                    .room(now, global_room, sh.sessions as usize, &budget)
            } else {
                global_room
            };
            while room > 0
                && sh.own.allows(now_ns, own_tolerance)
                && gate.as_ref().is_none_or(|g| g.allows(now))
            {
                let Some((_, u)) = sh.line.pop_front() else {
                    break;
                };
                if u64::from(lapse[u as usize]) <= t {
                    continue; // expired at the front
                }
                order[u as usize] = admitted_total;
                admitted_total += 1;
                admitted_now += 1;
                sh.own.consume(now_ns, own_cost);
                if let Some(g) = gate.as_mut() {
                    g.consume(now);
                }
                sh.core.admitted(now, &budget);
                sh.admitted += 1;
                sh.sessions += 1;
                room -= 1;
                if capacity > 0 {
                    // A no-show's session ends after its claim window; a buyer's in 20-120 s.
                    let length = if lapse[u as usize] != u32::MAX {
                        30_000
                    } else {
                        rng.between((20_000, 120_000))
                    };
                    sh.ends.push(Reverse(t + length));
                }
            }
        }
        per_ms.push(admitted_now);
        let live: u64 = shards.iter().map(|s| s.sessions).sum();
        max_sessions = max_sessions.max(live);
        // The global position estimate against the truth, every 10 s.
        if sharded && t % 10_000 == 5_000 {
            sample_positions(&shards, &lapse, t, &mut rng, &mut errors, &mut relative);
        }
        t += 1;
        let empty = shards.iter().all(|s| s.line.is_empty());
        if (next_user == n && empty) || t >= limit_ms {
            break;
        }
    }

    // Displacement among admitted users: admission order minus join rank.
    let mut displacement: Vec<u64> = Vec::with_capacity(admitted_total as usize);
    let mut rank = 0i64;
    for &o in &order {
        if o != u32::MAX {
            displacement.push((i64::from(o) - rank).unsigned_abs());
            rank += 1;
        }
    }
    displacement.sort_unstable();
    let q = |v: f64| percentile(&displacement, v).unwrap_or(0);
    // The busiest sliding second, and the mean over the drain's complete seconds.
    let mut window = 0u64;
    let mut busiest = 0u64;
    for (i, &a) in per_ms.iter().enumerate() {
        window += u64::from(a);
        if i >= 1000 {
            window -= u64::from(per_ms[i - 1000]);
        }
        busiest = busiest.max(window);
    }
    let first = per_ms.iter().position(|&a| a > 0).unwrap_or(0);
    let last = per_ms.iter().rposition(|&a| a > 0).unwrap_or(0);
    let seconds = (last - first) / 1000;
    let in_whole: u64 = per_ms[first..first + seconds * 1000]
        .iter()
        .map(|&a| u64::from(a))
        .sum();
    errors.sort_unstable();
    relative.sort_by(f64::total_cmp);
    Outcomes {
        admitted: admitted_total as usize,
        p50: q(0.50),
        p99: q(0.99),
        max: q(1.0),
        busiest_second: busiest,
        mean_rate: in_whole as f64 / seconds.max(1) as f64,
        drain_ms: last as u64,
        position_error: (!errors.is_empty()).then(|| {
            (
                percentile(&errors, 0.5).unwrap_or(0),
                percentile(&errors, 0.99).unwrap_or(0),
                percentile(&relative, 0.99).unwrap_or(0.0),
            )
        }),
        max_sessions,
        wall_s: started.elapsed().as_secs_f64(),
    }
}

/// What SHARD.FRONT answers (as the module builds it): live front tickets' join times.
#[allow(clippy::too_many_arguments)]
fn front(
    sh: &Shard,
    lapse: &[u32],
    t: u64,
    d1_us: u64,
    count: usize,
    samples: usize,
    budget: &Budget,
    index: usize,
) -> Front {
    let now_ms = sh.clock_ms((t * 1000 + d1_us) as i64);
    let now_us = ((t * 1000 + d1_us) as i64 + sh.offset_us).max(0) as u64;
    let mut cursor = sh.joins.cursor(sh.next_serial);
    let mut joins = Vec::with_capacity(count.min(sh.line.len()));
    let mut more = false;
    for &(serial, u) in &sh.line {
        if joins.len() == count {
            more = true;
            break;
        }
        if u64::from(lapse[u as usize]) <= t {
            continue;
        }
        joins.push(cursor.join_us(serial).unwrap_or(0));
    }
    let waiting = sh.line.len() as u64;
    let samples = if waiting == 0 || samples == 0 {
        Vec::new()
    } else {
        let m = samples.min(sh.line.len()) as u64;
        (0..=m)
            .map(|i| (waiting - 1) * i / m)
            .filter_map(|p| {
                let (serial, _) = sh.line[p as usize];
                Some((p, sh.joins.join_us(serial, sh.next_serial)?))
            })
            .collect()
    };
    Front {
        now_ms,
        now_us,
        epoch: sh.core.lease.epoch,
        lease_until: sh.core.lease.until,
        ceiling: sh.core.lease.ceiling,
        fallback_capacity: sh.core.lease.capacity,
        admitted: sh.admitted,
        sessions: sh.sessions,
        waiting,
        prequeue: 0,
        calling: true,
        rate: budget.rate,
        burst: budget.burst,
        capacity: budget.capacity,
        shards: budget.shards,
        shard_index: index as u64,
        joins,
        more,
        samples,
    }
}

/// SHARD.GRANT as the module applies it.
fn grant(
    sh: &mut Shard,
    g: &seatq_sharding::Grant,
    t: u64,
    budget: &Budget,
    unreachable: bool,
) -> Outcome {
    if unreachable {
        return Outcome::Failed;
    }
    if !sh.core.accepts(g.epoch) {
        return Outcome::Fenced;
    }
    let now = sh.clock_ms((t * 1000 + 300) as i64);
    sh.core.grant(
        Lease {
            epoch: g.epoch,
            until: now + g.lease_ms,
            ceiling: g.ceiling,
            capacity: g.capacity,
            spread_ms: g.spread_ms,
            ..Lease::default()
        },
        now,
        sh.admitted,
        budget,
    );
    if let Some(r) = &g.ranks {
        sh.ranks = Some(r.clone());
    }
    Outcome::Applied(GrantReply {
        now_ms: now,
        lease_until: sh.core.lease.until,
        admitted: sh.admitted,
        sessions: sh.sessions,
    })
}

/// Compares QUEUE.STATUS's global_position (the shard's rank table) with the truth for 200
/// random waiting users.
fn sample_positions(
    shards: &[Shard],
    lapse: &[u32],
    t: u64,
    rng: &mut Rng,
    errors: &mut Vec<u64>,
    relative: &mut Vec<f64>,
) {
    let total: usize = shards.iter().map(|s| s.line.len()).sum();
    if total < 1_000 {
        return;
    }
    for _ in 0..200 {
        let i = rng.below(shards.len() as u64) as usize;
        let sh = &shards[i];
        let Some(table) = &sh.ranks else { continue };
        if sh.line.is_empty() {
            continue;
        }
        let p = rng.below(sh.line.len() as u64) as usize;
        let (serial, u) = sh.line[p];
        if u64::from(lapse[u as usize]) <= t {
            continue;
        }
        let Some(join) = sh.joins.join_us(serial, sh.next_serial) else {
            continue;
        };
        let now = sh.clock_ms((t * 1000) as i64);
        let estimate = table.position(join, p as u64 + 1, now);
        // The truth: tickets still in any line that joined before this user.
        let truth: usize = shards
            .iter()
            .map(|s| s.line.partition_point(|&(_, v)| v < u))
            .sum::<usize>()
            + 1;
        let error = estimate.abs_diff(truth as u64);
        errors.push(error);
        relative.push(error as f64 / truth as f64);
    }
}

pub fn section(o: &Options, f: &mut Findings) {
    println!(
        "\n== Sharded mode, simulated (the coordinator's planner and the shards' rules, no server) =="
    );
    println!(
        "   RATE = users/500 per s, BURST = RATE/10, tick {TICK_MS} ms, lease {LEASE_MS} ms, clock offsets \
uniform in +-5 ms, 20% abandon; displacement = |admission order - join rank| among admitted users"
    );
    let mut fairness = Vec::new();
    let mut rates = Vec::new();
    let mut positions = Vec::new();
    for &users in &o.sim_users {
        let reference = run(
            Scenario {
                users,
                shards: 0,
                correct_offsets: true,
                failures: false,
            },
            7,
        );
        eprintln!(
            "[versus_seed] shards: {} users, one key: drained in {:.1} s ({:.0} s wall)",
            thousands(users as f64),
            reference.drain_ms as f64 / 1000.0,
            reference.wall_s
        );
        let rate = (users as u64 / 500).max(10);
        let bound = rate + (rate / 10).max(rate * TICK_MS / 1000);
        let mut cases: Vec<(usize, bool)> = o.sim_shards.iter().map(|&k| (k, true)).collect();
        if users == 1_000_000 {
            cases.push((8, false));
        }
        for (k, correct) in cases {
            let r = run(
                Scenario {
                    users,
                    shards: k,
                    correct_offsets: correct,
                    failures: false,
                },
                7,
            );
            eprintln!(
                "[versus_seed] shards: {} users, K = {k}{}: p99 {} max {} ({:.0} s wall)",
                thousands(users as f64),
                if correct { "" } else { " uncorrected" },
                r.p99,
                r.max,
                r.wall_s
            );
            let label = format!(
                "{k}{}",
                if correct {
                    ""
                } else {
                    " (offsets not corrected)"
                }
            );
            let goal = if users == 1_000_000 && correct {
                if r.p99 <= 500 && r.max <= 1_000 {
                    "met"
                } else {
                    "not met"
                }
            } else {
                "-"
            };
            fairness.push(vec![
                thousands(users as f64),
                label.clone(),
                thousands(r.admitted as f64),
                thousands(r.p50 as f64),
                thousands(r.p99 as f64),
                thousands(r.max as f64),
                goal.to_string(),
            ]);
            if correct {
                if users == 1_000_000 {
                    f.shard_fairness.push((k, r.p99, r.max));
                }
                let drain = r.drain_ms as f64 / reference.drain_ms as f64;
                rates.push(vec![
                    thousands(users as f64),
                    k.to_string(),
                    thousands(rate as f64),
                    format!(
                        "{} (bound {})",
                        thousands(r.busiest_second as f64),
                        thousands(bound as f64)
                    ),
                    format!(
                        "{:.1} ({:+.2}%)",
                        r.mean_rate,
                        (r.mean_rate / rate as f64 - 1.0) * 100.0
                    ),
                    format!(
                        "{:.1} s vs {:.1} s ({:+.2}%)",
                        r.drain_ms as f64 / 1000.0,
                        reference.drain_ms as f64 / 1000.0,
                        (drain - 1.0) * 100.0
                    ),
                ]);
                f.shard_rates.push((
                    users,
                    k,
                    r.busiest_second <= bound,
                    (r.mean_rate / rate as f64 - 1.0).abs() <= 0.01,
                    (drain - 1.0).abs() <= 0.01,
                ));
                if let Some((p50, p99, rel)) = r.position_error {
                    if k > 1 {
                        positions.push(vec![
                            thousands(users as f64),
                            k.to_string(),
                            thousands(p50 as f64),
                            thousands(p99 as f64),
                            format!("{:.2}%", rel * 100.0),
                        ]);
                    }
                }
            }
        }
    }
    print_table(
        "Fairness: displacement from global join order (goal at 1,000,000 users: p99 <= 500, max <= 1,000)",
        2,
        &["users", "K", "admitted", "p50", "p99", "max", "goal"],
        &fairness,
    );
    print_table(
        "Rates: busiest sliding second (bound RATE + max(BURST, RATE x tick)), mean over the drain, drain time against one key",
        2,
        &["users", "K", "RATE", "busiest second", "mean /s (vs RATE)", "drain (vs one key)"],
        &rates,
    );
    print_table(
        "Global position estimate (QUEUE.STATUS global_position) against the true position, 200 waiting users every 10 s",
        2,
        &["users", "K", "p50 |error|", "p99 |error|", "p99 |error| / position"],
        &positions,
    );

    // Failures: CAPACITY, sessions ending, the coordinator killed, a shard unreachable.
    let users = o.sim_users.iter().copied().min().unwrap_or(1_000_000);
    let k = 4;
    let rate = (users as u64 / 500).max(10);
    let reference = run(
        Scenario {
            users,
            shards: 0,
            correct_offsets: true,
            failures: true,
        },
        11,
    );
    let r = run(
        Scenario {
            users,
            shards: k,
            correct_offsets: true,
            failures: true,
        },
        11,
    );
    let bound = rate + (rate / 10).max(rate * TICK_MS / 1000);
    let row = vec![
        thousands(users as f64),
        k.to_string(),
        format!(
            "{} / {}",
            thousands(r.max_sessions as f64),
            thousands((rate * 10) as f64)
        ),
        format!(
            "{} (bound {})",
            thousands(r.busiest_second as f64),
            thousands(bound as f64)
        ),
        format!("{} / {}", thousands(r.p99 as f64), thousands(r.max as f64)),
        format!(
            "{:.1} s vs {:.1} s",
            r.drain_ms as f64 / 1000.0,
            reference.drain_ms as f64 / 1000.0
        ),
    ];
    f.shard_failures = Some((r.max_sessions <= rate * 10, r.busiest_second <= bound));
    print_table(
        "Failures: CAPACITY = 10 s of RATE, sessions end after 20-120 s (no-shows 30 s); coordinator killed at 100 s (a new one, new epoch, at 106 s); shard 1 unreachable from the coordinator 150-153 s",
        2,
        &["users", "K", "max live sessions / CAPACITY", "busiest second", "p99 / max displacement", "drain (vs one key)"],
        &[row],
    );
}
