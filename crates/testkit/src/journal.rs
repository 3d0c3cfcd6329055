//! An event's journal (a stream next to the event) as entries of field/value pairs.

use redis::Connection;

use crate::commands::ok;
use crate::reply::{items, text};

/// The whole journal stream `journal_key` as (entry ID, [(field, value)]).
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

/// One field of a journal entry; "" when the entry has none.
pub fn field<'a>(entry: &'a [(String, String)], name: &str) -> &'a str {
    entry
        .iter()
        .find(|(f, _)| f == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}
