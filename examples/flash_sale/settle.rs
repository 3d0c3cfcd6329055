//! The end of the sale: waiting for the last holds to lapse, then reading the event.

use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use redis::{Connection, Value};

use crate::query;
use crate::replay::{Replay, SeatFate};
use crate::reply::{field_int, field_text};
use crate::sale::{Sale, HOLD_TTL_MS, SEAT_CHUNK};

/// The event once the users are done and the last holds have lapsed.
pub struct FinalState {
    pub seats: Vec<SeatFate>,
    pub seat_info: Value,
    pub queue_info: Value,
    pub replay: Replay,
    /// Seconds waited for the last holds to lapse and be returned.
    pub settle_secs: f64,
}

fn seat_info(con: &mut Connection, sale: &Sale) -> Value {
    query(con, redis::cmd("SEAT.INFO").arg(&sale.key), "SEAT.INFO")
}

pub fn count(record: &Value, name: &str) -> u64 {
    field_int(record, name).unwrap_or(u64::MAX)
}

/// Waits until no seat is held and every lapsed hold is in the journal as `hold_expired`
/// (the server's timer returns them; HOLD-TTL plus a margin at most), then reads the event.
pub fn settle(con: &mut Connection, sale: &Sale) -> FinalState {
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner.set_message("waiting for the last holds to lapse");
    let started = Instant::now();
    let deadline = started + Duration::from_millis(HOLD_TTL_MS + 5000);
    while count(&seat_info(con, sale), "held") != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    spinner.set_message("reading the journal");
    let mut replay = Replay::new(sale.seat_names.len());
    loop {
        replay.catch_up(con, sale);
        let lapsed = count(&seat_info(con, sale), "holds_expired_total");
        if replay.expired_holds.len() as u64 >= lapsed || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let settle_secs = started.elapsed().as_secs_f64();
    spinner.set_message("reading the seats");
    let mut seats = Vec::with_capacity(sale.seat_names.len());
    for chunk in sale.seat_names.chunks(SEAT_CHUNK) {
        let records: Vec<Value> = query(
            con,
            redis::cmd("SEAT.STATUS").arg(&sale.key).arg(chunk),
            "SEAT.STATUS",
        );
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
        seat_info: seat_info(con, sale),
        queue_info: query(con, redis::cmd("QUEUE.INFO").arg(&sale.key), "QUEUE.INFO"),
        replay,
        settle_secs,
    }
}
