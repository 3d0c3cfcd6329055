//! A one-shot module timer that calls back into safe code.

use std::ffi::c_void;

use redis_module::raw;

use super::{api, Ctx};

pub type TimerId = u64;

/// Calls `callback` on the main thread after `ms` (with a context of database 0).
pub fn after(ctx: &Ctx, ms: i64, callback: fn(&Ctx)) -> TimerId {
    unsafe { api!(RedisModule_CreateTimer)(ctx.0, ms, Some(fire), callback as *mut c_void) }
}

/// Cancels a timer that has not fired yet (nothing if it has).
pub fn cancel(ctx: &Ctx, id: TimerId) {
    unsafe {
        api!(RedisModule_StopTimer)(ctx.0, id, std::ptr::null_mut());
    }
}

extern "C" fn fire(ctx: *mut raw::RedisModuleCtx, data: *mut c_void) {
    // SAFETY: `data` is the `fn(&Ctx)` passed to `after`.
    let callback: fn(&Ctx) = unsafe { std::mem::transmute::<*mut c_void, fn(&Ctx)>(data) };
    let ctx = Ctx(ctx);
    if let Err(panic) = std::panic::catch_unwind(|| callback(&ctx)) {
        let what = panic.downcast_ref::<&str>().copied().unwrap_or("panic");
        ctx.log_warning(&format!("seatq: timer callback failed: {what}"));
    }
}
