//! Running the users: one worker thread per connection, the clock, the `--rps` cap and the
//! router they share, the monitor (progress bar, compaction probe, memory samples) and, under
//! `--chaos`, the thread that injects the faults.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use redis::{Connection, Value};

use crate::chaos::Chaos;
use crate::options::Options;
use crate::reply::field_int;
use crate::sale::Sale;
use crate::seat_map::SharedSeatMap;
use crate::stats::{Outcome, Stats};
use crate::worker::Worker;
use crate::{connect, fail};

/// The cap of `--rps`: a budget shared by all threads, whose rate may ramp linearly.
pub struct RateCap {
    from: f64,
    to: f64,
    ramp_secs: f64,
    /// When (seconds since the start) the budget is next free.
    next_free: Mutex<f64>,
}

impl RateCap {
    pub fn rate_at(&self, secs: f64) -> f64 {
        if secs >= self.ramp_secs {
            self.to
        } else {
            self.from + (self.to - self.from) * secs / self.ramp_secs
        }
    }

    /// Reserves `n` commands of the budget and sleeps until they may be sent.
    pub fn acquire(&self, started: Instant, n: usize) {
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

/// Where the clients send their commands: the one server, or under `--chaos` whichever server
/// the fault thread says is the primary (clients check with ROLE before they use it).
pub struct Router {
    pub chaos: bool,
    primary: Mutex<String>,
    /// Bumped at every change of primary.
    pub epoch: AtomicUsize,
}

impl Router {
    pub fn new(url: &str, chaos: bool) -> Router {
        Router {
            chaos,
            primary: Mutex::new(url.to_string()),
            epoch: AtomicUsize::new(0),
        }
    }

    pub fn primary(&self) -> String {
        self.primary
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_primary(&self, url: &str) {
        *self.primary.lock().unwrap_or_else(|e| e.into_inner()) = url.to_string();
        self.epoch.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection to `url` if that server says it is a master (ROLE) and is not loading.
    pub fn connect_primary(&self, url: &str) -> Result<Connection, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let mut con = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .map_err(|e| e.to_string())?;
        con.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let role: Value = redis::cmd("ROLE")
            .query(&mut con)
            .map_err(|e| e.to_string())?;
        match &role {
            Value::Array(items)
                if items
                    .first()
                    .is_some_and(|r| seatq_testkit::text(r) == "master") =>
            {
                Ok(con)
            }
            _ => Err(format!("{url} is not a master: {role:?}")),
        }
    }
}

/// What every thread sees: the clock, the cap, the router, and counters for the progress bar.
pub struct Shared {
    pub started: Instant,
    /// The seat map the users look at, read by the monitor.
    pub seat_map: SharedSeatMap,
    /// The wall clock at `started`, ms since the epoch (the journal's IDs are server times).
    pub started_epoch_ms: u64,
    pub cap: Option<RateCap>,
    pub router: Router,
    pub threads: usize,
    pub users: usize,
    pub joined: AtomicU64,
    pub waiting: AtomicU64,
    pub admitted: AtomicU64,
    pub sold: AtomicU64,
    pub finished: AtomicU64,
    /// Lingering users (see `plan::LINGERERS`) still keeping their session alive.
    pub lingering: AtomicU64,
    /// Microseconds since the start when a worker first saw the event sold out (0: not yet).
    pub sold_out_at_us: AtomicU64,
    /// Tickets of the users who left at once (see `plan::PROBES`).
    pub probe_tickets: Mutex<Vec<String>>,
    /// When the monitor saw a probe ticket gone (compaction), microseconds since the start.
    pub compacted_at_us: AtomicU64,
    /// Faults: (start, end) in microseconds since the start; end u64::MAX while under way.
    pub disruptions: Mutex<Vec<(u64, u64)>>,
    /// The parts of the faults when the primary could not take writes (down, loading, paused,
    /// failing over), same units.
    pub outages: Mutex<Vec<(u64, u64)>>,
    pub faults_done: AtomicU64,
    pub faults_planned: AtomicU64,
}

impl Shared {
    pub fn new(options: &Options, url: &str, seats: usize) -> Shared {
        Shared {
            started: Instant::now(),
            seat_map: SharedSeatMap::new(seats),
            started_epoch_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            cap: options.rps.map(|(from, to)| RateCap {
                from,
                to,
                ramp_secs: options.arrival.as_secs_f64(),
                next_free: Mutex::new(0.0),
            }),
            router: Router::new(url, options.chaos),
            threads: options.threads,
            users: options.users,
            joined: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            admitted: AtomicU64::new(0),
            sold: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            lingering: AtomicU64::new(0),
            sold_out_at_us: AtomicU64::new(0),
            probe_tickets: Mutex::new(Vec::new()),
            compacted_at_us: AtomicU64::new(0),
            disruptions: Mutex::new(Vec::new()),
            outages: Mutex::new(Vec::new()),
            faults_done: AtomicU64::new(0),
            faults_planned: AtomicU64::new(0),
        }
    }

    pub fn now_us(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    /// Whether an outage was under way at some time from `since_us` until now.
    pub fn outage_since(&self, since_us: u64) -> bool {
        self.outages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|&(_, end)| end >= since_us)
    }

    /// Runs `f`, an outage of the primary (recorded for the clients' excuses).
    pub fn outage<T>(&self, f: impl FnOnce() -> T) -> T {
        let index = {
            let mut o = self.outages.lock().unwrap_or_else(|e| e.into_inner());
            o.push((self.now_us(), u64::MAX));
            o.len() - 1
        };
        let result = f();
        self.outages.lock().unwrap_or_else(|e| e.into_inner())[index].1 = self.now_us();
        result
    }

    /// The faults as spans of server time, ms since the epoch.
    pub fn disruption_spans_ms(&self) -> Vec<(u64, u64)> {
        self.disruption_spans()
            .into_iter()
            .map(|(a, b)| {
                (
                    self.started_epoch_ms + a / 1000,
                    self.started_epoch_ms + b / 1000,
                )
            })
            .collect()
    }

    /// The faults as (start, end) spans (end: now for one still under way).
    pub fn disruption_spans(&self) -> Vec<(u64, u64)> {
        let now = self.now_us();
        self.disruptions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|&(start, end)| (start, end.min(now)))
            .collect()
    }
}

/// What the monitor sampled during the sale.
#[derive(Default)]
pub struct Samples {
    /// (seconds since the start, MEMORY USAGE of the event key, QUEUE.INFO waiting, sessions).
    pub points: Vec<(f64, u64, u64, u64)>,
    /// MEMORY USAGE just before and after the first sample that saw compaction.
    pub memory_at_compaction: Option<(u64, u64)>,
    pub probe_ticket: Option<String>,
}

/// Runs every user to the end, with a progress bar (and the faults under `--chaos`); returns
/// what they saw and what the monitor sampled.
pub fn run_sale(
    sale: &Sale,
    shared: &Shared,
    options: &Options,
    seed: u64,
    chaos: Option<&mut Chaos>,
) -> (Stats, Outcome, Samples) {
    let bar = ProgressBar::new(options.users as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:28}] {pos}/{len} done  {msg}")
            .expect("progress template")
            .progress_chars("=> "),
    );
    let mut samples = Samples::default();
    let results = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..options.threads)
            .map(|t| {
                scope.spawn(move || {
                    let users = (t..options.users)
                        .step_by(options.threads)
                        .map(|u| u as u32);
                    let url = shared.router.primary();
                    let con = connect(&url).map_err(|e| e.to_string())?;
                    Worker::new(Some(con), sale, shared, users, seed, options).run()
                })
            })
            .collect();
        let bar_ref = &bar;
        let fault_thread = chaos.map(|chaos| scope.spawn(move || chaos.run(shared, sale, bar_ref)));
        let mut monitor = Monitor::new(shared, sale);
        let mut last_sample = Instant::now() - Duration::from_secs(1);
        while !workers.iter().all(|w| w.is_finished())
            || fault_thread.as_ref().is_some_and(|f| !f.is_finished())
        {
            if last_sample.elapsed() >= Duration::from_secs(1) {
                last_sample = Instant::now();
                monitor.sample(&mut samples);
            }
            monitor.seat_map();
            bar.set_position(shared.finished.load(Ordering::Relaxed));
            let faults = match shared.faults_planned.load(Ordering::Relaxed) {
                0 => String::new(),
                n => format!(
                    "  faults {}/{n}",
                    shared.faults_done.load(Ordering::Relaxed)
                ),
            };
            bar.set_message(format!(
                "joined {}  waiting {}  admitted {}  sold {}/{}{faults}",
                shared.joined.load(Ordering::Relaxed),
                shared.waiting.load(Ordering::Relaxed),
                shared.admitted.load(Ordering::Relaxed),
                shared.sold.load(Ordering::Relaxed),
                sale.seat_names.len()
            ));
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some(f) = fault_thread {
            f.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
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
        let (s, o) = result.unwrap_or_else(|e| fail(&e));
        stats.merge(s);
        outcome.merge(o);
    }
    (stats, outcome, samples)
}

/// Once a second: the event's memory, its waiting tickets and sessions, and whether the
/// oldest tombstones (a probe's ticket) are gone.
struct Monitor<'a> {
    shared: &'a Shared,
    sale: &'a Sale,
    con: Option<Connection>,
    last_memory: u64,
}

impl<'a> Monitor<'a> {
    fn new(shared: &'a Shared, sale: &'a Sale) -> Monitor<'a> {
        Monitor {
            shared,
            sale,
            con: None,
            last_memory: 0,
        }
    }

    /// Reads the seat map again when it is stale.
    fn seat_map(&mut self) {
        let now = self.shared.now_us();
        if !self.shared.seat_map.is_stale(now) || !self.connect() {
            return;
        }
        let con = self.con.as_mut().expect("connected");
        if self.shared.seat_map.refresh(con, self.sale, now).is_err() {
            self.con = None;
        }
    }

    /// Connects to the primary if not connected; whether it is.
    fn connect(&mut self) -> bool {
        if self.con.is_none() {
            let url = self.shared.router.primary();
            self.con = if self.shared.router.chaos {
                self.shared.router.connect_primary(&url).ok()
            } else {
                connect(&url).ok()
            };
        }
        self.con.is_some()
    }

    fn sample(&mut self, samples: &mut Samples) {
        if self.con.is_none() {
            let url = self.shared.router.primary();
            self.con = if self.shared.router.chaos {
                self.shared.router.connect_primary(&url).ok()
            } else {
                connect(&url).ok()
            };
        }
        let Some(con) = self.con.as_mut() else {
            return;
        };
        let probe = samples.probe_ticket.clone().or_else(|| {
            self.shared
                .probe_tickets
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .first()
                .cloned()
        });
        let memory: Value = match redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&self.sale.key)
            .query(con)
        {
            Ok(v) => v,
            Err(_) => {
                self.con = None;
                return;
            }
        };
        let memory = match memory {
            Value::Int(n) => n as u64,
            _ => 0,
        };
        let Ok(info) = redis::cmd("QUEUE.INFO")
            .arg(&self.sale.key)
            .query::<Value>(con)
        else {
            self.con = None;
            return;
        };
        samples.points.push((
            self.shared.started.elapsed().as_secs_f64(),
            memory,
            field_int(&info, "waiting").unwrap_or(0),
            field_int(&info, "sessions").unwrap_or(0),
        ));
        if let Some(ticket) = probe {
            samples.probe_ticket = Some(ticket.clone());
            let status: redis::RedisResult<Value> = redis::cmd("QUEUE.STATUS")
                .arg(&self.sale.key)
                .arg(&ticket)
                .query(con);
            let gone = matches!(&status, Err(e) if e.code() == Some("NO_SUCH_TICKET"));
            if gone && self.shared.compacted_at_us.load(Ordering::Relaxed) == 0 {
                self.shared
                    .compacted_at_us
                    .store(self.shared.now_us().max(1), Ordering::Relaxed);
                samples.memory_at_compaction = Some((self.last_memory, memory));
            }
        }
        self.last_memory = memory;
    }
}
