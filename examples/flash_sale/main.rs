//! The flash-sale simulator, seatq's main demo (`cargo run --release --example flash_sale`).
//!
//! A burst of users descends on one event with named seats (`A-12-07`: section, row, number).
//! Each user joins the waiting line (half of them with an `IDEMPOTENCY` key; some of those
//! retry the join, which must be refused as `DUPLICATE <their own ticket>`), then polls
//! `QUEUE.STATUS` like a browser: every `retry_after_ms` the server gives, or every 2-5 s with
//! `--poll-ms 2000-5000`. The server calls the line by itself at RATE/BURST within CAPACITY;
//! when STATUS says `admitted` the user claims the call with `QUEUE.ADMIT` (getting the pass,
//! a JWT), holds 1-4 adjacent seats with `SEAT.HOLD ... PASS <pass>` (`SEAT_UNAVAILABLE`: picks
//! others; `SOLD_OUT`: leaves) and buys them with `SEAT.CONFIRM`. Some users leave the line,
//! some stop polling (their ticket must lapse), some never claim their call (a no-show after
//! CLAIM-TTL), some claim and leave, some abandon their hold (the server's timer must return
//! it), a few greedy ones try a fifth seat (`USER-LIMIT` must refuse it). The first users keep
//! their session to the end and check it still answers by `USER` once the line has compacted
//! its old tickets. Once the event is sold out, everyone still waiting leaves. Users are state
//! machines: each worker thread schedules its share of them over one connection and pipelines
//! the commands of the users that are due.
//!
//! At the end it prints, per command, calls, throughput, client-observed latency and error
//! replies by code; the sale's totals; admissions per second against RATE measured from the
//! journal's `admitted` entries (server times) where enough users waited, the longest gaps
//! between calls and the most live sessions against CAPACITY; the module's own latency view;
//! and checks invariants against `SEAT.STATUS`, `SEAT.INFO`, `QUEUE.INFO` and a replay of the
//! event's journal. Exit status: 0 when everything holds; 1 when an invariant fails (the rate
//! off RATE by more than 2% included), an unexpected error reply came back or the server
//! failed; 2 for bad options. A lapse the server reports (a ticket expired, a call missed, a pass
//! or a hold gone) is checked against the deadline the server gave in an earlier reply: before
//! it, it is a module bug (an unexpected reply); after it, the client came back late (the report
//! warns, and shows the simulator's own lag: on a loaded machine clients fall behind) or, under
//! `--chaos`, an outage explains it.
//!
//! `--chaos` runs the sale on a primary with a replica, both with AOF (`appendfsync always`),
//! while a thread performs, in random order, BGSAVE + restart, BGREWRITEAOF, CLIENT PAUSE
//! WRITE, FAILOVER to the replica and back, a full resync of the replica, DEBUG RELOAD,
//! kill -9 + restart, and a restart after more than HEARTBEAT of downtime. Clients follow the
//! primary, send again what was not acknowledged, and rejoin when a fault made their ticket
//! lapse. On top of the invariants: every fault survived, every RDB file the servers wrote
//! loads in a fresh server, primary == replica after each fault and at the end. Sized for CI:
//! `--chaos` alone is 150,000 users (the line compacts its tombstones while old sessions live)
//! and takes 3-4 minutes on 2 cores; a million users: `--chaos --users 1000000 --arrival 900
//! --chaos-every 90` (about half an hour).
//!
//! Options:
//!   --users N               users arriving (default 100000; 150000 with --chaos)
//!   --threads N             worker threads, one connection each (default 8)
//!   --seats N               named seats (default 5000, 100000 with --chaos; at most users/2 so
//!                           demand exceeds supply)
//!   --arrival SECS          users arrive at random times within this many seconds (default 2;
//!                           150 with --chaos)
//!   --rps N | A:B           cap on the commands sent per second by all threads together; A:B
//!                           ramps linearly from A to B over the arrival phase, then stays at B
//!                           (default: no cap)
//!   --poll-ms N | A-B       waiting users poll every N ms, or every A-B ms drawn per user
//!                           (default: every retry_after_ms the server gives)
//!   --rate N, --burst N     the event's RATE (default 500; 1000 with --chaos) and BURST (25)
//!   --capacity N            the event's CAPACITY (default 5000; 20000 with --chaos)
//!   --server redis|valkey   the throwaway server(s) to start (default redis)
//!   --url redis://host:port/  use a running server with seatq loaded instead; the event
//!                           (`flash:{<ms>-<pid>}`) and its journal are left there to look at
//!   --seed N                seed of the users' choices and the faults' order (default: clock)
//!   --chaos                 primary + replica + AOF, faults during the sale (see above)
//!   --chaos-every SECS      pause between two faults (default 8)
//!
//! Layout: `options`; `sale` creates the event; `plan` draws each user's behaviour; `worker`
//! runs the users' state machines (`request` builds their commands, `replies` moves them on,
//! `link` sends them and follows the primary) over their copy of the `seat_map`; `run` starts
//! the workers under the `--rps` cap with the monitor (which reads the seat map for everyone,
//! like a cached seat-map page) and the `chaos` thread (`faults`, `compare`, `snapshots`);
//! `stats` counts; `settle` waits for the last holds and sessions and reads the event,
//! `replay` rebuilds it from the journal, `admission` measures the calls against RATE;
//! `report` and `invariants` print.

mod admission;
mod chaos;
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

use chaos::Chaos;
use invariants::{check_invariants, Evidence};
use options::Options;
use run::{run_sale, Shared};
use sale::{create_sale, server_version, Settings, CHAOS_SEATS, DEFAULT_SEATS};
use settle::settle;

/// Why the demo stopped early.
struct Failure(String);

/// Stops the demo when the server cannot be used (not an invariant: there is nothing to check).
/// Unwinds, so that the servers the demo started are stopped; `main` exits with 1.
fn fail(msg: &str) -> ! {
    std::panic::resume_unwind(Box::new(Failure(msg.to_string())))
}

fn main() {
    match std::panic::catch_unwind(run) {
        Ok(code) => std::process::exit(code),
        Err(payload) => match payload.downcast_ref::<Failure>() {
            Some(Failure(msg)) => {
                eprintln!("flash_sale: {msg}");
                std::process::exit(1)
            }
            None => std::panic::resume_unwind(payload),
        },
    }
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

/// The demo; returns the exit status.
fn run() -> i32 {
    let options = Options::parse();
    let settings = Settings::new(&options);
    let default_seats = if options.chaos {
        CHAOS_SEATS
    } else {
        DEFAULT_SEATS
    };
    let seats = options
        .seats
        .unwrap_or_else(|| default_seats.min(options.users / 2).max(1));
    let seed = options.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let wall = Instant::now();
    let mut chaos = options
        .chaos
        .then(|| Chaos::start(options.server, seed, options.chaos_every));
    let throwaway =
        (options.url.is_none() && chaos.is_none()).then(|| Server::start(options.server, &[]));
    let url = match (&options.url, &throwaway, &chaos) {
        (Some(url), _, _) => url.clone(),
        (None, Some(server), _) => server.url(),
        (None, None, Some(chaos)) => chaos.url(chaos.primary),
        (None, None, None) => unreachable!("a server was started"),
    };
    let mut con = connect(&url).unwrap_or_else(|e| fail(&format!("cannot connect to {url}: {e}")));
    let version = server_version(&mut con);
    let sale = create_sale(&mut con, seats, settings, chaos.is_none());
    report::print_setup(&options, &url, options.url.is_none(), &version, &sale, seed);
    if let Some(chaos) = &chaos {
        println!(
            "  chaos     primary :{} and replica :{}, both {} ; {} faults in random order, one \
             every {:.0} s from {} s in, again in new orders while the sale goes on; RDB copies in \
             {}",
            chaos.servers[0].port,
            chaos.servers[1].port,
            chaos::PERSISTENCE.join(" "),
            chaos::Fault::ALL.len(),
            options.chaos_every.as_secs_f64(),
            5,
            chaos.dir.display()
        );
    }

    let shared = Shared::new(&options, &url, sale.seat_names.len());
    let (mut stats, outcome, samples) = run_sale(&sale, &shared, &options, seed, chaos.as_mut());
    let sale_secs = shared.started.elapsed().as_secs_f64();
    // After a failover the primary may be the other server: read from whichever it is now.
    let primary = shared.router.primary();
    let mut con =
        connect(&primary).unwrap_or_else(|e| fail(&format!("cannot connect to {primary}: {e}")));
    let end = settle(&mut con, &sale, &shared, &outcome);

    println!("\nsale: {} users done in {sale_secs:.1} s", options.users);
    report::print_commands(&mut stats, sale_secs);
    report::print_totals(&outcome, &end, &shared, &sale);
    let faults_ms = shared.disruption_spans_ms();
    let admission = admission::analyse(
        &end.replay.calls,
        &sale.settings,
        &faults_ms,
        shared.started_epoch_ms,
    );
    report::print_admission(&admission, &end, &sale, &samples);
    if options.url.is_none() {
        report::print_module_view(&mut con);
    }
    let evidence = Evidence {
        outcome: &outcome,
        end: &end,
        sale: &sale,
        admission: &admission,
        shared: &shared,
        samples: &samples,
        chaos: chaos.is_some(),
        lingerers_planned: if options.users >= plan::LINGER_MIN_USERS {
            plan::LINGERERS as u64
        } else {
            0
        },
    };
    let mut checks = check_invariants(&evidence);
    let count = checks.len();
    if outcome.unexpected_total > 0 {
        println!("\nunexpected replies (the first of each worker)");
        for problem in &outcome.unexpected {
            println!("  {problem}");
        }
    }
    invariants::print("invariants", &checks, 1);
    if let Some(chaos) = chaos.as_mut() {
        report::print_faults(chaos);
        chaos.print_latency();
        println!("\nsnapshots (each RDB file the servers wrote, loaded by a fresh server)");
        let chaos_checks = chaos.checks(&sale);
        invariants::print("chaos", &chaos_checks, count + 1);
        checks.extend(chaos_checks);
    }
    let failed = checks.iter().any(|c| !c.ok);
    if let Some(chaos) = &chaos {
        if failed {
            chaos.keep_logs();
            println!(
                "\nRDB copies and the servers' logs are kept in {}",
                chaos.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&chaos.dir);
        }
    }
    if options.url.is_some() {
        println!(
            "\nthe event and its journal are left on the server: UNLINK {} {}",
            sale.key, sale.journal
        );
    }
    println!("\nwall time {:.1} s", wall.elapsed().as_secs_f64());
    // The servers stop when dropped (exit would leave them running).
    drop(chaos);
    drop(throwaway);
    i32::from(failed)
}
