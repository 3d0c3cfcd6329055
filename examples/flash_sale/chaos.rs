//! `--chaos`: the sale runs on a primary with a replica, both with AOF (`appendfsync always`),
//! while this thread performs the faults (`faults`) in a random order, one every
//! `--chaos-every` seconds: BGSAVE + restart, BGREWRITEAOF, CLIENT PAUSE WRITE, FAILOVER to the
//! replica and back, a full resync of the replica, DEBUG RELOAD, kill -9 + restart, and a
//! restart after more than HEARTBEAT of downtime. After each fault the primary and the replica
//! are compared (`compare`) and every RDB file the servers wrote is copied aside; at the end each
//! copy must load in a fresh server (`snapshots`).

mod compare;
mod faults;
mod snapshots;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use indicatif::ProgressBar;
use redis::Connection;
use seatq_testkit::info::info_value;
use seatq_testkit::rng::Rng;
use seatq_testkit::server::{Server, ServerKind};

use crate::invariants::Check;
use crate::run::Shared;
use crate::sale::Sale;

pub use faults::Fault;

/// The first fault comes this long after the sale starts (the line fills first).
const FIRST_FAULT_AFTER: Duration = Duration::from_secs(5);
/// How long a server may take to load its data when it starts again.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// What one fault did.
pub struct FaultReport {
    pub fault: Fault,
    /// Seconds since the start of the sale.
    pub at_s: f64,
    pub secs: f64,
    /// The fault was performed as planned and the servers came back.
    pub ok: bool,
    pub outcome: String,
    /// DEBUG DIGEST of primary and replica after it: None when they could not be compared.
    pub digests_equal: Option<bool>,
}

/// An RDB file a server wrote, copied aside.
pub struct Snapshot {
    pub path: PathBuf,
    pub origin: String,
}

pub struct Chaos {
    pub kind: ServerKind,
    /// [0] started as the primary, [1] as its replica.
    pub servers: [Server; 2],
    /// Which of `servers` is the primary now.
    pub primary: usize,
    pub dir: PathBuf,
    pub snapshots: Vec<Snapshot>,
    seen: HashMap<PathBuf, (SystemTime, u64)>,
    pub reports: Vec<FaultReport>,
    rng: Rng,
    every: Duration,
    heartbeat: Duration,
    /// The last journal entry found equal on both servers.
    journal_checked: Option<String>,
}

/// Both servers' options: AOF with an fsync before every reply (and full syncs without the
/// default 5 s wait for more replicas; the latency monitor on for the report).
pub const PERSISTENCE: [&str; 8] = [
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
    "--repl-diskless-sync-delay",
    "0",
    "--latency-monitor-threshold",
    "100",
];

impl Chaos {
    /// Starts the primary and its replica (both with AOF, `appendfsync always`).
    pub fn start(kind: ServerKind, seed: u64, every: Duration) -> Chaos {
        let primary = Server::start(kind, &PERSISTENCE);
        let replica = primary.start_replica(&PERSISTENCE);
        let dir = std::env::temp_dir().join(format!("seatq-chaos-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("snapshot directory");
        let mut chaos = Chaos {
            kind,
            servers: [primary, replica],
            primary: 0,
            dir,
            snapshots: Vec::new(),
            seen: HashMap::new(),
            reports: Vec::new(),
            rng: Rng::new(seed ^ 0xC4A0_5C4A_05C4_A05C),
            every,
            heartbeat: Duration::ZERO,
            journal_checked: None,
        };
        // The files the servers wrote when they started (the replica rewrites its AOF after
        // its first sync) hold no event yet: not snapshots.
        for i in 0..2 {
            let _ = chaos.wait_for(Duration::from_secs(60), "the first AOF rewrite", |c| {
                let info = c.info(i, "persistence")?;
                Ok(info_value(&info, "aof_rewrite_in_progress") == Some("0")
                    && info_value(&info, "aof_rewrite_scheduled") == Some("0"))
            });
        }
        chaos.note_existing_files();
        chaos
    }

    pub fn replica(&self) -> usize {
        1 - self.primary
    }

    pub fn url(&self, i: usize) -> String {
        self.servers[i].url()
    }

    /// A connection to server `i` (long read timeout: DEBUG RELOAD blocks).
    fn con(&self, i: usize) -> Result<Connection, String> {
        let client = redis::Client::open(self.url(i)).map_err(|e| e.to_string())?;
        let con = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .map_err(|e| format!("{}: {e}", self.name(i)))?;
        con.set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(|e| e.to_string())?;
        Ok(con)
    }

    /// "primary (:port)" or "replica (:port)", by the role it has now.
    pub fn name(&self, i: usize) -> String {
        let role = if i == self.primary {
            "primary"
        } else {
            "replica"
        };
        format!("{role} :{}", self.servers[i].port)
    }

    fn info(&self, i: usize, section: &str) -> Result<String, String> {
        let mut con = self.con(i)?;
        redis::cmd("INFO")
            .arg(section)
            .query(&mut con)
            .map_err(|e| format!("INFO {section} on {}: {e}", self.name(i)))
    }

    fn info_field(&self, i: usize, section: &str, name: &str) -> Result<String, String> {
        let info = self.info(i, section)?;
        Ok(info_value(&info, name).unwrap_or("").to_string())
    }

    /// Polls `cond` every 50 ms until it is true or `timeout` passes.
    fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        mut cond: impl FnMut(&Chaos) -> Result<bool, String>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            match cond(self) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{what}: not within {timeout:?}{}",
                    if last.is_empty() {
                        String::new()
                    } else {
                        format!(" (last error: {last})")
                    }
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The replica's link is up, its sync done, and the primary sees it online.
    fn replica_synced(&self) -> Result<bool, String> {
        let r = self.info(self.replica(), "replication")?;
        let p = self.info(self.primary, "replication")?;
        Ok(info_value(&r, "role") == Some("slave")
            && info_value(&r, "master_link_status") == Some("up")
            && info_value(&r, "master_sync_in_progress") == Some("0")
            && info_value(&p, "role") == Some("master")
            && info_value(&p, "slave0").is_some_and(|s| s.contains("state=online")))
    }

    fn wait_replica_synced(&self, timeout: Duration) -> Result<(), String> {
        self.wait_for(timeout, "the replica in sync", |c| c.replica_synced())
    }

    /// Runs every fault once in a random order while the sale goes on, then more rounds (each
    /// in a new random order) for as long as users are still at it, so that a long sale meets
    /// faults after compaction too.
    pub fn run(&mut self, shared: &Shared, sale: &Sale, bar: &ProgressBar) {
        self.heartbeat = Duration::from_millis(sale.settings.heartbeat_ms);
        let sale_running = || shared.finished.load(Ordering::Relaxed) < shared.users as u64;
        std::thread::sleep(FIRST_FAULT_AFTER.saturating_sub(shared.started.elapsed()));
        let mut n = 0;
        for round in 0.. {
            if round > 0 && !sale_running() {
                break;
            }
            let mut order = Fault::ALL.to_vec();
            for i in (1..order.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                order.swap(i, j);
            }
            shared
                .faults_planned
                .fetch_add(order.len() as u64, Ordering::Relaxed);
            for fault in order {
                if n > 0 {
                    std::thread::sleep(self.every);
                }
                if round > 0 && !sale_running() {
                    break;
                }
                self.perform_and_check(n, fault, shared, sale, bar);
                n += 1;
            }
        }
        shared
            .faults_planned
            .store(self.reports.len() as u64, Ordering::Relaxed);
    }

    /// Fault number `n` (from 0), then the files it left and the comparison of the servers.
    fn perform_and_check(
        &mut self,
        n: usize,
        fault: Fault,
        shared: &Shared,
        sale: &Sale,
        bar: &ProgressBar,
    ) {
        if let Err(e) = self.wait_replica_synced(Duration::from_secs(120)) {
            eprintln!("chaos: before {}: {e}", fault.name());
        }
        let start_us = shared.now_us();
        let index = {
            let mut d = shared.disruptions.lock().unwrap_or_else(|e| e.into_inner());
            d.push((start_us, u64::MAX));
            d.len() - 1
        };
        let started = Instant::now();
        let result = self.perform(fault, shared, sale);
        let secs = started.elapsed().as_secs_f64();
        let (ok, mut outcome) = match result {
            Ok(outcome) => (true, outcome),
            Err(e) => (false, format!("FAILED: {e}")),
        };
        // Once the replica has caught up: the files written meanwhile, then the copies.
        let synced = self.wait_replica_synced(Duration::from_secs(120));
        let fresh = self.collect_snapshots(n + 1, fault.name());
        if fresh > 0 {
            outcome.push_str(&format!("; {fresh} RDB file(s) copied aside"));
        }
        let digests_equal =
            match synced.and_then(|()| compare::digests(self, sale, Some(shared), false)) {
                Ok(cmp) => {
                    outcome.push_str(&format!("; {}", cmp.summary()));
                    Some(cmp.equal())
                }
                Err(e) => {
                    outcome.push_str(&format!("; primary and replica not compared: {e}"));
                    None
                }
            };
        // The disruption lasts until the comparison's own write pause is over: admissions
        // are not measured across it.
        shared.disruptions.lock().unwrap_or_else(|e| e.into_inner())[index].1 = shared.now_us();
        let line = format!(
            "chaos {}/{} at {:.0} s: {} ({:.1} s): {outcome}",
            n + 1,
            shared.faults_planned.load(Ordering::Relaxed),
            start_us as f64 / 1e6,
            fault.name(),
            secs
        );
        // A hidden bar (not a terminal: CI) prints nothing: the log still gets the line.
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
        self.reports.push(FaultReport {
            fault,
            at_s: start_us as f64 / 1e6,
            secs,
            ok,
            outcome,
            digests_equal,
        });
        shared.faults_done.fetch_add(1, Ordering::Relaxed);
    }

    /// The RDB files the servers hold: dump.rdb and the AOF's base files.
    fn rdb_files(&self, i: usize) -> Vec<PathBuf> {
        let dir = &self.servers[i].dir;
        let mut files = vec![dir.join("dump.rdb")];
        if let Ok(entries) = std::fs::read_dir(dir.join("appendonlydir")) {
            files.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with(".base.rdb")),
            );
        }
        files
    }

    fn stamp(file: &PathBuf) -> Option<(SystemTime, u64)> {
        let meta = std::fs::metadata(file).ok()?;
        Some((
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        ))
    }

    /// Marks the files there now as seen (not snapshots of the sale).
    fn note_existing_files(&mut self) {
        for i in 0..2 {
            for file in self.rdb_files(i) {
                if let Some(stamp) = Self::stamp(&file) {
                    self.seen.insert(file, stamp);
                }
            }
        }
    }

    /// Copies every RDB file the servers wrote since the last look (dump.rdb, the AOF's base
    /// file) into the chaos directory; returns how many.
    fn collect_snapshots(&mut self, n: usize, fault: &str) -> usize {
        let mut fresh = 0;
        for i in 0..2 {
            for file in self.rdb_files(i) {
                let Some(stamp) = Self::stamp(&file) else {
                    continue;
                };
                if self.seen.get(&file) == Some(&stamp) {
                    continue;
                }
                self.seen.insert(file.clone(), stamp);
                let name = file
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let role = if i == self.primary {
                    "primary"
                } else {
                    "replica"
                };
                let copy = self.dir.join(format!("{n:02}-{fault}-{role}-{name}"));
                if std::fs::copy(&file, &copy).is_ok() {
                    self.snapshots.push(Snapshot {
                        path: copy,
                        origin: format!("after {fault}: {role}'s {name}"),
                    });
                    fresh += 1;
                }
            }
        }
        fresh
    }

    /// The checks of the run: every fault performed, every snapshot loads, primary == replica.
    pub fn checks(&mut self, sale: &Sale) -> Vec<Check> {
        let mut checks = Vec::new();
        let failed: Vec<&FaultReport> = self.reports.iter().filter(|r| !r.ok).collect();
        let times = |fault: Fault| self.reports.iter().filter(|r| r.fault == fault).count();
        checks.push(Check {
            name: "every fault performed and survived",
            ok: failed.is_empty() && Fault::ALL.iter().all(|&f| times(f) > 0),
            detail: format!(
                "{} of {} faults ({}){}",
                self.reports.len() - failed.len(),
                self.reports.len(),
                Fault::ALL
                    .iter()
                    .map(|&f| format!("{} x{}", f.name(), times(f)))
                    .collect::<Vec<_>>()
                    .join(", "),
                failed
                    .first()
                    .map(|r| format!("; {}: {}", r.fault.name(), r.outcome))
                    .unwrap_or_default()
            ),
        });
        let (loaded, problems) = snapshots::load_all(self, sale);
        checks.push(Check {
            name: "every snapshot taken during the run loads",
            ok: problems.is_empty() && !self.snapshots.is_empty(),
            detail: format!(
                "{loaded} of {} RDB files loaded in a fresh server with the module{}",
                self.snapshots.len(),
                problems
                    .first()
                    .map(|p| format!("; {} failed, e.g. {p}", problems.len()))
                    .unwrap_or_default()
            ),
        });
        let after_faults: Vec<String> = self
            .reports
            .iter()
            .filter(|r| r.digests_equal == Some(false))
            .map(|r| r.fault.name().to_string())
            .collect();
        let not_compared: Vec<&str> = self
            .reports
            .iter()
            .filter(|r| r.digests_equal.is_none())
            .map(|r| r.fault.name())
            .collect();
        let end = self
            .wait_replica_synced(Duration::from_secs(120))
            .and_then(|()| compare::digests(self, sale, None, true));
        let (ok, detail) = match &end {
            Ok(cmp) => (
                cmp.equal() && after_faults.is_empty(),
                format!(
                    "at the end: {}; after each fault: {}",
                    cmp.detail(),
                    match (after_faults.is_empty(), not_compared.is_empty()) {
                        (true, true) => "equal".to_string(),
                        (true, false) => format!(
                            "equal where compared (not compared after {})",
                            not_compared.join(", ")
                        ),
                        _ => format!("DIFFERED after {}", after_faults.join(", ")),
                    }
                ),
            ),
            Err(e) => (false, format!("not compared at the end: {e}")),
        };
        checks.push(Check {
            name: "primary == replica (DEBUG DIGEST, event, journal entries)",
            ok,
            detail,
        });
        checks
    }

    /// The primary's latency monitor (events of 100 ms or more since its last start): where
    /// the server itself stalled (fsync, fork, commands), for reading the admission figures.
    pub fn print_latency(&self) {
        println!("\nthe primary's latency monitor (LATENCY LATEST, since its last start; threshold 100 ms)");
        let reply = self.con(self.primary).and_then(|mut c| {
            seatq_testkit::run(&mut c, &["LATENCY", "LATEST"]).map_err(|e| e.to_string())
        });
        match reply {
            Ok(redis::Value::Array(events)) if !events.is_empty() => {
                for event in events {
                    if let redis::Value::Array(f) = event {
                        let int = |i: usize| match f.get(i) {
                            Some(redis::Value::Int(n)) => *n,
                            _ => 0,
                        };
                        let name = f.first().map(seatq_testkit::text).unwrap_or_default();
                        println!("  {name:<24} latest {:>6} ms  max {:>6} ms", int(2), int(3));
                    }
                }
            }
            Ok(_) => println!("  no event of 100 ms or more"),
            Err(e) => println!("  not read: {e}"),
        }
    }

    /// Keeps the servers' logs next to the snapshots (the servers' own directories go when
    /// they stop).
    pub fn keep_logs(&self) {
        for (i, server) in self.servers.iter().enumerate() {
            let _ = std::fs::write(self.dir.join(format!("server-{i}.log")), server.log());
        }
    }
}
