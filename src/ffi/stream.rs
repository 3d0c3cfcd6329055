//! A journal stream: appends at explicit IDs, reads of its first IDs, exact trims.

use std::cell::RefCell;
use std::ffi::c_int;

use hashbrown::HashMap;
use redis_module::raw;

use super::{api, Ctx, Key, NotifyClass, OwnedString, RawString};
use crate::arg_list::ArgList;
use crate::entry_id::EntryId;

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

fn to_raw(id: EntryId) -> raw::RedisModuleStreamID {
    raw::RedisModuleStreamID {
        ms: id.ms,
        seq: id.seq,
    }
}

pub enum StreamState {
    Missing,
    Stream,
    /// The key holds something else.
    Other,
}

pub struct Stream {
    name: OwnedString,
    key: Key,
}

impl Stream {
    /// Opens the stream for writing (it is created by the first append).
    pub fn open(ctx: &Ctx, name: &[u8]) -> Self {
        let name = ctx.create_string(name);
        let key = ctx.open(name.s, true);
        Self { name, key }
    }

    pub fn name(&self) -> RawString {
        self.name.s
    }

    pub fn state(&self) -> StreamState {
        if self.key.is_empty() {
            StreamState::Missing
        } else if self.key.is_stream() {
            StreamState::Stream
        } else {
            StreamState::Other
        }
    }

    /// Appends an entry at exactly `id`; false (nothing written) if the stream's last ID is
    /// not smaller.
    pub fn append(&self, ctx: &Ctx, id: EntryId, fields: &ArgList) -> bool {
        let mut argv: Vec<RawString> = Vec::with_capacity(fields.len());
        let mut values: Vec<OwnedString> = Vec::with_capacity(fields.len() / 2);
        for (i, arg) in fields.iter().enumerate() {
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
        let mut raw_id = to_raw(id);
        let added = unsafe {
            api!(RedisModule_StreamAdd)(
                self.key.raw(),
                0,
                &mut raw_id,
                argv.as_mut_ptr(),
                (argv.len() / 2) as i64,
            )
        };
        if added != raw::REDISMODULE_OK as c_int {
            return false;
        }
        ctx.notify(NotifyClass::Stream, c"xadd", self.name.s);
        true
    }

    /// The IDs of the first `n` entries (fewer if the stream is shorter).
    pub fn first_ids(&self, n: usize) -> Vec<EntryId> {
        let mut ids = Vec::new();
        if !self.key.is_stream() || n == 0 {
            return ids;
        }
        unsafe {
            if api!(RedisModule_StreamIteratorStart)(
                self.key.raw(),
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            ) != raw::REDISMODULE_OK as c_int
            {
                return ids;
            }
            let mut id = to_raw(EntryId::default());
            let mut fields = 0i64;
            let (mut field, mut value) = (std::ptr::null_mut(), std::ptr::null_mut());
            while ids.len() < n
                && api!(RedisModule_StreamIteratorNextID)(self.key.raw(), &mut id, &mut fields)
                    == raw::REDISMODULE_OK as c_int
            {
                ids.push(EntryId::new(id.ms, id.seq));
                // The iterator moves to the next entry only past this one's fields (Redis
                // 7.0 asserts otherwise).
                for _ in 0..fields {
                    api!(RedisModule_StreamIteratorNextField)(
                        self.key.raw(),
                        &mut field,
                        &mut value,
                    );
                    for s in [field, value] {
                        if !s.is_null() {
                            api!(RedisModule_FreeString)(std::ptr::null_mut(), s);
                        }
                    }
                }
            }
            api!(RedisModule_StreamIteratorStop)(self.key.raw());
        }
        ids
    }

    /// Deletes the entries older than `min_id` (an exact trim, so every copy removes the same
    /// ones); returns how many went.
    pub fn trim_before(&self, min_id: EntryId) -> i64 {
        if !self.key.is_stream() {
            return 0;
        }
        let mut id = to_raw(min_id);
        unsafe { api!(RedisModule_StreamTrimByID)(self.key.raw(), 0, &mut id) }
    }
}
