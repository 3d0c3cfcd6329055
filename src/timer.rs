//! The active side of expiry: a timer on the primary that sweeps every known event for lapsed
//! heartbeats, expired idempotency keys and lapsed seat holds, and trims journals by age. Replicas run the timer
//! too but only to keep their registry; they change nothing (the primary's effects reach them).
//!
//! The registry lists (db, key) of events. Events enter it when created by a command or an
//! applied effect, when loaded (RDB, full sync, RESTORE/MIGRATE: `rdb_load`), and when
//! renamed, copied or moved (keyspace notifications). A key that no longer holds an event is
//! dropped at the next tick.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::c_void;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use redis_module::raw;

use crate::entry_id::EntryId;
use crate::ffi::{api, bytes_of, Ctx, RawString};
use crate::journal::Journal;
use crate::store;

/// `seatq.timer-interval-ms`: how often the timer runs (10..1000 ms, default 100).
pub static TICK_MS: AtomicI64 = AtomicI64::new(100);
/// Tickets scanned per event per tick: a 1,000,000-ticket line is fully swept every ~1.6 s
/// in steps of well under a millisecond.
const SWEEP_BUDGET: usize = 65_536;
const TRIM_EVERY_MS: u64 = 1_000;
/// Holds returned per event per tick.
const HOLD_BUDGET: usize = 10_000;

/// Event keys per database.
static REGISTRY: Mutex<BTreeMap<i32, BTreeSet<Vec<u8>>>> = Mutex::new(BTreeMap::new());

/// Called on every write commit too (a lookup without allocation when already known), so an
/// event that reached its database some other way (SWAPDB) is swept again after its next write.
pub fn register(db: i32, key: &[u8]) {
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let keys = registry.entry(db).or_default();
    if !keys.contains(key) {
        keys.insert(key.to_vec());
    }
}

fn unregister(db: i32, key: &[u8]) {
    if let Some(keys) = REGISTRY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_mut(&db)
    {
        keys.remove(key);
    }
}

pub fn start(ctx: &Ctx) {
    unsafe {
        api!(RedisModule_CreateTimer)(
            ctx.0,
            TICK_MS.load(Ordering::Relaxed),
            Some(on_tick),
            std::ptr::null_mut(),
        );
    }
}

extern "C" fn on_tick(raw_ctx: *mut raw::RedisModuleCtx, _data: *mut c_void) {
    let ctx = Ctx(raw_ctx);
    if let Err(panic) = std::panic::catch_unwind(|| sweep_all(&ctx)) {
        let what = panic.downcast_ref::<&str>().copied().unwrap_or("panic");
        ctx.log_warning(&format!("seatq: timer run failed: {what}"));
    }
    start(&ctx);
}

fn sweep_all(ctx: &Ctx) {
    if !ctx.may_decide_writes() {
        return;
    }
    crate::metrics::TIMER_RUNS.fetch_add(1, Ordering::Relaxed);
    let keys: Vec<(i32, Vec<u8>)> = REGISTRY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .flat_map(|(db, keys)| keys.iter().map(move |k| (*db, k.clone())))
        .collect();
    let original_db = ctx.selected_db();
    for (db, name) in keys {
        if !ctx.select_db(db) {
            continue;
        }
        let key = ctx.create_string(&name);
        if !sweep_one(ctx, key.s) {
            unregister(db, &name);
        }
    }
    ctx.select_db(original_db);
}

/// Sweeps one event; false when the key no longer holds an event.
fn sweep_one(ctx: &Ctx, key: RawString) -> bool {
    let now = ctx.now_ms();
    let mut handle = ctx.open(key, false);
    let Ok(Some(event)) = handle.event_mut() else {
        return false;
    };
    let seed = u64::from_le_bytes(ctx.random_pass()[..8].try_into().expect("8 bytes"));
    let effects = event.plan_timer_run(now, SWEEP_BUDGET, HOLD_BUDGET, seed);
    let max_age = event.config.get(crate::config::Setting::JournalMaxAge);
    let trim =
        event.config.journal_on() && max_age > 0 && now >= event.journal_trimmed_at + TRIM_EVERY_MS;
    if trim {
        event.journal_trimmed_at = now;
    }
    drop(handle);
    if let Err(e) = store::commit(ctx, key, effects) {
        ctx.log_warning(&format!(
            "seatq: sweep of {} failed: {}",
            crate::error::printable(bytes_of(key)),
            e.message()
        ));
    }
    if trim {
        if let Ok(journal) = Journal::open(ctx, bytes_of(key)) {
            journal.trim_before(ctx, EntryId::new(now.saturating_sub(max_age), 0));
        }
    }
    true
}

/// Keyspace notifications for events that change name or database (RENAME, COPY, MOVE).
pub fn on_moved_key(ctx: &Ctx, event: &str, key: &[u8]) {
    if matches!(event, "rename_to" | "copy_to" | "move_to") {
        let name = ctx.create_string(key);
        if let Ok(Some(_)) = ctx.open(name.s, false).event() {
            register(ctx.selected_db(), key);
        }
    }
}
