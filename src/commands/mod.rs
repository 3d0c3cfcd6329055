//! The command layer: argument parsing, replies and registration. Handlers are thin: they
//! parse, ask the domain (`Event`) for a plan, commit it through `store`, and reply.

mod apply;
mod args;
mod queue;
mod seats;

use std::ffi::{c_int, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use redis_module::raw;

use crate::error::SeatqError;
use crate::ffi::{api, bytes_of, Ctx, RawCtx, RawString};

/// A command's arguments: the raw module strings (for keys) and their bytes.
pub struct Args<'a> {
    pub raw: &'a [RawString],
    pub bytes: Vec<&'a [u8]>,
}

impl Args<'_> {
    pub fn key(&self) -> RawString {
        self.raw[1]
    }
}

type Handler = fn(&Ctx, &Args) -> Result<(), SeatqError>;

/// Runs a handler with a panic guard (a bug answers an error instead of aborting Redis) and
/// records its latency and outcome for INFO seatq.
fn dispatch(
    ctx: RawCtx,
    argv: *mut RawString,
    argc: c_int,
    handler: Handler,
    name: &'static str,
) -> c_int {
    let started = std::time::Instant::now();
    let ctx = Ctx(ctx);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let raw = unsafe { std::slice::from_raw_parts(argv, argc.max(0) as usize) };
        let args = Args {
            raw,
            bytes: raw.iter().map(|&s| bytes_of(s)).collect(),
        };
        handler(&ctx, &args)
    }));
    let error = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error),
        Err(panic) => Some(SeatqError::Internal(
            panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unexpected panic".into()),
        )),
    };
    if let Some(error) = &error {
        ctx.reply().error(error);
    }
    crate::metrics::record_call(
        name,
        started.elapsed().as_nanos() as u64,
        error.as_ref().map(SeatqError::code),
    );
    raw::REDISMODULE_OK as c_int
}

#[derive(Clone, Copy)]
pub enum ArgKind {
    Key,
    String,
    Integer,
    Token,
    OneOf,
    Block,
}

/// One argument of COMMAND DOCS.
pub struct ArgDoc {
    pub name: &'static str,
    pub kind: ArgKind,
    pub token: Option<&'static str>,
    pub optional: bool,
    pub multiple: bool,
    pub sub: &'static [ArgDoc],
}

impl ArgDoc {
    pub const fn new(name: &'static str, kind: ArgKind) -> Self {
        Self {
            name,
            kind,
            token: None,
            optional: false,
            multiple: false,
            sub: &[],
        }
    }
    pub const fn token(mut self, token: &'static str) -> Self {
        self.token = Some(token);
        self
    }
    pub const fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
    pub const fn multiple(mut self) -> Self {
        self.multiple = true;
        self
    }
    pub const fn sub(mut self, sub: &'static [ArgDoc]) -> Self {
        self.sub = sub;
        self
    }
}

pub const KEY: ArgDoc = ArgDoc::new("key", ArgKind::Key);

pub struct CommandSpec {
    pub name: &'static str,
    pub entry: extern "C" fn(RawCtx, *mut RawString, c_int) -> c_int,
    pub flags: &'static str,
    /// REDISMODULE_CMD_KEY_* flags of the key (always the first argument).
    pub key_flags: u32,
    pub arity: i32,
    pub summary: &'static str,
    pub complexity: &'static str,
    pub args: &'static [ArgDoc],
}

/// Declares each command's C entry point and its spec in one place.
macro_rules! commands {
    ($( $entry:ident => $handler:path, $name:literal, $flags:literal, $key_flags:expr, $arity:literal,
        $summary:literal, $complexity:literal, $args:expr; )*) => {
        $(
            extern "C" fn $entry(ctx: RawCtx, argv: *mut RawString, argc: c_int) -> c_int {
                dispatch(ctx, argv, argc, $handler, $name)
            }
        )*
        pub const COMMANDS: &[CommandSpec] = &[$(
            CommandSpec { name: $name, entry: $entry, flags: $flags, key_flags: $key_flags,
                arity: $arity, summary: $summary, complexity: $complexity, args: $args },
        )*];
    };
}

const RO: u32 = raw::REDISMODULE_CMD_KEY_RO | raw::REDISMODULE_CMD_KEY_ACCESS;
const RW_INSERT: u32 = raw::REDISMODULE_CMD_KEY_RW | raw::REDISMODULE_CMD_KEY_INSERT;
const RW_UPDATE: u32 = raw::REDISMODULE_CMD_KEY_RW | raw::REDISMODULE_CMD_KEY_UPDATE;
const RW_ACCESS_UPDATE: u32 = RW_UPDATE | raw::REDISMODULE_CMD_KEY_ACCESS;
const RW_ACCESS_DELETE: u32 =
    raw::REDISMODULE_CMD_KEY_RW | raw::REDISMODULE_CMD_KEY_ACCESS | raw::REDISMODULE_CMD_KEY_DELETE;

commands! {
    enqueue_entry => queue::enqueue, "queue.enqueue", "write deny-oom fast", RW_INSERT, -3,
        "Joins the waiting line (one live ticket per user); returns the ticket and its position.",
        "O(1) amortized", queue::ENQUEUE_ARGS;
    status_entry => queue::status, "queue.status", "readonly fast may-replicate", RW_ACCESS_UPDATE, 3,
        "Returns a ticket's state, exact position and ETA, and renews its heartbeat.",
        "O(log N) where N is the number of waiting tickets", queue::TICKET_ARGS;
    admit_entry => queue::admit, "queue.admit", "write deny-oom fast", RW_ACCESS_UPDATE, 3,
        "Admits the ticket at the front of the line within RATE/BURST and CAPACITY; returns its pass.",
        "O(log N)", queue::TICKET_ARGS;
    leave_entry => queue::leave, "queue.leave", "write fast", RW_ACCESS_DELETE, 3,
        "Leaves the waiting line.", "O(log N)", queue::TICKET_ARGS;
    dequeue_entry => queue::dequeue, "queue.dequeue", "write fast", RW_ACCESS_DELETE, -2,
        "Takes up to COUNT tickets from the head of the line (worker-driven admission).",
        "O(M log N) where M is the number of tickets taken", queue::DEQUEUE_ARGS;
    len_entry => queue::len, "queue.len", "readonly fast", RO, 2,
        "Returns the number of waiting tickets.", "O(1)", queue::KEY_ONLY;
    range_entry => queue::range, "queue.range", "readonly", RO, 4,
        "Lists waiting tickets in line order from a 0-based offset.",
        "O(M log N) where M is the count", queue::RANGE_ARGS;
    info_entry => queue::info, "queue.info", "readonly fast", RO, 2,
        "Returns the event's counters, head and tail tickets, journal key and settings.", "O(1)", queue::KEY_ONLY;
    config_entry => queue::config, "queue.config", "write deny-oom", RW_UPDATE, -3,
        "Gets or sets an event's settings (QUEUE.CONFIG key GET lists them all).",
        "O(1)", queue::CONFIG_ARGS;
    seat_add_entry => seats::add, "seat.add", "write deny-oom", RW_INSERT, -3,
        "Adds named seats, or general-admission stock with QTY n.",
        "O(N) where N is the number of seats named", seats::ADD_ARGS;
    seat_hold_entry => seats::hold, "seat.hold", "write deny-oom fast", RW_UPDATE, -4,
        "Holds seats (all or nothing) or QTY n general-admission units for a user until TTL seconds pass.",
        "O(N) where N is the number of seats named", seats::HOLD_ARGS;
    seat_release_entry => seats::release, "seat.release", "write fast", RW_UPDATE, -4,
        "Returns seats or QTY n units held by the user to stock; answers the units available.",
        "O(N) where N is the number of seats named", seats::SETTLE_ARGS;
    seat_confirm_entry => seats::confirm, "seat.confirm", "write fast", RW_UPDATE, -4,
        "Turns seats or QTY n units held by the user into sold.",
        "O(N) where N is the number of seats named", seats::SETTLE_ARGS;
    seat_status_entry => seats::status, "seat.status", "readonly fast", RO, -3,
        "Returns each seat's state, holder and hold expiry.",
        "O(N) where N is the number of seats named", seats::STATUS_ARGS;
    seat_info_entry => seats::info, "seat.info", "readonly fast", RO, 2,
        "Returns total, available, held and sold counts (named seats, general admission, both).",
        "O(1) (plus holds past their deadline not yet swept)", seats::KEY_ONLY;
    apply_entry => apply::apply, "seatq.apply", "write deny-oom", RW_UPDATE, -3,
        "Internal: applies one replicated effect (sent by the primary and written to the AOF).",
        "O(log N), O(N) for SNAPSHOT", apply::APPLY_ARGS;
}

fn c(s: &str) -> CString {
    CString::new(s).expect("static text")
}

/// Converts docs to the module API's arrays. `keep` owns the C strings until Redis has copied
/// them (RM_SetCommandInfo copies everything).
fn raw_args(
    docs: &[ArgDoc],
    keep: &mut Vec<CString>,
    arrays: &mut Vec<Vec<raw::RedisModuleCommandArg>>,
) -> *mut raw::RedisModuleCommandArg {
    let mut out: Vec<raw::RedisModuleCommandArg> = Vec::with_capacity(docs.len() + 1);
    for doc in docs {
        let mut arg: raw::RedisModuleCommandArg = unsafe { std::mem::zeroed() };
        let name = c(doc.name);
        arg.name = name.as_ptr();
        keep.push(name);
        arg.type_ = match doc.kind {
            ArgKind::Key => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY,
            ArgKind::String => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
            ArgKind::Integer => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
            ArgKind::Token => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
            ArgKind::OneOf => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_ONEOF,
            ArgKind::Block => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_BLOCK,
        };
        arg.key_spec_index = if matches!(doc.kind, ArgKind::Key) {
            0
        } else {
            -1
        };
        if let Some(token) = doc.token {
            let token = c(token);
            arg.token = token.as_ptr();
            keep.push(token);
        }
        arg.flags = (if doc.optional {
            raw::REDISMODULE_CMD_ARG_OPTIONAL
        } else {
            0
        } | if doc.multiple {
            raw::REDISMODULE_CMD_ARG_MULTIPLE
        } else {
            0
        }) as c_int;
        if !doc.sub.is_empty() {
            arg.subargs = raw_args(doc.sub, keep, arrays);
        }
        out.push(arg);
    }
    out.push(unsafe { std::mem::zeroed() });
    let p = out.as_mut_ptr();
    arrays.push(out);
    p
}

fn set_command_info(ctx: RawCtx, spec: &CommandSpec) -> Result<(), String> {
    let set_info = unsafe { raw::RedisModule_SetCommandInfo }
        .ok_or("RedisModule_SetCommandInfo unavailable")?;
    let name = c(spec.name);
    let command = unsafe { api!(RedisModule_GetCommand)(ctx, name.as_ptr()) };
    if command.is_null() {
        return Err(format!("command {} not found", spec.name));
    }
    let version = raw::RedisModuleCommandInfoVersion {
        version: 1,
        sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
        sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
        sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
    };
    let mut key_specs: [raw::RedisModuleCommandKeySpec; 2] = unsafe { std::mem::zeroed() };
    key_specs[0].flags = u64::from(spec.key_flags);
    key_specs[0].begin_search_type =
        raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX;
    key_specs[0].bs.index.pos = 1;
    key_specs[0].find_keys_type = raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE;
    key_specs[0].fk.range.lastkey = 0;
    key_specs[0].fk.range.keystep = 1;
    key_specs[0].fk.range.limit = 0;
    let mut keep = Vec::new();
    let mut arrays = Vec::new();
    let args = raw_args(spec.args, &mut keep, &mut arrays);
    let (summary, complexity, since) = (
        c(spec.summary),
        c(spec.complexity),
        c(env!("CARGO_PKG_VERSION")),
    );
    let info = raw::RedisModuleCommandInfo {
        version: &version,
        summary: summary.as_ptr(),
        complexity: complexity.as_ptr(),
        since: since.as_ptr(),
        history: ptr::null_mut(),
        tips: ptr::null(),
        arity: spec.arity,
        key_specs: key_specs.as_mut_ptr(),
        args,
    };
    if unsafe { set_info(command, &info as *const _ as *mut _) } != raw::REDISMODULE_OK as c_int {
        return Err(format!(
            "RedisModule_SetCommandInfo failed for {}",
            spec.name
        ));
    }
    Ok(())
}

/// Registers every command with its flags, key position and COMMAND DOCS information.
pub fn register(ctx: RawCtx) -> Result<(), String> {
    for spec in COMMANDS {
        let (name, flags) = (c(spec.name), c(spec.flags));
        let status = unsafe {
            api!(RedisModule_CreateCommand)(
                ctx,
                name.as_ptr(),
                Some(spec.entry),
                flags.as_ptr(),
                1,
                1,
                1,
            )
        };
        if status != raw::REDISMODULE_OK as c_int {
            return Err(format!("cannot create command {}", spec.name));
        }
        set_command_info(ctx, spec)?;
    }
    Ok(())
}
