//! `run <event>`: take the coordinator lease when it is free, then tick: read every shard's
//! front, let the planner merge and grant, send the grants (those lowering a shard's bound
//! first), publish the rank table and the state in the meta record, and end the line sessions
//! of buyers whose purchase the inventory journaled (CONFIRM-ENDS-SESSION across keys).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::Value;
use seatq_sharding::hash::shard_of;
use seatq_sharding::naming::{lease_key, meta_key};
use seatq_sharding::planner::{Outcome, Read};
use seatq_sharding::{Order, Planner, PlannerConfig};

use crate::create::{read_meta, Meta};
use crate::router::Router;
use crate::{log, wire, Options};

/// Takes the lease (and a new epoch) if it is free, or renews it if it is ours: the epoch, or 0.
const ACQUIRE: &str = r#"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('HINCRBY', KEYS[2], 'epoch', 1)
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(redis.call('HGET', KEYS[2], 'epoch') or '0')
end
return 0
"#;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn default_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!(
        "{}:{}:{}",
        host.trim(),
        std::process::id(),
        now_ns() % 1_000_000
    )
}

struct Coordinator<'a> {
    router: Router,
    o: &'a Options,
    meta: Meta,
    id: String,
    lease: Vec<u8>,
    meta_key: Vec<u8>,
    /// The inventory journal's last entry handled (sold -> SHARD.COMPLETE).
    cursor: Option<String>,
    unreachable: Vec<bool>,
}

impl Coordinator<'_> {
    /// The epoch if this coordinator holds the lease (taking it when free), else 0.
    fn lease(&mut self) -> u64 {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(ACQUIRE)
            .arg(2)
            .arg(&self.lease)
            .arg(&self.meta_key)
            .arg(&self.id)
            .arg(self.o.ttl_ms);
        self.router.query::<u64>(&self.lease, &cmd).unwrap_or(0)
    }

    fn read(&mut self, planner: &Planner, samples: usize) -> Vec<Read> {
        let mut reads = Vec::with_capacity(self.meta.shards.len());
        for (i, key) in self.meta.shards.clone().iter().enumerate() {
            let cmd = wire::front_cmd(key, planner.front_count(i), samples);
            let sent_ns = now_ns();
            let reply = self.router.query::<Value>(key, &cmd);
            let received_ns = now_ns();
            let front = match reply {
                Ok(v) => {
                    let f = wire::front(&v);
                    if f.shards != self.meta.shards.len() as u64 || f.shard_index != i as u64 {
                        self.note(
                            i,
                            Some(format!(
                                "{} says it is shard {} of {}, the meta record says {i} of {}",
                                String::from_utf8_lossy(key),
                                f.shard_index,
                                f.shards,
                                self.meta.shards.len()
                            )),
                        );
                        None
                    } else {
                        self.note(i, None);
                        Some(f)
                    }
                }
                Err(e) => {
                    self.note(i, Some(e.to_string()));
                    None
                }
            };
            reads.push(Read {
                sent_ns,
                received_ns,
                front,
            });
        }
        reads
    }

    /// Logs a shard becoming unreachable or reachable again.
    fn note(&mut self, shard: usize, problem: Option<String>) {
        let was = self.unreachable[shard];
        match problem {
            Some(p) if !was => {
                log(&format!("shard {shard} unreachable, detached: {p}"));
                self.unreachable[shard] = true;
            }
            None if was => {
                log(&format!("shard {shard} answers again"));
                self.unreachable[shard] = false;
            }
            _ => {}
        }
    }

    fn send(&mut self, planner: &mut Planner, orders: Vec<Order>) -> Result<u64, ()> {
        let mut given = 0;
        for order in orders {
            let key = self.meta.shards[order.shard].clone();
            let outcome = match self
                .router
                .query::<Value>(&key, &wire::grant_cmd(&key, &order.grant))
            {
                Ok(v) => {
                    given += order.picks;
                    Outcome::Applied(wire::grant_reply(&v))
                }
                Err(e) if e.code() == Some("FENCED") => Outcome::Fenced,
                Err(e) => {
                    self.note(order.shard, Some(format!("grant: {e}")));
                    Outcome::Failed
                }
            };
            if planner.report(order.shard, now_ns(), outcome).is_err() {
                return Err(());
            }
        }
        Ok(given)
    }

    /// Writes what the coordinator knows into the meta record (dashboards, clients).
    fn publish(&mut self, planner: &Planner, epoch: u64, waiting: u64) {
        let offsets: Vec<String> = (0..self.meta.shards.len())
            .map(|i| format!("{:.3}", planner.offset_ms(i).unwrap_or(0.0)))
            .collect();
        let detached: Vec<String> = (0..self.meta.shards.len())
            .filter(|&i| !planner.attached(i))
            .map(|i| i.to_string())
            .collect();
        let mut cmd = redis::cmd("HSET");
        cmd.arg(&self.meta_key)
            .arg("coordinator")
            .arg(&self.id)
            .arg("coordinator_epoch")
            .arg(epoch)
            .arg("tick_at_ms")
            .arg(now_ns() / 1_000_000)
            .arg("rate_milli")
            .arg(planner.rate_milli)
            .arg("waiting")
            .arg(waiting)
            .arg("offsets_ms")
            .arg(offsets.join(" "))
            .arg("detached")
            .arg(detached.join(" "));
        let key = self.meta_key.clone();
        let _ = self.router.query::<()>(&key, &cmd);
    }

    /// Ends the line sessions of buyers the inventory journaled as `sold` (at most 500 a tick).
    fn follow_sales(&mut self) {
        let inventory = self.meta.inventory.clone();
        let mut get = redis::cmd("QUEUE.CONFIG");
        get.arg(&inventory).arg("GET").arg("CONFIRM-ENDS-SESSION");
        let on = self
            .router
            .query::<Value>(&inventory, &get)
            .map(|v| wire::fields(&v))
            .ok()
            .and_then(|m| m.get("confirm-ends-session").cloned())
            .and_then(|v| redis::from_redis_value::<i64>(&v).ok())
            == Some(1);
        if !on {
            return;
        }
        let journal = [&self.meta.inventory[..], b":journal"].concat();
        let cursor = match &self.cursor {
            Some(c) => c.clone(),
            None => {
                let mut get = redis::cmd("HGET");
                get.arg(&self.meta_key).arg("completed_through");
                let stored: Option<String> = self
                    .router
                    .query(&self.meta_key.clone(), &get)
                    .unwrap_or(None);
                let start = stored.unwrap_or_else(|| "0-0".to_string());
                self.cursor = Some(start.clone());
                start
            }
        };
        let mut xread = redis::cmd("XREAD");
        xread
            .arg("COUNT")
            .arg(500)
            .arg("STREAMS")
            .arg(&journal)
            .arg(&cursor);
        let Ok(Value::Array(streams)) = self.router.query::<Value>(&journal, &xread) else {
            return;
        };
        let k = self.meta.shards.len() as u32;
        let mut last = None;
        for stream in &streams {
            let Value::Array(parts) = stream else {
                continue;
            };
            let Some(Value::Array(entries)) = parts.get(1) else {
                continue;
            };
            for entry in entries {
                let Value::Array(e) = entry else { continue };
                let Some(id) = e
                    .first()
                    .and_then(|v| redis::from_redis_value::<String>(v).ok())
                else {
                    continue;
                };
                let fields = e.get(1).map(wire::fields).unwrap_or_default();
                let text = |n: &str| {
                    fields
                        .get(n)
                        .and_then(|v| redis::from_redis_value::<Vec<u8>>(v).ok())
                };
                if text("type").as_deref() == Some(b"sold") {
                    if let Some(user) = text("user") {
                        let shard = self.meta.shards[shard_of(&user, k) as usize].clone();
                        let mut complete = redis::cmd("SHARD.COMPLETE");
                        complete.arg(&shard).arg("USER").arg(&user);
                        match self.router.query::<i64>(&shard, &complete) {
                            // NO_SUCH_TICKET: the session has ended already (an earlier
                            // attempt whose reply was lost, a coordinator that stopped
                            // before recording its progress, the user left): nothing to do.
                            Err(e) if e.code() == Some("NO_SUCH_TICKET") => {}
                            // The shard could not be asked: retried next tick from here.
                            Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                }
                last = Some(id);
            }
        }
        if let Some(id) = last {
            let mut set = redis::cmd("HSET");
            set.arg(&self.meta_key).arg("completed_through").arg(&id);
            let key = self.meta_key.clone();
            let _ = self.router.query::<()>(&key, &set);
            self.cursor = Some(id);
        }
    }
}

pub fn run(mut router: Router, o: &Options) -> Result<(), String> {
    let meta = read_meta(&mut router, &o.event)?;
    let k = meta.shards.len();
    let mut c = Coordinator {
        router,
        o,
        id: o.id.clone().unwrap_or_else(default_id),
        lease: lease_key(o.event.as_bytes()),
        meta_key: meta_key(o.event.as_bytes()),
        meta,
        cursor: None,
        unreachable: vec![false; k],
    };
    if o.lease_ms <= o.tick_ms * 2 {
        log("warning: --lease-ms should be several ticks (a late tick would cost the shards their lease)");
    }
    log(&format!(
        "{} for {} ({k} shards), tick {} ms, lease {} ms",
        c.id, o.event, o.tick_ms, o.lease_ms
    ));
    let tick = Duration::from_millis(o.tick_ms);
    loop {
        // Standby: wait for the lease.
        let epoch = c.lease();
        if epoch == 0 {
            std::thread::sleep(Duration::from_millis((o.ttl_ms / 3).max(50)));
            continue;
        }
        log(&format!("holding the lease, epoch {epoch}"));
        c.cursor = None;
        let mut config = PlannerConfig::new(k);
        config.tick_ms = o.tick_ms;
        config.lease_ms = o.lease_ms;
        let mut planner = Planner::new(config, epoch);
        let mut next = Instant::now();
        let mut last_log = Instant::now();
        let mut given = 0u64;
        loop {
            if c.lease() != epoch {
                log("lost the lease: standing by");
                break;
            }
            let now = now_ns();
            let samples = if planner.wants_samples(now) { 64 } else { 0 };
            let reads = c.read(&planner, samples);
            let waiting: u64 = reads
                .iter()
                .filter_map(|r| r.front.as_ref())
                .map(|f| f.waiting)
                .sum();
            let Ok(first) = planner.tick(now, reads) else {
                log("fenced: a coordinator with a newer epoch took over; standing by");
                break;
            };
            let Ok(a) = c.send(&mut planner, first) else {
                log("fenced by a shard; standing by");
                break;
            };
            let second = planner.second_phase(now_ns());
            let Ok(b) = c.send(&mut planner, second) else {
                log("fenced by a shard; standing by");
                break;
            };
            given += a + b;
            if samples > 0 {
                c.publish(&planner, epoch, waiting);
                c.follow_sales();
            }
            if !o.quiet && last_log.elapsed() >= Duration::from_secs(5) {
                let attached = (0..k).filter(|&i| planner.attached(i)).count();
                log(&format!(
                    "epoch {epoch}: {attached}/{k} shards attached, {waiting} waiting, {given} calls granted in {:.1} s, measured {:.1}/s",
                    last_log.elapsed().as_secs_f64(),
                    planner.rate_milli as f64 / 1000.0
                ));
                given = 0;
                last_log = Instant::now();
            }
            next += tick;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else {
                next = now;
            }
        }
    }
}
