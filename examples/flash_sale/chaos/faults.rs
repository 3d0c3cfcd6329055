//! The faults, each returning what it did (or why it could not).

use std::time::{Duration, Instant};

use redis::Value;
use seatq_testkit::info::info_value;

use super::{Chaos, START_TIMEOUT};
use crate::reply::field_int;
use crate::run::Shared;
use crate::sale::Sale;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    BgsaveRestart,
    RewriteAof,
    ClientPause,
    Failover,
    FullResync,
    DebugReload,
    Kill9Restart,
    LongDowntime,
}

/// How long CLIENT PAUSE WRITE lasts.
const PAUSE_MS: u64 = 3_000;
/// How long the sale runs on the replica between FAILOVER and FAILOVER back.
const ON_REPLICA: Duration = Duration::from_secs(4);

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::BgsaveRestart,
        Fault::RewriteAof,
        Fault::ClientPause,
        Fault::Failover,
        Fault::FullResync,
        Fault::DebugReload,
        Fault::Kill9Restart,
        Fault::LongDowntime,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::BgsaveRestart => "bgsave+restart",
            Fault::RewriteAof => "bgrewriteaof",
            Fault::ClientPause => "client-pause-write",
            Fault::Failover => "failover-and-back",
            Fault::FullResync => "replica-full-resync",
            Fault::DebugReload => "debug-reload",
            Fault::Kill9Restart => "kill-9+restart",
            Fault::LongDowntime => "restart-after-heartbeat",
        }
    }
}

fn ms(since: Instant) -> u128 {
    since.elapsed().as_millis()
}

impl Chaos {
    pub(super) fn perform(
        &mut self,
        fault: Fault,
        shared: &Shared,
        sale: &Sale,
    ) -> Result<String, String> {
        match fault {
            Fault::BgsaveRestart => self.bgsave_restart(shared),
            Fault::RewriteAof => self.rewrite_aof(),
            Fault::ClientPause => self.client_pause(shared, sale),
            Fault::Failover => self.failover_and_back(shared),
            Fault::FullResync => self.full_resync(),
            Fault::DebugReload => self.debug_reload(shared),
            Fault::Kill9Restart => self.kill_restart(shared, sale, Duration::ZERO),
            Fault::LongDowntime => {
                let down = self.heartbeat + Duration::from_secs(2);
                self.kill_restart(shared, sale, down)
            }
        }
    }

    fn cmd_on(&self, i: usize, args: &[&str]) -> Result<Value, String> {
        let mut con = self.con(i)?;
        seatq_testkit::run(&mut con, args)
            .map_err(|e| format!("{} on {}: {e}", args.join(" "), self.name(i)))
    }

    /// Waits for a background save to finish and to have succeeded.
    fn wait_bgsave(&self, i: usize) -> Result<(), String> {
        self.wait_for(Duration::from_secs(120), "BGSAVE to finish", |c| {
            Ok(c.info_field(i, "persistence", "rdb_bgsave_in_progress")? == "0")
        })?;
        match self
            .info_field(i, "persistence", "rdb_last_bgsave_status")?
            .as_str()
        {
            "ok" => Ok(()),
            other => Err(format!("rdb_last_bgsave_status:{other}")),
        }
    }

    /// The primary (or `i`) answers and has loaded its data.
    fn wait_up(&self, i: usize) -> Result<(), String> {
        self.wait_for(START_TIMEOUT, "the server to load its data", |c| {
            Ok(c.info_field(i, "persistence", "loading")? == "0")
        })
    }

    /// QUEUE.INFO of the event on server `i`.
    fn queue_info(&self, i: usize, sale: &Sale) -> Result<Value, String> {
        self.cmd_on(i, &["QUEUE.INFO", &sale.key])
    }

    /// A restart of the primary with its log's account of what it loaded.
    fn restart_primary(&mut self) -> Result<String, String> {
        let p = self.primary;
        let started = Instant::now();
        self.servers[p].try_restart(START_TIMEOUT)?;
        self.wait_up(p)?;
        let took = ms(started);
        // The last "loaded" line of the log: which file and how long.
        let log = self.servers[p].log();
        let loaded = log
            .lines()
            .rev()
            .find(|l| l.contains("DB loaded from") || l.contains("Done loading"))
            .map(|l| l.split_once(" * ").map_or(l, |(_, m)| m).trim().to_string())
            .unwrap_or_else(|| "no load line in the log".to_string());
        Ok(format!("up again in {took} ms ({loaded})"))
    }

    fn bgsave_restart(&mut self, shared: &Shared) -> Result<String, String> {
        let p = self.primary;
        let started = Instant::now();
        self.cmd_on(p, &["BGSAVE", "SCHEDULE"])?;
        self.wait_bgsave(p)?;
        let saved = ms(started);
        let size = std::fs::metadata(self.servers[p].dir.join("dump.rdb")).map_or(0, |m| m.len());
        self.collect_snapshots(self.reports.len() + 1, Fault::BgsaveRestart.name());
        let restarted = shared.outage(|| self.restart_primary())?;
        Ok(format!(
            "BGSAVE wrote {:.1} MB in {saved} ms; SHUTDOWN NOSAVE and start: {restarted}",
            size as f64 / 1e6
        ))
    }

    fn rewrite_aof(&mut self) -> Result<String, String> {
        let p = self.primary;
        let idle = |c: &Self| {
            c.wait_for(Duration::from_secs(120), "AOF rewrites to finish", |c| {
                let info = c.info(p, "persistence")?;
                Ok(info_value(&info, "aof_rewrite_in_progress") == Some("0")
                    && info_value(&info, "aof_rewrite_scheduled") == Some("0"))
            })
        };
        // The server rewrites on its own too (auto-aof-rewrite-percentage) and then refuses
        // the operator's BGREWRITEAOF as already in progress: wait for it, as an operator
        // would, and ask again.
        idle(self)?;
        let started = Instant::now();
        if let Err(e) = self.cmd_on(p, &["BGREWRITEAOF"]) {
            if !e.contains("already in progress") {
                return Err(e);
            }
            idle(self)?;
            self.cmd_on(p, &["BGREWRITEAOF"])?;
        }
        idle(self)?;
        match self
            .info_field(p, "persistence", "aof_last_bgrewrite_status")?
            .as_str()
        {
            "ok" => Ok(format!("AOF rewritten in {} ms", ms(started))),
            other => Err(format!("aof_last_bgrewrite_status:{other}")),
        }
    }

    /// CLIENT PAUSE WRITE on the primary: reads go on, and nothing is written meanwhile (no
    /// call, no journal entry: the timer waits for the end of the pause), then the calls
    /// resume. The event is read twice inside the pause (after a moment for the pause to
    /// take hold, and near its end): a change between the two is a failure.
    fn client_pause(&mut self, shared: &Shared, sale: &Sale) -> Result<String, String> {
        let p = self.primary;
        let state = |c: &Chaos| -> Result<(u64, String), String> {
            let admitted = field_int(&c.queue_info(p, sale)?, "admitted_total").unwrap_or(0);
            let last = c
                .cmd_on(p, &["XINFO", "STREAM", &sale.journal])
                .map(|v| field_text_of(&v, "last-generated-id"))?;
            Ok((admitted, last))
        };
        let before = state(self)?;
        let (early, late) = shared.outage(|| -> Result<_, String> {
            self.cmd_on(p, &["CLIENT", "PAUSE", &PAUSE_MS.to_string(), "WRITE"])?;
            let paused_at = Instant::now();
            std::thread::sleep(Duration::from_millis(200));
            let early = state(self)?;
            std::thread::sleep(
                Duration::from_millis(PAUSE_MS - 500).saturating_sub(paused_at.elapsed()),
            );
            let late = state(self)?;
            if paused_at.elapsed() >= Duration::from_millis(PAUSE_MS) {
                return Err(format!(
                    "the reads inside the pause took until {} ms (the pause lasts {PAUSE_MS} ms): \
                     nothing judged",
                    paused_at.elapsed().as_millis()
                ));
            }
            std::thread::sleep(Duration::from_millis(PAUSE_MS).saturating_sub(paused_at.elapsed()));
            self.cmd_on(p, &["PING"])?;
            Ok((early, late))
        })?;
        if early != late {
            return Err(format!(
                "the event changed while writes were paused: admitted_total {} -> {}, journal \
                 last ID {} -> {}",
                early.0, late.0, early.1, late.1
            ));
        }
        std::thread::sleep(Duration::from_secs(2));
        let after = state(self)?;
        Ok(format!(
            "writes paused {PAUSE_MS} ms: reads answered; admitted_total {} before, {} through \
             the pause (unchanged from 0.2 s to {:.1} s in, journal too), +{} in the 2 s after",
            before.0,
            early.0,
            (PAUSE_MS - 500) as f64 / 1000.0,
            after.0.saturating_sub(late.0)
        ))
    }

    /// FAILOVER from `from` to the other server; returns the milliseconds it took.
    fn failover(&mut self, shared: &Shared) -> Result<u128, String> {
        let from = self.primary;
        let to = self.replica();
        let started = Instant::now();
        shared.outage(|| {
            self.cmd_on(from, &["FAILOVER", "TIMEOUT", "20000"])?;
            self.wait_for(Duration::from_secs(30), "FAILOVER to complete", |c| {
                let a = c.info(from, "replication")?;
                let b = c.info(to, "replication")?;
                Ok(info_value(&a, "role") == Some("slave")
                    && info_value(&b, "role") == Some("master")
                    && info_value(&a, "master_failover_state") == Some("no-failover")
                    && info_value(&b, "master_failover_state") == Some("no-failover"))
            })
        })?;
        self.primary = to;
        shared.router.set_primary(&self.url(to));
        Ok(ms(started))
    }

    fn failover_and_back(&mut self, shared: &Shared) -> Result<String, String> {
        let there = self.failover(shared)?;
        let new_primary = self.primary;
        std::thread::sleep(ON_REPLICA);
        self.wait_replica_synced(Duration::from_secs(60))?;
        let back = self.failover(shared)?;
        Ok(format!(
            "FAILOVER to :{} in {there} ms, the sale ran there {} s, FAILOVER back in {back} ms",
            self.servers[new_primary].port,
            ON_REPLICA.as_secs()
        ))
    }

    fn full_resync(&mut self) -> Result<String, String> {
        let (p, r) = (self.primary, self.replica());
        let sync_full = |c: &Chaos| -> Result<u64, String> {
            Ok(c.info_field(p, "stats", "sync_full")?.parse().unwrap_or(0))
        };
        let before = sync_full(self)?;
        let started = Instant::now();
        self.cmd_on(r, &["REPLICAOF", "NO", "ONE"])?;
        let port = self.servers[p].port.to_string();
        self.cmd_on(r, &["REPLICAOF", "127.0.0.1", &port])?;
        self.wait_replica_synced(Duration::from_secs(120))?;
        let after = sync_full(self)?;
        if after > before {
            Ok(format!(
                "REPLICAOF NO ONE + REPLICAOF: full sync (primary's sync_full {before} -> {after}) \
                 done in {} ms",
                ms(started)
            ))
        } else {
            Err(format!(
                "the replica resynced partially (sync_full stayed {before}): no full sync forced"
            ))
        }
    }

    fn debug_reload(&mut self, shared: &Shared) -> Result<String, String> {
        let p = self.primary;
        let started = Instant::now();
        shared.outage(|| self.cmd_on(p, &["DEBUG", "RELOAD"]))?;
        Ok(format!(
            "DEBUG RELOAD (save + load of the RDB) in {} ms",
            ms(started)
        ))
    }

    /// kill -9 of the primary, `down` of downtime, start again.
    fn kill_restart(
        &mut self,
        shared: &Shared,
        sale: &Sale,
        down: Duration,
    ) -> Result<String, String> {
        let p = self.primary;
        let info = self.queue_info(p, sale)?;
        let (waiting, expired) = (
            field_int(&info, "waiting").unwrap_or(0),
            field_int(&info, "expired_total").unwrap_or(0),
        );
        let restarted = shared.outage(|| {
            self.servers[p].kill();
            std::thread::sleep(down);
            self.restart_primary()
        })?;
        if down.is_zero() {
            return Ok(format!("kill -9, {restarted}"));
        }
        // Give the timer a moment to expire what lapsed during the downtime.
        std::thread::sleep(Duration::from_secs(2));
        let info = self.queue_info(p, sale)?;
        Ok(format!(
            "kill -9, {:.0} s down (HEARTBEAT {} s), {restarted}; {waiting} were waiting, \
             {} tickets expired since, {} waiting 2 s after",
            down.as_secs_f64(),
            self.heartbeat.as_secs(),
            field_int(&info, "expired_total")
                .unwrap_or(0)
                .saturating_sub(expired),
            field_int(&info, "waiting").unwrap_or(0)
        ))
    }
}

/// A field of an XINFO STREAM reply as text.
fn field_text_of(v: &Value, name: &str) -> String {
    crate::reply::field_text(v, name)
}
