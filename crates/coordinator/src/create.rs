//! Creating a sharded event, and the operator's commands over all its keys.

use std::collections::HashMap;

use redis::Value;
use seatq_sharding::naming::{find_salt, inventory_key, key_slot, lease_key, meta_key, shard_key};

use crate::router::Router;
use crate::{wire, Options};

/// A sharded event as its meta record names it.
pub struct Meta {
    pub shards: Vec<Vec<u8>>,
    pub inventory: Vec<u8>,
    pub group: u64,
}

pub fn read_meta(router: &mut Router, event: &str) -> Result<Meta, String> {
    let key = meta_key(event.as_bytes());
    let mut cmd = redis::cmd("HGETALL");
    cmd.arg(&key);
    let value: Value = router
        .query(&key, &cmd)
        .map_err(|e| format!("reading {}: {e}", String::from_utf8_lossy(&key)))?;
    let m = wire::fields(&value);
    let text = |name: &str| -> Option<Vec<u8>> {
        m.get(name)
            .and_then(|v| redis::from_redis_value::<Vec<u8>>(v).ok())
    };
    let number = |name: &str| -> u64 {
        text(name)
            .and_then(|t| String::from_utf8(t).ok())
            .and_then(|t| t.parse().ok())
            .unwrap_or(0)
    };
    let k = number("shards");
    if k == 0 {
        return Err(format!(
            "{event} is not a sharded event (no meta record {}); create it with `seatq-coordinator create`",
            String::from_utf8_lossy(&key)
        ));
    }
    let shards = (0..k)
        .map(|i| text(&format!("shard:{i}")).ok_or(format!("the meta record lacks shard:{i}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Meta {
        shards,
        inventory: text("inventory").ok_or("the meta record lacks inventory")?,
        group: number("group"),
    })
}

fn random_group() -> u64 {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    let seeded = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    let mut x = u64::from_le_bytes(bytes);
    if !seeded {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
    }
    (seatq_sharding::hash::mix(x) & ((1 << 53) - 1)).max(1)
}

fn configure(router: &mut Router, key: &[u8], fields: &[(String, String)]) -> Result<(), String> {
    let mut cmd = redis::cmd("QUEUE.CONFIG");
    cmd.arg(key).arg("SET");
    for (f, v) in fields {
        cmd.arg(f).arg(v);
    }
    router
        .query::<()>(key, &cmd)
        .map_err(|e| format!("QUEUE.CONFIG {} SET: {e}", String::from_utf8_lossy(key)))
}

fn exists(router: &mut Router, key: &[u8]) -> Result<bool, String> {
    let mut cmd = redis::cmd("EXISTS");
    cmd.arg(key);
    router
        .query::<i64>(key, &cmd)
        .map(|n| n > 0)
        .map_err(|e| e.to_string())
}

/// `create <event> --shards K [--set FIELD VALUE ...] [--force]`
pub fn create(router: &mut Router, o: &Options) -> Result<(), String> {
    let event = o.event.as_bytes();
    let k = o.shards;
    if !(1..=1024).contains(&k) {
        return Err("--shards K: 1 to 1024".into());
    }
    let meta = meta_key(event);
    if exists(router, &meta)? && !o.force {
        return Err(format!(
            "{} already exists ({} is a sharded event); --force recreates the meta record",
            String::from_utf8_lossy(&meta),
            o.event
        ));
    }
    let inventory = inventory_key(event);
    let primaries = router.primaries().to_vec();
    if primaries.is_empty() {
        return Err("no primary serves any slot".into());
    }
    // Shards go round the primaries, the inventory's primary last (it also serves the seats
    // and the meta record).
    let inventory_node = router.owner(key_slot(&inventory)).map(str::to_string);
    let mut order: Vec<String> = primaries
        .iter()
        .map(|p| p.addr.clone())
        .filter(|a| Some(a) != inventory_node.as_ref())
        .collect();
    order.extend(inventory_node.clone());
    let mut keys = Vec::new();
    for i in 0..k {
        let target = &order[i as usize % order.len()];
        let salt = find_salt(event, i, 10_000_000, |slot| {
            router.owner(slot) == Some(target.as_str())
        })
        .ok_or_else(|| format!("no hash tag lands shard {i} on {target}"))?;
        let key = shard_key(event, i, salt);
        if exists(router, &key)? && !o.force {
            return Err(format!("{} already exists", String::from_utf8_lossy(&key)));
        }
        keys.push((key, target.clone()));
    }
    let group = random_group();
    let common = |index: u32| -> Vec<(String, String)> {
        let mut f = vec![
            ("SHARDS".to_string(), k.to_string()),
            ("SHARD-INDEX".to_string(), index.to_string()),
            ("SHARD-GROUP".to_string(), group.to_string()),
        ];
        f.extend(o.settings.iter().cloned());
        f
    };
    for (i, (key, _)) in keys.iter().enumerate() {
        configure(router, key, &common(i as u32))?;
    }
    configure(router, &inventory, &common(k))?;
    let mut hset = redis::cmd("HSET");
    hset.arg(&meta)
        .arg("version")
        .arg(1)
        .arg("shards")
        .arg(k)
        .arg("inventory")
        .arg(&inventory)
        .arg("group")
        .arg(group);
    for (i, (key, _)) in keys.iter().enumerate() {
        hset.arg(format!("shard:{i}")).arg(key);
    }
    router
        .query::<()>(&meta, &hset)
        .map_err(|e| format!("writing the meta record: {e}"))?;
    // Recreated with fewer shards (--force): the old record's extra shard fields go. The rest
    // stays, the coordinators' epoch above all (shards refuse grants from an older epoch).
    let mut fields = redis::cmd("HKEYS");
    fields.arg(&meta);
    let stale: Vec<String> = router
        .query::<Vec<String>>(&meta, &fields)
        .map_err(|e| format!("reading the meta record: {e}"))?
        .into_iter()
        .filter(|f| {
            f.strip_prefix("shard:")
                .and_then(|i| i.parse::<u32>().ok())
                .is_some_and(|i| i >= k)
        })
        .collect();
    if !stale.is_empty() {
        let mut hdel = redis::cmd("HDEL");
        hdel.arg(&meta).arg(&stale);
        router
            .query::<()>(&meta, &hdel)
            .map_err(|e| format!("writing the meta record: {e}"))?;
    }
    println!("event {} : {k} line shards, group {group}", o.event);
    for (i, (key, node)) in keys.iter().enumerate() {
        println!(
            "  shard {i}  {}  slot {}  on {node}",
            String::from_utf8_lossy(key),
            key_slot(key)
        );
    }
    println!(
        "  inventory  {}  slot {}  on {}",
        String::from_utf8_lossy(&inventory),
        key_slot(&inventory),
        inventory_node.unwrap_or_default()
    );
    println!("  meta       {}", String::from_utf8_lossy(&meta));
    // Passes from the shards are checked by the inventory with the shared keys.
    for p in &primaries {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg("seatq.pass-keys");
        let keys: HashMap<String, String> = router.query_node(&p.addr, &cmd).unwrap_or_default();
        if keys.get("seatq.pass-keys").is_none_or(|v| v.is_empty()) {
            eprintln!(
                "warning: {} has no seatq.pass-keys: the inventory cannot check the shards' passes (configure the same keys on every node, or set REQUIRE-PASS off)",
                p.addr
            );
        }
    }
    Ok(())
}

/// `status <event>`: every shard's counters and the coordinator's lease.
pub fn status(router: &mut Router, o: &Options) -> Result<(), String> {
    let meta = read_meta(router, &o.event)?;
    let lease = lease_key(o.event.as_bytes());
    let mut get = redis::cmd("GET");
    get.arg(&lease);
    let holder: Option<String> = router.query(&lease, &get).unwrap_or(None);
    let mut pttl = redis::cmd("PTTL");
    pttl.arg(&lease);
    let ttl: i64 = router.query(&lease, &pttl).unwrap_or(-2);
    println!(
        "event {} : {} shards, group {}, coordinator {} (lease {} ms left)",
        o.event,
        meta.shards.len(),
        meta.group,
        holder.as_deref().unwrap_or("none"),
        ttl.max(0)
    );
    println!("  shard  key                          node                   waiting  admitted  sessions  lease_left_ms  epoch");
    for (i, key) in meta.shards.iter().enumerate() {
        let node = router.owner(key_slot(key)).unwrap_or("?").to_string();
        match router.query::<Value>(key, &wire::front_cmd(key, 0, 0)) {
            Ok(v) => {
                let f = wire::front(&v);
                println!(
                    "  {i:>5}  {:<27}  {node:<21}  {:>7}  {:>8}  {:>8}  {:>13}  {:>5}",
                    String::from_utf8_lossy(key),
                    f.waiting,
                    f.admitted,
                    f.sessions,
                    f.lease_until.saturating_sub(f.now_ms),
                    f.epoch
                );
            }
            Err(e) => println!(
                "  {i:>5}  {}  {node}  unreachable: {e}",
                String::from_utf8_lossy(key)
            ),
        }
    }
    Ok(())
}

/// `config <event> FIELD VALUE ...`: the same settings on every shard and the inventory.
pub fn config(router: &mut Router, o: &Options) -> Result<(), String> {
    if o.rest.is_empty() || o.rest.len() % 2 != 0 {
        return Err("config takes FIELD VALUE pairs".into());
    }
    let fields: Vec<(String, String)> = o
        .rest
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    let meta = read_meta(router, &o.event)?;
    for key in meta.shards.iter().chain([&meta.inventory]) {
        configure(router, key, &fields)?;
    }
    println!("OK");
    Ok(())
}

/// `each <event> COMMAND`: a key-only command (QUEUE.PAUSE, ...) on every line shard.
pub fn each(router: &mut Router, o: &Options) -> Result<(), String> {
    let [command] = &o.rest[..] else {
        return Err(
            "each takes one command (QUEUE.PAUSE, QUEUE.RESUME, QUEUE.CLOSE, QUEUE.REOPEN)".into(),
        );
    };
    let allowed = ["QUEUE.PAUSE", "QUEUE.RESUME", "QUEUE.CLOSE", "QUEUE.REOPEN"];
    if !allowed.iter().any(|a| a.eq_ignore_ascii_case(command)) {
        return Err(format!("each runs one of {}", allowed.join(", ")));
    }
    let meta = read_meta(router, &o.event)?;
    for key in &meta.shards {
        let mut cmd = redis::cmd(command);
        cmd.arg(key);
        let changed: i64 = router
            .query(key, &cmd)
            .map_err(|e| format!("{command} {}: {e}", String::from_utf8_lossy(key)))?;
        println!("{} {changed}", String::from_utf8_lossy(key));
    }
    Ok(())
}
