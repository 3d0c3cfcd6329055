//! QUEUE.* handlers.

use super::args::{arity, number, target, unknown_option, Options};
use super::{key_of, read, write, write_then, ArgDoc, ArgKind, Args, KEY};
use crate::config::{pass_keys, Setting, SETTINGS};
use crate::error::SeatqError;
use crate::event::{Effect, Event};
use crate::ffi::{Ctx, MapReply, Reply};
use crate::journal::journal_key;
use crate::queue::idempotency::MAX_KEY_LEN;
use crate::queue::payload::TicketPayload;
use crate::queue::{Target, TicketDetail, TicketView};
use crate::transaction::Transaction;
use crate::upkeep::Apply;
use std::time::{Duration, Instant};

/// Upper bound of COUNT in RANGE and DEQUEUE.
pub const MAX_BATCH: u64 = 10_000;
/// About the most one RANGE or DEQUEUE reply carries, in bytes and in server time; past either
/// the reply stops early (fewer entries than asked: the client continues with another call).
/// Both leave room for writing the reply itself within the millisecond a command may take.
pub const MAX_REPLY_BYTES: usize = 256 << 10;
const MAX_REPLY_TIME: Duration = Duration::from_micros(250);
/// Tickets DEQUEUE plans and applies at a time between two looks at the clock.
const DEQUEUE_CHUNK: usize = 32;

/// The bound of one RANGE or DEQUEUE reply.
struct ReplyBound {
    started: Instant,
    bytes: usize,
}

impl ReplyBound {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            bytes: 0,
        }
    }

    /// Whether another entry fits, `bytes` being what this round has added so far.
    fn more(&self, bytes: usize) -> bool {
        self.bytes + bytes < MAX_REPLY_BYTES && self.started.elapsed() < MAX_REPLY_TIME
    }
}

pub const KEY_ONLY: &[ArgDoc] = &[KEY];
const TARGET: ArgDoc = ArgDoc::new("target", ArgKind::OneOf).sub(&[
    ArgDoc::new("ticket", ArgKind::String),
    ArgDoc::new("user", ArgKind::String).token("USER"),
]);
pub const TARGET_ARGS: &[ArgDoc] = &[KEY, TARGET];
pub const VERIFY_ARGS: &[ArgDoc] = &[KEY, ArgDoc::new("pass", ArgKind::String)];
pub const ENQUEUE_ARGS: &[ArgDoc] = &[
    KEY,
    ArgDoc::new("user", ArgKind::String),
    ArgDoc::new("idempotency-key", ArgKind::String)
        .token("IDEMPOTENCY")
        .optional(),
    ArgDoc::new("data", ArgKind::Block)
        .token("DATA")
        .optional()
        .multiple()
        .sub(&[
            ArgDoc::new("field", ArgKind::String),
            ArgDoc::new("value", ArgKind::String),
        ]),
];
pub const DEQUEUE_ARGS: &[ArgDoc] = &[
    KEY,
    ArgDoc::new("count", ArgKind::Integer)
        .token("COUNT")
        .optional(),
];
pub const RANGE_ARGS: &[ArgDoc] = &[
    KEY,
    ArgDoc::new("start", ArgKind::Integer),
    ArgDoc::new("count", ArgKind::Integer),
];
pub const CONFIG_ARGS: &[ArgDoc] = &[
    KEY,
    ArgDoc::new("action", ArgKind::OneOf).sub(&[
        ArgDoc::new("get", ArgKind::Block).sub(&[
            ArgDoc::new("get", ArgKind::Token).token("GET"),
            ArgDoc::new("field", ArgKind::String).optional().multiple(),
        ]),
        ArgDoc::new("set", ArgKind::Block).sub(&[
            ArgDoc::new("set", ArgKind::Token).token("SET"),
            ArgDoc::new("field-value", ArgKind::Block).multiple().sub(&[
                ArgDoc::new("field", ArgKind::String),
                ArgDoc::new("value", ArgKind::String),
            ]),
        ]),
    ]),
];

/// What STATUS says: what a poller needs on every call (position 0 while waiting means the
/// pre-queue), and the session once admitted.
fn view_fields<'a>(map: &mut MapReply<'_, 'a>, view: &'a TicketView) {
    map.bulk("state", view.state.as_bytes())
        .int("position", view.position as i64)
        .int("ahead", view.position.saturating_sub(1) as i64)
        .int("eta_ms", view.eta_ms.map_or(-1, |e| e as i64))
        .int("retry_after_ms", view.retry_after_ms as i64);
    if let Some(session) = &view.session {
        map.bulk("pass", session.pass.as_bytes())
            .int("pass_expires_at_ms", session.expires_at as i64)
            .int("claim_by_ms", session.claim_deadline as i64)
            .int("claimed", i64::from(session.claimed));
    }
}

/// A ticket as RANGE lists it (`in_line`: with its position and heartbeat) or as DEQUEUE hands
/// it over (taken out of the line: a waiting client's fields would be stale).
fn reply_detail(reply: &Reply, detail: &TicketDetail, in_line: bool) {
    let mut map = reply.open_map();
    let view = &detail.view;
    map.bulk("ticket", detail.ticket.as_bytes())
        .int("serial", i64::from(view.serial))
        .bulk("state", view.state.as_bytes());
    if in_line {
        map.int("position", view.position as i64)
            .int("heartbeat_expires_at_ms", view.heartbeat_deadline as i64);
    }
    map.bulk("user", &detail.user);
    let data = map.nested("data");
    data.map(detail.data.len());
    for (field, value) in &detail.data {
        data.bulk(field);
        data.bulk(value);
    }
}

pub fn enqueue(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    arity(args, 3, false)?;
    let mut idempotency = None;
    let mut data: Vec<(&[u8], &[u8])> = Vec::new();
    let mut options = Options::new(&args.bytes[3..]);
    while let Some(name) = options.next_name() {
        match name.as_slice() {
            b"IDEMPOTENCY" if idempotency.is_some() => {
                return Err(SeatqError::Syntax("IDEMPOTENCY given twice".into()));
            }
            b"IDEMPOTENCY" => {
                let key = options.value("IDEMPOTENCY")?;
                if key.is_empty() || key.len() > MAX_KEY_LEN {
                    return Err(SeatqError::Invalid(format!(
                        "idempotency key must be 1 to {MAX_KEY_LEN} bytes"
                    )));
                }
                idempotency = Some(key);
            }
            b"DATA" => {
                let pairs = options.rest();
                if pairs.is_empty() || pairs.len() % 2 != 0 {
                    return Err(SeatqError::Syntax(
                        "DATA takes field value pairs and must come last".into(),
                    ));
                }
                data = pairs.chunks(2).map(|p| (p[0], p[1])).collect();
                let mut fields: Vec<&[u8]> = data.iter().map(|(f, _)| *f).collect();
                fields.sort_unstable();
                if fields.windows(2).any(|w| w[0] == w[1]) {
                    return Err(SeatqError::Invalid("DATA names a field twice".into()));
                }
            }
            _ => return Err(unknown_option(&name)),
        }
    }
    let payload = TicketPayload::new(args.bytes[2], &data)?;
    let joined = write_then(
        ctx,
        args,
        |txn, now, _| {
            let (effects, joined) = txn.event().plan_enqueue(now, payload, idempotency)?;
            txn.apply(effects)?;
            Ok(joined)
        },
        Event::refresh_joined,
    )?;
    ctx.reply()
        .open_map()
        .bulk("ticket", joined.ticket.as_bytes())
        .int("position", joined.position as i64)
        .bulk("state", joined.state.as_bytes())
        .int("existing", i64::from(joined.existing));
    Ok(())
}

pub fn status(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    let target = target(args)?;
    let now = ctx.now_ms();
    let keys = pass_keys();
    let signer = crate::admission::Signer {
        event: key_of(args),
        keys: &keys,
    };
    let (effects, mut view, ticket, global) = read(
        ctx,
        args,
        // A missing event reads as an empty one: no such ticket.
        || Err(SeatqError::NoSuchTicket(crate::queue::target_text(target))),
        |event| {
            let (effects, mut view) = event.plan_status(now, target, &signer)?;
            // Addressed by user, the caller may not know the ticket.
            let ticket = matches!(target, Target::User(_)).then(|| event.ticket(view.serial));
            // A line shard of a sharded event: the global position estimate (and its ETA).
            let global = event.global_position(&mut view, now);
            Ok((effects, view, ticket, global))
        },
    )?;
    // Renewals and lazy expiry are decided only by a primary; a replica just answers.
    if !effects.is_empty() && ctx.may_decide_writes() {
        // The reply shows a renewed pass; a renewed heartbeat is not part of it.
        for effect in &effects {
            if let Effect::Renewed {
                pass, expires_at, ..
            } = effect
            {
                if let Some(session) = view.session.as_mut() {
                    session.pass = pass.to_string();
                    session.expires_at = *expires_at;
                }
            }
        }
        Transaction::open(ctx, args.key())?.apply(effects)?;
    }
    let reply = ctx.reply();
    let mut map = reply.open_map();
    if let Some(ticket) = &ticket {
        map.bulk("ticket", ticket.as_bytes());
    }
    view_fields(&mut map, &view);
    if let Some(global) = global {
        map.int("global_position", global as i64);
    }
    Ok(())
}

pub fn admit(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    let target = target(args)?;
    let admission = write(ctx, args, |txn, now, signer| {
        let (effects, answer) = txn.event().plan_admit(now, target, signer)?;
        txn.apply(effects)?;
        answer
    })?;
    ctx.reply()
        .open_map()
        .bulk("pass", admission.pass.as_bytes())
        .int("expires_at_ms", admission.expires_at as i64)
        .int("existing", i64::from(admission.existing));
    Ok(())
}

pub fn renew(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    let target = target(args)?;
    let renewed = write(ctx, args, |txn, now, signer| {
        let (effects, renewed) = txn.event().plan_renew(now, target, signer)?;
        txn.apply(effects)?;
        Ok(renewed)
    })?;
    ctx.reply()
        .open_map()
        .bulk("pass", renewed.pass.as_bytes())
        .int("expires_at_ms", renewed.expires_at as i64);
    Ok(())
}

/// A write whose plan answers whether something changed (LEAVE, REVOKE).
fn yes_no_write(
    ctx: &Ctx,
    args: &Args,
    plan: impl FnOnce(&Event, u64) -> Result<(Vec<Effect>, bool), SeatqError>,
) -> Result<(), SeatqError> {
    let changed = write(ctx, args, |txn, now, _| {
        let (effects, changed) = plan(txn.event(), now)?;
        txn.apply(effects)?;
        Ok(changed)
    })?;
    ctx.reply().int(i64::from(changed));
    Ok(())
}

pub fn leave(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    let target = target(args)?;
    yes_no_write(ctx, args, |event, now| event.plan_leave(now, target))
}

pub fn revoke(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    let target = target(args)?;
    yes_no_write(ctx, args, |event, now| event.plan_revoke(now, target))
}

pub fn verify(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    arity(args, 3, true)?;
    let now = ctx.now_ms();
    let keys = pass_keys();
    let check = read(
        ctx,
        args,
        // A deleted event's passes are simply invalid (what a payment service needs to know).
        || {
            Ok(crate::admission::PassCheck {
                state: crate::admission::PassState::Invalid,
                claims: None,
            })
        },
        |event| Ok(event.check_pass_state(now, args.bytes[2], key_of(args), &keys)),
    )?;
    let reply = ctx.reply();
    let mut map = reply.open_map();
    map.bulk("state", check.state.name().as_bytes());
    if let Some(claims) = &check.claims {
        let user = claims
            .sub
            .as_deref()
            .or(claims.sub_b64.as_deref())
            .unwrap_or("");
        map.bulk("user", user.as_bytes())
            .int("serial", i64::from(claims.tkt))
            .int("expires_at_ms", claims.exp.saturating_mul(1000) as i64);
    }
    Ok(())
}

/// PAUSE / RESUME / CLOSE / REOPEN: answers 1 if the phase changed, 0 if it already was so.
fn phase(ctx: &Ctx, args: &Args, plan: fn(&Event, u64) -> Vec<Effect>) -> Result<(), SeatqError> {
    arity(args, 2, true)?;
    yes_no_write(ctx, args, |event, now| {
        let effects = plan(event, now);
        let changed = !effects.is_empty();
        Ok((effects, changed))
    })
}

pub fn pause(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    phase(ctx, args, |event, now| {
        let at = event.next_id(now, None);
        (!event.phase.paused)
            .then_some(Effect::Paused { at })
            .into_iter()
            .collect()
    })
}

pub fn resume(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    phase(ctx, args, |event, now| {
        let at = event.next_id(now, None);
        event
            .phase
            .paused
            .then_some(Effect::Resumed { at })
            .into_iter()
            .collect()
    })
}

pub fn close(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    phase(ctx, args, |event, now| {
        let at = event.next_id(now, None);
        (!event.phase.closed)
            .then_some(Effect::Closed { at })
            .into_iter()
            .collect()
    })
}

pub fn reopen(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    phase(ctx, args, |event, now| {
        if !event.phase.closed {
            return Vec::new();
        }
        // A CLOSES-AT already past would close the line again at once: it goes.
        let mut effects = Vec::new();
        let closes_at = event.config.get(Setting::ClosesAt);
        if closes_at > 0 && closes_at <= now {
            effects.push(Effect::Configured(vec![(Setting::ClosesAt, 0)]));
        }
        effects.push(Effect::Reopened {
            at: event.next_id(now, None),
        });
        effects
    })
}

pub fn dequeue(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    arity(args, 2, false)?;
    let mut count = 1;
    let mut options = Options::new(&args.bytes[2..]);
    while let Some(name) = options.next_name() {
        match name.as_slice() {
            b"COUNT" => count = number(options.value("COUNT")?, "COUNT", 1, MAX_BATCH)?,
            _ => return Err(unknown_option(&name)),
        }
    }
    let taken = write(ctx, args, |txn, now, _| {
        let mut taken = Vec::new();
        if !txn.exists() {
            return Ok(taken);
        }
        if !txn.event().phase.opened {
            return Err(SeatqError::NotOpen);
        }
        // A chunk at a time, so the time bound covers applying (journal, replication) too.
        // The first chunk runs whatever the clock says (it looks at the head ticket at least):
        // an empty reply then means the line is empty or its head held only lapsed tickets.
        let mut bound = ReplyBound::new();
        loop {
            let chunk = (count as usize - taken.len()).min(DEQUEUE_CHUNK);
            let (effects, details) = txn.event().plan_dequeue(now, chunk, &mut |b| bound.more(b));
            if effects.is_empty() {
                break;
            }
            bound.bytes += details
                .iter()
                .map(crate::queue::detail_bytes)
                .sum::<usize>();
            txn.apply(effects)?;
            taken.extend(details);
            if taken.len() >= count as usize || !bound.more(0) {
                break;
            }
        }
        Ok(taken)
    })?;
    let reply = ctx.reply();
    reply.array(taken.len());
    for detail in &taken {
        reply_detail(&reply, detail, false);
    }
    Ok(())
}

pub fn len(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    arity(args, 2, true)?;
    let n = read(ctx, args, || Ok(0), |event| Ok(event.line.waiting()))?;
    ctx.reply().int(n as i64);
    Ok(())
}

/// RANGE answers `{entries, next}`: `next` is the offset to continue from when the reply
/// stopped at its bound before `count`, -1 otherwise.
pub fn range(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    arity(args, 4, true)?;
    let start = number(args.bytes[2], "start", 0, u32::MAX.into())? as usize;
    let count = number(args.bytes[3], "count", 0, MAX_BATCH)? as usize;
    let now = ctx.now_ms();
    let (details, waiting) = read(
        ctx,
        args,
        || Ok((Vec::new(), 0)),
        |event| {
            if !event.phase.opened {
                return Err(SeatqError::NotOpen);
            }
            let bound = ReplyBound::new();
            Ok((
                event.range(now, start, count, &mut |b| bound.more(b)),
                event.line.waiting(),
            ))
        },
    )?;
    let end = start.saturating_add(count).min(waiting);
    let next = start + details.len();
    let reply = ctx.reply();
    let mut map = reply.open_map();
    map.int("next", if next < end { next as i64 } else { -1 });
    let entries = map.nested("entries");
    entries.array(details.len());
    for detail in &details {
        reply_detail(entries, detail, true);
    }
    Ok(())
}

pub fn info(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    arity(args, 2, true)?;
    let now = ctx.now_ms();
    read(
        ctx,
        args,
        || Err(SeatqError::NoSuchEvent),
        |event| {
            let line = &event.line;
            // Nil until the event opens: the pre-queue's order is not revealed before.
            let serial_at = |k: Option<usize>| {
                k.filter(|_| event.phase.opened)
                    .and_then(|k| line.nth_waiting(k))
                    .map(i64::from)
            };
            let reply = ctx.reply();
            let mut map = reply.open_map();
            let (t, phase) = (&event.totals, event.phase);
            map.int("waiting", line.waiting() as i64)
                .int("prequeue", line.prequeue_waiting() as i64)
                .int("opened", i64::from(phase.opened))
                .int("paused", i64::from(phase.paused))
                .int("closed", i64::from(phase.closed))
                .int("sessions", event.sessions.len() as i64)
                .int("sessions_unclaimed", event.sessions.unclaimed() as i64)
                .int("joined_total", t.joined as i64)
                .int("admitted_total", t.admitted as i64)
                .int("claimed_total", t.claimed as i64)
                .int("left_total", t.left as i64)
                .int("expired_total", t.expired as i64)
                .int("dequeued_total", t.dequeued as i64)
                .int("sessions_ended_total", t.sessions_ended as i64)
                .int("idempotency_keys", event.idempotency.len() as i64)
                .opt_int("head_serial", serial_at(Some(0)))
                .opt_int("tail_serial", serial_at(line.waiting().checked_sub(1)))
                .int("next_serial", i64::from(line.next_serial()))
                .bulk("last_id", event.last_id.to_string().into_bytes())
                .int("call_rate_per_s", event.call_rate(now).round() as i64)
                .opt_bulk("journal_key", journal_key(key_of(args)).ok())
                .int("memory_bytes", event.heap_bytes() as i64);
            settings_fields(&mut map, event, listed(event));
            Ok(())
        },
    )
}

/// The settings QUEUE.INFO and QUEUE.CONFIG GET (without names) show: the sharded mode's only
/// on a line shard (SHARDS above 0), so an unsharded event's replies are as before.
fn listed(event: &Event) -> impl Iterator<Item = Setting> + '_ {
    let sharded = event.config.get(Setting::Shards) > 0;
    SETTINGS
        .iter()
        .map(|s| s.setting)
        .filter(move |s| sharded || !s.is_sharding())
}

/// Settings as lower-case map fields (`heartbeat`, `journal`, ...), values as integers.
fn settings_fields(map: &mut MapReply, event: &Event, settings: impl Iterator<Item = Setting>) {
    for setting in settings {
        map.int(
            setting.spec().field.to_ascii_lowercase(),
            event.config.get(setting) as i64,
        );
    }
}

pub fn config(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    arity(args, 3, false)?;
    let action = args.bytes[2].to_ascii_uppercase();
    let fields = &args.bytes[3..];
    match action.as_slice() {
        b"GET" => {
            // None: every setting the event shows (see `listed`).
            let named: Option<Vec<Setting>> = if fields.is_empty() {
                None
            } else {
                Some(
                    fields
                        .iter()
                        .map(|f| Setting::from_field(f).ok_or_else(|| unknown_setting(f)))
                        .collect::<Result<_, _>>()?,
                )
            };
            let show = &|event: &Event| -> Result<(), SeatqError> {
                let reply = ctx.reply();
                let mut map = reply.open_map();
                match &named {
                    Some(settings) => settings_fields(&mut map, event, settings.iter().copied()),
                    None => settings_fields(&mut map, event, listed(event)),
                }
                Ok(())
            };
            // An event not created yet shows the defaults it would get.
            read(
                ctx,
                args,
                || {
                    show(&Event::new(
                        crate::config::EventConfig::from_defaults(),
                        [0; 32],
                    ))
                },
                show,
            )
        }
        b"SET" => {
            if fields.is_empty() || fields.len() % 2 != 0 {
                return Err(SeatqError::WrongArity);
            }
            let values = fields
                .chunks(2)
                .map(|pair| {
                    let setting =
                        Setting::from_field(pair[0]).ok_or_else(|| unknown_setting(pair[0]))?;
                    Ok((setting, setting.parse(pair[1])?))
                })
                .collect::<Result<Vec<_>, SeatqError>>()?;
            write(ctx, args, |txn, now, signer| {
                let event = txn.event();
                let opens_at = values
                    .iter()
                    .rev()
                    .find(|(s, _)| *s == Setting::OpensAt)
                    .map(|&(_, v)| v);
                if opens_at.is_some_and(|t| t > 0) && event.phase.opened && event.line.waiting() > 0
                {
                    return Err(SeatqError::Invalid(
                        "OPENS-AT cannot move into the future while tickets wait in an open line"
                            .into(),
                    ));
                }
                txn.apply(vec![Effect::Configured(values)])?;
                // What the new settings make due at once (an OPENS-AT or CLOSES-AT already
                // past) happens in the same command.
                if txn.event().next_due(now).is_some_and(|due| due <= now) {
                    crate::upkeep::step(txn, now, crate::upkeep::Limits::COMMAND, signer)?;
                }
                Ok(())
            })?;
            ctx.reply().ok();
            Ok(())
        }
        _ => Err(SeatqError::Syntax("QUEUE.CONFIG takes GET or SET".into())),
    }
}

fn unknown_setting(name: &[u8]) -> SeatqError {
    let known: Vec<&str> = SETTINGS.iter().map(|s| s.field).collect();
    SeatqError::Invalid(format!(
        "unknown setting '{}' (known: {})",
        crate::error::printable(name),
        known.join(", ")
    ))
}
