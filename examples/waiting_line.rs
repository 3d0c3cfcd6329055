//! The waiting-line demo (`./run demo`): a burst of users joins one event, polls, some leave,
//! some abandon the page (their heartbeat lapses and the server drops them), and a worker admits
//! the rest from the head. Prints per-command throughput and latency, and checks invariants;
//! a violated invariant exits non-zero.
//!
//! Options: --users N (default 50000), --threads N (8), --url redis://host:port/ (use a running
//! server instead of starting one), --server redis|valkey.

#[path = "../tests/common/server.rs"]
#[allow(dead_code)]
mod server;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::{Connection, Value};

const EVENT: &str = "demo:{sale}";
const JOURNAL: &str = "demo:{sale}:journal";
const HEARTBEAT_MS: u64 = 2000;

struct Options {
    users: usize,
    threads: usize,
    url: Option<String>,
    server: server::ServerKind,
}

fn parse_options() -> Options {
    let mut o = Options {
        users: 50_000,
        threads: 8,
        url: None,
        server: server::ServerKind::Redis,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--users" => {
                o.users = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--users takes a number"))
            }
            "--threads" => {
                o.threads = value()
                    .parse()
                    .ok()
                    .filter(|&t| t > 0)
                    .unwrap_or_else(|| usage("--threads takes a positive number"))
            }
            "--url" => o.url = Some(value()),
            "--server" => {
                o.server = match value().as_str() {
                    "redis" => server::ServerKind::Redis,
                    "valkey" => server::ServerKind::Valkey,
                    _ => usage("--server is redis or valkey"),
                }
            }
            _ => usage(&format!("unknown option {a}")),
        }
    }
    if o.users < 10 {
        usage("--users must be at least 10");
    }
    o
}

fn usage(msg: &str) -> ! {
    eprintln!("waiting_line: {msg}\nusage: waiting_line [--users N] [--threads N] [--url URL] [--server redis|valkey]");
    std::process::exit(2)
}

/// What one joining thread reports: its latencies, its (user, ticket) pairs and how many of
/// its retried joins answered DUPLICATE.
type JoinerReport = (Stats, Vec<(String, String)>, usize);

/// Latency samples per command.
#[derive(Default)]
struct Stats {
    samples: HashMap<&'static str, Vec<u32>>,
    busy: HashMap<&'static str, Duration>,
}

impl Stats {
    fn timed<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        let took = start.elapsed();
        self.samples
            .entry(name)
            .or_default()
            .push(took.as_micros().min(u32::MAX as u128) as u32);
        *self.busy.entry(name).or_default() += took;
        out
    }

    fn merge(&mut self, other: Stats) {
        for (k, v) in other.samples {
            self.samples.entry(k).or_default().extend(v);
        }
        for (k, v) in other.busy {
            *self.busy.entry(k).or_default() += v;
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

fn field(v: &Value, name: &str) -> String {
    match v {
        Value::Array(items) => items
            .chunks(2)
            .find(|p| text(&p[0]) == name)
            .map(|p| text(&p[1]))
            .unwrap_or_default(),
        Value::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| text(k) == name)
            .map(|(_, v)| text(v))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn ticket_key(t: &str) -> (u64, u64) {
    let (a, b) = t.split_once('-').expect("ticket");
    (a.parse().unwrap(), b.parse().unwrap())
}

fn connect(url: &str) -> Connection {
    redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

fn main() {
    let o = parse_options();
    let started_server = o
        .url
        .is_none()
        .then(|| server::Server::start(o.server, &[]));
    let url = o
        .url
        .clone()
        .unwrap_or_else(|| started_server.as_ref().unwrap().url());
    let mut con = connect(&url);
    let _: () = redis::cmd("DEL")
        .arg(EVENT)
        .arg(JOURNAL)
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("QUEUE.CONFIG")
        .arg(EVENT)
        .arg("SET")
        .arg("HEARTBEAT")
        .arg(HEARTBEAT_MS)
        .arg("RATE")
        .arg(5000)
        .query(&mut con)
        .unwrap();
    let version = text(
        &redis::cmd("INFO")
            .arg("server")
            .query::<Value>(&mut con)
            .unwrap(),
    );
    let version = version
        .lines()
        .find(|l| l.starts_with("redis_version") || l.starts_with("valkey_version"))
        .unwrap_or("")
        .to_string();
    println!(
        "seatq waiting-line demo: {} users, {} threads, {} ({})",
        o.users,
        o.threads,
        url,
        version.trim()
    );

    let wall = Instant::now();
    let mut stats = Stats::default();
    let per_thread = o.users.div_ceil(o.threads);
    // Phase 1: the burst. Every user joins (with an idempotency key), a retry of the same
    // request must answer DUPLICATE, then each user polls once.
    let phase = Instant::now();
    let results: Vec<JoinerReport> = std::thread::scope(|s| {
        (0..o.threads)
            .map(|t| {
                let url = &url;
                s.spawn(move || {
                    let mut con = connect(url);
                    let mut stats = Stats::default();
                    let mut mine = Vec::new();
                    let mut duplicates = 0;
                    for i in (t * per_thread)..((t + 1) * per_thread).min(o.users) {
                        let user = format!("{:08x}-0000-4000-8000-{:012x}", i, i);
                        let idem = format!("req-{i}");
                        let v: Value = stats.timed("QUEUE.ENQUEUE", || {
                            redis::cmd("QUEUE.ENQUEUE")
                                .arg(EVENT)
                                .arg(&user)
                                .arg("IDEMPOTENCY")
                                .arg(&idem)
                                .query(&mut con)
                                .unwrap()
                        });
                        let ticket = field(&v, "ticket");
                        if i % 10 == 0 {
                            let retry: redis::RedisResult<Value> = redis::cmd("QUEUE.ENQUEUE")
                                .arg(EVENT)
                                .arg(&user)
                                .arg("IDEMPOTENCY")
                                .arg(&idem)
                                .query(&mut con);
                            if retry
                                .err()
                                .and_then(|e| e.code().map(str::to_string))
                                .as_deref()
                                == Some("DUPLICATE")
                            {
                                duplicates += 1;
                            }
                        }
                        mine.push((user, ticket));
                    }
                    for (_, ticket) in &mine {
                        let _: Value = stats.timed("QUEUE.STATUS", || {
                            redis::cmd("QUEUE.STATUS")
                                .arg(EVENT)
                                .arg(ticket)
                                .query(&mut con)
                                .unwrap()
                        });
                    }
                    (stats, mine, duplicates)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect()
    });
    let burst_secs = phase.elapsed().as_secs_f64();
    let mut users: Vec<(String, String)> = Vec::new();
    let mut duplicates = 0;
    for (s, mine, d) in results {
        stats.merge(s);
        users.extend(mine);
        duplicates += d;
    }
    users.sort_by_key(|(_, t)| ticket_key(t));
    let mut failures: Vec<String> = Vec::new();
    let expected_duplicates = (0..o.users).filter(|i| i % 10 == 0).count();
    if duplicates != expected_duplicates {
        failures.push(format!(
            "{duplicates} of {expected_duplicates} retried joins answered DUPLICATE"
        ));
    }

    // Phase 2: 10% leave; positions of everyone else must be exactly 1..M in join order.
    let (leavers, stayers): (Vec<_>, Vec<_>) =
        users.iter().enumerate().partition(|(i, _)| i % 10 == 3);
    for (_, (_, ticket)) in &leavers {
        let _: Value = stats.timed("QUEUE.LEAVE", || {
            redis::cmd("QUEUE.LEAVE")
                .arg(EVENT)
                .arg(ticket)
                .query(&mut con)
                .unwrap()
        });
    }
    let mut pipe = redis::pipe();
    for (_, (_, ticket)) in &stayers {
        pipe.cmd("QUEUE.STATUS").arg(EVENT).arg(ticket);
    }
    let positions: Vec<Value> = pipe.query(&mut con).unwrap();
    let dense = positions
        .iter()
        .enumerate()
        .all(|(i, v)| field(v, "position") == (i + 1).to_string());
    if !dense {
        failures.push("positions after leaves are not exactly 1..M in join order".into());
    }

    // Phase 3: every 5th remaining user abandons (stops polling); the others keep polling while
    // their heartbeat would lapse, and the server must drop exactly the abandoned ones.
    let (abandoners, pollers): (Vec<_>, Vec<_>) =
        stayers.iter().enumerate().partition(|(i, _)| i % 5 == 0);
    let deadline = Instant::now() + Duration::from_millis(HEARTBEAT_MS * 2 + 1500);
    while Instant::now() < deadline {
        for chunk in pollers.chunks(256) {
            let mut pipe = redis::pipe();
            for (_, (_, (_, ticket))) in chunk {
                pipe.cmd("QUEUE.STATUS").arg(EVENT).arg(ticket).ignore();
            }
            let _: () = pipe.query(&mut con).unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let waiting: usize = redis::cmd("QUEUE.LEN").arg(EVENT).query(&mut con).unwrap();
    if waiting != pollers.len() {
        failures.push(format!(
            "{waiting} waiting after the heartbeat sweep, expected the {} who kept polling",
            pollers.len()
        ));
    }

    // Phase 4: a worker admits everyone left, from the head, in batches.
    let mut admitted: Vec<String> = Vec::new();
    loop {
        let batch: Vec<Value> = stats.timed("QUEUE.DEQUEUE", || {
            redis::cmd("QUEUE.DEQUEUE")
                .arg(EVENT)
                .arg("COUNT")
                .arg(500)
                .query(&mut con)
                .unwrap()
        });
        if batch.is_empty() {
            break;
        }
        admitted.extend(batch.iter().map(|v| field(v, "ticket")));
    }
    let expected_order: Vec<&String> = pollers.iter().map(|(_, (_, (_, t)))| t).collect();
    if admitted.iter().collect::<Vec<_>>() != expected_order {
        failures.push(
            "admissions are not in join order, or someone was admitted twice or skipped".into(),
        );
    }

    // The journal must tell the same story as the counters.
    let info: Value = redis::cmd("QUEUE.INFO").arg(EVENT).query(&mut con).unwrap();
    let count = |name: &str| field(&info, name).parse::<usize>().unwrap_or(usize::MAX);
    let journal_len: usize = redis::cmd("XLEN").arg(JOURNAL).query(&mut con).unwrap();
    let (joined, left, expired, admitted_total) = (
        count("joined_total"),
        count("left_total"),
        count("expired_total"),
        count("admitted_total"),
    );
    if (joined, left, expired, admitted_total)
        != (o.users, leavers.len(), abandoners.len(), pollers.len())
    {
        failures.push(format!("counters joined/left/expired/admitted = {joined}/{left}/{expired}/{admitted_total}, expected {}/{}/{}/{}", o.users, leavers.len(), abandoners.len(), pollers.len()));
    }
    if journal_len != joined + left + expired + admitted_total {
        failures.push(format!(
            "journal has {journal_len} entries, expected {}",
            joined + left + expired + admitted_total
        ));
    }
    let memory: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(EVENT)
        .query(&mut con)
        .unwrap_or(0);

    println!(
        "\nburst: {} joins + status polls in {:.2}s",
        o.users, burst_secs
    );
    println!(
        "\n{:<15} {:>9} {:>11} {:>8} {:>8} {:>8} {:>8}",
        "command", "calls", "ops/s*", "p50 us", "p95 us", "p99 us", "max us"
    );
    let mut names: Vec<_> = stats.samples.keys().copied().collect();
    names.sort_unstable();
    for name in names {
        let mut v = stats.samples[name].clone();
        v.sort_unstable();
        let pct = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        let threads = if matches!(name, "QUEUE.ENQUEUE" | "QUEUE.STATUS") {
            o.threads as f64
        } else {
            1.0
        };
        let ops = v.len() as f64 / stats.busy[name].as_secs_f64() * threads;
        println!(
            "{:<15} {:>9} {:>11.0} {:>8} {:>8} {:>8} {:>8}",
            name,
            v.len(),
            ops,
            pct(0.5),
            pct(0.95),
            pct(0.99),
            v[v.len() - 1]
        );
    }
    println!(
        "* ops/s = calls / time spent waiting for replies, times the connections sending them"
    );
    println!("\njoined {joined}, left {left}, expired by heartbeat {expired}, admitted {admitted_total}, journal entries {journal_len}");
    println!(
        "event memory after the sale: {memory} bytes; wall time {:.1}s",
        wall.elapsed().as_secs_f64()
    );
    println!("\ninvariants:");
    for (name, ok) in [
        (
            "retried joins answer DUPLICATE",
            duplicates == expected_duplicates,
        ),
        ("positions are dense and in join order", dense),
        (
            "abandoned tickets dropped by the server, pollers kept",
            waiting == pollers.len(),
        ),
        (
            "admission order == join order, nobody twice",
            admitted.iter().collect::<Vec<_>>() == expected_order,
        ),
        (
            "counters and journal agree",
            failures
                .iter()
                .all(|f| !f.starts_with("counters") && !f.starts_with("journal")),
        ),
    ] {
        println!("  [{}] {name}", if ok { "ok" } else { "FAIL" });
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("invariant violated: {f}");
        }
        std::process::exit(1);
    }
    println!("\nall invariants hold");
}
