//! Section 1: ENQUEUE, STATUS, ADMIT, HOLD and RELEASE side by side, as the seed's scripts,
//! as seatq commands (journal on and off) and as bare commands.

use std::collections::HashMap;

use redis::Cmd;
use seatq_testkit::reply::{record_field, text};

use crate::design::{Design, Kind, Op, Subject};
use crate::options::Options;
use crate::phase::{rotation, run_phase, ticket_of, Bench, Sample};
use crate::progress;
use crate::report::{median, print_table, ratio, refused, thousands};
use crate::seatq;
use crate::targets::{Findings, VersusLua};

pub fn section(b: &mut Bench, o: &Options, f: &mut Findings) {
    let ops = o.ops;
    let designs = [
        Design::new("seed Lua (EVALSHA)", Kind::Seed, "bench"),
        Design::new("seatq, journal on", Kind::Seatq, "bench:{on}"),
        Design::new("seatq, journal on", Kind::Seatq, "bench:{plain}")
            .without_idempotency()
            .running_only(Op::Enqueue),
        Design::new("seatq, journal off", Kind::Seatq, "bench:{off}").without_journal(),
        Design::new("floor: bare command", Kind::Floor, "bench"),
    ];
    // Two sets of seats (one per pipeline depth) so a hold phase at P16 follows the one at P1
    // without meeting held seats; each release phase frees what its hold phase took.
    let seats: Vec<String> = (0..2 * ops).map(|i| format!("S-{i}")).collect();
    for d in &designs {
        d.setup(&mut b.con, &seats);
    }
    const DEPTHS: [usize; 2] = [1, 16];
    let mut samples: HashMap<(Op, usize, usize), Vec<Sample>> = HashMap::new();
    for round in 0..o.rounds {
        progress(&format!("commands: round {}/{}", round + 1, o.rounds));
        // This round's users: 2 x ops new ones, joined at P1 then P16, then polled, admitted
        // (seatq: the server calls them all, then each ADMIT claims its ticket; the seed's
        // script admits in line order, so each ADMIT is for the front), and holding one seat
        // each (seatq: with the pass its claim returned).
        let mut tickets: Vec<Vec<String>> = vec![vec![String::new(); 2 * ops]; designs.len()];
        let mut passes: Vec<Vec<String>> = vec![vec![String::new(); 2 * ops]; designs.len()];
        for op in Op::ALL {
            for d in &designs {
                if d.kind == Kind::Seatq && d.runs(Op::Admit) {
                    match op {
                        Op::Admit => seatq::call_all(&mut b.con, &d.key, 0),
                        Op::Hold => seatq::pause(&mut b.con, &d.key),
                        _ => {}
                    }
                }
            }
            for (di, depth) in DEPTHS.into_iter().enumerate() {
                for k in rotation(designs.len(), round) {
                    let design = &designs[k];
                    if !design.runs(op) {
                        continue;
                    }
                    let slots = di * ops..(di + 1) * ops;
                    let cmds: Vec<Cmd> = slots
                        .clone()
                        .map(|slot| {
                            let s = Subject {
                                user: round * 2 * ops + slot,
                                ticket: &tickets[k][slot],
                                seat: &seats[slot],
                                pass: &passes[k][slot],
                            };
                            design.cmd(op, &b.scripts, &s)
                        })
                        .collect();
                    let (sample, replies) = run_phase(b, design.stat(op), depth, &cmds);
                    if design.kind == Kind::Seatq {
                        for (slot, r) in slots.zip(&replies) {
                            match op {
                                Op::Enqueue => tickets[k][slot] = ticket_of(r),
                                Op::Admit => {
                                    passes[k][slot] =
                                        record_field(r, "pass").map(text).unwrap_or_default()
                                }
                                _ => {}
                            }
                        }
                    }
                    samples.entry((op, k, di)).or_default().push(sample);
                }
            }
        }
    }
    println!(
        "\n== 1. Commands side by side: {} calls per phase, {} rounds, medians ==",
        thousands(ops as f64),
        o.rounds
    );
    println!(
        "   us/call = INFO commandstats usec / calls (EVALSHA's for the scripts) after CONFIG RESETSTAT;\n   \
         ops/s = what the client saw at pipeline depth 1 and 16; 'x Lua' = against the seed's script\n   \
         (server time at P16: lower is better; ops/s at P16: higher is better)."
    );
    for op in Op::ALL {
        let med = |k: usize, di: usize, get: fn(&Sample) -> f64| -> f64 {
            median(samples[&(op, k, di)].iter().map(get).collect())
        };
        let lua_usec = med(0, 1, |s| s.usec);
        let lua_ops = med(0, 1, |s| s.ops_s);
        let mut rows = Vec::new();
        let mut found = Vec::new();
        for (k, d) in designs.iter().enumerate() {
            if !d.runs(op) {
                continue;
            }
            let (usec1, usec16) = (med(k, 0, |s| s.usec), med(k, 1, |s| s.usec));
            let (ops1, ops16) = (med(k, 0, |s| s.ops_s), med(k, 1, |s| s.ops_s));
            let all: Vec<&Sample> = (0..2).flat_map(|di| &samples[&(op, k, di)]).collect();
            rows.push(vec![
                d.label.to_string(),
                d.what(op).to_string(),
                format!("{usec1:.2}"),
                format!("{usec16:.2}"),
                ratio(usec16 / lua_usec),
                thousands(ops1),
                thousands(ops16),
                ratio(ops16 / lua_ops),
                refused(all.iter().map(|s| (s.failures, &s.first_failure))),
            ]);
            if d.kind == Kind::Seatq {
                found.push(VersusLua {
                    variant: d.variant(),
                    usec: usec16 / lua_usec,
                    ops: ops16 / lua_ops,
                });
            }
        }
        f.commands.push((op, found));
        print_table(
            op.name(),
            2,
            &[
                "design",
                "runs",
                "us/call P1",
                "us/call P16",
                "x Lua",
                "ops/s P1",
                "ops/s P16",
                "x Lua",
                "refused",
            ],
            &rows,
        );
    }
}
