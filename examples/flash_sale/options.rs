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
}

impl Options {
    pub fn parse() -> Options {
        let mut o = Options {
            users: 100_000,
            threads: 8,
            seats: None,
            arrival: Duration::from_secs(2),
            rps: None,
            server: ServerKind::Redis,
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

const USAGE: &str = "usage: flash_sale [--users N] [--threads N] [--seats N] [--arrival SECS] \
                     [--rps N|A:B] [--server redis|valkey] [--url redis://host:port/] [--seed N]";

fn usage(msg: &str) -> ! {
    eprintln!("flash_sale: {msg}\n{USAGE}");
    std::process::exit(2)
}
