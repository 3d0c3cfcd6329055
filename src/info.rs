//! `INFO seatq`: one line per metric, dict fields for labelled families. docs/operations.md
//! lists every field with the Prometheus metric the exporter makes of it.

use redis_module::raw;

use crate::metrics::{self, LATENCY_BOUNDS_US};

pub extern "C" fn info(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: std::ffi::c_int) {
    let _ = std::panic::catch_unwind(|| {
        raw::add_info_section(ctx, None);
        let [events, waiting, sessions, holds] = metrics::gauges();
        for (name, value) in [
            ("events", events),
            ("tickets_waiting", waiting),
            ("sessions", sessions),
            ("holds", holds),
        ] {
            raw::add_info_field_long_long(ctx, name, value);
        }
        raw::add_info_field_unsigned_long_long(
            ctx,
            "journal_entries_total",
            metrics::JOURNAL_ENTRIES.load(std::sync::atomic::Ordering::Relaxed),
        );
        let snapshot = metrics::snapshot();
        raw::add_info_field_unsigned_long_long(ctx, "timer_runs_total", snapshot.timer.calls);
        raw::add_info_field_unsigned_long_long(
            ctx,
            "timer_runs_usec",
            snapshot.timer.sum_ns / 1000,
        );
        add_latency(ctx, "timer_runs_latency", &snapshot.timer);
        raw::add_info_begin_dict_field(ctx, "effects_total");
        for (name, n) in metrics::effects() {
            raw::add_info_field_unsigned_long_long(ctx, name, n);
        }
        raw::add_info_end_dict_field(ctx);
        raw::add_info_begin_dict_field(ctx, "errors_total");
        for (code, n) in &snapshot.errors {
            raw::add_info_field_unsigned_long_long(ctx, code, *n);
        }
        raw::add_info_end_dict_field(ctx);
        for (command, stats) in &snapshot.commands {
            let name = command.replace('.', "_");
            raw::add_info_begin_dict_field(ctx, &format!("cmd_{name}"));
            raw::add_info_field_unsigned_long_long(ctx, "calls", stats.calls);
            raw::add_info_field_unsigned_long_long(ctx, "failed", stats.failed);
            raw::add_info_field_unsigned_long_long(ctx, "usec", stats.sum_ns / 1000);
            raw::add_info_end_dict_field(ctx);
            add_latency(ctx, &format!("latency_{name}"), stats);
        }
    });
}

/// Cumulative counts per upper bound (microseconds), Prometheus histogram style.
fn add_latency(ctx: *mut raw::RedisModuleInfoCtx, field: &str, stats: &metrics::CallStats) {
    raw::add_info_begin_dict_field(ctx, field);
    for (bound, count) in LATENCY_BOUNDS_US
        .iter()
        .map(|b| b.to_string())
        .chain(["inf".to_string()])
        .zip(stats.cumulative())
    {
        raw::add_info_field_unsigned_long_long(ctx, &format!("le_{bound}"), count);
    }
    raw::add_info_end_dict_field(ctx);
}
