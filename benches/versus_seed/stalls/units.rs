//! `--stall-instructions`: what seatq itself does in one go, counted by callgrind, so that the
//! verdict on "at most 1 ms of server time" does not rest on this machine's clock alone.
//!
//! seatq's long work is sliced by time: a timer run works until 250 µs are spent, a DEQUEUE
//! stops at 256 KiB of reply or 250 µs. A slice can therefore last longer than its budget only
//! by the one indivisible unit it started last (an upkeep step, a chunk of tickets) plus what
//! it does once (opening the key, trimming the journal, the reply). Under callgrind the clock
//! runs tens of times slower, so each run or call does about one unit: the largest count here
//! is that unit and that overhead, measured, on top of the budget. QUEUE.INFO, a fast command
//! with no budget, is counted at two line lengths: its cost must not grow with the line.
//!
//! Each measured function is collected alone (`--toggle-collect`) and dumped after each call
//! (`--dump-after`), with the cache simulated: the figure per call is callgrind's cycle
//! estimate, Ir + 10 x first-level misses + 100 x last-level misses, its usual yardstick. At
//! 1 GHz, 1,000,000 of these are 1 ms; this machine's cores run near 3 GHz.

use std::path::{Path, PathBuf};

use seatq_testkit::callgrind;

use super::*;

/// Lapsed tickets the timer sweeps, with the journal on.
const SWEEP: usize = 100_000;
/// Tickets DEQUEUE COUNT 10000 takes, from a line this long, until compaction has run.
const LINE: usize = 300_000;

pub(super) struct Unit {
    what: String,
    calls: usize,
    /// Cycle estimates per call: p50, p99, max.
    p50: u64,
    p99: u64,
    max: u64,
    /// Instructions of the largest call.
    max_ir: u64,
}

pub(super) fn units(kind: ServerKind) -> Vec<Unit> {
    vec![
        timer_runs_through_a_sweep(kind),
        dequeue_calls(kind, false),
        dequeue_calls(kind, true),
        info_calls(kind, 200_000),
        info_calls(kind, 2_000_000),
    ]
}

/// QUEUE.INFO (a fast command, polled by the exporter) on a line of `waiting`: its cost must
/// not grow with the line.
fn info_calls(kind: ServerKind, waiting: usize) -> Unit {
    let key = "units:info";
    let c = Counted::start(
        kind,
        "seatq::commands::queue::info",
        key,
        &["HEARTBEAT", "86400000"],
    );
    let port = c.server.port;
    fill(
        port,
        0..waiting,
        FILL_DEPTH,
        0,
        "units: info fill",
        enqueue(key),
    );
    let calls = c.calls(|con| {
        for _ in 0..20 {
            cmd(con, &["QUEUE.INFO", key]);
        }
    });
    unit(
        format!("QUEUE.INFO, {} waiting", thousands(waiting as f64)),
        calls,
    )
}

/// A server counting each call of one module function on its own, with a paused event.
struct Counted {
    server: Server,
    dir: PathBuf,
    con: Connection,
}

impl Counted {
    /// Starts the server with each call of `function` (a symbol of the module) collected alone
    /// and dumped after it, and pauses admission on `key` with `settings` (QUEUE.CONFIG SET).
    fn start(kind: ServerKind, function: &str, key: &str, settings: &[&str]) -> Counted {
        let dir = callgrind::dump_dir();
        let mut prefix = callgrind::bare_prefix(&dir);
        prefix.extend([
            "--cache-sim=yes".into(),
            format!("--toggle-collect={function}"),
            format!("--dump-after={function}"),
        ]);
        let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
        let mut server = Server::start_under(kind, &prefix, &[]);
        server.start_timeout = Duration::from_secs(600);
        let mut con = server.connection();
        cmd(&mut con, &["QUEUE.PAUSE", key]);
        let mut config = vec!["QUEUE.CONFIG", key, "SET"];
        config.extend(settings);
        cmd(&mut con, &config);
        Counted { server, dir, con }
    }

    /// Counts the calls `work` causes, instrumented only meanwhile; then stops the server and
    /// reads every dump.
    fn calls(mut self, work: impl FnOnce(&mut Connection)) -> Vec<(u64, u64)> {
        let pid = self.server.pid().expect("pid");
        callgrind::control(pid, "--instr=on");
        work(&mut self.con);
        callgrind::control(pid, "--instr=off");
        drop(self.server);
        calls_in(&self.dir)
    }
}

/// Every dump in `dir`: (cycle estimate, Ir) per call; the directory is removed.
fn calls_in(dir: &Path) -> Vec<(u64, u64)> {
    let mut calls = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dump dir").flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.starts_with("cg.out.") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let events: Vec<&str> = text
            .lines()
            .find_map(|l| l.strip_prefix("events:"))
            .map(|e| e.split_whitespace().collect())
            .unwrap_or_default();
        let totals: Vec<u64> = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("summary:")
                    .or_else(|| l.strip_prefix("totals:"))
            })
            .map(|t| {
                t.split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let of = |e: &str| {
            events
                .iter()
                .position(|x| *x == e)
                .and_then(|i| totals.get(i).copied())
                .unwrap_or(0)
        };
        let ir = of("Ir");
        if ir == 0 {
            continue;
        }
        let l1 = of("I1mr") + of("D1mr") + of("D1mw");
        let ll = of("ILmr") + of("DLmr") + of("DLmw");
        calls.push((ir + 10 * l1 + 100 * ll, ir));
    }
    let _ = std::fs::remove_dir_all(dir);
    calls
}

fn unit(what: String, mut calls: Vec<(u64, u64)>) -> Unit {
    assert!(!calls.is_empty(), "{what}: no call was counted");
    calls.sort_unstable();
    let at = |q: f64| calls[((calls.len() - 1) as f64 * q) as usize].0;
    let &(max, max_ir) = calls.last().expect("calls");
    Unit {
        what,
        calls: calls.len(),
        p50: at(0.5),
        p99: at(0.99),
        max,
        max_ir,
    }
}

/// Timer runs while it sweeps SWEEP tickets that lapsed together (journal on).
fn timer_runs_through_a_sweep(kind: ServerKind) -> Unit {
    let key = "units:sweep";
    let c = Counted::start(kind, "seatq::timer::tick", key, &["HEARTBEAT", "5000"]);
    let port = c.server.port;
    fill(
        port,
        0..SWEEP,
        FILL_DEPTH,
        0,
        "units: sweep fill",
        enqueue(key),
    );
    let calls = c.calls(|con| {
        let started = Instant::now();
        while int(&cmd(con, &["QUEUE.LEN", key])) > 0 {
            assert!(
                started.elapsed() < Duration::from_secs(1800),
                "the sweep did not end"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    unit(
        format!(
            "a timer run sweeping {} lapsed tickets (journal on)",
            thousands(SWEEP as f64)
        ),
        calls,
    )
}

/// QUEUE.DEQUEUE COUNT 10000: over LINE small tickets until compaction has run, or over
/// tickets of 128 KiB of DATA (each reply stops at about 256 KiB).
fn dequeue_calls(kind: ServerKind, big: bool) -> Unit {
    let key = "units:line";
    let mut c = Counted::start(
        kind,
        "seatq::commands::queue::dequeue",
        key,
        &["HEARTBEAT", "86400000", "JOURNAL", "0"],
    );
    let tickets = if big { 200 } else { LINE };
    let data = max_data();
    fill(
        c.server.port,
        0..tickets,
        FILL_DEPTH,
        0,
        "units: line fill",
        |i, out| {
            let user = user_id(i);
            let mut args: Vec<&[u8]> = vec![b"QUEUE.ENQUEUE", key.as_bytes(), user.as_bytes()];
            if big {
                args.push(b"DATA");
                args.extend(data.iter().map(Vec::as_slice));
            }
            pack(&args, out)
        },
    );
    let compacted_before = effects(&mut c.con, "compacted");
    let mut compacted = 0;
    let calls = c.calls(|con| {
        loop {
            let r = cmd(con, &["QUEUE.DEQUEUE", key, "COUNT", "10000"]);
            let empty = matches!(&r, Value::Array(a) if a.is_empty());
            if empty || int(&cmd(con, &["QUEUE.LEN", key])) == 0 {
                break;
            }
        }
        compacted = effects(con, "compacted") - compacted_before;
    });
    assert!(big || compacted > 0, "no compaction step ran");
    let what = if big {
        "QUEUE.DEQUEUE COUNT 10000, 128 KiB DATA per ticket".to_string()
    } else {
        format!(
            "QUEUE.DEQUEUE COUNT 10000 through {} tickets ({compacted} compaction steps)",
            thousands(LINE as f64)
        )
    };
    unit(what, calls)
}

pub(super) fn print_units(kind: ServerKind, units: &[Unit]) {
    let table: Vec<Vec<String>> = units
        .iter()
        .map(|u| {
            vec![
                u.what.clone(),
                thousands(u.calls as f64),
                thousands(u.p50 as f64),
                thousands(u.p99 as f64),
                thousands(u.max as f64),
                thousands(u.max_ir as f64),
                format!("{:.2}", u.max as f64 / 1e6),
            ]
        })
        .collect();
    print_table(
        &format!(
            "== One slice of seatq's work under callgrind ({}): cycle estimate per call \
             (Ir + 10 x L1 misses + 100 x LL misses), each run or call counted alone ==",
            kind.name()
        ),
        1,
        &[
            "what",
            "calls",
            "p50",
            "p99",
            "max",
            "max: Ir",
            "max in ms at 1 GHz",
        ],
        &table,
    );
}
