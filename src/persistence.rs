//! The event's serialized form. One encoder serves RDB (`rdb_save`), DEBUG DIGEST and the AOF
//! snapshot blob, through the `Sink` trait; one decoder serves RDB load, RESTORE, full syncs and
//! the snapshot. A loaded event must pass `Event::check_invariants`, the same check every
//! command's result passes in the tests: what commands can produce always loads, and nothing
//! else does (the load fails with a log line instead of taking the server down).
//!
//! Layout (encoding version 2): settings as (persist id, value) pairs (unknown IDs are skipped,
//! so a newer module can add settings without a version bump), the secret, phase, journal flag,
//! last ID, totals, budget and rate history, the line (next serial, then every stored ticket
//! by serial: waiting ones with deadline and payload, ended ones with their state),
//! idempotency records in the order they were made, sessions, then the inventory. Version 1
//! (the first release) is read and converted (see `v1`).

mod v1;

use crate::admission::budget::{self, AdmissionBudget, RateHistory};
use crate::admission::sessions::{Session, Sessions};
use crate::config::{EventConfig, Setting, SETTINGS};
use crate::entry_id::EntryId;
use crate::event::{Event, Phase, Totals};
use crate::queue::idempotency::{IdempotencyRecord, MAX_KEY_LEN};
use crate::queue::line::{EndState, Serial, Ticket, WaitingLine};
use crate::queue::payload::TicketPayload;
use crate::seats::inventory::{Buyer, Counts, Hold, Inventory, Seat, SeatState};
use crate::seats::validate_seat_name;
use crate::secret::SECRET_LEN;

pub const ENCODING_VERSION: i32 = 2;

pub trait Sink {
    fn unsigned(&mut self, value: u64);
    fn bytes(&mut self, value: &[u8]);
}

pub trait Source {
    fn unsigned(&mut self) -> Result<u64, String>;
    fn bytes(&mut self) -> Result<Vec<u8>, String>;
}

/// Ticket state codes: waiting (in join order or in the pre-queue), or ended.
const WAITING: u64 = 0;
const WAITING_PREQUEUE: u64 = 1;
const ENDED: u64 = 2;

fn put_id(sink: &mut impl Sink, id: EntryId) {
    sink.unsigned(id.ms);
    sink.unsigned(id.seq);
}

fn get_id(source: &mut impl Source) -> Result<EntryId, String> {
    Ok(EntryId::new(source.unsigned()?, source.unsigned()?))
}

fn get_serial(source: &mut impl Source) -> Result<Serial, String> {
    Serial::try_from(source.unsigned()?).map_err(|_| "serial out of range".to_string())
}

fn get_u32(source: &mut impl Source) -> Result<u32, String> {
    u32::try_from(source.unsigned()?).map_err(|_| "index out of range".to_string())
}

fn get_bool(source: &mut impl Source) -> Result<bool, String> {
    match source.unsigned()? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(format!("bad flag {other}")),
    }
}

/// Reads a count and refuses one larger than `max`, so corrupt input cannot make us allocate
/// absurd amounts.
fn get_count(source: &mut impl Source, max: u64) -> Result<usize, String> {
    let n = source.unsigned()?;
    if n > max {
        return Err(format!("count {n} exceeds {max}"));
    }
    Ok(n as usize)
}

const MAX_ITEMS: u64 = 1 << 32;

fn end_code(state: EndState) -> u64 {
    ENDED
        + EndState::ALL
            .iter()
            .position(|&s| s == state)
            .expect("listed") as u64
}

pub fn save(event: &Event, sink: &mut impl Sink) {
    sink.unsigned(SETTINGS.len() as u64);
    for spec in &SETTINGS {
        sink.unsigned(spec.persist_id);
        sink.unsigned(event.config.get(spec.setting));
    }
    sink.bytes(event.secret.bytes());
    let phase = event.phase;
    for flag in [phase.opened, phase.paused, phase.closed] {
        sink.unsigned(u64::from(flag));
    }
    sink.bytes(event.journal.as_deref().unwrap_or_default());
    put_id(sink, event.last_id);
    let t = &event.totals;
    for total in [
        t.joined,
        t.admitted,
        t.claimed,
        t.left,
        t.expired,
        t.dequeued,
        t.sessions_ended,
    ] {
        sink.unsigned(total);
    }
    sink.unsigned((event.budget.tat >> 64) as u64);
    sink.unsigned(event.budget.tat as u64);
    sink.unsigned(event.history.seconds.len() as u64);
    for &(second, count) in &event.history.seconds {
        sink.unsigned(second);
        sink.unsigned(count);
    }
    let line = &event.line;
    sink.unsigned(u64::from(line.next_serial()));
    sink.unsigned((line.waiting() + line.tombstones()) as u64);
    for (serial, ticket) in line.tickets() {
        sink.unsigned(u64::from(serial));
        match ticket {
            Ticket::Waiting {
                heartbeat_deadline,
                payload,
            } => {
                let code = if line.in_prequeue(serial) {
                    WAITING_PREQUEUE
                } else {
                    WAITING
                };
                sink.unsigned(code);
                sink.unsigned(*heartbeat_deadline);
                sink.bytes(payload.packed());
            }
            Ticket::Ended(state) => sink.unsigned(end_code(*state)),
        }
    }
    sink.unsigned(event.idempotency.len() as u64);
    for record in event.idempotency.iter() {
        sink.bytes(&record.key);
        sink.unsigned(u64::from(record.serial));
        sink.unsigned(record.expires_at);
    }
    sink.unsigned(event.sessions.len() as u64);
    for (serial, s) in event.sessions.iter() {
        sink.unsigned(u64::from(serial));
        sink.bytes(&s.user);
        for n in [
            s.admitted_at,
            u64::from(s.claimed),
            s.claim_deadline,
            s.expires_at,
            s.max_expires_at,
        ] {
            sink.unsigned(n);
        }
        sink.bytes(s.pass.as_bytes());
    }
    save_inventory(&event.inventory, sink);
}

const SEAT_AVAILABLE: u64 = 0;
const SEAT_HELD: u64 = 1;
const SEAT_SOLD: u64 = 2;

fn save_inventory(inv: &Inventory, sink: &mut impl Sink) {
    sink.unsigned(inv.seats.len() as u64);
    for seat in inv.seats.iter() {
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
    for b in inv.buyers.iter() {
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

/// Reads the inventory layout (the same in versions 1 and 2).
fn load_inventory(source: &mut impl Source) -> Result<Inventory, String> {
    let n = get_count(source, MAX_ITEMS)?;
    let mut seats = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let name = source.bytes()?;
        validate_seat_name(&name).map_err(|e| e.message())?;
        let (code, value) = (source.unsigned()?, source.unsigned()?);
        let state = match code {
            SEAT_AVAILABLE => SeatState::Available {
                lapsed_holder: value
                    .checked_sub(1)
                    .map(u32::try_from)
                    .transpose()
                    .map_err(|_| "bad lapsed holder")?,
            },
            SEAT_HELD => SeatState::Held { hold: value },
            SEAT_SOLD => SeatState::Sold {
                buyer: u32::try_from(value).map_err(|_| "bad buyer")?,
            },
            other => return Err(format!("unknown seat state {other}")),
        };
        seats.push(Seat {
            name: name.into(),
            state,
        });
    }
    let n = get_count(source, MAX_ITEMS)?;
    let mut buyers = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let id = source.bytes()?;
        if !crate::event::valid_user(&id) {
            return Err("bad buyer ID".into());
        }
        let (held, sold, lapsed_qty) = (source.unsigned()?, source.unsigned()?, source.unsigned()?);
        buyers.push(Buyer {
            id: id.into(),
            held,
            sold,
            lapsed_qty,
            ..Buyer::default()
        });
    }
    let mut holds = std::collections::BTreeMap::new();
    for _ in 0..get_count(source, MAX_ITEMS)? {
        let id = source.unsigned()?;
        let buyer = get_u32(source)?;
        let (expires_at, qty) = (source.unsigned()?, source.unsigned()?);
        let n = get_count(source, seats.len() as u64)?;
        let hold_seats = (0..n)
            .map(|_| get_u32(source))
            .collect::<Result<Vec<_>, _>>()?;
        if holds
            .insert(
                id,
                Hold {
                    buyer,
                    expires_at,
                    seats: hold_seats,
                    qty,
                },
            )
            .is_some()
        {
            return Err("a hold is listed twice".into());
        }
    }
    let next_hold = source.unsigned()?;
    let general = Counts {
        total: source.unsigned()?,
        available: source.unsigned()?,
        held: source.unsigned()?,
        sold: source.unsigned()?,
    };
    let holds_expired_total = source.unsigned()?;
    Inventory::restore(
        seats,
        buyers,
        holds,
        next_hold,
        general,
        holds_expired_total,
    )
}

fn load_config(source: &mut impl Source) -> Result<EventConfig, String> {
    let mut config = EventConfig::from_defaults();
    for _ in 0..get_count(source, 1024)? {
        let (id, value) = (source.unsigned()?, source.unsigned()?);
        if let Some(setting) = Setting::from_persist_id(id) {
            config.set(setting, value);
        }
    }
    Ok(config)
}

fn load_history(source: &mut impl Source) -> Result<RateHistory, String> {
    let mut history = RateHistory::default();
    for _ in 0..get_count(source, budget::WINDOW_S + 1)? {
        let (second, count) = (source.unsigned()?, source.unsigned()?);
        history.seconds.push_back((second, count));
    }
    Ok(history)
}

/// Whether `name` is an effect of the first release's `SEATQ.APPLY` (its AOF and replication
/// stream), which this release does not replay.
pub fn is_first_release_effect(name: &[u8]) -> bool {
    v1::EFFECTS.iter().any(|e| e.eq_ignore_ascii_case(name))
}

/// Loads an event of encoding `version`.
pub fn load(source: &mut impl Source, version: i32) -> Result<Event, String> {
    let event = match version {
        1 => v1::load(source)?,
        ENCODING_VERSION => load_v2(source)?,
        _ => {
            return Err(format!(
                "seatq event encoding version {version} is not supported by this module (it reads versions 1 and {ENCODING_VERSION}); load it with a seatq release that supports it"
            ))
        }
    };
    event.check_invariants()?;
    Ok(event)
}

fn load_v2(source: &mut impl Source) -> Result<Event, String> {
    let config = load_config(source)?;
    let secret: [u8; SECRET_LEN] = source.bytes()?.try_into().map_err(|_| "bad event secret")?;
    let mut event = Event::new(config, secret);
    event.phase = Phase {
        opened: get_bool(source)?,
        paused: get_bool(source)?,
        closed: get_bool(source)?,
    };
    let journal = source.bytes()?;
    event.journal = (!journal.is_empty()).then(|| journal.into());

    event.last_id = get_id(source)?;
    let mut totals = [0u64; 7];
    for total in &mut totals {
        *total = source.unsigned()?;
    }
    let [joined, admitted, claimed, left, expired, dequeued, sessions_ended] = totals;
    event.totals = Totals {
        joined,
        admitted,
        claimed,
        left,
        expired,
        dequeued,
        sessions_ended,
    };
    let (high, low) = (source.unsigned()?, source.unsigned()?);
    event.budget = AdmissionBudget {
        tat: (u128::from(high) << 64) | u128::from(low),
    };
    event.history = load_history(source)?;
    let next_serial = get_serial(source)?;
    let n = get_count(source, u64::from(next_serial))?;
    let mut tickets = Vec::with_capacity(n.min(1 << 20));
    let mut prequeue = std::collections::HashSet::new();
    for _ in 0..n {
        let serial = get_serial(source)?;
        let ticket = match source.unsigned()? {
            code @ (WAITING | WAITING_PREQUEUE) => {
                if code == WAITING_PREQUEUE {
                    prequeue.insert(serial);
                }
                Ticket::Waiting {
                    heartbeat_deadline: source.unsigned()?,
                    payload: TicketPayload::from_packed(&source.bytes()?)
                        .map_err(|e| e.message())?,
                }
            }
            code => Ticket::Ended(
                *EndState::ALL
                    .get((code - ENDED) as usize)
                    .ok_or_else(|| format!("unknown ticket state {code}"))?,
            ),
        };
        tickets.push((serial, ticket));
    }
    event.line = WaitingLine::restore(event.secret.shuffle_key(), tickets, next_serial, |s| {
        prequeue.contains(&s)
    })?;
    for _ in 0..get_count(source, MAX_ITEMS)? {
        let key = source.bytes()?;
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err("bad idempotency key".into());
        }
        let serial = get_serial(source)?;
        let expires_at = source.unsigned()?;
        event.idempotency.remember(IdempotencyRecord {
            key: key.into(),
            serial,
            expires_at,
        });
    }
    let mut sessions = Sessions::default();
    for _ in 0..get_count(source, MAX_ITEMS)? {
        let serial = get_serial(source)?;
        let user = source.bytes()?;
        let admitted_at = source.unsigned()?;
        let claimed = get_bool(source)?;
        let (claim_deadline, expires_at, max_expires_at) =
            (source.unsigned()?, source.unsigned()?, source.unsigned()?);
        let pass = String::from_utf8(source.bytes()?).map_err(|_| "bad pass")?;
        if !crate::event::valid_user(&user) {
            return Err("bad session user".into());
        }
        sessions.insert(
            serial,
            Session {
                user: user.into(),
                admitted_at,
                claimed,
                claim_deadline,
                expires_at,
                max_expires_at,
                pass: pass.into(),
            },
        )?;
    }
    event.sessions = sessions;
    event.inventory = load_inventory(source)?;
    if event.idempotency.len() != event.idempotency.iter().count() {
        return Err("an idempotency key is listed twice".into());
    }
    Ok(event)
}

/// An in-memory sink: varints and length-prefixed bytes (the AOF snapshot blob, COPY, tests).
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

pub fn from_bytes(bytes: &[u8], version: i32) -> Result<Event, String> {
    let mut source = ByteSource(bytes);
    let event = load(&mut source, version)?;
    if !source.0.is_empty() {
        return Err("trailing bytes after snapshot".into());
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::Signer;
    use crate::event::Effect;
    use crate::queue::tests::{event, join, run, SIGNER};
    use crate::queue::Target;
    use crate::seats::Units;
    use crate::upkeep::{step, Limits};

    /// An event with every kind of state: pre-queue shuffled and opened, waiting and ended
    /// tickets, live and ended sessions, idempotency keys, seats held, sold and returned.
    pub fn sample() -> Event {
        let mut ev = event();
        run(
            &mut ev,
            vec![Effect::Configured(vec![
                (Setting::OpensAt, 5_000),
                (Setting::Burst, 3),
                (Setting::Heartbeat, 60_000),
            ])],
        );
        for i in 0..20 {
            join(
                &mut ev,
                1000 + i,
                &format!("user-{i}"),
                Some(&format!("k{i}")),
            )
            .unwrap();
        }
        let (effects, _) = ev.plan_leave(1500, Target::User(b"user-3")).unwrap();
        run(&mut ev, effects);
        step(&mut ev, 5_000, Limits::TIMER, &SIGNER).unwrap();
        let serial = ev.sessions.iter().next().unwrap().0;
        let (effects, _) = ev
            .plan_revoke(5_001, Target::Ticket(ev.ticket(serial).as_bytes()))
            .unwrap();
        run(&mut ev, effects);
        join(&mut ev, 6_000, "late", None).unwrap();
        let names: Vec<Box<[u8]>> = (0..6)
            .map(|i| format!("S-{i}").into_bytes().into())
            .collect();
        let effects = ev.plan_add(Units::Seats(names.clone())).unwrap();
        run(&mut ev, effects);
        let effects = ev.plan_add(Units::Qty(50)).unwrap();
        run(&mut ev, effects);
        let (effects, _) = ev
            .plan_hold(7_000, b"a", Units::Seats(names[0..2].to_vec()), 10_000)
            .unwrap();
        run(&mut ev, effects);
        let (effects, _) = ev.plan_hold(7_000, b"b", Units::Qty(3), 1_000).unwrap();
        run(&mut ev, effects);
        let (effects, _) = ev
            .plan_settle(7_001, b"a", Units::Seats(names[0..1].to_vec()), true)
            .unwrap();
        run(&mut ev, effects);
        let effects = ev.plan_hold_expiry(9_000, &mut None, 10);
        run(&mut ev, effects);
        ev
    }

    #[test]
    fn round_trip_is_exact() {
        let ev = sample();
        let bytes = to_bytes(&ev);
        let back = from_bytes(&bytes, ENCODING_VERSION).unwrap();
        assert_eq!(to_bytes(&back), bytes);
        assert_eq!(back.line.waiting(), ev.line.waiting());
        assert_eq!(back.line.prequeue_waiting(), ev.line.prequeue_waiting());
        for k in 0..ev.line.waiting() {
            assert_eq!(back.line.nth_waiting(k), ev.line.nth_waiting(k));
        }
        assert_eq!(back.sessions.len(), 2);
        assert_eq!(back.idempotency.len(), ev.idempotency.len());
        let (a, b) = (&back.inventory, &ev.inventory);
        assert_eq!(
            (&a.named, &a.general, &a.holds),
            (&b.named, &b.general, &b.holds)
        );
        assert_eq!(back.phase, ev.phase);
        assert_eq!(back.budget, ev.budget);
        // The loaded event keeps working the same way.
        let signer = Signer {
            event: b"ev",
            keys: &[],
        };
        let mut copy = back;
        let mut orig = ev;
        for e in [&mut copy, &mut orig] {
            step(e, 20_000, Limits::TIMER, &signer).unwrap();
        }
        assert_eq!(to_bytes(&copy), to_bytes(&orig));
    }

    #[test]
    fn corrupt_or_truncated_input_is_an_error_not_a_panic() {
        let bytes = to_bytes(&sample());
        for cut in 0..bytes.len() {
            assert!(
                from_bytes(&bytes[..cut], ENCODING_VERSION).is_err(),
                "cut at {cut}"
            );
        }
        let mut flipped = bytes.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0x55;
            if let Ok(ev) = from_bytes(&flipped, ENCODING_VERSION) {
                ev.check_invariants().unwrap();
            }
            flipped[i] ^= 0x55;
        }
        assert!(load(&mut ByteSource(&bytes), 3)
            .err()
            .unwrap()
            .contains("version 3"));
    }
}
