//! One on-sale event: everything one Redis key holds. Every change is an `Effect`: the primary
//! decides effects (with its clock), applies them, journals them and replicates them; replicas and
//! AOF replays only apply them. Applying is deterministic and reads no clock, so all copies agree.

use crate::config::{EventConfig, Setting};
use crate::entry_id::EntryId;
use crate::queue::idempotency::{IdempotencyLedger, IdempotencyRecord};
use crate::queue::line::{EndState, WaitingLine};
use crate::queue::payload::TicketPayload;

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
    /// The last ticket or journal entry ID handed out; new IDs are strictly greater.
    pub last_id: EntryId,
    pub totals: Totals,
    /// Where the active heartbeat sweep resumes (not persisted: any start point is correct).
    pub sweep_cursor: usize,
    /// When the timer last trimmed the journal (not persisted).
    pub journal_trimmed_at: u64,
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
}

/// A journal entry: its ID and field/value pairs, in order.
#[derive(Debug, PartialEq, Eq)]
pub struct JournalRecord {
    pub id: EntryId,
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl JournalRecord {
    fn new(id: EntryId, kind: &str, ticket: EntryId, user: &[u8]) -> Self {
        Self {
            id,
            fields: vec![
                (b"type".to_vec(), kind.as_bytes().to_vec()),
                (b"ticket".to_vec(), ticket.to_string().into_bytes()),
                (b"user".to_vec(), user.to_vec()),
            ],
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

    /// Applies one effect and returns the journal entry that records it, if any. An effect that
    /// does not fit the state (a replica fed a foreign stream) changes nothing.
    pub fn apply(&mut self, effect: &Effect) -> Option<JournalRecord> {
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
                let mut record = JournalRecord::new(*ticket, "joined", *ticket, payload.user());
                for (field, value) in payload.data() {
                    let mut name = b"data.".to_vec();
                    name.extend_from_slice(field);
                    record.fields.push((name, value.to_vec()));
                }
                Some(record)
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
                let total = match state {
                    EndState::Admitted => &mut self.totals.admitted,
                    EndState::Left => &mut self.totals.left,
                    EndState::Expired => &mut self.totals.expired,
                };
                *total += 1;
                Some(JournalRecord::new(
                    *at,
                    state.name(),
                    *ticket,
                    payload.user(),
                ))
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
        }
    }

    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.line.heap_bytes() + self.idempotency.heap_bytes()
    }
}
