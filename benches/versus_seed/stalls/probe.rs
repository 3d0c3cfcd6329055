//! The watchers of a row: the PING prober, the latency monitor and slowlog, and the servers
//! made SCHED_FIFO.

use super::*;

/// Every server of this section logs commands of 1 ms or more, and keeps them all.
pub(super) const MONITORS: [&str; 6] = [
    "--latency-monitor-threshold",
    "1",
    "--slowlog-log-slower-than",
    "1000",
    "--slowlog-max-len",
    "4096",
];

/// Pipeline depth of fills. The server reads at most 16 KiB of one client per event-loop turn,
/// so the prober waits behind at most that much of the fill (~150 ENQUEUEs) whatever the depth.
pub(super) const FILL_DEPTH: usize = 256;

pub(super) const GIL: &str = "module-acquire-GIL";

/// Whether servers and the prober run SCHED_FIFO (`--stall-fifo`).
pub(super) static FIFO: AtomicBool = AtomicBool::new(false);

/// Makes this section's servers of `kind` start under `chrt -f -R 10` (SCHED_FIFO, children
/// forked for BGSAVE back to normal), through a wrapper script named by SEATQ_*_SERVER.
pub(super) fn use_fifo(kind: ServerKind) {
    let real = kind.binary();
    let real = if real.is_absolute() {
        real
    } else {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {}", real.display()))
            .output()
            .expect("sh");
        std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    };
    let dir = std::env::temp_dir().join(format!("seatq-stalls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("wrapper dir");
    let wrapper = dir.join(format!("{}-server", kind.name()));
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec chrt -f -R 10 '{}' \"$@\"\n",
            real.display()
        ),
    )
    .expect("wrapper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let var = match kind {
        ServerKind::Redis => "SEATQ_REDIS_SERVER",
        ServerKind::Valkey => "SEATQ_VALKEY_SERVER",
    };
    std::env::set_var(var, &wrapper);
    FIFO.store(true, Ordering::Relaxed);
}

/// Puts the calling thread under SCHED_FIFO priority 20 (above the servers') when `--stall-fifo`.
pub(super) fn fifo_thread() {
    if !FIFO.load(Ordering::Relaxed) {
        return;
    }
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse::<u32>().ok());
    if let Some(tid) = tid {
        let _ = std::process::Command::new("chrt")
            .args(["-f", "-p", "20", &tid.to_string()])
            .status();
    }
}

/// The size of the holds row, as in the issue.
pub(super) const HOLDS: usize = 100_000;

// ---------------------------------------------------------------------------------------------
// The PING prober

pub(super) struct Prober {
    pub(super) worst_us: Arc<AtomicU64>,
    over_1ms: Arc<AtomicU64>,
    pub(super) pings: Arc<AtomicU64>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) paused: Arc<AtomicBool>,
    pub(super) thread: Option<JoinHandle<()>>,
}

impl Prober {
    /// Pings the server on `port` until dropped; reconnects when the server restarts.
    pub(super) fn start(port: u16) -> Prober {
        let worst_us = Arc::new(AtomicU64::new(0));
        let over_1ms = Arc::new(AtomicU64::new(0));
        let pings = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let (w, o, p, s, pause) = (
            worst_us.clone(),
            over_1ms.clone(),
            pings.clone(),
            stop.clone(),
            paused.clone(),
        );
        let thread = std::thread::spawn(move || {
            fifo_thread();
            let mut buf = [0u8; 256];
            while !s.load(Ordering::Relaxed) {
                let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(600)));
                'ping: while !s.load(Ordering::Relaxed) {
                    if pause.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    let sent = Instant::now();
                    if stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
                        break;
                    }
                    // One line back: +PONG, or an error while the server loads.
                    let mut got = 0;
                    loop {
                        match stream.read(&mut buf[got..]) {
                            Ok(0) | Err(_) => break 'ping,
                            Ok(n) => got += n,
                        }
                        if buf[..got].ends_with(b"\r\n") {
                            break;
                        }
                    }
                    let us = sent.elapsed().as_micros() as u64;
                    if buf[0] == b'+' {
                        w.fetch_max(us, Ordering::Relaxed);
                        if us > 1000 {
                            o.fetch_add(1, Ordering::Relaxed);
                        }
                        p.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Prober {
            worst_us,
            over_1ms,
            pings,
            stop,
            paused,
            thread: Some(thread),
        }
    }

    pub(super) fn pause(&self, on: bool) {
        self.paused.store(on, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(10));
    }

    pub(super) fn reset(&self) {
        self.worst_us.store(0, Ordering::Relaxed);
        self.over_1ms.store(0, Ordering::Relaxed);
        self.pings.store(0, Ordering::Relaxed);
    }

    /// (longest gap ms, gaps over 1 ms, pings answered) since the last reset.
    pub(super) fn read(&self) -> (f64, u64, u64) {
        (
            self.worst_us.load(Ordering::Relaxed) as f64 / 1000.0,
            self.over_1ms.load(Ordering::Relaxed),
            self.pings.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What a row saw

#[derive(Default, Clone)]
pub(super) struct Observed {
    pub(super) ping_ms: f64,
    pub(super) pings_over_1ms: u64,
    pub(super) pings: u64,
    /// (event, max ms) from LATENCY LATEST.
    pub(super) latency: Vec<(String, i64)>,
    /// (event, seconds with an event of 1 ms or more) from LATENCY HISTORY.
    pub(super) latency_seconds: Vec<(String, usize)>,
    /// The slowest command the slowlog kept: (us, command and first arguments).
    pub(super) slowlog: Option<(u64, String)>,
    /// Commands the slowlog kept (1 ms or more).
    pub(super) slowlog_count: usize,
    /// The slowest few of them: (us, command line).
    pub(super) slowest: Vec<(u64, String)>,
    /// seatq's timer runs (from INFO seatq's histogram, to the microsecond, where the latency
    /// monitor has whole milliseconds).
    pub(super) timer: TimerRuns,
}

/// Runs of seatq's timer: all, over 1 ms, over 2.5 ms.
#[derive(Default, Clone, Copy, Debug)]
pub(super) struct TimerRuns {
    pub(super) runs: u64,
    pub(super) over_1ms: u64,
    pub(super) over_2_5ms: u64,
}

impl TimerRuns {
    /// What INFO seatq's `timer_runs_latency` says now.
    fn read(con: &mut Connection) -> TimerRuns {
        let info: String = redis::cmd("INFO")
            .arg("seatq")
            .query(con)
            .unwrap_or_default();
        let bucket = |name: &str| -> u64 {
            info_value(&info, "seatq_timer_runs_latency")
                .and_then(|d| info_entry(d, name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let runs = bucket("le_inf");
        TimerRuns {
            runs,
            over_1ms: runs - bucket("le_1000").min(runs),
            over_2_5ms: runs - bucket("le_2500").min(runs),
        }
    }

    /// Runs since `base`; everything now when the server restarted in between.
    fn since(self, base: TimerRuns) -> TimerRuns {
        if self.runs < base.runs {
            return self;
        }
        TimerRuns {
            runs: self.runs - base.runs,
            over_1ms: self.over_1ms.saturating_sub(base.over_1ms),
            over_2_5ms: self.over_2_5ms.saturating_sub(base.over_2_5ms),
        }
    }
}

impl Observed {
    /// The largest latency event, leaving out `module-acquire-GIL`: seatq takes no thread-safe
    /// context, so the GIL is never contended and that event measures the main thread being
    /// off the CPU (the machine's load), not work.
    pub(super) fn worst_latency(&self) -> Option<&(String, i64)> {
        self.latency
            .iter()
            .filter(|(e, _)| e != GIL)
            .max_by_key(|(_, ms)| *ms)
    }

    /// The longest the server says it was busy in one go (ms) on work other than its own
    /// persistence (`fork`, `aof-*`, `rdb-*`: what the operator's snapshot, rewrite or replica
    /// sync costs with any data of this size).
    pub(super) fn server_ms(&self) -> f64 {
        let lat = self
            .latency
            .iter()
            .filter(|(e, _)| !persistence_event(e) && e != GIL)
            .map(|(_, ms)| *ms as f64)
            .fold(0.0, f64::max);
        let slow = self
            .slowlog
            .as_ref()
            .map_or(0.0, |(us, _)| *us as f64 / 1000.0);
        lat.max(slow)
    }

    /// The server's own persistence events at 1 ms or more (event, max ms).
    pub(super) fn persistence(&self) -> Vec<&(String, i64)> {
        self.latency
            .iter()
            .filter(|(e, _)| persistence_event(e))
            .collect()
    }
}

fn persistence_event(event: &str) -> bool {
    event == "fork" || event.starts_with("aof-") || event.starts_with("rdb-")
}

impl Observed {
    pub(super) fn merge(&mut self, o: &Observed) {
        self.ping_ms = self.ping_ms.max(o.ping_ms);
        self.pings_over_1ms += o.pings_over_1ms;
        self.pings += o.pings;
        for (event, ms) in &o.latency {
            match self.latency.iter_mut().find(|(e, _)| e == event) {
                Some((_, m)) => *m = (*m).max(*ms),
                None => self.latency.push((event.clone(), *ms)),
            }
        }
        for (event, n) in &o.latency_seconds {
            match self.latency_seconds.iter_mut().find(|(e, _)| e == event) {
                Some((_, m)) => *m += n,
                None => self.latency_seconds.push((event.clone(), *n)),
            }
        }
        self.timer.runs += o.timer.runs;
        self.timer.over_1ms += o.timer.over_1ms;
        self.timer.over_2_5ms += o.timer.over_2_5ms;
        self.slowlog_count += o.slowlog_count;
        self.slowest.extend(o.slowest.iter().cloned());
        self.slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
        self.slowest.truncate(6);
        if o.slowlog.as_ref().map(|s| s.0) > self.slowlog.as_ref().map(|s| s.0) {
            self.slowlog = o.slowlog.clone();
        }
    }
}

/// One server watched: a connection for the monitors and the prober.
pub(super) struct Watch {
    pub(super) con: Connection,
    pub(super) prober: Prober,
    timer_base: TimerRuns,
}

impl Watch {
    pub(super) fn new(server: &Server) -> Watch {
        let mut con = server.connection();
        for (name, value) in [
            ("latency-monitor-threshold", "1"),
            ("slowlog-log-slower-than", "1000"),
            ("slowlog-max-len", "4096"),
        ] {
            let _: () = redis::cmd("CONFIG")
                .arg("SET")
                .arg(name)
                .arg(value)
                .query(&mut con)
                .expect("CONFIG SET");
        }
        let w = Watch {
            con,
            prober: Prober::start(server.port),
            timer_base: TimerRuns::default(),
        };
        // Let the prober connect before the first reset.
        std::thread::sleep(Duration::from_millis(50));
        w
    }

    pub(super) fn reset(&mut self) {
        let _: Value = redis::cmd("LATENCY")
            .arg("RESET")
            .query(&mut self.con)
            .expect("LATENCY RESET");
        let _: () = redis::cmd("SLOWLOG")
            .arg("RESET")
            .query(&mut self.con)
            .expect("SLOWLOG RESET");
        self.prober.reset();
        self.timer_base = TimerRuns::read(&mut self.con);
    }

    pub(super) fn collect(&mut self) -> Observed {
        let (ping_ms, pings_over_1ms, pings) = self.prober.read();
        let latest: Vec<Value> = redis::cmd("LATENCY")
            .arg("LATEST")
            .query(&mut self.con)
            .expect("LATENCY LATEST");
        let latency: Vec<(String, i64)> = latest
            .iter()
            .filter_map(|e| match e {
                Value::Array(f) if f.len() >= 4 => Some((text(&f[0]), int(&f[3]))),
                _ => None,
            })
            .collect();
        let latency_seconds = latency
            .iter()
            .map(|(event, _): &(String, i64)| {
                let history: Vec<Value> = redis::cmd("LATENCY")
                    .arg("HISTORY")
                    .arg(event)
                    .query(&mut self.con)
                    .unwrap_or_default();
                (event.clone(), history.len())
            })
            .collect();
        let slowlog: Vec<Value> = redis::cmd("SLOWLOG")
            .arg("GET")
            .arg(4096)
            .query(&mut self.con)
            .expect("SLOWLOG GET");
        let slowlog_count = slowlog.len();
        let mut slowest: Vec<(u64, String)> = slowlog
            .iter()
            .filter_map(|entry| match entry {
                Value::Array(f) if f.len() >= 4 => match (&f[2], &f[3]) {
                    (Value::Int(us), Value::Array(args)) => {
                        let mut line: Vec<String> = args
                            .iter()
                            .take(4)
                            .map(|a| {
                                let t = text(a);
                                if t.len() > 24 {
                                    format!("{}..", t.chars().take(20).collect::<String>())
                                } else {
                                    t
                                }
                            })
                            .collect();
                        line[0] = line[0].to_uppercase();
                        Some((*us as u64, line.join(" ")))
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect();
        slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
        slowest.truncate(6);
        let slowlog = slowest.first().cloned();
        let timer = TimerRuns::read(&mut self.con).since(self.timer_base);
        Observed {
            timer,
            ping_ms,
            pings_over_1ms,
            pings,
            latency,
            latency_seconds,
            slowlog,
            slowlog_count,
            slowest,
        }
    }
}

pub(super) struct Row {
    pub(super) id: &'static str,
    pub(super) what: String,
    pub(super) size: String,
    pub(super) obs: Observed,
    /// Why the row may exceed 1 ms by design (an operator's O(n) command).
    pub(super) exempt: Option<&'static str>,
    pub(super) notes: Vec<String>,
}

impl Row {
    pub(super) fn new(
        id: &'static str,
        what: impl Into<String>,
        size: usize,
        obs: Observed,
    ) -> Row {
        Row {
            id,
            what: what.into(),
            size: thousands(size as f64),
            obs,
            exempt: None,
            notes: Vec::new(),
        }
    }

    pub(super) fn note(mut self, n: impl Into<String>) -> Row {
        self.notes.push(n.into());
        self
    }

    pub(super) fn exempt(mut self, why: &'static str) -> Row {
        self.exempt = Some(why);
        self
    }
}

// ---------------------------------------------------------------------------------------------
// The machine's own noise

/// What a thread doing nothing but arithmetic saw of the machine: its own CPU time (and the
/// wall clock) read twice per iteration, iterations a fraction of a microsecond apart.
pub(super) struct Noise {
    pub(super) secs: f64,
    /// The largest jump of the thread's CPU time between two iterations, in ms.
    pub(super) cpu_jump_ms: f64,
    /// Jumps of the thread's CPU time of 1 ms or more.
    pub(super) cpu_jumps_over_1ms: u64,
    /// The largest jump of the wall clock between two iterations, in ms.
    pub(super) wall_jump_ms: f64,
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Runs the busy loop for `secs` on a thread of its own (SCHED_FIFO under `--stall-fifo`, like
/// the servers). A jump of the thread's CPU time means time the thread did not use was charged
/// to it (a VM that bills the host's time to whichever thread runs); the same jump lands in
/// whatever the server runs at that moment, a command or a timer tick, whatever its work.
pub(super) fn busy_loop_noise(secs: f64) -> Noise {
    std::thread::spawn(move || {
        fifo_thread();
        let started = Instant::now();
        let (mut cpu, mut wall) = (
            clock_ns(libc::CLOCK_THREAD_CPUTIME_ID),
            clock_ns(libc::CLOCK_MONOTONIC),
        );
        let mut noise = Noise {
            secs,
            cpu_jump_ms: 0.0,
            cpu_jumps_over_1ms: 0,
            wall_jump_ms: 0.0,
        };
        let mut x = 1u64;
        while started.elapsed().as_secs_f64() < secs {
            for _ in 0..64 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            let (c, w) = (
                clock_ns(libc::CLOCK_THREAD_CPUTIME_ID),
                clock_ns(libc::CLOCK_MONOTONIC),
            );
            let cpu_jump = (c - cpu) as f64 / 1e6;
            noise.cpu_jump_ms = noise.cpu_jump_ms.max(cpu_jump);
            noise.cpu_jumps_over_1ms += u64::from(cpu_jump >= 1.0);
            noise.wall_jump_ms = noise.wall_jump_ms.max((w - wall) as f64 / 1e6);
            (cpu, wall) = (c, w);
        }
        noise
    })
    .join()
    .expect("busy loop")
}
