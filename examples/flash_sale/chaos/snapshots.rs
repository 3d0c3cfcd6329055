//! Every RDB file copied during the run must load: each is loaded by a fresh server with the
//! module (redis-check-rdb does not load modules), which must start, hold the event, answer
//! QUEUE.INFO and SEAT.INFO on it, and log no error.

use std::time::Duration;

use seatq_testkit::server::Server;

use super::Chaos;
use crate::reply::field_int;
use crate::sale::Sale;

/// Log lines that mean the load went wrong.
const BAD: [&str; 7] = [
    "Short read",
    "Bad file format",
    "Internal error in RDB",
    "Error reading",
    "Error loading",
    "Fatal error",
    "RDB loading failed",
];

/// Whether a log line reports a problem: one of `BAD`, or a warning of the module.
fn bad(line: &str) -> bool {
    BAD.iter().any(|b| line.contains(b))
        || (line.contains(" # ") && line.contains("seatq") && !line.contains("defrag callbacks"))
}

/// Loads each snapshot; returns how many loaded and a line per one that did not.
pub fn load_all(chaos: &Chaos, sale: &Sale) -> (usize, Vec<String>) {
    let mut loaded = 0;
    let mut problems = Vec::new();
    for (k, snapshot) in chaos.snapshots.iter().enumerate() {
        let dir = chaos.dir.join(format!("load-{k:02}"));
        let _ = std::fs::create_dir_all(&dir);
        let name = snapshot
            .path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let dir_arg = dir.to_string_lossy().into_owned();
        let extra = [
            "--dir",
            &dir_arg,
            "--dbfilename",
            &name,
            "--appendonly",
            "no",
        ];
        if let Err(e) = std::fs::copy(&snapshot.path, dir.join(&name)) {
            problems.push(format!("{}: cannot copy: {e}", snapshot.origin));
            continue;
        }
        let result =
            Server::try_start(chaos.kind, &extra, Duration::from_secs(120)).and_then(|server| {
                let mut con = server.connection();
                let info = seatq_testkit::run(&mut con, &["QUEUE.INFO", &sale.key])
                    .map_err(|e| format!("QUEUE.INFO: {e}"))?;
                seatq_testkit::run(&mut con, &["SEAT.INFO", &sale.key])
                    .map_err(|e| format!("SEAT.INFO: {e}"))?;
                let log = server.log();
                if let Some(line) = log.lines().find(|l| bad(l)) {
                    return Err(format!("log: {line}"));
                }
                Ok(field_int(&info, "joined_total").unwrap_or(0))
            });
        let _ = std::fs::remove_dir_all(&dir);
        match result {
            Ok(joined) => {
                loaded += 1;
                println!(
                    "  loads  {} ({:.1} MB, {joined} joined)",
                    snapshot.origin,
                    std::fs::metadata(&snapshot.path).map_or(0, |m| m.len()) as f64 / 1e6
                );
            }
            Err(e) => {
                println!("  FAILED {}: {e}", snapshot.origin);
                problems.push(format!("{}: {e}", snapshot.origin));
            }
        }
    }
    (loaded, problems)
}
