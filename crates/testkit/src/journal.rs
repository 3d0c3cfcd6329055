//! An event's journal (a stream next to the event) as entries of field/value pairs.

use redis::{Connection, RedisResult, Value};

use crate::reply::{items, text};

/// A journal entry: its stream ID and its (field, value) pairs in order.
pub type JournalEntry = (String, Vec<(String, String)>);

/// The entries of the journal stream `journal_key` from `start` (an XRANGE bound: `-`, an ID,
/// or `(ID` for the ones after it), at most `count` of them when given.
pub fn journal_range(
    con: &mut Connection,
    journal_key: &str,
    start: &str,
    count: Option<usize>,
) -> RedisResult<Vec<JournalEntry>> {
    let mut xrange = redis::cmd("XRANGE");
    xrange.arg(journal_key).arg(start).arg("+");
    if let Some(count) = count {
        xrange.arg("COUNT").arg(count);
    }
    let reply: Value = xrange.query(con)?;
    Ok(entries(&reply))
}

/// The entries of an XRANGE reply (e.g. one read inside MULTI/EXEC).
pub fn entries(reply: &Value) -> Vec<JournalEntry> {
    items(reply)
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

/// The entries of an XRANGE reply, taken apart without copying its strings (for long
/// journals).
pub fn into_entries(reply: Value) -> Vec<JournalEntry> {
    let Value::Array(entries) = reply else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|entry| {
            let Value::Array(parts) = entry else {
                return None;
            };
            let mut parts = parts.into_iter();
            let id = owned_text(parts.next()?);
            let Value::Array(fields) = parts.next()? else {
                return Some((id, Vec::new()));
            };
            let mut fields = fields.into_iter();
            let mut pairs = Vec::with_capacity(fields.len() / 2);
            while let (Some(f), Some(v)) = (fields.next(), fields.next()) {
                pairs.push((owned_text(f), owned_text(v)));
            }
            Some((id, pairs))
        })
        .collect()
}

fn owned_text(v: Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8(b)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        other => text(&other),
    }
}

/// The whole journal stream `journal_key`.
pub fn journal(con: &mut Connection, journal_key: &str) -> Vec<JournalEntry> {
    journal_range(con, journal_key, "-", None)
        .unwrap_or_else(|e| panic!("XRANGE {journal_key} failed: {e}"))
}

/// One field of a journal entry; "" when the entry has none.
pub fn field<'a>(entry: &'a [(String, String)], name: &str) -> &'a str {
    entry
        .iter()
        .find(|(f, _)| f == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}
