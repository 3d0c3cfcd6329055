//! Reading seatq's replies the way the simulated clients do.

use redis::Value;
use seatq_testkit::reply::{record_field, reply_error_line, text};

/// A field of a record as text; "" when the record has none.
pub fn field_text(record: &Value, name: &str) -> String {
    record_field(record, name).map(text).unwrap_or_default()
}

/// A field of a record as a count; None when the record has none or it is negative.
pub fn field_int(record: &Value, name: &str) -> Option<u64> {
    match record_field(record, name)? {
        Value::Int(i) => u64::try_from(*i).ok(),
        other => text(other).parse().ok(),
    }
}

/// An error reply as its full line, anything else as redis-rs shows it: for the report of
/// unexpected replies.
pub fn describe(reply: &Value) -> String {
    reply_error_line(reply).unwrap_or_else(|| format!("{reply:?}"))
}
