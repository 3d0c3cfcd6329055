//! `seatq-coordinator`: creates sharded seatq events over a Redis/Valkey cluster and runs the
//! coordinator that admits their line shards at the global RATE and CAPACITY, near FIFO by
//! join time (docs/sharding.md).
//!
//! ```text
//! seatq-coordinator create <event> --shards K [--set FIELD VALUE ...] [--force]
//! seatq-coordinator run <event> [--tick-ms 100] [--lease-ms 1000] [--ttl-ms 3000] [--id NAME]
//! seatq-coordinator status <event>
//! seatq-coordinator config <event> FIELD VALUE [FIELD VALUE ...]
//! seatq-coordinator each <event> QUEUE.PAUSE|QUEUE.RESUME|QUEUE.CLOSE|QUEUE.REOPEN
//! common: --url redis://[user:password@]host:port (repeatable; any node of the cluster)
//!         --timeout-ms 50 (a node slower than this is unreachable for the tick)
//! ```
//!
//! Several `run` processes may run for one event: one holds the lease (`{<event>}:coordinator`,
//! SET NX PX), the others wait to take over when it lapses.

mod create;
mod router;
mod run;
mod wire;

use std::time::Duration;

use router::Router;

const USAGE: &str = "usage:
  seatq-coordinator create <event> --shards K [--set FIELD VALUE ...] [--force]
  seatq-coordinator run <event> [--tick-ms 100] [--lease-ms 1000] [--ttl-ms 3000] [--id NAME] [--quiet]
  seatq-coordinator status <event>
  seatq-coordinator config <event> FIELD VALUE [FIELD VALUE ...]
  seatq-coordinator each <event> QUEUE.PAUSE|QUEUE.RESUME|QUEUE.CLOSE|QUEUE.REOPEN
common options: --url redis://[user:password@]host:port (repeatable) --timeout-ms 50";

pub struct Options {
    pub command: String,
    pub event: String,
    pub urls: Vec<String>,
    pub timeout: Duration,
    pub shards: u32,
    pub settings: Vec<(String, String)>,
    pub force: bool,
    pub tick_ms: u64,
    pub lease_ms: u64,
    pub ttl_ms: u64,
    pub id: Option<String>,
    pub quiet: bool,
    pub rest: Vec<String>,
}

fn fail(message: &str) -> ! {
    eprintln!("seatq-coordinator: {message}\n{USAGE}");
    std::process::exit(2);
}

fn parse() -> Options {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| fail("no command"));
    if command == "--help" || command == "-h" {
        println!("{USAGE}");
        std::process::exit(0);
    }
    let event = args.next().unwrap_or_else(|| fail("no event"));
    let mut o = Options {
        command,
        event,
        urls: Vec::new(),
        timeout: Duration::from_millis(50),
        shards: 0,
        settings: Vec::new(),
        force: false,
        tick_ms: 100,
        lease_ms: 1_000,
        ttl_ms: 3_000,
        id: None,
        quiet: false,
        rest: Vec::new(),
    };
    let number = |name: &str, v: Option<String>| -> u64 {
        v.and_then(|v| v.parse().ok())
            .unwrap_or_else(|| fail(&format!("{name} needs a number")))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--url" => o
                .urls
                .push(args.next().unwrap_or_else(|| fail("--url needs a URL"))),
            "--timeout-ms" => o.timeout = Duration::from_millis(number(&a, args.next())),
            "--shards" => o.shards = number(&a, args.next()) as u32,
            "--set" => {
                let field = args.next().unwrap_or_else(|| fail("--set FIELD VALUE"));
                let value = args.next().unwrap_or_else(|| fail("--set FIELD VALUE"));
                o.settings.push((field, value));
            }
            "--force" => o.force = true,
            "--tick-ms" => o.tick_ms = number(&a, args.next()).max(1),
            "--lease-ms" => o.lease_ms = number(&a, args.next()).max(1),
            "--ttl-ms" => o.ttl_ms = number(&a, args.next()).max(100),
            "--id" => o.id = Some(args.next().unwrap_or_else(|| fail("--id NAME"))),
            "--quiet" => o.quiet = true,
            _ => o.rest.push(a),
        }
    }
    if o.urls.is_empty() {
        o.urls.push("redis://127.0.0.1:6379/".into());
    }
    if !seatq_sharding::naming::valid_event(o.event.as_bytes()) {
        fail("an event name is 1-200 bytes without '{' or '}'");
    }
    o
}

/// Logs with the wall clock, to stderr.
pub fn log(message: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    eprintln!(
        "[seatq-coordinator {}.{:03}] {message}",
        now.as_secs(),
        now.subsec_millis()
    );
}

fn main() {
    let o = parse();
    let mut router = match Router::connect(&o.urls, o.timeout.max(Duration::from_millis(500))) {
        Ok(r) => r,
        Err(e) => fail(&format!("cannot reach {}: {e}", o.urls.join(", "))),
    };
    let result = match o.command.as_str() {
        "create" => create::create(&mut router, &o),
        "run" => run::run(router, &o),
        "status" => create::status(&mut router, &o),
        "config" => create::config(&mut router, &o),
        "each" => create::each(&mut router, &o),
        other => fail(&format!("unknown command {other}")),
    };
    if let Err(e) = result {
        eprintln!("seatq-coordinator: {e}");
        std::process::exit(1);
    }
}
