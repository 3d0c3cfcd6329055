//! Command entry points and registration: argument access, the panic guard, COMMAND DOCS
//! (RM_SetCommandInfo, Redis 7.0+) and ACL categories (where the server's API has them).

use std::ffi::{c_int, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use redis_module::raw;

use super::{api, bytes_of, Ctx, RawCtx, RawString};
use crate::error::SeatqError;

/// A command's arguments: the raw module strings (for keys) and their bytes.
pub struct Args<'a> {
    raw: &'a [RawString],
    pub bytes: smallvec::SmallVec<[&'a [u8]; 12]>,
}

impl Args<'_> {
    /// The event key (every command's first argument).
    pub fn key(&self) -> RawString {
        self.raw[1]
    }
}

pub type Handler = fn(&Ctx, &Args) -> Result<(), SeatqError>;

/// Runs a handler with a panic guard (a bug answers an error instead of aborting Redis), and
/// reports its outcome to `record(name, nanoseconds, error code)`.
pub fn dispatch(
    ctx: RawCtx,
    argv: *mut RawString,
    argc: c_int,
    handler: Handler,
    name: &'static str,
    record: fn(&'static str, u64, Option<&'static str>),
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
    record(
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

/// How a command uses its key (COMMAND INFO key specs).
#[derive(Clone, Copy)]
pub enum KeyUse {
    Read,
    Insert,
    Update,
    Delete,
}

impl KeyUse {
    fn flags(self) -> u64 {
        u64::from(match self {
            KeyUse::Read => raw::REDISMODULE_CMD_KEY_RO | raw::REDISMODULE_CMD_KEY_ACCESS,
            KeyUse::Insert => raw::REDISMODULE_CMD_KEY_RW | raw::REDISMODULE_CMD_KEY_INSERT,
            KeyUse::Update => {
                raw::REDISMODULE_CMD_KEY_RW
                    | raw::REDISMODULE_CMD_KEY_UPDATE
                    | raw::REDISMODULE_CMD_KEY_ACCESS
            }
            KeyUse::Delete => {
                raw::REDISMODULE_CMD_KEY_RW
                    | raw::REDISMODULE_CMD_KEY_ACCESS
                    | raw::REDISMODULE_CMD_KEY_DELETE
            }
        })
    }
}

pub struct CommandSpec {
    pub name: &'static str,
    pub entry: extern "C" fn(RawCtx, *mut RawString, c_int) -> c_int,
    pub flags: &'static str,
    /// ACL categories besides the module's own (7.2+ and Valkey 8+ only).
    pub acl: &'static str,
    pub key_use: KeyUse,
    pub arity: i32,
    pub summary: &'static str,
    pub complexity: &'static str,
    pub args: &'static [ArgDoc],
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
        let mut flags = 0;
        if doc.optional {
            flags |= raw::REDISMODULE_CMD_ARG_OPTIONAL;
        }
        if doc.multiple {
            flags |= raw::REDISMODULE_CMD_ARG_MULTIPLE;
        }
        arg.flags = flags as c_int;
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

fn set_command_info(
    command: *mut raw::RedisModuleCommand,
    spec: &CommandSpec,
) -> Result<(), String> {
    let set_info = unsafe { raw::RedisModule_SetCommandInfo }
        .ok_or("RedisModule_SetCommandInfo unavailable")?;
    let version = raw::RedisModuleCommandInfoVersion {
        version: 1,
        sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
        sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
        sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
    };
    let mut key_specs: [raw::RedisModuleCommandKeySpec; 2] = unsafe { std::mem::zeroed() };
    key_specs[0].flags = spec.key_use.flags();
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

/// Whether this server lets modules name ACL categories (Redis 7.2+, Valkey 8+).
pub fn acl_categories_supported() -> bool {
    unsafe {
        let add = *std::ptr::addr_of!(raw::RedisModule_AddACLCategory);
        let set = *std::ptr::addr_of!(raw::RedisModule_SetCommandACLCategories);
        add.is_some() && set.is_some()
    }
}

/// Registers every command with its flags, key position, COMMAND DOCS information and, where
/// the server supports it, ACL categories (`category` plus the spec's own).
pub fn register(ctx: RawCtx, specs: &[CommandSpec], category: &str) -> Result<(), String> {
    let categories = acl_categories_supported();
    if categories {
        let name = c(category);
        if unsafe { api!(RedisModule_AddACLCategory)(ctx, name.as_ptr()) }
            != raw::REDISMODULE_OK as c_int
        {
            return Err(format!("cannot add ACL category {category}"));
        }
    }
    for spec in specs {
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
        let command = unsafe { api!(RedisModule_GetCommand)(ctx, name.as_ptr()) };
        if command.is_null() {
            return Err(format!("command {} not found", spec.name));
        }
        set_command_info(command, spec)?;
        if categories {
            let list = c(format!("{category} {}", spec.acl).trim());
            if unsafe { api!(RedisModule_SetCommandACLCategories)(command, list.as_ptr()) }
                != raw::REDISMODULE_OK as c_int
            {
                return Err(format!("cannot set the ACL categories of {}", spec.name));
            }
        }
    }
    Ok(())
}
