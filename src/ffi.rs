//! The thin, unsafe edge between Redis and seatq: command contexts, argument bytes, replies,
//! keys of our type, replication and keyspace notifications. Everything above this file is safe
//! Rust; everything here is a direct call into the module API.

use std::ffi::{c_char, c_int, CString};
use std::ptr::NonNull;

use redis_module::raw;

use crate::arg_list::ArgList;

use crate::datatype::EVENT_TYPE;
use crate::error::SeatqError;
use crate::event::Event;

pub type RawCtx = *mut raw::RedisModuleCtx;
pub type RawString = *mut raw::RedisModuleString;

macro_rules! api {
    ($name:ident) => {
        raw::$name.expect(concat!(
            stringify!($name),
            " is not available in this server"
        ))
    };
}
pub(crate) use api;

/// Borrows the bytes of a module string; valid while the string lives.
pub fn bytes_of<'a>(s: RawString) -> &'a [u8] {
    let mut len = 0usize;
    unsafe {
        let p = api!(RedisModule_StringPtrLen)(s, &mut len);
        if p.is_null() || len == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(p.cast::<u8>(), len)
        }
    }
}

pub fn cstring(s: &str) -> CString {
    CString::new(s).expect("no NUL in static names")
}

#[derive(Clone, Copy)]
pub struct Ctx(pub RawCtx);

impl Ctx {
    pub fn now_ms(&self) -> u64 {
        unsafe { api!(RedisModule_Milliseconds)() as u64 }
    }

    fn flags(&self) -> u32 {
        unsafe { api!(RedisModule_GetContextFlags)(self.0) as u32 }
    }

    /// True on a primary that is not loading: only then may seatq decide changes on its own
    /// (heartbeat renewals in STATUS, timer sweeps). Replicas only apply what they are sent.
    pub fn may_decide_writes(&self) -> bool {
        let f = self.flags();
        f & raw::REDISMODULE_CTX_FLAGS_MASTER != 0 && f & raw::REDISMODULE_CTX_FLAGS_LOADING == 0
    }

    pub fn create_string(&self, bytes: &[u8]) -> OwnedString {
        let s =
            unsafe { api!(RedisModule_CreateString)(self.0, bytes.as_ptr().cast(), bytes.len()) };
        OwnedString { ctx: self.0, s }
    }

    /// 128 bits from Redis' own cryptographic random source, for admission passes.
    pub fn random_pass(&self) -> [u8; 16] {
        let mut pass = [0u8; 16];
        unsafe { api!(RedisModule_GetRandomBytes)(pass.as_mut_ptr(), pass.len()) };
        pass
    }

    pub fn select_db(&self, db: i32) -> bool {
        unsafe { api!(RedisModule_SelectDb)(self.0, db) == raw::REDISMODULE_OK as c_int }
    }

    pub fn selected_db(&self) -> i32 {
        unsafe { api!(RedisModule_GetSelectedDb)(self.0) }
    }

    /// Appends a command to what this command (or timer run) propagates to replicas and AOF.
    pub fn replicate(&self, command: &str, args: &ArgList) {
        let strings: Vec<OwnedString> = args.iter().map(|a| self.create_string(a)).collect();
        let mut raw_args: Vec<RawString> = strings.iter().map(|s| s.s).collect();
        self.replicate_strings(command, &mut raw_args);
    }

    /// Like `replicate`, for arguments that already are module strings.
    pub fn replicate_strings(&self, command: &str, args: &mut [RawString]) {
        let cmd = cstring(command);
        unsafe {
            api!(RedisModule_Replicate)(
                self.0,
                cmd.as_ptr(),
                c"v".as_ptr(),
                args.as_mut_ptr(),
                args.len(),
            );
        }
    }

    /// Propagates the command exactly as the client sent it.
    pub fn replicate_verbatim(&self) {
        unsafe {
            api!(RedisModule_ReplicateVerbatim)(self.0);
        }
    }

    pub fn notify(&self, class: c_int, event: &str, key: RawString) {
        let event = cstring(event);
        unsafe {
            api!(RedisModule_NotifyKeyspaceEvent)(self.0, class, event.as_ptr(), key);
        }
    }

    pub fn log_warning(&self, message: &str) {
        let level = c"warning";
        let fmt = c"%s";
        let msg = CString::new(message.replace('\0', " ")).unwrap_or_default();
        unsafe {
            api!(RedisModule_Log)(self.0, level.as_ptr(), fmt.as_ptr(), msg.as_ptr());
        }
    }

    pub fn open(&self, name: RawString, write: bool) -> Key {
        let mode = if write {
            raw::REDISMODULE_READ | raw::REDISMODULE_WRITE
        } else {
            raw::REDISMODULE_READ
        };
        let key = unsafe { api!(RedisModule_OpenKey)(self.0, name, mode as c_int) };
        Key {
            key: key.cast(),
            write,
        }
    }

    pub fn reply(&self) -> Reply {
        Reply(self.0)
    }
}

/// A module string we created and must free.
pub struct OwnedString {
    ctx: RawCtx,
    pub s: RawString,
}

impl Drop for OwnedString {
    fn drop(&mut self) {
        unsafe { api!(RedisModule_FreeString)(self.ctx, self.s) }
    }
}

/// An open key; closed when dropped.
pub struct Key {
    key: *mut raw::RedisModuleKey,
    write: bool,
}

impl Drop for Key {
    fn drop(&mut self) {
        if !self.key.is_null() {
            unsafe { api!(RedisModule_CloseKey)(self.key) }
        }
    }
}

impl Key {
    fn key_type(&self) -> c_int {
        unsafe { api!(RedisModule_KeyType)(self.key) }
    }

    pub fn is_empty(&self) -> bool {
        self.key.is_null() || self.key_type() == raw::REDISMODULE_KEYTYPE_EMPTY as c_int
    }

    pub fn is_stream_or_empty(&self) -> bool {
        self.is_empty() || self.key_type() == raw::REDISMODULE_KEYTYPE_STREAM as c_int
    }

    /// The event stored here: Ok(None) when the key is empty, WRONGTYPE when it holds
    /// anything else.
    fn event_ptr(&self) -> Result<Option<NonNull<Event>>, SeatqError> {
        if self.is_empty() {
            return Ok(None);
        }
        unsafe {
            if self.key_type() != raw::REDISMODULE_KEYTYPE_MODULE as c_int
                || api!(RedisModule_ModuleTypeGetType)(self.key) != *EVENT_TYPE.raw_type.borrow()
            {
                return Err(SeatqError::WrongType);
            }
            Ok(NonNull::new(
                api!(RedisModule_ModuleTypeGetValue)(self.key).cast::<Event>(),
            ))
        }
    }

    pub fn event(&self) -> Result<Option<&Event>, SeatqError> {
        Ok(self.event_ptr()?.map(|p| unsafe { &*p.as_ptr() }))
    }

    pub fn event_mut(&mut self) -> Result<Option<&mut Event>, SeatqError> {
        Ok(self.event_ptr()?.map(|p| unsafe { &mut *p.as_ptr() }))
    }

    /// Stores `event` under this writable key, replacing what it held.
    pub fn set_event(&mut self, event: Box<Event>) {
        assert!(self.write, "set_event on a read-only key");
        // A value this replaces is freed by Redis through the type's free callback.
        crate::metrics::event_stored(&event);
        unsafe {
            api!(RedisModule_ModuleTypeSetValue)(
                self.key,
                *EVENT_TYPE.raw_type.borrow(),
                Box::into_raw(event).cast(),
            );
        }
    }

    pub fn raw(&self) -> *mut raw::RedisModuleKey {
        self.key
    }
}

/// Reply builder. RESP3 maps degrade to flat field/value arrays on RESP2 (the crate's
/// `reply_with_map` does that).
pub struct Reply(RawCtx);

impl Reply {
    pub fn map(&self, pairs: usize) {
        raw::reply_with_map(self.0, pairs as _);
    }

    pub fn array(&self, len: usize) {
        raw::reply_with_array(self.0, len as _);
    }

    pub fn int(&self, value: i64) {
        raw::reply_with_long_long(self.0, value);
    }

    pub fn bulk(&self, value: &[u8]) {
        raw::reply_with_string_buffer(self.0, value.as_ptr().cast::<c_char>(), value.len());
    }

    pub fn null(&self) {
        raw::reply_with_null(self.0);
    }

    pub fn ok(&self) {
        raw::reply_with_simple_string(self.0, c"OK".as_ptr());
    }

    /// A map key. Bulk rather than simple strings: no C string to allocate per field.
    pub fn key(&self, name: &str) {
        self.bulk(name.as_bytes());
    }

    /// A map field whose value is a string.
    pub fn field_bulk(&self, name: &str, value: &[u8]) {
        self.key(name);
        self.bulk(value);
    }

    pub fn field_int(&self, name: &str, value: i64) {
        self.key(name);
        self.int(value);
    }

    pub fn error(&self, err: &SeatqError) {
        if *err == SeatqError::WrongArity {
            unsafe {
                api!(RedisModule_WrongArity)(self.0);
            }
            return;
        }
        let msg = CString::new(err.message()).unwrap_or_else(|_| cstring("ERR invalid error text"));
        unsafe {
            api!(RedisModule_ReplyWithError)(self.0, msg.as_ptr());
        }
    }
}
