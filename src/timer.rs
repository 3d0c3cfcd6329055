//! The primary's upkeep timer. Each tick takes the events whose upkeep is due from the schedule
//! (nothing else is visited) and runs bounded upkeep steps on them within a time budget; when
//! work remains it comes back after a millisecond, otherwise when the next event is due (at most
//! `seatq.timer-interval-ms` later). It changes nothing on a replica, while loading, or while
//! clients are paused for writes: the work waits, and runs after with the primary's clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::admission::Signer;
use crate::config::pass_keys;
use crate::error::{printable, SeatqError};
use crate::ffi::{timer, Ctx, RawString};
use crate::transaction::Transaction;
use crate::upkeep::{self, Limits};
use crate::{metrics, schedule};

/// `seatq.timer-interval-ms`: the longest the timer sleeps (10..1000 ms, default 100).
pub static TICK_MS: AtomicI64 = AtomicI64::new(100);
/// Work per tick: a quarter of each millisecond while a backlog lasts, like Redis' own active
/// expiry, so clients keep most of the server.
const TICK_BUDGET: Duration = Duration::from_micros(250);
/// An event whose upkeep failed (its journal cannot be written) is retried this much later.
const RETRY_AFTER_MS: u64 = 5_000;
/// The same event's failure is logged at most this often.
const WARN_EVERY_MS: u64 = 60_000;

/// When each failing event (database, key) was last logged.
type Warned = HashMap<(i32, Vec<u8>), u64>;
static WARNED: Mutex<Option<Warned>> = Mutex::new(None);

/// When the timer next fires (server ms) and its ID: a change that makes an event due sooner
/// moves it earlier, so upkeep never waits a whole interval for what a command made due.
static NEXT_TICK_AT: AtomicU64 = AtomicU64::new(0);
static TIMER: AtomicU64 = AtomicU64::new(0);

pub fn start(ctx: &Ctx) {
    arm(ctx, TICK_MS.load(Ordering::Relaxed));
}

fn arm(ctx: &Ctx, in_ms: i64) {
    NEXT_TICK_AT.store(ctx.now_ms() + in_ms as u64, Ordering::Relaxed);
    TIMER.store(timer::after(ctx, in_ms, tick), Ordering::Relaxed);
}

/// Makes sure the timer fires by `due`. During a tick nothing is armed here: the tick arms the
/// next one when it ends, from the schedule (and the firing timer must not be cancelled:
/// Redis frees it after the callback returns).
pub fn wake_by(ctx: &Ctx, due: u64) {
    if IN_TICK.load(Ordering::Relaxed) || due >= NEXT_TICK_AT.load(Ordering::Relaxed) {
        return;
    }
    timer::cancel(ctx, TIMER.load(Ordering::Relaxed));
    arm(ctx, due.saturating_sub(ctx.now_ms()).max(1) as i64);
}

static IN_TICK: AtomicBool = AtomicBool::new(false);

fn tick(ctx: &Ctx) {
    let started = Instant::now();
    IN_TICK.store(true, Ordering::Relaxed);
    let interval = TICK_MS.load(Ordering::Relaxed);
    let next = if ctx.may_decide_writes() {
        let next = run(ctx, interval);
        metrics::record_timer_run(started.elapsed().as_nanos() as u64);
        next
    } else {
        interval
    };
    IN_TICK.store(false, Ordering::Relaxed);
    arm(ctx, next);
    // The timer runs outside any command, so neither the slowlog nor the latency monitor's
    // `command` events see it: a long tick shows as LATENCY event `seatq-timer`.
    ctx.latency_sample(c"seatq-timer", started.elapsed());
}

/// One tick's work; returns the milliseconds until the next tick.
fn run(ctx: &Ctx, interval: i64) -> i64 {
    let started = Instant::now();
    let original_db = ctx.selected_db();
    let keys = pass_keys();
    while started.elapsed() < TICK_BUDGET {
        let now = ctx.now_ms();
        let Some((db, name)) = schedule::with(|s| s.pop_due(now)) else {
            break;
        };
        if !ctx.select_db(db) {
            continue;
        }
        let key = ctx.create_string(&name);
        if let Err(e) = upkeep_event(ctx, key.s, now, started, &keys) {
            schedule::with(|s| s.set(db, &name, Some(now + RETRY_AFTER_MS)));
            warn(ctx, db, &name, now, &e);
        }
    }
    ctx.select_db(original_db);
    let now = ctx.now_ms();
    match schedule::with(|s| s.next_due()) {
        Some(due) if due <= now => 1,
        Some(due) => ((due - now) as i64).clamp(1, interval),
        None => interval,
    }
}

/// Bounded upkeep steps on one event until nothing is due or the tick's budget is spent.
fn upkeep_event(
    ctx: &Ctx,
    key: RawString,
    now: u64,
    started: Instant,
    keys: &[crate::admission::pass::PassKey],
) -> Result<(), SeatqError> {
    let Ok(mut txn) = Transaction::open(ctx, key) else {
        return Ok(()); // no longer an event: dropped from the schedule
    };
    if !txn.exists() {
        return Ok(());
    }
    let name = txn.key().to_vec();
    let signer = Signer { event: &name, keys };
    while upkeep::step(&mut txn, now, Limits::TIMER, &signer)? && started.elapsed() < TICK_BUDGET {}
    txn.trim_journal(now);
    txn.reschedule(now);
    Ok(())
}

fn warn(ctx: &Ctx, db: i32, name: &[u8], now: u64, error: &SeatqError) {
    let mut guard = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    let warned = guard.get_or_insert_with(HashMap::new);
    let last = warned.entry((db, name.to_vec())).or_insert(0);
    if now.saturating_sub(*last) >= WARN_EVERY_MS {
        *last = now;
        ctx.log_warning(&format!(
            "seatq: upkeep of {} (db {db}) cannot proceed, retrying every {} s: {}",
            printable(name),
            RETRY_AFTER_MS / 1000,
            error.message()
        ));
    }
    if warned.len() > 10_000 {
        warned.clear();
    }
}
