//! Section `stalls`: issue 12's table, row by row, at `--stall-users` waiting users (10,000,000
//! by default). A Redis module runs on the server's only command thread, so every row asks one
//! question: while this work runs, how long does any other client wait?
//!
//! Each row is watched three ways, reset before the row and read after it:
//! - a PING prober: a thread on its own connection sending PING and waiting for PONG, again and
//!   again; the longest wait is the longest stall any client saw (it includes the loopback round
//!   trip and the machine's scheduling noise: row 0 measures that floor on an idle server);
//! - the server's latency monitor (`latency-monitor-threshold 1`): the largest event of each
//!   kind (`command`, `fast-command`, `fork`, ...) at or above 1 ms;
//! - the slowlog (`slowlog-log-slower-than 1000`): the slowest command and its duration.
//!
//! Timer ticks appear in neither server-side monitor; only the prober sees them.
//!
//! Rows (issue 12's numbering): 0 idle floor; 1 opening a pre-queue of N; 2 DEQUEUE COUNT 10000
//! until ended-ticket compaction runs; 3 the sweep of N lapsed tickets after a restart (and
//! 3b with AOF and a replica); 4 the first SEAT write after promoting a replica with 100,000
//! lapsed holds; 5 the timer with 10,000 / 100,000 idle events (CPU too); 6 QUEUE.RANGE and
//! QUEUE.DEQUEUE over tickets with maximal DATA, SEAT.STATUS of 10,000 seats (1,000 per call); 7 filling one
//! event to N; 8 DEBUG DIGEST-VALUE of the event beside a zset of the same size; 9 memory per
//! waiting user; 10 BGSAVE fork, MEMORY USAGE, COPY, DUMP/RESTORE (beside a zset), DEL with
//! lazy free, FLUSHALL ASYNC.
//!
//! `cargo bench --bench versus_seed -- --only stalls [--server valkey] [--stall-users N]
//!  [--stall-rows 0,1,7]`; `--stall-instructions` counts instead one slice of seatq's work at a
//! time under callgrind (units.rs).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redis::{Connection, Value};
use seatq_testkit::info::{info_entry, info_value};
use seatq_testkit::reply::{int, record_field, text};
use seatq_testkit::server::{Server, ServerKind};

use crate::design::user_id;
use crate::options::Options;
use crate::phase::Bench;
use crate::progress;
use crate::report::{print_table, thousands};
use crate::server_stats::info;
use crate::targets::Findings;
use crate::wire::Wire;

mod probe;
mod rows;
mod units;
mod util;

use probe::*;
use rows::*;
use units::*;
use util::*;

// ---------------------------------------------------------------------------------------------

pub fn section(b: &mut Bench, o: &Options, _f: &mut Findings) {
    let kind = b.server.kind;
    if o.stall_instructions {
        print_units(kind, &units(kind));
        return;
    }
    let n = o.stall_users;
    if o.stall_fifo {
        use_fifo(kind);
    }
    let wanted = |row: u32| o.stall_rows.as_ref().is_none_or(|r| r.contains(&row));
    let mut rows = Vec::new();
    progress(&format!(
        "stalls: {} users, load average {}{}",
        thousands(n as f64),
        load_average(),
        if o.stall_fifo {
            ", servers and prober SCHED_FIFO"
        } else {
            ""
        }
    ));
    let t = Instant::now();
    let mut times = Vec::new();
    let mut step = |name: &str, t: &mut Instant| {
        times.push(format!("{name} {:.0} s", t.elapsed().as_secs_f64()));
        *t = Instant::now();
        progress(&format!(
            "stalls: {name} done, load average {}",
            load_average()
        ));
    };
    let mut t2 = t;
    if wanted(0) {
        rows.push(row_idle(kind));
        step("0", &mut t2);
    }
    if [2, 7, 8, 9, 10].into_iter().any(wanted) {
        rows_big(kind, n, &wanted, &mut rows);
        step("7/9/8/10/2", &mut t2);
    }
    if wanted(1) {
        row_prequeue(kind, n, &mut rows);
        step("1", &mut t2);
    }
    if wanted(3) {
        row_sweep(kind, n, false, &mut rows);
        step("3", &mut t2);
        row_sweep(kind, n.min(1_000_000), true, &mut rows);
        step("3b", &mut t2);
    }
    if wanted(4) {
        row_promotion(kind, &mut rows);
        step("4", &mut t2);
    }
    if wanted(5) {
        row_idle_events(kind, &mut rows);
        step("5", &mut t2);
    }
    if wanted(6) {
        row_big_replies(kind, &mut rows);
        step("6", &mut t2);
    }
    rows.sort_by_key(|r| {
        let digits: String = r.id.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().unwrap_or(0)
    });
    if o.stall_fifo {
        println!(
            "\nServers (`chrt -f -R 10`) and the prober thread (priority 20) ran SCHED_FIFO: \
             other processes' load does not preempt them."
        );
    }
    print_rows(kind, n, &rows);
    println!(
        "\nstalls: {:.0} s ({}); load average at end {}",
        t.elapsed().as_secs_f64(),
        times.join(", "),
        load_average()
    );
}

fn print_rows(kind: ServerKind, n: usize, rows: &[Row]) {
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let o = &r.obs;
            // Timer runs are timed to the microsecond by seatq itself; the latency monitor
            // rounds them down to whole milliseconds.
            let server_ok = o.server_ms() <= 1.0 && o.timer.over_1ms == 0;
            let persistence: Vec<String> = o
                .persistence()
                .iter()
                .map(|(e, ms)| format!("{e} {ms} ms"))
                .collect();
            let besides = if persistence.is_empty() {
                String::new()
            } else {
                format!(
                    " (the server's own persistence: {})",
                    persistence.join(", ")
                )
            };
            let met = if r.obs.pings == 0 && o.latency.is_empty() && o.slowlog.is_none() {
                "-".to_string()
            } else if let Some(why) = r.exempt.filter(|_| !server_ok) {
                format!("exempt ({why})")
            } else if server_ok && o.ping_ms <= 1.0 {
                format!("yes{besides}")
            } else if server_ok {
                format!("server yes; PING gap no{besides}")
            } else {
                format!("NO{besides}")
            };
            vec![
                r.id.to_string(),
                r.what.clone(),
                r.size.clone(),
                if o.pings == 0 {
                    "-".into()
                } else {
                    format!(
                        "{:.2} ({} > 1 ms of {})",
                        o.ping_ms, o.pings_over_1ms, o.pings
                    )
                },
                o.worst_latency()
                    .map_or("none".into(), |(e, ms)| format!("{ms} ms {e}")),
                o.slowlog.as_ref().map_or("none".into(), |(us, c)| {
                    format!("{:.1} ms {c}", *us as f64 / 1000.0)
                }),
                met,
            ]
        })
        .collect();
    print_table(
        &format!(
            "== Stalls ({}, --stall-users {}): longest PING gap on its own connection (ms; gaps \
             over 1 ms of pings answered), largest latency-monitor event (threshold 1 ms), \
             slowest command in the slowlog (threshold 1 ms) ==",
            kind.name(),
            thousands(n as f64)
        ),
        3,
        &[
            "row",
            "what",
            "size",
            "longest PING gap ms",
            "worst latency event",
            "worst slowlog",
            "goal <= 1 ms met?",
        ],
        &table,
    );
    println!("\nNotes:");
    for r in rows {
        for n in &r.notes {
            println!("  {} {}: {n}", r.id, r.what);
        }
        if !r.obs.latency.is_empty() || r.obs.slowlog_count > 0 {
            let all: Vec<String> = r
                .obs
                .latency
                .iter()
                .map(|(e, ms)| {
                    let secs = r
                        .obs
                        .latency_seconds
                        .iter()
                        .find(|(s, _)| s == e)
                        .map_or(0, |(_, n)| *n);
                    format!("{e} max {ms} ms ({secs} s with one)")
                })
                .collect();
            println!(
                "  {} {}: latency events: {}; {} slowlog entries",
                r.id,
                r.what,
                all.join(", "),
                r.obs.slowlog_count
            );
        }
        let t = r.obs.timer;
        if t.runs > 0 {
            println!(
                "  {} {}: timer runs {}, over 1 ms {}, over 2.5 ms {} (INFO seatq, to the µs)",
                r.id, r.what, t.runs, t.over_1ms, t.over_2_5ms
            );
        }
        if r.obs.slowest.len() > 1 {
            let all: Vec<String> = r
                .obs
                .slowest
                .iter()
                .map(|(us, c)| format!("{:.1} ms {c}", *us as f64 / 1000.0))
                .collect();
            println!("  {} {}: slowest: {}", r.id, r.what, all.join("; "));
        }
    }
}
