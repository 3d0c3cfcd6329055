//! seatq's commands against the seed's Lua scripts, side by side on one server in one run.
//! For each pair: server time per call (INFO commandstats usec_per_call, reset before each phase)
//! and client-observed ops/s at pipeline depth 1 and 16. Phases alternate and repeat; the
//! report gives medians and the seatq/Lua ratios.
//!
//! `cargo bench --bench versus_lua [-- --ops 20000 --rounds 3 --server redis|valkey]`

#[path = "../tests/common/server.rs"]
#[allow(dead_code)]
mod server;

use std::time::Instant;

use redis::{Connection, Script};

const HOLD_LUA: &str = include_str!("lua/hold_seat_atomic.lua");
const RELEASE_LUA: &str = include_str!("lua/release_seat_atomic.lua");

struct Options {
    ops: usize,
    rounds: usize,
    kind: server::ServerKind,
}

fn options() -> Options {
    let mut o = Options {
        ops: 20_000,
        rounds: 3,
        kind: server::ServerKind::Redis,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ops" => o.ops = args.next().and_then(|v| v.parse().ok()).expect("--ops N"),
            "--rounds" => {
                o.rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rounds N")
            }
            "--server" => {
                o.kind = if args.next().as_deref() == Some("valkey") {
                    server::ServerKind::Valkey
                } else {
                    server::ServerKind::Redis
                }
            }
            _ => {} // cargo bench passes --bench
        }
    }
    o
}

fn usec_per_call(con: &mut Connection, command: &str) -> f64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(con).unwrap();
    let prefix = format!("cmdstat_{command}:");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|l| {
            l.split(',')
                .find_map(|kv| kv.strip_prefix("usec_per_call="))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// One phase: `ops` calls built by `call(i)`, sent in pipelines of `depth`. Returns
/// (usec_per_call of `stat`, ops/s seen by the client).
fn phase(
    con: &mut Connection,
    stat: &str,
    ops: usize,
    depth: usize,
    call: &dyn Fn(usize) -> redis::Cmd,
) -> (f64, f64) {
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(con).unwrap();
    let start = Instant::now();
    let mut i = 0;
    while i < ops {
        let mut pipe = redis::pipe();
        for j in i..(i + depth).min(ops) {
            pipe.add_command(call(j)).ignore();
        }
        let _: () = pipe.query(con).unwrap();
        i += depth;
    }
    let secs = start.elapsed().as_secs_f64();
    (usec_per_call(con, stat), ops as f64 / secs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let o = options();
    let server = server::Server::start(o.kind, &[]);
    let mut con = server.connection();
    let hold = Script::new(HOLD_LUA);
    let release = Script::new(RELEASE_LUA);
    let _: () = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(HOLD_LUA)
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(RELEASE_LUA)
        .query(&mut con)
        .unwrap();
    let seat = |i: usize| format!("S-{i}");
    // The seed layout: status hash + inventory counter, every seat AVAILABLE.
    for chunk in (0..o.ops).collect::<Vec<_>>().chunks(1000) {
        let mut cmd = redis::cmd("HSET");
        cmd.arg("seat:status:bench");
        for &i in chunk {
            cmd.arg(seat(i)).arg("AVAILABLE");
        }
        let _: () = cmd.query(&mut con).unwrap();
    }
    let _: () = redis::cmd("SET")
        .arg("inventory:bench")
        .arg(o.ops)
        .query(&mut con)
        .unwrap();
    // seatq: one event per journal setting with the same seats.
    for event in ["bench:{on}", "bench:{off}"] {
        for chunk in (0..o.ops).collect::<Vec<_>>().chunks(1000) {
            let mut cmd = redis::cmd("SEAT.ADD");
            cmd.arg(event);
            for &i in chunk {
                cmd.arg(seat(i));
            }
            let _: () = cmd.query(&mut con).unwrap();
        }
    }
    let _: () = redis::cmd("QUEUE.CONFIG")
        .arg("bench:{off}")
        .arg("SET")
        .arg("JOURNAL")
        .arg("off")
        .query(&mut con)
        .unwrap();

    type Maker = Box<dyn Fn(usize) -> redis::Cmd>;
    /// A compared design: its label, the commandstats names of its hold and release, and the
    /// calls that make them.
    type Variant = (&'static str, &'static str, Maker, Maker);
    let lua_hold: Maker = Box::new(move |i| {
        let mut c = redis::cmd("EVALSHA");
        c.arg(hold.get_hash())
            .arg(3)
            .arg("seat:status:bench")
            .arg("inventory:bench")
            .arg(format!("hold:seat:S-{i}"))
            .arg(format!("S-{i}"))
            .arg(format!("user-{i}"))
            .arg(600);
        c
    });
    let lua_release: Maker = Box::new(move |i| {
        let mut c = redis::cmd("EVALSHA");
        c.arg(release.get_hash())
            .arg(3)
            .arg("seat:status:bench")
            .arg("inventory:bench")
            .arg(format!("hold:seat:S-{i}"))
            .arg(format!("S-{i}"));
        c
    });
    let seat_hold = |event: &'static str| -> Maker {
        Box::new(move |i| {
            let mut c = redis::cmd("SEAT.HOLD");
            c.arg(event).arg(format!("user-{i}")).arg(format!("S-{i}"));
            c
        })
    };
    let seat_release = |event: &'static str| -> Maker {
        Box::new(move |i| {
            let mut c = redis::cmd("SEAT.RELEASE");
            c.arg(event).arg(format!("user-{i}")).arg(format!("S-{i}"));
            c
        })
    };
    // (label, command stat, maker); each hold phase is followed by its release phase so the
    // seats are available again for the next round.
    let pairs: Vec<(&str, Vec<Variant>)> = vec![(
        "hold / release",
        vec![
            ("seed Lua (EVALSHA)", "evalsha", lua_hold, lua_release),
            (
                "seatq, journal on",
                "seat.hold|seat.release",
                seat_hold("bench:{on}"),
                seat_release("bench:{on}"),
            ),
            (
                "seatq, journal off",
                "seat.hold|seat.release",
                seat_hold("bench:{off}"),
                seat_release("bench:{off}"),
            ),
        ],
    )];
    println!(
        "server: {} | {} ops per phase, {} rounds, medians",
        o.kind.name(),
        o.ops,
        o.rounds
    );
    for (title, variants) in &pairs {
        println!("\n{title}");
        println!(
            "{:<22} {:>14} {:>14} {:>12} {:>12} {:>12} {:>12}",
            "",
            "hold us/call",
            "release us/call",
            "hold P1/s",
            "hold P16/s",
            "rel P1/s",
            "rel P16/s"
        );
        let mut rows: Vec<(String, [f64; 6])> = Vec::new();
        for (label, stat, hold, release) in variants {
            let stats: Vec<&str> = stat.split('|').collect();
            let (hold_stat, release_stat) = (stats[0], *stats.last().unwrap());
            let mut samples: [Vec<f64>; 6] = Default::default();
            for _ in 0..o.rounds {
                for (depth, (us, ops)) in [(1usize, (0usize, 2usize)), (16, (0, 3))] {
                    let (u, rate) = phase(&mut con, hold_stat, o.ops, depth, hold.as_ref());
                    if depth == 16 {
                        samples[us].push(u);
                    }
                    samples[ops].push(rate);
                    let (u, rate) = phase(&mut con, release_stat, o.ops, depth, release.as_ref());
                    if depth == 16 {
                        samples[1].push(u);
                    }
                    samples[if depth == 1 { 4 } else { 5 }].push(rate);
                }
            }
            let m = samples.map(median);
            println!(
                "{:<22} {:>14.2} {:>14.2} {:>12.0} {:>12.0} {:>12.0} {:>12.0}",
                label, m[0], m[1], m[2], m[3], m[4], m[5]
            );
            rows.push((label.to_string(), m));
        }
        let lua = rows[0].1;
        for (label, m) in &rows[1..] {
            println!(
                "{label:<22} vs Lua: server time {:.2}x / {:.2}x (hold/release, lower is better); ops/s at P16 {:.2}x / {:.2}x",
                m[0] / lua[0], m[1] / lua[1], m[3] / lua[3], m[5] / lua[5]
            );
        }
    }
}
