//! The event under test: its settings, its named seats, and creating it on the server.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use redis::{Connection, Value};
use seatq_testkit::info;

use crate::options::Options;
use crate::query;
use crate::reply::field_text;

// The event's lifetimes, short enough that abandoned tickets, holds and sessions lapse during
// the run. RATE, BURST and CAPACITY come from the options (`--rate`, `--burst`, `--capacity`).
pub const HEARTBEAT_MS: u64 = 15_000;
const CLAIM_TTL_MS: u64 = 10_000;
const PASS_TTL_MS: u64 = 10_000;
pub const HOLD_TTL_MS: u64 = 3_000;
const SESSION_MAX_MS: u64 = 3_600_000;
const IDEMPOTENCY_TTL_MS: u64 = 300_000;
pub const USER_LIMIT: usize = 4;
/// Long enough for the checks; an event left on a server (--url) is trimmed after an hour.
const JOURNAL_MAXAGE_MS: u64 = 3_600_000;
// Under --chaos a restart happens after more than HEARTBEAT of downtime, and long-lived
// sessions must outlive every fault: the lifetimes are longer.
const CHAOS_HEARTBEAT_MS: u64 = 10_000;
const CHAOS_CLAIM_TTL_MS: u64 = 15_000;
const CHAOS_PASS_TTL_MS: u64 = 45_000;
const CHAOS_HOLD_TTL_MS: u64 = 10_000;
const CHAOS_JOURNAL_MAXAGE_MS: u64 = 6 * 3_600_000;

pub const DEFAULT_SEATS: usize = 5000;
pub const CHAOS_SEATS: usize = 100_000;
pub const MAX_SEATS: usize = 100_000;
pub const SEATS_PER_ROW: usize = 25;
pub const ROWS_PER_SECTION: usize = 20;
/// Seats per SEAT.ADD / SEAT.STATUS call.
pub const SEAT_CHUNK: usize = 1000;

/// The event's settings, as the simulator sets them (QUEUE.CONFIG SET) and reads them.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub rate: u64,
    pub burst: u64,
    pub capacity: u64,
    pub heartbeat_ms: u64,
    pub claim_ttl_ms: u64,
    pub pass_ttl_ms: u64,
    pub hold_ttl_ms: u64,
    pub session_max_ms: u64,
    pub journal_maxage_ms: u64,
}

impl Settings {
    pub fn new(options: &Options) -> Settings {
        let chaos = options.chaos;
        Settings {
            rate: options.rate,
            burst: options.burst,
            capacity: options.capacity,
            heartbeat_ms: if chaos {
                CHAOS_HEARTBEAT_MS
            } else {
                HEARTBEAT_MS
            },
            claim_ttl_ms: if chaos {
                CHAOS_CLAIM_TTL_MS
            } else {
                CLAIM_TTL_MS
            },
            pass_ttl_ms: if chaos {
                CHAOS_PASS_TTL_MS
            } else {
                PASS_TTL_MS
            },
            hold_ttl_ms: if chaos {
                CHAOS_HOLD_TTL_MS
            } else {
                HOLD_TTL_MS
            },
            session_max_ms: SESSION_MAX_MS,
            journal_maxage_ms: if chaos {
                CHAOS_JOURNAL_MAXAGE_MS
            } else {
                JOURNAL_MAXAGE_MS
            },
        }
    }

    /// The token bucket's size as the module sizes it: BURST, or 10 ms of RATE if that is more.
    pub fn bucket(&self) -> u64 {
        self.burst.max(self.rate * 10 / 1000).max(1)
    }

    /// The longest a waiting user may go without a poll before its ticket lapses.
    pub fn poll_deadline_ms(&self) -> u64 {
        self.heartbeat_ms * 3 / 4
    }

    /// The server's cap on `retry_after_ms`: half a heartbeat, half a claim window.
    pub fn retry_cap_ms(&self) -> u64 {
        (self.heartbeat_ms / 2).min(self.claim_ttl_ms / 2)
    }

    /// The settings as QUEUE.CONFIG SET takes them. The journal ones and OPENS-AT are set too
    /// because the checks need them and a server's defaults may differ.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("RATE", self.rate.to_string()),
            ("BURST", self.burst.to_string()),
            ("CAPACITY", self.capacity.to_string()),
            ("HEARTBEAT", self.heartbeat_ms.to_string()),
            ("CLAIM-TTL", self.claim_ttl_ms.to_string()),
            ("PASS-TTL", self.pass_ttl_ms.to_string()),
            ("SESSION-MAX", self.session_max_ms.to_string()),
            ("HOLD-TTL", self.hold_ttl_ms.to_string()),
            ("IDEMPOTENCY-TTL", IDEMPOTENCY_TTL_MS.to_string()),
            ("USER-LIMIT", USER_LIMIT.to_string()),
            ("REQUIRE-PASS", "on".to_string()),
            ("CONFIRM-ENDS-SESSION", "on".to_string()),
            ("JOURNAL", "on".to_string()),
            ("JOURNAL-MAXAGE", self.journal_maxage_ms.to_string()),
            ("OPENS-AT", "0".to_string()),
        ]
    }
}

/// The event under test.
pub struct Sale {
    pub settings: Settings,
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

/// Creates the event: settings, seats, and the journal key it reports.
pub fn create_sale(con: &mut Connection, seats: usize, settings: Settings, tagged: bool) -> Sale {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    // The time and pid keep reruns against the same server (--url) apart. With a hash tag the
    // journal is `<key>:journal`; without one (--chaos) the module names it `{<key>}.journal`.
    let key = if tagged {
        format!("flash:{{{ms}-{}}}", std::process::id())
    } else {
        format!("flash-{ms}-{}", std::process::id())
    };
    let mut config = redis::cmd("QUEUE.CONFIG");
    config.arg(&key).arg("SET");
    for (name, value) in settings.fields() {
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
        settings,
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
