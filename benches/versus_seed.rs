//! seatq against the seed's design (Lua scripts over Streams, ZSETs and strings), side by side on
//! one server in one run, plus the bare commands as a floor. Sections (`--only <section>` runs
//! one):
//!
//! - `commands`: ENQUEUE, STATUS, ADMIT, HOLD, RELEASE as the seed's Lua scripts
//!   (`benches/lua/*.lua`, SCRIPT LOAD + EVALSHA), as seatq commands (journal on, the default,
//!   and journal off) and as one bare command (XADD, ZRANK, SET, HSET). Per phase: `--ops`
//!   calls after `CONFIG RESETSTAT`, server time per call from `INFO commandstats`, and the
//!   client's ops/s at pipeline depth 1 and 16. Phases alternate between the designs and repeat
//!   `--rounds` times; the tables give medians.
//! - `scale`: `QUEUE.STATUS` server time with 1,000 / 100,000 / 1,000,000 waiting users and
//!   memory per waiting user (`used_memory` delta / N, 36-character UUID-shaped user IDs; seatq
//!   with the journal off so only the line is measured), next to the seed's layout filled by its
//!   own enqueue script (per-user stream + dedupe key + waiting-zset entry) and its ZRANK status.
//! - `latency`: an open-loop mixed workload (20% ENQUEUE, 60% STATUS, 10% ADMIT, 10%
//!   HOLD/RELEASE) at `--rate` requests/s over `--connections` connections for `--seconds`;
//!   each request is scheduled at a fixed time and its latency counts from that time (no
//!   coordinated omission). Once through seatq, once through the seed's scripts, per round.
//!
//! It ends with the product's targets, each "met" or "not met"; it reports, it never fails.
//!
//! `cargo build --release && cargo bench --bench versus_seed [-- --server redis|valkey
//!  --rounds 3 --ops 20000 --memory-users 1000000 --rate 30000 --seconds 10 --connections 8
//!  --only commands|scale|latency]` ("memory" is another name for "scale")

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{Cmd, Connection, Value};
use seatq_testkit::server::{self, Server, ServerKind};

const ENQUEUE_LUA: &str = include_str!("lua/enqueue_atomic_streams.lua");
const STATUS_LUA: &str = include_str!("lua/status_position.lua");
const ADMIT_LUA: &str = include_str!("lua/admit_token_bucket.lua");
const HOLD_LUA: &str = include_str!("lua/hold_seat_atomic.lua");
const RELEASE_LUA: &str = include_str!("lua/release_seat_atomic.lua");

/// Admission budget for both designs: high enough that no ADMIT is refused for rate.
const ADMIT_RATE: u64 = 1_000_000;
/// Pipeline depth that fills lines (not timed).
const FILL_DEPTH: usize = 1_000;
/// STATUS calls per timed phase of the scale section, and their pipeline depth.
const SCALE_CALLS: usize = 20_000;
const SCALE_DEPTH: usize = 100;

// ------------------------------------------------------------------------------------------
// Options

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Section {
    Commands,
    Scale,
    Latency,
}

struct Options {
    kind: ServerKind,
    rounds: usize,
    ops: usize,
    memory_users: usize,
    rate: f64,
    seconds: f64,
    connections: usize,
    only: Option<Section>,
}

const USAGE: &str = "options: --server redis|valkey  --rounds N (3)  --ops N per phase (20000)  \
--memory-users N (1000000)  --rate REQ/S (30000)  --seconds S (10)  --connections N (8)  \
--only commands|scale|latency";

impl Options {
    fn parse() -> Options {
        let mut o = Options {
            kind: ServerKind::Redis,
            rounds: 3,
            ops: 20_000,
            memory_users: 1_000_000,
            rate: 30_000.0,
            seconds: 10.0,
            connections: 8,
            only: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = |name: &str| -> String {
                args.next()
                    .unwrap_or_else(|| panic!("{name} needs a value; {USAGE}"))
            };
            fn num<T: std::str::FromStr>(name: &str, v: String) -> T {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name}: not a number: {v}; {USAGE}"))
            }
            match a.as_str() {
                "--server" => {
                    o.kind = match value("--server").as_str() {
                        "redis" => ServerKind::Redis,
                        "valkey" => ServerKind::Valkey,
                        other => panic!("--server {other}: use redis or valkey"),
                    }
                }
                "--rounds" => o.rounds = num(&a, value(&a)),
                "--ops" => o.ops = num(&a, value(&a)),
                "--memory-users" => o.memory_users = num(&a, value(&a)),
                "--rate" => o.rate = num(&a, value(&a)),
                "--seconds" => o.seconds = num(&a, value(&a)),
                "--connections" => o.connections = num(&a, value(&a)),
                "--only" => {
                    o.only = Some(match value("--only").as_str() {
                        "commands" => Section::Commands,
                        "scale" | "memory" => Section::Scale,
                        "latency" => Section::Latency,
                        other => panic!("--only {other}: use commands, scale or latency"),
                    })
                }
                "--bench" => {} // cargo bench passes it
                other => panic!("unknown argument {other}; {USAGE}"),
            }
        }
        assert!(o.rounds >= 1 && o.ops >= 16, "--rounds >= 1, --ops >= 16");
        assert!(o.connections >= 2, "--connections >= 2 (one admits)");
        assert!(o.rate > 0.0 && o.seconds > 0.0, "--rate and --seconds > 0");
        o
    }

    fn runs(&self, s: Section) -> bool {
        self.only.is_none_or(|only| only == s)
    }
}

// ------------------------------------------------------------------------------------------
// Designs and their commands

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Op {
    Enqueue,
    Status,
    Admit,
    Hold,
    Release,
}

impl Op {
    const ALL: [Op; 5] = [Op::Enqueue, Op::Status, Op::Admit, Op::Hold, Op::Release];

    fn name(self) -> &'static str {
        match self {
            Op::Enqueue => "ENQUEUE",
            Op::Status => "STATUS",
            Op::Admit => "ADMIT",
            Op::Hold => "HOLD",
            Op::Release => "RELEASE",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// The seed's Lua scripts over its own keys.
    Seed,
    /// seatq's commands on one event key.
    Seatq,
    /// One bare Redis command with comparable keys and values.
    Floor,
}

/// The seed's scripts, loaded once (SCRIPT LOAD); FLUSHALL keeps them.
#[derive(Clone)]
struct Scripts {
    enqueue: String,
    status: String,
    admit: String,
    hold: String,
    release: String,
}

impl Scripts {
    fn load(con: &mut Connection) -> Scripts {
        let mut load = |body: &str| -> String {
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(body)
                .query(con)
                .expect("SCRIPT LOAD")
        };
        Scripts {
            enqueue: load(ENQUEUE_LUA),
            status: load(STATUS_LUA),
            admit: load(ADMIT_LUA),
            hold: load(HOLD_LUA),
            release: load(RELEASE_LUA),
        }
    }
}

/// What one call is about: the user (by number), its ticket (seatq only; the seed and the
/// floor name users) and the seat.
struct Subject<'a> {
    user: usize,
    ticket: &'a str,
    seat: &'a str,
}

/// 36 characters, UUID-shaped; the first 8 hex digits make the IDs sort in number order.
fn user_id(n: usize) -> String {
    format!("{:08x}-{:04x}-4000-8000-{:012x}", n, n % 65536, n)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// 32 hex characters, like seatq's pass (and the seed's token).
fn hex32(n: usize, salt: u64) -> String {
    let a = splitmix(n as u64 ^ salt);
    format!("{:016x}{:016x}", a, splitmix(a))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

#[derive(Clone)]
struct Design {
    label: &'static str,
    kind: Kind,
    /// seatq: the event key. Seed and floor: the seed's event name (its key prefixes).
    key: String,
    /// seatq: the event's journal setting (on by default, as in the product).
    journal: bool,
    /// seatq: QUEUE.ENQUEUE passes an IDEMPOTENCY key, like the seed's dedupe key (default).
    idempotency: bool,
    /// In the commands section: the only operation this design runs (a variant of ENQUEUE).
    only: Option<Op>,
}

impl Design {
    fn new(label: &'static str, kind: Kind, key: &str) -> Design {
        Design {
            label,
            kind,
            key: key.to_string(),
            journal: true,
            idempotency: true,
            only: None,
        }
    }

    fn without_journal(mut self) -> Design {
        self.journal = false;
        self
    }

    /// QUEUE.ENQUEUE without IDEMPOTENCY (one ticket per user is native to seatq).
    fn without_idempotency(mut self) -> Design {
        self.idempotency = false;
        self
    }

    fn runs(&self, op: Op) -> bool {
        self.only.is_none_or(|only| only == op)
    }

    /// How this seatq variant differs from the default, for the targets block.
    fn variant(&self) -> String {
        let mut v = Vec::new();
        if !self.journal {
            v.push("journal off");
        }
        if !self.idempotency {
            v.push("no IDEMPOTENCY");
        }
        v.join(", ")
    }

    /// The INFO commandstats entry that times `op` in this design.
    fn stat(&self, op: Op) -> &'static str {
        match (self.kind, op) {
            (Kind::Seed, _) => "evalsha",
            (Kind::Seatq, Op::Enqueue) => "queue.enqueue",
            (Kind::Seatq, Op::Status) => "queue.status",
            (Kind::Seatq, Op::Admit) => "queue.admit",
            (Kind::Seatq, Op::Hold) => "seat.hold",
            (Kind::Seatq, Op::Release) => "seat.release",
            (Kind::Floor, Op::Enqueue) => "xadd",
            (Kind::Floor, Op::Status) => "zrank",
            (Kind::Floor, Op::Admit) => "set",
            (Kind::Floor, Op::Hold | Op::Release) => "hset",
        }
    }

    /// What the row runs, for the tables.
    fn what(&self, op: Op) -> &'static str {
        match (self.kind, op) {
            (Kind::Seed, Op::Enqueue) => "enqueue_atomic_streams.lua",
            (Kind::Seed, Op::Status) => "status_position.lua",
            (Kind::Seed, Op::Admit) => "admit_token_bucket.lua",
            (Kind::Seed, Op::Hold) => "hold_seat_atomic.lua",
            (Kind::Seed, Op::Release) => "release_seat_atomic.lua",
            (Kind::Seatq, Op::Enqueue) if self.idempotency => "QUEUE.ENQUEUE .. IDEMPOTENCY",
            (Kind::Seatq, Op::Enqueue) => "QUEUE.ENQUEUE",
            (Kind::Seatq, Op::Status) => "QUEUE.STATUS",
            (Kind::Seatq, Op::Admit) => "QUEUE.ADMIT",
            (Kind::Seatq, Op::Hold) => "SEAT.HOLD",
            (Kind::Seatq, Op::Release) => "SEAT.RELEASE",
            (Kind::Floor, Op::Enqueue) => "XADD (4 fields)",
            (Kind::Floor, Op::Status) => "ZRANK",
            (Kind::Floor, Op::Admit) => "SET .. EX",
            (Kind::Floor, Op::Hold | Op::Release) => "HSET",
        }
    }

    fn waiting_key(&self) -> String {
        format!("queue:event:{{{}}}:waiting", self.key)
    }

    fn cmd(&self, op: Op, scripts: &Scripts, s: &Subject) -> Cmd {
        let user = user_id(s.user);
        let idem = format!("req-{user}");
        let ev = &self.key;
        let mut c;
        match (self.kind, op) {
            (Kind::Seed, Op::Enqueue) => {
                c = redis::cmd("EVALSHA");
                c.arg(&scripts.enqueue)
                    .arg(3)
                    .arg(format!("dedupe:{idem}"))
                    .arg(format!("stream:event:{{{ev}}}:user:{user}"))
                    .arg(self.waiting_key())
                    .arg(hex32(s.user, 1))
                    .arg(ev)
                    .arg(&user)
                    .arg(300)
                    .arg(now_ms());
            }
            (Kind::Seed, Op::Status) => {
                c = redis::cmd("EVALSHA");
                c.arg(&scripts.status)
                    .arg(1)
                    .arg(self.waiting_key())
                    .arg(&user);
            }
            (Kind::Seed, Op::Admit) => {
                c = redis::cmd("EVALSHA");
                c.arg(&scripts.admit)
                    .arg(3)
                    .arg(self.waiting_key())
                    .arg(format!("queue:event:{{{ev}}}:bucket"))
                    .arg(format!("pass:event:{{{ev}}}:user:{user}"))
                    .arg(&user)
                    .arg(now_ms())
                    .arg(ADMIT_RATE)
                    .arg(ADMIT_RATE)
                    .arg(900)
                    .arg(hex32(s.user, 2));
            }
            (Kind::Seed, Op::Hold | Op::Release) => {
                c = redis::cmd("EVALSHA");
                let sha = if op == Op::Hold {
                    &scripts.hold
                } else {
                    &scripts.release
                };
                c.arg(sha)
                    .arg(3)
                    .arg(format!("seat:status:{ev}"))
                    .arg(format!("inventory:{ev}"))
                    .arg(format!("hold:seat:{}", s.seat))
                    .arg(s.seat);
                if op == Op::Hold {
                    c.arg(&user).arg(600);
                }
            }
            (Kind::Seatq, Op::Enqueue) => {
                c = redis::cmd("QUEUE.ENQUEUE");
                c.arg(ev).arg(&user);
                if self.idempotency {
                    c.arg("IDEMPOTENCY").arg(&idem);
                }
            }
            (Kind::Seatq, Op::Status | Op::Admit) => {
                c = redis::cmd(if op == Op::Status {
                    "QUEUE.STATUS"
                } else {
                    "QUEUE.ADMIT"
                });
                c.arg(ev).arg(s.ticket);
            }
            (Kind::Seatq, Op::Hold | Op::Release) => {
                c = redis::cmd(if op == Op::Hold {
                    "SEAT.HOLD"
                } else {
                    "SEAT.RELEASE"
                });
                c.arg(ev).arg(&user).arg(s.seat);
            }
            (Kind::Floor, Op::Enqueue) => {
                c = redis::cmd("XADD");
                c.arg(format!("floor:stream:{{{ev}}}"))
                    .arg("*")
                    .arg("token")
                    .arg(hex32(s.user, 1))
                    .arg("event_id")
                    .arg(ev)
                    .arg("user_id")
                    .arg(&user)
                    .arg("timestamp")
                    .arg(now_ms());
            }
            (Kind::Floor, Op::Status) => {
                c = redis::cmd("ZRANK");
                c.arg(self.waiting_key()).arg(&user);
            }
            (Kind::Floor, Op::Admit) => {
                c = redis::cmd("SET");
                c.arg(format!("floor:pass:{{{ev}}}:user:{user}"))
                    .arg(hex32(s.user, 2))
                    .arg("EX")
                    .arg(900);
            }
            (Kind::Floor, Op::Hold | Op::Release) => {
                c = redis::cmd("HSET");
                c.arg(format!("floor:seat:status:{ev}"))
                    .arg(s.seat)
                    .arg(if op == Op::Hold { "HOLD" } else { "AVAILABLE" });
            }
        }
        c
    }

    /// Creates the event / seed keys with `seats`; a seatq event gets an unlimited admission
    /// budget, a heartbeat of a day (nothing lapses during the run) and its journal setting.
    fn setup(&self, con: &mut Connection, seats: &[String]) {
        match self.kind {
            Kind::Seatq => {
                let _: () = redis::cmd("QUEUE.CONFIG")
                    .arg(&self.key)
                    .arg("SET")
                    .arg("RATE")
                    .arg(ADMIT_RATE)
                    .arg("BURST")
                    .arg(ADMIT_RATE)
                    .arg("CAPACITY")
                    .arg(0)
                    .arg("HEARTBEAT")
                    .arg(86_400_000)
                    .arg("JOURNAL")
                    .arg(if self.journal { "on" } else { "off" })
                    .query(con)
                    .expect("QUEUE.CONFIG");
                for chunk in seats.chunks(1000) {
                    let _: i64 = redis::cmd("SEAT.ADD")
                        .arg(&self.key)
                        .arg(chunk)
                        .query(con)
                        .expect("SEAT.ADD");
                }
            }
            Kind::Seed => {
                for chunk in seats.chunks(1000) {
                    let mut c = redis::cmd("HSET");
                    c.arg(format!("seat:status:{}", self.key));
                    for seat in chunk {
                        c.arg(seat).arg("AVAILABLE");
                    }
                    let _: i64 = c.query(con).expect("HSET");
                }
                let _: () = redis::cmd("SET")
                    .arg(format!("inventory:{}", self.key))
                    .arg(seats.len())
                    .query(con)
                    .expect("SET");
            }
            Kind::Floor => {}
        }
    }
}

// ------------------------------------------------------------------------------------------
// Replies, INFO, the phase runner

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// A refusal: a server error, or the seed's `{0, 'CODE'}` reply.
fn failure(v: &Value) -> Option<String> {
    match v {
        Value::ServerError(e) => Some(format!("{} {}", e.code(), e.details().unwrap_or(""))),
        Value::Array(items) if matches!(items.first(), Some(Value::Int(0))) => {
            Some(items.get(1).map(text).unwrap_or_default())
        }
        _ => None,
    }
}

/// The `ticket` field of a seatq record (RESP3 map or RESP2 flat array).
fn ticket_of(v: &Value) -> String {
    let found = match v {
        Value::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| text(k) == "ticket")
            .map(|(_, v)| text(v)),
        Value::Array(items) => items
            .chunks(2)
            .find(|p| text(&p[0]) == "ticket")
            .map(|p| text(&p[1])),
        _ => None,
    };
    found.unwrap_or_else(|| panic!("no ticket in {v:?}"))
}

fn info(con: &mut Connection, section: &str) -> String {
    redis::cmd("INFO").arg(section).query(con).expect("INFO")
}

fn info_field(con: &mut Connection, section: &str, name: &str) -> String {
    let prefix = format!("{name}:");
    info(con, section)
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

fn used_memory(con: &mut Connection) -> i64 {
    info_field(con, "memory", "used_memory")
        .parse()
        .expect("used_memory")
}

fn memory_usage(con: &mut Connection, key: &str) -> i64 {
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
fn commandstat(con: &mut Connection, command: &str) -> (u64, u64) {
    let line = info_field(con, "commandstats", &format!("cmdstat_{command}"));
    let get = |name: &str| -> u64 {
        line.split(',')
            .find_map(|kv| kv.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("calls="), get("usec="))
}

/// FLUSHALL SYNC: Valkey frees in the background by default (lazyfree-lazy-user-flush), which
/// would skew the next memory baseline and compete for CPU with the next phases.
fn flushall(con: &mut Connection) {
    let _: () = redis::cmd("FLUSHALL")
        .arg("SYNC")
        .query(con)
        .expect("FLUSHALL");
}

/// A bare RESP2 connection for everything timed. It writes pre-packed requests and only finds
/// where each reply ends, without building values; replies are decoded after the clock stops.
/// (On a 2-core machine a client that decodes a 10-field map per reply would cap ops/s below
/// what the server does, hiding the differences being measured.)
struct Wire {
    stream: TcpStream,
    chunk: Vec<u8>,
}

/// Length of the complete RESP2 value at the start of `b`, or None while it is incomplete.
fn resp_len(b: &[u8]) -> Option<usize> {
    let eol = b.iter().position(|&c| c == b'\n')?;
    let head = std::str::from_utf8(&b[1..eol - 1]).expect("RESP header");
    let after = eol + 1;
    match b[0] {
        b'+' | b'-' | b':' => Some(after),
        b'$' => match head.parse::<i64>().expect("bulk length") {
            n if n < 0 => Some(after),
            n => Some(after + n as usize + 2).filter(|&end| b.len() >= end),
        },
        b'*' => {
            let mut pos = after;
            for _ in 0..head.parse::<i64>().expect("array length").max(0) {
                pos += resp_len(&b[pos..])?;
            }
            Some(pos)
        }
        other => panic!("unexpected RESP2 type byte {other}"),
    }
}

impl Wire {
    fn connect(port: u16) -> Wire {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Wire {
            stream,
            chunk: vec![0; 64 * 1024],
        }
    }

    /// Sends `bytes` (`n` requests) and appends their `n` replies to `out`, pushing the end
    /// offset of each reply onto `ends`.
    fn exchange(&mut self, bytes: &[u8], n: usize, out: &mut Vec<u8>, ends: &mut Vec<usize>) {
        self.stream.write_all(bytes).expect("write");
        let want = ends.len() + n;
        let mut pos = ends.last().copied().unwrap_or(0);
        while ends.len() < want {
            if let Some(len) = resp_len(&out[pos..]) {
                pos += len;
                ends.push(pos);
                continue;
            }
            let got = self.stream.read(&mut self.chunk).expect("read");
            assert!(got > 0, "the server closed the connection");
            out.extend_from_slice(&self.chunk[..got]);
        }
    }
}

/// Decodes the replies that `Wire::exchange` collected.
fn decode(out: &[u8], ends: &[usize]) -> Vec<Value> {
    let mut start = 0;
    ends.iter()
        .map(|&end| {
            let v = redis::parse_redis_value(&out[start..end]).expect("reply");
            start = end;
            v
        })
        .collect()
}

/// The server under test: a redis-rs connection for setup and INFO, a wire for timed traffic.
struct Bench {
    server: Server,
    con: Connection,
    wire: Wire,
    scripts: Scripts,
}

#[derive(Clone, Default)]
struct Sample {
    /// Server time per call (INFO commandstats usec / calls).
    usec: f64,
    /// Calls per second seen by the client.
    ops_s: f64,
    failures: usize,
    first_failure: Option<String>,
}

/// Sends `cmds` in pipelines of `depth` (packed before the clock starts) after CONFIG
/// RESETSTAT; returns the timing and every reply.
fn run_phase(b: &mut Bench, stat: &str, depth: usize, cmds: &[Cmd]) -> (Sample, Vec<Value>) {
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
fn fill(b: &mut Bench, design: &Design, range: std::ops::Range<usize>) -> Vec<String> {
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

// ------------------------------------------------------------------------------------------
// Report helpers

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if x < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}

fn ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}x")
    } else {
        "-".into()
    }
}

/// One table: the first `left` columns left-aligned (text), the others right-aligned.
fn print_table(title: &str, left: usize, header: &[&str], rows: &[Vec<String>]) {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::from("  ");
        for (i, cell) in cells.iter().enumerate() {
            let pad = width[i] - cell.chars().count();
            if i > 0 {
                out.push_str("  ");
            }
            if i < left {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
        }
        println!("{}", out.trim_end());
    };
    println!("\n{title}");
    line(header.to_vec());
    line(
        width
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(|s| s.as_str())
            .collect(),
    );
    for row in rows {
        line(row.iter().map(|s| s.as_str()).collect());
    }
}

/// The order in which round `round` runs `n` designs: rotated each round, so no design always
/// runs right after the same other one.
fn rotation(n: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |i| (i + round) % n)
}

fn progress(msg: &str) {
    eprintln!("[versus_seed] {msg}");
}

/// One seatq variant against the seed's script: ratios of server time and of ops/s at P16.
struct VersusLua {
    /// "" for the default (journal on, IDEMPOTENCY), else how it differs.
    variant: String,
    usec: f64,
    ops: f64,
}

/// What the targets block needs, filled by the sections that ran.
#[derive(Default)]
struct Findings {
    /// Per op and seatq variant ("" = the default: journal on, IDEMPOTENCY, listed first):
    /// server time and ops/s at P16, each against the seed's script.
    commands: Vec<(Op, Vec<VersusLua>)>,
    /// (waiting, seatq STATUS usec) per level.
    status: Vec<(usize, f64)>,
    /// (N, seatq bytes/user, seed bytes/user).
    memory: Option<(usize, f64, f64)>,
    /// (offered, achieved, p99 ms) for seatq, and the seed's p99 ms.
    latency: Option<(f64, f64, f64, f64)>,
}

// ------------------------------------------------------------------------------------------
// Section 1: commands side by side

fn commands_section(b: &mut Bench, o: &Options, f: &mut Findings) {
    let ops = o.ops;
    let designs = [
        Design::new("seed Lua (EVALSHA)", Kind::Seed, "bench"),
        Design::new("seatq, journal on", Kind::Seatq, "bench:{on}"),
        Design {
            only: Some(Op::Enqueue),
            ..Design::new("seatq, journal on", Kind::Seatq, "bench:{plain}").without_idempotency()
        },
        Design::new("seatq, journal off", Kind::Seatq, "bench:{off}").without_journal(),
        Design::new("floor: bare command", Kind::Floor, "bench"),
    ];
    // Two sets of seats (one per pipeline depth) so a hold phase at P16 follows the one at P1
    // without meeting held seats; each release phase frees what its hold phase took.
    let seats: Vec<String> = (0..2 * ops).map(|i| format!("S-{i}")).collect();
    for d in &designs {
        d.setup(&mut b.con, &seats);
    }
    const DEPTHS: [usize; 2] = [1, 16];
    let mut samples: HashMap<(Op, usize, usize), Vec<Sample>> = HashMap::new();
    for round in 0..o.rounds {
        progress(&format!("commands: round {}/{}", round + 1, o.rounds));
        // This round's users: 2 x ops new ones, joined at P1 then P16, then polled, admitted
        // (in line order, so each ADMIT is for the front), and holding one seat each.
        let mut tickets: Vec<Vec<String>> = vec![vec![String::new(); 2 * ops]; designs.len()];
        for op in Op::ALL {
            for (di, depth) in DEPTHS.into_iter().enumerate() {
                for k in rotation(designs.len(), round) {
                    let design = &designs[k];
                    if !design.runs(op) {
                        continue;
                    }
                    let slots = di * ops..(di + 1) * ops;
                    let cmds: Vec<Cmd> = slots
                        .clone()
                        .map(|slot| {
                            let s = Subject {
                                user: round * 2 * ops + slot,
                                ticket: &tickets[k][slot],
                                seat: &seats[slot],
                            };
                            design.cmd(op, &b.scripts, &s)
                        })
                        .collect();
                    let (sample, replies) = run_phase(b, design.stat(op), depth, &cmds);
                    if op == Op::Enqueue && design.kind == Kind::Seatq {
                        for (slot, r) in slots.zip(&replies) {
                            tickets[k][slot] = ticket_of(r);
                        }
                    }
                    samples.entry((op, k, di)).or_default().push(sample);
                }
            }
        }
    }
    println!(
        "\n== 1. Commands side by side: {} calls per phase, {} rounds, medians ==",
        thousands(ops as f64),
        o.rounds
    );
    println!(
        "   us/call = INFO commandstats usec / calls (EVALSHA's for the scripts) after CONFIG RESETSTAT;\n   \
         ops/s = what the client saw at pipeline depth 1 and 16; 'x Lua' = against the seed's script\n   \
         (server time at P16: lower is better; ops/s at P16: higher is better)."
    );
    for op in Op::ALL {
        let med = |k: usize, di: usize, get: fn(&Sample) -> f64| -> f64 {
            median(samples[&(op, k, di)].iter().map(get).collect())
        };
        let lua_usec = med(0, 1, |s| s.usec);
        let lua_ops = med(0, 1, |s| s.ops_s);
        let mut rows = Vec::new();
        let mut found = Vec::new();
        for (k, d) in designs.iter().enumerate() {
            if !d.runs(op) {
                continue;
            }
            let (usec1, usec16) = (med(k, 0, |s| s.usec), med(k, 1, |s| s.usec));
            let (ops1, ops16) = (med(k, 0, |s| s.ops_s), med(k, 1, |s| s.ops_s));
            let all: Vec<&Sample> = (0..2).flat_map(|di| &samples[&(op, k, di)]).collect();
            let failed: usize = all.iter().map(|s| s.failures).sum();
            let why = all
                .iter()
                .find_map(|s| s.first_failure.clone())
                .map(|w| format!(" ({w})"))
                .unwrap_or_default();
            rows.push(vec![
                d.label.to_string(),
                d.what(op).to_string(),
                format!("{usec1:.2}"),
                format!("{usec16:.2}"),
                ratio(usec16 / lua_usec),
                thousands(ops1),
                thousands(ops16),
                ratio(ops16 / lua_ops),
                format!("{failed}{why}"),
            ]);
            if d.kind == Kind::Seatq {
                found.push(VersusLua {
                    variant: d.variant(),
                    usec: usec16 / lua_usec,
                    ops: ops16 / lua_ops,
                });
            }
        }
        f.commands.push((op, found));
        print_table(
            op.name(),
            2,
            &[
                "design",
                "runs",
                "us/call P1",
                "us/call P16",
                "x Lua",
                "ops/s P1",
                "ops/s P16",
                "x Lua",
                "refused",
            ],
            &rows,
        );
    }
}

// ------------------------------------------------------------------------------------------
// Section 2: the line at scale (STATUS cost, memory per waiting user)

struct Level {
    waiting: usize,
    status_usec: Vec<f64>,
    floor_usec: f64,
    memory_per_user: f64,
    usage_per_user: f64,
    fill_secs: f64,
}

/// Fills `design`'s line level by level; at each level: memory per user, and STATUS server
/// time (median of `rounds` phases of SCALE_CALLS calls on users spread over the line).
fn scale_design(b: &mut Bench, design: &Design, levels: &[usize], rounds: usize) -> Vec<Level> {
    flushall(&mut b.con);
    design.setup(&mut b.con, &[]);
    let base_memory = used_memory(&mut b.con);
    let base_usage = memory_usage(&mut b.con, &design.key);
    let floor = Design::new("floor", Kind::Floor, &design.key);
    let mut tickets = Vec::new();
    let mut out = Vec::new();
    let mut joined = 0;
    let scripts = b.scripts.clone();
    for &waiting in levels {
        progress(&format!(
            "scale: {} to {}",
            design.label,
            thousands(waiting as f64)
        ));
        let t = Instant::now();
        tickets.extend(fill(b, design, joined..waiting));
        let fill_secs = t.elapsed().as_secs_f64();
        joined = waiting;
        let con = &mut b.con;
        let memory_per_user = (used_memory(con) - base_memory) as f64 / waiting as f64;
        let usage = if design.kind == Kind::Seatq {
            (memory_usage(con, &design.key) - base_usage) as f64
        } else {
            // One user's stream and dedupe key, times N, plus the whole waiting zset.
            let user = user_id(0);
            let one = memory_usage(con, &format!("stream:event:{{{}}}:user:{user}", design.key))
                + memory_usage(con, &format!("dedupe:req-{user}"));
            (one as f64) * waiting as f64 + memory_usage(con, &design.waiting_key()) as f64
        };
        let calls = |d: &Design| -> Vec<Cmd> {
            (0..SCALE_CALLS)
                .map(|c| {
                    let n = (splitmix(c as u64) % waiting as u64) as usize;
                    let s = Subject {
                        user: n,
                        ticket: tickets.get(n).map(String::as_str).unwrap_or(""),
                        seat: "",
                    };
                    d.cmd(Op::Status, &scripts, &s)
                })
                .collect()
        };
        let mut status_usec = Vec::new();
        let mut floor_usec = Vec::new();
        for _ in 0..rounds {
            let cmds = calls(design);
            let (s, _) = run_phase(b, design.stat(Op::Status), SCALE_DEPTH, &cmds);
            assert_eq!(s.failures, 0, "STATUS refused: {:?}", s.first_failure);
            status_usec.push(s.usec);
            if design.kind == Kind::Seed {
                let cmds = calls(&floor);
                let (s, _) = run_phase(b, "zrank", SCALE_DEPTH, &cmds);
                floor_usec.push(s.usec);
            }
        }
        out.push(Level {
            waiting,
            status_usec,
            floor_usec: median(floor_usec),
            memory_per_user,
            usage_per_user: usage / waiting as f64,
            fill_secs,
        });
    }
    flushall(&mut b.con);
    out
}

fn scale_section(b: &mut Bench, o: &Options, f: &mut Findings) {
    let mut levels: Vec<usize> = [1_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|&n| n < o.memory_users)
        .collect();
    levels.push(o.memory_users);
    // seatq's line as the product measures it (QUEUE.ENQUEUE key user, journal off); the
    // same with an IDEMPOTENCY key per join (memory only, at the largest level), the record
    // that matches the seed's dedupe key; and the seed's layout from its own enqueue script.
    let seatq = Design::new("seatq", Kind::Seatq, "scale")
        .without_journal()
        .without_idempotency();
    let seatq_idem = Design::new("seatq + IDEMPOTENCY", Kind::Seatq, "scale").without_journal();
    let seed = Design::new("seed layout", Kind::Seed, "scale");
    let ours = scale_design(b, &seatq, &levels, o.rounds);
    let with_idem = scale_design(b, &seatq_idem, &levels[levels.len() - 1..], 0);
    let theirs = scale_design(b, &seed, &levels, o.rounds);
    println!(
        "\n== 2. The line at scale: 36-character user IDs; STATUS = median of {} x {} calls \
         (pipelined by {}) on users spread over the line ==",
        o.rounds,
        thousands(SCALE_CALLS as f64),
        SCALE_DEPTH
    );
    let base = |l: &[Level]| median(l[0].status_usec.clone());
    let base_floor = theirs[0].floor_usec;
    let rows: Vec<Vec<String>> = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| {
            let (ua, ub) = (median(a.status_usec.clone()), median(b.status_usec.clone()));
            f.status.push((a.waiting, ua));
            vec![
                thousands(a.waiting as f64),
                format!("{ua:.2}"),
                ratio(ua / base(&ours)),
                a.status_usec
                    .iter()
                    .map(|u| format!("{u:.2}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                format!("{ub:.2}"),
                ratio(ub / base(&theirs)),
                format!("{:.2}", b.floor_usec),
                ratio(b.floor_usec / base_floor),
            ]
        })
        .collect();
    let vs = format!("x {}", thousands(levels[0] as f64));
    print_table(
        "STATUS server time (us/call) by number of waiting users",
        1,
        &[
            "waiting",
            "QUEUE.STATUS",
            &vs,
            "(each round)",
            "seed status_position.lua",
            &vs,
            "ZRANK",
            &vs,
        ],
        &rows,
    );
    let rows: Vec<Vec<String>> = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| {
            let idem = with_idem.iter().find(|l| l.waiting == a.waiting);
            vec![
                thousands(a.waiting as f64),
                format!("{:.1}", a.memory_per_user),
                format!("{:.1}", a.usage_per_user),
                idem.map_or("-".into(), |l| format!("{:.1}", l.memory_per_user)),
                format!("{:.1}", b.memory_per_user),
                format!("{:.1}", b.usage_per_user),
                ratio(b.memory_per_user / a.memory_per_user),
                format!("{:.1} / {:.1}", a.fill_secs, b.fill_secs),
            ]
        })
        .collect();
    print_table(
        "Memory per waiting user (bytes): used_memory delta / N, and MEMORY USAGE / N.\n  \
         seatq: QUEUE.ENQUEUE key user, journal off (MEMORY USAGE of the event key); \
         + IDEMPOTENCY: each join also records an idempotency key, like the seed's dedupe key.\n  \
         seed: the keys of its enqueue script (MEMORY USAGE: one user's stream + dedupe key, \
         times N, plus the waiting zset)",
        1,
        &[
            "waiting",
            "seatq used_memory",
            "seatq MEMORY USAGE",
            "seatq + IDEMPOTENCY used_memory",
            "seed used_memory",
            "seed MEMORY USAGE",
            "seed / seatq",
            "fill s (seatq / seed)",
        ],
        &rows,
    );
    let (a, b) = (ours.last().expect("level"), theirs.last().expect("level"));
    f.memory = Some((a.waiting, a.memory_per_user, b.memory_per_user));
}

// ------------------------------------------------------------------------------------------
// Section 3: latency under an open-loop mixed workload

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

struct LatencyRun {
    achieved: f64,
    /// p50, p99, p99.9, max, in ms.
    pct: [f64; 4],
    lag_p99: f64,
    /// CPU used during the run, in % of one core: the server's, and this process's.
    server_cpu: f64,
    client_cpu: f64,
    /// The longest event the server's latency monitor saw (ms, events of 1 ms or more), e.g.
    /// one slow command; 0 when none: then tail latency came from waiting, not from a stall.
    server_stall: (i64, String),
    per_op: Vec<(Op, f64, f64)>,
    failures: usize,
    first_failure: Option<String>,
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
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

struct LatencyPlan<'a> {
    design: &'a Design,
    scripts: &'a Scripts,
    /// Prefilled users' tickets (seatq) in line order; the seed names users by number.
    tickets: &'a [String],
    /// First prefilled user this run admits, and the first one STATUS polls (never admitted).
    admit_from: usize,
    status_from: usize,
    prefilled: usize,
    /// Base number for users this run enqueues.
    new_users: usize,
    /// This run's number: each connection holds and releases its own seat of the run.
    run: usize,
}

fn latency_seat(run: usize, connection: usize) -> String {
    format!("L-{run}-{connection}")
}

/// One connection's share of the open loop: requests at fixed times from `start`; returns
/// their records and when the last reply came.
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
                    plan.status_from + (splitmix((t * 1_000_000_007 + k) as u64) % span) as usize
                }
                Op::Enqueue => plan.new_users + t * 10_000_000 + k,
                Op::Hold | Op::Release => 900_000_000 + t,
            };
            let s = Subject {
                user: n,
                ticket: plan.tickets.get(n).map(String::as_str).unwrap_or(""),
                seat: &seat,
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

/// CPU seconds the server has used (INFO cpu), and this process (/proc/self/stat, in ticks of
/// 1/100 s).
fn cpu_seconds(con: &mut Connection) -> (f64, f64) {
    let info = info(con, "cpu");
    let server: f64 = info
        .lines()
        .filter_map(|l| {
            l.strip_prefix("used_cpu_sys:")
                .or_else(|| l.strip_prefix("used_cpu_user:"))
        })
        .filter_map(|v| v.trim().parse::<f64>().ok())
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

fn open_loop(con: &mut Connection, port: u16, o: &Options, plan: &LatencyPlan) -> LatencyRun {
    let cons: Vec<Wire> = (0..o.connections).map(|_| Wire::connect(port)).collect();
    let requests: Vec<Vec<(Op, Vec<u8>)>> = (0..o.connections)
        .map(|t| connection_requests(o, plan, t))
        .collect();
    let _: () = redis::cmd("LATENCY")
        .arg("RESET")
        .query::<i64>(con)
        .map(|_| ())
        .expect("LATENCY RESET");
    let _: () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query(con)
        .expect("SLOWLOG RESET");
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
    let server_stall = events
        .into_iter()
        .max()
        .map(|(ms, event)| match slowest {
            Some((us, name)) if us >= ms * 1000 - 1000 => (ms, name.to_uppercase()),
            _ => (ms, event),
        })
        .unwrap_or((0, String::new()));
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
            (op, percentile(&v, 0.5), percentile(&v, 0.99))
        })
        .collect();
    let failed: Vec<&String> = records.iter().filter_map(|r| r.failure.as_ref()).collect();
    LatencyRun {
        achieved: records.len() as f64 / elapsed,
        pct: [
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            percentile(&latencies, 0.999),
            percentile(&latencies, 1.0),
        ],
        lag_p99: percentile(&lags, 0.99),
        server_cpu: (cpu_after.0 - cpu_before.0) / wall * 100.0,
        client_cpu: (cpu_after.1 - cpu_before.1) / wall * 100.0,
        server_stall,
        per_op,
        failures: failed.len(),
        first_failure: failed.first().map(|s| s.to_string()),
    }
}

fn latency_section(b: &mut Bench, o: &Options, f: &mut Findings) {
    flushall(&mut b.con);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("latency-monitor-threshold")
        .arg(1)
        .arg("slowlog-log-slower-than")
        .arg(1000)
        .query(&mut b.con)
        .expect("CONFIG SET latency-monitor-threshold, slowlog-log-slower-than");
    let designs = [
        Design::new("seatq, journal on", Kind::Seatq, "lat:{seatq}"),
        Design::new("seed Lua (EVALSHA)", Kind::Seed, "lat"),
    ];
    let admits_per_run = (o.rate * 0.1 * o.seconds) as usize;
    let status_from = o.rounds * admits_per_run;
    let prefilled = status_from + 100_000;
    let seats: Vec<String> = (0..o.rounds)
        .flat_map(|run| (0..o.connections).map(move |t| latency_seat(run, t)))
        .collect();
    let mut tickets = Vec::new();
    for d in &designs {
        progress(&format!(
            "latency: prefilling {} with {} users",
            d.label,
            thousands(prefilled as f64)
        ));
        d.setup(&mut b.con, &seats);
        tickets.push(fill(b, d, 0..prefilled));
    }
    let mut runs: Vec<Vec<LatencyRun>> = vec![Vec::new(), Vec::new()];
    for round in 0..o.rounds {
        for k in rotation(designs.len(), round) {
            let d = &designs[k];
            progress(&format!(
                "latency: round {}/{}, {}",
                round + 1,
                o.rounds,
                d.label
            ));
            let plan = LatencyPlan {
                design: d,
                scripts: &b.scripts,
                tickets: &tickets[k],
                admit_from: round * admits_per_run,
                status_from,
                prefilled,
                new_users: 100_000_000 + round * 100_000_000,
                run: round,
            };
            runs[k].push(open_loop(&mut b.con, b.server.port, o, &plan));
        }
    }
    println!(
        "\n== 3. Latency, open loop: {} requests/s offered for {} s over {} connections, {} rounds \
         (medians; the order alternates) ==\n   \
         20% ENQUEUE, 60% STATUS, 10% ADMIT (one connection, in line order), 10% HOLD/RELEASE; \
         {} users waiting beforehand.\n   \
         Latency counts from each request's scheduled send time (no coordinated omission); \
         send lag = how late requests left\n   \
         (their connection still waiting for a reply, or no CPU); CPU = % of one core during \
         the run (server: INFO cpu; client: this process);\n   \
         server stall max = the longest event of the server's latency monitor (ms, threshold \
         1 ms) and the command (SLOWLOG) or event;\n   \
         0 = none: the tail is then waiting (for CPU or behind other requests), not one slow \
         command.",
        thousands(o.rate),
        o.seconds,
        o.connections,
        o.rounds,
        thousands(prefilled as f64),
    );
    let med =
        |v: &[LatencyRun], get: &dyn Fn(&LatencyRun) -> f64| median(v.iter().map(get).collect());
    let rows: Vec<Vec<String>> = designs
        .iter()
        .zip(&runs)
        .map(|(d, r)| {
            let failed: usize = r.iter().map(|x| x.failures).sum();
            let why = r
                .iter()
                .find_map(|x| x.first_failure.clone())
                .map(|w| format!(" ({w})"))
                .unwrap_or_default();
            vec![
                d.label.to_string(),
                thousands(med(r, &|x| x.achieved)),
                format!("{:.3}", med(r, &|x| x.pct[0])),
                format!("{:.3}", med(r, &|x| x.pct[1])),
                r.iter()
                    .map(|x| format!("{:.3}", x.pct[1]))
                    .collect::<Vec<_>>()
                    .join(" "),
                format!("{:.3}", med(r, &|x| x.pct[2])),
                format!("{:.3}", r.iter().map(|x| x.pct[3]).fold(0.0, f64::max)),
                format!("{:.3}", med(r, &|x| x.lag_p99)),
                format!("{:.0}%", med(r, &|x| x.server_cpu)),
                format!("{:.0}%", med(r, &|x| x.client_cpu)),
                r.iter()
                    .map(|x| &x.server_stall)
                    .max()
                    .filter(|s| s.0 > 0)
                    .map_or("0".into(), |s| format!("{} ({})", s.0, s.1)),
                format!("{failed}{why}"),
            ]
        })
        .collect();
    print_table(
        "Latency (ms)",
        1,
        &[
            "design",
            "achieved/s",
            "p50",
            "p99",
            "(each round)",
            "p99.9",
            "max (all rounds)",
            "send lag p99",
            "server CPU",
            "client CPU",
            "server stall max",
            "refused",
        ],
        &rows,
    );
    let rows: Vec<Vec<String>> = Op::ALL
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let mut row = vec![op.name().to_string()];
            for r in &runs {
                row.push(format!("{:.3}", med(r, &|x| x.per_op[i].1)));
                row.push(format!("{:.3}", med(r, &|x| x.per_op[i].2)));
            }
            row
        })
        .collect();
    print_table(
        "Latency by request kind (ms)",
        1,
        &["request", "seatq p50", "seatq p99", "seed p50", "seed p99"],
        &rows,
    );
    f.latency = Some((
        o.rate,
        med(&runs[0], &|x| x.achieved),
        med(&runs[0], &|x| x.pct[1]),
        med(&runs[1], &|x| x.pct[1]),
    ));
    flushall(&mut b.con);
}

// ------------------------------------------------------------------------------------------
// Targets

fn verdict(met: bool) -> String {
    if met { "met" } else { "not met" }.to_string()
}

fn print_targets(f: &Findings) {
    let mut rows = Vec::new();
    for server_time in [true, false] {
        let pick = |v: &VersusLua| if server_time { v.usec } else { v.ops };
        for (op, variants) in &f.commands {
            let main = pick(&variants[0]);
            let others: Vec<String> = variants[1..]
                .iter()
                .map(|v| format!("{} {}", v.variant, ratio(pick(v))))
                .collect();
            rows.push(vec![
                if server_time {
                    "server time <= 1/3 of Lua"
                } else {
                    "ops/s at P16 >= 3x Lua"
                }
                .to_string(),
                op.name().to_string(),
                format!("{} ({})", ratio(main), others.join("; ")),
                verdict(if server_time {
                    main <= 1.0 / 3.0
                } else {
                    main >= 3.0
                }),
            ]);
        }
    }
    if let (Some(first), Some(last)) = (f.status.first(), f.status.last()) {
        let r = last.1 / first.1;
        rows.push(vec![
            "STATUS at 1M <= 1.5x at 1k".to_string(),
            format!(
                "{} vs {} waiting",
                thousands(last.0 as f64),
                thousands(first.0 as f64)
            ),
            format!("{:.2} / {:.2} us = {}", last.1, first.1, ratio(r)),
            if last.0 >= 1_000_000 {
                verdict(r <= 1.5)
            } else {
                "not measured (fewer than 1,000,000 waiting)".into()
            },
        ]);
    }
    if let Some((n, ours, theirs)) = f.memory {
        rows.push(vec![
            "<= 128 B per waiting user".to_string(),
            format!("{} users, journal off", thousands(n as f64)),
            format!("{ours:.1} B (seed layout {} B)", thousands(theirs)),
            if n >= 1_000_000 {
                verdict(ours <= 128.0)
            } else {
                "not measured (--memory-users below 1,000,000)".into()
            },
        ]);
    }
    if let Some((rate, achieved, p99, seed_p99)) = f.latency {
        rows.push(vec![
            "p99 < 1 ms at 30,000 req/s".to_string(),
            format!(
                "{} offered, {} achieved",
                thousands(rate),
                thousands(achieved)
            ),
            format!("p99 {p99:.3} ms (seed Lua {seed_p99:.3} ms)"),
            if rate >= 30_000.0 {
                verdict(p99 < 1.0 && achieved >= 0.99 * rate)
            } else {
                "not measured (--rate below 30,000)".into()
            },
        ]);
    }
    print_table(
        "== Targets (shared/PRODUCT.md); seatq with the journal on unless noted ==",
        4,
        &["target", "for", "figure", "verdict"],
        &rows,
    );
}

fn main() {
    let o = Options::parse();
    let wall = Instant::now();
    let server = Server::start(o.kind, &[]);
    let mut con = server.connection();
    let version_field = match o.kind {
        ServerKind::Redis => "redis_version",
        ServerKind::Valkey => "valkey_version",
    };
    let version = info_field(&mut con, "server", version_field);
    let scripts = Scripts::load(&mut con);
    let wire = Wire::connect(server.port);
    let mut b = Bench {
        server,
        con,
        wire,
        scripts,
    };
    let load = || {
        let l = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    };
    println!(
        "seatq versus the seed: {} {} | module {} | {} CPUs, load average at start {}",
        o.kind.name(),
        version,
        server::module_path().display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load()
    );
    let mut f = Findings::default();
    let mut times = Vec::new();
    type Runner = fn(&mut Bench, &Options, &mut Findings);
    let sections: [(Section, &str, Runner); 3] = [
        (Section::Commands, "commands", commands_section),
        (Section::Scale, "scale", scale_section),
        (Section::Latency, "latency", latency_section),
    ];
    for (section, name, run) in sections {
        if o.runs(section) {
            let t = Instant::now();
            run(&mut b, &o, &mut f);
            flushall(&mut b.con);
            times.push(format!("{name} {:.0} s", t.elapsed().as_secs_f64()));
        }
    }
    print_targets(&f);
    println!(
        "\nwall time {:.0} s ({}); load average at end {}",
        wall.elapsed().as_secs_f64(),
        times.join(", "),
        load()
    );
}
