//! seatq against the seed's design (Lua scripts over Streams, ZSETs and strings), side by side on
//! one server in one run, plus the bare commands as a floor. Sections (`--only <section>` runs
//! one):
//!
//! - `instructions`: instructions per call (Ir) under `valgrind --tool=callgrind`, the figure
//!   that does not move with the machine's load: every seatq command (and its refused-poll and
//!   already-waiting paths) with the journal on and off, beside the seed's minimal Lua, the
//!   seed's flows as their gateway runs them (`gateway`), a floor module
//!   (`crates/floor-module`), bare commands and redis-cell's CL.THROTTLE (`SEATQ_REDIS_CELL`);
//!   ratios, per-function breakdowns of the top commands, STATUS at 1,000 to `--instr-waiting`
//!   waiting users. Runs its own server under callgrind.
//! - `commands`: ENQUEUE, STATUS, ADMIT, HOLD, RELEASE as the seed's Lua scripts
//!   (`benches/lua/*.lua`, SCRIPT LOAD + EVALSHA), as seatq commands (journal on, the default,
//!   and journal off) and as one bare command (XADD, ZRANK, SET, HSET). Per phase: `--ops`
//!   calls after `CONFIG RESETSTAT`, server time per call from `INFO commandstats`, and the
//!   client's ops/s at pipeline depth 1 and 16. Phases alternate between the designs and repeat
//!   `--rounds` times; the tables give medians.
//! - `scale`: `QUEUE.STATUS` server time with 1,000 / 100,000 / 1,000,000 waiting users and
//!   memory per waiting user (`used_memory` delta / N, 36-character UUID-shaped user IDs; seatq
//!   with the journal off so only the line is measured), next to the seed's layout filled by its
//!   own enqueue script (per-user stream + dedupe key + waiting-zset entry) and its ZRANK status.
//! - `latency`: an open-loop mixed workload (20% ENQUEUE, 60% STATUS, 10% ADMIT, 10%
//!   HOLD/RELEASE) at `--rate` requests/s over `--connections` connections for `--seconds`;
//!   each request is scheduled at a fixed time and its latency counts from that time (no
//!   coordinated omission). Once through seatq, once through the seed's scripts, per round.
//! - `shards`: the sharded mode simulated to 10,000,000 users (no server): displacement from
//!   join order per K, rates, drain time, global position error, failures (`shards.rs`).
//! - `admission`: the server-called line under 1,000 to 100,000 simulated users, RATE x client
//!   delay x abandon share (`--admission-cells`, `--admission-seconds`): admissions/s from the
//!   journal against RATE, gaps between calls, CAPACITY, line order, ETA error (admission.rs).
//!
//! It ends with the wall-clock view as ratios and the product's targets, each "met" or "not
//! met"; it reports, it never fails.
//!
//! `cargo build --release && cargo bench --bench versus_seed [-- --server redis|valkey
//!  --rounds 3 --ops 20000 --memory-users 1000000 --rate 30000 --seconds 10 --connections 8
//!  --only instructions|commands|scale|latency|stalls|shards --instr-calls 2000 --instr-depth 16
//!  --instr-waiting 1000,10000,100000,1000000 --sim-users 1000000,10000000
//!  --sim-shards 1,2,4,8,16]` ("memory" is another name for "scale")
//!
//! Layout: `design` names the operations and dispatches them to `seed` (the Lua scripts),
//! `seatq` and `floor`; `gateway` builds the seed's flows as their gateway sends them;
//! `instructions` (with `callgrind`) is the instruction section; `phase` and `wire` send and time them, `server_stats` reads what the
//! server says; `commands`, `scale` and `latency` are the sections; `targets` and `report`
//! print.

mod admission;
mod commands;
mod design;
mod floor;
mod gateway;
mod instructions;
mod latency;
mod options;
mod phase;
mod report;
mod scale;
mod seatq;
mod seed;
mod server_stats;
mod shards;
mod stalls;
mod targets;
mod wire;

use std::time::Instant;

use seatq_testkit::info::server_version;
use seatq_testkit::server::{module_path, Server};

use options::{Options, Section};
use phase::Bench;
use seed::Scripts;
use server_stats::{flushall, info};
use targets::{print_targets, print_wall_clock_ratios, Findings};
use wire::Wire;

/// Where the run is, on stderr (the report goes to stdout).
fn progress(msg: &str) {
    eprintln!("[versus_seed] {msg}");
}

fn main() {
    let o = Options::parse();
    let wall = Instant::now();
    if !o.needs_server() {
        // The sharded mode's simulation needs no server.
        let mut f = Findings::default();
        println!(
            "seatq sharded mode, simulated | {} CPUs",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        shards::section(&o, &mut f);
        print_targets(&f);
        println!("\nwall time {:.0} s", wall.elapsed().as_secs_f64());
        return;
    }
    let server = Server::start(o.kind, &[]);
    let mut con = server.connection();
    let info_server = info(&mut con, "server");
    let version = server_version(&info_server).map_or("", |(_, version)| version);
    let scripts = Scripts::load(&mut con);
    let wire = Wire::connect(server.port);
    let mut b = Bench {
        server,
        con,
        wire,
        scripts,
    };
    let load = || {
        let l = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    };
    println!(
        "seatq versus the seed: {} {} | module {} | {} CPUs, load average at start {}",
        o.kind.name(),
        version,
        module_path().display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load()
    );
    let mut f = Findings::default();
    let mut times = Vec::new();
    type Runner = fn(&mut Bench, &Options, &mut Findings);
    let sections: [(Section, &str, Runner); 7] = [
        (Section::Instructions, "instructions", |_, o, f| {
            instructions::section(o, f)
        }),
        (Section::Commands, "commands", commands::section),
        (Section::Scale, "scale", scale::section),
        (Section::Latency, "latency", latency::section),
        (Section::Shards, "shards", |_, o, f| shards::section(o, f)),
        (Section::Stalls, "stalls", stalls::section),
        (Section::Admission, "admission", admission::section),
    ];
    for (section, name, run) in sections {
        if o.runs(section) {
            let t = Instant::now();
            run(&mut b, &o, &mut f);
            flushall(&mut b.con);
            times.push(format!("{name} {:.0} s", t.elapsed().as_secs_f64()));
        }
    }
    print_wall_clock_ratios(&f);
    print_targets(&f);
    println!(
        "\nwall time {:.0} s ({}); load average at end {}",
        wall.elapsed().as_secs_f64(),
        times.join(", "),
        load()
    );
}
