//! SEATQ.APPLY: the replication and AOF form of every change (see `replication`). Refused
//! unless it comes from the primary or the AOF being loaded: a client could otherwise admit
//! anyone, sell a seat twice or write state that no longer loads.

use super::{ArgDoc, ArgKind, Args, KEY};
use crate::error::SeatqError;
use crate::ffi::Ctx;
use crate::persistence::{self, ENCODING_VERSION};
use crate::replication::{self, SNAPSHOT};
use crate::transaction;

pub const APPLY_ARGS: &[ArgDoc] = &[
    KEY,
    ArgDoc::new("effect", ArgKind::String),
    ArgDoc::new("argument", ArgKind::String)
        .optional()
        .multiple(),
];

/// The first release's effects do not replay here. An AOF that holds them would otherwise load
/// without the changes they carry and the server would start without them: it stops instead.
fn first_release_effect(ctx: &Ctx, name: &[u8]) -> SeatqError {
    let what = if ctx.loading() {
        "start the first release on these files, run BGREWRITEAOF and let it finish, then start this release"
    } else {
        "a replica running this release cannot follow a primary running the first release: upgrade the primary"
    };
    let message = format!(
        "SEATQ.APPLY {} is one of the first release's effects, which this release cannot replay: {what} (docs/upgrade.md)",
        String::from_utf8_lossy(name)
    );
    ctx.log_warning(&format!("seatq: {message}"));
    if ctx.loading() {
        ctx.log_warning(
            "seatq: the AOF holds the first release's effects: stopping, so that the sale they hold is not lost",
        );
        std::process::exit(1);
    }
    SeatqError::Invalid(message)
}

pub fn apply(ctx: &Ctx, args: &Args) -> Result<(), SeatqError> {
    if !ctx.sent_by_primary_or_aof() {
        return Err(SeatqError::Invalid(
            "SEATQ.APPLY is internal: only the replication link and AOF loading may send it".into(),
        ));
    }
    if args.bytes.len() < 3 {
        return Err(SeatqError::WrongArity);
    }
    let rest = &args.bytes[2..];
    if rest[0].eq_ignore_ascii_case(SNAPSHOT) {
        // `SNAPSHOT <blob>` is what the first release wrote (version 1).
        let (version, blob) = match rest[1..] {
            [blob] => (1, blob),
            [version, blob] => (
                crate::entry_id::parse_u64(version)
                    .and_then(|v| i32::try_from(v).ok())
                    .filter(|v| (1..=ENCODING_VERSION).contains(v))
                    .ok_or_else(|| SeatqError::Invalid("bad snapshot version".into()))?,
                blob,
            ),
            _ => return Err(SeatqError::WrongArity),
        };
        let event = persistence::from_bytes(blob, version)
            .map_err(|e| SeatqError::Invalid(format!("bad snapshot: {e}")))?;
        transaction::restore_snapshot(ctx, args.key(), event)?;
    } else if persistence::is_first_release_effect(rest[0]) {
        return Err(first_release_effect(ctx, rest[0]));
    } else {
        let effects = replication::decode(rest)?;
        transaction::replay(ctx, args.key(), &effects)?;
    }
    ctx.reply().ok();
    Ok(())
}
