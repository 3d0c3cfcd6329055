//! SEAT.* handlers.

use super::args::number;
use super::{read, write, ArgDoc, ArgKind, Args, KEY};
use crate::config::Setting;
use crate::error::SeatqError;
use crate::event::Effect;
use crate::ffi::Ctx;
use crate::queue::line::EndState;
use crate::seats::inventory::Counts;
use crate::seats::Units;
use crate::upkeep::Apply;

/// SEAT.HOLD's TTL option is in seconds, like SET's EX.
const MAX_TTL_SECONDS: u64 = 86_400;
const MAX_QTY: u64 = u32::MAX as u64;

const UNITS: ArgDoc = ArgDoc::new("units", ArgKind::OneOf).sub(&[
    ArgDoc::new("seat", ArgKind::String).multiple(),
    ArgDoc::new("qty", ArgKind::Integer).token("QTY"),
]);
pub const ADD_ARGS: &[ArgDoc] = &[KEY, UNITS];
pub const SETTLE_ARGS: &[ArgDoc] = &[KEY, ArgDoc::new("user", ArgKind::String), UNITS];
pub const HOLD_ARGS: &[ArgDoc] = &[
    KEY,
    ArgDoc::new("user", ArgKind::String),
    UNITS,
    ArgDoc::new("seconds", ArgKind::Integer)
        .token("TTL")
        .optional(),
    ArgDoc::new("pass", ArgKind::String)
        .token("PASS")
        .optional(),
];
pub const STATUS_ARGS: &[ArgDoc] = &[KEY, ArgDoc::new("seat", ArgKind::String).multiple()];
pub const KEY_ONLY: &[ArgDoc] = &[KEY];

/// What SEAT.HOLD / RELEASE / CONFIRM / ADD were given after the user.
struct SeatArgs<'a> {
    units: Units,
    ttl: Option<u64>,
    pass: Option<&'a [u8]>,
}

/// Parses `seat [seat ...] | QTY n`, plus `TTL seconds` and `PASS pass` when `hold_options`.
fn parse_units<'a>(args: &[&'a [u8]], hold_options: bool) -> Result<SeatArgs<'a>, SeatqError> {
    let mut seats: Vec<Box<[u8]>> = Vec::new();
    let (mut qty, mut ttl, mut pass) = (None, None, None);
    let mut rest = args.iter();
    while let Some(&word) = rest.next() {
        let mut value = |name: &str| {
            rest.next()
                .copied()
                .ok_or_else(|| SeatqError::Syntax(format!("{name} needs a value")))
        };
        if word.eq_ignore_ascii_case(b"QTY") && qty.is_none() {
            qty = Some(number(value("QTY")?, "QTY", 1, MAX_QTY)?);
        } else if word.eq_ignore_ascii_case(b"TTL") && hold_options && ttl.is_none() {
            ttl = Some(number(value("TTL")?, "TTL", 1, MAX_TTL_SECONDS)?);
        } else if word.eq_ignore_ascii_case(b"PASS") && hold_options && pass.is_none() {
            pass = Some(value("PASS")?);
        } else if crate::seats::inventory::RESERVED_NAMES
            .iter()
            .any(|r| r.as_bytes().eq_ignore_ascii_case(word))
        {
            let name = String::from_utf8_lossy(word).to_ascii_uppercase();
            let given = match name.as_str() {
                "QTY" => qty.is_some(),
                "TTL" => ttl.is_some(),
                "PASS" => pass.is_some(),
                _ => false,
            };
            return Err(SeatqError::Syntax(if given {
                format!("{name} given twice")
            } else {
                format!("{name} is an option of SEAT.HOLD only and cannot name a seat")
            }));
        } else {
            seats.push(word.into());
        }
    }
    let units = match (qty, seats.is_empty()) {
        (Some(qty), true) => Units::Qty(qty),
        (None, false) => Units::Seats(seats),
        (Some(_), false) => return Err(SeatqError::Syntax("name seats or QTY n, not both".into())),
        (None, true) => {
            return Err(SeatqError::Syntax(
                "name at least one seat, or QTY n".into(),
            ))
        }
    };
    Ok(SeatArgs { units, ttl, pass })
}

fn unit_count(units: &Units) -> u64 {
    match units {
        Units::Seats(seats) => seats.len() as u64,
        Units::Qty(qty) => *qty,
    }
}

/// Answers the number of seats that were new, or with QTY the new general-admission total.
pub fn add(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    if args.bytes.len() < 3 {
        return Err(SeatqError::WrongArity);
    }
    let units = parse_units(&args.bytes[2..], false)?.units;
    let answer = write(ctx, args, |txn, _, _| {
        let event = txn.event();
        let answer = match &units {
            Units::Seats(names) => {
                let new: std::collections::HashSet<&[u8]> = names
                    .iter()
                    .map(|n| &**n)
                    .filter(|n| event.inventory.seat_index(n).is_none())
                    .collect();
                new.len() as u64
            }
            Units::Qty(qty) => event.inventory.general.total + qty,
        };
        let effects = event.plan_add(units)?;
        txn.apply(effects)?;
        Ok(answer)
    })?;
    ctx.reply().int(answer as i64);
    Ok(())
}

pub fn hold(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    if args.bytes.len() < 4 {
        return Err(SeatqError::WrongArity);
    }
    let user = args.bytes[2];
    crate::queue::payload::TicketPayload::new(user, &[])?; // the same user ID rules as the line
    let SeatArgs { units, ttl, pass } = parse_units(&args.bytes[3..], true)?;
    let receipt = write(ctx, args, |txn, now, signer| {
        let event = txn.event();
        event.check_pass(now, user, pass, signer.event, signer.keys)?;
        let ttl_ms = ttl.map_or_else(|| event.config.get(Setting::HoldTtl), |s| s * 1000);
        let (effects, receipt) = event.plan_hold(now, user, units, ttl_ms)?;
        txn.apply(effects)?;
        Ok(receipt)
    })?;
    ctx.reply()
        .open_map()
        .int("hold", receipt.hold as i64)
        .int("expires_at_ms", receipt.expires_at as i64)
        .int("remaining", receipt.remaining as i64)
        .int("seats", receipt.seats as i64)
        .int("qty", receipt.qty as i64);
    Ok(())
}

/// Releases or sells; answers (units moved, units left available in their pool).
fn settle(ctx: &Ctx, args: &Args, to_sold: bool) -> Result<(u64, u64), SeatqError> {
    if args.bytes.len() < 4 {
        return Err(SeatqError::WrongArity);
    }
    let user = args.bytes[2];
    let units = parse_units(&args.bytes[3..], false)?.units;
    let count = unit_count(&units);
    let remaining = write(ctx, args, |txn, now, _| {
        let event = txn.event();
        let (mut effects, answer) = event.plan_settle(now, user, units, to_sold)?;
        // A purchase ends the buyer's admitted session when the event says so, freeing CAPACITY.
        if answer.is_ok() && to_sold && event.config.get(Setting::ConfirmEndsSession) == 1 {
            let after = effects.iter().rev().find_map(Effect::journal_id);
            effects.extend(event.plan_session_end_of(now, user, after, EndState::Completed));
        }
        txn.apply(effects)?;
        answer
    })?;
    Ok((count, remaining))
}

pub fn release(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    let (_, remaining) = settle(ctx, args, false)?;
    ctx.reply().int(remaining as i64);
    Ok(())
}

pub fn confirm(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    let (sold, remaining) = settle(ctx, args, true)?;
    ctx.reply()
        .open_map()
        .int("sold", sold as i64)
        .int("remaining", remaining as i64);
    Ok(())
}

/// At most this many seats per SEAT.STATUS (so a reply stays bounded).
const MAX_STATUS_SEATS: usize = 10_000;

pub fn status(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    if args.bytes.len() < 3 {
        return Err(SeatqError::WrongArity);
    }
    if args.bytes.len() - 2 > MAX_STATUS_SEATS {
        return Err(SeatqError::Invalid(format!(
            "SEAT.STATUS takes at most {MAX_STATUS_SEATS} seats"
        )));
    }
    let names: Vec<Box<[u8]>> = args.bytes[2..].iter().map(|n| (*n).into()).collect();
    let now = ctx.now_ms();
    let views = read(
        ctx,
        args,
        || Err(SeatqError::NoSuchSeat(names[0].to_vec())),
        |event| event.seat_views(now, &names),
    )?;
    let reply = ctx.reply();
    reply.array(views.len());
    for view in views {
        reply
            .open_map()
            .bulk("seat", &view.seat)
            .bulk("state", view.state.as_bytes())
            .opt_bulk("holder", view.holder.as_deref())
            .int("expires_at_ms", view.expires_at as i64);
    }
    Ok(())
}

pub fn info(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    if args.bytes.len() != 2 {
        return Err(SeatqError::WrongArity);
    }
    let now = ctx.now_ms();
    read(
        ctx,
        args,
        || Err(SeatqError::NoSuchEvent),
        |event| {
            let inv = &event.inventory;
            let (named, general) = inv.counts_at(now);
            let lapsed = inv.lapsed_holds(now);
            let all = Counts {
                total: named.total + general.total,
                available: named.available + general.available,
                held: named.held + general.held,
                sold: named.sold + general.sold,
            };
            let reply = ctx.reply();
            let mut map = reply.open_map();
            for (prefix, counts) in [("", &all), ("seats_", &named), ("ga_", &general)] {
                map.int(format!("{prefix}total"), counts.total as i64)
                    .int(format!("{prefix}available"), counts.available as i64)
                    .int(format!("{prefix}held"), counts.held as i64)
                    .int(format!("{prefix}sold"), counts.sold as i64);
            }
            map.int("holds", (inv.holds.len() - lapsed) as i64)
                .int(
                    "holds_expired_total",
                    (inv.holds_expired_total + lapsed as u64) as i64,
                )
                .int("buyers", inv.buyers.len() as i64)
                .int("user_limit", event.config.get(Setting::UserLimit) as i64)
                .int("hold_ttl", event.config.get(Setting::HoldTtl) as i64);
            Ok(())
        },
    )
}
