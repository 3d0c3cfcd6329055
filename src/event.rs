//! One on-sale event: everything one Redis key holds. Every change is an `Effect`: the primary
//! decides effects (with its clock), applies them, journals them and replicates them; replicas and
//! AOF replays only apply them. Applying is deterministic and reads no clock, so all copies agree.

use crate::admission::budget::{AdmissionBudget, RateHistory};
use crate::admission::sessions::{Pass, Session, Sessions};
use crate::arg_list::ArgList;
use crate::config::{EventConfig, Setting};
use crate::entry_id::EntryId;
use crate::queue::idempotency::{IdempotencyLedger, IdempotencyRecord};
use crate::queue::line::{EndState, WaitingLine};
use crate::queue::payload::TicketPayload;
use crate::seats::inventory::{HoldId, Inventory, Settlement};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub joined: u64,
    pub admitted: u64,
    pub left: u64,
    pub expired: u64,
}

pub struct Event {
    pub config: EventConfig,
    pub line: WaitingLine,
    pub idempotency: IdempotencyLedger,
    pub inventory: Inventory,
    pub admission_budget: AdmissionBudget,
    pub admission_history: RateHistory,
    pub sessions: Sessions,
    /// The pre-queue was shuffled (at OPENS-AT); it happens once.
    pub opened: bool,
    /// The last ticket or journal entry ID handed out; new IDs are strictly greater.
    pub last_id: EntryId,
    pub totals: Totals,
    /// Where the active heartbeat sweep resumes (not persisted: any start point is correct).
    pub sweep_cursor: usize,
    /// When the timer last trimmed the journal (not persisted).
    pub journal_trimmed_at: u64,
}

/// Why an admitted session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    Leave,
    Confirm,
    PassExpired,
}

impl SessionEnd {
    pub const ALL: [SessionEnd; 3] = [
        SessionEnd::Leave,
        SessionEnd::Confirm,
        SessionEnd::PassExpired,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SessionEnd::Leave => "leave",
            SessionEnd::Confirm => "confirm",
            SessionEnd::PassExpired => "pass_expired",
        }
    }

    /// The ticket's final state.
    pub fn state(self) -> EndState {
        match self {
            SessionEnd::PassExpired => EndState::Expired,
            SessionEnd::Leave | SessionEnd::Confirm => EndState::Left,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Joined {
        ticket: EntryId,
        heartbeat_deadline: u64,
        payload: TicketPayload,
    },
    Touched {
        ticket: EntryId,
        heartbeat_deadline: u64,
    },
    /// A waiting ticket ended; `at` is the ID of the journal entry that records it.
    Ended {
        ticket: EntryId,
        state: EndState,
        at: EntryId,
    },
    Remembered {
        key: Box<[u8]>,
        record: IdempotencyRecord,
    },
    /// Idempotency records expired at `now` were dropped.
    Purged {
        now: u64,
    },
    Configured(Vec<(Setting, u64)>),
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
    /// Held units released to stock or sold (confirmed).
    Settled {
        at: EntryId,
        user: Box<[u8]>,
        how: Settlement,
        seats: Vec<Box<[u8]>>,
        qty: u64,
    },
    HoldExpired {
        at: EntryId,
        hold: HoldId,
    },
    /// QUEUE.ADMIT let the ticket in: it spends one unit of the budget and starts a session.
    Admitted {
        at: EntryId,
        ticket: EntryId,
        pass: Pass,
        expires_at: u64,
    },
    SessionEnded {
        at: EntryId,
        ticket: EntryId,
        why: SessionEnd,
    },
    /// OPENS-AT passed: the pre-queue is shuffled with this seed (the primary's randomness,
    /// replicated so every copy shuffles the same way).
    Opened {
        at: EntryId,
        seed: u64,
    },
}

/// A journal entry: its ID and field/value pairs, in order.
#[derive(Debug, PartialEq, Eq)]
pub struct JournalRecord {
    pub id: EntryId,
    /// Field, value, field, value, ...
    pub fields: ArgList,
}

impl JournalRecord {
    fn new(id: EntryId, kind: &str) -> Self {
        let mut fields = ArgList::with_capacity(12, 128);
        fields.push(b"type").push(kind.as_bytes());
        Self { id, fields }
    }

    fn field(mut self, name: &str, value: &[u8]) -> Self {
        self.fields.push(name.as_bytes()).push(value);
        self
    }

    fn field_u64(mut self, name: &str, value: u64) -> Self {
        self.fields.push(name.as_bytes()).push_u64(value);
        self
    }

    fn ticket(id: EntryId, kind: &str, ticket: EntryId, user: &[u8]) -> Self {
        let mut record = Self::new(id, kind);
        record.fields.push(b"ticket").push_id(ticket);
        record.field("user", user)
    }

    /// A seat change: the user, the seats (comma-separated; seat names contain no comma) and
    /// the general-admission quantity.
    fn seats<'a>(
        id: EntryId,
        kind: &str,
        user: &[u8],
        seats: impl IntoIterator<Item = &'a [u8]>,
        qty: u64,
    ) -> Self {
        let mut record = Self::new(id, kind).field("user", user);
        record.fields.push(b"seats").push_joined(seats, b',');
        record.field_u64("qty", qty)
    }
}

impl Effect {
    /// The ID of the journal entry this effect writes, if it writes one.
    pub fn journal_id(&self) -> Option<EntryId> {
        match self {
            Effect::Joined { ticket, .. } => Some(*ticket),
            Effect::Ended { at, .. }
            | Effect::Held { at, .. }
            | Effect::Settled { at, .. }
            | Effect::HoldExpired { at, .. }
            | Effect::Admitted { at, .. }
            | Effect::SessionEnded { at, .. }
            | Effect::Opened { at, .. } => Some(*at),
            _ => None,
        }
    }
}

impl Default for Event {
    fn default() -> Self {
        Self::new(EventConfig::from_defaults())
    }
}

impl Event {
    pub fn new(config: EventConfig) -> Self {
        Self {
            config,
            line: WaitingLine::new(),
            idempotency: IdempotencyLedger::new(),
            inventory: Inventory::new(),
            admission_budget: AdmissionBudget::default(),
            admission_history: RateHistory::default(),
            sessions: Sessions::default(),
            opened: false,
            last_id: EntryId::default(),
            totals: Totals::default(),
            sweep_cursor: 0,
            journal_trimmed_at: 0,
        }
    }

    /// A fresh ID for a ticket or journal entry at `now`, after `after` (the previous one
    /// planned in the same command, or the event's last ID).
    pub fn next_id(&self, now: u64, after: Option<EntryId>) -> EntryId {
        after.unwrap_or(self.last_id).next_at(now)
    }

    /// Applies one effect and, when `record` is set, returns the journal entry that records it
    /// (None when the effect writes none). An effect that does not fit the state (a replica fed
    /// a foreign stream) changes nothing and records nothing.
    pub fn apply(&mut self, effect: &Effect, record: bool) -> Option<JournalRecord> {
        match effect {
            Effect::Joined {
                ticket,
                heartbeat_deadline,
                payload,
            } => {
                if !self
                    .line
                    .push(*ticket, *heartbeat_deadline, payload.clone())
                {
                    return None;
                }
                self.last_id = self.last_id.max(*ticket);
                self.totals.joined += 1;
                record.then(|| {
                    let mut entry =
                        JournalRecord::ticket(*ticket, "joined", *ticket, payload.user());
                    for (field, value) in payload.data() {
                        entry
                            .fields
                            .push_joined([&b"data"[..], field], b'.')
                            .push(value);
                    }
                    entry
                })
            }
            Effect::Touched {
                ticket,
                heartbeat_deadline,
            } => {
                if let Some(index) = self.line.find(*ticket) {
                    self.line.touch(index, *heartbeat_deadline);
                }
                None
            }
            Effect::Ended { ticket, state, at } => {
                let index = self.line.find(*ticket)?;
                let payload = self.line.end(index, *state)?;
                self.last_id = self.last_id.max(*at);
                if *state == EndState::Admitted {
                    self.admission_history.record(at.ms);
                }
                let total = match state {
                    EndState::Admitted => &mut self.totals.admitted,
                    EndState::Left => &mut self.totals.left,
                    EndState::Expired => &mut self.totals.expired,
                };
                *total += 1;
                record.then(|| JournalRecord::ticket(*at, state.name(), *ticket, payload.user()))
            }
            Effect::Remembered { key, record } => {
                self.idempotency.remember(key, *record);
                None
            }
            Effect::Purged { now } => {
                self.idempotency.purge(*now);
                None
            }
            Effect::Configured(values) => {
                for &(setting, value) in values {
                    self.config.set(setting, value);
                }
                None
            }
            Effect::SeatsAdded { names } => {
                self.inventory.add_seats(names);
                None
            }
            Effect::StockAdded { qty } => {
                self.inventory.add_stock(*qty);
                None
            }
            Effect::Held {
                at,
                hold,
                user,
                expires_at,
                seats,
                qty,
            } => {
                let indices = self.seat_indices(seats)?;
                self.inventory
                    .hold(*hold, user, *expires_at, &indices, *qty);
                self.last_id = self.last_id.max(*at);
                record.then(|| {
                    JournalRecord::seats(*at, "held", user, seats.iter().map(|s| &**s), *qty)
                        .field_u64("hold", *hold)
                        .field_u64("expires_at_ms", *expires_at)
                })
            }
            Effect::Settled {
                at,
                user,
                how,
                seats,
                qty,
            } => {
                let buyer = self.inventory.buyer_index(user)?;
                let indices = self.seat_indices(seats)?;
                self.inventory.settle(buyer, &indices, *qty, *how);
                self.last_id = self.last_id.max(*at);
                let kind = match how {
                    Settlement::Release => "released",
                    Settlement::Sale => "sold",
                };
                record.then(|| {
                    JournalRecord::seats(*at, kind, user, seats.iter().map(|s| &**s), *qty)
                })
            }
            Effect::HoldExpired { at, hold } => {
                let expired = self.inventory.expire(*hold)?;
                self.last_id = self.last_id.max(*at);
                let inv = &self.inventory;
                record.then(|| {
                    let names = expired.seats.iter().map(|&s| &*inv.seats[s as usize].name);
                    let user = &inv.buyers[expired.buyer as usize].id;
                    JournalRecord::seats(*at, "hold_expired", user, names, expired.qty)
                        .field_u64("hold", *hold)
                })
            }
            Effect::Admitted {
                at,
                ticket,
                pass,
                expires_at,
            } => {
                let index = self.line.find(*ticket)?;
                let payload = self.line.end(index, EndState::Admitted)?;
                // Time comes from the entry ID, so replicas spend the budget identically.
                let rate = self.config.get(Setting::Rate);
                self.admission_budget.consume(at.ms, rate);
                self.admission_history.record(at.ms);
                self.totals.admitted += 1;
                self.last_id = self.last_id.max(*at);
                let user: Box<[u8]> = payload.user().into();
                self.sessions.insert(
                    *ticket,
                    Session {
                        user,
                        pass: *pass,
                        expires_at: *expires_at,
                    },
                );
                record.then(|| {
                    JournalRecord::ticket(*at, "admitted", *ticket, payload.user())
                        .field("via", b"admit")
                        .field_u64("pass_expires_at_ms", *expires_at)
                })
            }
            Effect::Opened { at, seed } => {
                if self.opened {
                    return None;
                }
                self.opened = true;
                let shuffled = self
                    .line
                    .shuffle_prequeue(self.config.get(Setting::OpensAt), *seed);
                self.last_id = self.last_id.max(*at);
                record.then(|| {
                    JournalRecord::new(*at, "opened").field_u64("shuffled", shuffled as u64)
                })
            }
            Effect::SessionEnded { at, ticket, why } => {
                let session = self.sessions.remove(*ticket)?;
                if let Some(index) = self.line.find(*ticket) {
                    self.line.restate(index, EndState::Admitted, why.state());
                }
                self.last_id = self.last_id.max(*at);
                record.then(|| {
                    JournalRecord::ticket(*at, "session_ended", *ticket, &session.user)
                        .field("reason", why.name().as_bytes())
                })
            }
        }
    }

    /// Indices of named seats; None (the effect is ignored) if one is unknown.
    fn seat_indices(&self, names: &[Box<[u8]>]) -> Option<Vec<u32>> {
        names.iter().map(|n| self.inventory.seat_index(n)).collect()
    }

    /// Everything the timer does for this event at `now` (primary only): expire lapsed
    /// tickets, purge idempotency keys, return lapsed holds.
    pub fn plan_timer_run(
        &mut self,
        now: u64,
        ticket_budget: usize,
        hold_budget: usize,
        seed: u64,
    ) -> Vec<Effect> {
        if let Some(open) = self.plan_open(now, seed) {
            // Opening reorders the line: the rest runs at the next tick, on the new order.
            return vec![open];
        }
        let mut effects = self.plan_sweep(now, ticket_budget);
        let after = effects.iter().rev().find_map(Effect::journal_id);
        effects.extend(self.plan_hold_expiry(now, after, hold_budget));
        let mut after = effects.iter().rev().find_map(Effect::journal_id);
        let lapsed: Vec<EntryId> = self.sessions.lapsed(now).take(hold_budget).collect();
        for ticket in lapsed {
            let at = self.next_id(now, after);
            after = Some(at);
            effects.push(Effect::SessionEnded {
                at,
                ticket,
                why: SessionEnd::PassExpired,
            });
        }
        effects
    }

    /// Shuffles the pre-queue once OPENS-AT has passed (timer, or the first ADMIT after it).
    pub fn plan_open(&self, now: u64, seed: u64) -> Option<Effect> {
        let opens_at = self.config.get(Setting::OpensAt);
        (!self.opened && opens_at > 0 && now >= opens_at).then(|| Effect::Opened {
            at: self.next_id(now, None),
            seed,
        })
    }

    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.line.heap_bytes()
            + self.idempotency.heap_bytes()
            + self.inventory.heap_bytes()
            // A session: its entry in three maps and a deadline set, plus the user ID.
            + self.sessions.len() * 256
    }
}
