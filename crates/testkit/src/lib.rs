//! seatq's dev-only kit, shared by the integration tests (`tests/`), the benchmark (`benches/`)
//! and the flash-sale simulator (`examples/`): real servers with the module loaded (see
//! `server`) and small typed wrappers around seatq replies. Tests take everything with
//! `use seatq_testkit::*;`.

pub mod cluster;
pub mod server;

use std::collections::HashMap;

use redis::{Connection, Value};
pub use server::{wait_until, Server, ServerKind};

/// Runs `body` once per selected server kind (SEATQ_SERVERS), naming the server on failure.
pub fn for_each_server(mut body: impl FnMut(ServerKind)) {
    for kind in ServerKind::selected() {
        eprintln!("== on {}", kind.name());
        body(kind);
    }
}

pub fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Okay => "OK".into(),
        Value::Nil => String::new(),
        other => format!("{other:?}"),
    }
}

pub fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => text(other)
            .parse()
            .unwrap_or_else(|_| panic!("not an integer: {other:?}")),
    }
}

/// A record reply (RESP3 map or RESP2 flat field/value array) as a map.
pub fn record(v: &Value) -> HashMap<String, Value> {
    match v {
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (text(k), v.clone())).collect(),
        Value::Array(items) => {
            assert!(items.len() % 2 == 0, "not a record: {v:?}");
            items
                .chunks(2)
                .map(|p| (text(&p[0]), p[1].clone()))
                .collect()
        }
        other => panic!("not a record: {other:?}"),
    }
}

pub fn items(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        other => panic!("not an array: {other:?}"),
    }
}

/// Runs a command given as words.
pub fn run(con: &mut Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con)
}

pub fn ok(con: &mut Connection, args: &[&str]) -> Value {
    run(con, args).unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
}

/// The full error line of a failed command, e.g. `DUPLICATE 1-0` or `ERR syntax error: ...`.
pub fn error_line(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

pub fn err(con: &mut Connection, args: &[&str]) -> String {
    match run(con, args) {
        Ok(v) => panic!("{args:?} should fail but answered {v:?}"),
        Err(e) => error_line(&e),
    }
}

/// Joins and returns (ticket, position).
pub fn enqueue(con: &mut Connection, key: &str, user: &str) -> (String, i64) {
    let r = record(&ok(con, &["QUEUE.ENQUEUE", key, user]));
    (text(&r["ticket"]), int(&r["position"]))
}

pub fn status(con: &mut Connection, key: &str, ticket: &str) -> HashMap<String, Value> {
    record(&ok(con, &["QUEUE.STATUS", key, ticket]))
}

pub fn digest(con: &mut Connection, key: &str) -> String {
    let v = ok(con, &["DEBUG", "DIGEST-VALUE", key]);
    items(&v).first().map(text).unwrap_or_default()
}

/// The journal of `key` as (id, [(field, value)]).
pub fn journal(con: &mut Connection, journal_key: &str) -> Vec<(String, Vec<(String, String)>)> {
    items(&ok(con, &["XRANGE", journal_key, "-", "+"]))
        .iter()
        .map(|entry| {
            let parts = items(entry);
            let fields = items(&parts[1]);
            (
                text(&parts[0]),
                fields
                    .chunks(2)
                    .map(|p| (text(&p[0]), text(&p[1])))
                    .collect(),
            )
        })
        .collect()
}

pub fn field<'a>(entry: &'a [(String, String)], name: &str) -> &'a str {
    entry
        .iter()
        .find(|(f, _)| f == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// Runs each (command, expected error prefix) row: every one must be refused with that error,
/// and together they must leave the whole database unchanged (DEBUG DIGEST).
pub fn assert_refused_unchanged(con: &mut Connection, table: &[(Vec<&str>, &str)]) {
    let before = text(&ok(con, &["DEBUG", "DIGEST"]));
    for (args, expected) in table {
        let got = err(con, args);
        assert!(
            got.starts_with(expected),
            "{args:?}: expected '{expected}', got '{got}'"
        );
    }
    assert_eq!(
        text(&ok(con, &["DEBUG", "DIGEST"])),
        before,
        "no bad command changed anything"
    );
}
