//! The event rebuilt from its journal alone, entry by entry.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use redis::Connection;
use seatq_testkit::field;
use seatq_testkit::journal::journal_range;

use crate::fail;
use crate::sale::Sale;
use crate::stats::SHOWN_PROBLEMS;

/// Journal entries per XRANGE call.
const JOURNAL_CHUNK: usize = 10_000;

type TicketId = (u64, u64);

fn ticket_id(t: &str) -> Option<TicketId> {
    let (ms, seq) = t.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SeatFate {
    Available,
    Held(String),
    Sold(String),
}

/// The event rebuilt from its journal: the line (for the admission order) and every seat.
pub struct Replay {
    /// The last entry read; reading resumes after it.
    last_id: Option<String>,
    pub entries: u64,
    pub types: BTreeMap<String, u64>,
    pub session_ends: BTreeMap<String, u64>,
    waiting: BTreeSet<TicketId>,
    pub joined: u64,
    pub admitted: u64,
    last_admitted: Option<TicketId>,
    /// Server times (ms) of the first and the last admission, from their entry IDs.
    pub admission_span_ms: Option<(u64, u64)>,
    pub admissions_out_of_order: u64,
    pub seats: Vec<SeatFate>,
    pub sales_per_seat: Vec<u32>,
    pub sold_per_user: HashMap<String, usize>,
    pub expired_holds: HashSet<u64>,
    pub anomalies: Vec<String>,
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
            admitted: 0,
            last_admitted: None,
            admission_span_ms: None,
            admissions_out_of_order: 0,
            seats: vec![SeatFate::Available; seats],
            sales_per_seat: vec![0; seats],
            sold_per_user: HashMap::new(),
            expired_holds: HashSet::new(),
            anomalies: Vec::new(),
        }
    }

    fn anomaly(&mut self, what: String) {
        if self.anomalies.len() < SHOWN_PROBLEMS {
            self.anomalies.push(what);
        }
    }

    /// Reads the entries appended since the last call.
    pub fn catch_up(&mut self, con: &mut Connection, sale: &Sale) {
        loop {
            let start = match &self.last_id {
                Some(id) => format!("({id}"),
                None => "-".to_string(),
            };
            let entries = journal_range(con, &sale.journal, &start, Some(JOURNAL_CHUNK))
                .unwrap_or_else(|e| fail(&format!("XRANGE of the journal failed: {e}")));
            let complete = entries.len() < JOURNAL_CHUNK;
            for (id, fields) in entries {
                self.apply(&id, &fields, sale);
                self.last_id = Some(id);
            }
            if complete {
                return;
            }
        }
    }

    fn apply(&mut self, id: &str, fields: &[(String, String)], sale: &Sale) {
        let get = |name: &str| field(fields, name);
        let kind = get("type");
        self.entries += 1;
        *self.types.entry(kind.to_string()).or_default() += 1;
        let ticket = ticket_id(get("ticket"));
        let user = get("user").to_string();
        let mut seats = Vec::new();
        for name in get("seats").split(',').filter(|s| !s.is_empty()) {
            match sale.seat_index.get(name) {
                Some(&i) => seats.push(i),
                None => self.anomaly(format!("{id}: unknown seat {name}")),
            }
        }
        match (kind, ticket) {
            ("joined", Some(t)) => {
                self.joined += 1;
                self.waiting.insert(t);
            }
            ("left" | "expired", Some(t)) => {
                self.waiting.remove(&t);
            }
            ("admitted", Some(t)) => {
                self.admitted += 1;
                // Only the front of the line may be admitted: the earliest waiting ticket.
                let first_waiting = self.waiting.first() == Some(&t);
                let increasing = self.last_admitted.is_none_or(|last| last < t);
                if !first_waiting || !increasing {
                    self.admissions_out_of_order += 1;
                    self.anomaly(format!(
                        "{id}: ticket {} admitted out of order",
                        get("ticket")
                    ));
                }
                self.waiting.remove(&t);
                self.last_admitted = Some(t);
                if let Some((at, _)) = ticket_id(id) {
                    let first = self.admission_span_ms.map_or(at, |(first, _)| first);
                    self.admission_span_ms = Some((first, at));
                }
            }
            ("session_ended", _) => {
                *self
                    .session_ends
                    .entry(get("reason").to_string())
                    .or_default() += 1;
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
            ("opened", _) => {}
            _ => self.anomaly(format!("{id}: unexpected entry {fields:?}")),
        }
    }
}
