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
    /// (N, seatq bytes/user with the journal on).
    pub memory_journal: Option<(usize, f64)>,
    /// (offered, achieved, p99 ms) for seatq, and the seed's p99 ms.
    pub latency: Option<(f64, f64, f64, f64)>,
    /// Per op, open-loop latency (ms): seatq p50, p99, seed p50, p99.
    pub latency_by_op: Vec<(Op, [f64; 4])>,
    /// The instruction section's goals.
    pub instructions: Option<InstructionFindings>,
}

/// One row of the instruction table: name, journaled write?, Ir per call of seatq (journal
/// on), of the floor module, of the seed's minimal Lua and of the bare command.
pub type InstructionRow = (
    &'static str,
    bool,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

/// What the instruction section found, as goal rows (target, for, figure, verdict).
pub struct InstructionFindings {
    rows: Vec<[String; 4]>,
}

/// CL.THROTTLE's denial in issue 14 (Redis 7.0), when redis-cell is not loaded.
const THROTTLE_DENIAL_REFERENCE: f64 = 12_000.0;

impl InstructionFindings {
    pub fn from_rows(
        rows: Vec<InstructionRow>,
        scale: Vec<(usize, f64, f64)>,
        cell_measured: bool,
    ) -> InstructionFindings {
        let mut out = Vec::new();
        let k = |x: f64| format!("{:.1}k", x / 1000.0);
        // Every journaled write within 1.25x of the floor write, one row each.
        for r in rows.iter().filter(|r| r.1) {
            if let (Some(on), Some(floor)) = (r.2, r.3) {
                out.push([
                    "journaled write <= 1.25x FLOOR.WRITE".to_string(),
                    r.0.to_string(),
                    format!("{} = {} of {}", k(on), ratio(on / floor), k(floor)),
                    verdict(on <= 1.25 * floor),
                ]);
            }
        }
        if let (Some(first), Some(last)) = (scale.first(), scale.last()) {
            let max = scale.iter().map(|l| l.1).fold(0.0, f64::max);
            let min = scale.iter().map(|l| l.1).fold(f64::INFINITY, f64::min);
            out.push([
                "STATUS <= 8k Ir, flat (max/min <= 1.10)".to_string(),
                format!(
                    "{} to {} waiting",
                    thousands(first.0 as f64),
                    thousands(last.0 as f64)
                ),
                format!("{} .. {} ({})", k(min), k(max), ratio(max / min)),
                if last.0 >= 10_000_000 {
                    verdict(max <= 8_000.0 && max / min <= 1.10)
                } else {
                    format!(
                        "{} (10,000,000 not measured)",
                        verdict(max <= 8_000.0 && max / min <= 1.10)
                    )
                },
            ]);
        }
        let find = |name: &str| rows.iter().find(|r| r.0 == name);
        if let Some(r) = find("QUEUE.ADMIT, refused poll (NOT_READY)") {
            if let Some(on) = r.2 {
                let (limit, source) = match (cell_measured, r.5) {
                    (true, Some(cell)) => (cell, "CL.THROTTLE denied, measured"),
                    _ => (THROTTLE_DENIAL_REFERENCE, "CL.THROTTLE denied, issue 14"),
                };
                out.push([
                    "refused ADMIT <= CL.THROTTLE denial".to_string(),
                    format!("{source}: {}", k(limit)),
                    format!("{} ({})", k(on), ratio(on / limit)),
                    verdict(on <= limit),
                ]);
            }
        }
        for name in [
            "QUEUE.ENQUEUE, new user",
            "QUEUE.ADMIT, claim (admitted ticket)",
        ] {
            if let Some(&(_, _, Some(on), _, Some(lua), _)) = find(name) {
                out.push([
                    "Ir <= 1/3 of the seed's minimal Lua".to_string(),
                    name.to_string(),
                    format!("{} vs {} = {}", k(on), k(lua), ratio(on / lua)),
                    verdict(on <= lua / 3.0),
                ]);
            }
        }
        InstructionFindings { rows: out }
    }
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
    if let Some((n, bytes)) = f.memory_journal {
        rows.push(vec![
            "<= 200 B per waiting user, journal on".to_string(),
            format!("{} users, journal on", thousands(n as f64)),
            format!("{bytes:.1} B"),
            if n >= 1_000_000 {
                verdict(bytes <= 200.0)
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
    if let Some(instructions) = &f.instructions {
        rows.extend(instructions.rows.iter().map(|r| r.to_vec()));
    }
    print_table(
        "== Targets (shared/PRODUCT.md); seatq with the journal on unless noted ==",
        4,
        &["target", "for", "figure", "verdict"],
        &rows,
    );
}

/// The wall-clock view as ratios (seatq with the journal on / the seed's Lua): server time and
/// ops/s at pipeline depth 16 (commands section), p50 and p99 under the open-loop load (latency
/// section). Absolute times move 2-3x between runs on shared machines; these ratios much less.
pub fn print_wall_clock_ratios(f: &Findings) {
    if f.commands.is_empty() && f.latency_by_op.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = Op::ALL
        .iter()
        .map(|&op| {
            let c = f
                .commands
                .iter()
                .find(|(o, _)| *o == op)
                .and_then(|(_, v)| v.first());
            let l = f
                .latency_by_op
                .iter()
                .find(|(o, _)| *o == op)
                .map(|(_, l)| l);
            vec![
                op.name().to_string(),
                c.map_or("-".into(), |c| ratio(c.usec)),
                c.map_or("-".into(), |c| ratio(c.ops)),
                l.map_or("-".into(), |l| ratio(l[0] / l[2])),
                l.map_or("-".into(), |l| ratio(l[1] / l[3])),
            ]
        })
        .collect();
    print_table(
        "== Wall clock, as ratios: seatq (journal on) / the seed's Lua ==",
        1,
        &[
            "operation",
            "server time P16",
            "ops/s P16",
            "latency p50",
            "latency p99",
        ],
        &rows,
    );
}
