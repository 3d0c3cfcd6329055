//! What the server reports about itself: INFO fields, per-command time, memory, CPU and the
//! longest stall; FLUSHALL SYNC between phases.

use redis::{Connection, Value};
use seatq_testkit::info::{info_entry, info_value};
use seatq_testkit::reply::text;

pub fn info(con: &mut Connection, section: &str) -> String {
    redis::cmd("INFO").arg(section).query(con).expect("INFO")
}

/// The value of `name` in INFO `section`; "" when the server does not report it.
fn info_field(con: &mut Connection, section: &str, name: &str) -> String {
    info_value(&info(con, section), name)
        .unwrap_or_default()
        .to_string()
}

pub fn used_memory(con: &mut Connection) -> i64 {
    info_field(con, "memory", "used_memory")
        .parse()
        .expect("used_memory")
}

pub fn memory_usage(con: &mut Connection, key: &str) -> i64 {
    redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .arg("SAMPLES")
        .arg(0)
        .query::<Option<i64>>(con)
        .expect("MEMORY USAGE")
        .unwrap_or(0)
}

/// (calls, total usec) of one command since the last CONFIG RESETSTAT.
pub fn commandstat(con: &mut Connection, command: &str) -> (u64, u64) {
    let line = info_field(con, "commandstats", &format!("cmdstat_{command}"));
    let get = |key: &str| -> u64 {
        info_entry(&line, key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("calls"), get("usec"))
}

/// FLUSHALL SYNC: Valkey frees in the background by default (lazyfree-lazy-user-flush), which
/// would skew the next memory baseline and compete for CPU with the next phases.
pub fn flushall(con: &mut Connection) {
    let _: () = redis::cmd("FLUSHALL")
        .arg("SYNC")
        .query(con)
        .expect("FLUSHALL");
}

/// CPU seconds the server has used (INFO cpu), and this process (/proc/self/stat, in ticks of
/// 1/100 s).
pub fn cpu_seconds(con: &mut Connection) -> (f64, f64) {
    let info = info(con, "cpu");
    let server: f64 = ["used_cpu_sys", "used_cpu_user"]
        .iter()
        .filter_map(|name| info_value(&info, name)?.parse::<f64>().ok())
        .sum();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    (server, ticks / 100.0)
}

/// Empties the latency monitor and the slowlog, so that `longest_stall` sees one run only.
pub fn reset_stall_monitors(con: &mut Connection) {
    let _: () = redis::cmd("LATENCY")
        .arg("RESET")
        .query::<i64>(con)
        .map(|_| ())
        .expect("LATENCY RESET");
    let _: () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query(con)
        .expect("SLOWLOG RESET");
}

/// The longest event of the server's latency monitor since the reset (ms, events of 1 ms or
/// more), named by the slowest command the slowlog kept when that command explains it;
/// (0, "") when there was none.
pub fn longest_stall(con: &mut Connection) -> (i64, String) {
    // LATENCY LATEST: [event, time, latest ms, max ms, ...] per event type (Valkey adds more).
    let latest: Vec<Value> = redis::cmd("LATENCY")
        .arg("LATEST")
        .query(con)
        .expect("LATENCY LATEST");
    let events: Vec<(i64, String)> = latest
        .iter()
        .filter_map(|e| match e {
            Value::Array(f) if f.len() >= 4 => match &f[3] {
                Value::Int(max) => Some((*max, text(&f[0]))),
                _ => None,
            },
            _ => None,
        })
        .collect();
    // The slowest command the slowlog kept (threshold 1 ms): its duration (us) and name.
    let slowlog: Vec<Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(128)
        .query(con)
        .expect("SLOWLOG GET");
    let slowest = slowlog
        .iter()
        .filter_map(|entry| match entry {
            Value::Array(f) if f.len() >= 4 => match (&f[2], &f[3]) {
                (Value::Int(us), Value::Array(args)) => Some((*us, text(&args[0]))),
                _ => None,
            },
            _ => None,
        })
        .max();
    events
        .into_iter()
        .max()
        .map(|(ms, event)| match slowest {
            Some((us, name)) if us >= ms * 1000 - 1000 => (ms, name.to_uppercase()),
            _ => (ms, event),
        })
        .unwrap_or((0, String::new()))
}
