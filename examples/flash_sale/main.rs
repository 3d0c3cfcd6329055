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
//!
//! Layout: `options`; `sale` creates the event; `plan` draws each user's behaviour; `worker`
//! runs the users' state machines (`request` builds their commands, `replies` moves them on)
//! over a `seat_map`; `run` starts the workers under the `--rps` cap; `stats` counts; `settle`
//! waits for the last holds and reads the event, `replay` rebuilds it from the journal;
//! `report` and `invariants` print.

mod invariants;
mod options;
mod plan;
mod replay;
mod reply;
mod report;
mod run;
mod sale;
mod seat_map;
mod settle;
mod stats;
mod worker;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{Connection, FromRedisValue};
use seatq_testkit::server::Server;

use invariants::check_invariants;
use options::Options;
use run::{run_sale, Shared};
use sale::{create_sale, server_version, DEFAULT_SEATS};
use settle::settle;

/// Stops the demo when the server cannot be used (not an invariant: there is nothing to check).
fn fail(msg: &str) -> ! {
    eprintln!("flash_sale: {msg}");
    std::process::exit(1)
}

/// A connection with timeouts: a stalled server ends the demo instead of hanging it.
fn connect(url: &str) -> redis::RedisResult<Connection> {
    let con = redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(5))?;
    con.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(con)
}

/// Runs a command whose failure ends the demo (exit 1).
fn query<T: FromRedisValue>(con: &mut Connection, cmd: &redis::Cmd, what: &str) -> T {
    cmd.query(con)
        .unwrap_or_else(|e| fail(&format!("{what} failed: {e}")))
}

fn main() {
    let options = Options::parse();
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
        .then(|| Server::start(options.server, &[]));
    let url = match (&options.url, &throwaway) {
        (Some(url), _) => url.clone(),
        (None, Some(server)) => server.url(),
        (None, None) => unreachable!("a server was started"),
    };
    let mut con = connect(&url).unwrap_or_else(|e| fail(&format!("cannot connect to {url}: {e}")));
    let version = server_version(&mut con);
    let sale = create_sale(&mut con, seats);
    report::print_setup(&options, &url, throwaway.is_some(), &version, &sale, seed);

    let shared = Shared::new(&options);
    let (mut stats, outcome) = run_sale(&url, &sale, &shared, &options, seed);
    let sale_secs = shared.started.elapsed().as_secs_f64();
    let end = settle(&mut con, &sale);

    println!("\nsale: {} users done in {sale_secs:.1} s", options.users);
    report::print_commands(&mut stats, sale_secs);
    report::print_totals(&outcome, &end, &shared, &sale);
    if throwaway.is_some() {
        report::print_module_view(&mut con);
    }
    let checks = check_invariants(&outcome, &end, &sale);
    invariants::print(&checks);
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
