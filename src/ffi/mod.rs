//! The thin, unsafe edge between Redis and seatq: contexts, argument bytes, replies, keys of the
//! module's type, streams, replication, notifications, timers and type callbacks. Everything
//! outside `ffi` is safe Rust; everything here is a direct call into the module API. It knows
//! no seatq type: values of the module type are handled through the `ModuleValue` trait.

pub mod command;
pub mod events;
pub mod heap;
pub mod stream;
pub mod timer;
pub mod value;

use std::borrow::Cow;
use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};

use smallvec::SmallVec;

use redis_module::raw;

use crate::arg_list::ArgList;
use crate::error::SeatqError;

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

/// Bytes from Redis' own cryptographic random source (expensive: seed a generator with it).
pub fn random_bytes(out: &mut [u8]) {
    unsafe { api!(RedisModule_GetRandomBytes)(out.as_mut_ptr(), out.len()) };
}

/// Applies the module's configs from redis.conf (after they are registered) and sets its
/// options: short reads while loading become errors instead of aborting the server, and
/// modified keys are signalled explicitly (only when something did change, so a refused
/// write never invalidates WATCH or client-side caches).
pub fn load_configs_and_set_options(ctx: &Ctx) -> Result<(), String> {
    unsafe {
        if api!(RedisModule_LoadConfigs)(ctx.0) != raw::REDISMODULE_OK as c_int {
            return Err("invalid seatq.* configuration".into());
        }
        api!(RedisModule_SetModuleOptions)(
            ctx.0,
            (raw::REDISMODULE_OPTIONS_HANDLE_IO_ERRORS
                | raw::REDISMODULE_OPTION_NO_IMPLICIT_SIGNAL_MODIFIED) as c_int,
        );
    }
    Ok(())
}

pub fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).expect("no NUL left")
}

#[derive(Clone, Copy)]
pub struct Ctx(pub RawCtx);

impl Ctx {
    pub fn now_ms(&self) -> u64 {
        unsafe { api!(RedisModule_Milliseconds)() as u64 }
    }

    /// The server's clock in µs: the API where the server has it (Redis 7.2+, Valkey), so
    /// that it is the clock `now_ms` reads; else (Redis 7.0, whose `now_ms` reads the same
    /// system clock) the system clock.
    pub fn now_us(&self) -> u64 {
        match unsafe { raw::RedisModule_Microseconds } {
            Some(microseconds) => unsafe { microseconds() as u64 },
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64),
        }
    }

    fn flags(&self) -> u32 {
        unsafe { api!(RedisModule_GetContextFlags)(self.0) as u32 }
    }

    /// True on a writable primary that is not loading and whose clients are not paused for
    /// writes (CLIENT PAUSE WRITE, FAILOVER, CLUSTER FAILOVER): only then may seatq decide
    /// changes on its own (upkeep, heartbeat renewals). Propagating while clients are paused
    /// trips an assertion in the server; replicas only apply what they are sent.
    pub fn may_decide_writes(&self) -> bool {
        let f = self.flags();
        let primary = f & raw::REDISMODULE_CTX_FLAGS_MASTER != 0;
        let loading = f & raw::REDISMODULE_CTX_FLAGS_LOADING != 0;
        primary && !loading && unsafe { api!(RedisModule_AvoidReplicaTraffic)() } == 0
    }

    /// The server is loading its data (the AOF, an RDB).
    pub fn loading(&self) -> bool {
        self.flags() & raw::REDISMODULE_CTX_FLAGS_LOADING != 0
    }

    /// The server runs in cluster mode.
    pub fn in_cluster(&self) -> bool {
        self.flags() & raw::REDISMODULE_CTX_FLAGS_CLUSTER != 0
    }

    /// The command came over the replication link or from the AOF being loaded (not from a
    /// client).
    pub fn sent_by_primary_or_aof(&self) -> bool {
        let f = self.flags();
        f & (raw::REDISMODULE_CTX_FLAGS_REPLICATED | raw::REDISMODULE_CTX_FLAGS_LOADING) != 0
    }

    pub fn create_string(&self, bytes: &[u8]) -> OwnedString {
        let s =
            unsafe { api!(RedisModule_CreateString)(self.0, bytes.as_ptr().cast(), bytes.len()) };
        OwnedString { ctx: self.0, s }
    }

    pub fn select_db(&self, db: i32) -> bool {
        unsafe { api!(RedisModule_SelectDb)(self.0, db) == raw::REDISMODULE_OK as c_int }
    }

    pub fn selected_db(&self) -> i32 {
        unsafe { api!(RedisModule_GetSelectedDb)(self.0) }
    }

    /// Appends `command args...` to what this command (or timer run) propagates to replicas
    /// and the AOF.
    pub fn replicate(&self, command: &CStr, args: &ArgList) {
        let strings: SmallVec<[OwnedString; 16]> =
            args.iter().map(|a| self.create_string(a)).collect();
        let mut raw_args: SmallVec<[RawString; 16]> = strings.iter().map(|s| s.s).collect();
        unsafe {
            api!(RedisModule_Replicate)(
                self.0,
                command.as_ptr(),
                c"v".as_ptr(),
                raw_args.as_mut_ptr(),
                raw_args.len(),
            );
        }
    }

    /// Propagates the command exactly as it was received.
    pub fn replicate_verbatim(&self) {
        unsafe {
            api!(RedisModule_ReplicateVerbatim)(self.0);
        }
    }

    pub fn notify(&self, class: NotifyClass, event: &CStr, key: RawString) {
        let class = match class {
            NotifyClass::Module => raw::REDISMODULE_NOTIFY_MODULE,
            NotifyClass::Stream => raw::REDISMODULE_NOTIFY_STREAM,
        };
        unsafe {
            api!(RedisModule_NotifyKeyspaceEvent)(self.0, class as c_int, event.as_ptr(), key);
        }
    }

    /// Tells WATCH and client-side caching that a key changed (seatq signals explicitly, only
    /// when something did change: see `module.rs`).
    pub fn signal_modified(&self, key: RawString) {
        unsafe {
            api!(RedisModule_SignalModifiedKey)(self.0, key);
        }
    }

    /// Reports work that held the main thread for `elapsed` to the server's latency monitor as
    /// `event` (recorded when at least `latency-monitor-threshold` ms, like the server's own
    /// events: whole milliseconds, rounded down).
    pub fn latency_sample(&self, event: &CStr, elapsed: std::time::Duration) {
        let ms = elapsed.as_millis() as raw::mstime_t;
        if ms > 0 {
            // SAFETY: the API table is written once when the module loads (main thread).
            if let Some(add) = unsafe { raw::RedisModule_LatencyAddSample } {
                unsafe { add(event.as_ptr(), ms) }
            }
        }
    }

    pub fn log_warning(&self, message: &str) {
        let msg = cstring(message);
        unsafe {
            api!(RedisModule_Log)(self.0, c"warning".as_ptr(), c"%s".as_ptr(), msg.as_ptr());
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
            value: Cell::new(None),
        }
    }

    pub fn reply(&self) -> Reply {
        Reply(self.0)
    }
}

pub enum NotifyClass {
    Module,
    Stream,
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
    /// The module value found here (its type, its pointer): a command asks for its event many
    /// times, and only `set_value` through this handle changes it while the key is open.
    value: Cell<Option<(*mut raw::RedisModuleType, *mut c_void)>>,
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
        self.value.get().is_none()
            && (self.key.is_null() || self.key_type() == raw::REDISMODULE_KEYTYPE_EMPTY as c_int)
    }

    pub fn is_stream(&self) -> bool {
        !self.key.is_null() && self.key_type() == raw::REDISMODULE_KEYTYPE_STREAM as c_int
    }

    fn value_ptr<T>(&self, ty: &value::ModuleType<T>) -> Result<Option<*mut T>, SeatqError> {
        if let Some((cached_ty, p)) = self.value.get() {
            if cached_ty == ty.raw() {
                return Ok(Some(p.cast()));
            }
        }
        if self.is_empty() {
            return Ok(None);
        }
        unsafe {
            if self.key_type() != raw::REDISMODULE_KEYTYPE_MODULE as c_int
                || api!(RedisModule_ModuleTypeGetType)(self.key) != ty.raw()
            {
                return Err(SeatqError::WrongType);
            }
            let p = api!(RedisModule_ModuleTypeGetValue)(self.key);
            if p.is_null() {
                return Ok(None);
            }
            self.value.set(Some((ty.raw(), p)));
            Ok(Some(p.cast()))
        }
    }

    /// The value of the module type stored here: Ok(None) when the key is empty, WRONGTYPE
    /// when it holds anything else.
    pub fn value<T>(&self, ty: &value::ModuleType<T>) -> Result<Option<&T>, SeatqError> {
        Ok(self.value_ptr(ty)?.map(|p| unsafe { &*p }))
    }

    pub fn value_mut<T>(
        &mut self,
        ty: &value::ModuleType<T>,
    ) -> Result<Option<&mut T>, SeatqError> {
        assert!(self.write, "value_mut on a read-only key");
        Ok(self.value_ptr(ty)?.map(|p| unsafe { &mut *p }))
    }

    /// Stores `value` under this writable key, replacing what it held (freed by Redis through
    /// the type's free callback).
    pub fn set_value<T>(&mut self, ty: &value::ModuleType<T>, value: Box<T>) {
        assert!(self.write, "set_value on a read-only key");
        let p = Box::into_raw(value).cast::<c_void>();
        unsafe {
            api!(RedisModule_ModuleTypeSetValue)(self.key, ty.raw(), p);
        }
        self.value.set(Some((ty.raw(), p)));
    }

    fn raw(&self) -> *mut raw::RedisModuleKey {
        self.key
    }
}

/// Reply builder. RESP3 maps degrade to flat field/value arrays on RESP2.
pub struct Reply(RawCtx);

impl Reply {
    pub fn map(&self, pairs: usize) {
        raw::reply_with_map(self.0, pairs as _);
    }

    /// A map built field by field: its length is the number of fields added, sent with the
    /// first byte (a length sent afterwards costs Redis a second reply node).
    pub fn open_map<'a>(&self) -> MapReply<'_, 'a> {
        MapReply {
            reply: self,
            fields: SmallVec::new(),
            sent: false,
        }
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

    pub fn error(&self, err: &SeatqError) {
        if *err == SeatqError::WrongArity {
            unsafe {
                api!(RedisModule_WrongArity)(self.0);
            }
            return;
        }
        let mut line: SmallVec<[u8; 128]> = SmallVec::new();
        err.write_message(|piece| line.extend_from_slice(piece));
        // A C string: a NUL inside (echoed client bytes) would cut it short.
        for b in line.iter_mut().filter(|b| **b == 0) {
            *b = b' ';
        }
        line.push(0);
        unsafe {
            api!(RedisModule_ReplyWithError)(self.0, line.as_ptr().cast::<c_char>());
        }
    }
}

/// One value of a map reply.
enum Field<'a> {
    Int(i64),
    Bulk(Cow<'a, [u8]>),
    Null,
}

/// A map reply being built: fields are kept until the map is sent whole (on drop, or by
/// `nested`), so that no caller counts fields by hand and Redis gets the length first.
pub struct MapReply<'r, 'a> {
    reply: &'r Reply,
    fields: SmallVec<[(Cow<'a, str>, Field<'a>); 16]>,
    sent: bool,
}

impl<'r, 'a> MapReply<'r, 'a> {
    fn add(&mut self, name: impl Into<Cow<'a, str>>, value: Field<'a>) -> &mut Self {
        self.fields.push((name.into(), value));
        self
    }

    pub fn bulk(
        &mut self,
        name: impl Into<Cow<'a, str>>,
        value: impl Into<Cow<'a, [u8]>>,
    ) -> &mut Self {
        self.add(name, Field::Bulk(value.into()))
    }

    pub fn int(&mut self, name: impl Into<Cow<'a, str>>, value: i64) -> &mut Self {
        self.add(name, Field::Int(value))
    }

    pub fn opt_int(&mut self, name: impl Into<Cow<'a, str>>, value: Option<i64>) -> &mut Self {
        self.add(name, value.map_or(Field::Null, Field::Int))
    }

    pub fn opt_bulk(
        &mut self,
        name: impl Into<Cow<'a, str>>,
        value: Option<impl Into<Cow<'a, [u8]>>>,
    ) -> &mut Self {
        self.add(name, value.map_or(Field::Null, |v| Field::Bulk(v.into())))
    }

    /// Sends the map with `name` as its last field, whose value the caller writes next (one
    /// reply value: a nested map or array).
    pub fn nested(mut self, name: &str) -> &'r Reply {
        self.send(1);
        self.reply.bulk(name.as_bytes());
        self.reply
    }

    fn send(&mut self, more: usize) {
        let reply = self.reply;
        self.sent = true;
        reply.map(self.fields.len() + more);
        for (name, value) in self.fields.drain(..) {
            // Bulk rather than simple strings: no C string to make per field.
            reply.bulk(name.as_bytes());
            match value {
                Field::Int(v) => reply.int(v),
                Field::Bulk(v) => reply.bulk(&v),
                Field::Null => reply.null(),
            }
        }
    }
}

impl Drop for MapReply<'_, '_> {
    fn drop(&mut self) {
        if !self.sent {
            self.send(0);
        }
    }
}
