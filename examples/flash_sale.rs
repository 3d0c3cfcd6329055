//! The flash-sale simulator, seatq's main demo (`cargo run --release --example flash_sale`).
//!
//! A burst of users descends on one event with named seats (`A-12-07`: section, row, number).
//! Each user joins the waiting line (half of them with an `IDEMPOTENCY` key; some of those
//! retry the join, which must be refused as `DUPLICATE`), polls `QUEUE.STATUS` to keep the
//! ticket's heartbeat alive, calls `QUEUE.ADMIT` near the front (waiting the `retry_after_ms`
//! of `NOT_READY` / `RATE_LIMITED`), holds 1-4 adjacent seats with the admission pass
//! (`SEAT_UNAVAILABLE`: picks others; `SOLD_OUT`: gives up and leaves) and buys them with
//! `SEAT.CONFIRM`. Some users leave the line while waiting, some abandon their hold (the
//! server's timer must return it to stock), a few greedy ones try a fifth seat (`USER-LIMIT`
//! must refuse it). Once the event is sold out, everyone still waiting leaves. Users are state
//! machines: each worker thread schedules its share of them over one connection and pipelines
//! the commands of the users that are due.
//!
//! At the end it prints, per command, calls, throughput, client-observed latency and error
//! replies by code; the sale's totals; the module's own latency view (throwaway server only);
//! and checks invariants against `SEAT.STATUS`, `SEAT.INFO`, `QUEUE.INFO` and a replay of the
//! event's journal. Exit status: 0 when everything holds; 1 when an invariant fails, an
//! unexpected error reply came back or the server failed; 2 for bad options.
//!
//! Options:
//!   --users N               users arriving (default 100000)
//!   --threads N             worker threads, one connection each (default 8)
//!   --seats N               named seats (default 5000, at most users/2 so demand exceeds supply)
//!   --arrival SECS          users arrive at random times within this many seconds (default 2)
//!   --rps N | A:B           cap on the commands sent per second by all threads together; A:B
//!                           ramps linearly from A to B over the arrival phase, then stays at B
//!                           (default: no cap)
//!   --server redis|valkey   the throwaway server to start (default redis)
//!   --url redis://host:port/  use a running server with seatq loaded instead; the event
//!                           (`flash:{<ms>-<pid>}`) and its journal are left there to look at
//!   --seed N                seed of the users' choices (default: from the clock)

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use redis::{Connection, FromRedisValue, Value};
use seatq_testkit::server;

// The event's settings. RATE, BURST and CAPACITY pace admission (RATE is an upper bound: only
// the front of the line is admitted, so the line moves no faster than the front user's client
// comes back); the lifetimes are short so that abandoned holds and sessions lapse during the run.
const RATE: u64 = 500;
const BURST: u64 = 25;
const CAPACITY: u64 = 500;
const HEARTBEAT_MS: u64 = 15_000;
const PASS_TTL_MS: u64 = 5_000;
const HOLD_TTL_MS: u64 = 3_000;
const USER_LIMIT: usize = 4;
/// Long enough for the checks; an event left on a server (--url) is trimmed after an hour.
const JOURNAL_MAXAGE_MS: u64 = 3_600_000;

// What the users do, in percent.
const IDEMPOTENCY_PCT: u64 = 50;
const RETRY_JOIN_PCT: u64 = 10; // of the users with an idempotency key
const LEAVE_WHILE_WAITING_PCT: u64 = 5;
const ABANDON_PCT: u64 = 10;
const GREEDY_PCT: u64 = 3;

// Client pacing, in microseconds. A waiting user polls at half its ETA, but at least every
// third of the heartbeat, so its ticket never lapses; within half a second of the front it
// asks QUEUE.ADMIT instead, as the README's client loop does.
const MIN_POLL_US: u64 = 100_000;
const MAX_POLL_US: u64 = HEARTBEAT_MS * 1000 / 3;
const NEAR_FRONT: u64 = RATE / 2;
// Ranges the users draw from: admission to the first hold, hold to confirm (well within
// HOLD-TTL), join to its retry, and how long an impatient user waits before leaving.
const PAGE_LOAD_US: (u64, u64) = (20_000, 100_000);
const THINK_US: (u64, u64) = (100_000, 600_000);
const RETRY_JOIN_US: (u64, u64) = (5_000, 50_000);
const LEAVE_AFTER_US: (u64, u64) = (200_000, 5_000_000);
// A worker's seat map (the seat-map page its users look at) is refreshed when older than this,
// and a worker with users in line reads SEAT.INFO this often to learn that the sale sold out.
const SEAT_MAP_MAX_AGE_US: u64 = 250_000;
const INVENTORY_CHECK_US: u64 = 250_000;

const DEFAULT_SEATS: usize = 5000;
const MAX_SEATS: usize = 100_000;
const SEATS_PER_ROW: usize = 25;
const ROWS_PER_SECTION: usize = 20;
/// Most commands a worker sends in one pipeline.
const MAX_PIPELINE: usize = 64;
/// Seats per SEAT.ADD / SEAT.STATUS call.
const SEAT_CHUNK: usize = 1000;
/// Journal entries per XRANGE call.
const JOURNAL_CHUNK: usize = 10_000;
/// Unexpected replies described in the report (all are counted).
const SHOWN_PROBLEMS: usize = 10;

struct Options {
    users: usize,
    threads: usize,
    seats: Option<usize>,
    arrival: Duration,
    rps: Option<(f64, f64)>,
    server: server::ServerKind,
    url: Option<String>,
    seed: Option<u64>,
}

fn parse_options() -> Options {
    let mut o = Options {
        users: 100_000,
        threads: 8,
        seats: None,
        arrival: Duration::from_secs(2),
        rps: None,
        server: server::ServerKind::Redis,
        url: None,
        seed: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--users" => o.users = positive(&value(), "--users", 10_000_000),
            "--threads" => o.threads = positive(&value(), "--threads", 256),
            "--seats" => o.seats = Some(positive(&value(), "--seats", MAX_SEATS)),
            "--arrival" => {
                o.arrival = value()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| (0.0..=3600.0).contains(s))
                    .map(Duration::from_secs_f64)
                    .unwrap_or_else(|| usage("--arrival takes seconds from 0 to 3600"))
            }
            "--rps" => {
                let v = value();
                let rate = |s: &str| {
                    s.parse::<f64>()
                        .ok()
                        .filter(|r| r.is_finite() && *r >= 1.0)
                        .unwrap_or_else(|| usage("--rps takes N or A:B, rates of at least 1"))
                };
                o.rps = Some(match v.split_once(':') {
                    Some((from, to)) => (rate(from), rate(to)),
                    None => (rate(&v), rate(&v)),
                });
            }
            "--server" => {
                o.server = match value().as_str() {
                    "redis" => server::ServerKind::Redis,
                    "valkey" => server::ServerKind::Valkey,
                    _ => usage("--server is redis or valkey"),
                }
            }
            "--url" => o.url = Some(value()),
            "--seed" => {
                o.seed = Some(
                    value()
                        .parse()
                        .unwrap_or_else(|_| usage("--seed takes a number")),
                )
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            _ => usage(&format!("unknown option {a}")),
        }
    }
    o
}

fn positive(value: &str, option: &str, max: usize) -> usize {
    value
        .parse()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .unwrap_or_else(|| usage(&format!("{option} takes a number from 1 to {max}")))
}

const USAGE: &str = "usage: flash_sale [--users N] [--threads N] [--seats N] [--arrival SECS] \
                     [--rps N|A:B] [--server redis|valkey] [--url redis://host:port/] [--seed N]";

fn usage(msg: &str) -> ! {
    eprintln!("flash_sale: {msg}\n{USAGE}");
    std::process::exit(2)
}

/// Stops the demo when the server cannot be used (not an invariant: there is nothing to check).
fn fail(msg: &str) -> ! {
    eprintln!("flash_sale: {msg}");
    std::process::exit(1)
}

/// SplitMix64: small, fast and good enough to make the users' choices reproducible by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn between(&mut self, (lo, hi): (u64, u64)) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Seat `i`'s name, section-row-number like `A-12-07`: rows of 25 seats, sections of 20 rows,
/// sections lettered A..Z, AA, AB, ...
fn seat_name(i: usize) -> String {
    let mut section = i / (SEATS_PER_ROW * ROWS_PER_SECTION);
    let row = i / SEATS_PER_ROW % ROWS_PER_SECTION + 1;
    let number = i % SEATS_PER_ROW + 1;
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (section % 26) as u8);
        if section < 26 {
            break;
        }
        section = section / 26 - 1;
    }
    letters.reverse();
    format!("{}-{row:02}-{number:02}", String::from_utf8_lossy(&letters))
}

fn user_name(user: u32) -> String {
    format!("fan-{user:07}")
}

/// The event under test.
struct Sale {
    key: String,
    journal: String,
    seat_names: Vec<String>,
    seat_index: HashMap<String, usize>,
}

/// What a user will do, drawn from the seed before the sale starts.
struct Plan {
    arrives_at_us: u64,
    wants: usize,
    greedy: bool,
    idempotency: bool,
    retries_join: bool,
    leaves_after_us: Option<u64>,
    abandons: bool,
    think_us: u64,
}

impl Plan {
    fn draw(seed: u64, user: u32, arrival: Duration) -> Plan {
        let mut rng = Rng(seed ^ (user as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let greedy = rng.chance(GREEDY_PCT);
        let wants = match rng.below(100) {
            _ if greedy => USER_LIMIT,
            0..=19 => 1,
            20..=64 => 2,
            65..=79 => 3,
            _ => 4,
        };
        let idempotency = rng.chance(IDEMPOTENCY_PCT);
        Plan {
            arrives_at_us: rng.below(arrival.as_micros() as u64),
            wants,
            greedy,
            idempotency,
            retries_join: idempotency && rng.chance(RETRY_JOIN_PCT),
            leaves_after_us: rng
                .chance(LEAVE_WHILE_WAITING_PCT)
                .then(|| rng.between(LEAVE_AFTER_US)),
            abandons: rng.chance(ABANDON_PCT),
            think_us: rng.between(THINK_US),
        }
    }
}

/// The cap of `--rps`: a budget shared by all threads, whose rate may ramp linearly.
struct RateCap {
    from: f64,
    to: f64,
    ramp_secs: f64,
    /// When (seconds since the start) the budget is next free.
    next_free: Mutex<f64>,
}

impl RateCap {
    fn rate_at(&self, secs: f64) -> f64 {
        if secs >= self.ramp_secs {
            self.to
        } else {
            self.from + (self.to - self.from) * secs / self.ramp_secs
        }
    }

    /// Reserves `n` commands of the budget and sleeps until they may be sent.
    fn acquire(&self, started: Instant, n: usize) {
        let now = started.elapsed().as_secs_f64();
        let begin = {
            let mut next_free = self.next_free.lock().unwrap_or_else(|e| e.into_inner());
            let begin = next_free.max(now);
            *next_free = begin + n as f64 / self.rate_at(begin);
            begin
        };
        if begin > now {
            std::thread::sleep(Duration::from_secs_f64(begin - now));
        }
    }
}

/// What every thread sees: the clock, the cap, and counters for the progress bar.
struct Shared {
    started: Instant,
    cap: Option<RateCap>,
    threads: usize,
    joined: AtomicU64,
    waiting: AtomicU64,
    admitted: AtomicU64,
    sold: AtomicU64,
    finished: AtomicU64,
    /// Microseconds since the start when a worker first saw the event sold out (0: not yet).
    sold_out_at_us: AtomicU64,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Command {
    Enqueue,
    Status,
    Admit,
    Leave,
    SeatStatus,
    SeatHold,
    SeatConfirm,
    SeatInfo,
}

const COMMANDS: [Command; 8] = [
    Command::Enqueue,
    Command::Status,
    Command::Admit,
    Command::Leave,
    Command::SeatStatus,
    Command::SeatHold,
    Command::SeatConfirm,
    Command::SeatInfo,
];

impl Command {
    fn name(self) -> &'static str {
        match self {
            Command::Enqueue => "QUEUE.ENQUEUE",
            Command::Status => "QUEUE.STATUS",
            Command::Admit => "QUEUE.ADMIT",
            Command::Leave => "QUEUE.LEAVE",
            Command::SeatStatus => "SEAT.STATUS",
            Command::SeatHold => "SEAT.HOLD",
            Command::SeatConfirm => "SEAT.CONFIRM",
            Command::SeatInfo => "SEAT.INFO",
        }
    }
}

/// Client-observed latencies and error replies of one command.
#[derive(Default)]
struct CommandStats {
    latencies_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
}

struct Stats([CommandStats; COMMANDS.len()]);

impl Stats {
    fn new() -> Stats {
        Stats(std::array::from_fn(|_| CommandStats::default()))
    }

    fn record(&mut self, command: Command, took: Duration, reply: &Value) {
        let entry = &mut self.0[command as usize];
        entry
            .latencies_us
            .push(took.as_micros().min(u32::MAX as u128) as u32);
        if let Value::ServerError(e) = reply {
            *entry.errors.entry(e.code().to_string()).or_default() += 1;
        }
    }

    fn merge(&mut self, other: Stats) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            mine.latencies_us.extend(theirs.latencies_us);
            for (code, n) in theirs.errors {
                *mine.errors.entry(code).or_default() += n;
            }
        }
    }
}

/// What the users saw, summed over the workers.
#[derive(Default)]
struct Outcome {
    joined: u64,
    retried_joins: u64,
    duplicates_refused: u64,
    left_impatient: u64,
    left_sold_out_waiting: u64,
    gave_up_sold_out: u64,
    lapsed_waiting: u64,
    admitted: u64,
    holds_made: u64,
    abandoned_holds: Vec<u64>,
    late_holds: Vec<u64>,
    passes_lost: u64,
    limit_refusals: u64,
    bought: Vec<(usize, u32)>,
    buyers: u64,
    inventory_samples: u64,
    inventory_mismatches: Vec<String>,
    unexpected: Vec<String>,
    unexpected_total: u64,
}

impl Outcome {
    fn merge(&mut self, o: Outcome) {
        self.joined += o.joined;
        self.retried_joins += o.retried_joins;
        self.duplicates_refused += o.duplicates_refused;
        self.left_impatient += o.left_impatient;
        self.left_sold_out_waiting += o.left_sold_out_waiting;
        self.gave_up_sold_out += o.gave_up_sold_out;
        self.lapsed_waiting += o.lapsed_waiting;
        self.admitted += o.admitted;
        self.holds_made += o.holds_made;
        self.abandoned_holds.extend(o.abandoned_holds);
        self.late_holds.extend(o.late_holds);
        self.passes_lost += o.passes_lost;
        self.limit_refusals += o.limit_refusals;
        self.bought.extend(o.bought);
        self.buyers += o.buyers;
        self.inventory_samples += o.inventory_samples;
        self.inventory_mismatches.extend(o.inventory_mismatches);
        self.unexpected_total += o.unexpected_total;
        for problem in o.unexpected {
            if self.unexpected.len() < SHOWN_PROBLEMS {
                self.unexpected.push(problem);
            }
        }
    }

    fn record_unexpected(&mut self, problem: String) {
        self.unexpected_total += 1;
        if self.unexpected.len() < SHOWN_PROBLEMS {
            self.unexpected.push(problem);
        }
    }
}

// ---- replies --------------------------------------------------------------------------------

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        Value::Int(i) => i.to_string(),
        Value::Nil => String::new(),
        other => format!("{other:?}"),
    }
}

/// A field of a seatq record: a flat field/value array on RESP2, a map on RESP3.
fn field<'v>(record: &'v Value, name: &str) -> Option<&'v Value> {
    let is_name = |k: &Value| match k {
        Value::BulkString(b) => b == name.as_bytes(),
        Value::SimpleString(s) => s == name,
        _ => false,
    };
    match record {
        Value::Array(items) => items
            .chunks(2)
            .find(|pair| pair.len() == 2 && is_name(&pair[0]))
            .map(|pair| &pair[1]),
        Value::Map(pairs) => pairs.iter().find(|(k, _)| is_name(k)).map(|(_, v)| v),
        _ => None,
    }
}

fn field_text(record: &Value, name: &str) -> String {
    field(record, name).map(text).unwrap_or_default()
}

fn field_int(record: &Value, name: &str) -> Option<u64> {
    match field(record, name)? {
        Value::Int(i) => u64::try_from(*i).ok(),
        other => text(other).parse().ok(),
    }
}

/// `(code, detail)` of an error reply.
fn error_of(reply: &Value) -> Option<(&str, &str)> {
    match reply {
        Value::ServerError(e) => Some((e.code(), e.details().unwrap_or(""))),
        _ => None,
    }
}

/// The number after `word` in an error's detail (`position 3 retry_after_ms 40`).
fn number_after(detail: &str, word: &str) -> Option<u64> {
    let mut words = detail.split_whitespace();
    words.find(|w| *w == word)?;
    words.next()?.parse().ok()
}

fn describe(reply: &Value) -> String {
    match error_of(reply) {
        Some((code, detail)) => format!("{code} {detail}"),
        None => format!("{reply:?}"),
    }
}

type TicketId = (u64, u64);

fn ticket_id(t: &str) -> Option<TicketId> {
    let (ms, seq) = t.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

// ---- the users ------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Arrive,
    RetryJoin,
    Wait,
    Shop,
    ExtraSeat,
    Confirm,
    Leave(Exit),
    Done,
}

/// Why a user leaves without buying.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Exit {
    Impatient,
    SoldOutWaiting,
    SoldOutAdmitted,
}

struct Shopper {
    user: u32,
    plan: Plan,
    step: Step,
    /// When the user is due; schedule entries with another time are stale and skipped.
    wake_at: u64,
    in_line: bool,
    near_front: bool,
    joined_at: u64,
    renewed_at: u64,
    ticket: String,
    pass: String,
    /// Seats asked for by the hold in flight, then held.
    seats: Vec<usize>,
    hold: u64,
}

/// A command in flight, and whom it is for.
#[derive(Clone, Copy)]
enum Request {
    Join(usize),
    RetryJoin(usize),
    Status(usize),
    Admit(usize),
    Hold(usize),
    ExtraHold(usize, usize),
    Confirm(usize),
    Leave(usize, Exit),
    SeatMap(usize),
    Inventory,
}

impl Request {
    fn command(self) -> Command {
        match self {
            Request::Join(_) | Request::RetryJoin(_) => Command::Enqueue,
            Request::Status(_) => Command::Status,
            Request::Admit(_) => Command::Admit,
            Request::Hold(_) | Request::ExtraHold(..) => Command::SeatHold,
            Request::Confirm(_) => Command::SeatConfirm,
            Request::Leave(..) => Command::Leave,
            Request::SeatMap(_) => Command::SeatStatus,
            Request::Inventory => Command::SeatInfo,
        }
    }
}

/// A worker's picture of which seats are available, as a seat-map page would show it.
struct SeatMap {
    available: Vec<bool>,
    refreshed_at: Option<u64>,
}

impl SeatMap {
    fn is_stale(&self, now: u64) -> bool {
        self.refreshed_at
            .is_none_or(|at| now >= at + SEAT_MAP_MAX_AGE_US)
    }

    /// Up to `wants` adjacent available seats in one row, from a random place on the map; the
    /// seats are marked taken so that this worker's other users look elsewhere.
    fn pick(&mut self, wants: usize, rng: &mut Rng) -> Option<Vec<usize>> {
        let n = self.available.len();
        let start = rng.below(n as u64) as usize;
        let first = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| self.available[i])?;
        let row_end = ((first / SEATS_PER_ROW + 1) * SEATS_PER_ROW).min(n);
        let seats: Vec<usize> = (first..row_end)
            .take_while(|&i| self.available[i])
            .take(wants)
            .collect();
        for &s in &seats {
            self.available[s] = false;
        }
        Some(seats)
    }
}

struct Worker<'a> {
    con: Connection,
    sale: &'a Sale,
    shared: &'a Shared,
    rng: Rng,
    shoppers: Vec<Shopper>,
    schedule: BinaryHeap<Reverse<(u64, usize)>>,
    seat_map: SeatMap,
    sold_out: bool,
    next_inventory_check: u64,
    in_line: usize,
    active: usize,
    stats: Stats,
    outcome: Outcome,
}

impl<'a> Worker<'a> {
    fn new(
        con: Connection,
        sale: &'a Sale,
        shared: &'a Shared,
        users: impl Iterator<Item = u32>,
        seed: u64,
        arrival: Duration,
    ) -> Worker<'a> {
        let shoppers: Vec<Shopper> = users
            .map(|user| Shopper {
                user,
                plan: Plan::draw(seed, user, arrival),
                step: Step::Arrive,
                wake_at: 0,
                in_line: false,
                near_front: false,
                joined_at: 0,
                renewed_at: 0,
                ticket: String::new(),
                pass: String::new(),
                seats: Vec::new(),
                hold: 0,
            })
            .collect();
        let mut worker = Worker {
            con,
            sale,
            shared,
            rng: Rng(seed ^ shoppers.first().map_or(0, |s| s.user as u64)),
            active: shoppers.len(),
            shoppers,
            schedule: BinaryHeap::new(),
            seat_map: SeatMap {
                available: vec![false; sale.seat_names.len()],
                refreshed_at: None,
            },
            sold_out: false,
            next_inventory_check: 0,
            in_line: 0,
            stats: Stats::new(),
            outcome: Outcome::default(),
        };
        for slot in 0..worker.shoppers.len() {
            let at = worker.shoppers[slot].plan.arrives_at_us;
            worker.wake(slot, at);
        }
        worker
    }

    fn wake(&mut self, slot: usize, at: u64) {
        self.shoppers[slot].wake_at = at;
        self.schedule.push(Reverse((at, slot)));
    }

    /// Runs until every user of this worker is done.
    fn run(mut self) -> redis::RedisResult<(Stats, Outcome)> {
        while self.active > 0 {
            let now = self.shared.now_us();
            let mut batch = Vec::new();
            if self.in_line > 0 && !self.sold_out && now >= self.next_inventory_check {
                self.next_inventory_check = now + INVENTORY_CHECK_US;
                batch.push(Request::Inventory);
            }
            let limit = self.pipeline_limit();
            while batch.len() < limit {
                let Some(&Reverse((at, slot))) = self.schedule.peek() else {
                    break;
                };
                if at > now {
                    break;
                }
                self.schedule.pop();
                if self.shoppers[slot].wake_at == at {
                    // Consumed: a second entry with the same time must not send twice.
                    self.shoppers[slot].wake_at = u64::MAX;
                    if let Some(request) = self.next_request(slot, now)? {
                        batch.push(request);
                    }
                }
            }
            if batch.is_empty() {
                if self.schedule.is_empty() {
                    // Every reply handler schedules or finishes its user; this is a bug here.
                    self.outcome.record_unexpected(format!(
                        "{} users were left without a next step",
                        self.active
                    ));
                    break;
                }
                let mut next = self.schedule.peek().map_or(u64::MAX, |r| r.0 .0);
                if self.in_line > 0 && !self.sold_out {
                    next = next.min(self.next_inventory_check);
                }
                let pause = next.saturating_sub(self.shared.now_us()).min(20_000);
                std::thread::sleep(Duration::from_micros(pause));
                continue;
            }
            self.exchange(batch)?;
        }
        Ok((self.stats, self.outcome))
    }

    /// Under `--rps`, pipelines shrink so that each thread sends about 100 of them a second:
    /// the load stays smooth instead of arriving in bursts of MAX_PIPELINE.
    fn pipeline_limit(&self) -> usize {
        match &self.shared.cap {
            Some(cap) => {
                let rate = cap.rate_at(self.shared.started.elapsed().as_secs_f64());
                ((rate / self.shared.threads as f64 / 100.0) as usize).clamp(1, MAX_PIPELINE)
            }
            None => MAX_PIPELINE,
        }
    }

    /// The command a due user sends now, if any.
    fn next_request(&mut self, slot: usize, now: u64) -> redis::RedisResult<Option<Request>> {
        let s = &self.shoppers[slot];
        Ok(Some(match s.step {
            Step::Arrive => Request::Join(slot),
            Step::RetryJoin => Request::RetryJoin(slot),
            Step::Wait => {
                let exit = if self.sold_out {
                    Some(Exit::SoldOutWaiting)
                } else if s
                    .plan
                    .leaves_after_us
                    .is_some_and(|after| now >= s.joined_at + after)
                {
                    Some(Exit::Impatient)
                } else {
                    None
                };
                match exit {
                    Some(exit) => {
                        self.shoppers[slot].step = Step::Leave(exit);
                        Request::Leave(slot, exit)
                    }
                    None if s.near_front && now < s.renewed_at + MAX_POLL_US => {
                        Request::Admit(slot)
                    }
                    None => Request::Status(slot),
                }
            }
            Step::Shop => {
                let wants = s.plan.wants;
                if self.seat_map.is_stale(now) {
                    self.refresh_seat_map()?;
                }
                // Nothing left on the map: guess one seat, so the server says SOLD_OUT or
                // that seats came back (SEAT_UNAVAILABLE, and the map is read again).
                let seats = self.seat_map.pick(wants, &mut self.rng).unwrap_or_else(|| {
                    vec![self.rng.below(self.sale.seat_names.len() as u64) as usize]
                });
                self.shoppers[slot].seats = seats;
                Request::Hold(slot)
            }
            Step::ExtraSeat => match self.seat_map.pick(1, &mut self.rng) {
                Some(seat) => Request::ExtraHold(slot, seat[0]),
                None => {
                    self.shoppers[slot].step = Step::Confirm;
                    Request::Confirm(slot)
                }
            },
            Step::Confirm => Request::Confirm(slot),
            Step::Leave(exit) => Request::Leave(slot, exit),
            Step::Done => return Ok(None),
        }))
    }

    fn refresh_seat_map(&mut self) -> redis::RedisResult<()> {
        let chunks = (0..self.sale.seat_names.len())
            .step_by(SEAT_CHUNK)
            .map(Request::SeatMap)
            .collect();
        self.exchange(chunks)?;
        self.seat_map.refreshed_at = Some(self.shared.now_us());
        Ok(())
    }

    fn build(&self, request: Request) -> redis::Cmd {
        let key = &self.sale.key;
        let names = &self.sale.seat_names;
        let enqueue = |slot: usize| {
            let s = &self.shoppers[slot];
            let mut cmd = redis::cmd("QUEUE.ENQUEUE");
            cmd.arg(key).arg(user_name(s.user));
            if s.plan.idempotency {
                cmd.arg("IDEMPOTENCY").arg(format!("req-{}", s.user));
            }
            cmd
        };
        match request {
            Request::Join(slot) | Request::RetryJoin(slot) => enqueue(slot),
            Request::Status(slot) => redis::cmd("QUEUE.STATUS")
                .arg(key)
                .arg(&self.shoppers[slot].ticket)
                .to_owned(),
            Request::Admit(slot) => redis::cmd("QUEUE.ADMIT")
                .arg(key)
                .arg(&self.shoppers[slot].ticket)
                .to_owned(),
            Request::Leave(slot, _) => redis::cmd("QUEUE.LEAVE")
                .arg(key)
                .arg(&self.shoppers[slot].ticket)
                .to_owned(),
            Request::Hold(slot) => {
                let s = &self.shoppers[slot];
                let mut cmd = redis::cmd("SEAT.HOLD");
                cmd.arg(key).arg(user_name(s.user));
                for &seat in &s.seats {
                    cmd.arg(&names[seat]);
                }
                cmd.arg("PASS").arg(&s.pass);
                cmd
            }
            Request::ExtraHold(slot, seat) => {
                let s = &self.shoppers[slot];
                redis::cmd("SEAT.HOLD")
                    .arg(key)
                    .arg(user_name(s.user))
                    .arg(&names[seat])
                    .arg("PASS")
                    .arg(&s.pass)
                    .to_owned()
            }
            Request::Confirm(slot) => {
                let s = &self.shoppers[slot];
                let mut cmd = redis::cmd("SEAT.CONFIRM");
                cmd.arg(key).arg(user_name(s.user));
                for &seat in &s.seats {
                    cmd.arg(&names[seat]);
                }
                cmd
            }
            Request::SeatMap(first) => {
                let mut cmd = redis::cmd("SEAT.STATUS");
                cmd.arg(key);
                for name in names.iter().skip(first).take(SEAT_CHUNK) {
                    cmd.arg(name);
                }
                cmd
            }
            Request::Inventory => redis::cmd("SEAT.INFO").arg(key).to_owned(),
        }
    }

    /// Sends the batch as one pipeline and handles each reply as it arrives; a command's
    /// latency runs from sending the pipeline to its own reply.
    fn exchange(&mut self, batch: Vec<Request>) -> redis::RedisResult<()> {
        let mut packed = Vec::new();
        for &request in &batch {
            packed.extend(self.build(request).get_packed_command());
        }
        if let Some(cap) = &self.shared.cap {
            cap.acquire(self.shared.started, batch.len());
        }
        let sent = Instant::now();
        self.con.send_packed_command(&packed)?;
        for request in batch {
            let reply = self.con.recv_response()?;
            self.stats.record(request.command(), sent.elapsed(), &reply);
            self.on_reply(request, reply);
        }
        Ok(())
    }

    fn on_reply(&mut self, request: Request, reply: Value) {
        let now = self.shared.now_us();
        match request {
            Request::Join(slot) => self.on_join(slot, &reply, now),
            Request::RetryJoin(slot) => self.on_retried_join(slot, &reply, now),
            Request::Status(slot) => self.on_status(slot, &reply, now),
            Request::Admit(slot) => self.on_admit(slot, &reply, now),
            Request::Hold(slot) => self.on_hold(slot, &reply, now),
            Request::ExtraHold(slot, seat) => self.on_extra_hold(slot, seat, &reply, now),
            Request::Confirm(slot) => self.on_confirm(slot, &reply),
            Request::Leave(slot, exit) => self.on_leave(slot, exit, &reply),
            Request::SeatMap(first) => self.on_seat_map(first, &reply),
            Request::Inventory => self.on_inventory(&reply, now),
        }
    }

    fn unexpected(&mut self, slot: usize, what: &str, reply: &Value) {
        let user = user_name(self.shoppers[slot].user);
        self.outcome
            .record_unexpected(format!("{what} by {user}: {}", describe(reply)));
    }

    fn leave_line(&mut self, slot: usize) {
        if std::mem::take(&mut self.shoppers[slot].in_line) {
            self.in_line -= 1;
            self.shared.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn finish(&mut self, slot: usize) {
        self.leave_line(slot);
        self.shoppers[slot].step = Step::Done;
        self.active -= 1;
        self.shared.finished.fetch_add(1, Ordering::Relaxed);
    }

    /// Next poll of a waiting user from its position: near the front it asks QUEUE.ADMIT when
    /// its turn should come at RATE; further back it polls QUEUE.STATUS at half its ETA.
    fn schedule_wait(&mut self, slot: usize, now: u64, position: u64, eta_ms: u64) {
        let jitter = 80 + self.rng.below(41); // percent, so polls do not synchronise
        let s = &mut self.shoppers[slot];
        s.near_front = position <= NEAR_FRONT;
        let delay = if s.near_front {
            position.saturating_sub(1) * 1_000_000 / RATE
        } else {
            (eta_ms * 500).clamp(MIN_POLL_US, MAX_POLL_US) * jitter / 100
        };
        let mut at = now + delay.min(MAX_POLL_US);
        if let Some(after) = s.plan.leaves_after_us {
            at = at.min(s.joined_at + after);
        }
        self.wake(slot, at);
    }

    fn on_join(&mut self, slot: usize, reply: &Value, now: u64) {
        let ticket = field_text(reply, "ticket");
        let position = field_int(reply, "position");
        let (Some(position), false) = (position, ticket.is_empty()) else {
            self.unexpected(slot, "QUEUE.ENQUEUE", reply);
            return self.finish(slot);
        };
        if field_text(reply, "state") != "waiting" || field_int(reply, "existing") != Some(0) {
            self.unexpected(slot, "QUEUE.ENQUEUE of a new user", reply);
        }
        self.outcome.joined += 1;
        self.shared.joined.fetch_add(1, Ordering::Relaxed);
        self.shared.waiting.fetch_add(1, Ordering::Relaxed);
        self.in_line += 1;
        let s = &mut self.shoppers[slot];
        s.ticket = ticket;
        s.in_line = true;
        s.joined_at = now;
        s.renewed_at = now;
        if s.plan.retries_join {
            // The browser retries the request, as if the reply had been lost.
            s.step = Step::RetryJoin;
            let at = now + self.rng.between(RETRY_JOIN_US);
            self.wake(slot, at);
        } else {
            s.step = Step::Wait;
            let eta_ms = position.saturating_sub(1) * 1000 / RATE;
            self.schedule_wait(slot, now, position, eta_ms);
        }
    }

    fn on_retried_join(&mut self, slot: usize, reply: &Value, now: u64) {
        self.outcome.retried_joins += 1;
        match error_of(reply) {
            Some(("DUPLICATE", ticket)) if ticket == self.shoppers[slot].ticket => {
                self.outcome.duplicates_refused += 1
            }
            _ => self.unexpected(slot, "retried QUEUE.ENQUEUE (same IDEMPOTENCY key)", reply),
        }
        self.shoppers[slot].step = Step::Wait;
        self.wake(slot, now);
    }

    fn on_status(&mut self, slot: usize, reply: &Value, now: u64) {
        match field_text(reply, "state").as_str() {
            "waiting" => {
                self.shoppers[slot].renewed_at = now;
                let position = field_int(reply, "position").unwrap_or(1);
                let eta_ms = field_int(reply, "eta_ms").unwrap_or(0);
                self.schedule_wait(slot, now, position, eta_ms);
            }
            "expired" => {
                // The heartbeat lapsed: this client was slower than it meant to be.
                self.outcome.lapsed_waiting += 1;
                self.finish(slot);
            }
            _ => {
                self.unexpected(slot, "QUEUE.STATUS of a waiting ticket", reply);
                self.finish(slot);
            }
        }
    }

    fn on_admit(&mut self, slot: usize, reply: &Value, now: u64) {
        match error_of(reply) {
            None => {
                let pass = field_text(reply, "pass");
                if pass.len() != 32 || field_int(reply, "existing") != Some(0) {
                    self.unexpected(slot, "QUEUE.ADMIT", reply);
                    return self.finish(slot);
                }
                self.outcome.admitted += 1;
                self.shared.admitted.fetch_add(1, Ordering::Relaxed);
                self.leave_line(slot);
                self.shoppers[slot].pass = pass;
                self.shoppers[slot].step = Step::Shop;
                let at = now + self.rng.between(PAGE_LOAD_US);
                self.wake(slot, at);
            }
            Some((code @ ("NOT_READY" | "RATE_LIMITED"), detail)) => {
                let (Some(position), Some(retry_ms)) = (
                    number_after(detail, "position"),
                    number_after(detail, "retry_after_ms"),
                ) else {
                    self.unexpected(slot, code, reply);
                    return self.finish(slot);
                };
                let s = &mut self.shoppers[slot];
                s.near_front = position <= NEAR_FRONT;
                let at = now + (retry_ms * 1000).clamp(1000, MAX_POLL_US);
                self.wake(slot, at);
            }
            Some(("TICKET_ENDED", "expired")) => {
                self.outcome.lapsed_waiting += 1;
                self.finish(slot);
            }
            Some(_) => {
                self.unexpected(slot, "QUEUE.ADMIT", reply);
                self.finish(slot);
            }
        }
    }

    fn on_hold(&mut self, slot: usize, reply: &Value, now: u64) {
        match error_of(reply) {
            None => {
                let asked = self.shoppers[slot].seats.len() as u64;
                let Some(hold) = field_int(reply, "hold") else {
                    self.unexpected(slot, "SEAT.HOLD", reply);
                    return self.finish(slot);
                };
                if field_int(reply, "seats") != Some(asked) {
                    self.unexpected(slot, "SEAT.HOLD (seats held != asked)", reply);
                }
                self.outcome.holds_made += 1;
                let s = &mut self.shoppers[slot];
                s.hold = hold;
                if s.plan.abandons {
                    // The tab is closed: the hold and the session must lapse on the server.
                    self.outcome.abandoned_holds.push(hold);
                    return self.finish(slot);
                }
                // A greedy user tries a fifth seat halfway through the thinking.
                let think = if s.plan.greedy && s.seats.len() == USER_LIMIT {
                    s.step = Step::ExtraSeat;
                    s.plan.think_us / 2
                } else {
                    s.step = Step::Confirm;
                    s.plan.think_us
                };
                let at = now + think;
                self.wake(slot, at);
            }
            Some(("SEAT_UNAVAILABLE", taken)) => {
                // Taken by another worker's user since the map was read: the others we asked
                // for may still be free.
                for &seat in &self.shoppers[slot].seats {
                    self.seat_map.available[seat] = self.sale.seat_names[seat] != taken;
                }
                // After a guess on an empty map, seats exist that the map does not show yet:
                // look again once it has been read again.
                let at = match self.seat_map.refreshed_at {
                    Some(read) if !self.seat_map.available.contains(&true) => {
                        now.max(read + SEAT_MAP_MAX_AGE_US)
                    }
                    _ => now,
                };
                self.wake(slot, at);
            }
            Some(("SOLD_OUT", _)) => {
                self.shoppers[slot].step = Step::Leave(Exit::SoldOutAdmitted);
                self.wake(slot, now);
            }
            Some(("PASS_INVALID", _)) => {
                // The pass expired before this user got to hold: too slow.
                self.outcome.passes_lost += 1;
                self.finish(slot);
            }
            Some(_) => {
                self.unexpected(slot, "SEAT.HOLD", reply);
                self.finish(slot);
            }
        }
    }

    fn on_extra_hold(&mut self, slot: usize, seat: usize, reply: &Value, now: u64) {
        match error_of(reply) {
            Some(("LIMIT_EXCEEDED", _)) => {
                self.outcome.limit_refusals += 1;
                self.seat_map.available[seat] = true;
            }
            // The seat went first: SEAT.HOLD checks the seats before the limit.
            Some(("SEAT_UNAVAILABLE" | "SOLD_OUT", _)) => {}
            None => {
                // Over USER-LIMIT: buy it too, so the journal check reports the violation.
                self.unexpected(slot, "SEAT.HOLD of a seat above USER-LIMIT", reply);
                self.shoppers[slot].seats.push(seat);
            }
            Some(_) => self.unexpected(slot, "SEAT.HOLD of an extra seat", reply),
        }
        let s = &mut self.shoppers[slot];
        s.step = Step::Confirm;
        let at = now + s.plan.think_us / 2;
        self.wake(slot, at);
    }

    fn on_confirm(&mut self, slot: usize, reply: &Value) {
        let seats = self.shoppers[slot].seats.len() as u64;
        match error_of(reply) {
            None if field_int(reply, "sold") == Some(seats) => {
                let user = self.shoppers[slot].user;
                self.outcome.buyers += 1;
                self.outcome
                    .bought
                    .extend(self.shoppers[slot].seats.iter().map(|&seat| (seat, user)));
                self.shared.sold.fetch_add(seats, Ordering::Relaxed);
            }
            Some(("HOLD_EXPIRED", _)) => {
                let hold = self.shoppers[slot].hold;
                self.outcome.late_holds.push(hold);
            }
            _ => self.unexpected(slot, "SEAT.CONFIRM", reply),
        }
        self.finish(slot);
    }

    fn on_leave(&mut self, slot: usize, exit: Exit, reply: &Value) {
        match (reply, exit) {
            (Value::Int(1), Exit::Impatient) => self.outcome.left_impatient += 1,
            (Value::Int(1), Exit::SoldOutWaiting) => self.outcome.left_sold_out_waiting += 1,
            (Value::Int(1), Exit::SoldOutAdmitted) => self.outcome.gave_up_sold_out += 1,
            // 0: the ticket had lapsed while waiting, or the session's pass had expired.
            (Value::Int(0), Exit::SoldOutAdmitted) => self.outcome.passes_lost += 1,
            (Value::Int(0), _) => self.outcome.lapsed_waiting += 1,
            _ => self.unexpected(slot, "QUEUE.LEAVE", reply),
        }
        self.finish(slot);
    }

    fn on_seat_map(&mut self, first: usize, reply: &Value) {
        let Value::Array(records) = reply else {
            return self
                .outcome
                .record_unexpected(format!("SEAT.STATUS: {}", describe(reply)));
        };
        for (i, record) in records.iter().enumerate() {
            self.seat_map.available[first + i] = field_text(record, "state") == "available";
        }
    }

    fn on_inventory(&mut self, reply: &Value, now: u64) {
        let count = |name| field_int(reply, name);
        let (Some(total), Some(available), Some(held), Some(sold)) = (
            count("total"),
            count("available"),
            count("held"),
            count("sold"),
        ) else {
            return self
                .outcome
                .record_unexpected(format!("SEAT.INFO: {}", describe(reply)));
        };
        self.outcome.inventory_samples += 1;
        if sold + held + available != total {
            self.outcome.inventory_mismatches.push(format!(
                "sold {sold} + held {held} + available {available} != total {total}"
            ));
        }
        if available == 0 && held == 0 {
            // Nothing can come back: everyone still waiting leaves now.
            self.sold_out = true;
            let _ = self.shared.sold_out_at_us.compare_exchange(
                0,
                now.max(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            for slot in 0..self.shoppers.len() {
                if self.shoppers[slot].step == Step::Wait {
                    self.wake(slot, now);
                }
            }
        }
    }
}

// ---- the run --------------------------------------------------------------------------------

fn connect(url: &str) -> redis::RedisResult<Connection> {
    let con = redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(5))?;
    con.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(con)
}

fn query<T: FromRedisValue>(con: &mut Connection, cmd: &redis::Cmd, what: &str) -> T {
    cmd.query(con)
        .unwrap_or_else(|e| fail(&format!("{what} failed: {e}")))
}

/// The event's settings, as QUEUE.CONFIG SET takes them. The journal ones and OPENS-AT are
/// set too because the checks need them and a server's defaults may differ.
fn event_settings() -> [(&'static str, String); 12] {
    [
        ("RATE", RATE.to_string()),
        ("BURST", BURST.to_string()),
        ("CAPACITY", CAPACITY.to_string()),
        ("HEARTBEAT", HEARTBEAT_MS.to_string()),
        ("PASS-TTL", PASS_TTL_MS.to_string()),
        ("HOLD-TTL", HOLD_TTL_MS.to_string()),
        ("USER-LIMIT", USER_LIMIT.to_string()),
        ("REQUIRE-PASS", "on".to_string()),
        ("CONFIRM-ENDS-SESSION", "on".to_string()),
        ("JOURNAL", "on".to_string()),
        ("JOURNAL-MAXAGE", JOURNAL_MAXAGE_MS.to_string()),
        ("OPENS-AT", "0".to_string()),
    ]
}

/// Creates the event: settings, seats, and the journal key it reports.
fn create_sale(con: &mut Connection, seats: usize) -> Sale {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    // A hash tag keeps the journal in the event's slot; the time and pid keep reruns against
    // the same server (--url) apart.
    let key = format!("flash:{{{ms}-{}}}", std::process::id());
    let mut config = redis::cmd("QUEUE.CONFIG");
    config.arg(&key).arg("SET");
    for (name, value) in event_settings() {
        config.arg(name).arg(value);
    }
    let _: () = query(con, &config, "QUEUE.CONFIG (is seatq loaded?)");
    let seat_names: Vec<String> = (0..seats).map(seat_name).collect();
    for chunk in seat_names.chunks(SEAT_CHUNK) {
        let _: u64 = query(con, redis::cmd("SEAT.ADD").arg(&key).arg(chunk), "SEAT.ADD");
    }
    let info: Value = query(con, redis::cmd("QUEUE.INFO").arg(&key), "QUEUE.INFO");
    let journal = field_text(&info, "journal_key");
    let seat_index = seat_names
        .iter()
        .enumerate()
        .map(|(i, name)| (name.clone(), i))
        .collect();
    Sale {
        key,
        journal,
        seat_names,
        seat_index,
    }
}

fn server_version(con: &mut Connection) -> String {
    let info: String = query(con, redis::cmd("INFO").arg("server"), "INFO server");
    // Valkey reports a redis_version for compatibility, and its own valkey_version.
    let line = |prefix| info.lines().find(|l: &&str| l.starts_with(prefix));
    line("valkey_version")
        .or_else(|| line("redis_version"))
        .unwrap_or("unknown version")
        .trim()
        .to_string()
}

/// Runs every user to the end, with a progress bar; returns what they saw.
fn run_sale(
    url: &str,
    sale: &Sale,
    shared: &Shared,
    options: &Options,
    seed: u64,
) -> (Stats, Outcome) {
    let bar = ProgressBar::new(options.users as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:28}] {pos}/{len} done  {msg}")
            .expect("progress template")
            .progress_chars("=> "),
    );
    let results = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..options.threads)
            .map(|t| {
                scope.spawn(move || {
                    let users = (t..options.users)
                        .step_by(options.threads)
                        .map(|u| u as u32);
                    let con = connect(url)?;
                    Worker::new(con, sale, shared, users, seed, options.arrival).run()
                })
            })
            .collect();
        while !workers.iter().all(|w| w.is_finished()) {
            bar.set_position(shared.finished.load(Ordering::Relaxed));
            bar.set_message(format!(
                "joined {}  waiting {}  admitted {}  sold {}/{}",
                shared.joined.load(Ordering::Relaxed),
                shared.waiting.load(Ordering::Relaxed),
                shared.admitted.load(Ordering::Relaxed),
                shared.sold.load(Ordering::Relaxed),
                sale.seat_names.len()
            ));
            std::thread::sleep(Duration::from_millis(100));
        }
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<Vec<_>>()
    });
    bar.finish_and_clear();
    let mut stats = Stats::new();
    let mut outcome = Outcome::default();
    for result in results {
        let (s, o) = result.unwrap_or_else(|e| fail(&format!("a worker lost the server: {e}")));
        stats.merge(s);
        outcome.merge(o);
    }
    (stats, outcome)
}

// ---- the journal ----------------------------------------------------------------------------

#[derive(Clone, PartialEq, Eq, Debug)]
enum SeatFate {
    Available,
    Held(String),
    Sold(String),
}

/// The event rebuilt from its journal: the line (for the admission order) and every seat.
struct Replay {
    /// The last entry read; reading resumes after it.
    last_id: Option<String>,
    entries: u64,
    types: BTreeMap<String, u64>,
    session_ends: BTreeMap<String, u64>,
    waiting: BTreeSet<TicketId>,
    joined: u64,
    admitted: u64,
    last_admitted: Option<TicketId>,
    /// Server times (ms) of the first and the last admission, from their entry IDs.
    admission_span_ms: Option<(u64, u64)>,
    admissions_out_of_order: u64,
    seats: Vec<SeatFate>,
    sales_per_seat: Vec<u32>,
    sold_per_user: HashMap<String, usize>,
    expired_holds: HashSet<u64>,
    anomalies: Vec<String>,
}

impl Replay {
    fn new(seats: usize) -> Replay {
        Replay {
            last_id: None,
            entries: 0,
            types: BTreeMap::new(),
            session_ends: BTreeMap::new(),
            waiting: BTreeSet::new(),
            joined: 0,
            admitted: 0,
            last_admitted: None,
            admission_span_ms: None,
            admissions_out_of_order: 0,
            seats: vec![SeatFate::Available; seats],
            sales_per_seat: vec![0; seats],
            sold_per_user: HashMap::new(),
            expired_holds: HashSet::new(),
            anomalies: Vec::new(),
        }
    }

    fn anomaly(&mut self, what: String) {
        if self.anomalies.len() < SHOWN_PROBLEMS {
            self.anomalies.push(what);
        }
    }

    /// Reads the entries appended since the last call.
    fn catch_up(&mut self, con: &mut Connection, sale: &Sale) {
        loop {
            let start = match &self.last_id {
                Some(id) => format!("({id}"),
                None => "-".to_string(),
            };
            let entries: Vec<(String, Vec<String>)> = query(
                con,
                redis::cmd("XRANGE")
                    .arg(&sale.journal)
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(JOURNAL_CHUNK),
                "XRANGE of the journal",
            );
            let complete = entries.len() < JOURNAL_CHUNK;
            for (id, fields) in entries {
                self.apply(&id, &fields, sale);
                self.last_id = Some(id);
            }
            if complete {
                return;
            }
        }
    }

    fn apply(&mut self, id: &str, fields: &[String], sale: &Sale) {
        let get = |name: &str| {
            fields
                .chunks(2)
                .find(|pair| pair.len() == 2 && pair[0] == name)
                .map_or("", |pair| pair[1].as_str())
        };
        let kind = get("type");
        self.entries += 1;
        *self.types.entry(kind.to_string()).or_default() += 1;
        let ticket = ticket_id(get("ticket"));
        let user = get("user").to_string();
        let mut seats = Vec::new();
        for name in get("seats").split(',').filter(|s| !s.is_empty()) {
            match sale.seat_index.get(name) {
                Some(&i) => seats.push(i),
                None => self.anomaly(format!("{id}: unknown seat {name}")),
            }
        }
        match (kind, ticket) {
            ("joined", Some(t)) => {
                self.joined += 1;
                self.waiting.insert(t);
            }
            ("left" | "expired", Some(t)) => {
                self.waiting.remove(&t);
            }
            ("admitted", Some(t)) => {
                self.admitted += 1;
                // Only the front of the line may be admitted: the earliest waiting ticket.
                let first_waiting = self.waiting.first() == Some(&t);
                let increasing = self.last_admitted.is_none_or(|last| last < t);
                if !first_waiting || !increasing {
                    self.admissions_out_of_order += 1;
                    self.anomaly(format!(
                        "{id}: ticket {} admitted out of order",
                        get("ticket")
                    ));
                }
                self.waiting.remove(&t);
                self.last_admitted = Some(t);
                if let Some((at, _)) = ticket_id(id) {
                    let first = self.admission_span_ms.map_or(at, |(first, _)| first);
                    self.admission_span_ms = Some((first, at));
                }
            }
            ("session_ended", _) => {
                *self
                    .session_ends
                    .entry(get("reason").to_string())
                    .or_default() += 1;
            }
            ("held", _) => {
                for s in seats {
                    if self.seats[s] != SeatFate::Available {
                        self.anomaly(format!(
                            "{id}: {user} held {} that was not available",
                            sale.seat_names[s]
                        ));
                    }
                    self.seats[s] = SeatFate::Held(user.clone());
                }
            }
            ("released" | "hold_expired" | "sold", _) => {
                if kind == "hold_expired" {
                    self.expired_holds
                        .insert(get("hold").parse().unwrap_or(u64::MAX));
                }
                if kind == "sold" {
                    *self.sold_per_user.entry(user.clone()).or_default() += seats.len();
                }
                for s in seats {
                    if self.seats[s] != SeatFate::Held(user.clone()) {
                        self.anomaly(format!(
                            "{id}: {kind} {} that {user} did not hold",
                            sale.seat_names[s]
                        ));
                    }
                    self.seats[s] = if kind == "sold" {
                        self.sales_per_seat[s] += 1;
                        SeatFate::Sold(user.clone())
                    } else {
                        SeatFate::Available
                    };
                }
            }
            ("opened", _) => {}
            _ => self.anomaly(format!("{id}: unexpected entry {fields:?}")),
        }
    }
}

// ---- the end of the sale --------------------------------------------------------------------

/// The event once the users are done and the last holds have lapsed.
struct FinalState {
    seats: Vec<SeatFate>,
    seat_info: Value,
    queue_info: Value,
    replay: Replay,
    /// Seconds waited for the last holds to lapse and be returned.
    settle_secs: f64,
}

fn seat_info(con: &mut Connection, sale: &Sale) -> Value {
    query(con, redis::cmd("SEAT.INFO").arg(&sale.key), "SEAT.INFO")
}

fn count(record: &Value, name: &str) -> u64 {
    field_int(record, name).unwrap_or(u64::MAX)
}

/// Waits until no seat is held and every lapsed hold is in the journal as `hold_expired`
/// (the server's timer returns them; HOLD-TTL plus a margin at most), then reads the event.
fn settle(con: &mut Connection, sale: &Sale) -> FinalState {
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner.set_message("waiting for the last holds to lapse");
    let started = Instant::now();
    let deadline = started + Duration::from_millis(HOLD_TTL_MS + 5000);
    while count(&seat_info(con, sale), "held") != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    spinner.set_message("reading the journal");
    let mut replay = Replay::new(sale.seat_names.len());
    loop {
        replay.catch_up(con, sale);
        let lapsed = count(&seat_info(con, sale), "holds_expired_total");
        if replay.expired_holds.len() as u64 >= lapsed || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let settle_secs = started.elapsed().as_secs_f64();
    spinner.set_message("reading the seats");
    let mut seats = Vec::with_capacity(sale.seat_names.len());
    for chunk in sale.seat_names.chunks(SEAT_CHUNK) {
        let records: Vec<Value> = query(
            con,
            redis::cmd("SEAT.STATUS").arg(&sale.key).arg(chunk),
            "SEAT.STATUS",
        );
        seats.extend(records.iter().map(|r| {
            let holder = field_text(r, "holder");
            match field_text(r, "state").as_str() {
                "held" => SeatFate::Held(holder),
                "sold" => SeatFate::Sold(holder),
                _ => SeatFate::Available,
            }
        }));
    }
    spinner.finish_and_clear();
    FinalState {
        seats,
        seat_info: seat_info(con, sale),
        queue_info: query(con, redis::cmd("QUEUE.INFO").arg(&sale.key), "QUEUE.INFO"),
        replay,
        settle_secs,
    }
}

// ---- the report -----------------------------------------------------------------------------

fn percentile(sorted: &[u32], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

fn print_commands(stats: &mut Stats, sale_secs: f64) {
    println!(
        "\n{:<14} {:>9} {:>9} {:>8} {:>8} {:>8}  error replies",
        "command", "calls", "calls/s", "p50 ms", "p95 ms", "p99 ms"
    );
    let mut all: Vec<u32> = Vec::new();
    for command in COMMANDS {
        let entry = &mut stats.0[command as usize];
        if entry.latencies_us.is_empty() {
            continue;
        }
        entry.latencies_us.sort_unstable();
        let v = &entry.latencies_us;
        let errors: Vec<String> = entry
            .errors
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        println!(
            "{:<14} {:>9} {:>9.0} {:>8.2} {:>8.2} {:>8.2}  {}",
            command.name(),
            v.len(),
            v.len() as f64 / sale_secs,
            percentile(v, 0.5),
            percentile(v, 0.95),
            percentile(v, 0.99),
            if errors.is_empty() {
                "-".to_string()
            } else {
                errors.join(", ")
            }
        );
        all.extend_from_slice(v);
    }
    all.sort_unstable();
    if !all.is_empty() {
        println!(
            "{:<14} {:>9} {:>9.0} {:>8.2} {:>8.2} {:>8.2}",
            "all",
            all.len(),
            all.len() as f64 / sale_secs,
            percentile(&all, 0.5),
            percentile(&all, 0.95),
            percentile(&all, 0.99)
        );
    }
    println!(
        "latency: client-observed, from sending a pipeline (up to {MAX_PIPELINE} commands of \
         different users) to the command's own reply; calls/s over the sale"
    );
}

fn print_totals(outcome: &Outcome, end: &FinalState, shared: &Shared, sale: &Sale) {
    let info = &end.seat_info;
    let abandoned = outcome.abandoned_holds.len();
    println!("\ntotals");
    println!(
        "  users joined {}; retried joins refused as DUPLICATE {} of {}",
        outcome.joined, outcome.duplicates_refused, outcome.retried_joins
    );
    println!(
        "  left the line while waiting {}; left when sold out: waiting {}, admitted (SOLD_OUT) {}",
        outcome.left_impatient, outcome.left_sold_out_waiting, outcome.gave_up_sold_out
    );
    // Only the front of the line can be admitted, so the line moves as fast as the front
    // user's client comes back, which may be slower than RATE.
    let admission_rate = match end.replay.admission_span_ms {
        Some((first, last)) if last > first => {
            format!(
                "{:.0}",
                (end.replay.admitted - 1) as f64 * 1000.0 / (last - first) as f64
            )
        }
        _ => "-".to_string(),
    };
    println!(
        "  admitted {} (QUEUE.INFO admitted_total {}), {admission_rate}/s from the first to the \
         last admission (server time; RATE {RATE})",
        outcome.admitted,
        count(&end.queue_info, "admitted_total")
    );
    println!(
        "  holds made {}; abandoned {abandoned}; lapsed before the confirm {}; returned by the \
         server {} (journal hold_expired; SEAT.INFO holds_expired_total {})",
        outcome.holds_made,
        outcome.late_holds.len(),
        end.replay.expired_holds.len(),
        count(info, "holds_expired_total")
    );
    println!(
        "  fifth seats refused by USER-LIMIT {}",
        outcome.limit_refusals
    );
    let sold = outcome.bought.len();
    println!(
        "  seats sold {sold} of {} to {} buyers ({:.2} each); available at the end {}",
        sale.seat_names.len(),
        outcome.buyers,
        sold as f64 / outcome.buyers.max(1) as f64,
        count(info, "available")
    );
    match shared.sold_out_at_us.load(Ordering::Relaxed) {
        _ if count(info, "available") > 0 => println!("  not sold out: the line ran out first"),
        0 => println!("  sold out as the last users finished"),
        at => println!("  sold out after {:.1} s", at as f64 / 1e6),
    }
    if outcome.lapsed_waiting + outcome.passes_lost > 0 {
        println!(
            "  WARNING: clients too slow: {} tickets lapsed while waiting, {} passes expired \
             before use (is --rps below what the users need?)",
            outcome.lapsed_waiting, outcome.passes_lost
        );
    }
    let types: Vec<String> = end
        .replay
        .types
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect();
    println!(
        "  journal {} entries: {}",
        end.replay.entries,
        types.join(", ")
    );
    let ends: Vec<String> = end
        .replay
        .session_ends
        .iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    println!("  sessions ended by: {}", ends.join(", "));
}

/// The module's own view of the same load (INFO seatq), for a server only this demo used.
fn print_module_view(con: &mut Connection) {
    let info: String = query(con, redis::cmd("INFO").arg("seatq"), "INFO seatq");
    println!("\nthe module's view (INFO seatq, server-side latency)");
    for line in info.lines() {
        let Some((name, stats)) = line.split_once(':') else {
            continue;
        };
        if let Some(command) = name.strip_prefix("seatq_cmd_") {
            let pick = |key: &str| {
                stats
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                    .unwrap_or("?")
            };
            println!(
                "  {command:<14} calls {:>8}  p50 {:>7} us  p99 {:>7} us  max {:>9} us",
                pick("calls"),
                pick("p50_usec"),
                pick("p99_usec"),
                pick("max_usec")
            );
        } else if name.ends_with("_total") {
            println!("  {name} {stats}");
        }
    }
}

/// One invariant's verdict.
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
}

fn check_invariants(outcome: &Outcome, end: &FinalState, sale: &Sale) -> Vec<Check> {
    let replay = &end.replay;
    let info = &end.seat_info;
    let mut checks = Vec::new();

    // 1. No seat sold twice, and every sale a client was told about is in SEAT.STATUS.
    let sold_twice = replay.sales_per_seat.iter().filter(|&&n| n > 1).count();
    let not_theirs: Vec<&(usize, u32)> = outcome
        .bought
        .iter()
        .filter(|&&(seat, user)| end.seats[seat] != SeatFate::Sold(user_name(user)))
        .collect();
    checks.push(Check {
        name: "no seat sold twice",
        ok: sold_twice == 0 && not_theirs.is_empty(),
        detail: format!(
            "{} seats sold in the journal, {sold_twice} of them more than once; {} seats \
             clients bought, {} not sold to them in SEAT.STATUS{}",
            replay.sales_per_seat.iter().filter(|&&n| n > 0).count(),
            outcome.bought.len(),
            not_theirs.len(),
            not_theirs
                .first()
                .map(|(seat, user)| format!(
                    " (e.g. {} of {})",
                    sale.seat_names[*seat],
                    user_name(*user)
                ))
                .unwrap_or_default()
        ),
    });

    // 2. Inventory adds up, nothing is left held, every abandoned hold came back.
    let (total, available, held, sold) = (
        count(info, "total"),
        count(info, "available"),
        count(info, "held"),
        count(info, "sold"),
    );
    let left_behind: Vec<u64> = outcome
        .abandoned_holds
        .iter()
        .chain(&outcome.late_holds)
        .copied()
        .filter(|h| !replay.expired_holds.contains(h))
        .collect();
    let client_lapsed: HashSet<u64> = outcome
        .abandoned_holds
        .iter()
        .chain(&outcome.late_holds)
        .copied()
        .collect();
    let wrongly_expired = replay.expired_holds.difference(&client_lapsed).count();
    checks.push(Check {
        name: "sold + held + available == total; abandoned holds came back",
        ok: sold + held + available == total
            && held == 0
            && outcome.inventory_mismatches.is_empty()
            && left_behind.is_empty()
            && wrongly_expired == 0,
        detail: format!(
            "{sold} + {held} + {available} == {total} at the end (after {:.1} s for holds to \
             lapse), {} of {} samples during the sale off; {} abandoned or late holds, {} not \
             returned; {wrongly_expired} returned holds that clients confirmed{}",
            end.settle_secs,
            outcome.inventory_mismatches.len(),
            outcome.inventory_samples,
            client_lapsed.len(),
            left_behind.len(),
            outcome
                .inventory_mismatches
                .first()
                .map(|m| format!(" (e.g. {m})"))
                .unwrap_or_default()
        ),
    });

    // 3. Admissions in join order.
    checks.push(Check {
        name: "admissions in join order",
        ok: replay.admissions_out_of_order == 0,
        detail: format!(
            "{} admitted entries, {} not the earliest waiting ticket or not after the previous one",
            replay.admitted, replay.admissions_out_of_order
        ),
    });

    // 4. Nobody above USER-LIMIT.
    let most = replay.sold_per_user.values().copied().max().unwrap_or(0);
    let over = replay
        .sold_per_user
        .values()
        .filter(|&&n| n > USER_LIMIT)
        .count();
    checks.push(Check {
        name: "no user above USER-LIMIT",
        ok: over == 0,
        detail: format!(
            "most seats sold to one user {most} (limit {USER_LIMIT}); {over} users above; \
             {} fifth seats refused",
            outcome.limit_refusals
        ),
    });

    // 5. The journal replays to the final state, and counts what the clients saw.
    let differing = end
        .seats
        .iter()
        .zip(&replay.seats)
        .filter(|(now, replayed)| now != replayed)
        .count();
    let admitted_total = count(&end.queue_info, "admitted_total");
    let joined_total = count(&end.queue_info, "joined_total");
    checks.push(Check {
        name: "journal replay == final state",
        ok: differing == 0
            && replay.anomalies.is_empty()
            && replay.admitted == outcome.admitted
            && admitted_total == outcome.admitted
            && replay.joined == outcome.joined
            && joined_total == outcome.joined,
        detail: format!(
            "{} seats, {differing} differ from SEAT.STATUS; admitted {} (journal) / {} \
             (clients) / {admitted_total} (QUEUE.INFO); joined {} / {} / {joined_total}{}",
            end.seats.len(),
            replay.admitted,
            outcome.admitted,
            replay.joined,
            outcome.joined,
            replay
                .anomalies
                .first()
                .map(|a| format!("; {} anomalies, e.g. {a}", replay.anomalies.len()))
                .unwrap_or_default()
        ),
    });

    checks.push(Check {
        name: "retried joins refused as DUPLICATE",
        ok: outcome.duplicates_refused == outcome.retried_joins,
        detail: format!(
            "{} of {} retries answered DUPLICATE with the first ticket",
            outcome.duplicates_refused, outcome.retried_joins
        ),
    });
    checks.push(Check {
        name: "no unexpected replies",
        ok: outcome.unexpected_total == 0,
        detail: match outcome.unexpected.first() {
            Some(first) => format!("{} unexpected, e.g. {first}", outcome.unexpected_total),
            None => "0".to_string(),
        },
    });
    checks
}

fn main() {
    let options = parse_options();
    let seats = options
        .seats
        .unwrap_or_else(|| DEFAULT_SEATS.min(options.users / 2).max(1));
    let seed = options.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let wall = Instant::now();
    let throwaway = options
        .url
        .is_none()
        .then(|| server::Server::start(options.server, &[]));
    let url = match (&options.url, &throwaway) {
        (Some(url), _) => url.clone(),
        (None, Some(server)) => server.url(),
        (None, None) => unreachable!("a server was started"),
    };
    let mut con = connect(&url).unwrap_or_else(|e| fail(&format!("cannot connect to {url}: {e}")));
    let version = server_version(&mut con);
    let sale = create_sale(&mut con, seats);

    println!("seatq flash-sale simulator");
    println!(
        "  server    {url} ({}{version})",
        if throwaway.is_some() {
            "throwaway, "
        } else {
            ""
        }
    );
    println!("  event     {}  journal {}", sale.key, sale.journal);
    println!(
        "  seats     {seats} named, {} .. {} (rows of {SEATS_PER_ROW}, sections of {ROWS_PER_SECTION} rows)",
        sale.seat_names[0],
        sale.seat_names[seats - 1]
    );
    let settings: Vec<String> = event_settings()
        .iter()
        .map(|(name, value)| format!("{name} {value}"))
        .collect();
    println!(
        "  settings  {} (QUEUE.CONFIG SET; times in ms, RATE per second)",
        settings.join("  ")
    );
    println!(
        "  users     {} on {} threads, arriving within {:.1} s; load {}",
        options.users,
        options.threads,
        options.arrival.as_secs_f64(),
        match options.rps {
            None => "not capped".to_string(),
            Some((a, b)) if a == b => format!("capped at {a} commands/s"),
            Some((a, b)) => format!("capped from {a} to {b} commands/s over the arrival phase"),
        }
    );
    println!(
        "  behaviour {IDEMPOTENCY_PCT}% join with IDEMPOTENCY ({RETRY_JOIN_PCT}% of them retry), \
         {LEAVE_WHILE_WAITING_PCT}% leave while waiting, {ABANDON_PCT}% abandon their hold, \
         {GREEDY_PCT}% try a fifth seat; seed {seed}"
    );

    let shared = Shared {
        started: Instant::now(),
        cap: options.rps.map(|(from, to)| RateCap {
            from,
            to,
            ramp_secs: options.arrival.as_secs_f64(),
            next_free: Mutex::new(0.0),
        }),
        threads: options.threads,
        joined: AtomicU64::new(0),
        waiting: AtomicU64::new(0),
        admitted: AtomicU64::new(0),
        sold: AtomicU64::new(0),
        finished: AtomicU64::new(0),
        sold_out_at_us: AtomicU64::new(0),
    };
    let (mut stats, outcome) = run_sale(&url, &sale, &shared, &options, seed);
    let sale_secs = shared.started.elapsed().as_secs_f64();
    let end = settle(&mut con, &sale);

    println!("\nsale: {} users done in {sale_secs:.1} s", options.users);
    print_commands(&mut stats, sale_secs);
    print_totals(&outcome, &end, &shared, &sale);
    if throwaway.is_some() {
        print_module_view(&mut con);
    }
    let checks = check_invariants(&outcome, &end, &sale);
    println!("\ninvariants");
    for (i, check) in checks.iter().enumerate() {
        println!(
            "  {} {}. {}: {}",
            if check.ok { "OK    " } else { "FAILED" },
            i + 1,
            check.name,
            check.detail
        );
    }
    if throwaway.is_none() {
        println!(
            "\nthe event and its journal are left on the server: UNLINK {} {}",
            sale.key, sale.journal
        );
    }
    println!("\nwall time {:.1} s", wall.elapsed().as_secs_f64());
    if checks.iter().any(|c| !c.ok) {
        std::process::exit(1);
    }
}
