//! The invariants checked at the end, against SEAT.STATUS, SEAT.INFO, QUEUE.INFO, the journal
//! replay and what the clients saw.

use std::collections::HashSet;

use crate::admission::{AdmissionView, MIN_MEASURED_MS, RATE_TOLERANCE};
use crate::plan::{COMPACTION_THRESHOLD, LINGERERS, PROBES};
use crate::replay::{SeatFate, TicketFate};
use crate::run::{Samples, Shared};
use crate::sale::{user_name, Sale, USER_LIMIT};
use crate::settle::{count, due_us, met, FinalState};
use crate::stats::Outcome;

/// The longest a measured stretch may go without a call (ms).
pub const MAX_GAP_MS: u64 = 500;

/// One invariant's verdict.
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// Everything the checks look at.
pub struct Evidence<'a> {
    pub outcome: &'a Outcome,
    pub end: &'a FinalState,
    pub sale: &'a Sale,
    pub admission: &'a AdmissionView,
    pub shared: &'a Shared,
    pub samples: &'a Samples,
    pub chaos: bool,
    pub lingerers_planned: u64,
}

fn first<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .first()
        .map(|x| format!(" (e.g. {x})"))
        .unwrap_or_default()
}

pub fn check_invariants(ev: &Evidence) -> Vec<Check> {
    let Evidence {
        outcome,
        end,
        sale,
        admission,
        ..
    } = *ev;
    let replay = &end.replay;
    let info = &end.seat_info;
    let settings = &sale.settings;
    let mut checks = Vec::new();

    // 1. Admissions per second against RATE where enough live users waited.
    let rate = admission.rate();
    let off = rate.map(|r| (r / settings.rate as f64 - 1.0) * 100.0);
    let verdict = if !admission.judged() {
        format!(
            "not judged: {} ms measured (< {MIN_MEASURED_MS} ms with >= {} waiting)",
            admission.measured_ms, admission.waiting_threshold
        )
    } else {
        format!(
            "{:.1}/s ({:+.2}%) over {:.1} s and {} calls in {} stretches with >= {} waiting and \
             CAPACITY not full{}",
            rate.unwrap_or(0.0),
            off.unwrap_or(0.0),
            admission.measured_ms as f64 / 1000.0,
            admission.measured_calls,
            admission.stretches,
            admission.waiting_threshold,
            if ev.chaos { ", faults left out" } else { "" }
        )
    };
    let rate_ok = !admission.judged() || admission.within_tolerance(settings.rate);
    checks.push(Check {
        name: "admissions per second == RATE (within 2%)",
        ok: rate_ok || ev.chaos,
        detail: format!(
            "RATE {}: {verdict}{}",
            settings.rate,
            match (ev.chaos, rate_ok) {
                (true, false) => format!(
                    "; off by more than {:.0}% (not judged under --chaos)",
                    RATE_TOLERANCE * 100.0
                ),
                (true, true) => " (not judged under --chaos)".to_string(),
                _ => String::new(),
            }
        ),
    });

    // 2. No stall in the calls.
    let gap = admission.longest_gap;
    checks.push(Check {
        name: "longest gap between consecutive admissions",
        ok: gap.is_none_or(|(g, _)| g <= MAX_GAP_MS) || ev.chaos,
        detail: match gap {
            Some((g, at)) => format!(
                "{g} ms (ending {at:.1} s into the sale; limit {MAX_GAP_MS} ms), {} gaps over \
                 50 ms, inside the measured stretches{}",
                admission.gaps_over_50ms,
                if ev.chaos {
                    " (not judged under --chaos)"
                } else {
                    ""
                }
            ),
            None => "nothing measured".to_string(),
        },
    });

    // 3. CAPACITY.
    checks.push(Check {
        name: "CAPACITY never exceeded",
        ok: replay.max_sessions <= settings.capacity,
        detail: format!(
            "at most {} live sessions (journal: admitted minus session_ended) of CAPACITY {}; \
             {} calls made with fewer than BURST free",
            replay.max_sessions, settings.capacity, admission.capacity_bound_calls
        ),
    });

    // 4. Admission order == line order.
    checks.push(Check {
        name: "admission order == line order",
        ok: replay.calls_out_of_order == 0,
        detail: format!(
            "{} admitted entries, {} not the earliest waiting ticket or not after the previous \
             one (serials increase: no pre-queue)",
            replay.calls.len(),
            replay.calls_out_of_order
        ),
    });

    // 5. No seat sold twice; every acknowledged sale present.
    let sold_twice = replay.sales_per_seat.iter().filter(|&&n| n > 1).count();
    let missing_sales: Vec<String> = outcome
        .bought
        .iter()
        .filter(|&&(seat, user)| {
            let theirs = SeatFate::Sold(user_name(user));
            end.seats[seat] != theirs || replay.seats[seat] != theirs
        })
        .map(|&(seat, user)| format!("{} of {}", sale.seat_names[seat], user_name(user)))
        .collect();
    checks.push(Check {
        name: "no seat sold twice; every acknowledged sale present",
        ok: sold_twice == 0 && missing_sales.is_empty(),
        detail: format!(
            "{} seats sold in the journal, {sold_twice} of them more than once; {} sales \
             acknowledged to clients (+{} found after a lost reply), {} not sold to them in \
             SEAT.STATUS and the journal{}",
            replay.sales_per_seat.iter().filter(|&&n| n > 0).count(),
            outcome.bought.len(),
            outcome.bought_unacknowledged.len(),
            missing_sales.len(),
            first(&missing_sales)
        ),
    });

    // 6. Inventory adds up.
    let (total, available, held, sold) = (
        count(info, "total"),
        count(info, "available"),
        count(info, "held"),
        count(info, "sold"),
    );
    checks.push(Check {
        name: "sold + held + available == total",
        ok: sold + held + available == total
            && held == 0
            && outcome.inventory_mismatches.is_empty(),
        detail: format!(
            "{sold} + {held} + {available} == {total} at the end (after {:.1} s of settling, \
             {:.1} s of it reading the journal), {} of {} samples during the sale off{}",
            end.settle_secs,
            end.journal_secs,
            outcome.inventory_mismatches.len(),
            outcome.inventory_samples,
            first(&outcome.inventory_mismatches)
        ),
    });

    // 7. Every abandoned hold returned.
    let client_lapsed: HashSet<u64> = outcome
        .abandoned_holds
        .iter()
        .chain(&outcome.late_holds)
        .copied()
        .collect();
    let not_returned = client_lapsed
        .iter()
        .filter(|h| !replay.expired_holds.contains(h))
        .count();
    // Holds whose number is unknown (reply lost) may be returned too.
    let mut unexplained: Vec<u64> = replay
        .expired_holds
        .difference(&client_lapsed)
        .copied()
        .collect();
    unexplained.sort_unstable();
    let wrongly_returned = unexplained
        .len()
        .saturating_sub(outcome.holds_without_number as usize);
    checks.push(Check {
        name: "every abandoned hold returned",
        ok: not_returned == 0 && wrongly_returned == 0,
        detail: format!(
            "{} abandoned and {} lapsed before the confirm; {not_returned} not returned \
             (journal hold_expired); {wrongly_returned} returned that no client had let lapse{}",
            outcome.abandoned_holds.len() as u64 + outcome.holds_without_number,
            outcome.late_holds.len(),
            if wrongly_returned > 0 {
                format!(
                    " (holds {:?} returned, {} of them may be holds whose reply was lost)",
                    &unexplained[..unexplained.len().min(10)],
                    outcome.holds_without_number
                )
            } else {
                String::new()
            }
        ),
    });

    // 8. USER-LIMIT.
    let most = replay.sold_per_user.values().copied().max().unwrap_or(0);
    let over = replay
        .sold_per_user
        .values()
        .filter(|&&n| n > USER_LIMIT)
        .count();
    checks.push(Check {
        name: "no user above USER-LIMIT",
        ok: over == 0,
        detail: format!(
            "most seats sold to one user {most} (limit {USER_LIMIT}); {over} users above; \
             {} fifth seats refused",
            outcome.limit_refusals
        ),
    });

    // 9. Journal replay == SEAT.STATUS / SEAT.INFO / QUEUE.INFO.
    let differing = end
        .seats
        .iter()
        .zip(&replay.seats)
        .filter(|(now, replayed)| now != replayed)
        .count();
    let replay_sold = replay
        .seats
        .iter()
        .filter(|s| matches!(s, SeatFate::Sold(_)))
        .count() as u64;
    let replay_held = replay
        .seats
        .iter()
        .filter(|s| matches!(s, SeatFate::Held(_)))
        .count() as u64;
    let q = &end.queue_info;
    let totals = [
        ("joined_total", replay.joined),
        ("admitted_total", replay.calls.len() as u64),
        ("claimed_total", replay.claimed.len() as u64),
        ("left_total", replay.left),
        ("expired_total", replay.expired),
        ("sessions_ended_total", replay.sessions_ended),
    ];
    let totals_off: Vec<String> = totals
        .iter()
        .filter(|(name, n)| count(q, name) != *n)
        .map(|(name, n)| format!("{name} {} != journal {n}", count(q, name)))
        .collect();
    checks.push(Check {
        name: "journal replay == SEAT.STATUS, SEAT.INFO, QUEUE.INFO",
        ok: differing == 0
            && replay.anomalies_total == 0
            && replay_sold == sold
            && replay_held == held
            && totals_off.is_empty(),
        detail: format!(
            "{} seats, {differing} differ from SEAT.STATUS; sold {replay_sold} / {sold} \
             (SEAT.INFO), held {replay_held} / {held}; QUEUE.INFO totals {}{}",
            end.seats.len(),
            if totals_off.is_empty() {
                "equal (joined, admitted, claimed, left, expired, sessions ended)".to_string()
            } else {
                totals_off.join(", ")
            },
            replay
                .anomalies
                .first()
                .map(|a| format!("; {} anomalies, e.g. {a}", replay.anomalies_total))
                .unwrap_or_default()
        ),
    });

    // 10. Every acknowledged join / admission / claim present.
    let joins_missing: Vec<String> = outcome
        .ack_joins
        .iter()
        .filter(|(serial, user)| replay.joined_user.get(serial) != Some(&user_name(*user)))
        .map(|(serial, user)| format!("serial {serial} of {}", user_name(*user)))
        .collect();
    let called = |serial: &u32| {
        matches!(
            replay.fates.get(serial),
            Some(TicketFate::Session | TicketFate::Ended(_))
        )
    };
    let admissions_missing = outcome.ack_admitted.iter().filter(|s| !called(s)).count();
    let claims_missing = outcome
        .ack_claims
        .iter()
        .filter(|s| !replay.claimed.contains(s))
        .count();
    checks.push(Check {
        name: "every acknowledged join, admission and claim present",
        ok: joins_missing.is_empty() && admissions_missing == 0 && claims_missing == 0,
        detail: format!(
            "joins {} acknowledged, {} without their joined entry{}; admissions {} seen by \
             STATUS, {admissions_missing} without an admitted entry; claims {}, \
             {claims_missing} without a claimed entry",
            outcome.ack_joins.len(),
            joins_missing.len(),
            first(&joins_missing),
            outcome.ack_admitted.len(),
            outcome.ack_claims.len()
        ),
    });

    // 11. Tickets and sessions ended as their users' behaviour calls for.
    let pending: HashSet<u32> = end.pending.iter().map(|e| e.serial).collect();
    let faults = ev.shared.disruption_spans();
    let mut excused = 0;
    let mut wrong: Vec<String> = Vec::new();
    let mut wrong_total = 0;
    for e in &outcome.expectations {
        let fate = replay.fates.get(&e.serial);
        if met(e.expect, fate) || pending.contains(&e.serial) {
            continue;
        }
        let due = due_us(e, sale);
        if ev.chaos && faults.iter().any(|&(a, b)| b >= e.from_us && a <= due) {
            excused += 1;
            continue;
        }
        wrong_total += 1;
        if wrong.len() < 3 {
            wrong.push(format!(
                "serial {} {}: journal {fate:?}",
                e.serial,
                e.expect.name()
            ));
        }
    }
    checks.push(Check {
        name: "tickets and sessions ended as their users' behaviour calls for",
        ok: wrong_total == 0,
        detail: format!(
            "{} expectations (left, lapsed, no-show, abandoned session, completed); \
             {wrong_total} not met{}; {} not due yet at the end{}",
            outcome.expectations.len(),
            first(&wrong),
            end.pending.len(),
            if ev.chaos {
                format!("; {excused} overlapped by a fault, not judged")
            } else {
                String::new()
            }
        ),
    });

    checks.push(Check {
        name: "retried joins refused as DUPLICATE <own ticket>",
        ok: outcome.duplicates_refused + outcome.duplicates_after_lapse == outcome.retried_joins,
        detail: format!(
            "{} of {} retries answered DUPLICATE with the first ticket{}",
            outcome.duplicates_refused,
            outcome.retried_joins,
            match outcome.duplicates_after_lapse {
                0 => String::new(),
                n => format!(
                    ", {n} DUPLICATE without it (sent after the ticket's heartbeat deadline)"
                ),
            }
        ),
    });

    // 13. Old sessions after compaction.
    if ev.lingerers_planned > 0 {
        let ended = replay.joined.saturating_sub(count(q, "waiting"));
        let compacted = ev
            .shared
            .compacted_at_us
            .load(std::sync::atomic::Ordering::Relaxed);
        let crossed = ended > COMPACTION_THRESHOLD;
        let memory = match ev.samples.memory_at_compaction {
            Some((before, after)) => format!("; MEMORY USAGE {before} -> {after} B around it"),
            None => String::new(),
        };
        checks.push(Check {
            name: "sessions admitted long ago answer by USER after compaction",
            ok: outcome.linger_failures.is_empty()
                && outcome.lingerers_checked > 0
                && outcome.lingerers_checked + outcome.lingerers_lapsed == ev.lingerers_planned
                && (compacted > 0 || !crossed),
            detail: format!(
                "{} of {} sessions of the first users (serials < {}) kept answering STATUS \
                 ({} polls) and then STATUS, ADMIT, LEAVE by USER{}; compaction {}{memory}{}",
                outcome.lingerers_checked,
                ev.lingerers_planned,
                LINGERERS + PROBES,
                outcome.linger_polls_ok,
                match outcome.lingerers_lapsed {
                    0 => String::new(),
                    n => format!(" ({n} lapsed: their client polled too late)"),
                },
                match (compacted, crossed) {
                    (0, false) => format!(
                        "not reached ({ended} tickets ended, threshold {COMPACTION_THRESHOLD})"
                    ),
                    (0, true) => format!(
                        "NOT observed although {ended} tickets ended (> {COMPACTION_THRESHOLD})"
                    ),
                    (at, _) => format!(
                        "observed at {:.1} s (the oldest tombstone, a probe's ticket, gone)",
                        at as f64 / 1e6
                    ),
                },
                first(&outcome.linger_failures)
            ),
        });
    }

    checks.push(Check {
        name: "no unexpected replies",
        ok: outcome.unexpected_total == 0,
        detail: match outcome.unexpected.first() {
            Some(first) => {
                let kinds: Vec<String> = outcome
                    .unexpected_kinds
                    .iter()
                    .map(|(kind, (n, at))| format!("{kind} x{n} (first at {at:.1} s)"))
                    .collect();
                format!(
                    "{} unexpected: {}; e.g. {first}",
                    outcome.unexpected_total,
                    kinds.join(", ")
                )
            }
            None => "0".to_string(),
        },
    });
    checks
}

/// Whether a check passed only because it was not judged (too little measured, or under
/// `--chaos`): printed SKIP, not OK.
fn skipped(check: &Check) -> bool {
    check.detail.contains("not judged:") || check.detail.contains("(not judged under --chaos)")
}

/// One line per invariant, numbered, OK, SKIP or FAILED first.
pub fn print(title: &str, checks: &[Check], numbered_from: usize) {
    println!("\n{title}");
    for (i, check) in checks.iter().enumerate() {
        println!(
            "  {} {}. {}: {}",
            match (check.ok, skipped(check)) {
                (false, _) => "FAILED",
                (true, true) => "SKIP  ",
                (true, false) => "OK    ",
            },
            numbered_from + i,
            check.name,
            check.detail
        );
    }
}
