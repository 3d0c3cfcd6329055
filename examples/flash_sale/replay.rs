//! The event rebuilt from its journal alone, entry by entry: the line (for the admission order
//! and how many were waiting at each call), the sessions (against CAPACITY), every ticket's
//! fate, and every seat.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use redis::Connection;
use seatq_testkit::field;
use seatq_testkit::journal::{into_entries, JournalEntry};

use crate::sale::Sale;
use crate::stats::SHOWN_PROBLEMS;

/// Journal entries per XRANGE call.
const JOURNAL_CHUNK: usize = 10_000;

/// The server time (ms) of a stream ID `<ms>-<seq>`.
fn id_ms(id: &str) -> Option<u64> {
    id.split_once('-')?.0.parse().ok()
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SeatFate {
    Available,
    Held(String),
    Sold(String),
}

/// How a ticket ended, as the journal tells it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TicketFate {
    Waiting,
    Left,
    Expired,
    Dequeued,
    /// Called; its session is live.
    Session,
    /// Called; its session ended for this reason.
    Ended(SessionEnd),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SessionEnd {
    NoShow,
    Left,
    Completed,
    Expired,
    Revoked,
    Other,
}

impl SessionEnd {
    fn from_reason(reason: &str) -> SessionEnd {
        match reason {
            "no_show" => SessionEnd::NoShow,
            "left" => SessionEnd::Left,
            "completed" => SessionEnd::Completed,
            "expired" => SessionEnd::Expired,
            "revoked" => SessionEnd::Revoked,
            _ => SessionEnd::Other,
        }
    }
}

/// One `admitted` entry: when (server time, from its stream ID), and the line and the sessions
/// just before it.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    pub at_ms: u64,
    pub waiting_before: u64,
    pub sessions_before: u64,
}

/// The event rebuilt from its journal.
pub struct Replay {
    /// The last entry read; reading resumes after it.
    last_id: Option<String>,
    pub entries: u64,
    pub types: BTreeMap<String, u64>,
    pub session_ends: BTreeMap<String, u64>,
    waiting: BTreeSet<u32>,
    pub joined: u64,
    /// Who joined with each serial.
    pub joined_user: HashMap<u32, String>,
    pub fates: HashMap<u32, TicketFate>,
    pub claimed: HashSet<u32>,
    pub left: u64,
    pub expired: u64,
    pub sessions_ended: u64,
    pub calls: Vec<Call>,
    last_called: Option<u32>,
    pub calls_out_of_order: u64,
    /// Live sessions (admitted, not ended) now and at most.
    pub sessions: u64,
    pub max_sessions: u64,
    pub seats: Vec<SeatFate>,
    pub sales_per_seat: Vec<u32>,
    pub sold_per_user: HashMap<String, usize>,
    pub expired_holds: HashSet<u64>,
    pub anomalies: Vec<String>,
    pub anomalies_total: u64,
}

impl Replay {
    pub fn new(seats: usize) -> Replay {
        Replay {
            last_id: None,
            entries: 0,
            types: BTreeMap::new(),
            session_ends: BTreeMap::new(),
            waiting: BTreeSet::new(),
            joined: 0,
            joined_user: HashMap::new(),
            fates: HashMap::new(),
            claimed: HashSet::new(),
            left: 0,
            expired: 0,
            sessions_ended: 0,
            calls: Vec::new(),
            last_called: None,
            calls_out_of_order: 0,
            sessions: 0,
            max_sessions: 0,
            seats: vec![SeatFate::Available; seats],
            sales_per_seat: vec![0; seats],
            sold_per_user: HashMap::new(),
            expired_holds: HashSet::new(),
            anomalies: Vec::new(),
            anomalies_total: 0,
        }
    }

    fn anomaly(&mut self, what: String) {
        self.anomalies_total += 1;
        if self.anomalies.len() < SHOWN_PROBLEMS {
            self.anomalies.push(what);
        }
    }

    /// The XRANGE start bound of the entries not read yet.
    pub fn next_bound(&self) -> String {
        match &self.last_id {
            Some(id) => format!("({id}"),
            None => "-".to_string(),
        }
    }

    /// Reads the entries appended since the last call.
    pub fn catch_up(&mut self, con: &mut Connection, sale: &Sale) -> redis::RedisResult<()> {
        loop {
            let reply: redis::Value = redis::cmd("XRANGE")
                .arg(&sale.journal)
                .arg(self.next_bound())
                .arg("+")
                .arg("COUNT")
                .arg(JOURNAL_CHUNK)
                .query(con)?;
            let entries = into_entries(reply);
            let complete = entries.len() < JOURNAL_CHUNK;
            self.apply_all(entries, sale);
            if complete {
                return Ok(());
            }
        }
    }

    /// Applies entries read after the last ones.
    pub fn apply_all(&mut self, entries: Vec<JournalEntry>, sale: &Sale) {
        for (id, fields) in entries {
            self.apply(&id, &fields, sale);
            self.last_id = Some(id);
        }
    }

    /// A ticket that was waiting leaves the line (left, expired, dequeued, called).
    fn off_the_line(&mut self, id: &str, kind: &str, serial: u32) {
        if !self.waiting.remove(&serial) {
            self.anomaly(format!(
                "{id}: {kind} serial {serial}, which was not waiting"
            ));
        }
    }

    fn apply(&mut self, id: &str, fields: &[(String, String)], sale: &Sale) {
        let get = |name: &str| field(fields, name);
        let kind = get("type");
        self.entries += 1;
        *self.types.entry(kind.to_string()).or_default() += 1;
        let serial: Option<u32> = get("serial").parse().ok();
        let user = get("user").to_string();
        let mut seats = Vec::new();
        for name in get("seats").split(',').filter(|s| !s.is_empty()) {
            match sale.seat_index.get(name) {
                Some(&i) => seats.push(i),
                None => self.anomaly(format!("{id}: unknown seat {name}")),
            }
        }
        match (kind, serial) {
            ("joined", Some(t)) => {
                self.joined += 1;
                self.waiting.insert(t);
                self.fates.insert(t, TicketFate::Waiting);
                if self.joined_user.insert(t, user).is_some() {
                    self.anomaly(format!("{id}: serial {t} joined twice"));
                }
            }
            ("left", Some(t)) => {
                self.left += 1;
                self.off_the_line(id, kind, t);
                self.fates.insert(t, TicketFate::Left);
            }
            ("expired", Some(t)) => {
                self.expired += 1;
                self.off_the_line(id, kind, t);
                self.fates.insert(t, TicketFate::Expired);
            }
            ("dequeued", Some(t)) => {
                self.off_the_line(id, kind, t);
                self.fates.insert(t, TicketFate::Dequeued);
            }
            ("admitted", Some(t)) => {
                // Only the front of the line may be called: the earliest waiting ticket, after
                // the previous one called.
                let first_waiting = self.waiting.first() == Some(&t);
                let increasing = self.last_called.is_none_or(|last| last < t);
                if !first_waiting || !increasing {
                    self.calls_out_of_order += 1;
                    self.anomaly(format!("{id}: serial {t} called out of line order"));
                }
                self.calls.push(Call {
                    at_ms: id_ms(id).unwrap_or(0),
                    waiting_before: self.waiting.len() as u64,
                    sessions_before: self.sessions,
                });
                self.off_the_line(id, kind, t);
                self.last_called = Some(t);
                self.fates.insert(t, TicketFate::Session);
                self.sessions += 1;
                self.max_sessions = self.max_sessions.max(self.sessions);
            }
            ("claimed", Some(t)) => {
                if self.fates.get(&t) != Some(&TicketFate::Session) {
                    self.anomaly(format!("{id}: serial {t} claimed without a live session"));
                }
                self.claimed.insert(t);
            }
            ("session_ended", Some(t)) => {
                let reason = get("reason");
                *self.session_ends.entry(reason.to_string()).or_default() += 1;
                self.sessions_ended += 1;
                if self.fates.get(&t) != Some(&TicketFate::Session) {
                    self.anomaly(format!("{id}: serial {t} ended a session it did not have"));
                } else {
                    self.sessions -= 1;
                }
                self.fates
                    .insert(t, TicketFate::Ended(SessionEnd::from_reason(reason)));
            }
            ("held", _) => {
                for s in seats {
                    if self.seats[s] != SeatFate::Available {
                        self.anomaly(format!(
                            "{id}: {user} held {} that was not available",
                            sale.seat_names[s]
                        ));
                    }
                    self.seats[s] = SeatFate::Held(user.clone());
                }
            }
            ("released" | "hold_expired" | "sold", _) => {
                if kind == "hold_expired" {
                    self.expired_holds
                        .insert(get("hold").parse().unwrap_or(u64::MAX));
                }
                if kind == "sold" {
                    *self.sold_per_user.entry(user.clone()).or_default() += seats.len();
                }
                for s in seats {
                    if self.seats[s] != SeatFate::Held(user.clone()) {
                        self.anomaly(format!(
                            "{id}: {kind} {} that {user} did not hold",
                            sale.seat_names[s]
                        ));
                    }
                    self.seats[s] = if kind == "sold" {
                        self.sales_per_seat[s] += 1;
                        SeatFate::Sold(user.clone())
                    } else {
                        SeatFate::Available
                    };
                }
            }
            ("opened" | "paused" | "resumed" | "closed" | "reopened", _) => {}
            _ => self.anomaly(format!("{id}: unexpected entry {fields:?}")),
        }
    }
}
