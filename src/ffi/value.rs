//! Values of the module's own data type: Redis' callbacks (persistence, AOF rewrite, DEBUG
//! DIGEST, MEMORY USAGE, COPY, lazy free) forwarded to a `ModuleValue`. No callback lets a panic
//! reach Redis.

use std::ffi::{c_int, c_void, CStr};
use std::marker::PhantomData;

use redis_module::native_types::RedisType;
use redis_module::raw;

use super::{api, bytes_of, RawString};
use crate::persistence::{Sink, Source};

/// A Rust type stored as the module's data type.
pub trait ModuleValue: Sized {
    /// Reads a value written with encoding `version` (RDB, full sync, RESTORE, MIGRATE);
    /// `key` is its (database, key name) when Redis knows it.
    fn load(
        source: &mut RdbSource,
        version: i32,
        key: Option<(i32, &[u8])>,
    ) -> Result<Self, String>;
    fn save(&self, sink: &mut RdbSink);
    fn digest(&self, sink: &mut DigestSink);
    /// The command and arguments that rebuild the value under `key` (AOF rewrite without an
    /// RDB preamble).
    fn rewrite(&self, key: &[u8]) -> (&'static CStr, Vec<Vec<u8>>);
    fn memory(&self) -> usize;
    /// Freeing cost in Redis' lazy-free units (large values are freed by a background thread).
    fn free_effort(&self) -> usize;
    fn copy(&self, to: &[u8]) -> Option<Self>;
    /// Called before the value is freed (possibly on a lazy-free thread).
    fn on_free(&self);
}

/// The registered type of `T`.
pub struct ModuleType<T> {
    redis: RedisType,
    _value: PhantomData<fn() -> T>,
}

// The type handle is written once at load (main thread) and only read after.
unsafe impl<T> Sync for ModuleType<T> {}

impl<T: ModuleValue> ModuleType<T> {
    pub const fn new(name: &'static str, version: i32) -> Self {
        Self {
            redis: RedisType::new(
                name,
                version,
                raw::RedisModuleTypeMethods {
                    version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
                    rdb_load: Some(rdb_load::<T>),
                    rdb_save: Some(rdb_save::<T>),
                    aof_rewrite: Some(aof_rewrite::<T>),
                    mem_usage: Some(mem_usage::<T>),
                    digest: Some(digest::<T>),
                    free: Some(free::<T>),
                    aux_load: None,
                    aux_save: None,
                    aux_save2: None,
                    aux_save_triggers: 0,
                    free_effort: Some(free_effort::<T>),
                    unlink: None,
                    copy: Some(copy::<T>),
                    defrag: None,
                    mem_usage2: None,
                    free_effort2: None,
                    unlink2: None,
                    copy2: None,
                },
            ),
            _value: PhantomData,
        }
    }

    pub fn redis_type(&self) -> &RedisType {
        &self.redis
    }
}

impl<T> ModuleType<T> {
    pub(super) fn raw(&self) -> *mut raw::RedisModuleType {
        *self.redis.raw_type.borrow()
    }
}

pub struct RdbSink(*mut raw::RedisModuleIO);

impl Sink for RdbSink {
    fn unsigned(&mut self, value: u64) {
        raw::save_unsigned(self.0, value);
    }
    fn bytes(&mut self, value: &[u8]) {
        raw::save_slice(self.0, value);
    }
}

pub struct RdbSource(*mut raw::RedisModuleIO);

impl Source for RdbSource {
    fn unsigned(&mut self) -> Result<u64, String> {
        raw::load_unsigned(self.0).map_err(|e| e.to_string())
    }
    fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let buffer = raw::load_string_buffer(self.0).map_err(|e| e.to_string())?;
        Ok(buffer.as_ref().to_vec())
    }
}

/// DEBUG DIGEST input, buffered: Redis mixes each added buffer into the digest with SHA-1, and
/// one call per field costs far more than the hashing itself.
pub struct DigestSink {
    md: *mut raw::RedisModuleDigest,
    buffer: Vec<u8>,
}

const DIGEST_CHUNK: usize = 64 * 1024;

impl DigestSink {
    fn flush(&mut self) {
        if !self.buffer.is_empty() {
            unsafe {
                api!(RedisModule_DigestAddStringBuffer)(
                    self.md,
                    self.buffer.as_ptr().cast_mut().cast(),
                    self.buffer.len(),
                )
            }
            self.buffer.clear();
        }
    }
}

impl Sink for DigestSink {
    fn unsigned(&mut self, value: u64) {
        self.buffer.extend_from_slice(&value.to_le_bytes());
        if self.buffer.len() >= DIGEST_CHUNK {
            self.flush();
        }
    }
    fn bytes(&mut self, value: &[u8]) {
        self.unsigned(value.len() as u64);
        self.buffer.extend_from_slice(value);
        if self.buffer.len() >= DIGEST_CHUNK {
            self.flush();
        }
    }
}

/// Runs a callback body, turning a panic into `fallback` so it never unwinds into Redis.
fn guarded<R>(fallback: R, body: impl FnOnce() -> R) -> R {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(fallback)
}

fn log_io_warning(io: *mut raw::RedisModuleIO, message: &str) {
    let msg = super::cstring(message);
    unsafe { api!(RedisModule_LogIOError)(io, c"warning".as_ptr(), c"%s".as_ptr(), msg.as_ptr()) }
}

extern "C" fn rdb_load<T: ModuleValue>(io: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    guarded(std::ptr::null_mut(), || {
        let key = unsafe {
            let name = api!(RedisModule_GetKeyNameFromIO)(io);
            (!name.is_null()).then(|| {
                (
                    api!(RedisModule_GetDbIdFromIO)(io),
                    bytes_of(name.cast_mut()),
                )
            })
        };
        match T::load(&mut RdbSource(io), encver, key) {
            Ok(value) => Box::into_raw(Box::new(value)).cast(),
            Err(e) => {
                log_io_warning(io, &format!("seatq: cannot load event: {e}"));
                std::ptr::null_mut()
            }
        }
    })
}

extern "C" fn rdb_save<T: ModuleValue>(io: *mut raw::RedisModuleIO, value: *mut c_void) {
    guarded((), || unsafe { &*value.cast::<T>() }.save(&mut RdbSink(io)))
}

extern "C" fn aof_rewrite<T: ModuleValue>(
    aof: *mut raw::RedisModuleIO,
    key: RawString,
    value: *mut c_void,
) {
    guarded((), || {
        let (command, args) = unsafe { &*value.cast::<T>() }.rewrite(bytes_of(key));
        let mut strings: Vec<RawString> = args
            .iter()
            .map(|a| unsafe {
                api!(RedisModule_CreateString)(std::ptr::null_mut(), a.as_ptr().cast(), a.len())
            })
            .collect();
        unsafe {
            api!(RedisModule_EmitAOF)(
                aof,
                command.as_ptr(),
                c"v".as_ptr(),
                strings.as_mut_ptr(),
                strings.len(),
            );
            for s in strings {
                api!(RedisModule_FreeString)(std::ptr::null_mut(), s);
            }
        }
    })
}

extern "C" fn mem_usage<T: ModuleValue>(value: *const c_void) -> usize {
    guarded(0, || unsafe { &*value.cast::<T>() }.memory())
}

extern "C" fn digest<T: ModuleValue>(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    guarded((), || {
        let mut sink = DigestSink {
            md,
            buffer: Vec::with_capacity(DIGEST_CHUNK + 1024),
        };
        unsafe { &*value.cast::<T>() }.digest(&mut sink);
        sink.flush();
        unsafe { api!(RedisModule_DigestEndSequence)(md) }
    })
}

extern "C" fn free<T: ModuleValue>(value: *mut c_void) {
    if !value.is_null() {
        guarded((), || {
            let value = unsafe { Box::from_raw(value.cast::<T>()) };
            value.on_free();
        })
    }
}

extern "C" fn free_effort<T: ModuleValue>(_key: RawString, value: *const c_void) -> usize {
    guarded(1, || unsafe { &*value.cast::<T>() }.free_effort())
}

extern "C" fn copy<T: ModuleValue>(
    _from: RawString,
    to: RawString,
    value: *const c_void,
) -> *mut c_void {
    guarded(std::ptr::null_mut(), || {
        match unsafe { &*value.cast::<T>() }.copy(bytes_of(to)) {
            Some(copy) => Box::into_raw(Box::new(copy)).cast(),
            None => std::ptr::null_mut(),
        }
    })
}
