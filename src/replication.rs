//! Effects on the wire: how the primary tells replicas and the AOF what changed, as
//! `SEATQ.APPLY <key> <effect> <args...>`. Times and IDs are absolute, so replaying an effect
//! never consults a clock. Decoding validates everything, since the command is reachable by
//! clients too.

use crate::admission::sessions::{pass_from_hex, pass_to_hex};
use crate::arg_list::ArgList;
use crate::config::Setting;
use crate::entry_id::{parse_u64, EntryId};
use crate::error::SeatqError;
use crate::event::{Effect, SessionEnd};
use crate::queue::idempotency::{IdempotencyRecord, MAX_KEY_LEN};
use crate::queue::line::EndState;
use crate::queue::payload::TicketPayload;
use crate::seats::inventory::Settlement;
use crate::seats::validate_seat_name;

pub const APPLY_COMMAND: &str = "SEATQ.APPLY";

/// Appends the arguments after the key.
pub fn encode(effect: &Effect, args: &mut ArgList) {
    match effect {
        Effect::Joined {
            ticket,
            heartbeat_deadline,
            payload,
        } => {
            args.push(b"JOIN")
                .push_id(*ticket)
                .push_u64(*heartbeat_deadline)
                .push(payload.packed());
        }
        Effect::Touched {
            ticket,
            heartbeat_deadline,
        } => {
            args.push(b"TOUCH")
                .push_id(*ticket)
                .push_u64(*heartbeat_deadline);
        }
        Effect::Ended { ticket, state, at } => {
            args.push(b"END")
                .push_id(*ticket)
                .push(state.name().as_bytes())
                .push_id(*at);
        }
        Effect::Remembered { key, record } => {
            args.push(b"REMEMBER")
                .push(key)
                .push_id(record.ticket)
                .push_u64(record.expires_at);
        }
        Effect::Purged { now } => {
            args.push(b"PURGE").push_u64(*now);
        }
        Effect::Configured(values) => {
            args.push(b"CONFIG");
            for (setting, value) in values {
                args.push(setting.spec().field.as_bytes()).push_u64(*value);
            }
        }
        Effect::SeatsAdded { names } => push_all(args.push(b"SEATS"), names),
        Effect::StockAdded { qty } => {
            args.push(b"STOCK").push_u64(*qty);
        }
        Effect::Held {
            at,
            hold,
            user,
            expires_at,
            seats,
            qty,
        } => push_all(
            args.push(b"HOLD")
                .push_id(*at)
                .push_u64(*hold)
                .push(user)
                .push_u64(*expires_at)
                .push_u64(*qty),
            seats,
        ),
        Effect::Settled {
            at,
            user,
            how,
            seats,
            qty,
        } => {
            let op = match how {
                Settlement::Release => &b"RELEASE"[..],
                Settlement::Sale => b"SELL",
            };
            push_all(args.push(op).push_id(*at).push(user).push_u64(*qty), seats)
        }
        Effect::HoldExpired { at, hold } => {
            args.push(b"EXPIRE-HOLD").push_id(*at).push_u64(*hold);
        }
        Effect::Admitted {
            at,
            ticket,
            pass,
            expires_at,
        } => {
            args.push(b"ADMIT")
                .push_id(*at)
                .push_id(*ticket)
                .push(pass_to_hex(pass).as_bytes())
                .push_u64(*expires_at);
        }
        Effect::Opened { at, seed } => {
            args.push(b"OPEN").push_id(*at).push_u64(*seed);
        }
        Effect::SessionEnded { at, ticket, why } => {
            args.push(b"SESSION-END")
                .push_id(*at)
                .push_id(*ticket)
                .push(why.name().as_bytes());
        }
    }
}

fn push_all(args: &mut ArgList, names: &[Box<[u8]>]) {
    for name in names {
        args.push(name);
    }
}

fn seat_names(args: &[&[u8]]) -> Result<Vec<Box<[u8]>>, SeatqError> {
    args.iter()
        .map(|a| {
            validate_seat_name(a)?;
            Ok((*a).into())
        })
        .collect()
}

fn user_id(arg: &[u8]) -> Result<Box<[u8]>, SeatqError> {
    if arg.is_empty() || arg.len() > crate::queue::payload::MAX_USER_LEN {
        return Err(bad("bad user"));
    }
    Ok(arg.into())
}

fn bad(what: &str) -> SeatqError {
    SeatqError::Invalid(format!("malformed {APPLY_COMMAND} effect: {what}"))
}

fn parse_id(arg: &[u8]) -> Result<EntryId, SeatqError> {
    EntryId::parse(arg).ok_or_else(|| bad("bad ID"))
}

fn parse_num(arg: &[u8]) -> Result<u64, SeatqError> {
    parse_u64(arg).ok_or_else(|| bad("bad number"))
}

pub fn decode(args: &[&[u8]]) -> Result<Effect, SeatqError> {
    let (op, rest) = args.split_first().ok_or(SeatqError::WrongArity)?;
    let op = op.to_ascii_uppercase();
    let arity = |n: usize| {
        if rest.len() == n {
            Ok(())
        } else {
            Err(SeatqError::WrongArity)
        }
    };
    Ok(match op.as_slice() {
        b"JOIN" => {
            arity(3)?;
            Effect::Joined {
                ticket: parse_id(rest[0])?,
                heartbeat_deadline: parse_num(rest[1])?,
                payload: TicketPayload::from_packed(rest[2])?,
            }
        }
        b"TOUCH" => {
            arity(2)?;
            Effect::Touched {
                ticket: parse_id(rest[0])?,
                heartbeat_deadline: parse_num(rest[1])?,
            }
        }
        b"END" => {
            arity(3)?;
            Effect::Ended {
                ticket: parse_id(rest[0])?,
                state: EndState::from_name(rest[1]).ok_or_else(|| bad("bad state"))?,
                at: parse_id(rest[2])?,
            }
        }
        b"REMEMBER" => {
            arity(3)?;
            if rest[0].is_empty() || rest[0].len() > MAX_KEY_LEN {
                return Err(bad("bad idempotency key"));
            }
            Effect::Remembered {
                key: rest[0].into(),
                record: IdempotencyRecord {
                    ticket: parse_id(rest[1])?,
                    expires_at: parse_num(rest[2])?,
                },
            }
        }
        b"PURGE" => {
            arity(1)?;
            Effect::Purged {
                now: parse_num(rest[0])?,
            }
        }
        b"CONFIG" => {
            if rest.is_empty() || rest.len() % 2 != 0 {
                return Err(SeatqError::WrongArity);
            }
            let values = rest
                .chunks(2)
                .map(|pair| {
                    let setting =
                        Setting::from_field(pair[0]).ok_or_else(|| bad("unknown setting"))?;
                    Ok((setting, setting.parse(pair[1])?))
                })
                .collect::<Result<_, SeatqError>>()?;
            Effect::Configured(values)
        }
        b"SEATS" if !rest.is_empty() => Effect::SeatsAdded {
            names: seat_names(rest)?,
        },
        b"STOCK" => {
            arity(1)?;
            Effect::StockAdded {
                qty: parse_num(rest[0])?,
            }
        }
        b"HOLD" if rest.len() >= 5 => Effect::Held {
            at: parse_id(rest[0])?,
            hold: parse_num(rest[1])?,
            user: user_id(rest[2])?,
            expires_at: parse_num(rest[3])?,
            qty: parse_num(rest[4])?,
            seats: seat_names(&rest[5..])?,
        },
        b"RELEASE" | b"SELL" if rest.len() >= 3 => Effect::Settled {
            at: parse_id(rest[0])?,
            user: user_id(rest[1])?,
            how: if op == b"SELL" {
                Settlement::Sale
            } else {
                Settlement::Release
            },
            qty: parse_num(rest[2])?,
            seats: seat_names(&rest[3..])?,
        },
        b"EXPIRE-HOLD" => {
            arity(2)?;
            Effect::HoldExpired {
                at: parse_id(rest[0])?,
                hold: parse_num(rest[1])?,
            }
        }
        b"ADMIT" => {
            arity(4)?;
            Effect::Admitted {
                at: parse_id(rest[0])?,
                ticket: parse_id(rest[1])?,
                pass: pass_from_hex(rest[2]).ok_or_else(|| bad("bad pass"))?,
                expires_at: parse_num(rest[3])?,
            }
        }
        b"OPEN" => {
            arity(2)?;
            Effect::Opened {
                at: parse_id(rest[0])?,
                seed: parse_num(rest[1])?,
            }
        }
        b"SESSION-END" => {
            arity(3)?;
            Effect::SessionEnded {
                at: parse_id(rest[0])?,
                ticket: parse_id(rest[1])?,
                why: SessionEnd::ALL
                    .into_iter()
                    .find(|w| w.name().as_bytes() == rest[2])
                    .ok_or_else(|| bad("bad reason"))?,
            }
        }
        b"SEATS" | b"HOLD" | b"RELEASE" | b"SELL" => return Err(SeatqError::WrongArity),
        _ => return Err(bad("unknown effect")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_effect_round_trips() {
        let effects = [
            Effect::Joined {
                ticket: EntryId::new(5, 1),
                heartbeat_deadline: 99,
                payload: TicketPayload::new(b"u\r\n", &[(b"f", b"\x00v")]).unwrap(),
            },
            Effect::Touched {
                ticket: EntryId::new(5, 1),
                heartbeat_deadline: 100,
            },
            Effect::Ended {
                ticket: EntryId::new(5, 1),
                state: EndState::Left,
                at: EntryId::new(6, 0),
            },
            Effect::Remembered {
                key: b"k".to_vec().into(),
                record: IdempotencyRecord {
                    ticket: EntryId::new(5, 1),
                    expires_at: 7,
                },
            },
            Effect::Purged { now: 8 },
            Effect::Configured(vec![(Setting::Heartbeat, 5000), (Setting::Journal, 0)]),
            Effect::SeatsAdded {
                names: vec![b"A-1".to_vec().into(), b"B-2".to_vec().into()],
            },
            Effect::StockAdded { qty: 100 },
            Effect::Held {
                at: EntryId::new(9, 0),
                hold: 3,
                user: b"u".to_vec().into(),
                expires_at: 50,
                seats: vec![b"A-1".to_vec().into()],
                qty: 0,
            },
            Effect::Held {
                at: EntryId::new(9, 1),
                hold: 4,
                user: b"u".to_vec().into(),
                expires_at: 50,
                seats: vec![],
                qty: 2,
            },
            Effect::Settled {
                at: EntryId::new(9, 2),
                user: b"u".to_vec().into(),
                how: Settlement::Sale,
                seats: vec![b"A-1".to_vec().into()],
                qty: 1,
            },
            Effect::Settled {
                at: EntryId::new(9, 3),
                user: b"u".to_vec().into(),
                how: Settlement::Release,
                seats: vec![],
                qty: 1,
            },
            Effect::Opened {
                at: EntryId::new(11, 0),
                seed: u64::MAX,
            },
            Effect::Admitted {
                at: EntryId::new(10, 0),
                ticket: EntryId::new(5, 1),
                pass: [0xa5; 16],
                expires_at: 99,
            },
            Effect::SessionEnded {
                at: EntryId::new(10, 1),
                ticket: EntryId::new(5, 1),
                why: SessionEnd::Confirm,
            },
            Effect::HoldExpired {
                at: EntryId::new(9, 4),
                hold: 4,
            },
        ];
        for effect in effects {
            let mut args = ArgList::default();
            encode(&effect, &mut args);
            let refs: Vec<&[u8]> = args.iter().collect();
            assert_eq!(decode(&refs).unwrap(), effect);
        }
    }

    #[test]
    fn junk_is_rejected() {
        for junk in [
            &[&b"JOIN"[..]][..],
            &[b"JOIN", b"1-0", b"5", b""],
            &[b"END", b"1-0", b"gone", b"2-0"],
            &[b"CONFIG", b"HEARTBEAT", b"1"],
            &[b"CONFIG", b"NOPE", b"1"],
            &[b"TOUCH", b"x", b"1"],
            &[b"PURGE", b"-1"],
            &[b"EXPLODE"],
            &[b"SEATS"],
            &[b"SEATS", b"bad seat"],
            &[b"HOLD", b"1-0", b"1", b"u", b"5"],
            &[b"HOLD", b"1-0", b"x", b"u", b"5", b"0"],
            &[b"SELL", b"1-0", b"", b"0"],
            &[b"EXPIRE-HOLD", b"1-0"],
        ] {
            assert!(decode(junk).is_err(), "{junk:?}");
        }
    }
}
