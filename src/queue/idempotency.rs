//! Idempotency keys of QUEUE.ENQUEUE: a reused key answers DUPLICATE until it expires.
//!
//! A key is remembered only by the join that created a ticket (a user who already waits gets
//! their ticket back whatever key they send), so there is at most one record per ticket. Records
//! are kept in the order they were made, which is (nearly) their expiry order, so expired ones
//! are dropped from the front a bounded number at a time.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use crate::collections::seg_vec::SegVec;
use crate::collections::sharded::ShardedTable;
use crate::queue::line::Serial;

pub const MAX_KEY_LEN: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub key: Box<[u8]>,
    pub serial: Serial,
    pub expires_at: u64,
}

#[derive(Default)]
pub struct IdempotencyLedger {
    /// Records in the order they were made; `None` once replaced by a newer record of the key.
    records: SegVec<Option<IdempotencyRecord>>,
    /// Index into `records` by key (hash and position; the key is compared in the record).
    by_key: ShardedTable<(u64, usize)>,
    hasher: RandomState,
    key_bytes: usize,
}

impl IdempotencyLedger {
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn find(&self, key: &[u8]) -> Option<&IdempotencyRecord> {
        let hash = self.hash(key);
        let &(_, at) = self.by_key.find(hash, |&(h, at)| {
            h == hash && self.records[at].as_ref().is_some_and(|r| &*r.key == key)
        })?;
        self.records[at].as_ref()
    }

    /// The ticket a live key was used for. Expired records count as absent before they go.
    pub fn lookup(&self, key: &[u8], now: u64) -> Option<Serial> {
        self.find(key)
            .filter(|r| r.expires_at > now)
            .map(|r| r.serial)
    }

    pub fn remember(&mut self, record: IdempotencyRecord) {
        let hash = self.hash(&record.key);
        if let Some((_, at)) = self.by_key.remove(hash, |&(h, at)| {
            h == hash
                && self.records[at]
                    .as_ref()
                    .is_some_and(|r| r.key == record.key)
        }) {
            // An expired record of the same key not purged yet: the new one replaces it.
            let old = self.records[at].take().expect("indexed records exist");
            self.key_bytes -= old.key.len();
        }
        self.key_bytes += record.key.len();
        let at = self.records.end_index();
        self.records.push(Some(record));
        self.by_key.insert_unique(hash, (hash, at), |&(h, _)| h);
    }

    /// Expiry times of the records from the front (replaced slots skipped).
    pub fn expiries(&self) -> impl Iterator<Item = u64> + '_ {
        self.records.iter().flatten().map(|r| r.expires_at)
    }

    /// Drops records from the front that expired at `now`, at most `limit` of them (slots of
    /// replaced records go too, without counting: a copy loaded from RDB has none); returns how
    /// many records went, which replicas repeat exactly.
    pub fn purge(&mut self, now: u64, limit: usize) -> usize {
        let mut taken = 0;
        loop {
            match self.records.front() {
                Some(None) => {
                    self.records.pop_front();
                }
                Some(Some(r)) if r.expires_at <= now && taken < limit => {
                    let at = self.records.first_index();
                    let record = self.records.pop_front().flatten().expect("a record");
                    let hash = self.hash(&record.key);
                    self.by_key.remove(hash, |&(_, i)| i == at);
                    self.key_bytes -= record.key.len();
                    taken += 1;
                }
                _ => return taken,
            }
        }
    }

    /// When the oldest record expires.
    pub fn next_expiry(&self) -> Option<u64> {
        self.expiries().next()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Live records, oldest first (persistence, digest).
    pub fn iter(&self) -> impl Iterator<Item = &IdempotencyRecord> {
        self.records.iter().flatten()
    }

    pub fn heap_bytes(&self) -> usize {
        self.records.heap_bytes() + self.by_key.heap_bytes() + self.key_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, serial: Serial, expires_at: u64) -> IdempotencyRecord {
        IdempotencyRecord {
            key: key.as_bytes().into(),
            serial,
            expires_at,
        }
    }

    #[test]
    fn keys_expire_and_purge_from_the_front() {
        let mut ledger = IdempotencyLedger::default();
        ledger.remember(record("a", 1, 100));
        ledger.remember(record("b", 2, 200));
        assert_eq!(ledger.lookup(b"a", 99), Some(1));
        assert_eq!(ledger.lookup(b"a", 100), None);
        assert_eq!(ledger.next_expiry(), Some(100));
        assert_eq!(ledger.purge(150, 10), 1);
        assert_eq!(ledger.len(), 1);
        assert_eq!(ledger.next_expiry(), Some(200));
        // Re-remembering an expired key replaces its record.
        ledger.remember(record("b", 3, 400));
        assert_eq!(ledger.lookup(b"b", 300), Some(3));
        assert_eq!(ledger.len(), 1);
        assert_eq!(
            ledger.purge(250, 10),
            0,
            "the replaced record's slot goes uncounted"
        );
        assert_eq!(ledger.lookup(b"b", 300), Some(3));
        assert_eq!(ledger.iter().count(), 1);
        assert_eq!(ledger.purge(500, 1), 1);
        assert_eq!(ledger.len(), 0);
    }

    #[test]
    fn purging_is_bounded() {
        let mut ledger = IdempotencyLedger::default();
        for i in 0..10_000u32 {
            ledger.remember(record(&format!("k{i}"), i, u64::from(i)));
        }
        assert_eq!(ledger.purge(u64::MAX, 3000), 3000);
        assert_eq!(ledger.len(), 7000);
        assert_eq!(ledger.lookup(b"k3000", 0), Some(3000));
        assert_eq!(ledger.lookup(b"k2999", 0), None);
    }
}
