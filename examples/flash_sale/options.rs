//! The command line: options, their limits and the usage line (bad options exit with 2).

use std::time::Duration;

use seatq_testkit::server::ServerKind;

use crate::sale::MAX_SEATS;

pub struct Options {
    pub users: usize,
    pub threads: usize,
    pub seats: Option<usize>,
    pub arrival: Duration,
    pub rps: Option<(f64, f64)>,
    pub server: ServerKind,
    pub url: Option<String>,
    pub seed: Option<u64>,
    /// `--poll-ms A-B`: each waiting user polls QUEUE.STATUS every N ms, N drawn per user in
    /// A..=B, like a browser page refreshing itself. None: every `retry_after_ms` the server
    /// gives.
    pub poll_ms: Option<(u64, u64)>,
    pub rate: u64,
    pub burst: u64,
    pub capacity: u64,
    /// `--chaos`: a primary with a replica and AOF, faults injected during the sale.
    pub chaos: bool,
    /// `--chaos-every SECS`: the pause between two faults.
    pub chaos_every: Duration,
}

/// Defaults of the plain demo and of `--chaos` where they differ.
pub const USERS: usize = 100_000;
pub const CHAOS_USERS: usize = 150_000;
pub const ARRIVAL_SECS: f64 = 2.0;
pub const CHAOS_ARRIVAL_SECS: f64 = 150.0;
pub const RATE: u64 = 500;
pub const CHAOS_RATE: u64 = 1000;
pub const BURST: u64 = 25;
pub const CAPACITY: u64 = 5_000;
pub const CHAOS_CAPACITY: u64 = 20_000;
pub const CHAOS_EVERY_SECS: f64 = 8.0;

impl Options {
    pub fn parse() -> Options {
        let mut users = None;
        let mut arrival = None;
        let mut capacity = None;
        let mut rate = None;
        let mut o = Options {
            users: USERS,
            threads: 8,
            seats: None,
            arrival: Duration::from_secs_f64(ARRIVAL_SECS),
            rps: None,
            server: ServerKind::Redis,
            url: None,
            seed: None,
            poll_ms: None,
            rate: RATE,
            burst: BURST,
            capacity: CAPACITY,
            chaos: false,
            chaos_every: Duration::from_secs_f64(CHAOS_EVERY_SECS),
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = || {
                args.next()
                    .unwrap_or_else(|| usage(&format!("{a} needs a value")))
            };
            match a.as_str() {
                "--users" => users = Some(positive(&value(), "--users", 10_000_000)),
                "--threads" => o.threads = positive(&value(), "--threads", 256),
                "--seats" => o.seats = Some(positive(&value(), "--seats", MAX_SEATS)),
                "--arrival" => arrival = Some(seconds(&value(), "--arrival", 0.0, 3600.0)),
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
                "--poll-ms" => {
                    let v = value();
                    let ms = |s: &str| {
                        s.trim()
                            .parse::<u64>()
                            .ok()
                            .filter(|ms| (100..=600_000).contains(ms))
                            .unwrap_or_else(|| {
                                usage("--poll-ms takes N or A-B, milliseconds from 100 to 600000")
                            })
                    };
                    let (lo, hi) = match v.split_once('-') {
                        Some((lo, hi)) => (ms(lo), ms(hi)),
                        None => (ms(&v), ms(&v)),
                    };
                    if lo > hi {
                        usage("--poll-ms A-B needs A <= B");
                    }
                    o.poll_ms = Some((lo, hi));
                }
                "--rate" => rate = Some(positive(&value(), "--rate", 100_000) as u64),
                "--burst" => o.burst = positive(&value(), "--burst", 100_000) as u64,
                "--capacity" => {
                    capacity = Some(positive(&value(), "--capacity", 10_000_000) as u64)
                }
                "--chaos" => o.chaos = true,
                "--chaos-every" => {
                    o.chaos_every =
                        Duration::from_secs_f64(seconds(&value(), "--chaos-every", 1.0, 600.0))
                }
                "--server" => {
                    o.server = ServerKind::from_name(&value())
                        .unwrap_or_else(|| usage("--server is redis or valkey"))
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
        if o.chaos && o.url.is_some() {
            usage("--chaos starts its own primary and replica: it does not take --url");
        }
        o.users = users.unwrap_or(if o.chaos { CHAOS_USERS } else { USERS });
        o.arrival = Duration::from_secs_f64(arrival.unwrap_or(if o.chaos {
            CHAOS_ARRIVAL_SECS
        } else {
            ARRIVAL_SECS
        }));
        o.capacity = capacity.unwrap_or(if o.chaos { CHAOS_CAPACITY } else { CAPACITY });
        o.rate = rate.unwrap_or(if o.chaos { CHAOS_RATE } else { RATE });
        o
    }
}

fn positive(value: &str, option: &str, max: usize) -> usize {
    value
        .parse()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .unwrap_or_else(|| usage(&format!("{option} takes a number from 1 to {max}")))
}

fn seconds(value: &str, option: &str, min: f64, max: f64) -> f64 {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| (min..=max).contains(s))
        .unwrap_or_else(|| usage(&format!("{option} takes seconds from {min} to {max}")))
}

const USAGE: &str = "usage: flash_sale [--users N] [--threads N] [--seats N] [--arrival SECS] \
                     [--rps N|A:B] [--poll-ms N|A-B] [--rate N] [--burst N] [--capacity N] \
                     [--server redis|valkey] [--url redis://host:port/] [--seed N] \
                     [--chaos [--chaos-every SECS]]";

fn usage(msg: &str) -> ! {
    eprintln!("flash_sale: {msg}\n{USAGE}");
    std::process::exit(2)
}
