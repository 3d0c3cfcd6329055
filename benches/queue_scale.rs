//! How the waiting line scales: QUEUE.STATUS server time (INFO commandstats usec_per_call) with
//! 1,000 / 100,000 / 1,000,000 waiting users, and server memory per waiting user (36-character
//! user IDs, journal off so only the line is measured).
//!
//! `cargo bench --bench queue_scale [-- --max 1000000 --server redis|valkey]`

#[path = "../tests/common/server.rs"]
#[allow(dead_code)]
mod server;

use redis::{Connection, Value};

fn info_field(con: &mut Connection, section: &str, line_prefix: &str) -> String {
    let info: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    info.lines()
        .find(|l| l.starts_with(line_prefix))
        .map(|l| l[line_prefix.len()..].trim().to_string())
        .unwrap_or_default()
}

fn used_memory(con: &mut Connection) -> i64 {
    info_field(con, "memory", "used_memory:").parse().unwrap()
}

fn usec_per_call(con: &mut Connection, command: &str) -> f64 {
    let line = info_field(con, "commandstats", &format!("cmdstat_{command}:"));
    line.split(',')
        .find_map(|kv| kv.strip_prefix("usec_per_call="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn user_id(i: usize) -> String {
    format!("{:08x}-{:04x}-4000-8000-{:012x}", i, i % 65536, i) // 36 characters, UUID-shaped
}

fn main() {
    let mut max = 1_000_000usize;
    let mut kind = server::ServerKind::Redis;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--max" => max = args.next().and_then(|v| v.parse().ok()).expect("--max N"),
            "--server" => {
                kind = if args.next().as_deref() == Some("valkey") {
                    server::ServerKind::Valkey
                } else {
                    server::ServerKind::Redis
                }
            }
            _ => {} // cargo bench passes --bench
        }
    }
    let server = server::Server::start(kind, &[]);
    let mut con = server.connection();
    let _: () = redis::cmd("QUEUE.CONFIG")
        .arg("ev")
        .arg("SET")
        .arg("JOURNAL")
        .arg("off")
        .arg("HEARTBEAT")
        .arg(86_400_000)
        .query(&mut con)
        .unwrap();
    let base_memory = used_memory(&mut con);
    let base_usage: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("ev")
        .query(&mut con)
        .unwrap();
    println!(
        "server: {} ({})",
        kind.name(),
        info_field(
            &mut con,
            "server",
            if kind == server::ServerKind::Redis {
                "redis_version:"
            } else {
                "valkey_version:"
            }
        )
    );
    println!(
        "{:>10} {:>22} {:>22} {:>24}",
        "waiting", "STATUS usec_per_call", "used_memory/user (B)", "MEMORY USAGE/user (B)"
    );
    let mut joined = 0usize;
    let mut tickets: Vec<String> = Vec::new();
    let mut first_cost = None;
    for target in [1_000usize, 100_000, 1_000_000]
        .into_iter()
        .filter(|&t| t <= max)
    {
        while joined < target {
            let batch = (target - joined).min(1000);
            let mut pipe = redis::pipe();
            for i in joined..joined + batch {
                pipe.cmd("QUEUE.ENQUEUE").arg("ev").arg(user_id(i));
            }
            let replies: Vec<Value> = pipe.query(&mut con).unwrap();
            for (k, v) in replies.iter().enumerate() {
                if (joined + k) % 97 == 0 {
                    if let Value::Array(items) = v {
                        if let Value::BulkString(t) = &items[1] {
                            tickets.push(String::from_utf8_lossy(t).into_owned());
                        }
                    }
                }
            }
            joined += batch;
        }
        let memory_per_user = (used_memory(&mut con) - base_memory) as f64 / target as f64;
        let usage: i64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg("ev")
            .query(&mut con)
            .unwrap();
        let usage_per_user = (usage - base_usage) as f64 / target as f64;
        // STATUS of tickets spread over the whole line, 20,000 calls, pipelined by 100.
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut con)
            .unwrap();
        for round in 0..200 {
            let mut pipe = redis::pipe();
            for k in 0..100 {
                pipe.cmd("QUEUE.STATUS")
                    .arg("ev")
                    .arg(&tickets[(round * 100 + k * 31) % tickets.len()])
                    .ignore();
            }
            let _: () = pipe.query(&mut con).unwrap();
        }
        let cost = usec_per_call(&mut con, "queue.status");
        let ratio = first_cost.get_or_insert(cost);
        println!(
            "{target:>10} {cost:>14.2} ({:>4.2}x) {memory_per_user:>22.1} {usage_per_user:>24.1}",
            cost / *ratio
        );
    }
}
