//! One on-sale event: everything one Redis key holds. Every change is an `Effect`: the primary
//! decides effects (with its clock and randomness), applies them, journals them and replicates
//! them; replicas and AOF replays only apply them. Applying reads no clock and checks that the
//! effect fits the state: one that does not (a corrupted AOF, a hand-written SEATQ.APPLY that
//! slipped through) changes nothing, so no input can produce a state `check_invariants`
//! refuses, and the loader runs that same check.

use crate::admission::budget::{AdmissionBudget, RateHistory};
use crate::admission::sessions::{Session, Sessions};
use crate::config::{EventConfig, Setting};
use crate::entry_id::EntryId;
use crate::queue::idempotency::{IdempotencyLedger, IdempotencyRecord};
use crate::queue::line::{EndState, Serial, Ticket, WaitingLine};
use crate::queue::payload::TicketPayload;
use crate::seats::inventory::{HoldId, Inventory};
use crate::secret::{EventSecret, SECRET_LEN};

/// Counters of what happened to the event's tickets and sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub joined: u64,
    pub admitted: u64,
    pub claimed: u64,
    pub left: u64,
    pub expired: u64,
    pub dequeued: u64,
    pub sessions_ended: u64,
}

/// Where the event is in its sale.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phase {
    /// OPENS-AT has passed (or was never set): pre-queue positions are visible, calls run.
    pub opened: bool,
    /// An operator paused admission: joins go on, nobody is called.
    pub paused: bool,
    /// Joins are refused (on command or at CLOSES-AT).
    pub closed: bool,
}

pub struct Event {
    pub config: EventConfig,
    pub secret: EventSecret,
    pub line: WaitingLine,
    pub sessions: Sessions,
    pub idempotency: IdempotencyLedger,
    pub inventory: Inventory,
    pub budget: AdmissionBudget,
    pub history: RateHistory,
    pub phase: Phase,
    /// The last journal entry ID handed out; new IDs are strictly greater.
    pub last_id: EntryId,
    pub totals: Totals,
    /// The journal stream seatq started for this event (until JOURNAL is set again). The name
    /// is kept, not a flag: under another name (RENAME, COPY, RESTORE as a new key) the event
    /// has started no journal yet. A missing journal it did start is elsewhere (a slot
    /// migration moving the two keys one at a time) or was deleted.
    pub journal: Option<Box<[u8]>>,
    /// Derived, not stored: when upkeep is next due (kept by the write path, read by commands
    /// and the schedule), and when the journal may next need trimming (0: unknown yet).
    pub upkeep_due: Option<u64>,
    pub journal_trim_at: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// A new event: its secret and every setting (replicas may have other defaults).
    Created {
        secret: [u8; SECRET_LEN],
        settings: Vec<(Setting, u64)>,
    },
    Configured(Vec<(Setting, u64)>),
    Joined {
        at: EntryId,
        serial: Serial,
        heartbeat_deadline: u64,
        payload: TicketPayload,
    },
    /// A waiting ticket's heartbeat renewed.
    Touched {
        serial: Serial,
        heartbeat_deadline: u64,
    },
    Left {
        at: EntryId,
        serial: Serial,
    },
    /// A waiting ticket's heartbeat lapsed.
    Expired {
        at: EntryId,
        serial: Serial,
    },
    /// Taken from the head by QUEUE.DEQUEUE.
    Dequeued {
        at: EntryId,
        serial: Serial,
    },
    Remembered(IdempotencyRecord),
    /// Tombstones (ended tickets kept for STATUS) below this serial were dropped.
    Compacted {
        through: Serial,
    },
    /// `count` idempotency records were dropped from the front, expired at `now`.
    Purged {
        now: u64,
        count: u32,
    },
    Opened {
        at: EntryId,
    },
    Paused {
        at: EntryId,
    },
    Resumed {
        at: EntryId,
    },
    Closed {
        at: EntryId,
    },
    Reopened {
        at: EntryId,
    },
    /// The server called the ticket: it leaves the line and its session starts, with a pass.
    Admitted {
        at: EntryId,
        serial: Serial,
        claim_deadline: u64,
        expires_at: u64,
        max_expires_at: u64,
        pass: Box<str>,
    },
    /// The user claimed the session (QUEUE.ADMIT).
    Claimed {
        at: EntryId,
        serial: Serial,
    },
    /// The session's pass was reissued with a later expiry.
    Renewed {
        serial: Serial,
        expires_at: u64,
        pass: Box<str>,
    },
    SessionEnded {
        at: EntryId,
        serial: Serial,
        end: EndState,
    },
    SeatsAdded {
        names: Vec<Box<[u8]>>,
    },
    StockAdded {
        qty: u64,
    },
    Held {
        at: EntryId,
        hold: HoldId,
        user: Box<[u8]>,
        expires_at: u64,
        seats: Vec<Box<[u8]>>,
        qty: u64,
    },
    Released {
        at: EntryId,
        user: Box<[u8]>,
        seats: Vec<Box<[u8]>>,
        qty: u64,
    },
    Sold {
        at: EntryId,
        user: Box<[u8]>,
        seats: Vec<Box<[u8]>>,
        qty: u64,
    },
    HoldExpired {
        at: EntryId,
        hold: HoldId,
    },
}

/// How sessions can end; what STATUS shows afterwards.
pub const SESSION_ENDS: [EndState; 5] = [
    EndState::NoShow,
    EndState::Left,
    EndState::Completed,
    EndState::Expired,
    EndState::Revoked,
];

impl Effect {
    /// The ID of the journal entry this effect writes, if it writes one.
    pub fn journal_id(&self) -> Option<EntryId> {
        match self {
            Effect::Joined { at, .. }
            | Effect::Left { at, .. }
            | Effect::Expired { at, .. }
            | Effect::Dequeued { at, .. }
            | Effect::Opened { at }
            | Effect::Paused { at }
            | Effect::Resumed { at }
            | Effect::Closed { at }
            | Effect::Reopened { at }
            | Effect::Admitted { at, .. }
            | Effect::Claimed { at, .. }
            | Effect::SessionEnded { at, .. }
            | Effect::Held { at, .. }
            | Effect::Released { at, .. }
            | Effect::Sold { at, .. }
            | Effect::HoldExpired { at, .. } => Some(*at),
            Effect::Created { .. }
            | Effect::Configured(_)
            | Effect::Touched { .. }
            | Effect::Remembered(_)
            | Effect::Purged { .. }
            | Effect::Compacted { .. }
            | Effect::Renewed { .. }
            | Effect::SeatsAdded { .. }
            | Effect::StockAdded { .. } => None,
        }
    }
}

/// Why an effect does not fit the event (it changed nothing).
pub type Refusal = &'static str;

fn check(ok: bool, refusal: Refusal) -> Result<(), Refusal> {
    if ok {
        Ok(())
    } else {
        Err(refusal)
    }
}

impl Event {
    /// A new event with these settings and secret (what `Effect::Created` makes).
    pub fn new(config: EventConfig, secret: [u8; SECRET_LEN]) -> Self {
        let secret = EventSecret::new(secret);
        let opened = config.get(Setting::OpensAt) == 0;
        Self {
            config,
            line: WaitingLine::new(secret.shuffle_key()),
            secret,
            sessions: Sessions::default(),
            idempotency: IdempotencyLedger::default(),
            inventory: Inventory::default(),
            budget: AdmissionBudget::default(),
            history: RateHistory::default(),
            phase: Phase {
                opened,
                ..Phase::default()
            },
            last_id: EntryId::default(),
            totals: Totals::default(),
            journal: None,
            upkeep_due: None,
            journal_trim_at: 0,
        }
    }

    /// The event an `Effect::Created` describes.
    pub fn created(secret: [u8; SECRET_LEN], settings: &[(Setting, u64)]) -> Self {
        let mut config = EventConfig::from_defaults();
        for &(setting, value) in settings {
            config.set(setting, value);
        }
        Self::new(config, secret)
    }

    /// A fresh journal entry ID at `now`, after `after` (the previous one planned in the same
    /// command) or the event's last ID.
    pub fn next_id(&self, now: u64, after: Option<EntryId>) -> EntryId {
        after.unwrap_or(self.last_id).next_at(now)
    }

    /// The ticket a client holds for a serial.
    pub fn ticket(&self, serial: Serial) -> String {
        self.secret.ticket(serial)
    }

    /// Applies one effect, or refuses it (changing nothing) if it does not fit the state.
    pub fn apply(&mut self, effect: &Effect) -> Result<(), Refusal> {
        if let Some(at) = effect.journal_id() {
            check(at > self.last_id, "journal ID not after the last one")?;
        }
        self.apply_checked(effect)?;
        if let Some(at) = effect.journal_id() {
            self.last_id = at;
        }
        Ok(())
    }

    fn apply_checked(&mut self, effect: &Effect) -> Result<(), Refusal> {
        match effect {
            Effect::Created { .. } => Err("the event already exists"),
            Effect::Configured(values) => self.configure(values),
            Effect::Joined {
                at: _,
                serial,
                heartbeat_deadline,
                payload,
            } => {
                check(!self.phase.closed, "the line is closed")?;
                check(
                    self.sessions.of_user(payload.user()).is_none(),
                    "the user has a session",
                )?;
                let prequeue = !self.phase.opened;
                self.line
                    .push(*serial, *heartbeat_deadline, payload.clone(), prequeue)?;
                self.totals.joined += 1;
                Ok(())
            }
            Effect::Touched {
                serial,
                heartbeat_deadline,
            } => {
                check(
                    matches!(self.line.get(*serial), Some(Ticket::Waiting { .. })),
                    "not a waiting ticket",
                )?;
                self.line.touch(*serial, *heartbeat_deadline);
                Ok(())
            }
            Effect::Left { serial, .. } => {
                self.end_waiting(*serial, EndState::Left)?;
                self.totals.left += 1;
                Ok(())
            }
            Effect::Expired { serial, .. } => {
                self.end_waiting(*serial, EndState::Expired)?;
                self.totals.expired += 1;
                Ok(())
            }
            Effect::Dequeued { serial, .. } => {
                self.end_waiting(*serial, EndState::Dequeued)?;
                self.totals.dequeued += 1;
                Ok(())
            }
            Effect::Remembered(record) => {
                check(
                    !record.key.is_empty()
                        && record.key.len() <= crate::queue::idempotency::MAX_KEY_LEN
                        && record.serial < self.line.next_serial(),
                    "a malformed idempotency record",
                )?;
                self.idempotency.remember(record.clone());
                Ok(())
            }
            Effect::Compacted { through } => {
                self.line.compact_through(*through);
                Ok(())
            }
            Effect::Purged { now, count } => {
                let taken = self.idempotency.purge(*now, *count as usize);
                check(
                    taken == *count as usize,
                    "fewer idempotency records to purge",
                )
            }
            Effect::Opened { .. } => {
                check(!self.phase.opened, "already open")?;
                self.phase.opened = true;
                Ok(())
            }
            Effect::Paused { .. } => {
                check(!self.phase.paused, "already paused")?;
                self.phase.paused = true;
                Ok(())
            }
            Effect::Resumed { .. } => {
                check(self.phase.paused, "not paused")?;
                self.phase.paused = false;
                Ok(())
            }
            Effect::Closed { .. } => {
                check(!self.phase.closed, "already closed")?;
                self.phase.closed = true;
                Ok(())
            }
            Effect::Reopened { .. } => {
                check(self.phase.closed, "not closed")?;
                self.phase.closed = false;
                Ok(())
            }
            Effect::Admitted {
                at,
                serial,
                claim_deadline,
                expires_at,
                max_expires_at,
                pass,
            } => {
                let user = self
                    .line
                    .get(*serial)
                    .and_then(Ticket::payload)
                    .ok_or("not a waiting ticket")?
                    .user();
                check(
                    expires_at <= max_expires_at && !pass.is_empty(),
                    "a malformed admission",
                )?;
                let session = Session {
                    user: user.into(),
                    admitted_at: at.ms,
                    claimed: false,
                    claim_deadline: *claim_deadline,
                    expires_at: *expires_at,
                    max_expires_at: *max_expires_at,
                    pass: pass.clone(),
                };
                // The user's session is checked before the ticket leaves the line.
                self.sessions.insert(*serial, session)?;
                self.line.end(*serial, EndState::Called);
                // Time comes from the entry ID, so every copy spends the budget identically.
                let rate = self.config.get(Setting::Rate);
                self.budget.consume(at.ms, rate);
                self.history.record(at.ms);
                self.totals.admitted += 1;
                Ok(())
            }
            Effect::Claimed { serial, .. } => {
                let session = self.sessions.get(*serial).ok_or("no such session")?;
                check(!session.claimed, "already claimed")?;
                self.sessions.update(*serial, |s| s.claimed = true);
                self.totals.claimed += 1;
                Ok(())
            }
            Effect::Renewed {
                serial,
                expires_at,
                pass,
            } => {
                let session = self.sessions.get(*serial).ok_or("no such session")?;
                check(
                    *expires_at >= session.expires_at
                        && *expires_at <= session.max_expires_at
                        && !pass.is_empty(),
                    "a renewal out of range",
                )?;
                self.sessions.update(*serial, |s| {
                    s.expires_at = *expires_at;
                    s.pass = pass.clone();
                });
                Ok(())
            }
            Effect::SessionEnded { serial, end, .. } => {
                check(SESSION_ENDS.contains(end), "not a way a session ends")?;
                self.sessions.remove(*serial).ok_or("no such session")?;
                self.line.restate(*serial, EndState::Called, *end);
                self.totals.sessions_ended += 1;
                Ok(())
            }
            Effect::SeatsAdded { names } => {
                for name in names {
                    crate::seats::validate_seat_name(name).map_err(|_| "a bad seat name")?;
                }
                self.inventory.add_seats(names);
                Ok(())
            }
            Effect::StockAdded { qty } => self.inventory.add_stock(*qty),
            Effect::Held {
                hold,
                user,
                expires_at,
                seats,
                qty,
                ..
            } => {
                let indices = self.seat_indices(seats)?;
                check(valid_user(user), "a bad user ID")?;
                self.inventory
                    .hold(*hold, user, *expires_at, &indices, *qty)
            }
            Effect::Released {
                user, seats, qty, ..
            } => {
                let indices = self.seat_indices(seats)?;
                self.inventory.settle(user, &indices, *qty, false)
            }
            Effect::Sold {
                user, seats, qty, ..
            } => {
                let indices = self.seat_indices(seats)?;
                self.inventory.settle(user, &indices, *qty, true)
            }
            Effect::HoldExpired { hold, .. } => self.inventory.expire(*hold).map(|_| ()),
        }
    }

    fn end_waiting(&mut self, serial: Serial, state: EndState) -> Result<(), Refusal> {
        self.line
            .end(serial, state)
            .map(|_| ())
            .ok_or("not a waiting ticket")
    }

    fn configure(&mut self, values: &[(Setting, u64)]) -> Result<(), Refusal> {
        for &(setting, value) in values {
            let spec = setting.spec();
            check(
                (spec.min as u64..=spec.max as u64).contains(&value),
                "a setting out of range",
            )?;
        }
        let opens_at = values
            .iter()
            .rev()
            .find(|(s, _)| *s == Setting::OpensAt)
            .map(|&(_, v)| v);
        // A pre-queue can start again only in an empty line: tickets already waiting in line
        // order cannot be shuffled behind later ones.
        let reenters_prequeue = opens_at.is_some_and(|t| t > 0) && self.phase.opened;
        check(
            !reenters_prequeue || self.line.waiting() == 0,
            "OPENS-AT cannot move into the future while tickets wait in an open line",
        )?;
        for &(setting, value) in values {
            match setting {
                Setting::Rate => self.budget.rescale(self.config.get(Setting::Rate), value),
                // Setting JOURNAL (even to its current value) forgets the old stream: the next
                // journaled write starts a new one if it is missing.
                Setting::Journal => self.journal = None,

                Setting::JournalMaxAge => self.journal_trim_at = 0,
                _ => {}
            }
            self.config.set(setting, value);
        }
        if reenters_prequeue {
            self.phase.opened = false;
        }
        Ok(())
    }

    /// Indices of named seats; refused if one is unknown.
    fn seat_indices(&self, names: &[Box<[u8]>]) -> Result<Vec<u32>, Refusal> {
        names
            .iter()
            .map(|n| self.inventory.seat_index(n).ok_or("an unknown seat"))
            .collect()
    }

    /// The rules every stored event keeps; the loader refuses a value that breaks one, and
    /// tests check them after every command. Err names the first one broken.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.inventory.check_invariants()?;
        let mut users = std::collections::HashSet::new();
        for (serial, session) in self.sessions.iter() {
            if !users.insert(&*session.user) {
                return Err("a user has two sessions".into());
            }
            if self.line.waiting_of(&session.user).is_some() {
                return Err("a user both waits and has a session".into());
            }
            if serial >= self.line.next_serial() {
                return Err("a session of a ticket that never joined".into());
            }
            if let Some(ticket) = self.line.get(serial) {
                if *ticket != Ticket::Ended(EndState::Called) {
                    return Err("a session whose ticket was not called".into());
                }
            }
            if session.expires_at > session.max_expires_at || session.pass.is_empty() {
                return Err("a session out of range".into());
            }
        }
        for record in self.idempotency.iter() {
            if record.serial >= self.line.next_serial() {
                return Err("an idempotency record of a ticket that never joined".into());
            }
        }
        if self.line.prequeue_waiting() > 0 && self.line.waiting() < self.line.prequeue_waiting() {
            return Err("the pre-queue is larger than the line".into());
        }
        Ok(())
    }

    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.line.heap_bytes()
            + self.idempotency.heap_bytes()
            + self.inventory.heap_bytes()
            + self.sessions.heap_bytes()
    }
}

pub fn valid_user(user: &[u8]) -> bool {
    !user.is_empty() && user.len() <= crate::queue::payload::MAX_USER_LEN
}
