//! `INFO seatq`: field names are documented with their Prometheus names.

use std::sync::atomic::Ordering;

use redis_module::raw;

use crate::metrics::{self, *};

pub extern "C" fn info(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: std::ffi::c_int) {
    let _ = std::panic::catch_unwind(|| {
        raw::add_info_section(ctx, None);
        let [events, waiting, sessions, holds] = metrics::gauges();
        for (name, value) in [
            ("events", events),
            ("tickets_waiting", waiting),
            ("sessions_active", sessions),
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
