//! The event under test: its settings, its named seats, and creating it on the server.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use redis::{Connection, Value};
use seatq_testkit::info;

use crate::query;
use crate::reply::field_text;

// The event's settings. RATE, BURST and CAPACITY pace admission (RATE is an upper bound: only
// the front of the line is admitted, so the line moves no faster than the front user's client
// comes back); the lifetimes are short so that abandoned holds and sessions lapse during the run.
pub const RATE: u64 = 500;
const BURST: u64 = 25;
const CAPACITY: u64 = 500;
pub const HEARTBEAT_MS: u64 = 15_000;
const PASS_TTL_MS: u64 = 5_000;
pub const HOLD_TTL_MS: u64 = 3_000;
pub const USER_LIMIT: usize = 4;
/// Long enough for the checks; an event left on a server (--url) is trimmed after an hour.
const JOURNAL_MAXAGE_MS: u64 = 3_600_000;

pub const DEFAULT_SEATS: usize = 5000;
pub const MAX_SEATS: usize = 100_000;
pub const SEATS_PER_ROW: usize = 25;
pub const ROWS_PER_SECTION: usize = 20;
/// Seats per SEAT.ADD / SEAT.STATUS call.
pub const SEAT_CHUNK: usize = 1000;

/// The event under test.
pub struct Sale {
    pub key: String,
    pub journal: String,
    pub seat_names: Vec<String>,
    pub seat_index: HashMap<String, usize>,
}

/// Seat `i`'s name, section-row-number like `A-12-07`: rows of 25 seats, sections of 20 rows,
/// sections lettered A..Z, AA, AB, ...
fn seat_name(i: usize) -> String {
    let mut section = i / (SEATS_PER_ROW * ROWS_PER_SECTION);
    let row = i / SEATS_PER_ROW % ROWS_PER_SECTION + 1;
    let number = i % SEATS_PER_ROW + 1;
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (section % 26) as u8);
        if section < 26 {
            break;
        }
        section = section / 26 - 1;
    }
    letters.reverse();
    format!("{}-{row:02}-{number:02}", String::from_utf8_lossy(&letters))
}

pub fn user_name(user: u32) -> String {
    format!("fan-{user:07}")
}

/// The event's settings, as QUEUE.CONFIG SET takes them. The journal ones and OPENS-AT are
/// set too because the checks need them and a server's defaults may differ.
pub fn event_settings() -> [(&'static str, String); 12] {
    [
        ("RATE", RATE.to_string()),
        ("BURST", BURST.to_string()),
        ("CAPACITY", CAPACITY.to_string()),
        ("HEARTBEAT", HEARTBEAT_MS.to_string()),
        ("PASS-TTL", PASS_TTL_MS.to_string()),
        ("HOLD-TTL", HOLD_TTL_MS.to_string()),
        ("USER-LIMIT", USER_LIMIT.to_string()),
        ("REQUIRE-PASS", "on".to_string()),
        ("CONFIRM-ENDS-SESSION", "on".to_string()),
        ("JOURNAL", "on".to_string()),
        ("JOURNAL-MAXAGE", JOURNAL_MAXAGE_MS.to_string()),
        ("OPENS-AT", "0".to_string()),
    ]
}

/// Creates the event: settings, seats, and the journal key it reports.
pub fn create_sale(con: &mut Connection, seats: usize) -> Sale {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    // A hash tag keeps the journal in the event's slot; the time and pid keep reruns against
    // the same server (--url) apart.
    let key = format!("flash:{{{ms}-{}}}", std::process::id());
    let mut config = redis::cmd("QUEUE.CONFIG");
    config.arg(&key).arg("SET");
    for (name, value) in event_settings() {
        config.arg(name).arg(value);
    }
    let _: () = query(con, &config, "QUEUE.CONFIG (is seatq loaded?)");
    let seat_names: Vec<String> = (0..seats).map(seat_name).collect();
    for chunk in seat_names.chunks(SEAT_CHUNK) {
        let _: u64 = query(con, redis::cmd("SEAT.ADD").arg(&key).arg(chunk), "SEAT.ADD");
    }
    let info: Value = query(con, redis::cmd("QUEUE.INFO").arg(&key), "QUEUE.INFO");
    let journal = field_text(&info, "journal_key");
    let seat_index = seat_names
        .iter()
        .enumerate()
        .map(|(i, name)| (name.clone(), i))
        .collect();
    Sale {
        key,
        journal,
        seat_names,
        seat_index,
    }
}

/// The server's version as INFO states it, e.g. `valkey_version:9.1.2`.
pub fn server_version(con: &mut Connection) -> String {
    let info: String = query(con, redis::cmd("INFO").arg("server"), "INFO server");
    match info::server_version(&info) {
        Some((name, version)) => format!("{name}_version:{version}"),
        None => "unknown version".to_string(),
    }
}
