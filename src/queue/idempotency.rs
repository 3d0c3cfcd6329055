//! Idempotency keys of QUEUE.ENQUEUE: a reused key answers `DUPLICATE <ticket>` until it expires.

use std::collections::HashMap;

use crate::entry_id::EntryId;

pub const MAX_KEY_LEN: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub ticket: EntryId,
    pub expires_at: u64,
}

#[derive(Default)]
pub struct IdempotencyLedger {
    records: HashMap<Box<[u8]>, IdempotencyRecord>,
    /// Total length of the keys, so MEMORY USAGE needs no scan.
    key_bytes: usize,
    /// Earliest `expires_at` among the records (u64::MAX when empty), so the timer knows
    /// without a scan whether a purge would remove anything.
    earliest_expiry: u64,
}

impl IdempotencyLedger {
    pub fn new() -> Self {
        Self {
            records: HashMap::new(),
            key_bytes: 0,
            earliest_expiry: u64::MAX,
        }
    }

    /// The ticket a live key was used for. Expired records count as absent even before a purge.
    pub fn lookup(&self, key: &[u8], now: u64) -> Option<EntryId> {
        self.records
            .get(key)
            .filter(|r| r.expires_at > now)
            .map(|r| r.ticket)
    }

    pub fn remember(&mut self, key: &[u8], record: IdempotencyRecord) {
        self.earliest_expiry = self.earliest_expiry.min(record.expires_at);
        if self.records.insert(key.into(), record).is_none() {
            self.key_bytes += key.len();
        }
    }

    /// Whether a purge at `now` is due: something expired at least `slack_ms` ago. The slack
    /// batches purges (each is a scan) to about one per `slack_ms`.
    pub fn purge_due(&self, now: u64, slack_ms: u64) -> bool {
        self.earliest_expiry.saturating_add(slack_ms) <= now
    }

    /// Drops every record expired at `now`; returns how many.
    pub fn purge(&mut self, now: u64) -> usize {
        let before = self.records.len();
        let key_bytes = &mut self.key_bytes;
        self.records.retain(|k, r| {
            let keep = r.expires_at > now;
            if !keep {
                *key_bytes -= k.len();
            }
            keep
        });
        self.earliest_expiry = self
            .records
            .values()
            .map(|r| r.expires_at)
            .min()
            .unwrap_or(u64::MAX);
        before - self.records.len()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Records sorted by key: a deterministic order for RDB and DEBUG DIGEST.
    pub fn sorted(&self) -> Vec<(&[u8], IdempotencyRecord)> {
        let mut all: Vec<_> = self.records.iter().map(|(k, r)| (&**k, *r)).collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all
    }

    pub fn heap_bytes(&self) -> usize {
        self.records.capacity() * (std::mem::size_of::<(Box<[u8]>, IdempotencyRecord)>() + 1)
            + self.key_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_expire_and_purge() {
        let mut ledger = IdempotencyLedger::new();
        let t = EntryId::new(1, 0);
        ledger.remember(
            b"a",
            IdempotencyRecord {
                ticket: t,
                expires_at: 100,
            },
        );
        ledger.remember(
            b"b",
            IdempotencyRecord {
                ticket: t,
                expires_at: 200,
            },
        );
        assert_eq!(ledger.lookup(b"a", 99), Some(t));
        assert_eq!(ledger.lookup(b"a", 100), None);
        assert!(!ledger.purge_due(100, 50));
        assert!(ledger.purge_due(150, 50));
        assert_eq!(ledger.purge(150), 1);
        assert_eq!(ledger.len(), 1);
        assert!(!ledger.purge_due(150, 0));
        assert_eq!(ledger.sorted()[0].0, b"b");
    }
}
