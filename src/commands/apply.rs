//! SEATQ.APPLY: the replication and AOF form of every change (see `replication`).

use super::{ArgDoc, ArgKind, Args, KEY};
use crate::error::SeatqError;
use crate::ffi::Ctx;
use crate::{persistence, replication, store};

pub const APPLY_ARGS: &[ArgDoc] = &[
    KEY,
    ArgDoc::new("effect", ArgKind::String),
    ArgDoc::new("argument", ArgKind::String)
        .optional()
        .multiple(),
];

pub fn apply(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    if args.bytes.len() < 3 {
        return Err(SeatqError::WrongArity);
    }
    let rest = &args.bytes[2..];
    if rest[0].eq_ignore_ascii_case(b"SNAPSHOT") {
        if rest.len() != 2 {
            return Err(SeatqError::WrongArity);
        }
        let event = persistence::from_bytes(rest[1])
            .map_err(|e| SeatqError::Invalid(format!("bad snapshot: {e}")))?;
        store::restore_snapshot(ctx, args.key(), event)?;
    } else {
        let effect = replication::decode(rest)?;
        store::apply_received(ctx, args.key(), effect)?;
    }
    ctx.reply().ok();
    Ok(())
}
