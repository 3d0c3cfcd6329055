//! The invariants checked at the end, against SEAT.STATUS, SEAT.INFO, QUEUE.INFO, the journal
//! replay and what the clients saw.

use std::collections::HashSet;

use crate::replay::SeatFate;
use crate::sale::{user_name, Sale, USER_LIMIT};
use crate::settle::{count, FinalState};
use crate::stats::Outcome;

/// One invariant's verdict.
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

pub fn check_invariants(outcome: &Outcome, end: &FinalState, sale: &Sale) -> Vec<Check> {
    let replay = &end.replay;
    let info = &end.seat_info;
    let mut checks = Vec::new();

    // 1. No seat sold twice, and every sale a client was told about is in SEAT.STATUS.
    let sold_twice = replay.sales_per_seat.iter().filter(|&&n| n > 1).count();
    let not_theirs: Vec<&(usize, u32)> = outcome
        .bought
        .iter()
        .filter(|&&(seat, user)| end.seats[seat] != SeatFate::Sold(user_name(user)))
        .collect();
    checks.push(Check {
        name: "no seat sold twice",
        ok: sold_twice == 0 && not_theirs.is_empty(),
        detail: format!(
            "{} seats sold in the journal, {sold_twice} of them more than once; {} seats \
             clients bought, {} not sold to them in SEAT.STATUS{}",
            replay.sales_per_seat.iter().filter(|&&n| n > 0).count(),
            outcome.bought.len(),
            not_theirs.len(),
            not_theirs
                .first()
                .map(|(seat, user)| format!(
                    " (e.g. {} of {})",
                    sale.seat_names[*seat],
                    user_name(*user)
                ))
                .unwrap_or_default()
        ),
    });

    // 2. Inventory adds up, nothing is left held, every abandoned hold came back.
    let (total, available, held, sold) = (
        count(info, "total"),
        count(info, "available"),
        count(info, "held"),
        count(info, "sold"),
    );
    let left_behind: Vec<u64> = outcome
        .abandoned_holds
        .iter()
        .chain(&outcome.late_holds)
        .copied()
        .filter(|h| !replay.expired_holds.contains(h))
        .collect();
    let client_lapsed: HashSet<u64> = outcome
        .abandoned_holds
        .iter()
        .chain(&outcome.late_holds)
        .copied()
        .collect();
    let wrongly_expired = replay.expired_holds.difference(&client_lapsed).count();
    checks.push(Check {
        name: "sold + held + available == total; abandoned holds came back",
        ok: sold + held + available == total
            && held == 0
            && outcome.inventory_mismatches.is_empty()
            && left_behind.is_empty()
            && wrongly_expired == 0,
        detail: format!(
            "{sold} + {held} + {available} == {total} at the end (after {:.1} s for holds to \
             lapse), {} of {} samples during the sale off; {} abandoned or late holds, {} not \
             returned; {wrongly_expired} returned holds that clients confirmed{}",
            end.settle_secs,
            outcome.inventory_mismatches.len(),
            outcome.inventory_samples,
            client_lapsed.len(),
            left_behind.len(),
            outcome
                .inventory_mismatches
                .first()
                .map(|m| format!(" (e.g. {m})"))
                .unwrap_or_default()
        ),
    });

    // 3. Admissions in join order.
    checks.push(Check {
        name: "admissions in join order",
        ok: replay.admissions_out_of_order == 0,
        detail: format!(
            "{} admitted entries, {} not the earliest waiting ticket or not after the previous one",
            replay.admitted, replay.admissions_out_of_order
        ),
    });

    // 4. Nobody above USER-LIMIT.
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

    // 5. The journal replays to the final state, and counts what the clients saw.
    let differing = end
        .seats
        .iter()
        .zip(&replay.seats)
        .filter(|(now, replayed)| now != replayed)
        .count();
    let admitted_total = count(&end.queue_info, "admitted_total");
    let joined_total = count(&end.queue_info, "joined_total");
    checks.push(Check {
        name: "journal replay == final state",
        ok: differing == 0
            && replay.anomalies.is_empty()
            && replay.admitted == outcome.admitted
            && admitted_total == outcome.admitted
            && replay.joined == outcome.joined
            && joined_total == outcome.joined,
        detail: format!(
            "{} seats, {differing} differ from SEAT.STATUS; admitted {} (journal) / {} \
             (clients) / {admitted_total} (QUEUE.INFO); joined {} / {} / {joined_total}{}",
            end.seats.len(),
            replay.admitted,
            outcome.admitted,
            replay.joined,
            outcome.joined,
            replay
                .anomalies
                .first()
                .map(|a| format!("; {} anomalies, e.g. {a}", replay.anomalies.len()))
                .unwrap_or_default()
        ),
    });

    checks.push(Check {
        name: "retried joins refused as DUPLICATE",
        ok: outcome.duplicates_refused == outcome.retried_joins,
        detail: format!(
            "{} of {} retries answered DUPLICATE with the first ticket",
            outcome.duplicates_refused, outcome.retried_joins
        ),
    });
    checks.push(Check {
        name: "no unexpected replies",
        ok: outcome.unexpected_total == 0,
        detail: match outcome.unexpected.first() {
            Some(first) => format!("{} unexpected, e.g. {first}", outcome.unexpected_total),
            None => "0".to_string(),
        },
    });
    checks
}

/// One line per invariant, numbered, OK or FAILED first.
pub fn print(checks: &[Check]) {
    println!("\ninvariants");
    for (i, check) in checks.iter().enumerate() {
        println!(
            "  {} {}. {}: {}",
            if check.ok { "OK    " } else { "FAILED" },
            i + 1,
            check.name,
            check.detail
        );
    }
}
