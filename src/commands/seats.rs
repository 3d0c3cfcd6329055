//! SEAT.* handlers.

use super::args::number;
use super::{ArgDoc, ArgKind, Args, KEY};
use crate::config::Setting;
use crate::error::SeatqError;
use crate::event::{Effect, Event, SessionEnd};
use crate::ffi::Ctx;
use crate::seats::inventory::{Counts, Settlement};
use crate::seats::Units;
use crate::store;

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
            return Err(SeatqError::Syntax(format!(
                "{} given twice or not allowed here",
                String::from_utf8_lossy(word)
            )));
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

/// A seat write: first returns lapsed holds to stock (lazy expiry, its own effects), then
/// plans the command on the updated event and commits it.
fn seat_write<T>(
    ctx: &Ctx,
    args: &Args,
    plan: impl FnOnce(&Event, u64) -> Result<(Vec<Effect>, T), SeatqError>,
) -> Result<T, SeatqError> {
    let now = ctx.now_ms();
    store::plan_commit(ctx, args.key(), |event| {
        Ok((event.plan_hold_expiry(now, None, usize::MAX), ()))
    })?;
    store::plan_commit(ctx, args.key(), |event| plan(event, now))
}

/// Answers the number of seats that were new, or with QTY the new general-admission total.
pub fn add(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    if args.bytes.len() < 3 {
        return Err(SeatqError::WrongArity);
    }
    let units = parse_units(&args.bytes[2..], false)?.units;
    let answer = seat_write(ctx, args, |event, _| {
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
        Ok((event.plan_add(units)?, answer))
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
    let receipt = seat_write(ctx, args, |event, now| {
        event.check_pass(now, user, pass)?;
        let ttl_ms = ttl.map_or_else(|| event.config.get(Setting::HoldTtl), |s| s * 1000);
        event.plan_hold(now, user, units, ttl_ms)
    })?;
    let reply = ctx.reply();
    reply.map(5);
    reply.field_int("hold", receipt.hold as i64);
    reply.field_int("expires_at_ms", receipt.expires_at as i64);
    reply.field_int("remaining", receipt.remaining as i64);
    reply.field_int("seats", receipt.seats as i64);
    reply.field_int("qty", receipt.qty as i64);
    Ok(())
}

/// Releases or sells; answers (units moved, units left available in their pool).
fn settle(ctx: &Ctx, args: &Args, how: Settlement) -> Result<(u64, u64), SeatqError> {
    if args.bytes.len() < 4 {
        return Err(SeatqError::WrongArity);
    }
    let user = args.bytes[2];
    let units = parse_units(&args.bytes[3..], false)?.units;
    let count = unit_count(&units);
    let remaining = seat_write(ctx, args, |event, now| {
        let (mut effects, remaining) = event.plan_settle(now, user, units, how)?;
        // A purchase ends the buyer's admitted session when the event says so, freeing CAPACITY.
        if how == Settlement::Sale && event.config.get(Setting::ConfirmEndsSession) == 1 {
            let after = effects.last().and_then(Effect::journal_id);
            effects.extend(event.plan_session_end_of(now, user, after, SessionEnd::Confirm));
        }
        Ok((effects, remaining))
    })?;
    Ok((count, remaining))
}

pub fn release(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    let (_, remaining) = settle(ctx, args, Settlement::Release)?;
    ctx.reply().int(remaining as i64);
    Ok(())
}

pub fn confirm(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    let (sold, remaining) = settle(ctx, args, Settlement::Sale)?;
    let reply = ctx.reply();
    reply.map(2);
    reply.field_int("sold", sold as i64);
    reply.field_int("remaining", remaining as i64);
    Ok(())
}

pub fn status(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    if args.bytes.len() < 3 {
        return Err(SeatqError::WrongArity);
    }
    let names: Vec<Box<[u8]>> = args.bytes[2..].iter().map(|n| (*n).into()).collect();
    let now = ctx.now_ms();
    let (handle, _) = store::read(ctx, args.key())?;
    let fallback = Event::default();
    let views = handle
        .event()?
        .unwrap_or(&fallback)
        .seat_views(now, &names)?;
    let reply = ctx.reply();
    reply.array(views.len());
    for view in views {
        reply.map(4);
        reply.field_bulk("seat", &view.seat);
        reply.field_bulk("state", view.state.as_bytes());
        reply.key("holder");
        match &view.holder {
            Some(user) => reply.bulk(user),
            None => reply.null(),
        }
        reply.field_int("expires_at_ms", view.expires_at as i64);
    }
    Ok(())
}

pub fn info(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    if args.bytes.len() != 2 {
        return Err(SeatqError::WrongArity);
    }
    let now = ctx.now_ms();
    let (handle, exists) = store::read(ctx, args.key())?;
    if !exists {
        return Err(SeatqError::NoSuchEvent);
    }
    let event = handle.event()?.expect("exists");
    let inv = &event.inventory;
    let (named, general) = inv.counts_at(now);
    let live_holds = inv.holds.len() - inv.due_holds(now).count();
    let reply = ctx.reply();
    reply.map(17);
    let all = Counts {
        total: named.total + general.total,
        available: named.available + general.available,
        held: named.held + general.held,
        sold: named.sold + general.sold,
    };
    for (prefix, counts) in [("", &all), ("seats_", &named), ("ga_", &general)] {
        reply.field_int(&format!("{prefix}total"), counts.total as i64);
        reply.field_int(&format!("{prefix}available"), counts.available as i64);
        reply.field_int(&format!("{prefix}held"), counts.held as i64);
        reply.field_int(&format!("{prefix}sold"), counts.sold as i64);
    }
    reply.field_int("holds", live_holds as i64);
    reply.field_int(
        "holds_expired_total",
        (inv.holds_expired_total + (inv.holds.len() - live_holds) as u64) as i64,
    );
    reply.field_int("buyers", inv.buyers.len() as i64);
    reply.field_int(
        "user_limit",
        event.config.get(crate::config::Setting::UserLimit) as i64,
    );
    reply.field_int(
        "hold_ttl",
        event.config.get(crate::config::Setting::HoldTtl) as i64,
    );
    Ok(())
}
