//! Server events the module follows: databases swapped or flushed (the schedule of events keys
//! by database).

use std::ffi::c_void;

use redis_module::raw;

use super::{api, Ctx};

pub struct Handlers {
    /// Two databases swapped contents (SWAPDB).
    pub swap_db: fn(i32, i32),
    /// A database (or every one, -1) was emptied.
    pub flush_db: fn(i32),
}

static HANDLERS: std::sync::OnceLock<Handlers> = std::sync::OnceLock::new();

/// Subscribes to SWAPDB and FLUSHDB/FLUSHALL; call once at load.
pub fn subscribe(ctx: &Ctx, handlers: Handlers) -> Result<(), String> {
    let _ = HANDLERS.set(handlers);
    let callbacks: [(u64, raw::RedisModuleEventCallback); 2] = [
        (raw::REDISMODULE_EVENT_SWAPDB, Some(on_swap)),
        (raw::REDISMODULE_EVENT_FLUSHDB, Some(on_flush)),
    ];
    unsafe {
        for (id, callback) in callbacks {
            let event = raw::RedisModuleEvent { id, dataver: 1 };
            if api!(RedisModule_SubscribeToServerEvent)(ctx.0, event, callback)
                != raw::REDISMODULE_OK as i32
            {
                return Err(format!("cannot subscribe to server event {id}"));
            }
        }
    }
    Ok(())
}

fn handlers() -> Option<&'static Handlers> {
    HANDLERS.get()
}

unsafe extern "C" fn on_swap(
    _ctx: *mut raw::RedisModuleCtx,
    _event: raw::RedisModuleEvent,
    _subevent: u64,
    data: *mut c_void,
) {
    let info = &*data.cast::<raw::RedisModuleSwapDbInfo>();
    if let Some(h) = handlers() {
        let _ = std::panic::catch_unwind(|| (h.swap_db)(info.dbnum_first, info.dbnum_second));
    }
}

unsafe extern "C" fn on_flush(
    _ctx: *mut raw::RedisModuleCtx,
    _event: raw::RedisModuleEvent,
    subevent: u64,
    data: *mut c_void,
) {
    // After the flush, so keys flushed while it ran are gone too.
    if subevent != raw::REDISMODULE_SUBEVENT_FLUSHDB_END {
        return;
    }
    let info = &*data.cast::<raw::RedisModuleFlushInfo>();
    if let Some(h) = handlers() {
        let _ = std::panic::catch_unwind(|| (h.flush_db)(info.dbnum));
    }
}
