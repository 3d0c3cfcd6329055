//! The event's journal: a native Redis Stream beside the event key, in the same hash slot.
//!
//! Key rule: `<key>:journal` when the event key has a hash tag (`{...}` with something inside),
//! otherwise `{<key>}:journal`. Both hash exactly like the event key. A key without a hash tag
//! that contains `}` cannot be wrapped that way, so journaling refuses it (with a clear error).

use std::ffi::c_int;

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

    /// Appends one entry at the record's ID and propagates it as an XADD with that ID. If the
    /// stream already holds a larger ID (someone wrote to it directly), the entry gets the
    /// next ID the stream allows; its `ticket` field still names the ticket.
    pub fn append(&self, ctx: &Ctx, record: &JournalRecord) {
        let strings: Vec<OwnedString> = record
            .fields
            .iter()
            .flat_map(|(f, v)| [ctx.create_string(f), ctx.create_string(v)])
            .collect();
        let mut argv: Vec<RawString> = strings.iter().map(|s| s.s).collect();
        let mut id = raw::RedisModuleStreamID {
            ms: record.id.ms,
            seq: record.id.seq,
        };
        let add = |flags: u32, id: &mut raw::RedisModuleStreamID, argv: &mut Vec<RawString>| unsafe {
            api!(RedisModule_StreamAdd)(
                self.key.raw(),
                flags as c_int,
                id,
                argv.as_mut_ptr(),
                record.fields.len() as i64,
            )
        };
        if add(0, &mut id, &mut argv) != raw::REDISMODULE_OK as c_int
            && add(raw::REDISMODULE_STREAM_ADD_AUTOID, &mut id, &mut argv)
                != raw::REDISMODULE_OK as c_int
        {
            ctx.log_warning("seatq: could not append to a journal stream");
            return;
        }
        let id_text = ctx.create_string(EntryId::new(id.ms, id.seq).to_string().as_bytes());
        let mut xadd = Vec::with_capacity(argv.len() + 2);
        xadd.push(self.name.s);
        xadd.push(id_text.s);
        xadd.extend_from_slice(&argv);
        ctx.replicate_strings("XADD", &mut xadd);
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
