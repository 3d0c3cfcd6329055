//! The module entry point: the data type, commands, configs, the timer, INFO and the server
//! and keyspace events seatq follows.

use std::sync::atomic::Ordering;

use redis_module::configuration::{
    register_i64_configuration, register_string_configuration, ConfigurationContext,
    ConfigurationFlags, ConfigurationValue,
};
use redis_module::{raw, redis_module, Context, NotifyEvent, RedisError, RedisString, Status};

use crate::config::{set_pass_keys, DEFAULTS, SETTINGS};
use crate::datatype::EVENT_TYPE;
use crate::ffi::{events, Ctx};
use crate::schedule;

/// The upkeep timer's longest sleep: not an event setting.
const TIMER_INTERVAL: (&str, i64, i64, i64) = ("timer-interval-ms", 100, 10, 1000);

/// What the module arguments set: the defaults of event settings and the timer interval.
struct ModuleArgs {
    defaults: Vec<i64>,
    timer_interval_ms: i64,
}

/// Module arguments are `name value` pairs of integer configs (`heartbeat-ms 30000`, with or
/// without the `seatq.` prefix), applied before configs from redis.conf. `pass-keys` is refused
/// here: MODULE LIST shows module arguments to anyone allowed to run it.
fn parse_module_args(args: &[RedisString]) -> Result<ModuleArgs, String> {
    let mut parsed = ModuleArgs {
        defaults: SETTINGS.iter().map(|s| s.default).collect(),
        timer_interval_ms: TIMER_INTERVAL.1,
    };
    if args.len() % 2 != 0 {
        return Err("module arguments must be name value pairs".into());
    }
    for pair in args.chunks(2) {
        let name = pair[0].to_string_lossy();
        let name = name
            .strip_prefix("seatq.")
            .unwrap_or(&name)
            .to_ascii_lowercase();
        if name == "pass-keys" {
            return Err("give seatq.pass-keys in redis.conf (or CONFIG SET), not as a module argument: MODULE LIST would show the keys".into());
        }
        let (slot, min, max) = match SETTINGS.iter().position(|s| s.module_config == name) {
            Some(i) => (&mut parsed.defaults[i], SETTINGS[i].min, SETTINGS[i].max),
            None if name == TIMER_INTERVAL.0 => (
                &mut parsed.timer_interval_ms,
                TIMER_INTERVAL.2,
                TIMER_INTERVAL.3,
            ),
            None => return Err(format!("unknown seatq module argument '{name}'")),
        };
        *slot = pair[1]
            .to_string_lossy()
            .parse()
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| format!("seatq.{name} must be an integer from {min} to {max}"))?;
    }
    Ok(parsed)
}

/// `seatq.pass-keys` as a module config: validated on every set, so a bad key list is refused
/// by CONFIG SET and stops the server at start (redis.conf).
struct PassKeysConfig;

impl ConfigurationValue<RedisString> for PassKeysConfig {
    fn get(&self, _ctx: &ConfigurationContext) -> RedisString {
        RedisString::create(None, crate::config::pass_keys_text().as_str())
    }

    fn set(&self, _ctx: &ConfigurationContext, value: RedisString) -> Result<(), RedisError> {
        set_pass_keys(value.try_as_str()?).map_err(RedisError::String)
    }
}

static PASS_KEYS_CONFIG: PassKeysConfig = PassKeysConfig;

fn init(ctx: &Context, args: &[RedisString]) -> Status {
    match try_init(ctx, args) {
        Ok(()) => Status::Ok,
        Err(e) => {
            ctx.log_warning(&format!("seatq: {e}"));
            Status::Err
        }
    }
}

fn try_init(ctx: &Context, args: &[RedisString]) -> Result<(), String> {
    let ModuleArgs {
        defaults,
        timer_interval_ms,
    } = parse_module_args(args)?;
    EVENT_TYPE
        .redis_type()
        .create_data_type(ctx.ctx)
        .map_err(str::to_string)?;
    for (i, spec) in SETTINGS.iter().enumerate() {
        DEFAULTS[i].store(defaults[i], Ordering::Relaxed);
        register_i64_configuration(
            ctx,
            spec.module_config,
            &DEFAULTS[i],
            defaults[i],
            spec.min,
            spec.max,
            ConfigurationFlags::DEFAULT,
            None,
        );
    }
    crate::timer::TICK_MS.store(timer_interval_ms, Ordering::Relaxed);
    register_i64_configuration(
        ctx,
        TIMER_INTERVAL.0,
        &crate::timer::TICK_MS,
        timer_interval_ms,
        TIMER_INTERVAL.2,
        TIMER_INTERVAL.3,
        ConfigurationFlags::DEFAULT,
        None,
    );
    register_string_configuration(
        ctx,
        "pass-keys",
        &PASS_KEYS_CONFIG,
        "",
        ConfigurationFlags::SENSITIVE,
        None,
    );
    let ctx_raw = Ctx(ctx.ctx);
    crate::ffi::load_configs_and_set_options(&ctx_raw)?;
    raw::register_info_function(ctx.ctx, Some(crate::info::info));
    crate::ffi::command::register(
        ctx.ctx,
        crate::commands::COMMANDS,
        crate::commands::ACL_CATEGORY,
    )?;
    events::subscribe(
        &ctx_raw,
        events::Handlers {
            swap_db: |a, b| schedule::with(|s| s.swap_db(a, b)),
            flush_db: |db| schedule::with(|s| s.flush_db(db)),
        },
    )?;
    crate::timer::start(&ctx_raw);
    Ok(())
}

fn on_keyspace_event(ctx: &Context, _kind: NotifyEvent, event: &str, key: &[u8]) {
    // An event renamed, copied or moved: its upkeep is looked at again under its new name.
    if matches!(event, "rename_to" | "copy_to" | "move_to") {
        let ctx = Ctx(ctx.ctx);
        let db = ctx.selected_db();
        schedule::with(|s| s.set(db, key, Some(0)));
    }
}

redis_module! {
    name: "seatq",
    version: 2,
    allocator: (crate::ffi::heap::Shelved<crate::ffi::heap::RedisHeap>, crate::ffi::heap::Shelved(crate::ffi::heap::RedisHeap)),
    data_types: [],
    init: init,
    event_handlers: [
        [@GENERIC: on_keyspace_event],
    ],
}
