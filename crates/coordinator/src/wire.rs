//! seatq's replies as the planner's values: `SHARD.FRONT` as a `Front`, `SHARD.GRANT`'s
//! arguments from a `Grant` and its reply as a `GrantReply` (RESP2 flat maps or RESP3 maps).

use std::collections::HashMap;

use redis::{Cmd, FromRedisValue, Value};
use seatq_sharding::{Front, Grant, GrantReply};

/// A map reply's fields.
pub fn fields(value: &Value) -> HashMap<String, Value> {
    let pairs: Vec<(Value, Value)> = match value {
        Value::Map(pairs) => pairs.clone(),
        Value::Array(items) => items
            .chunks_exact(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect(),
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .filter_map(|(k, v)| String::from_redis_value(&k).ok().map(|k| (k, v)))
        .collect()
}

fn int(map: &HashMap<String, Value>, name: &str) -> u64 {
    map.get(name)
        .and_then(|v| i64::from_redis_value(v).ok())
        .map_or(0, |n| n.max(0) as u64)
}

fn ints(map: &HashMap<String, Value>, name: &str) -> Vec<u64> {
    match map.get(name) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| i64::from_redis_value(v).map_or(0, |n| n.max(0) as u64))
            .collect(),
        _ => Vec::new(),
    }
}

pub fn front_cmd(key: &[u8], count: usize, samples: usize) -> Cmd {
    let mut cmd = redis::cmd("SHARD.FRONT");
    cmd.arg(key).arg("COUNT").arg(count);
    if samples > 0 {
        cmd.arg("SAMPLES").arg(samples);
    }
    cmd
}

pub fn front(value: &Value) -> Front {
    let m = fields(value);
    let samples = ints(&m, "samples");
    Front {
        now_ms: int(&m, "now_ms"),
        now_us: int(&m, "now_us"),
        epoch: int(&m, "epoch"),
        lease_until: int(&m, "lease_until_ms"),
        ceiling: int(&m, "ceiling"),
        fallback_capacity: m
            .get("fallback_capacity")
            .and_then(|v| i64::from_redis_value(v).ok())
            .and_then(|c| u64::try_from(c).ok()),
        admitted: int(&m, "admitted_total"),
        sessions: int(&m, "sessions"),
        waiting: int(&m, "waiting"),
        prequeue: int(&m, "prequeue"),
        calling: int(&m, "calling") == 1,
        rate: int(&m, "rate"),
        burst: int(&m, "burst"),
        capacity: int(&m, "capacity"),
        shards: int(&m, "shards"),
        shard_index: int(&m, "shard_index"),
        joins: ints(&m, "joins"),
        more: int(&m, "more") == 1,
        samples: samples.chunks_exact(2).map(|p| (p[0], p[1])).collect(),
    }
}

pub fn grant_cmd(key: &[u8], grant: &Grant) -> Cmd {
    let mut cmd = redis::cmd("SHARD.GRANT");
    cmd.arg(key)
        .arg(grant.epoch)
        .arg(grant.lease_ms)
        .arg(grant.ceiling);
    if let Some(c) = grant.capacity {
        cmd.arg("CAPACITY").arg(c);
    }
    if grant.spread_ms > 0 {
        cmd.arg("SPREAD").arg(grant.spread_ms);
    }
    if let Some(r) = &grant.ranks {
        cmd.arg("RANKS")
            .arg(r.at_ms)
            .arg(r.rate_milli)
            .arg(r.waiting);
        for &(t, c) in &r.points {
            cmd.arg(t).arg(c);
        }
    }
    cmd
}

pub fn grant_reply(value: &Value) -> GrantReply {
    let m = fields(value);
    GrantReply {
        now_ms: int(&m, "now_ms"),
        lease_until: int(&m, "lease_until_ms"),
        admitted: int(&m, "admitted_total"),
        sessions: int(&m, "sessions"),
    }
}
