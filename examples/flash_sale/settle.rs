//! The end of the sale: waiting for the last holds to lapse and for what the users left behind
//! (lapsed tickets, no-shows, abandoned sessions) to end on the server, then reading the event.

use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use redis::{Connection, Value};
use seatq_testkit::journal::into_entries;

use crate::query;
use crate::replay::{Replay, SeatFate, SessionEnd, TicketFate};
use crate::reply::{field_int, field_text};
use crate::run::Shared;
use crate::sale::{Sale, SEAT_CHUNK};
use crate::stats::{Expect, Expectation, Outcome};

/// The server's timer may run this late (ms) after a deadline.
const TIMER_SLACK_US: u64 = 2_000_000;

/// The event once the users are done and the last holds have lapsed.
pub struct FinalState {
    pub seats: Vec<SeatFate>,
    pub seat_info: Value,
    pub queue_info: Value,
    pub replay: Replay,
    /// Seconds waited for the last holds and sessions to lapse and be returned.
    pub settle_secs: f64,
    /// Seconds spent reading (and replaying) the journal.
    pub journal_secs: f64,
    /// Expectations not met yet whose deadline had not come at the end.
    pub pending: Vec<Expectation>,
}

fn seat_info(con: &mut Connection, sale: &Sale) -> Value {
    query(con, redis::cmd("SEAT.INFO").arg(&sale.key), "SEAT.INFO")
}

pub fn count(record: &Value, name: &str) -> u64 {
    field_int(record, name).unwrap_or(u64::MAX)
}

/// Whether a ticket's fate in the journal is what its user's behaviour calls for.
pub fn met(expect: Expect, fate: Option<&TicketFate>) -> bool {
    use TicketFate::*;
    matches!(
        (expect, fate),
        (Expect::Lapsed, Some(Expired | Ended(SessionEnd::NoShow)))
            | (Expect::NoShow, Some(Ended(SessionEnd::NoShow)))
            | (Expect::SessionExpired, Some(Ended(SessionEnd::Expired)))
            | (Expect::SessionLeft, Some(Ended(SessionEnd::Left)))
            | (Expect::Completed, Some(Ended(SessionEnd::Completed)))
            | (Expect::Left, Some(Left | Ended(SessionEnd::Left)))
    )
}

/// The latest time (microseconds since the start) by which the server must have done what
/// `e` expects: a lapsed ticket within HEARTBEAT of its last poll, a no-show within CLAIM-TTL
/// of the call, an abandoned session within PASS-TTL of its last activity; at once otherwise.
pub fn due_us(e: &Expectation, sale: &Sale) -> u64 {
    let s = &sale.settings;
    let ttl_ms = match e.expect {
        Expect::Lapsed => s.heartbeat_ms,
        Expect::NoShow => s.claim_ttl_ms,
        Expect::SessionExpired => s.pass_ttl_ms,
        _ => 0,
    };
    e.to_us + ttl_ms * 1000 + TIMER_SLACK_US
}

/// Waits until no seat is held, every lapsed hold is in the journal as `hold_expired` (the
/// server's timer returns them; HOLD-TTL plus a margin at most) and every expectation is met
/// (or the last deadline passes: at most PASS-TTL after the end of the sale), then reads the
/// event.
pub fn settle(con: &mut Connection, sale: &Sale, shared: &Shared, outcome: &Outcome) -> FinalState {
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner.set_message("waiting for the last holds and sessions to lapse");
    let started = Instant::now();
    let holds_deadline = started + Duration::from_millis(sale.settings.hold_ttl_ms + 5000);
    while count(&seat_info(con, sale), "held") != 0 && Instant::now() < holds_deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Everything expected is due by this time (since the start of the sale).
    let last_due = outcome
        .expectations
        .iter()
        .map(|e| due_us(e, sale))
        .max()
        .unwrap_or(0);
    let mut replay = Replay::new(sale.seat_names.len());
    let mut journal_secs = 0.0;
    loop {
        let reading = Instant::now();
        replay
            .catch_up(con, sale)
            .unwrap_or_else(|e| crate::fail(&format!("XRANGE of the journal failed: {e}")));
        journal_secs += reading.elapsed().as_secs_f64();
        let lapsed = count(&seat_info(con, sale), "holds_expired_total");
        let holds_done = replay.expired_holds.len() as u64 >= lapsed;
        let now = shared.now_us();
        // Everything the users left behind must end by its deadline: wait for it all.
        let unmet = outcome
            .expectations
            .iter()
            .any(|e| !met(e.expect, replay.fates.get(&e.serial)));
        let waited_out = Instant::now() >= holds_deadline && now >= last_due;
        if (holds_done && !unmet) || waited_out {
            break;
        }
        spinner.set_message(format!(
            "waiting for the last holds and sessions to lapse ({:.0} s)",
            started.elapsed().as_secs_f64()
        ));
        std::thread::sleep(Duration::from_millis(200));
    }
    let now = shared.now_us();
    let pending = outcome
        .expectations
        .iter()
        .filter(|e| due_us(e, sale) > now && !met(e.expect, replay.fates.get(&e.serial)))
        .copied()
        .collect();
    let settle_secs = started.elapsed().as_secs_f64();
    spinner.set_message("reading the seats");
    // The final state and the journal's last entries in one transaction: the timer cannot
    // change the event between them.
    let mut pipe = redis::pipe();
    pipe.atomic();
    pipe.cmd("QUEUE.INFO").arg(&sale.key);
    pipe.cmd("SEAT.INFO").arg(&sale.key);
    pipe.cmd("XRANGE")
        .arg(&sale.journal)
        .arg(replay.next_bound())
        .arg("+");
    for chunk in sale.seat_names.chunks(SEAT_CHUNK) {
        pipe.cmd("SEAT.STATUS").arg(&sale.key).arg(chunk);
    }
    let replies: Vec<Value> = pipe
        .query(con)
        .unwrap_or_else(|e| crate::fail(&format!("reading the final state (MULTI/EXEC): {e}")));
    let mut replies = replies.into_iter();
    let queue_info = replies.next().expect("QUEUE.INFO");
    let seat_info = replies.next().expect("SEAT.INFO");
    replay.apply_all(into_entries(replies.next().expect("XRANGE")), sale);
    let mut seats = Vec::with_capacity(sale.seat_names.len());
    for records in replies {
        let Value::Array(records) = records else {
            crate::fail(&format!("SEAT.STATUS answered {records:?}"));
        };
        seats.extend(records.iter().map(|r| {
            let holder = field_text(r, "holder");
            match field_text(r, "state").as_str() {
                "held" => SeatFate::Held(holder),
                "sold" => SeatFate::Sold(holder),
                _ => SeatFate::Available,
            }
        }));
    }
    spinner.finish_and_clear();
    FinalState {
        seats,
        seat_info,
        queue_info,
        replay,
        settle_secs,
        journal_secs,
        pending,
    }
}
