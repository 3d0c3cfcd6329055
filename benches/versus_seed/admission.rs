//! Section `admission` (issue 13, "Measured, not asserted"): the server-called line under
//! simulated users. Per cell (RATE x client delay x abandon share) one event with `BURST` 10,
//! `HEARTBEAT` 15 s, `CLAIM-TTL` 10 s and a `CAPACITY` with room (below), paused while the
//! cell's users join, then resumed: the sale starts.
//!
//! Users are simulated by `THREADS` threads, each with one connection and an event loop over
//! its users' due times (one pipeline per turn of the loop with every request that is due),
//! never a thread per user. A user polls `QUEUE.STATUS <ticket>` like a browser, every 2-5 s
//! (uniformly drawn per poll, the first one within 5 s of the start); once `admitted` it claims
//! with `QUEUE.ADMIT`, shops 1-3 s and ends its session with `QUEUE.LEAVE`. The client delay
//! `d` is a one-way latency: a request reaches the server `d` ms after the user decides, the
//! reply reaches the user `d` ms after the server answered. An abandoning user (0, 5 or 20%,
//! drawn per user) stops at a moment drawn uniformly between the start and 5 s after its
//! expected call (position / RATE), unless it has claimed by then: it is a no-show if the
//! server calls it before its heartbeat lapses, and is never called (expired) otherwise.
//!
//! Everything about calls is measured from the event's journal, on the server's clock
//! (`admitted` entries' IDs), never from the client:
//!
//! - admissions/s: the calls after the start-up burst (the bucket, max(`BURST`, RATE/100)
//!   calls, excluded and shown apart) until the line first holds fewer than
//!   max(bucket, RATE/10) waiting tickets (100 ms of calls): "while enough users wait"; and
//!   the same with the machine's stalls (below) taken out of the window: each "machine
//!   stalled" gap's part beyond the bucket's span, the time no server could have called in;
//! - the longest gap between consecutive calls in that window, and the gaps longer than the
//!   bucket's span (bucket / RATE: what the calls after it cannot catch up on) with their
//!   cause, from the state the previous call left: `CAPACITY` full with an unclaimed session (a no-show holds
//!   the place), `CAPACITY` full, line empty; else from a probe that sends `PING` every 2 ms
//!   on its own connection: "machine stalled" when it sent fewer than one PING per 4 ms of
//!   the gap (the client machine did not run it) or a PING waited half the gap (the server
//!   did not run), else "server answered, did not call" (what the module would be to blame
//!   for);
//! - the most live sessions at once (`admitted` minus `session_ended`) against `CAPACITY`;
//! - line order: every call must take the first waiting ticket (joins, leaves and expiries
//!   replayed); a ticket passed over must be journaled `expired` afterwards (its heartbeat had
//!   lapsed), and no ended ticket is ever called;
//! - ETA error: each ticket's `eta_ms` at its first poll after the start, against the time
//!   from that poll (the client's receipt of the reply) to its `admitted` entry;
//! - the client's own health: how late requests went out against their due time (p99,
//!   counting requests still due when the run stopped), present (non-abandoning) users whose
//!   ticket lapsed or whose call went unclaimed: the client, not the module, fell behind.
//!
//! Users per cell: enough for `--admission-seconds` (W, default 20) of calls at RATE with 10%
//! to spare, more by the abandon share (abandoners may lapse instead of being called):
//! ceil(RATE x W x 1.1 / (1 - abandon)) + bucket, within 1,000 to 100,000. At RATE 10,000 the
//! 100,000 cap makes the window about 8-10 s. `CAPACITY` is twice the live sessions expected
//! in a steady state (a present user holds a place ~4.5 s: poll wait, claim, shopping; a
//! no-show 10 s), rounded up to 100, so that RATE, not CAPACITY, is the binding limit: the
//! peak is shown against it.
//!
//! `--admission-cells RATE:DELAY:ABANDON,...` runs a subset; each part is a number or `*`
//! (every grid value), e.g. `100:*:0,10000:20:20`.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{Connection, Value};
use seatq_testkit::journal::journal_range;
use seatq_testkit::reply::{int, record_field, reply_error, reply_error_line, text};
use seatq_testkit::rng::Rng;
use seatq_testkit::stats::percentile;

use crate::options::Options;
use crate::phase::Bench;
use crate::progress;
use crate::server_stats::{cpu_seconds, flushall, longest_stall, reset_stall_monitors};
use crate::targets::Findings;

const RATES: [u64; 3] = [100, 1_000, 10_000];
const DELAYS_MS: [u64; 4] = [0, 1, 5, 20];
const ABANDON_PCT: [u64; 3] = [0, 5, 20];
const MIN_USERS: usize = 1_000;
const MAX_USERS: usize = 100_000;
const BURST: u64 = 10;
const HEARTBEAT_MS: u64 = 15_000;
const CLAIM_TTL_MS: u64 = 10_000;
/// A browser's polling interval, drawn per poll.
const POLL_MS: (u64, u64) = (2_000, 5_000);
/// How long a claimed user shops before leaving.
const SHOP_MS: (u64, u64) = (1_000, 3_000);
/// How long a present user holds a place on average (poll wait, claim, shopping), for CAPACITY.
const PRESENT_HOLD_S: f64 = 4.5;
const THREADS: usize = 2;
const MAX_BATCH: usize = 1_000;
/// The budget's catch-up: calls due within this much of a late step are not lost.
const TICK_ALLOWANCE_MS: u64 = 10;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Cell {
    rate: u64,
    delay_ms: u64,
    abandon_pct: u64,
}

impl Cell {
    fn bucket(&self) -> u64 {
        BURST.max(self.rate * TICK_ALLOWANCE_MS / 1000)
    }

    fn users(&self, window_s: f64) -> usize {
        let keep = 1.0 - self.abandon_pct as f64 / 100.0;
        let n = (self.rate as f64 * window_s * 1.1 / keep).ceil() as usize + self.bucket() as usize;
        n.clamp(MIN_USERS, MAX_USERS)
    }

    fn capacity(&self) -> u64 {
        let a = self.abandon_pct as f64 / 100.0;
        let hold_s = PRESENT_HOLD_S * (1.0 - a) + CLAIM_TTL_MS as f64 / 1000.0 * a;
        let c = (2.0 * self.rate as f64 * hold_s).ceil() as u64;
        c.div_ceil(100) * 100
    }

    fn key(&self) -> String {
        format!(
            "adm:r{}:d{}:a{}",
            self.rate, self.delay_ms, self.abandon_pct
        )
    }
}

/// The cells `--admission-cells` names, in grid order (the whole grid without it).
fn cells(spec: Option<&str>) -> Vec<Cell> {
    let Some(spec) = spec else {
        return expand("*:*:*");
    };
    let mut out: Vec<Cell> = Vec::new();
    for item in spec.split(',').filter(|s| !s.trim().is_empty()) {
        for c in expand(item.trim()) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    assert!(!out.is_empty(), "--admission-cells {spec}: no cell");
    out
}

fn expand(item: &str) -> Vec<Cell> {
    let parts: Vec<&str> = item.split(':').collect();
    assert!(
        parts.len() == 3,
        "--admission-cells: {item} is not RATE:DELAY:ABANDON (numbers or *)"
    );
    let values = |part: &str, grid: &[u64]| -> Vec<u64> {
        if part == "*" {
            grid.to_vec()
        } else {
            vec![part
                .parse()
                .unwrap_or_else(|_| panic!("--admission-cells: {part} in {item} is not a number"))]
        }
    };
    let mut out = Vec::new();
    for rate in values(parts[0], &RATES) {
        for delay_ms in values(parts[1], &DELAYS_MS) {
            for abandon_pct in values(parts[2], &ABANDON_PCT) {
                assert!(
                    (1..=20_000).contains(&rate) && abandon_pct < 100,
                    "--admission-cells {item}: RATE 1..20000, ABANDON below 100"
                );
                out.push(Cell {
                    rate,
                    delay_ms,
                    abandon_pct,
                });
            }
        }
    }
    out
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_micros() as u64
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Claiming,
    Shopping,
    Done,
}

struct User {
    ticket: String,
    serial: u32,
    /// When the user walks away (us), u64::MAX if never.
    abandon_at: u64,
    phase: Phase,
}

/// What one user thread saw.
#[derive(Default)]
struct Seen {
    /// (serial, poll time ms, eta_ms) at the first poll that had an ETA.
    etas: Vec<(u32, u64, i64)>,
    /// Lateness of each request (us): sent minus due.
    lag_us: Vec<u64>,
    abandoned: u64,
    requests: u64,
    /// Requests due but not sent when the run stopped.
    unsent: u64,
    /// Replies a present user did not expect: "STATUS expired", "ADMIT TICKET_ENDED no_show", ...
    surprises: HashMap<String, u64>,
}

/// One thread's users: an event loop over their due times.
fn drive(
    mut con: Connection,
    key: &str,
    delay_ms: u64,
    mut users: Vec<User>,
    seed: u64,
    stop: &AtomicBool,
) -> Seen {
    let d = delay_ms * 1000;
    let mut rng = Rng::new(seed);
    let mut seen = Seen::default();
    let mut etas: HashMap<u32, (u64, i64)> = HashMap::new();
    let mut heap: BinaryHeap<Reverse<(u64, u32)>> = BinaryHeap::new();
    let start = now_us();
    for i in 0..users.len() {
        // The first poll within one polling interval of the start, then every 2-5 s.
        heap.push(Reverse((start + rng.below(POLL_MS.1 * 1000) + d, i as u32)));
    }
    let mut packed = Vec::new();
    let mut batch: Vec<(u32, u64)> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let now = now_us();
        batch.clear();
        packed.clear();
        while batch.len() < MAX_BATCH {
            match heap.peek() {
                Some(&Reverse((due, i))) if due <= now => {
                    heap.pop();
                    let u = &mut users[i as usize];
                    if u.phase == Phase::Done {
                        continue;
                    }
                    if due - d >= u.abandon_at && u.phase != Phase::Shopping {
                        u.phase = Phase::Done;
                        seen.abandoned += 1;
                        continue;
                    }
                    let name = match u.phase {
                        Phase::Waiting => "QUEUE.STATUS",
                        Phase::Claiming => "QUEUE.ADMIT",
                        Phase::Shopping => "QUEUE.LEAVE",
                        Phase::Done => unreachable!(),
                    };
                    packed.extend(
                        redis::cmd(name)
                            .arg(key)
                            .arg(&u.ticket)
                            .get_packed_command(),
                    );
                    batch.push((i, due));
                }
                _ => break,
            }
        }
        if batch.is_empty() {
            match heap.peek() {
                None => break,
                Some(&Reverse((due, _))) => {
                    std::thread::sleep(Duration::from_micros(due.saturating_sub(now).min(2_000)))
                }
            }
            continue;
        }
        let sent = now_us();
        con.send_packed_command(&packed).expect("send");
        for &(i, due) in &batch {
            seen.lag_us.push(sent.saturating_sub(due));
            seen.requests += 1;
            let reply = con.recv_response().expect("reply");
            let received = now_us();
            let at = received + d; // the user sees it
            let u = &mut users[i as usize];
            let mut next = |u: &mut User, phase: Phase, after_ms: u64| {
                u.phase = phase;
                if phase != Phase::Done {
                    heap.push(Reverse((at + after_ms * 1000 + d, i)));
                }
            };
            let mut surprise = |what: String| *seen.surprises.entry(what).or_default() += 1;
            match u.phase {
                Phase::Waiting => {
                    if let Some(line) = reply_error_line(&reply) {
                        surprise(format!("STATUS {line}"));
                        next(u, Phase::Done, 0);
                        continue;
                    }
                    let state = record_field(&reply, "state").map(text).unwrap_or_default();
                    match state.as_str() {
                        "waiting" => {
                            let eta = record_field(&reply, "eta_ms").map_or(-1, int);
                            if eta >= 0 {
                                etas.entry(u.serial).or_insert((received / 1000, eta));
                            }
                            let wait = rng.between(POLL_MS);
                            next(u, Phase::Waiting, wait);
                        }
                        "admitted" => next(u, Phase::Claiming, 0),
                        other => {
                            surprise(format!("STATUS {other}"));
                            next(u, Phase::Done, 0);
                        }
                    }
                }
                Phase::Claiming => match reply_error(&reply) {
                    Some((code, detail)) => {
                        surprise(format!("ADMIT {code} {detail}"));
                        next(u, Phase::Done, 0);
                    }
                    None => {
                        let shop = rng.between(SHOP_MS);
                        next(u, Phase::Shopping, shop);
                    }
                },
                Phase::Shopping => {
                    if reply_error(&reply).is_some() || int(&reply) != 1 {
                        surprise(format!(
                            "LEAVE {}",
                            reply_error_line(&reply).unwrap_or_else(|| text(&reply))
                        ));
                    }
                    next(u, Phase::Done, 0);
                }
                Phase::Done => unreachable!(),
            }
        }
    }
    // Requests due but never sent when the run stopped (the client fell behind) count with
    // their lateness at the stop, so that the lag figure does not hide a backlog.
    let now = now_us();
    for &Reverse((due, i)) in heap.iter() {
        if due <= now && users[i as usize].phase != Phase::Done {
            seen.lag_us.push(now - due);
            seen.unsent += 1;
        }
    }
    seen.etas = etas
        .into_iter()
        .map(|(s, (at, eta))| (s, at, eta))
        .collect();
    seen
}

/// A probe beside the users: `PING` every 2 ms on its own connection until `stop`, as (sent
/// us, round trip us). It tells a server that did not run (the machine's load) from one that
/// answered but did not call.
fn probe(mut con: Connection, stop: &AtomicBool) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let sent = now_us();
        let _: String = redis::cmd("PING").query(&mut con).expect("PING");
        out.push((sent, now_us() - sent));
        std::thread::sleep(Duration::from_millis(2));
    }
    out
}

/// PINGs sent from `from_ms` to `to_ms`: how many, and the slowest answer (us).
fn pings(probes: &[(u64, u64)], from_ms: u64, to_ms: u64) -> (usize, u64) {
    let during = probes
        .iter()
        .filter(|p| p.0 >= from_ms * 1000 && p.0 < to_ms * 1000);
    (
        during.clone().count(),
        during.map(|p| p.1).max().unwrap_or(0),
    )
}

/// What the journal says about one sale.
#[derive(Default)]
struct Calls {
    /// (ms, serial, live sessions after, unclaimed after, waiting after) per call, in order.
    calls: Vec<(u64, u32, i64, usize, usize)>,
    peak_live: i64,
    /// Calls that passed over a waiting ticket that did not lapse afterwards: (ms of the
    /// call, serial called, serial passed over). A ticket passed over because its heartbeat
    /// had lapsed is journaled `expired` after the call; it is then no violation.
    out_of_order: Vec<(u64, u32, u32)>,
    /// Tickets passed over that were journaled `expired` afterwards (lapsed, never called).
    passed_lapsed: usize,
    /// Calls of a ticket not waiting (ended before: a lapsed heartbeat, a leave).
    ended_called: Vec<(u64, u32)>,
    no_shows: BTreeSet<u32>,
    expired: BTreeSet<u32>,
    claimed: HashSet<u32>,
    entries: usize,
    /// Per call after a gap longer than `late_ms`: (call ms, gap ms, the journal entries in
    /// the gap by type with their ms offsets from the previous call).
    late_context: Vec<(u64, u64, String)>,
}

fn ms_of(id: &str) -> u64 {
    id.split('-')
        .next()
        .and_then(|m| m.parse().ok())
        .expect("stream ID")
}

fn replay(con: &mut Connection, journal_key: &str, late_ms: f64) -> Calls {
    let mut c = Calls::default();
    let mut waiting: BTreeSet<u32> = BTreeSet::new();
    let mut unclaimed: HashSet<u32> = HashSet::new();
    let mut live: i64 = 0;
    let mut passed: HashMap<u32, (u64, u32)> = HashMap::new();
    // Entries since the last call: (ms, type).
    let mut since_call: Vec<(u64, String)> = Vec::new();
    let mut last_call_ms: Option<u64> = None;
    let mut from = "-".to_string();
    loop {
        let entries = journal_range(con, journal_key, &from, Some(20_000)).expect("XRANGE");
        let Some(last) = entries.last() else { break };
        from = format!("({}", last.0);
        c.entries += entries.len();
        for (id, fields) in &entries {
            let get = |name: &str| {
                fields
                    .iter()
                    .find(|(f, _)| f == name)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or("")
            };
            let serial = || get("serial").parse::<u32>().expect("serial");
            let kind = get("type");
            if kind != "admitted" && since_call.len() < 64 {
                since_call.push((ms_of(id), kind.to_string()));
            }
            match kind {
                "joined" => {
                    waiting.insert(serial());
                }
                "left" | "dequeued" => {
                    waiting.remove(&serial());
                }
                "expired" => {
                    let s = serial();
                    waiting.remove(&s);
                    if passed.remove(&s).is_some() {
                        c.passed_lapsed += 1;
                    }
                    c.expired.insert(s);
                }
                "admitted" => {
                    let s = serial();
                    let ms = ms_of(id);
                    if let Some(last) = last_call_ms.filter(|&l| (ms - l) as f64 > late_ms) {
                        let mut by_type: Vec<String> = Vec::new();
                        for (t, kind) in &since_call {
                            by_type.push(format!("{kind}@+{}", t - last));
                        }
                        by_type.dedup();
                        c.late_context.push((ms, ms - last, by_type.join(" ")));
                    }
                    last_call_ms = Some(ms);
                    since_call.clear();
                    if !waiting.remove(&s) {
                        c.ended_called.push((ms, s));
                    }
                    let ahead: Vec<u32> = waiting.range(..s).copied().collect();
                    for a in ahead {
                        waiting.remove(&a);
                        passed.insert(a, (ms, s));
                    }
                    live += 1;
                    unclaimed.insert(s);
                    c.peak_live = c.peak_live.max(live);
                    c.calls.push((ms, s, live, unclaimed.len(), waiting.len()));
                }
                "claimed" => {
                    let s = serial();
                    unclaimed.remove(&s);
                    c.claimed.insert(s);
                }
                "session_ended" => {
                    let s = serial();
                    live -= 1;
                    unclaimed.remove(&s);
                    if get("reason") == "no_show" {
                        c.no_shows.insert(s);
                    }
                }
                _ => {}
            }
        }
    }
    c.out_of_order = passed.into_iter().map(|(a, (ms, s))| (ms, s, a)).collect();
    c.out_of_order.sort_unstable();
    c
}

/// One row of the table, plus what it found wrong.
struct Row {
    cells: Vec<String>,
    findings: Vec<String>,
}

fn secs(ms: f64) -> String {
    if ms.abs() >= 10_000.0 {
        format!("{:.0} s", ms / 1000.0)
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

fn run_cell(b: &mut Bench, cell: Cell, window_s: f64, seed: u64) -> Row {
    let con = &mut b.con;
    let key = cell.key();
    let journal_key = format!("{{{key}}}.journal");
    let users_n = cell.users(window_s);
    let capacity = cell.capacity();
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .arg(&journal_key)
        .query(con)
        .expect("DEL");
    let _: () = redis::cmd("QUEUE.CONFIG")
        .arg(&key)
        .arg("SET")
        .arg("RATE")
        .arg(cell.rate)
        .arg("BURST")
        .arg(BURST)
        .arg("CAPACITY")
        .arg(capacity)
        .arg("HEARTBEAT")
        .arg(HEARTBEAT_MS)
        .arg("CLAIM-TTL")
        .arg(CLAIM_TTL_MS)
        .query(con)
        .expect("QUEUE.CONFIG");
    let _: i64 = redis::cmd("QUEUE.PAUSE")
        .arg(&key)
        .query(con)
        .expect("QUEUE.PAUSE");
    // Everyone joins while admission is paused: the line is in join order when the sale starts.
    let mut tickets = Vec::with_capacity(users_n);
    for chunk in (0..users_n).collect::<Vec<_>>().chunks(1_000) {
        let mut p = redis::pipe();
        for i in chunk {
            p.cmd("QUEUE.ENQUEUE").arg(&key).arg(format!("user-{i:06}"));
        }
        let replies: Vec<Value> = p.query(con).expect("QUEUE.ENQUEUE");
        for r in &replies {
            tickets.push(text(record_field(r, "ticket").expect("ticket")));
        }
    }
    let mut rng = Rng::new(seed);
    let start = now_us();
    let mut abandoners = HashSet::new();
    let mut parts: Vec<Vec<User>> = (0..THREADS).map(|_| Vec::new()).collect();
    for (i, ticket) in tickets.into_iter().enumerate() {
        let serial: u32 = ticket
            .split('.')
            .next()
            .and_then(|s| s.parse().ok())
            .expect("ticket serial");
        let abandon_at = if rng.chance(cell.abandon_pct) {
            abandoners.insert(serial);
            let expected_call_ms = i as u64 * 1000 / cell.rate;
            start + rng.below((expected_call_ms + 5_000) * 1000)
        } else {
            u64::MAX
        };
        parts[i % THREADS].push(User {
            ticket,
            serial,
            abandon_at,
            phase: Phase::Waiting,
        });
    }
    let connections: Vec<Connection> = (0..THREADS).map(|_| b.server.connection()).collect();
    let probe_con = b.server.connection();
    let stop = AtomicBool::new(false);
    reset_stall_monitors(con);
    let cpu_before = cpu_seconds(con);
    let wall = Instant::now();
    let (seen, probes): (Vec<Seen>, Vec<(u64, u64)>) = std::thread::scope(|s| {
        let prober = s.spawn(|| probe(probe_con, &stop));
        let handles: Vec<_> = connections
            .into_iter()
            .zip(parts)
            .enumerate()
            .map(|(t, (c, users))| {
                let (key, stop) = (&key, &stop);
                s.spawn(move || drive(c, key, cell.delay_ms, users, seed ^ (t as u64 + 1), stop))
            })
            .collect();
        let _: i64 = redis::cmd("QUEUE.RESUME")
            .arg(&key)
            .query(con)
            .expect("QUEUE.RESUME");
        // Until the line is empty (every ticket called or lapsed), with a generous deadline.
        let deadline = Instant::now()
            + Duration::from_secs_f64(3.0 * users_n as f64 / cell.rate as f64 + 60.0);
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let waiting: i64 = redis::cmd("QUEUE.LEN")
                .arg(&key)
                .query(con)
                .expect("QUEUE.LEN");
            if waiting == 0 || Instant::now() > deadline {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        let seen = handles
            .into_iter()
            .map(|h| h.join().expect("user thread"))
            .collect();
        (seen, prober.join().expect("probe thread"))
    });
    let elapsed = wall.elapsed().as_secs_f64();
    let cpu_after = cpu_seconds(con);
    let stall = longest_stall(con);
    let server_cpu = (cpu_after.0 - cpu_before.0) / elapsed;
    let load = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("-")
        .to_string();
    let late_ms = cell.bucket() as f64 * 1000.0 / cell.rate as f64;
    let j = replay(con, &journal_key, late_ms);
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .arg(&journal_key)
        .query(con)
        .expect("DEL");
    analyse(
        cell,
        users_n,
        capacity,
        &j,
        &seen,
        &abandoners,
        &probes,
        (server_cpu, stall),
        &load,
    )
}

#[allow(clippy::too_many_arguments)]
fn analyse(
    cell: Cell,
    users_n: usize,
    capacity: u64,
    j: &Calls,
    seen: &[Seen],
    abandoners: &HashSet<u32>,
    probes: &[(u64, u64)],
    (server_cpu, stall): (f64, (i64, String)),
    load: &str,
) -> Row {
    let mut findings = Vec::new();
    let name = format!(
        "RATE {} delay {} ms abandon {}%",
        cell.rate, cell.delay_ms, cell.abandon_pct
    );
    let bucket = cell.bucket() as usize;
    let interval_ms = 1000.0 / cell.rate as f64;
    // A gap longer than the bucket's span loses admissions: the calls after it catch up on
    // at most a bucket. Shorter ones (a late timer tick) lose nothing.
    let late_ms = bucket as f64 * interval_ms;
    let calls = &j.calls;
    // The window: after the start-up burst, while at least 100 ms of calls (or a bucket) wait.
    let enough = bucket.max(cell.rate as usize / 10);
    let s = bucket - 1;
    let (window_cells, gap_cells) = if calls.len() > s + 10 {
        let e = (s..calls.len())
            .find(|&i| calls[i].4 < enough)
            .unwrap_or(calls.len() - 1);
        let span_ms = calls[e].0 - calls[s].0;
        let rate = (e - s) as f64 * 1000.0 / span_ms.max(1) as f64;
        let off = rate / cell.rate as f64 - 1.0;
        // Gaps, and the late ones by cause.
        let mut longest = 0u64;
        let mut late: HashMap<&str, usize> = HashMap::new();
        // The part of each machine-stalled gap the bucket could not absorb (ms).
        let mut stalled_ms = 0.0;
        for i in s + 1..=e {
            let gap = calls[i].0 - calls[i - 1].0;
            if gap > longest {
                longest = gap;
            }
            if gap as f64 > late_ms {
                let (_, _, live, unclaimed, waiting) = calls[i - 1];
                let (sent, slowest) = pings(probes, calls[i - 1].0, calls[i].0);
                let cause = if live >= capacity as i64 && unclaimed > 0 {
                    "no-show holds a place"
                } else if live >= capacity as i64 {
                    "CAPACITY full"
                } else if waiting == 0 {
                    "line empty"
                } else if (sent as f64) < gap as f64 / 4.0 || slowest as f64 >= gap as f64 * 500.0 {
                    // The probe could not send (the client machine did not run it) or the
                    // server did not answer for half the gap: the machine stalled.
                    stalled_ms += gap as f64 - late_ms;
                    "machine stalled"
                } else {
                    "server answered, did not call"
                };
                *late.entry(cause).or_default() += 1;
            }
        }
        if let Some(n) = late.get("no-show holds a place") {
            findings.push(format!(
                "{name}: {n} late gaps while CAPACITY was full with unclaimed sessions"
            ));
        }
        let rate_running = (e - s) as f64 * 1000.0 / (span_ms as f64 - stalled_ms).max(1.0);
        if off.abs() > 0.01 {
            findings.push(format!(
                "{name}: {rate:.1} admissions/s over {:.1} s, {:+.2}% off RATE; {:+.2}% without the {:.1} s the machine stalled",
                span_ms as f64 / 1000.0,
                off * 100.0,
                (rate_running / cell.rate as f64 - 1.0) * 100.0,
                stalled_ms / 1000.0
            ));
        }
        let mut causes: Vec<String> = late.iter().map(|(c, n)| format!("{n} {c}")).collect();
        causes.sort();
        let gap = longest;
        for (ms, gap, context) in j.late_context.iter().take(5) {
            let (sent, slowest) = pings(probes, ms - gap, *ms);
            findings.push(format!(
                "{name}: a {gap} ms gap (over the bucket's {late_ms:.0} ms) before the call at {ms} ({:.3} s into the window); journal in the gap: {}; {} PINGs sent in the gap, slowest {:.1} ms",
                (*ms as f64 - calls[s].0 as f64) / 1000.0,
                if context.is_empty() { "nothing" } else { context },
                sent,
                slowest as f64 / 1000.0
            ));
        }
        (
            vec![
                format!("{:.1} s", span_ms as f64 / 1000.0),
                format!("{:.1}", rate),
                format!("{:+.2}%", off * 100.0),
                if stalled_ms > 0.0 {
                    format!(
                        "{:+.2}% ({:.1} s stalled)",
                        (rate_running / cell.rate as f64 - 1.0) * 100.0,
                        stalled_ms / 1000.0
                    )
                } else {
                    "no stall".to_string()
                },
            ],
            vec![
                format!("{gap} ms"),
                if causes.is_empty() {
                    "0".to_string()
                } else {
                    causes.join(", ")
                },
            ],
        )
    } else {
        findings.push(format!("{name}: only {} calls", calls.len()));
        (vec!["-".into(); 4], vec!["-".into(); 2])
    };
    let burst_span = calls.get(s).map_or("-".into(), |c| {
        format!("{} in {} ms", bucket, c.0 - calls[0].0)
    });
    if j.peak_live > capacity as i64 {
        findings.push(format!(
            "{name}: {} live sessions at once, CAPACITY {capacity}",
            j.peak_live
        ));
    }
    for (ms, serial, ahead) in j.out_of_order.iter().take(3) {
        findings.push(format!(
            "{name}: called serial {serial} at {ms} while serial {ahead} waited ahead (and did not lapse)"
        ));
    }
    for (ms, serial) in j.ended_called.iter().take(3) {
        findings.push(format!(
            "{name}: called serial {serial} at {ms}, which was not waiting (ended before)"
        ));
    }
    // ETA error: predicted wait at the first poll against the actual wait to the call.
    let call_ms: HashMap<u32, u64> = calls.iter().map(|c| (c.1, c.0)).collect();
    let mut abs_err = Vec::new();
    let mut rel_err = Vec::new();
    let mut signed = Vec::new();
    for sn in seen {
        for &(serial, at, eta) in &sn.etas {
            if let Some(&called) = call_ms.get(&serial) {
                let actual = called as i64 - at as i64;
                let err = actual - eta;
                abs_err.push(err.unsigned_abs());
                signed.push(err);
                rel_err.push(err.unsigned_abs() as f64 / actual.max(1) as f64);
            }
        }
    }
    abs_err.sort_unstable();
    signed.sort_unstable();
    rel_err.sort_by(|a, b| a.total_cmp(b));
    let eta = match (
        percentile(&abs_err, 0.5),
        percentile(&abs_err, 0.9),
        percentile(&rel_err, 0.5),
        percentile(&rel_err, 0.9),
        percentile(&signed, 0.5),
    ) {
        (Some(p50), Some(p90), Some(r50), Some(r90), Some(med)) => format!(
            "{} / {} ({:.0}% / {:.0}%; median {}{})",
            secs(p50 as f64),
            secs(p90 as f64),
            r50 * 100.0,
            r90 * 100.0,
            if med >= 0 { "+" } else { "" },
            secs(med as f64)
        ),
        _ => "-".into(),
    };
    let mut lag: Vec<u64> = seen.iter().flat_map(|s| s.lag_us.iter().copied()).collect();
    lag.sort_unstable();
    let lag_p99 =
        percentile(&lag, 0.99).map_or("-".into(), |l| format!("{:.0}", l as f64 / 1000.0));
    let lapsed_live = j.expired.iter().filter(|s| !abandoners.contains(s)).count();
    let missed_live = j
        .no_shows
        .iter()
        .filter(|s| !abandoners.contains(s))
        .count();
    let mut surprises: HashMap<&str, u64> = HashMap::new();
    for sn in seen {
        for (what, n) in &sn.surprises {
            *surprises.entry(what.as_str()).or_default() += n;
        }
    }
    if lapsed_live + missed_live > 0 {
        let mut list: Vec<String> = surprises.iter().map(|(w, n)| format!("{n} {w}")).collect();
        list.sort();
        findings.push(format!(
            "{name}: {lapsed_live} present users lapsed, {missed_live} missed their claim (client lag p99 {lag_p99} ms); replies: {}",
            list.join(", ")
        ));
    }
    let requests: u64 = seen.iter().map(|s| s.requests).sum();
    let mut cells = vec![
        cell.rate.to_string(),
        cell.delay_ms.to_string(),
        format!("{}%", cell.abandon_pct),
        users_n.to_string(),
        capacity.to_string(),
        burst_span,
    ];
    cells.extend(window_cells);
    cells.extend(gap_cells);
    cells.extend([
        format!("{} / {}", j.peak_live, capacity),
        if j.out_of_order.is_empty() && j.ended_called.is_empty() {
            format!("ok ({} lapsed passed over)", j.passed_lapsed)
        } else {
            format!(
                "{} wrong, {} ended called",
                j.out_of_order.len(),
                j.ended_called.len()
            )
        },
        format!(
            "{} / {} / {} ({}) / {}",
            calls.len(),
            j.claimed.len(),
            calls.len() - j.claimed.len(),
            j.no_shows.len(),
            j.expired.len()
        ),
        eta,
        format!(
            "{lag_p99} ms ({} unsent); {lapsed_live} / {missed_live}",
            seen.iter().map(|s| s.unsent).sum::<u64>()
        ),
        format!(
            "{:.0}%; {} req; {}",
            server_cpu * 100.0,
            requests,
            if stall.0 > 0 {
                format!("{} ms ({})", stall.0, stall.1)
            } else {
                "none".into()
            }
        ),
        load.to_string(),
    ]);
    Row { cells, findings }
}

const HEADER: [&str; 19] = [
    "RATE",
    "delay ms",
    "abandon",
    "users",
    "CAPACITY",
    "burst (excluded)",
    "window",
    "admissions/s",
    "vs RATE",
    "vs RATE, machine stalls removed",
    "longest gap",
    "gaps > bucket (cause)",
    "peak live / CAPACITY",
    "line order",
    "calls / claimed / unclaimed (no_show so far) / expired",
    "ETA error p50 / p90 (relative; signed median)",
    "client lag p99 (due, unsent at the stop); present users lapsed / missed claim",
    "server CPU; requests; longest stall (LATENCY)",
    "load 1 min",
];

pub fn section(b: &mut Bench, o: &Options, _f: &mut Findings) {
    flushall(&mut b.con);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("latency-monitor-threshold")
        .arg(1)
        .arg("slowlog-log-slower-than")
        .arg(1000)
        .query(&mut b.con)
        .expect("CONFIG SET latency-monitor-threshold, slowlog-log-slower-than");
    let cells = cells(o.admission_cells.as_deref());
    println!(
        "\n== Admission: the server-called line under simulated users ({} cells, window {} s, \
         {THREADS} user threads; BURST {BURST}, HEARTBEAT {} s, CLAIM-TTL {} s; polls every \
         2-5 s, shopping 1-3 s) ==\n",
        cells.len(),
        o.admission_seconds,
        HEARTBEAT_MS / 1000,
        CLAIM_TTL_MS / 1000,
    );
    println!("| {} |", HEADER.join(" | "));
    println!(
        "|{}",
        HEADER
            .iter()
            .enumerate()
            .map(|(i, _)| if i < 3 { "---|" } else { "--:|" })
            .collect::<String>()
    );
    let mut findings = Vec::new();
    for (n, &cell) in cells.iter().enumerate() {
        progress(&format!(
            "admission {}/{}: RATE {} delay {} ms abandon {}% ({} users)",
            n + 1,
            cells.len(),
            cell.rate,
            cell.delay_ms,
            cell.abandon_pct,
            cell.users(o.admission_seconds)
        ));
        let row = run_cell(b, cell, o.admission_seconds, 0x5EA7 + n as u64);
        println!("| {} |", row.cells.join(" | "));
        findings.extend(row.findings);
    }
    println!(
        "\nFindings (rate off by more than 1%, late gaps, CAPACITY, order, present users lost):"
    );
    if findings.is_empty() {
        println!("- none");
    }
    for f in findings {
        println!("- {f}");
    }
}
