//! SHARD.* handlers: what the coordinator of a sharded event reads and grants, and how a
//! gateway ends a session on a line shard after a purchase on the inventory key.

use super::args::{number, target, unknown_option, Options};
use super::{read, write, write_then, ArgDoc, ArgKind, Args, KEY};
use crate::error::SeatqError;
use crate::event::Event;
use crate::ffi::Ctx;
use crate::queue::line::EndState;
use crate::sharding::{MAX_FRONT, MAX_LEASE_MS, MAX_SAMPLES};
use crate::upkeep::Apply;
use seatq_sharding::{Grant, RankTable};

pub const FRONT_ARGS: &[ArgDoc] = &[
    KEY,
    ArgDoc::new("count", ArgKind::Integer)
        .token("COUNT")
        .optional(),
    ArgDoc::new("samples", ArgKind::Integer)
        .token("SAMPLES")
        .optional(),
];
pub const GRANT_ARGS: &[ArgDoc] = &[
    KEY,
    ArgDoc::new("epoch", ArgKind::Integer),
    ArgDoc::new("lease-ms", ArgKind::Integer),
    ArgDoc::new("ceiling", ArgKind::Integer),
    ArgDoc::new("capacity", ArgKind::Integer)
        .token("CAPACITY")
        .optional(),
    ArgDoc::new("spread-ms", ArgKind::Integer)
        .token("SPREAD")
        .optional(),
    ArgDoc::new("ranks", ArgKind::Block)
        .token("RANKS")
        .optional()
        .sub(&[
            ArgDoc::new("at-ms", ArgKind::Integer),
            ArgDoc::new("rate-milli", ArgKind::Integer),
            ArgDoc::new("waiting", ArgKind::Integer),
            ArgDoc::new("point", ArgKind::Block).multiple().sub(&[
                ArgDoc::new("join-us", ArgKind::Integer),
                ArgDoc::new("ahead", ArgKind::Integer),
            ]),
        ]),
];
const TARGET: ArgDoc = ArgDoc::new("target", ArgKind::OneOf).sub(&[
    ArgDoc::new("ticket", ArgKind::String),
    ArgDoc::new("user", ArgKind::String).token("USER"),
]);
pub const COMPLETE_ARGS: &[ArgDoc] = &[KEY, TARGET];

const DEFAULT_COUNT: u64 = 128;

/// SHARD.FRONT key [COUNT n] [SAMPLES s]
pub fn front(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    let (mut count, mut samples) = (DEFAULT_COUNT, 0);
    let mut options = Options::new(&args.bytes[2..]);
    while let Some(name) = options.next_name() {
        match name.as_slice() {
            b"COUNT" => count = number(options.value("COUNT")?, "COUNT", 0, MAX_FRONT as u64)?,
            b"SAMPLES" => {
                samples = number(options.value("SAMPLES")?, "SAMPLES", 0, MAX_SAMPLES as u64)?
            }
            _ => return Err(unknown_option(&name)),
        }
    }
    let now = ctx.now_ms();
    // In µs, only to help the coordinator estimate this node's clock offset (decisions use
    // the server's time in ms).
    let now_us = ctx.now_us();
    let front = read(
        ctx,
        args,
        || Err(SeatqError::NoSuchEvent),
        |event| Ok(event.front(now, now_us, count as usize, samples as usize)),
    )?;
    let reply = ctx.reply();
    let scalars: [(&str, i64); 17] = [
        ("now_ms", front.now_ms as i64),
        ("now_us", front.now_us as i64),
        ("epoch", front.epoch as i64),
        ("lease_until_ms", front.lease_until as i64),
        ("ceiling", front.ceiling as i64),
        (
            "fallback_capacity",
            front.fallback_capacity.map_or(-1, |c| c as i64),
        ),
        ("admitted_total", front.admitted as i64),
        ("sessions", front.sessions as i64),
        ("waiting", front.waiting as i64),
        ("prequeue", front.prequeue as i64),
        ("calling", i64::from(front.calling)),
        ("rate", front.rate as i64),
        ("burst", front.burst as i64),
        ("capacity", front.capacity as i64),
        ("shards", front.shards as i64),
        ("shard_index", front.shard_index as i64),
        ("more", i64::from(front.more)),
    ];
    reply.map(scalars.len() + 2);
    for (name, value) in scalars {
        reply.bulk(name.as_bytes());
        reply.int(value);
    }
    reply.bulk(b"joins");
    reply.array(front.joins.len());
    for &us in &front.joins {
        reply.int(us as i64);
    }
    reply.bulk(b"samples");
    reply.array(front.samples.len() * 2);
    for &(position, us) in &front.samples {
        reply.int(position as i64);
        reply.int(us as i64);
    }
    Ok(())
}

fn parse_ranks(words: &[&[u8]]) -> Result<RankTable, SeatqError> {
    let n = |w: &[u8], name: &str| number(w, name, 0, i64::MAX as u64);
    let [at, rate, waiting, points @ ..] = words else {
        return Err(SeatqError::Syntax(
            "RANKS takes at-ms rate-milli waiting and join-us ahead pairs".into(),
        ));
    };
    if points.len() % 2 != 0 || points.len() / 2 > seatq_sharding::ranks::MAX_POINTS + 1 {
        return Err(SeatqError::Syntax(format!(
            "RANKS takes at most {} join-us ahead pairs",
            seatq_sharding::ranks::MAX_POINTS + 1
        )));
    }
    let points: Vec<(u64, u64)> = points
        .chunks(2)
        .map(|p| Ok((n(p[0], "join-us")?, n(p[1], "ahead")?)))
        .collect::<Result<_, SeatqError>>()?;
    if points
        .windows(2)
        .any(|w| w[0].0 >= w[1].0 || w[0].1 > w[1].1)
    {
        return Err(SeatqError::Invalid(
            "RANKS points must increase in join-us and not decrease in ahead".into(),
        ));
    }
    Ok(RankTable {
        at_ms: n(at, "at-ms")?,
        rate_milli: n(rate, "rate-milli")?,
        waiting: n(waiting, "waiting")?,
        points,
    })
}

/// SHARD.GRANT key epoch lease-ms ceiling [RANKS at-ms rate-milli waiting join-us ahead ...]
pub fn grant(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    if args.bytes.len() < 5 {
        return Err(SeatqError::WrongArity);
    }
    let epoch = number(args.bytes[2], "epoch", 1, i64::MAX as u64)?;
    let lease_ms = number(args.bytes[3], "lease-ms", 1, MAX_LEASE_MS)?;
    let ceiling = number(args.bytes[4], "ceiling", 0, i64::MAX as u64)?;
    let mut rest = &args.bytes[5..];
    let mut capacity = None;
    if let [word, value, more @ ..] = rest {
        if word.eq_ignore_ascii_case(b"CAPACITY") {
            capacity = Some(number(value, "CAPACITY", 0, i64::MAX as u64)?);
            rest = more;
        }
    }
    let mut spread_ms = 0;
    if let [word, value, more @ ..] = rest {
        if word.eq_ignore_ascii_case(b"SPREAD") {
            spread_ms = number(value, "SPREAD", 0, MAX_LEASE_MS)?;
            rest = more;
        }
    }
    let ranks = match rest {
        [] => None,
        [word, points @ ..] if word.eq_ignore_ascii_case(b"RANKS") => Some(parse_ranks(points)?),
        [word, ..] => return Err(unknown_option(&word.to_ascii_uppercase())),
    };
    let now = ctx.now_ms();
    let state = write_then(
        ctx,
        args,
        |txn, now, _| {
            // A grant never creates an event.
            if !txn.exists() {
                return Err(SeatqError::NoSuchEvent);
            }
            let effects = txn.event().plan_grant(
                now,
                Grant {
                    epoch,
                    lease_ms,
                    ceiling,
                    capacity,
                    spread_ms,
                    ranks,
                },
            )?;
            txn.apply(effects)?;
            Ok(grant_state(txn.event(), now))
        },
        // The calls the grant made possible ran in the same command: answer the state after.
        |event, _| grant_state(event, now),
    )?;
    ctx.reply()
        .open_map()
        .int("now_ms", state[0] as i64)
        .int("lease_until_ms", state[1] as i64)
        .int("admitted_total", state[2] as i64)
        .int("sessions", state[3] as i64);
    Ok(())
}

fn grant_state(event: &Event, now: u64) -> [u64; 4] {
    [
        now,
        event.shard.core.lease.until,
        event.totals.admitted,
        event.sessions.len() as u64,
    ]
}

/// SHARD.COMPLETE key (ticket | USER user): ends the live session as `completed`.
pub fn complete(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    let target = target(args)?;
    let ended = write(ctx, args, |txn, now, _| {
        let event = txn.event();
        let serial = event.resolve(target)?;
        let Some(user) = event.sessions.get(serial).map(|s| s.user.clone()) else {
            return Ok(false);
        };
        let effect = event.plan_session_end_of(now, &user, None, EndState::Completed);
        let ended = effect.is_some();
        txn.apply(effect.into_iter().collect())?;
        Ok(ended)
    })?;
    ctx.reply().int(i64::from(ended));
    Ok(())
}
