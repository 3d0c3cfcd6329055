//! Effects on the wire: how the primary tells replicas and the AOF what changed, as one
//! `SEATQ.APPLY <key> <effect> <args...> [<effect> <args...> ...]` per command (or timer step).
//! Each effect is its name (the effect's name in capitals) and fixed arguments, lists with their
//! length first. Times and IDs are absolute, so replaying never consults a clock. Decoding
//! validates every argument; applying then checks each effect fits the event.

use crate::arg_list::ArgList;
use crate::config::Setting;
use crate::entry_id::{parse_u64, EntryId};
use crate::error::SeatqError;
use crate::event::Effect;
use crate::queue::idempotency::{IdempotencyRecord, MAX_KEY_LEN};
use crate::queue::line::{EndState, Serial};
use crate::queue::payload::TicketPayload;
use crate::seats::validate_seat_name;
use crate::secret::SECRET_LEN;

pub const APPLY_COMMAND: &str = "SEATQ.APPLY";
/// The AOF rewrite's form: one whole event.
pub const SNAPSHOT: &[u8] = b"SNAPSHOT";
/// More effects in one APPLY than any command or timer step makes.
const MAX_EFFECTS: usize = 1 << 16;

fn push_names(args: &mut ArgList, names: &[Box<[u8]>]) {
    args.push_u64(names.len() as u64);
    for name in names {
        args.push(name);
    }
}

fn push_settings(args: &mut ArgList, values: &[(Setting, u64)]) {
    args.push_u64(values.len() as u64);
    for (setting, value) in values {
        args.push(setting.spec().field.as_bytes()).push_u64(*value);
    }
}

fn hex(bytes: &[u8]) -> Vec<u8> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|&b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]])
        .collect()
}

/// Appends one effect's name and arguments.
pub fn encode(effect: &Effect, args: &mut ArgList) {
    let serial = |s: &Serial| u64::from(*s);
    match effect {
        Effect::Created { secret, settings } => {
            args.push(b"CREATED").push(&hex(secret));
            push_settings(args, settings);
        }
        Effect::Configured(values) => push_settings(args.push(b"CONFIGURED"), values),
        Effect::Joined {
            at,
            serial: s,
            heartbeat_deadline,
            payload,
        } => {
            args.push(b"JOINED")
                .push_id(*at)
                .push_u64(serial(s))
                .push_u64(*heartbeat_deadline)
                .push(payload.packed());
        }
        Effect::Touched {
            serial: s,
            heartbeat_deadline,
        } => {
            args.push(b"TOUCHED")
                .push_u64(serial(s))
                .push_u64(*heartbeat_deadline);
        }
        Effect::Left { at, serial: s } => {
            args.push(b"LEFT").push_id(*at).push_u64(serial(s));
        }
        Effect::Expired { at, serial: s } => {
            args.push(b"EXPIRED").push_id(*at).push_u64(serial(s));
        }
        Effect::Dequeued { at, serial: s } => {
            args.push(b"DEQUEUED").push_id(*at).push_u64(serial(s));
        }
        Effect::Remembered(record) => {
            args.push(b"REMEMBERED")
                .push(&record.key)
                .push_u64(serial(&record.serial))
                .push_u64(record.expires_at);
        }
        Effect::Purged { now, count } => {
            args.push(b"PURGED")
                .push_u64(*now)
                .push_u64(u64::from(*count));
        }
        Effect::Compacted { through } => {
            args.push(b"COMPACTED").push_u64(serial(through));
        }
        Effect::Opened { at } => {
            args.push(b"OPENED").push_id(*at);
        }
        Effect::Paused { at } => {
            args.push(b"PAUSED").push_id(*at);
        }
        Effect::Resumed { at } => {
            args.push(b"RESUMED").push_id(*at);
        }
        Effect::Closed { at } => {
            args.push(b"CLOSED").push_id(*at);
        }
        Effect::Reopened { at } => {
            args.push(b"REOPENED").push_id(*at);
        }
        Effect::Admitted {
            at,
            serial: s,
            claim_deadline,
            expires_at,
            max_expires_at,
            pass,
        } => {
            args.push(b"ADMITTED")
                .push_id(*at)
                .push_u64(serial(s))
                .push_u64(*claim_deadline)
                .push_u64(*expires_at)
                .push_u64(*max_expires_at)
                .push(pass.as_bytes());
        }
        Effect::Claimed { at, serial: s } => {
            args.push(b"CLAIMED").push_id(*at).push_u64(serial(s));
        }
        Effect::Renewed {
            serial: s,
            expires_at,
            pass,
        } => {
            args.push(b"RENEWED")
                .push_u64(serial(s))
                .push_u64(*expires_at)
                .push(pass.as_bytes());
        }
        Effect::SessionEnded { at, serial: s, end } => {
            args.push(b"SESSION-ENDED")
                .push_id(*at)
                .push_u64(serial(s))
                .push(end.name().as_bytes());
        }
        Effect::SeatsAdded { names } => push_names(args.push(b"SEATS-ADDED"), names),
        Effect::StockAdded { qty } => {
            args.push(b"STOCK-ADDED").push_u64(*qty);
        }
        Effect::Held {
            at,
            hold,
            user,
            expires_at,
            seats,
            qty,
        } => push_names(
            args.push(b"HELD")
                .push_id(*at)
                .push_u64(*hold)
                .push(user)
                .push_u64(*expires_at)
                .push_u64(*qty),
            seats,
        ),
        Effect::Released {
            at,
            user,
            seats,
            qty,
        } => push_names(
            args.push(b"RELEASED")
                .push_id(*at)
                .push(user)
                .push_u64(*qty),
            seats,
        ),
        Effect::Sold {
            at,
            user,
            seats,
            qty,
        } => push_names(
            args.push(b"SOLD").push_id(*at).push(user).push_u64(*qty),
            seats,
        ),
        Effect::HoldExpired { at, hold } => {
            args.push(b"HOLD-EXPIRED").push_id(*at).push_u64(*hold);
        }
        Effect::Granted {
            at,
            epoch,
            lease_until,
            ceiling,
            capacity,
            spread_ms,
        } => {
            args.push(b"GRANTED")
                .push_id(*at)
                .push_u64(*epoch)
                .push_u64(*lease_until)
                .push_u64(*ceiling);
            match capacity {
                Some(c) => args.push_u64(*c),
                None => args.push(b"-"),
            };
            args.push_u64(*spread_ms);
        }
        Effect::Ranked(table) => {
            args.push(b"RANKED")
                .push_u64(table.at_ms)
                .push_u64(table.rate_milli)
                .push_u64(table.waiting)
                .push_u64(table.points.len() as u64);
            for &(t, c) in &table.points {
                args.push_u64(t).push_u64(c);
            }
        }
    }
}

fn bad(what: &str) -> SeatqError {
    SeatqError::Invalid(format!("malformed {APPLY_COMMAND} effect: {what}"))
}

/// Reads an effect list argument by argument.
struct Reader<'a, 'b> {
    args: &'b [&'a [u8]],
}

impl<'a> Reader<'a, '_> {
    fn next(&mut self) -> Result<&'a [u8], SeatqError> {
        let (first, rest) = self
            .args
            .split_first()
            .ok_or_else(|| bad("too few arguments"))?;
        self.args = rest;
        Ok(first)
    }

    fn number(&mut self) -> Result<u64, SeatqError> {
        parse_u64(self.next()?).ok_or_else(|| bad("bad number"))
    }

    fn serial(&mut self) -> Result<Serial, SeatqError> {
        Serial::try_from(self.number()?).map_err(|_| bad("bad serial"))
    }

    fn id(&mut self) -> Result<EntryId, SeatqError> {
        EntryId::parse(self.next()?).ok_or_else(|| bad("bad ID"))
    }

    fn count(&mut self, max: usize) -> Result<usize, SeatqError> {
        let n = self.number()?;
        if n as usize > max || n as usize > self.args.len() {
            return Err(bad("bad count"));
        }
        Ok(n as usize)
    }

    fn user(&mut self) -> Result<Box<[u8]>, SeatqError> {
        let user = self.next()?;
        if !crate::event::valid_user(user) {
            return Err(bad("bad user"));
        }
        Ok(user.into())
    }

    fn pass(&mut self) -> Result<Box<str>, SeatqError> {
        std::str::from_utf8(self.next()?)
            .ok()
            .filter(|p| !p.is_empty() && p.len() <= 4096)
            .map(Into::into)
            .ok_or_else(|| bad("bad pass"))
    }

    fn seats(&mut self) -> Result<Vec<Box<[u8]>>, SeatqError> {
        let n = self.count(self.args.len())?;
        (0..n)
            .map(|_| {
                let name = self.next()?;
                validate_seat_name(name)?;
                Ok(name.into())
            })
            .collect()
    }

    fn settings(&mut self) -> Result<Vec<(Setting, u64)>, SeatqError> {
        let n = self.count(self.args.len() / 2)?;
        (0..n)
            .map(|_| {
                let setting =
                    Setting::from_field(self.next()?).ok_or_else(|| bad("unknown setting"))?;
                Ok((setting, setting.parse(self.next()?)?))
            })
            .collect()
    }

    fn secret(&mut self) -> Result<[u8; SECRET_LEN], SeatqError> {
        let text = self.next()?;
        let mut secret = [0u8; SECRET_LEN];
        if text.len() != 2 * SECRET_LEN {
            return Err(bad("bad secret"));
        }
        for (i, pair) in text.chunks(2).enumerate() {
            let digits = std::str::from_utf8(pair).map_err(|_| bad("bad secret"))?;
            secret[i] = u8::from_str_radix(digits, 16).map_err(|_| bad("bad secret"))?;
        }
        Ok(secret)
    }

    fn effect(&mut self) -> Result<Effect, SeatqError> {
        let name = self.next()?.to_ascii_uppercase();
        Ok(match name.as_slice() {
            b"CREATED" => Effect::Created {
                secret: self.secret()?,
                settings: self.settings()?,
            },
            b"CONFIGURED" => Effect::Configured(self.settings()?),
            b"JOINED" => Effect::Joined {
                at: self.id()?,
                serial: self.serial()?,
                heartbeat_deadline: self.number()?,
                payload: TicketPayload::from_packed(self.next()?)?,
            },
            b"TOUCHED" => Effect::Touched {
                serial: self.serial()?,
                heartbeat_deadline: self.number()?,
            },
            b"LEFT" => Effect::Left {
                at: self.id()?,
                serial: self.serial()?,
            },
            b"EXPIRED" => Effect::Expired {
                at: self.id()?,
                serial: self.serial()?,
            },
            b"DEQUEUED" => Effect::Dequeued {
                at: self.id()?,
                serial: self.serial()?,
            },
            b"REMEMBERED" => {
                let key = self.next()?;
                if key.is_empty() || key.len() > MAX_KEY_LEN {
                    return Err(bad("bad idempotency key"));
                }
                Effect::Remembered(IdempotencyRecord {
                    key: key.into(),
                    serial: self.serial()?,
                    expires_at: self.number()?,
                })
            }
            b"PURGED" => Effect::Purged {
                now: self.number()?,
                count: u32::try_from(self.number()?).map_err(|_| bad("bad count"))?,
            },
            b"COMPACTED" => Effect::Compacted {
                through: self.serial()?,
            },
            b"OPENED" => Effect::Opened { at: self.id()? },
            b"PAUSED" => Effect::Paused { at: self.id()? },
            b"RESUMED" => Effect::Resumed { at: self.id()? },
            b"CLOSED" => Effect::Closed { at: self.id()? },
            b"REOPENED" => Effect::Reopened { at: self.id()? },
            b"ADMITTED" => Effect::Admitted {
                at: self.id()?,
                serial: self.serial()?,
                claim_deadline: self.number()?,
                expires_at: self.number()?,
                max_expires_at: self.number()?,
                pass: self.pass()?,
            },
            b"CLAIMED" => Effect::Claimed {
                at: self.id()?,
                serial: self.serial()?,
            },
            b"RENEWED" => Effect::Renewed {
                serial: self.serial()?,
                expires_at: self.number()?,
                pass: self.pass()?,
            },
            b"SESSION-ENDED" => Effect::SessionEnded {
                at: self.id()?,
                serial: self.serial()?,
                end: EndState::from_name(self.next()?).ok_or_else(|| bad("bad session end"))?,
            },
            b"SEATS-ADDED" => Effect::SeatsAdded {
                names: self.seats()?,
            },
            b"STOCK-ADDED" => Effect::StockAdded {
                qty: self.number()?,
            },
            b"HELD" => Effect::Held {
                at: self.id()?,
                hold: self.number()?,
                user: self.user()?,
                expires_at: self.number()?,
                qty: self.number()?,
                seats: self.seats()?,
            },
            b"RELEASED" => Effect::Released {
                at: self.id()?,
                user: self.user()?,
                qty: self.number()?,
                seats: self.seats()?,
            },
            b"SOLD" => Effect::Sold {
                at: self.id()?,
                user: self.user()?,
                qty: self.number()?,
                seats: self.seats()?,
            },
            b"HOLD-EXPIRED" => Effect::HoldExpired {
                at: self.id()?,
                hold: self.number()?,
            },
            b"GRANTED" => Effect::Granted {
                at: self.id()?,
                epoch: self.number()?,
                lease_until: self.number()?,
                ceiling: self.number()?,
                capacity: match self.next()? {
                    b"-" => None,
                    n => Some(parse_u64(n).ok_or_else(|| bad("bad capacity"))?),
                },
                spread_ms: self.number()?,
            },
            b"RANKED" => {
                let (at_ms, rate_milli, waiting) = (self.number()?, self.number()?, self.number()?);
                let n = self.count(self.args.len() / 2)?;
                let points = (0..n)
                    .map(|_| Ok((self.number()?, self.number()?)))
                    .collect::<Result<_, SeatqError>>()?;
                Effect::Ranked(seatq_sharding::RankTable {
                    at_ms,
                    rate_milli,
                    waiting,
                    points,
                })
            }
            _ => return Err(bad("unknown effect")),
        })
    }
}

/// Decodes an effect list (everything after the key).
pub fn decode(args: &[&[u8]]) -> Result<Vec<Effect>, SeatqError> {
    let mut reader = Reader { args };
    let mut effects = Vec::new();
    while !reader.args.is_empty() {
        if effects.len() >= MAX_EFFECTS {
            return Err(bad("too many effects"));
        }
        effects.push(reader.effect()?);
    }
    if effects.is_empty() {
        return Err(SeatqError::WrongArity);
    }
    Ok(effects)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<Box<[u8]>> {
        n.iter().map(|s| s.as_bytes().into()).collect()
    }

    #[test]
    fn every_effect_round_trips_alone_and_in_a_list() {
        let id = |ms, seq| EntryId::new(ms, seq);
        let effects = vec![
            Effect::Created {
                secret: [0xa5; SECRET_LEN],
                settings: vec![(Setting::Heartbeat, 5000), (Setting::Journal, 0)],
            },
            Effect::Configured(vec![(Setting::Rate, 7)]),
            Effect::Joined {
                at: id(5, 1),
                serial: 3,
                heartbeat_deadline: 99,
                payload: TicketPayload::new(b"u\r\n", &[(b"f", b"\x00v")]).unwrap(),
            },
            Effect::Touched {
                serial: 3,
                heartbeat_deadline: 100,
            },
            Effect::Left {
                at: id(6, 0),
                serial: 3,
            },
            Effect::Expired {
                at: id(6, 1),
                serial: 4,
            },
            Effect::Dequeued {
                at: id(6, 2),
                serial: 5,
            },
            Effect::Remembered(IdempotencyRecord {
                key: b"k".to_vec().into(),
                serial: 3,
                expires_at: 7,
            }),
            Effect::Purged { now: 8, count: 2 },
            Effect::Compacted { through: 2048 },
            Effect::Opened { at: id(7, 0) },
            Effect::Paused { at: id(7, 1) },
            Effect::Resumed { at: id(7, 2) },
            Effect::Closed { at: id(7, 3) },
            Effect::Reopened { at: id(7, 4) },
            Effect::Admitted {
                at: id(8, 0),
                serial: 9,
                claim_deadline: 10,
                expires_at: 11,
                max_expires_at: 12,
                pass: "a.b.c".into(),
            },
            Effect::Claimed {
                at: id(8, 1),
                serial: 9,
            },
            Effect::Renewed {
                serial: 9,
                expires_at: 12,
                pass: "d.e.f".into(),
            },
            Effect::SessionEnded {
                at: id(8, 2),
                serial: 9,
                end: EndState::Revoked,
            },
            Effect::SeatsAdded {
                names: names(&["A-1", "B-2"]),
            },
            Effect::StockAdded { qty: 100 },
            Effect::Held {
                at: id(9, 0),
                hold: 3,
                user: b"u".to_vec().into(),
                expires_at: 50,
                seats: names(&["A-1"]),
                qty: 0,
            },
            Effect::Released {
                at: id(9, 1),
                user: b"u".to_vec().into(),
                seats: vec![],
                qty: 1,
            },
            Effect::Sold {
                at: id(9, 2),
                user: b"u".to_vec().into(),
                seats: names(&["A-1"]),
                qty: 1,
            },
            Effect::HoldExpired {
                at: id(9, 4),
                hold: 4,
            },
            Effect::Granted {
                at: id(10, 0),
                epoch: 3,
                lease_until: 2_000,
                ceiling: 17,
                capacity: Some(40),
                spread_ms: 100,
            },
            Effect::Granted {
                at: id(10, 1),
                epoch: 3,
                lease_until: 2_000,
                ceiling: 17,
                capacity: None,
                spread_ms: 0,
            },
            Effect::Ranked(seatq_sharding::RankTable {
                at_ms: 11,
                rate_milli: 100_000,
                waiting: 40,
                points: vec![(5_000, 0), (9_000, 40)],
            }),
        ];
        let mut all = ArgList::default();
        for effect in &effects {
            let mut args = ArgList::default();
            encode(effect, &mut args);
            encode(effect, &mut all);
            let refs: Vec<&[u8]> = args.iter().collect();
            assert_eq!(decode(&refs).unwrap(), vec![effect.clone()]);
        }
        let refs: Vec<&[u8]> = all.iter().collect();
        assert_eq!(decode(&refs).unwrap(), effects);
    }

    #[test]
    fn junk_is_rejected() {
        for junk in [
            &[&b"JOINED"[..]][..],
            &[b"JOINED", b"1-0", b"0", b"5", b""],
            &[b"LEFT", b"1-0", b"4294967296"],
            &[b"SESSION-ENDED", b"1-0", b"1", b"gone"],
            &[b"CONFIGURED", b"1", b"HEARTBEAT", b"1"],
            &[b"CONFIGURED", b"1", b"NOPE", b"1000"],
            &[b"CONFIGURED", b"9", b"RATE", b"1"],
            &[b"TOUCHED", b"x", b"1"],
            &[b"PURGED", b"-1", b"0"],
            &[b"EXPLODE"],
            &[b"SEATS-ADDED", b"1"],
            &[b"SEATS-ADDED", b"1", b"bad seat"],
            &[b"HELD", b"1-0", b"1", b"u", b"5", b"0", b"2", b"A"],
            &[b"SOLD", b"1-0", b"", b"0", b"0"],
            &[b"CREATED", b"00", b"0"],
            &[b"ADMITTED", b"1-0", b"1", b"2", b"3", b"4", b""],
            &[b"GRANTED", b"1-0", b"1", b"2", b"3"],
            &[b"GRANTED", b"1-0", b"1", b"2", b"3", b"x", b"0"],
            &[b"GRANTED", b"1-0", b"1", b"2", b"3", b"-"],
            &[b"RANKED", b"1", b"2", b"3", b"2", b"5", b"0"],
            &[],
        ] {
            assert!(decode(junk).is_err(), "{junk:?}");
        }
    }
}
