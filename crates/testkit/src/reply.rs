//! seatq's replies as Rust values: text, numbers, records (a RESP3 map or a RESP2 flat
//! field/value array) and error lines.

use std::collections::HashMap;

use redis::Value;

/// A simple reply as text: strings as they are, integers in decimal, OK, nil as "".
pub fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        Value::Int(i) => i.to_string(),
        Value::Okay => "OK".into(),
        Value::Nil => String::new(),
        other => format!("{other:?}"),
    }
}

/// An integer reply, or a string reply that holds one.
pub fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => text(other)
            .parse()
            .unwrap_or_else(|_| panic!("not an integer: {other:?}")),
    }
}

/// The (field, value) pairs of a record reply; none when `v` is not a record.
fn record_pairs(v: &Value) -> impl Iterator<Item = (&Value, &Value)> + '_ {
    let (flat, map): (&[Value], &[(Value, Value)]) = match v {
        Value::Array(items) => (items, &[]),
        Value::Map(pairs) => (&[], pairs),
        _ => (&[], &[]),
    };
    flat.chunks_exact(2)
        .map(|pair| (&pair[0], &pair[1]))
        .chain(map.iter().map(|(k, v)| (k, v)))
}

/// A record reply as a map.
pub fn record(v: &Value) -> HashMap<String, Value> {
    let is_record = match v {
        Value::Map(_) => true,
        Value::Array(items) => items.len() % 2 == 0,
        _ => false,
    };
    assert!(is_record, "not a record: {v:?}");
    record_pairs(v).map(|(k, v)| (text(k), v.clone())).collect()
}

/// One field of a record reply, found without copying the record: the simulator reads a few
/// from every reply.
pub fn record_field<'v>(record: &'v Value, name: &str) -> Option<&'v Value> {
    record_pairs(record)
        .find(|(k, _)| match k {
            Value::BulkString(b) => b == name.as_bytes(),
            Value::SimpleString(s) => s == name,
            _ => false,
        })
        .map(|(_, v)| v)
}

/// An array reply's elements.
pub fn items(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        other => panic!("not an array: {other:?}"),
    }
}

/// The full error line of a failed command, e.g. `DUPLICATE 1-0` or `ERR syntax error: ...`.
pub fn error_line(e: &redis::RedisError) -> String {
    match e.code() {
        Some(code) => code_and_detail(code, e.detail()),
        None => e.to_string(),
    }
}

/// `(code, detail)` of an error reply (pipelines get errors as replies, not as `Err`); the
/// detail is "" when the error has none.
pub fn reply_error(v: &Value) -> Option<(&str, &str)> {
    match v {
        Value::ServerError(e) => Some((e.code(), e.details().unwrap_or(""))),
        _ => None,
    }
}

/// The full line of an error reply, as `error_line` gives it for a failed command.
pub fn reply_error_line(v: &Value) -> Option<String> {
    match v {
        Value::ServerError(e) => Some(code_and_detail(e.code(), e.details())),
        _ => None,
    }
}

fn code_and_detail(code: &str, detail: Option<&str>) -> String {
    match detail {
        Some(detail) => format!("{code} {detail}"),
        None => code.to_string(),
    }
}
