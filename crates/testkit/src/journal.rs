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
