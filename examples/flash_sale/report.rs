//! The report: per-command latency and error replies, the sale's totals, and the module's own
//! view of the load.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use redis::Connection;
use seatq_testkit::info::info_entry;
use seatq_testkit::stats::percentile;

use crate::admission::AdmissionView;
use crate::options::Options;
use crate::plan::{
    ABANDON_HOLD_PCT, ABANDON_WAITING_PCT, BROWSE_AND_LEAVE_PCT, GREEDY_PCT, IDEMPOTENCY_PCT,
    LEAVE_WHILE_WAITING_PCT, LINGERERS, NO_SHOW_PCT, PROBES, RETRY_JOIN_PCT,
};
use crate::query;
use crate::run::{Samples, Shared};
use crate::sale::{Sale, ROWS_PER_SECTION, SEATS_PER_ROW};
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
    let settings: Vec<String> = sale
        .settings
        .fields()
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
        "  polling   {}",
        match options.poll_ms {
            None => format!(
                "QUEUE.STATUS every retry_after_ms the server gives (at most {} ms)",
                sale.settings.retry_cap_ms()
            ),
            Some((lo, hi)) => {
                format!("QUEUE.STATUS every {lo}-{hi} ms (drawn per user), like a browser")
            }
        }
    );
    if let Some((_, hi)) = options.poll_ms {
        if hi >= sale.settings.poll_deadline_ms() || hi >= sale.settings.claim_ttl_ms {
            println!(
                "  WARNING   polls {hi} ms apart exceed 3/4 of HEARTBEAT ({} ms) or CLAIM-TTL \
                 ({} ms): tickets will lapse and calls be missed",
                sale.settings.poll_deadline_ms(),
                sale.settings.claim_ttl_ms
            );
        }
    }
    println!(
        "  behaviour {IDEMPOTENCY_PCT}% join with IDEMPOTENCY ({RETRY_JOIN_PCT}% of them retry); \
         waiting: {LEAVE_WHILE_WAITING_PCT}% leave, {ABANDON_WAITING_PCT}% stop polling; \
         called: {NO_SHOW_PCT}% never claim, {BROWSE_AND_LEAVE_PCT}% claim and leave, \
         {ABANDON_HOLD_PCT}% abandon their hold, {GREEDY_PCT}% try a fifth seat{}; seed {seed}",
        if options.users >= crate::plan::LINGER_MIN_USERS {
            format!(
                "; the first {LINGERERS} keep their session to the end, the next {PROBES} \
                 leave at once (compaction probes)"
            )
        } else {
            String::new()
        }
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
    println!("\ntotals");
    println!(
        "  users joined {} ({} joined again after a lapse); retried joins refused as DUPLICATE \
         {} of {}",
        outcome.joined, outcome.rejoined, outcome.duplicates_refused, outcome.retried_joins
    );
    println!(
        "  while waiting: left {}, stopped polling {}, left when sold out {}; probes left {}",
        outcome.left_impatient,
        outcome.abandoned_waiting,
        outcome.left_sold_out_waiting,
        outcome.probes
    );
    println!(
        "  called {} (journal admitted; QUEUE.INFO admitted_total {}); seen admitted by their \
         user {}, claimed {}, never claimed {}; claimed and left {}; left at SOLD_OUT {}",
        end.replay.calls.len(),
        count(&end.queue_info, "admitted_total"),
        outcome.admitted_seen,
        outcome.claimed,
        outcome.no_shows,
        outcome.browsed_and_left,
        outcome.gave_up_sold_out
    );
    println!(
        "  holds made {}; abandoned {}; lapsed before the confirm {}; returned by the server {} \
         (journal hold_expired; SEAT.INFO holds_expired_total {})",
        outcome.holds_made,
        outcome.abandoned_holds.len() as u64 + outcome.holds_without_number,
        outcome.late_holds.len(),
        end.replay.expired_holds.len(),
        count(info, "holds_expired_total")
    );
    println!(
        "  fifth seats refused by USER-LIMIT {}; the seat map read {} times (every {:.2} s, \
         shared by the workers)",
        outcome.limit_refusals,
        shared.seat_map.readings(),
        crate::seat_map::max_age_us(sale.seat_names.len()) as f64 / 1e6
    );
    let sold = outcome.bought.len() + outcome.bought_unacknowledged.len();
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
    let slow =
        outcome.lapsed_waiting + outcome.missed_calls + outcome.passes_lost + outcome.late_confirms;
    if slow > 0 {
        println!(
            "  WARNING: clients too slow: {} tickets lapsed while waiting, {} calls missed, {} \
             passes expired before use, {} holds lapsed before the confirm (is --rps or \
             --poll-ms below what the users need, or the machine overloaded?)",
            outcome.lapsed_waiting,
            outcome.missed_calls,
            outcome.passes_lost,
            outcome.late_confirms
        );
    }
    println!(
        "  client lag (a request sent after it was due): p50 < {} ms, p99 < {} ms, max {} ms; {} \
         requests more than 1 s late",
        outcome.lag.quantile_ms(0.5),
        outcome.lag.quantile_ms(0.99),
        outcome.lag.max_us / 1000,
        outcome.lag.over_ms(1000)
    );
    if shared.router.chaos {
        println!(
            "  connection: {} reconnects, {} replies lost with a connection (sent again), {} \
             refused as not primary (READONLY/LOADING: sent again), {} outcomes resolved by \
             reading the seats",
            outcome.reconnects, outcome.replies_lost, outcome.refused_not_primary, outcome.resolved
        );
        if !outcome.fault_casualties.is_empty() {
            println!(
                "  explained by a fault: {}",
                counts(&outcome.fault_casualties)
            );
        }
    }
    println!(
        "  journal {} entries: {}",
        end.replay.entries,
        counts(&end.replay.types)
    );
    println!("  sessions ended by: {}", counts(&end.replay.session_ends));
}

/// Admissions against RATE, stalls and CAPACITY, from the journal.
pub fn print_admission(view: &AdmissionView, end: &FinalState, sale: &Sale, samples: &Samples) {
    let s = &sale.settings;
    println!("\nadmission (journal admitted entries, server time)");
    let overall = view
        .overall_rate()
        .map_or("-".to_string(), |r| format!("{r:.1}/s"));
    println!(
        "  {} calls over {:.1} s: {overall} from the first to the last",
        view.calls,
        view.span_ms as f64 / 1000.0
    );
    match view.rate() {
        Some(rate) => println!(
            "  {rate:.1}/s against RATE {} ({:+.2}%) over {:.1} s, {} calls in {} stretches with \
             >= {} tickets waiting and CAPACITY not full (each stretch's first {} calls, a \
             possible burst, left out)",
            s.rate,
            (rate / s.rate as f64 - 1.0) * 100.0,
            view.measured_ms as f64 / 1000.0,
            view.measured_calls,
            view.stretches,
            view.waiting_threshold,
            s.bucket() - 1
        ),
        None => println!(
            "  no stretch with >= {} tickets waiting and CAPACITY not full: rate not measured",
            view.waiting_threshold
        ),
    }
    if !view.top_gaps.is_empty() {
        let gaps: Vec<String> = view
            .top_gaps
            .iter()
            .map(|(gap, at)| format!("{gap} ms ending at {at:.1} s"))
            .collect();
        println!(
            "  longest gaps between consecutive calls in those stretches: {}; {} over 50 ms (one \
             call every {:.1} ms at RATE)",
            gaps.join(", "),
            view.gaps_over_50ms,
            1000.0 / s.rate as f64
        );
    }
    println!(
        "  live sessions at most {} of CAPACITY {} (journal); {} calls with CAPACITY nearly full",
        end.replay.max_sessions, s.capacity, view.capacity_bound_calls
    );
    if let Some(peak) = samples.points.iter().max_by_key(|p| p.1) {
        println!(
            "  event memory at most {:.1} MB (MEMORY USAGE at {:.0} s, {} waiting, {} sessions)",
            peak.1 as f64 / 1e6,
            peak.0,
            peak.2,
            peak.3
        );
    }
}

/// The module's own view of the same load (INFO seatq), for a server only this demo used.
pub fn print_module_view(con: &mut Connection) {
    let info: String = query(con, redis::cmd("INFO").arg("seatq"), "INFO seatq");
    println!(
        "\nthe module's view (INFO seatq, server-side latency, since the server (under --chaos: \
         the primary) last started)"
    );
    let histogram = |command: &str| -> Vec<(String, u64)> {
        let prefix = format!("seatq_latency_{command}:");
        info.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map(|h| {
                h.split(',')
                    .filter_map(|e| {
                        let (bound, n) = e.strip_prefix("le_")?.split_once('=')?;
                        Some((bound.to_string(), n.parse().ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    // The histogram's bucket holding the q-th call: "<= bound us".
    let quantile = |h: &[(String, u64)], q: f64| -> String {
        let total = h.last().map_or(0, |b| b.1);
        h.iter()
            .find(|(_, n)| *n as f64 >= q * total as f64 && total > 0)
            .map_or("?".to_string(), |(bound, _)| format!("<= {bound}"))
    };
    for line in info.lines() {
        let Some((name, stats)) = line.split_once(':') else {
            continue;
        };
        if let Some(command) = name.strip_prefix("seatq_cmd_") {
            let pick = |key: &str| info_entry(stats, key).unwrap_or("?");
            let calls: u64 = pick("calls").parse().unwrap_or(0);
            let usec: u64 = pick("usec").parse().unwrap_or(0);
            let h = histogram(command);
            println!(
                "  {command:<14} calls {calls:>8}  failed {:>7}  mean {:>6.1} us  p50 {:>9} us  \
                 p99 {:>9} us",
                pick("failed"),
                usec as f64 / calls.max(1) as f64,
                quantile(&h, 0.5),
                quantile(&h, 0.99)
            );
        } else if name.ends_with("_total") {
            println!("  {name} {stats}");
        }
    }
}

/// Each fault of `--chaos` with what it did.
pub fn print_faults(chaos: &crate::chaos::Chaos) {
    println!("\nfaults (in the order performed; seconds since the start of the sale)");
    for (i, r) in chaos.reports.iter().enumerate() {
        println!(
            "  {} {}. at {:>5.1} s, {:>5.1} s long  {:<24} {}",
            if r.ok && r.digests_equal != Some(false) {
                "OK    "
            } else {
                "FAILED"
            },
            i + 1,
            r.at_s,
            r.secs,
            r.fault.name(),
            r.outcome
        );
    }
}
