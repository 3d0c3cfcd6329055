//! QUEUE.* handlers.

use super::args::{number, unknown_option, Options};
use super::{ArgDoc, ArgKind, Args, KEY};
use crate::admission::sessions::pass_to_hex;
use crate::config::{Setting, SETTINGS};
use crate::error::SeatqError;
use crate::event::{Effect, Event};
use crate::ffi::{Ctx, Reply};
use crate::journal::journal_key;
use crate::queue::idempotency::MAX_KEY_LEN;
use crate::queue::payload::TicketPayload;
use crate::queue::TicketView;
use crate::store;

/// Upper bound of COUNT in RANGE and DEQUEUE, so one call cannot stall the server.
pub const MAX_BATCH: u64 = 10_000;

pub const KEY_ONLY: &[ArgDoc] = &[KEY];
pub const TICKET_ARGS: &[ArgDoc] = &[KEY, ArgDoc::new("ticket", ArgKind::String)];
pub const ENQUEUE_ARGS: &[ArgDoc] = &[
    KEY,
    ArgDoc::new("user", ArgKind::String),
    ArgDoc::new("idempotency-key", ArgKind::String)
        .token("IDEMPOTENCY")
        .optional(),
    ArgDoc::new("data", ArgKind::Block)
        .token("DATA")
        .optional()
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

fn arity(args: &Args, min: usize, exact: bool) -> Result<(), SeatqError> {
    let n = args.bytes.len();
    if n < min || (exact && n != min) {
        return Err(SeatqError::WrongArity);
    }
    Ok(())
}

/// Runs `f` on the event if the key holds one; `missing` answers for an absent key.
fn with_event<T>(
    ctx: &Ctx,
    args: &Args,
    missing: impl FnOnce() -> Result<T, SeatqError>,
    f: impl FnOnce(&Event) -> Result<T, SeatqError>,
) -> Result<T, SeatqError> {
    let (handle, exists) = store::read(ctx, args.key())?;
    if !exists {
        return missing();
    }
    f(handle.event()?.expect("exists"))
}

fn reply_view(reply: &Reply, view: &TicketView) {
    reply.map(10);
    reply.field_bulk("ticket", view.ticket.to_string().as_bytes());
    reply.field_bulk("state", view.state.as_bytes());
    reply.field_int("position", view.position as i64);
    reply.field_int("ahead", view.position.saturating_sub(1) as i64);
    reply.field_int("eta_ms", view.eta_ms as i64);
    reply.field_int("heartbeat_expires_at_ms", view.heartbeat_deadline as i64);
    reply.key("user");
    match &view.user {
        Some(user) => reply.bulk(user),
        None => reply.null(),
    }
    reply.key("pass");
    match &view.pass {
        Some(pass) => reply.bulk(pass_to_hex(pass).as_bytes()),
        None => reply.null(),
    }
    reply.field_int("pass_expires_at_ms", view.pass_expires_at as i64);
    reply.key("data");
    reply.map(view.data.len());
    for (field, value) in &view.data {
        reply.bulk(field);
        reply.bulk(value);
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
            }
            _ => return Err(unknown_option(&name)),
        }
    }
    let payload = TicketPayload::new(args.bytes[2], &data)?;
    let now = ctx.now_ms();
    let joined = store::plan_commit(ctx, args.key(), |event| {
        event.plan_enqueue(now, payload, idempotency)
    })?;
    let reply = ctx.reply();
    reply.map(4);
    reply.field_bulk("ticket", joined.ticket.to_string().as_bytes());
    reply.field_int("position", joined.position as i64);
    reply.field_bulk("state", joined.state.as_bytes());
    reply.field_int("existing", i64::from(joined.existing));
    Ok(())
}

pub fn status(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    arity(args, 3, true)?;
    let now = ctx.now_ms();
    let ticket = args.bytes[2];
    let (effects, mut view) = with_event(
        ctx,
        args,
        || Err(SeatqError::NoSuchTicket(ticket.to_vec())),
        |event| event.plan_status(now, ticket),
    )?;
    // Renewals and lazy expiry are decided only by a primary; a replica just answers.
    if ctx.may_decide_writes() {
        if let Some(Effect::Touched {
            heartbeat_deadline, ..
        }) = effects.first()
        {
            view.heartbeat_deadline = *heartbeat_deadline;
        }
        store::commit(ctx, args.key(), effects)?;
    }
    reply_view(&ctx.reply(), &view);
    Ok(())
}

pub fn admit(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    arity(args, 3, true)?;
    let ticket = args.bytes[2];
    let now = ctx.now_ms();
    // If OPENS-AT has just passed, the pre-queue is shuffled first (once), so the first ADMIT
    // after opening never sees the unshuffled order.
    let seed = u64::from_le_bytes(ctx.random_pass()[..8].try_into().expect("8 bytes"));
    store::plan_commit(ctx, args.key(), |event| {
        Ok((event.plan_open(now, seed).into_iter().collect(), ()))
    })?;
    let admission = store::plan_commit(ctx, args.key(), |event| {
        event.plan_admit(now, ticket, ctx.random_pass())
    })?;
    let reply = ctx.reply();
    reply.map(3);
    reply.field_bulk("pass", pass_to_hex(&admission.pass).as_bytes());
    reply.field_int("expires_at_ms", admission.expires_at as i64);
    reply.field_int("existing", i64::from(admission.existing));
    Ok(())
}

pub fn leave(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    arity(args, 3, true)?;
    let ticket = args.bytes[2];
    let now = ctx.now_ms();
    let left = store::plan_commit(ctx, args.key(), |event| event.plan_leave(now, ticket))?;
    ctx.reply().int(i64::from(left));
    Ok(())
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
    let now = ctx.now_ms();
    let taken = store::plan_commit(ctx, args.key(), |event| {
        Ok(event.plan_dequeue(now, count as usize))
    })?;
    let reply = ctx.reply();
    reply.array(taken.len());
    for view in &taken {
        reply_view(&reply, view);
    }
    Ok(())
}

pub fn len(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    arity(args, 2, true)?;
    let n = with_event(ctx, args, || Ok(0), |event| Ok(event.line.waiting()))?;
    ctx.reply().int(n as i64);
    Ok(())
}

pub fn range(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    arity(args, 4, true)?;
    let start = number(args.bytes[2], "start", 0, u32::MAX.into())?;
    let count = number(args.bytes[3], "count", 0, MAX_BATCH)?;
    let now = ctx.now_ms();
    let views = with_event(
        ctx,
        args,
        || Ok(Vec::new()),
        |event| Ok(event.range(now, start as usize, count as usize)),
    )?;
    let reply = ctx.reply();
    reply.array(views.len());
    for view in &views {
        reply_view(&reply, view);
    }
    Ok(())
}

pub fn info(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    arity(args, 2, true)?;
    let key = args.bytes[1];
    with_event(
        ctx,
        args,
        || Err(SeatqError::NoSuchEvent),
        |event| {
            let reply = ctx.reply();
            let line = &event.line;
            let head = line.nth_waiting(0).map(|i| line.get(i).id.to_string());
            let tail = line
                .waiting()
                .checked_sub(1)
                .and_then(|k| line.nth_waiting(k))
                .map(|i| line.get(i).id.to_string());
            reply.map(11 + SETTINGS.len());
            reply.field_int("waiting", line.waiting() as i64);
            reply.field_int("joined_total", event.totals.joined as i64);
            reply.field_int("admitted_total", event.totals.admitted as i64);
            reply.field_int("left_total", event.totals.left as i64);
            reply.field_int("expired_total", event.totals.expired as i64);
            reply.field_int("idempotency_keys", event.idempotency.len() as i64);
            for (name, id) in [("head_ticket", head), ("tail_ticket", tail)] {
                reply.key(name);
                match id {
                    Some(id) => reply.bulk(id.as_bytes()),
                    None => reply.null(),
                }
            }
            reply.field_bulk("last_id", event.last_id.to_string().as_bytes());
            reply.key("journal_key");
            match journal_key(key) {
                Ok(name) => reply.bulk(&name),
                Err(_) => reply.null(),
            }
            reply.field_int("memory_bytes", event.heap_bytes() as i64);
            reply_settings_fields(&reply, event, SETTINGS.iter().map(|s| s.setting));
            Ok(())
        },
    )
}

/// Settings as lower-case map fields (`heartbeat`, `journal`, ...), values as integers.
fn reply_settings_fields(reply: &Reply, event: &Event, settings: impl Iterator<Item = Setting>) {
    for setting in settings {
        reply.field_int(
            &setting.spec().field.to_ascii_lowercase(),
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
            let settings: Vec<Setting> = if fields.is_empty() {
                SETTINGS.iter().map(|s| s.setting).collect()
            } else {
                fields
                    .iter()
                    .map(|f| Setting::from_field(f).ok_or_else(|| unknown_setting(f)))
                    .collect::<Result<_, _>>()?
            };
            let fallback = Event::default();
            let (handle, _) = store::read(ctx, args.key())?;
            let event = handle.event()?.unwrap_or(&fallback);
            let reply = ctx.reply();
            reply.map(settings.len());
            reply_settings_fields(&reply, event, settings.into_iter());
            Ok(())
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
            store::plan_commit(ctx, args.key(), |_| {
                Ok((vec![Effect::Configured(values)], ()))
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
