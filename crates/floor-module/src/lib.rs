//! The floor of the instruction benchmark (`benches/versus_seed`, section `instructions`): what
//! any module command pays on the same server, written directly against the module API with no
//! work of its own, so that seatq's costs can be read as a ratio to it.
//!
//! - `FLOOR.NOOP key`: an empty module command (replies 1).
//! - `FLOOR.READ key`: opens the key for reading and replies an 8-field map (the shape of
//!   `QUEUE.STATUS`'s reply).
//! - `FLOOR.WRITE key user`: the minimal journaled write: opens `key` (a stream) for writing,
//!   appends one entry of 6 field/value pairs with an automatic ID, replicates one 8-argument
//!   effect (`FLOOR.APPLY`), fires the `xadd` keyspace event and replies a 5-field map (the
//!   shape of `QUEUE.ENQUEUE`'s reply).
//! - `FLOOR.TOUCH key`: the same without the stream append (the floor of a write with the
//!   journal off).
//! - `FLOOR.APPLY key ...`: the replicated effect; this module never applies it (the benchmark
//!   has no replica), it only exists so the effect names a real command.

use std::ffi::{c_char, c_int, c_long};

use redis_module::raw::{self, RedisModuleCtx, RedisModuleString};
use redis_module::{redis_module, Context, RedisString, Status};

const OK: c_int = raw::REDISMODULE_OK as c_int;

fn bytes<'a>(s: *mut RedisModuleString) -> &'a [u8] {
    let mut len = 0usize;
    unsafe {
        let p = raw::RedisModule_StringPtrLen.unwrap()(s, &mut len);
        if p.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(p.cast::<u8>(), len)
        }
    }
}

unsafe fn reply_text(ctx: *mut RedisModuleCtx, text: &[u8]) {
    raw::RedisModule_ReplyWithStringBuffer.unwrap()(
        ctx,
        text.as_ptr().cast::<c_char>(),
        text.len(),
    );
}

unsafe fn reply_int(ctx: *mut RedisModuleCtx, n: i64) {
    raw::RedisModule_ReplyWithLongLong.unwrap()(ctx, n);
}

unsafe fn open(
    ctx: *mut RedisModuleCtx,
    key: *mut RedisModuleString,
    write: bool,
) -> *mut raw::RedisModuleKey {
    let mode = if write {
        raw::REDISMODULE_READ | raw::REDISMODULE_WRITE
    } else {
        raw::REDISMODULE_READ
    };
    raw::RedisModule_OpenKey.unwrap()(ctx, key, mode as c_int).cast()
}

extern "C" fn noop(
    ctx: *mut RedisModuleCtx,
    _argv: *mut *mut RedisModuleString,
    argc: c_int,
) -> c_int {
    unsafe {
        if argc != 2 {
            return raw::RedisModule_WrongArity.unwrap()(ctx);
        }
        reply_int(ctx, 1);
    }
    OK
}

extern "C" fn read(
    ctx: *mut RedisModuleCtx,
    argv: *mut *mut RedisModuleString,
    argc: c_int,
) -> c_int {
    unsafe {
        if argc != 2 {
            return raw::RedisModule_WrongArity.unwrap()(ctx);
        }
        let argv = std::slice::from_raw_parts(argv, argc as usize);
        let key = open(ctx, argv[1], false);
        let kind = raw::RedisModule_KeyType.unwrap()(key);
        raw::RedisModule_CloseKey.unwrap()(key);
        raw::RedisModule_ReplyWithMap.unwrap()(ctx, 8 as c_long);
        reply_text(ctx, b"ticket");
        reply_text(ctx, b"42.9f86d081884c7d65");
        reply_text(ctx, b"state");
        reply_text(ctx, b"waiting");
        reply_text(ctx, b"position");
        reply_int(ctx, 42);
        reply_text(ctx, b"ahead");
        reply_int(ctx, 41);
        reply_text(ctx, b"eta_ms");
        reply_int(ctx, 4_100);
        reply_text(ctx, b"retry_after_ms");
        reply_int(ctx, 2_000);
        reply_text(ctx, b"heartbeat_expires_at_ms");
        reply_int(ctx, 1_800_000_000_000);
        reply_text(ctx, b"type");
        reply_int(ctx, kind as i64);
    }
    OK
}

/// Replicates `FLOOR.APPLY key id joined serial user at a b` (8 arguments), notifies and
/// replies the 5-field map.
unsafe fn replicate_notify_reply(
    ctx: *mut RedisModuleCtx,
    key: *mut RedisModuleString,
    id: &[u8],
    user: &[u8],
) {
    raw::RedisModule_Replicate.unwrap()(
        ctx,
        c"FLOOR.APPLY".as_ptr(),
        c"sbbbbbbb".as_ptr(),
        key,
        id.as_ptr(),
        id.len(),
        b"joined".as_ptr(),
        6usize,
        b"42".as_ptr(),
        2usize,
        user.as_ptr(),
        user.len(),
        b"1800000000000".as_ptr(),
        13usize,
        b"a".as_ptr(),
        1usize,
        b"b".as_ptr(),
        1usize,
    );
    raw::RedisModule_NotifyKeyspaceEvent.unwrap()(
        ctx,
        raw::NotifyEvent::STREAM.bits(),
        c"xadd".as_ptr(),
        key,
    );
    raw::RedisModule_ReplyWithMap.unwrap()(ctx, 5 as c_long);
    reply_text(ctx, b"ticket");
    reply_text(ctx, b"42.9f86d081884c7d65");
    reply_text(ctx, b"position");
    reply_int(ctx, 42);
    reply_text(ctx, b"state");
    reply_text(ctx, b"waiting");
    reply_text(ctx, b"existing");
    reply_int(ctx, 0);
    reply_text(ctx, b"prequeue");
    reply_int(ctx, 0);
}

extern "C" fn write(
    ctx: *mut RedisModuleCtx,
    argv: *mut *mut RedisModuleString,
    argc: c_int,
) -> c_int {
    unsafe {
        if argc != 3 {
            return raw::RedisModule_WrongArity.unwrap()(ctx);
        }
        let argv = std::slice::from_raw_parts(argv, argc as usize);
        let key = open(ctx, argv[1], true);
        // One entry of 6 field/value pairs: the words are made once per call like any
        // module that does not cache them; the user is the argument itself.
        let make =
            |b: &[u8]| raw::RedisModule_CreateString.unwrap()(ctx, b.as_ptr().cast(), b.len());
        let mut fields: [*mut RedisModuleString; 12] = [
            make(b"type"),
            make(b"joined"),
            make(b"serial"),
            make(b"42"),
            make(b"user"),
            argv[2],
            make(b"at"),
            make(b"1800000000000"),
            make(b"data.a"),
            make(b"a"),
            make(b"data.b"),
            make(b"b"),
        ];
        let mut id = raw::RedisModuleStreamID { ms: 0, seq: 0 };
        let added = raw::RedisModule_StreamAdd.unwrap()(
            key,
            raw::REDISMODULE_STREAM_ADD_AUTOID as c_int,
            &mut id,
            fields.as_mut_ptr(),
            6,
        );
        raw::RedisModule_CloseKey.unwrap()(key);
        for (i, f) in fields.iter().enumerate() {
            if i != 5 {
                raw::RedisModule_FreeString.unwrap()(ctx, *f);
            }
        }
        if added != OK {
            raw::RedisModule_ReplyWithError.unwrap()(ctx, c"ERR not a stream".as_ptr());
            return OK;
        }
        let id = format!("{}-{}", id.ms, id.seq);
        replicate_notify_reply(ctx, argv[1], id.as_bytes(), bytes(argv[2]));
    }
    OK
}

extern "C" fn touch(
    ctx: *mut RedisModuleCtx,
    argv: *mut *mut RedisModuleString,
    argc: c_int,
) -> c_int {
    unsafe {
        if argc != 2 {
            return raw::RedisModule_WrongArity.unwrap()(ctx);
        }
        let argv = std::slice::from_raw_parts(argv, argc as usize);
        let key = open(ctx, argv[1], true);
        raw::RedisModule_CloseKey.unwrap()(key);
        replicate_notify_reply(
            ctx,
            argv[1],
            b"1800000000000-0",
            b"00000000-0000-4000-8000-000000000000",
        );
    }
    OK
}

extern "C" fn apply(
    ctx: *mut RedisModuleCtx,
    _argv: *mut *mut RedisModuleString,
    _argc: c_int,
) -> c_int {
    unsafe {
        raw::RedisModule_ReplyWithError.unwrap()(
            ctx,
            c"ERR FLOOR.APPLY is only a replicated effect".as_ptr(),
        );
    }
    OK
}

fn init(ctx: &Context, _args: &[RedisString]) -> Status {
    type Cmd = extern "C" fn(*mut RedisModuleCtx, *mut *mut RedisModuleString, c_int) -> c_int;
    let commands: [(&std::ffi::CStr, Cmd, &std::ffi::CStr); 5] = [
        (c"floor.noop", noop, c"readonly fast"),
        (c"floor.read", read, c"readonly fast"),
        (c"floor.write", write, c"write deny-oom fast"),
        (c"floor.touch", touch, c"write deny-oom fast"),
        (c"floor.apply", apply, c"write"),
    ];
    for (name, f, flags) in commands {
        let created = unsafe {
            raw::RedisModule_CreateCommand.unwrap()(
                ctx.ctx,
                name.as_ptr(),
                Some(f),
                flags.as_ptr(),
                1,
                1,
                1,
            )
        };
        if created != OK {
            return Status::Err;
        }
    }
    Status::Ok
}

redis_module! {
    name: "seatqfloor",
    version: 1,
    allocator: (redis_module::alloc::RedisAlloc, redis_module::alloc::RedisAlloc),
    data_types: [],
    init: init,
}
