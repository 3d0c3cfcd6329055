//! The server under test and timed phases: a batch of commands sent in pipelines after CONFIG
//! RESETSTAT, timed by the server (INFO commandstats) and by the client.

use std::time::Instant;

use redis::{Cmd, Connection, Value};
use seatq_testkit::reply::{record_field, reply_error_line, text};
use seatq_testkit::server::Server;

use crate::design::{Design, Kind, Op, Subject};
use crate::seed::Scripts;
use crate::server_stats::commandstat;
use crate::wire::{decode, Wire};

/// Pipeline depth that fills lines (not timed).
const FILL_DEPTH: usize = 1_000;

/// The server under test: a redis-rs connection for setup and INFO, a wire for timed traffic.
pub struct Bench {
    pub server: Server,
    pub con: Connection,
    pub wire: Wire,
    pub scripts: Scripts,
}

#[derive(Clone, Default)]
pub struct Sample {
    /// Server time per call (INFO commandstats usec / calls).
    pub usec: f64,
    /// Calls per second seen by the client.
    pub ops_s: f64,
    pub failures: usize,
    pub first_failure: Option<String>,
}

/// A refusal: a server error, or the seed's `{0, 'CODE'}` reply.
pub fn failure(v: &Value) -> Option<String> {
    reply_error_line(v).or_else(|| match v {
        Value::Array(items) if matches!(items.first(), Some(Value::Int(0))) => {
            Some(items.get(1).map(text).unwrap_or_default())
        }
        _ => None,
    })
}

/// The `ticket` field of a seatq record.
pub fn ticket_of(v: &Value) -> String {
    record_field(v, "ticket")
        .map(text)
        .unwrap_or_else(|| panic!("no ticket in {v:?}"))
}

/// Sends `cmds` in pipelines of `depth` (packed before the clock starts) after CONFIG
/// RESETSTAT; returns the timing and every reply.
pub fn run_phase(b: &mut Bench, stat: &str, depth: usize, cmds: &[Cmd]) -> (Sample, Vec<Value>) {
    let batches: Vec<(Vec<u8>, usize)> = cmds
        .chunks(depth)
        .map(|c| {
            let bytes = c.iter().flat_map(|c| c.get_packed_command()).collect();
            (bytes, c.len())
        })
        .collect();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut b.con)
        .expect("RESETSTAT");
    let mut out = Vec::with_capacity(cmds.len() * 64);
    let mut ends = Vec::with_capacity(cmds.len());
    let start = Instant::now();
    for (bytes, n) in &batches {
        b.wire.exchange(bytes, *n, &mut out, &mut ends);
    }
    let secs = start.elapsed().as_secs_f64();
    let (calls, usec) = commandstat(&mut b.con, stat);
    let replies = decode(&out, &ends);
    let mut sample = Sample {
        usec: usec as f64 / calls.max(1) as f64,
        ops_s: cmds.len() as f64 / secs,
        ..Sample::default()
    };
    for r in &replies {
        if let Some(f) = failure(r) {
            sample.failures += 1;
            sample.first_failure.get_or_insert(f);
        }
    }
    if calls != cmds.len() as u64 {
        sample.failures += 1;
        sample.first_failure.get_or_insert(format!(
            "commandstats counted {calls} {stat} calls for {} sent",
            cmds.len()
        ));
    }
    (sample, replies)
}

/// Enqueues users `range` through `design` in deep pipelines (not timed); seatq's tickets.
pub fn fill(b: &mut Bench, design: &Design, range: std::ops::Range<usize>) -> Vec<String> {
    let mut tickets = Vec::new();
    let users: Vec<usize> = range.collect();
    for chunk in users.chunks(FILL_DEPTH) {
        let bytes: Vec<u8> = chunk
            .iter()
            .flat_map(|&n| {
                let s = Subject {
                    user: n,
                    ticket: "",
                    seat: "",
                    pass: "",
                };
                design.cmd(Op::Enqueue, &b.scripts, &s).get_packed_command()
            })
            .collect();
        let (mut out, mut ends) = (Vec::new(), Vec::new());
        b.wire.exchange(&bytes, chunk.len(), &mut out, &mut ends);
        let replies = decode(&out, &ends);
        if let Some(f) = replies.iter().find_map(failure) {
            panic!("filling {}: {f}", design.label);
        }
        if design.kind == Kind::Seatq {
            tickets.extend(replies.iter().map(ticket_of));
        }
    }
    tickets
}

/// The order in which round `round` runs `n` designs: rotated each round, so no design always
/// runs right after the same other one.
pub fn rotation(n: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |i| (i + round) % n)
}
