//! The `seatq-evt` data type: Redis' callbacks for persistence, DEBUG DIGEST, MEMORY USAGE,
//! COPY and (lazy) freeing of an `Event`.

use std::ffi::{c_int, c_void};

use redis_module::native_types::RedisType;
use redis_module::raw;

use crate::event::Event;
use crate::ffi::{api, bytes_of, RawString};
use crate::persistence::{self, Sink, Source, ENCODING_VERSION};
use crate::timer;

pub static EVENT_TYPE: RedisType = RedisType::new(
    "seatq-evt",
    ENCODING_VERSION,
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: Some(rdb_load),
        rdb_save: Some(rdb_save),
        aof_rewrite: Some(aof_rewrite),
        mem_usage: Some(mem_usage),
        digest: Some(digest),
        free: Some(free),
        aux_load: None,
        aux_save: None,
        aux_save2: None,
        aux_save_triggers: 0,
        free_effort: Some(free_effort),
        unlink: None,
        copy: Some(copy),
        defrag: None,
        mem_usage2: None,
        free_effort2: None,
        unlink2: None,
        copy2: None,
    },
);

struct RdbSink(*mut raw::RedisModuleIO);

impl Sink for RdbSink {
    fn unsigned(&mut self, value: u64) {
        raw::save_unsigned(self.0, value);
    }
    fn bytes(&mut self, value: &[u8]) {
        raw::save_slice(self.0, value);
    }
}

struct RdbSource(*mut raw::RedisModuleIO);

impl Source for RdbSource {
    fn unsigned(&mut self) -> Result<u64, String> {
        raw::load_unsigned(self.0).map_err(|e| e.to_string())
    }
    fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let buffer = raw::load_string_buffer(self.0).map_err(|e| e.to_string())?;
        Ok(buffer.as_ref().to_vec())
    }
}

struct DigestSink(*mut raw::RedisModuleDigest);

impl Sink for DigestSink {
    fn unsigned(&mut self, value: u64) {
        unsafe { api!(RedisModule_DigestAddLongLong)(self.0, value as i64) }
    }
    fn bytes(&mut self, value: &[u8]) {
        unsafe {
            api!(RedisModule_DigestAddStringBuffer)(
                self.0,
                value.as_ptr().cast_mut().cast(),
                value.len(),
            )
        }
    }
}

/// Runs a callback body, turning a panic into `fallback` so it never unwinds into Redis.
fn guarded<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(fallback)
}

fn log_io_warning(io: *mut raw::RedisModuleIO, message: &str) {
    let msg = std::ffi::CString::new(message.replace('\0', " ")).unwrap_or_default();
    unsafe { api!(RedisModule_LogIOError)(io, c"warning".as_ptr(), c"%s".as_ptr(), msg.as_ptr()) }
}

extern "C" fn rdb_load(io: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    guarded(std::ptr::null_mut(), || {
        match persistence::load(&mut RdbSource(io), encver) {
            Ok(event) => {
                // Every path that brings an event into the keyspace without a seatq command
                // (RDB load, full sync, RESTORE, MIGRATE) passes here: register it for the timer.
                unsafe {
                    let name = api!(RedisModule_GetKeyNameFromIO)(io);
                    if !name.is_null() {
                        timer::register(
                            api!(RedisModule_GetDbIdFromIO)(io),
                            bytes_of(name.cast_mut()),
                        );
                    }
                }
                crate::metrics::event_stored(&event);
                Box::into_raw(Box::new(event)).cast()
            }
            Err(e) => {
                log_io_warning(io, &format!("seatq: cannot load event: {e}"));
                std::ptr::null_mut()
            }
        }
    })
}

extern "C" fn rdb_save(io: *mut raw::RedisModuleIO, value: *mut c_void) {
    guarded((), || {
        persistence::save(unsafe { &*value.cast::<Event>() }, &mut RdbSink(io))
    })
}

extern "C" fn aof_rewrite(aof: *mut raw::RedisModuleIO, key: RawString, value: *mut c_void) {
    guarded((), || {
        let blob = persistence::to_bytes(unsafe { &*value.cast::<Event>() });
        unsafe {
            api!(RedisModule_EmitAOF)(
                aof,
                c"SEATQ.APPLY".as_ptr(),
                c"scb".as_ptr(),
                key,
                c"SNAPSHOT".as_ptr(),
                blob.as_ptr(),
                blob.len(),
            );
        }
    })
}

extern "C" fn mem_usage(value: *const c_void) -> usize {
    guarded(0, || unsafe { &*value.cast::<Event>() }.heap_bytes())
}

extern "C" fn digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    guarded((), || {
        persistence::save(unsafe { &*value.cast::<Event>() }, &mut DigestSink(md));
        unsafe { api!(RedisModule_DigestEndSequence)(md) }
    })
}

extern "C" fn free(value: *mut c_void) {
    if !value.is_null() {
        guarded((), || {
            let event = unsafe { Box::from_raw(value.cast::<Event>()) };
            crate::metrics::event_freed(&event);
        })
    }
}

/// Freeing cost in Redis' lazy-free units: a large line is freed by a background thread
/// (UNLINK, FLUSHALL ASYNC, lazyfree-lazy-*) instead of blocking the server.
extern "C" fn free_effort(_key: RawString, value: *const c_void) -> usize {
    guarded(1, || {
        let event = unsafe { &*value.cast::<Event>() };
        let inv = &event.inventory;
        event.line.tickets().len()
            + event.idempotency.len()
            + inv.seats.len()
            + inv.holds.len()
            + inv.buyers.len()
            + event.sessions.len()
    })
}

extern "C" fn copy(_from: RawString, _to: RawString, value: *const c_void) -> *mut c_void {
    guarded(std::ptr::null_mut(), || {
        let event = unsafe { &*value.cast::<Event>() };
        match persistence::from_bytes(&persistence::to_bytes(event)) {
            Ok(copy) => {
                crate::metrics::event_stored(&copy);
                Box::into_raw(Box::new(copy)).cast()
            }
            Err(_) => std::ptr::null_mut(),
        }
    })
}
