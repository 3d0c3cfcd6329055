//! seatq's replies as Rust values: text, numbers, records (a RESP3 map or a RESP2 flat
//! field/value array) and error lines.

use std::collections::HashMap;

use redis::Value;

/// A simple reply as text: strings as they are, integers in decimal, OK, nil as "".
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

/// An integer reply, or a string reply that holds one.
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

/// An array reply's elements.
pub fn items(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        other => panic!("not an array: {other:?}"),
    }
}

/// The full error line of a failed command, e.g. `DUPLICATE 1-0` or `ERR syntax error: ...`.
pub fn error_line(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}
