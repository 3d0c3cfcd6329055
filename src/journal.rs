//! The event's journal: a native Redis Stream beside the event key, in the same hash slot.
//!
//! Key rule: `<key>:journal` when the event key has a hash tag (`{...}` with something inside),
//! otherwise `{<key>}:journal`. Both hash exactly like the event key. A key without a hash tag
//! that contains `}` cannot be wrapped that way, so journaling refuses it (with a clear error).

use std::cell::RefCell;
use std::ffi::c_int;

use hashbrown::HashMap;

use redis_module::raw;

use crate::entry_id::EntryId;
use crate::error::{printable, SeatqError};
use crate::event::JournalRecord;
use crate::ffi::{api, Ctx, Key, OwnedString, RawString};

/// Whether the key contains a non-empty `{tag}` (the part Redis Cluster hashes).
fn has_hash_tag(key: &[u8]) -> bool {
    key.iter()
        .position(|&b| b == b'{')
        .and_then(|open| key[open + 1..].iter().position(|&b| b == b'}'))
        .is_some_and(|len| len > 0)
}

pub fn journal_key(event_key: &[u8]) -> Result<Vec<u8>, SeatqError> {
    let mut name = Vec::with_capacity(event_key.len() + 10);
    if has_hash_tag(event_key) {
        name.extend_from_slice(event_key);
    } else if event_key.contains(&b'}') {
        return Err(SeatqError::Invalid(format!(
            "event key {} has no hash tag and contains '}}', so its journal cannot share its slot; use a key with a {{tag}} or JOURNAL off",
            printable(event_key)
        )));
    } else {
        name.push(b'{');
        name.extend_from_slice(event_key);
        name.push(b'}');
    }
    name.extend_from_slice(b":journal");
    Ok(name)
}

/// At most this many recurring words are kept (DATA field names come from clients).
const MAX_RECURRING_WORDS: usize = 1024;

thread_local! {
    // Journals are written on the main thread only.
    static RECURRING_WORDS: RefCell<HashMap<Box<[u8]>, RawString>> = RefCell::new(HashMap::new());
}

/// A module string holding `word`, created once and kept: field names and entry types make up
/// most of a journal entry, and creating and freeing a string for each on every write showed up
/// in profiles. None once the set is full (the caller creates a temporary string instead).
fn recurring_word(word: &[u8]) -> Option<RawString> {
    RECURRING_WORDS.with_borrow_mut(|words| {
        if let Some(&kept) = words.get(word) {
            return Some(kept);
        }
        if words.len() >= MAX_RECURRING_WORDS {
            return None;
        }
        // A string without a context is never freed automatically: it lives as long as the set.
        let kept = unsafe {
            api!(RedisModule_CreateString)(std::ptr::null_mut(), word.as_ptr().cast(), word.len())
        };
        words.insert(word.into(), kept);
        Some(kept)
    })
}

pub struct Journal {
    name: OwnedString,
    key: Key,
}

impl Journal {
    /// Opens the journal for writing; fails (before anything changes) if the key holds
    /// something other than a stream.
    pub fn open(ctx: &Ctx, event_key: &[u8]) -> Result<Self, SeatqError> {
        let name_bytes = journal_key(event_key)?;
        let name = ctx.create_string(&name_bytes);
        let key = ctx.open(name.s, true);
        if !key.is_stream_or_empty() {
            return Err(SeatqError::JournalWrongType(name_bytes));
        }
        Ok(Self { name, key })
    }

    /// Appends one entry at the record's ID. If the stream already holds a larger ID (someone
    /// wrote to it directly), the entry gets the next ID the stream allows; its `ticket` field
    /// still names the ticket. Not propagated: replicas and the AOF write the same entry when
    /// they apply the effect (`store::apply_received`).
    pub fn append(&self, ctx: &Ctx, record: &JournalRecord) {
        let mut argv: Vec<RawString> = Vec::with_capacity(record.fields.len());
        let mut values: Vec<OwnedString> = Vec::with_capacity(record.fields.len() / 2);
        for (i, arg) in record.fields.iter().enumerate() {
            // Field names and the entry type (the first value) recur in every entry.
            let recurring = i % 2 == 0 || i == 1;
            match recurring.then(|| recurring_word(arg)).flatten() {
                Some(word) => argv.push(word),
                None => {
                    let value = ctx.create_string(arg);
                    argv.push(value.s);
                    values.push(value);
                }
            }
        }
        let mut id = raw::RedisModuleStreamID {
            ms: record.id.ms,
            seq: record.id.seq,
        };
        let add = |flags: u32, id: &mut raw::RedisModuleStreamID, argv: &mut [RawString]| unsafe {
            api!(RedisModule_StreamAdd)(
                self.key.raw(),
                flags as c_int,
                id,
                argv.as_mut_ptr(),
                (argv.len() / 2) as i64,
            )
        };
        if add(0, &mut id, &mut argv) != raw::REDISMODULE_OK as c_int
            && add(raw::REDISMODULE_STREAM_ADD_AUTOID, &mut id, &mut argv)
                != raw::REDISMODULE_OK as c_int
        {
            ctx.log_warning("seatq: could not append to a journal stream");
            return;
        }
        ctx.notify(raw::REDISMODULE_NOTIFY_STREAM, "xadd", self.name.s);
        crate::metrics::JOURNAL_ENTRIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Deletes entries older than `min_id` (exact trim, so replicas end identical) and
    /// propagates it as `XTRIM key MINID id`.
    pub fn trim_before(&self, ctx: &Ctx, min_id: EntryId) {
        if self.key.is_empty() {
            return;
        }
        let mut id = raw::RedisModuleStreamID {
            ms: min_id.ms,
            seq: min_id.seq,
        };
        let removed = unsafe { api!(RedisModule_StreamTrimByID)(self.key.raw(), 0, &mut id) };
        if removed > 0 {
            let minid = ctx.create_string(b"MINID");
            let id_text = ctx.create_string(min_id.to_string().as_bytes());
            ctx.replicate_strings("XTRIM", &mut [self.name.s, minid.s, id_text.s]);
            ctx.notify(raw::REDISMODULE_NOTIFY_STREAM, "xtrim", self.name.s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_key_shares_the_slot() {
        assert_eq!(journal_key(b"concert").unwrap(), b"{concert}:journal");
        assert_eq!(journal_key(b"{c1}:sale").unwrap(), b"{c1}:sale:journal");
        assert_eq!(journal_key(b"a{b").unwrap(), b"{a{b}:journal");
        // An empty tag means the whole key is hashed, so it must be wrapped; it has '}' though.
        assert!(journal_key(b"{}x").is_err());
        assert!(journal_key(b"x}y").is_err());
    }
}
