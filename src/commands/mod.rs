//! The command layer: argument parsing, replies and the command table. Handlers are thin: they
//! parse, ask the event for a plan, apply it through a `Transaction`, and reply.

mod apply;
mod args;
mod queue;
mod seats;

use std::ffi::c_int;

use crate::admission::Signer;
use crate::config::pass_keys;
use crate::datatype::EVENT_TYPE;
use crate::error::SeatqError;
use crate::event::Event;
use crate::ffi::command::{ArgDoc, ArgKind, Args, CommandSpec, KeyUse};
use crate::ffi::{bytes_of, Ctx, RawCtx, RawString};
use crate::transaction::Transaction;
use crate::upkeep::{self, Limits};

pub const KEY: ArgDoc = ArgDoc::new("key", ArgKind::Key);

/// The ACL category every seatq command is in (Redis 7.2+ and Valkey 8+). Besides it, reads are
/// in `read`, a sale's writes in `write`, and what only an operator should run (settings,
/// pause/close, the worker's DEQUEUE, adding stock, and the internal SEATQ.APPLY) in `admin`
/// and `dangerous`: `+@seatq -@admin` is an application's role. docs/security.md has the rules.
pub const ACL_CATEGORY: &str = "seatq";

/// Declares each command's C entry point and its spec in one place.
macro_rules! commands {
    ($( $entry:ident => $handler:path, $name:literal, $flags:literal, $acl:literal, $key_use:expr,
        $arity:literal, $summary:literal, $complexity:literal, $args:expr; )*) => {
        $(
            extern "C" fn $entry(ctx: RawCtx, argv: *mut RawString, argc: c_int) -> c_int {
                crate::ffi::command::dispatch(ctx, argv, argc, $handler, $name, crate::metrics::record_call)
            }
        )*
        pub const COMMANDS: &[CommandSpec] = &[$(
            CommandSpec { name: $name, entry: $entry, flags: $flags, acl: $acl, key_use: $key_use,
                arity: $arity, summary: $summary, complexity: $complexity, args: $args },
        )*];
    };
}

use KeyUse::{Delete, Insert, Read, Update};

commands! {
    enqueue_entry => queue::enqueue, "queue.enqueue", "write deny-oom fast", "write fast", Insert, -3,
        "Joins the waiting line (one live ticket per user); returns the ticket and its position.",
        "O(log N)", queue::ENQUEUE_ARGS;
    status_entry => queue::status, "queue.status", "readonly fast may-replicate", "read fast", Update, -3,
        "Returns a ticket's state, exact position, ETA and (once admitted) its pass; keeps it alive.",
        "O(log N) where N is the number of waiting tickets", queue::TARGET_ARGS;
    admit_entry => queue::admit, "queue.admit", "write deny-oom fast", "write fast", Update, -3,
        "Claims the session of a ticket the server admitted and returns its pass; NOT_READY while it waits.",
        "O(log N)", queue::TARGET_ARGS;
    leave_entry => queue::leave, "queue.leave", "write fast", "write fast", Delete, -3,
        "Leaves the waiting line, or ends an admitted session.", "O(log N)", queue::TARGET_ARGS;
    renew_entry => queue::renew, "queue.renew", "write deny-oom fast", "write fast", Update, -3,
        "Extends an admitted session's pass by PASS-TTL, up to SESSION-MAX; returns the new pass.",
        "O(log N)", queue::TARGET_ARGS;
    revoke_entry => queue::revoke, "queue.revoke", "write fast", "write fast", Update, -3,
        "Ends an admitted session (its pass stops being accepted).", "O(log N)", queue::TARGET_ARGS;
    verify_entry => queue::verify, "queue.verify", "readonly fast", "read fast", Read, 3,
        "Tells whether a pass is valid, expired, revoked or invalid for this event.",
        "O(log N)", queue::VERIFY_ARGS;
    pause_entry => queue::pause, "queue.pause", "write", "write admin dangerous", Update, 2,
        "Pauses admission: joins go on, nobody is admitted.", "O(1)", queue::KEY_ONLY;
    resume_entry => queue::resume, "queue.resume", "write", "write admin dangerous", Update, 2,
        "Resumes admission after QUEUE.PAUSE.", "O(1)", queue::KEY_ONLY;
    close_entry => queue::close, "queue.close", "write", "write admin dangerous", Update, 2,
        "Closes the line to new joins (those waiting keep their places).", "O(1)", queue::KEY_ONLY;
    reopen_entry => queue::reopen, "queue.reopen", "write", "write admin dangerous", Update, 2,
        "Opens a closed line to joins again.", "O(1)", queue::KEY_ONLY;
    dequeue_entry => queue::dequeue, "queue.dequeue", "write", "write admin dangerous", Delete, -2,
        "Takes up to COUNT tickets from the head of the line (a worker's flow, outside RATE and CAPACITY).",
        "O(M log N) where M is the number of tickets taken", queue::DEQUEUE_ARGS;
    len_entry => queue::len, "queue.len", "readonly fast", "read fast", Read, 2,
        "Returns the number of waiting tickets.", "O(1)", queue::KEY_ONLY;
    range_entry => queue::range, "queue.range", "readonly", "read", Read, 4,
        "Lists waiting tickets in line order from a 0-based offset, up to a byte bound.",
        "O(M log N) where M is the count", queue::RANGE_ARGS;
    info_entry => queue::info, "queue.info", "readonly fast", "read fast", Read, 2,
        "Returns the event's phase, counters, sessions and settings.",
        "O(1), and O(N/1024) for memory_bytes where N is the number of tickets and records stored",
        queue::KEY_ONLY;
    config_entry => queue::config, "queue.config", "write deny-oom", "write admin dangerous", Update, -3,
        "Gets or sets an event's settings (QUEUE.CONFIG key GET lists them all).",
        "O(1)", queue::CONFIG_ARGS;
    seat_add_entry => seats::add, "seat.add", "write deny-oom", "write admin dangerous", Insert, -3,
        "Adds named seats, or general-admission stock with QTY n.",
        "O(N) where N is the number of seats named", seats::ADD_ARGS;
    seat_hold_entry => seats::hold, "seat.hold", "write deny-oom fast", "write fast", Update, -4,
        "Holds seats (all or nothing) or QTY n general-admission units for a user until TTL seconds pass.",
        "O(N) where N is the number of seats named", seats::HOLD_ARGS;
    seat_release_entry => seats::release, "seat.release", "write fast", "write fast", Update, -4,
        "Returns seats or QTY n units held by the user to stock; answers the units available.",
        "O(N) where N is the number of seats named", seats::SETTLE_ARGS;
    seat_confirm_entry => seats::confirm, "seat.confirm", "write fast", "write fast", Update, -4,
        "Turns seats or QTY n units held by the user into sold.",
        "O(N) where N is the number of seats named", seats::SETTLE_ARGS;
    seat_status_entry => seats::status, "seat.status", "readonly fast", "read fast", Read, -3,
        "Returns each seat's state, holder and hold expiry.",
        "O(N) where N is the number of seats named", seats::STATUS_ARGS;
    seat_info_entry => seats::info, "seat.info", "readonly fast", "read fast", Read, 2,
        "Returns total, available, held and sold counts (named seats, general admission, both).",
        "O(log N)", seats::KEY_ONLY;
    apply_entry => apply::apply, "seatq.apply", "write deny-oom", "write admin dangerous", Update, -3,
        "Internal: applies replicated effects (accepted only from the primary and the AOF).",
        "O(M log N) for M effects, O(N) for SNAPSHOT", apply::APPLY_ARGS;
}

/// The bytes of the event key.
fn key_of<'a>(args: &Args<'a>) -> &'a [u8] {
    bytes_of(args.key())
}

/// Runs `f` on the event if the key holds one; `missing` answers for an absent key.
pub fn read<T>(
    ctx: &Ctx,
    args: &Args,
    missing: impl FnOnce() -> Result<T, SeatqError>,
    f: impl FnOnce(&Event) -> Result<T, SeatqError>,
) -> Result<T, SeatqError> {
    let handle = ctx.open(args.key(), false);
    match handle.value(&EVENT_TYPE)? {
        Some(event) => f(event),
        None => missing(),
    }
}

/// A write: opens the event once, lets upkeep that is due take a small step first (so the
/// answer never depends on how late the timer is), runs `f`, and takes another step if `f`
/// made something due at once (a session ended: the next ticket is called in the same
/// command). Whatever is applied is replicated, journaled and notified when the transaction
/// ends.
pub fn write<T>(
    ctx: &Ctx,
    args: &Args,
    f: impl FnOnce(&mut Transaction, u64, &Signer) -> Result<T, SeatqError>,
) -> Result<T, SeatqError> {
    write_then(ctx, args, f, |_, answer| answer)
}

/// `write`, with `then` bringing the answer up to date when upkeep ran after `f`.
pub fn write_then<T>(
    ctx: &Ctx,
    args: &Args,
    f: impl FnOnce(&mut Transaction, u64, &Signer) -> Result<T, SeatqError>,
    then: impl FnOnce(&Event, T) -> T,
) -> Result<T, SeatqError> {
    let mut txn = Transaction::open(ctx, args.key())?;
    let now = ctx.now_ms();
    let keys = pass_keys();
    let signer = Signer {
        event: key_of(args),
        keys: &keys,
    };
    let decide = ctx.may_decide_writes();
    if decide && txn.exists() && txn.event().upkeep_due.is_some_and(|due| due <= now) {
        upkeep::step(&mut txn, now, Limits::COMMAND, &signer)?;
    }
    let answer = f(&mut txn, now, &signer);
    if decide && txn.changed() && txn.event().next_due(now).is_some_and(|due| due <= now) {
        upkeep::step(&mut txn, now, Limits::COMMAND, &signer)?;
        return answer.map(|a| then(txn.event(), a));
    }
    answer
}
