//! Servers whose clocks disagree, as real machines' do: the `seatq-fakeclock` library
//! (crates/fakeclock, loaded with `LD_PRELOAD`) shifts a server's wall clock by a fixed offset.
//! The monotonic clock is left alone, so the server's timers keep their pace; only what reads
//! the time of day (stream IDs, `TIME`, the module's timestamps) sees the offset.

use std::sync::OnceLock;

use crate::server::build_workspace_library;

/// The environment that runs a server with its wall clock `offset_ms` ahead of the machine's
/// (behind when negative), for a [`crate::server::Wrap`]'s `env`.
pub fn offset(offset_ms: f64) -> Vec<(String, String)> {
    static LIBRARY: OnceLock<String> = OnceLock::new();
    let library = LIBRARY.get_or_init(|| {
        build_workspace_library("seatq-fakeclock", "libseatq_fakeclock.so")
            .display()
            .to_string()
    });
    vec![
        ("LD_PRELOAD".into(), library.clone()),
        (
            "SEATQ_CLOCK_OFFSET_US".into(),
            format!("{}", (offset_ms * 1000.0).round() as i64),
        ),
    ]
}

/// How far `con`'s server clock (`TIME`) is ahead of this process's, in ms: the best of a few
/// round trips, each read against the middle of its trip.
pub fn measured_offset_ms(con: &mut redis::Connection) -> f64 {
    let now_us = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as f64
    };
    (0..20)
        .map(|_| {
            let sent = now_us();
            let (s, us): (u64, u64) = redis::cmd("TIME").query(con).expect("TIME");
            let received = now_us();
            let server = (s * 1_000_000 + us) as f64;
            (received - sent, (server - (sent + received) / 2.0) / 1000.0)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, offset)| offset)
        .unwrap()
}
