//! The report: per-command latency and error replies, the sale's totals, and the module's own
//! view of the load.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use redis::Connection;
use seatq_testkit::info::info_entry;
use seatq_testkit::stats::percentile;

use crate::options::Options;
use crate::plan::{
    ABANDON_PCT, GREEDY_PCT, IDEMPOTENCY_PCT, LEAVE_WHILE_WAITING_PCT, RETRY_JOIN_PCT,
};
use crate::query;
use crate::run::Shared;
use crate::sale::{event_settings, Sale, RATE, ROWS_PER_SECTION, SEATS_PER_ROW};
use crate::settle::{count, FinalState};
use crate::stats::{Outcome, Stats, COMMANDS};
use crate::worker::MAX_PIPELINE;

/// What is about to run: the server, the event and its settings, the users and their load.
pub fn print_setup(
    options: &Options,
    url: &str,
    throwaway: bool,
    version: &str,
    sale: &Sale,
    seed: u64,
) {
    let seats = &sale.seat_names;
    println!("seatq flash-sale simulator");
    println!(
        "  server    {url} ({}{version})",
        if throwaway { "throwaway, " } else { "" }
    );
    println!("  event     {}  journal {}", sale.key, sale.journal);
    println!(
        "  seats     {} named, {} .. {} (rows of {SEATS_PER_ROW}, sections of {ROWS_PER_SECTION} rows)",
        seats.len(),
        seats[0],
        seats[seats.len() - 1]
    );
    let settings: Vec<String> = event_settings()
        .iter()
        .map(|(name, value)| format!("{name} {value}"))
        .collect();
    println!(
        "  settings  {} (QUEUE.CONFIG SET; times in ms, RATE per second)",
        settings.join("  ")
    );
    println!(
        "  users     {} on {} threads, arriving within {:.1} s; load {}",
        options.users,
        options.threads,
        options.arrival.as_secs_f64(),
        match options.rps {
            None => "not capped".to_string(),
            Some((a, b)) if a == b => format!("capped at {a} commands/s"),
            Some((a, b)) => format!("capped from {a} to {b} commands/s over the arrival phase"),
        }
    );
    println!(
        "  behaviour {IDEMPOTENCY_PCT}% join with IDEMPOTENCY ({RETRY_JOIN_PCT}% of them retry), \
         {LEAVE_WHILE_WAITING_PCT}% leave while waiting, {ABANDON_PCT}% abandon their hold, \
         {GREEDY_PCT}% try a fifth seat; seed {seed}"
    );
}

/// `name n, name n, ...`, in name order.
fn counts(by_name: &BTreeMap<String, u64>) -> String {
    let listed: Vec<String> = by_name
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    listed.join(", ")
}

/// A percentile of latencies in microseconds, in milliseconds.
fn percentile_ms(sorted_us: &[u32], q: f64) -> f64 {
    percentile(sorted_us, q).map_or(f64::NAN, |us| us as f64 / 1000.0)
}

pub fn print_commands(stats: &mut Stats, sale_secs: f64) {
    println!(
        "\n{:<14} {:>9} {:>9} {:>8} {:>8} {:>8}  error replies",
        "command", "calls", "calls/s", "p50 ms", "p95 ms", "p99 ms"
    );
    let mut all: Vec<u32> = Vec::new();
    for command in COMMANDS {
        let entry = &mut stats.0[command as usize];
        if entry.latencies_us.is_empty() {
            continue;
        }
        entry.latencies_us.sort_unstable();
        let v = &entry.latencies_us;
        println!(
            "{:<14} {:>9} {:>9.0} {:>8.2} {:>8.2} {:>8.2}  {}",
            command.name(),
            v.len(),
            v.len() as f64 / sale_secs,
            percentile_ms(v, 0.5),
            percentile_ms(v, 0.95),
            percentile_ms(v, 0.99),
            if entry.errors.is_empty() {
                "-".to_string()
            } else {
                counts(&entry.errors)
            }
        );
        all.extend_from_slice(v);
    }
    all.sort_unstable();
    if !all.is_empty() {
        println!(
            "{:<14} {:>9} {:>9.0} {:>8.2} {:>8.2} {:>8.2}",
            "all",
            all.len(),
            all.len() as f64 / sale_secs,
            percentile_ms(&all, 0.5),
            percentile_ms(&all, 0.95),
            percentile_ms(&all, 0.99)
        );
    }
    println!(
        "latency: client-observed, from sending a pipeline (up to {MAX_PIPELINE} commands of \
         different users) to the command's own reply; calls/s over the sale"
    );
}

pub fn print_totals(outcome: &Outcome, end: &FinalState, shared: &Shared, sale: &Sale) {
    let info = &end.seat_info;
    let abandoned = outcome.abandoned_holds.len();
    println!("\ntotals");
    println!(
        "  users joined {}; retried joins refused as DUPLICATE {} of {}",
        outcome.joined, outcome.duplicates_refused, outcome.retried_joins
    );
    println!(
        "  left the line while waiting {}; left when sold out: waiting {}, admitted (SOLD_OUT) {}",
        outcome.left_impatient, outcome.left_sold_out_waiting, outcome.gave_up_sold_out
    );
    // Only the front of the line can be admitted, so the line moves as fast as the front
    // user's client comes back, which may be slower than RATE.
    let admission_rate = match end.replay.admission_span_ms {
        Some((first, last)) if last > first => {
            format!(
                "{:.0}",
                (end.replay.admitted - 1) as f64 * 1000.0 / (last - first) as f64
            )
        }
        _ => "-".to_string(),
    };
    println!(
        "  admitted {} (QUEUE.INFO admitted_total {}), {admission_rate}/s from the first to the \
         last admission (server time; RATE {RATE})",
        outcome.admitted,
        count(&end.queue_info, "admitted_total")
    );
    println!(
        "  holds made {}; abandoned {abandoned}; lapsed before the confirm {}; returned by the \
         server {} (journal hold_expired; SEAT.INFO holds_expired_total {})",
        outcome.holds_made,
        outcome.late_holds.len(),
        end.replay.expired_holds.len(),
        count(info, "holds_expired_total")
    );
    println!(
        "  fifth seats refused by USER-LIMIT {}",
        outcome.limit_refusals
    );
    let sold = outcome.bought.len();
    println!(
        "  seats sold {sold} of {} to {} buyers ({:.2} each); available at the end {}",
        sale.seat_names.len(),
        outcome.buyers,
        sold as f64 / outcome.buyers.max(1) as f64,
        count(info, "available")
    );
    match shared.sold_out_at_us.load(Ordering::Relaxed) {
        _ if count(info, "available") > 0 => println!("  not sold out: the line ran out first"),
        0 => println!("  sold out as the last users finished"),
        at => println!("  sold out after {:.1} s", at as f64 / 1e6),
    }
    if outcome.lapsed_waiting + outcome.passes_lost > 0 {
        println!(
            "  WARNING: clients too slow: {} tickets lapsed while waiting, {} passes expired \
             before use (is --rps below what the users need?)",
            outcome.lapsed_waiting, outcome.passes_lost
        );
    }
    println!(
        "  journal {} entries: {}",
        end.replay.entries,
        counts(&end.replay.types)
    );
    println!("  sessions ended by: {}", counts(&end.replay.session_ends));
}

/// The module's own view of the same load (INFO seatq), for a server only this demo used.
pub fn print_module_view(con: &mut Connection) {
    let info: String = query(con, redis::cmd("INFO").arg("seatq"), "INFO seatq");
    println!("\nthe module's view (INFO seatq, server-side latency)");
    for line in info.lines() {
        let Some((name, stats)) = line.split_once(':') else {
            continue;
        };
        if let Some(command) = name.strip_prefix("seatq_cmd_") {
            let pick = |key: &str| info_entry(stats, key).unwrap_or("?");
            println!(
                "  {command:<14} calls {:>8}  p50 {:>7} us  p99 {:>7} us  max {:>9} us",
                pick("calls"),
                pick("p50_usec"),
                pick("p99_usec"),
                pick("max_usec")
            );
        } else if name.ends_with("_total") {
            println!("  {name} {stats}");
        }
    }
}
