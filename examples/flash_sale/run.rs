//! Running the users: one worker thread per connection, the clock and the `--rps` cap they
//! share, and the progress bar.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::options::Options;
use crate::sale::Sale;
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

/// What every thread sees: the clock, the cap, and counters for the progress bar.
pub struct Shared {
    pub started: Instant,
    pub cap: Option<RateCap>,
    pub threads: usize,
    pub joined: AtomicU64,
    pub waiting: AtomicU64,
    pub admitted: AtomicU64,
    pub sold: AtomicU64,
    pub finished: AtomicU64,
    /// Microseconds since the start when a worker first saw the event sold out (0: not yet).
    pub sold_out_at_us: AtomicU64,
}

impl Shared {
    pub fn new(options: &Options) -> Shared {
        Shared {
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
        }
    }

    pub fn now_us(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }
}

/// Runs every user to the end, with a progress bar; returns what they saw.
pub fn run_sale(
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
