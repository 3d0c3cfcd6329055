//! The module entry point: the data type, commands, configs, the timer and the keyspace
//! notifications seatq listens to.

use std::sync::atomic::Ordering;

use redis_module::configuration::{register_i64_configuration, ConfigurationFlags};
use redis_module::{raw, redis_module, Context, NotifyEvent, RedisString, Status};

use crate::config::{DEFAULTS, SETTINGS};
use crate::datatype::EVENT_TYPE;
use crate::ffi::{api, Ctx};

/// Module arguments are `name value` pairs of settings (`heartbeat-ms 30000`, with or without the
/// `seatq.` prefix). They set the defaults before configs from redis.conf are applied.
fn parse_module_args(ctx: &Context, args: &[RedisString]) -> Result<Vec<i64>, String> {
    let mut defaults: Vec<i64> = SETTINGS.iter().map(|s| s.default).collect();
    if args.len() % 2 != 0 {
        return Err("module arguments must be name value pairs".into());
    }
    for pair in args.chunks(2) {
        let name = pair[0].to_string_lossy();
        let name = name
            .strip_prefix("seatq.")
            .unwrap_or(&name)
            .to_ascii_lowercase();
        let index = SETTINGS
            .iter()
            .position(|s| s.module_config == name)
            .ok_or_else(|| format!("unknown seatq module argument '{name}'"))?;
        let spec = &SETTINGS[index];
        let value: i64 = pair[1]
            .to_string_lossy()
            .parse()
            .ok()
            .filter(|v| (spec.min..=spec.max).contains(v))
            .ok_or_else(|| {
                format!(
                    "seatq.{name} must be an integer from {} to {}",
                    spec.min, spec.max
                )
            })?;
        defaults[index] = value;
    }
    ctx.log_debug(&format!("seatq defaults: {defaults:?}"));
    Ok(defaults)
}

fn init(ctx: &Context, args: &[RedisString]) -> Status {
    let defaults = match parse_module_args(ctx, args) {
        Ok(d) => d,
        Err(e) => {
            ctx.log_warning(&e);
            return Status::Err;
        }
    };
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
    // Not an event setting: how often the timer sweeps (every event, every tick).
    register_i64_configuration(
        ctx,
        "timer-interval-ms",
        &crate::timer::TICK_MS,
        100,
        10,
        1000,
        ConfigurationFlags::DEFAULT,
        None,
    );
    unsafe {
        if api!(RedisModule_LoadConfigs)(ctx.ctx) != raw::REDISMODULE_OK as i32 {
            ctx.log_warning("seatq: invalid seatq.* configuration");
            return Status::Err;
        }
        // Short reads while loading (RESTORE of a truncated payload, diskless sync) become
        // errors instead of aborting the server.
        api!(RedisModule_SetModuleOptions)(
            ctx.ctx,
            raw::REDISMODULE_OPTIONS_HANDLE_IO_ERRORS as i32,
        );
    }
    raw::register_info_function(ctx.ctx, Some(info));
    if let Err(e) = crate::commands::register(ctx.ctx) {
        ctx.log_warning(&format!("seatq: {e}"));
        return Status::Err;
    }
    crate::timer::start(&Ctx(ctx.ctx));
    Status::Ok
}

/// `INFO seatq`: field names are documented in the README with their Prometheus names.
extern "C" fn info(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: std::ffi::c_int) {
    let _ = std::panic::catch_unwind(|| {
        use crate::metrics::{self, *};
        raw::add_info_section(ctx, None);
        let [events, waiting, passes, holds] = metrics::gauges();
        for (name, value) in [
            ("events", events),
            ("tickets_waiting", waiting),
            ("passes_active", passes),
            ("holds_active", holds),
        ] {
            raw::add_info_field_long_long(ctx, name, value);
        }
        for (name, counter) in [
            ("holds_expired_total", &HOLDS_EXPIRED),
            ("passes_issued_total", &PASSES_ISSUED),
            ("tickets_expired_total", &TICKETS_EXPIRED),
            ("enqueue_duplicates_total", &DUPLICATES),
            ("journal_entries_total", &JOURNAL_ENTRIES),
            ("timer_runs_total", &TIMER_RUNS),
        ] {
            raw::add_info_field_unsigned_long_long(ctx, name, counter.load(Ordering::Relaxed));
        }
        let Snapshot { commands, errors } = metrics::snapshot();
        let usec = |ns: u64| format!("{:.2}", ns as f64 / 1000.0);
        for (command, stats) in commands {
            let h = &stats.latency;
            raw::add_info_begin_dict_field(ctx, &format!("cmd_{}", command.replace('.', "_")));
            raw::add_info_field_unsigned_long_long(ctx, "calls", h.count);
            raw::add_info_field_unsigned_long_long(ctx, "failed", stats.failed);
            raw::add_info_field_str(ctx, "usec", &usec(h.sum_ns));
            for (name, q) in [("p50_usec", 0.5), ("p95_usec", 0.95), ("p99_usec", 0.99)] {
                raw::add_info_field_str(ctx, name, &usec(h.quantile(q)));
            }
            raw::add_info_field_str(ctx, "max_usec", &usec(h.max_ns));
            raw::add_info_end_dict_field(ctx);
        }
        for (code, count) in errors {
            raw::add_info_begin_dict_field(ctx, &format!("errors_{code}"));
            raw::add_info_field_unsigned_long_long(ctx, "count", count);
            raw::add_info_end_dict_field(ctx);
        }
    });
}

fn on_keyspace_event(ctx: &Context, _kind: NotifyEvent, event: &str, key: &[u8]) {
    crate::timer::on_moved_key(&Ctx(ctx.ctx), event, key);
}

redis_module! {
    name: "seatq",
    version: 1,
    allocator: (crate::heap::Shelved<crate::heap::RedisHeap>, crate::heap::Shelved(crate::heap::RedisHeap)),
    data_types: [EVENT_TYPE],
    init: init,
    event_handlers: [
        [@GENERIC: on_keyspace_event],
    ],
}
