//! The product's targets (shared/PRODUCT.md), each "met" or "not met" from what the sections
//! found.

use crate::design::Op;
use crate::report::{print_table, ratio, thousands};

/// One seatq variant against the seed's script: ratios of server time and of ops/s at P16.
pub struct VersusLua {
    /// "" for the default (journal on, IDEMPOTENCY), else how it differs.
    pub variant: String,
    pub usec: f64,
    pub ops: f64,
}

/// What the targets block needs, filled by the sections that ran.
#[derive(Default)]
pub struct Findings {
    /// Per op and seatq variant ("" = the default: journal on, IDEMPOTENCY, listed first):
    /// server time and ops/s at P16, each against the seed's script.
    pub commands: Vec<(Op, Vec<VersusLua>)>,
    /// (waiting, seatq STATUS usec) per level.
    pub status: Vec<(usize, f64)>,
    /// (N, seatq bytes/user, seed bytes/user).
    pub memory: Option<(usize, f64, f64)>,
    /// (offered, achieved, p99 ms) for seatq, and the seed's p99 ms.
    pub latency: Option<(f64, f64, f64, f64)>,
    /// Sharded mode at 1,000,000 users: (K, p99, max displacement).
    pub shard_fairness: Vec<(usize, u64, u64)>,
    /// (users, K, busiest second within bound, mean within 1%, drain within 1%).
    pub shard_rates: Vec<(usize, usize, bool, bool, bool)>,
    /// The failure run: (sessions within CAPACITY, busiest second within bound).
    pub shard_failures: Option<(bool, bool)>,
}

fn verdict(met: bool) -> String {
    if met { "met" } else { "not met" }.to_string()
}

pub fn print_targets(f: &Findings) {
    let mut rows = Vec::new();
    for server_time in [true, false] {
        let pick = |v: &VersusLua| if server_time { v.usec } else { v.ops };
        for (op, variants) in &f.commands {
            let main = pick(&variants[0]);
            let others: Vec<String> = variants[1..]
                .iter()
                .map(|v| format!("{} {}", v.variant, ratio(pick(v))))
                .collect();
            rows.push(vec![
                if server_time {
                    "server time <= 1/3 of Lua"
                } else {
                    "ops/s at P16 >= 3x Lua"
                }
                .to_string(),
                op.name().to_string(),
                format!("{} ({})", ratio(main), others.join("; ")),
                verdict(if server_time {
                    main <= 1.0 / 3.0
                } else {
                    main >= 3.0
                }),
            ]);
        }
    }
    if let (Some(first), Some(last)) = (f.status.first(), f.status.last()) {
        let r = last.1 / first.1;
        rows.push(vec![
            "STATUS at 1M <= 1.5x at 1k".to_string(),
            format!(
                "{} vs {} waiting",
                thousands(last.0 as f64),
                thousands(first.0 as f64)
            ),
            format!("{:.2} / {:.2} us = {}", last.1, first.1, ratio(r)),
            if last.0 >= 1_000_000 {
                verdict(r <= 1.5)
            } else {
                "not measured (fewer than 1,000,000 waiting)".into()
            },
        ]);
    }
    if let Some((n, ours, theirs)) = f.memory {
        rows.push(vec![
            "<= 128 B per waiting user".to_string(),
            format!("{} users, journal off", thousands(n as f64)),
            format!("{ours:.1} B (seed layout {} B)", thousands(theirs)),
            if n >= 1_000_000 {
                verdict(ours <= 128.0)
            } else {
                "not measured (--memory-users below 1,000,000)".into()
            },
        ]);
    }
    if let Some((rate, achieved, p99, seed_p99)) = f.latency {
        rows.push(vec![
            "p99 < 1 ms at 30,000 req/s".to_string(),
            format!(
                "{} offered, {} achieved",
                thousands(rate),
                thousands(achieved)
            ),
            format!("p99 {p99:.3} ms (seed Lua {seed_p99:.3} ms)"),
            if rate >= 30_000.0 {
                verdict(p99 < 1.0 && achieved >= 0.99 * rate)
            } else {
                "not measured (--rate below 30,000)".into()
            },
        ]);
    }
    if !f.shard_fairness.is_empty() {
        let worst_p99 = f.shard_fairness.iter().map(|r| r.1).max().unwrap_or(0);
        let worst_max = f.shard_fairness.iter().map(|r| r.2).max().unwrap_or(0);
        let ks: Vec<String> = f.shard_fairness.iter().map(|r| r.0.to_string()).collect();
        rows.push(vec![
            "sharded: p99 displacement <= 500, max <= 1,000".to_string(),
            format!("1,000,000 users, K = {}", ks.join(", ")),
            format!("worst p99 {worst_p99}, worst max {worst_max}"),
            verdict(worst_p99 <= 500 && worst_max <= 1_000),
        ]);
    }
    if !f.shard_rates.is_empty() {
        let all =
            |pick: fn(&(usize, usize, bool, bool, bool)) -> bool| f.shard_rates.iter().all(pick);
        rows.push(vec![
            "sharded: any second <= RATE + max(BURST, RATE x tick), mean and drain within 1%"
                .to_string(),
            format!("{} runs", f.shard_rates.len()),
            format!(
                "bound {}, mean {}, drain {}",
                all(|r| r.2),
                all(|r| r.3),
                all(|r| r.4)
            ),
            verdict(all(|r| r.2 && r.3 && r.4)),
        ]);
    }
    if let Some((sessions, rate)) = f.shard_failures {
        rows.push(vec![
            "sharded, coordinator killed and a shard cut off: CAPACITY and RATE hold".to_string(),
            "the failure run".to_string(),
            format!("sessions within CAPACITY {sessions}, busiest second within bound {rate}"),
            verdict(sessions && rate),
        ]);
    }
    print_table(
        "== Targets (shared/PRODUCT.md); seatq with the journal on unless noted ==",
        4,
        &["target", "for", "figure", "verdict"],
        &rows,
    );
}
