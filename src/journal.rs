//! The event's journal: a native Redis Stream beside the event key, in the same hash slot, with
//! one entry per state change (the transactional outbox). This file is the pure part: the
//! naming rule and what each entry says; `ffi::stream` writes them.
//!
//! Naming rule (one journal per event, never shared): `<key>:journal` when the event key has a
//! hash tag (a `{...}` with something inside, the part Redis Cluster hashes), otherwise
//! `{<key>}.journal`. The two forms end differently (`:journal` / `.journal`), so no two event
//! keys share a journal (`x` -> `{x}.journal`, `{x}` -> `{x}:journal`), and each hashes like its
//! event key. A key without a hash tag that contains `}` cannot be wrapped that way: its
//! writes are refused while JOURNAL is on.
//!
//! Entries carry no secret: tickets appear by serial (not the ticket a client holds), passes
//! not at all.

use crate::arg_list::ArgList;
use crate::entry_id::EntryId;
use crate::error::{printable, SeatqError};
use crate::event::{Effect, Event};
use crate::queue::line::Serial;

/// Whether the key contains a non-empty `{tag}` (the part Redis Cluster hashes).
fn has_hash_tag(key: &[u8]) -> bool {
    key.iter()
        .position(|&b| b == b'{')
        .and_then(|open| key[open + 1..].iter().position(|&b| b == b'}'))
        .is_some_and(|len| len > 0)
}

pub fn journal_key(event_key: &[u8]) -> Result<Vec<u8>, SeatqError> {
    let mut name = Vec::with_capacity(event_key.len() + 10);
    if has_hash_tag(event_key) {
        name.extend_from_slice(event_key);
        name.extend_from_slice(b":journal");
    } else if event_key.contains(&b'}') {
        return Err(SeatqError::Invalid(format!(
            "event key {} has no hash tag and contains '}}', so its journal cannot share its slot; use a key with a {{tag}} or JOURNAL off",
            printable(event_key)
        )));
    } else {
        name.push(b'{');
        name.extend_from_slice(event_key);
        name.extend_from_slice(b"}.journal");
    }
    Ok(name)
}

/// A journal entry: its ID and field/value pairs, the first being `type`.
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

    fn number(mut self, name: &str, value: u64) -> Self {
        self.fields.push(name.as_bytes()).push_u64(value);
        self
    }

    fn ticket(id: EntryId, kind: &str, serial: Serial, user: &[u8]) -> Self {
        Self::new(id, kind)
            .number("serial", u64::from(serial))
            .field("user", user)
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
        record.number("qty", qty)
    }
}

/// The entry an effect writes, described from the event as it is just before the effect
/// applies (None for effects that write none, or that will be refused).
pub fn record(effect: &Effect, event: &Event) -> Option<JournalRecord> {
    let waiting_user = |serial: Serial| {
        event
            .line
            .get(serial)
            .and_then(|t| t.payload())
            .map(|p| p.user())
    };
    let session_user = |serial: Serial| event.sessions.get(serial).map(|s| &*s.user);
    Some(match effect {
        Effect::Joined {
            at,
            serial,
            payload,
            ..
        } => {
            let mut entry = JournalRecord::ticket(*at, "joined", *serial, payload.user());
            for (field, value) in payload.data() {
                entry
                    .fields
                    .push_joined([&b"data"[..], field], b'.')
                    .push(value);
            }
            entry
        }
        Effect::Left { at, serial } => {
            JournalRecord::ticket(*at, "left", *serial, waiting_user(*serial)?)
        }
        Effect::Expired { at, serial } => {
            JournalRecord::ticket(*at, "expired", *serial, waiting_user(*serial)?)
        }
        Effect::Dequeued { at, serial } => {
            JournalRecord::ticket(*at, "dequeued", *serial, waiting_user(*serial)?)
        }
        Effect::Opened { at } => JournalRecord::new(*at, "opened")
            .number("prequeue", event.line.prequeue_waiting() as u64),
        Effect::Paused { at } => JournalRecord::new(*at, "paused"),
        Effect::Resumed { at } => JournalRecord::new(*at, "resumed"),
        Effect::Closed { at } => JournalRecord::new(*at, "closed"),
        Effect::Reopened { at } => JournalRecord::new(*at, "reopened"),
        Effect::Admitted {
            at,
            serial,
            claim_deadline,
            expires_at,
            ..
        } => JournalRecord::ticket(*at, "admitted", *serial, waiting_user(*serial)?)
            .number("claim_by_ms", *claim_deadline)
            .number("expires_at_ms", *expires_at),
        Effect::Claimed { at, serial } => {
            JournalRecord::ticket(*at, "claimed", *serial, session_user(*serial)?)
        }
        Effect::SessionEnded { at, serial, end } => {
            JournalRecord::ticket(*at, "session_ended", *serial, session_user(*serial)?)
                .field("reason", end.name().as_bytes())
        }
        Effect::Held {
            at,
            hold,
            user,
            expires_at,
            seats,
            qty,
        } => JournalRecord::seats(*at, "held", user, seats.iter().map(|s| &**s), *qty)
            .number("hold", *hold)
            .number("expires_at_ms", *expires_at),
        Effect::Released {
            at,
            user,
            seats,
            qty,
        } => JournalRecord::seats(*at, "released", user, seats.iter().map(|s| &**s), *qty),
        Effect::Sold {
            at,
            user,
            seats,
            qty,
        } => JournalRecord::seats(*at, "sold", user, seats.iter().map(|s| &**s), *qty),
        Effect::HoldExpired { at, hold } => {
            let inv = &event.inventory;
            let h = inv.holds.get(hold)?;
            let names = h.seats.iter().map(|&s| &*inv.seats[s as usize].name);
            let user = &inv.buyers[h.buyer as usize].id;
            JournalRecord::seats(*at, "hold_expired", user, names, h.qty).number("hold", *hold)
        }
        Effect::Granted {
            at,
            epoch,
            lease_until,
            ceiling,
            capacity,
            ..
        } => {
            let entry = JournalRecord::new(*at, "granted")
                .number("epoch", *epoch)
                .number("ceiling", *ceiling)
                .number("lease_until_ms", *lease_until);
            match capacity {
                Some(c) => entry.number("fallback_capacity", *c),
                None => entry,
            }
        }
        Effect::Created { .. }
        | Effect::Configured(_)
        | Effect::Touched { .. }
        | Effect::Remembered(_)
        | Effect::Purged { .. }
        | Effect::Compacted { .. }
        | Effect::Renewed { .. }
        | Effect::SeatsAdded { .. }
        | Effect::StockAdded { .. }
        | Effect::Ranked(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_journal_per_event_in_its_slot() {
        assert_eq!(journal_key(b"concert").unwrap(), b"{concert}.journal");
        assert_eq!(journal_key(b"{c1}:sale").unwrap(), b"{c1}:sale:journal");
        assert_eq!(journal_key(b"a{b").unwrap(), b"{a{b}.journal");
        // `x`, `{x}` and `{x}:journal` as event keys: three different journals.
        let names: Vec<Vec<u8>> = [&b"x"[..], b"{x}", b"{x}:journal", b"{x}.journal"]
            .iter()
            .map(|k| journal_key(k).unwrap())
            .collect();
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // An empty tag means the whole key is hashed, so it must be wrapped; it has '}' though.
        assert!(journal_key(b"{}x").is_err());
        assert!(journal_key(b"x}y").is_err());
    }
}
