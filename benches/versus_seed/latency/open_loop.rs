//! One open-loop run: every connection sends its requests at fixed times, and each latency
//! counts from the time the request was due.

use std::time::{Duration, Instant};

use redis::Connection;
use seatq_testkit::rng::splitmix64;
use seatq_testkit::stats::percentile;

use crate::design::{Design, Op, Subject};
use crate::options::Options;
use crate::phase::failure;
use crate::seed::Scripts;
use crate::server_stats::{cpu_seconds, longest_stall, reset_stall_monitors};
use crate::wire::{decode, Wire};

/// PR_SET_TIMERSLACK: sleeps wake within microseconds instead of the default 50 us slack.
fn tight_timer_slack() {
    extern "C" {
        fn prctl(option: i32, ...) -> i32;
    }
    // SAFETY: prctl(PR_SET_TIMERSLACK, 1) only changes this thread's timer slack.
    unsafe {
        prctl(29, 1u64);
    }
}

/// One request's outcome: its kind, latency from its scheduled time, and how late it was sent.
struct Record {
    op: Op,
    latency: Duration,
    send_lag: Duration,
    failure: Option<String>,
}

pub struct LatencyRun {
    pub achieved: f64,
    /// p50, p99, p99.9, max, in ms.
    pub pct: [f64; 4],
    pub lag_p99: f64,
    /// CPU used during the run, in % of one core: the server's, and this process's.
    pub server_cpu: f64,
    pub client_cpu: f64,
    /// The longest event the server's latency monitor saw (ms, events of 1 ms or more), e.g.
    /// one slow command; 0 when none: then tail latency came from waiting, not from a stall.
    pub server_stall: (i64, String),
    pub per_op: Vec<(Op, f64, f64)>,
    pub failures: usize,
    pub first_failure: Option<String>,
}

/// A percentile of `sorted` in milliseconds; NaN without samples.
fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    percentile(sorted, q).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

/// The share of work each thread gets: the first connection sends every ADMIT (10%) in line
/// order, so each one is for the front ticket; the others send ENQUEUE : STATUS : HOLD/RELEASE
/// as 2 : 6 : 1 (20% / 60% / 10% of the total).
const MIX: [Op; 9] = [
    Op::Enqueue,
    Op::Status,
    Op::Status,
    Op::Status,
    Op::Enqueue,
    Op::Status,
    Op::Status,
    Op::Status,
    Op::Hold,
];

pub struct LatencyPlan<'a> {
    pub design: &'a Design,
    pub scripts: &'a Scripts,
    /// Prefilled users' tickets (seatq) in line order; the seed names users by number.
    pub tickets: &'a [String],
    /// First prefilled user this run admits, and the first one STATUS polls (never admitted).
    pub admit_from: usize,
    pub status_from: usize,
    pub prefilled: usize,
    /// Base number for users this run enqueues.
    pub new_users: usize,
    /// This run's number: each connection holds and releases its own seat of the run.
    pub run: usize,
    /// seatq: the pass of each connection's holder (user `HOLDER + t`), claimed beforehand.
    pub passes: &'a [String],
}

/// The user who holds and releases connection `t`'s seats.
pub const HOLDER: usize = 900_000_000;

pub fn latency_seat(run: usize, connection: usize) -> String {
    format!("L-{run}-{connection}")
}

/// Requests per second of connection `t`: the first sends the ADMITs (10% of the rate), the
/// others share the rest.
fn connection_rate(o: &Options, t: usize) -> f64 {
    if t == 0 {
        o.rate * 0.1
    } else {
        o.rate * 0.9 / (o.connections - 1) as f64
    }
}

/// Connection `t`'s requests for the whole run, built and packed before the clock starts.
fn connection_requests(o: &Options, plan: &LatencyPlan, t: usize) -> Vec<(Op, Vec<u8>)> {
    let count = (connection_rate(o, t) * o.seconds) as usize;
    let seat = latency_seat(plan.run, t);
    let mut holding = false;
    (0..count)
        .map(|k| {
            let mut op = if t == 0 {
                Op::Admit
            } else {
                MIX[(k + t) % MIX.len()]
            };
            if op == Op::Hold {
                // Strictly hold, release, hold, ...: a refusal is reported, never retried.
                if holding {
                    op = Op::Release;
                }
                holding = !holding;
            }
            let n = match op {
                Op::Admit => plan.admit_from + k,
                Op::Status => {
                    let span = (plan.prefilled - plan.status_from) as u64;
                    plan.status_from + (splitmix64((t * 1_000_000_007 + k) as u64) % span) as usize
                }
                Op::Enqueue => plan.new_users + t * 10_000_000 + k,
                Op::Hold | Op::Release => HOLDER + t,
            };
            let s = Subject {
                user: n,
                ticket: plan.tickets.get(n).map(String::as_str).unwrap_or(""),
                seat: &seat,
                pass: plan.passes.get(t).map(String::as_str).unwrap_or(""),
            };
            (
                op,
                plan.design.cmd(op, plan.scripts, &s).get_packed_command(),
            )
        })
        .collect()
}

/// One connection's share of the open loop: request k leaves at `start + offset + k / rate`
/// (or as soon as the previous reply is in, if that is later); returns the records and when
/// the last reply came.
fn run_connection(
    o: &Options,
    t: usize,
    requests: Vec<(Op, Vec<u8>)>,
    mut wire: Wire,
    start: Instant,
) -> (Vec<Record>, Instant) {
    tight_timer_slack();
    let rate = connection_rate(o, t);
    let offset = t as f64 / o.rate;
    let mut out = Vec::with_capacity(requests.len());
    let (mut raw, mut ends) = (Vec::with_capacity(4096), Vec::with_capacity(1));
    for (k, (op, bytes)) in requests.into_iter().enumerate() {
        let at = start + Duration::from_secs_f64(offset + k as f64 / rate);
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        let sent = Instant::now();
        raw.clear();
        ends.clear();
        wire.exchange(&bytes, 1, &mut raw, &mut ends);
        let done = Instant::now();
        // Cheap check on the raw reply (an error, or the seed's {0, ...}); decoded only then.
        let failure = (raw.starts_with(b"-") || raw.starts_with(b"*2\r\n:0\r\n"))
            .then(|| failure(&decode(&raw, &ends)[0]).unwrap_or_default());
        out.push(Record {
            op,
            latency: done - at,
            send_lag: sent.saturating_duration_since(at),
            failure,
        });
    }
    (out, Instant::now())
}

pub fn open_loop(con: &mut Connection, port: u16, o: &Options, plan: &LatencyPlan) -> LatencyRun {
    let cons: Vec<Wire> = (0..o.connections).map(|_| Wire::connect(port)).collect();
    let requests: Vec<Vec<(Op, Vec<u8>)>> = (0..o.connections)
        .map(|t| connection_requests(o, plan, t))
        .collect();
    reset_stall_monitors(con);
    let cpu_before = cpu_seconds(con);
    let wall = Instant::now();
    let start = Instant::now() + Duration::from_millis(50);
    let (records, elapsed) = std::thread::scope(|scope| {
        let handles: Vec<_> = cons
            .into_iter()
            .zip(requests)
            .enumerate()
            .map(|(t, (wire, requests))| {
                scope.spawn(move || run_connection(o, t, requests, wire, start))
            })
            .collect();
        let mut end = start;
        let mut all: Vec<Record> = Vec::new();
        for h in handles {
            let (records, finished) = h.join().expect("latency thread");
            end = end.max(finished);
            all.extend(records);
        }
        (all, end.saturating_duration_since(start).as_secs_f64())
    });
    let cpu_after = cpu_seconds(con);
    let server_stall = longest_stall(con);
    let wall = wall.elapsed().as_secs_f64();
    let mut latencies: Vec<Duration> = records.iter().map(|r| r.latency).collect();
    latencies.sort();
    let mut lags: Vec<Duration> = records.iter().map(|r| r.send_lag).collect();
    lags.sort();
    let per_op = Op::ALL
        .iter()
        .map(|&op| {
            let mut v: Vec<Duration> = records
                .iter()
                .filter(|r| r.op == op)
                .map(|r| r.latency)
                .collect();
            v.sort();
            (op, percentile_ms(&v, 0.5), percentile_ms(&v, 0.99))
        })
        .collect();
    let failed: Vec<&String> = records.iter().filter_map(|r| r.failure.as_ref()).collect();
    LatencyRun {
        achieved: records.len() as f64 / elapsed,
        pct: [
            percentile_ms(&latencies, 0.5),
            percentile_ms(&latencies, 0.99),
            percentile_ms(&latencies, 0.999),
            percentile_ms(&latencies, 1.0),
        ],
        lag_p99: percentile_ms(&lags, 0.99),
        server_cpu: (cpu_after.0 - cpu_before.0) / wall * 100.0,
        client_cpu: (cpu_after.1 - cpu_before.1) / wall * 100.0,
        server_stall,
        per_op,
        failures: failed.len(),
        first_failure: failed.first().map(|s| s.to_string()),
    }
}
