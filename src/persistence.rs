//! The event's serialized form. One encoder serves RDB (`rdb_save`), DEBUG DIGEST and the AOF
//! snapshot blob, through the `Sink` trait; one decoder serves RDB load and the snapshot.
//!
//! Layout (encoding version 1): settings as (persist id, value) pairs, last ID, totals, whether
//! the pre-queue was opened and how many tickets it shuffled, tickets in line order (ID, state, and for waiting tickets the heartbeat deadline and packed payload),
//! idempotency records sorted by key, then the inventory (seats with their states, buyers, holds,
//! general-admission counts). Unknown setting IDs are skipped so that a newer module can add
//! settings without a version bump.

use crate::admission::budget::{self, AdmissionBudget};
use crate::admission::sessions::{Pass, Session};
use crate::config::{EventConfig, Setting, SETTINGS};
use crate::entry_id::EntryId;
use crate::event::{Event, Totals};
use crate::queue::idempotency::{IdempotencyLedger, IdempotencyRecord, MAX_KEY_LEN};
use crate::queue::line::{EndState, Ticket, TicketBody, WaitingLine};
use crate::queue::payload::TicketPayload;
use crate::seats::inventory::{Buyer, Counts, Hold, Inventory, Seat, SeatState};
use crate::seats::validate_seat_name;

pub const ENCODING_VERSION: i32 = 1;

pub trait Sink {
    fn unsigned(&mut self, value: u64);
    fn bytes(&mut self, value: &[u8]);
}

pub trait Source {
    fn unsigned(&mut self) -> Result<u64, String>;
    fn bytes(&mut self) -> Result<Vec<u8>, String>;
}

const STATE_WAITING: u64 = 0;

fn state_code(state: EndState) -> u64 {
    match state {
        EndState::Admitted => 1,
        EndState::Left => 2,
        EndState::Expired => 3,
    }
}

fn state_from_code(code: u64) -> Result<EndState, String> {
    EndState::ALL
        .into_iter()
        .find(|&s| state_code(s) == code)
        .ok_or_else(|| format!("unknown ticket state {code}"))
}

fn put_id(sink: &mut impl Sink, id: EntryId) {
    sink.unsigned(id.ms);
    sink.unsigned(id.seq);
}

fn get_id(source: &mut impl Source) -> Result<EntryId, String> {
    Ok(EntryId::new(source.unsigned()?, source.unsigned()?))
}

/// Reads a count and refuses one larger than the input could possibly hold, so corrupt input
/// cannot make us allocate absurd amounts.
fn get_count(source: &mut impl Source, max: u64) -> Result<usize, String> {
    let n = source.unsigned()?;
    if n > max {
        return Err(format!("count {n} exceeds {max}"));
    }
    Ok(n as usize)
}

pub fn save(event: &Event, sink: &mut impl Sink) {
    sink.unsigned(SETTINGS.len() as u64);
    for spec in &SETTINGS {
        sink.unsigned(spec.persist_id);
        sink.unsigned(event.config.get(spec.setting));
    }
    put_id(sink, event.last_id);
    let t = &event.totals;
    for total in [t.joined, t.admitted, t.left, t.expired] {
        sink.unsigned(total);
    }
    let tickets = event.line.tickets();
    sink.unsigned(u64::from(event.opened));
    sink.unsigned(event.line.shuffled_len() as u64);
    sink.unsigned(tickets.len() as u64);
    for ticket in tickets {
        put_id(sink, ticket.id);
        match &ticket.body {
            TicketBody::Waiting {
                heartbeat_deadline,
                payload,
            } => {
                sink.unsigned(STATE_WAITING);
                sink.unsigned(*heartbeat_deadline);
                sink.bytes(payload.packed());
            }
            TicketBody::Ended(state) => sink.unsigned(state_code(*state)),
        }
    }
    let records = event.idempotency.sorted();
    sink.unsigned(records.len() as u64);
    for (key, record) in records {
        sink.bytes(key);
        put_id(sink, record.ticket);
        sink.unsigned(record.expires_at);
    }
    save_inventory(&event.inventory, sink);
    save_admission(event, sink);
}

fn save_admission(event: &Event, sink: &mut impl Sink) {
    sink.unsigned(event.admission_budget.tat_us);
    let history = &event.admission_history.seconds;
    sink.unsigned(history.len() as u64);
    for &(second, count) in history {
        sink.unsigned(second);
        sink.unsigned(count);
    }
    sink.unsigned(event.sessions.len() as u64);
    for (ticket, session) in &event.sessions.by_ticket {
        put_id(sink, *ticket);
        sink.bytes(&session.user);
        sink.bytes(&session.pass);
        sink.unsigned(session.expires_at);
    }
}

fn load_admission(event: &mut Event, source: &mut impl Source) -> Result<(), String> {
    event.admission_budget = AdmissionBudget {
        tat_us: source.unsigned()?,
    };
    for _ in 0..get_count(source, budget::WINDOW_S + 1)? {
        let (second, count) = (source.unsigned()?, source.unsigned()?);
        event.admission_history.seconds.push_back((second, count));
    }
    for _ in 0..get_count(source, MAX_ITEMS)? {
        let ticket = get_id(source)?;
        let user = source.bytes()?;
        let pass: Pass = source.bytes()?.try_into().map_err(|_| "bad pass")?;
        let expires_at = source.unsigned()?;
        let admitted = event.line.find(ticket).map(|i| &event.line.get(i).body)
            == Some(&TicketBody::Ended(EndState::Admitted));
        if !admitted
            || user.is_empty()
            || event.sessions.of_pass(&pass).is_some()
            || event.sessions.of_user(&user).is_some()
        {
            return Err("inconsistent admitted session".into());
        }
        event.sessions.insert(
            ticket,
            Session {
                user: user.into(),
                pass,
                expires_at,
            },
        );
    }
    Ok(())
}

const SEAT_AVAILABLE: u64 = 0;
const SEAT_HELD: u64 = 1;
const SEAT_SOLD: u64 = 2;

fn save_inventory(inv: &Inventory, sink: &mut impl Sink) {
    sink.unsigned(inv.seats.len() as u64);
    for seat in &inv.seats {
        sink.bytes(&seat.name);
        let (code, value) = match seat.state {
            SeatState::Available { lapsed_holder } => (
                SEAT_AVAILABLE,
                lapsed_holder.map_or(0, |b| u64::from(b) + 1),
            ),
            SeatState::Held { hold } => (SEAT_HELD, hold),
            SeatState::Sold { buyer } => (SEAT_SOLD, u64::from(buyer)),
        };
        sink.unsigned(code);
        sink.unsigned(value);
    }
    sink.unsigned(inv.buyers.len() as u64);
    for b in &inv.buyers {
        sink.bytes(&b.id);
        for n in [b.held, b.sold, b.lapsed_qty] {
            sink.unsigned(n);
        }
    }
    sink.unsigned(inv.holds.len() as u64);
    for (id, h) in &inv.holds {
        for n in [
            *id,
            u64::from(h.buyer),
            h.expires_at,
            h.qty,
            h.seats.len() as u64,
        ] {
            sink.unsigned(n);
        }
        for &s in &h.seats {
            sink.unsigned(u64::from(s));
        }
    }
    let g = &inv.general;
    for n in [
        inv.next_hold,
        g.total,
        g.available,
        g.held,
        g.sold,
        inv.holds_expired_total,
    ] {
        sink.unsigned(n);
    }
}

fn get_u32(source: &mut impl Source) -> Result<u32, String> {
    u32::try_from(source.unsigned()?).map_err(|_| "index out of range".to_string())
}

fn load_inventory(source: &mut impl Source) -> Result<Inventory, String> {
    let mut inv = Inventory::new();
    let mut named = Counts::default();
    for _ in 0..get_count(source, MAX_ITEMS)? {
        let name = source.bytes()?;
        validate_seat_name(&name).map_err(|e| e.message())?;
        let (code, value) = (source.unsigned()?, source.unsigned()?);
        let state = match code {
            SEAT_AVAILABLE => SeatState::Available {
                lapsed_holder: value.checked_sub(1).map(|b| b as u32),
            },
            SEAT_HELD => SeatState::Held { hold: value },
            SEAT_SOLD => SeatState::Sold {
                buyer: u32::try_from(value).map_err(|_| "bad buyer")?,
            },
            other => return Err(format!("unknown seat state {other}")),
        };
        match state {
            SeatState::Available { .. } => named.available += 1,
            SeatState::Held { .. } => named.held += 1,
            SeatState::Sold { .. } => named.sold += 1,
        }
        named.total += 1;
        inv.seats.push(Seat {
            name: name.into(),
            state,
        });
    }
    inv.named = named;
    for _ in 0..get_count(source, MAX_ITEMS)? {
        let id = source.bytes()?;
        let (held, sold, lapsed_qty) = (source.unsigned()?, source.unsigned()?, source.unsigned()?);
        inv.buyers.push(Buyer {
            id: id.into(),
            held,
            sold,
            lapsed_qty,
            ..Buyer::default()
        });
    }
    for _ in 0..get_count(source, MAX_ITEMS)? {
        let id = source.unsigned()?;
        let buyer = get_u32(source)?;
        let (expires_at, qty) = (source.unsigned()?, source.unsigned()?);
        let n = get_count(source, inv.seats.len() as u64)?;
        let seats = (0..n)
            .map(|_| get_u32(source))
            .collect::<Result<Vec<_>, _>>()?;
        inv.holds.insert(
            id,
            Hold {
                buyer,
                expires_at,
                seats,
                qty,
            },
        );
    }
    inv.next_hold = source.unsigned()?;
    inv.general = Counts {
        total: source.unsigned()?,
        available: source.unsigned()?,
        held: source.unsigned()?,
        sold: source.unsigned()?,
    };
    inv.holds_expired_total = source.unsigned()?;
    let buyers = inv.buyers.len();
    let bad_ref = inv.seats.iter().any(|s| match s.state {
        SeatState::Available {
            lapsed_holder: Some(b),
        }
        | SeatState::Sold { buyer: b } => b as usize >= buyers,
        _ => false,
    });
    if bad_ref || inv.holds.keys().any(|&id| id >= inv.next_hold) {
        return Err("inventory references are out of range".into());
    }
    inv.reindex()?;
    Ok(inv)
}

const MAX_ITEMS: u64 = 1 << 32;

pub fn load(source: &mut impl Source, version: i32) -> Result<Event, String> {
    if version != ENCODING_VERSION {
        return Err(format!(
            "seatq event encoding version {version} is not supported by this module (it reads version {ENCODING_VERSION}); load it with a seatq release that supports it"
        ));
    }
    let mut config = EventConfig::from_defaults();
    for _ in 0..get_count(source, 1024)? {
        let (id, value) = (source.unsigned()?, source.unsigned()?);
        if let Some(setting) = Setting::from_persist_id(id) {
            config.set(setting, value);
        }
    }
    let mut event = Event::new(config);
    event.last_id = get_id(source)?;
    event.totals = Totals {
        joined: source.unsigned()?,
        admitted: source.unsigned()?,
        left: source.unsigned()?,
        expired: source.unsigned()?,
    };
    event.opened = source.unsigned()? == 1;
    let shuffled_len = get_count(source, MAX_ITEMS)?;
    let n = get_count(source, MAX_ITEMS)?;
    let mut tickets = Vec::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        let id = get_id(source)?;
        let body = match source.unsigned()? {
            STATE_WAITING => TicketBody::Waiting {
                heartbeat_deadline: source.unsigned()?,
                payload: TicketPayload::from_packed(&source.bytes()?).map_err(|e| e.message())?,
            },
            code => TicketBody::Ended(state_from_code(code)?),
        };
        tickets.push(Ticket { id, body });
    }
    event.line = WaitingLine::from_tickets(tickets, shuffled_len)?;
    let mut ledger = IdempotencyLedger::new();
    for _ in 0..get_count(source, MAX_ITEMS)? {
        let key = source.bytes()?;
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err("bad idempotency key".into());
        }
        let ticket = get_id(source)?;
        let expires_at = source.unsigned()?;
        ledger.remember(&key, IdempotencyRecord { ticket, expires_at });
    }
    event.idempotency = ledger;
    event.inventory = load_inventory(source)?;
    load_admission(&mut event, source)?;
    if event.line.last_id().is_some_and(|id| id > event.last_id) {
        return Err("last ID is behind the newest ticket".into());
    }
    Ok(event)
}

/// An in-memory sink: varints and length-prefixed bytes (the AOF snapshot blob, tests).
#[derive(Default)]
pub struct ByteSink(pub Vec<u8>);

impl Sink for ByteSink {
    fn unsigned(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn bytes(&mut self, value: &[u8]) {
        self.unsigned(value.len() as u64);
        self.0.extend_from_slice(value);
    }
}

pub struct ByteSource<'a>(pub &'a [u8]);

impl Source for ByteSource<'_> {
    fn unsigned(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.0.split_first().ok_or("truncated snapshot")?;
            self.0 = rest;
            value |= u64::from(b & 0x7f).checked_shl(7 * i).ok_or("bad varint")?;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("bad varint".into())
    }

    fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let len = self.unsigned()?;
        if len > self.0.len() as u64 {
            return Err("truncated snapshot".into());
        }
        let (head, rest) = self.0.split_at(len as usize);
        self.0 = rest;
        Ok(head.to_vec())
    }
}

pub fn to_bytes(event: &Event) -> Vec<u8> {
    let mut sink = ByteSink::default();
    save(event, &mut sink);
    sink.0
}

pub fn from_bytes(bytes: &[u8]) -> Result<Event, String> {
    let mut source = ByteSource(bytes);
    let event = load(&mut source, ENCODING_VERSION)?;
    if !source.0.is_empty() {
        return Err("trailing bytes after snapshot".into());
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Effect;
    use crate::event::SessionEnd;
    use crate::queue::line::EndState;
    use crate::seats::inventory::Settlement;

    fn sample() -> Event {
        let mut ev = Event::default();
        ev.apply(
            &Effect::Configured(vec![(Setting::Heartbeat, 5000), (Setting::Journal, 0)]),
            true,
        );
        for i in 0..20u64 {
            let payload =
                TicketPayload::new(format!("user-{i}").as_bytes(), &[(b"tier", b"vip")]).unwrap();
            ev.apply(
                &Effect::Joined {
                    ticket: EntryId::new(100 + i, 0),
                    heartbeat_deadline: 9000 + i,
                    payload,
                },
                true,
            );
        }
        ev.apply(
            &Effect::Ended {
                ticket: EntryId::new(103, 0),
                state: EndState::Left,
                at: EntryId::new(200, 0),
            },
            true,
        );
        ev.apply(
            &Effect::Remembered {
                key: b"idem".to_vec().into(),
                record: IdempotencyRecord {
                    ticket: EntryId::new(101, 0),
                    expires_at: 7,
                },
            },
            true,
        );
        let names: Vec<Box<[u8]>> = (0..6)
            .map(|i| format!("S-{i}").into_bytes().into())
            .collect();
        let user = |u: &str| -> Box<[u8]> { u.as_bytes().into() };
        for effect in [
            Effect::SeatsAdded {
                names: names.clone(),
            },
            Effect::StockAdded { qty: 50 },
            Effect::Held {
                at: EntryId::new(300, 0),
                hold: 0,
                user: user("a"),
                expires_at: 900,
                seats: names[0..2].to_vec(),
                qty: 3,
            },
            Effect::Held {
                at: EntryId::new(300, 1),
                hold: 1,
                user: user("b"),
                expires_at: 950,
                seats: names[2..3].to_vec(),
                qty: 0,
            },
            Effect::Settled {
                at: EntryId::new(300, 2),
                user: user("a"),
                how: Settlement::Sale,
                seats: names[0..1].to_vec(),
                qty: 1,
            },
            Effect::HoldExpired {
                at: EntryId::new(300, 3),
                hold: 1,
            },
        ] {
            let journaled = ev.apply(&effect, true).is_some();
            assert!(
                journaled
                    || matches!(
                        effect,
                        Effect::SeatsAdded { .. } | Effect::StockAdded { .. }
                    )
            );
        }
        ev.inventory.check_invariants().unwrap();
        // Admission: a pre-queue shuffle, two sessions (one ended), the budget and its history.
        ev.apply(&Effect::Configured(vec![(Setting::OpensAt, 110)]), true);
        assert!(ev
            .apply(
                &Effect::Opened {
                    at: EntryId::new(400, 0),
                    seed: 7
                },
                true
            )
            .is_some());
        for (i, ticket) in [105u64, 106].into_iter().enumerate() {
            let admitted = Effect::Admitted {
                at: EntryId::new(400, 1 + i as u64),
                ticket: EntryId::new(ticket, 0),
                pass: [i as u8 + 1; 16],
                expires_at: 5000,
            };
            assert!(ev.apply(&admitted, true).is_some());
        }
        let ended = Effect::SessionEnded {
            at: EntryId::new(400, 3),
            ticket: EntryId::new(106, 0),
            why: SessionEnd::Leave,
        };
        assert!(ev.apply(&ended, true).is_some());
        ev
    }

    #[test]
    fn round_trip_is_exact() {
        let ev = sample();
        let bytes = to_bytes(&ev);
        let back = from_bytes(&bytes).unwrap();
        assert_eq!(to_bytes(&back), bytes);
        assert_eq!(back.line.waiting(), 17, "two of the 19 were admitted");
        assert_eq!(back.config.heartbeat_ms(), 5000);
        assert!(!back.config.journal_on());
        assert_eq!(back.last_id, EntryId::new(400, 3));
        assert_eq!(
            back.idempotency.lookup(b"idem", 0),
            Some(EntryId::new(101, 0))
        );
        assert!(back.opened);
        assert_eq!(back.line.shuffled_len(), ev.line.shuffled_len());
        assert_eq!(back.line.tickets(), ev.line.tickets());
        assert_eq!(back.sessions.by_ticket, ev.sessions.by_ticket);
        assert_eq!(
            (back.admission_budget, &back.admission_history),
            (ev.admission_budget, &ev.admission_history)
        );
        assert_eq!(back.sessions.of_pass(&[1; 16]), Some(EntryId::new(105, 0)));
        let (a, b) = (&back.inventory, &ev.inventory);
        assert_eq!(
            (&a.named, &a.general, &a.holds, &a.seats, &a.buyers),
            (&b.named, &b.general, &b.holds, &b.seats, &b.buyers)
        );
        assert_eq!(
            (
                a.named.sold,
                a.general.sold,
                a.general.held,
                a.holds_expired_total
            ),
            (1, 1, 2, 1)
        );
    }

    #[test]
    fn corrupt_or_truncated_input_is_an_error_not_a_panic() {
        let bytes = to_bytes(&sample());
        for cut in 0..bytes.len() {
            assert!(from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0x55;
            let _ = from_bytes(&flipped);
            flipped[i] ^= 0x55;
        }
        assert!(load(&mut ByteSource(&bytes), 2)
            .err()
            .unwrap()
            .contains("version 2"));
    }
}
