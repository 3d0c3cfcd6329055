//! Hash tables that never rehash everything at once. A hashbrown table doubles by moving every
//! entry in one go, which on a table of millions blocks the server for tens of milliseconds; here
//! a table splits into `SHARDS` independent tables once it passes `SPLIT_AT` entries, so a
//! doubling moves at most one shard's share.
//!
//! Moving an entry must not hash its key again: SipHash of a 36-byte user ID costs ~60 ns, so a
//! split or a shard doubling that rehashes keys costs milliseconds (a split at 16,384 entries
//! took 3 ms, a shard of 40,000 entries 3 ms to double). Every entry keeps 32 bits of its hash,
//! and moves are rehashed from those (`spread`).
//!
//! Even so a doubling moves every entry of its shard into a table it first faults in: with 256
//! shards, a line's user index doubled its shards at 7.3 million users by moving 28,672 entries
//! into a fresh 576 KiB table, about 1 ms each (146 page faults), and 9 of the 256 doublings
//! took a join over 1 ms of CPU. With 1,024 shards the same doubling moves a quarter as much;
//! a doubling reaches that size again only past 29 million entries.

use std::hash::{BuildHasher, Hash};

use hashbrown::hash_table::HashTable;
use std::collections::hash_map::RandomState;

const SHARDS: usize = 1024;
/// Small enough that the split (every entry moved into 1,024 new tables) stays well under a
/// millisecond; an empty shard costs nothing until used.
const SPLIT_AT: usize = 4_096;

/// The table's 64-bit hash from a kept 32-bit one: multiplying by an odd constant spreads the
/// bits over the whole word (bucket bits, shard bits and control tag all vary).
pub fn spread(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The shard of a hash: bits that neither the bucket index (low bits: at most 23 of them, for a
/// shard of 2^32 / 1,024 entries) nor hashbrown's control tag (top 7 bits) use, so entries of
/// one shard still spread over its buckets and tags.
fn shard_of(hash: u64, shards: usize) -> usize {
    if shards == 1 {
        0
    } else {
        (hash >> SHARD_SHIFT) as usize % SHARDS
    }
}
const SHARD_SHIFT: u32 = 40;

/// A table of `T`, hashed and compared by the caller (so entries can refer to data stored
/// elsewhere).
pub struct ShardedTable<T> {
    shards: Vec<HashTable<T>>,
    len: usize,
    /// The shards' `capacity()` summed, kept through every insert and removal, so that
    /// `heap_bytes` (QUEUE.INFO) does not visit 1,024 shards.
    capacity: usize,
}

impl<T> Default for ShardedTable<T> {
    fn default() -> Self {
        Self {
            shards: vec![HashTable::new()],
            len: 0,
            capacity: 0,
        }
    }
}

impl<T> ShardedTable<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn find(&self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<&T> {
        self.shards[shard_of(hash, self.shards.len())].find(hash, eq)
    }

    pub fn find_mut(&mut self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<&mut T> {
        let n = self.shards.len();
        self.shards[shard_of(hash, n)].find_mut(hash, eq)
    }

    /// Inserts `value` (the caller knows no equal entry exists). `hasher` rehashes entries when
    /// a shard grows or the table splits.
    pub fn insert_unique(&mut self, hash: u64, value: T, hasher: impl Fn(&T) -> u64) {
        if self.shards.len() == 1 && self.len >= SPLIT_AT {
            self.split(&hasher);
        }
        let n = self.shards.len();
        let shard = &mut self.shards[shard_of(hash, n)];
        let before = shard.capacity();
        shard.insert_unique(hash, value, &hasher);
        self.capacity += shard.capacity() - before;
        self.len += 1;
    }

    /// Removes the entry matching `eq`.
    pub fn remove(&mut self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<T> {
        let n = self.shards.len();
        let shard = &mut self.shards[shard_of(hash, n)];
        let before = shard.capacity();
        let removed = match shard.find_entry(hash, eq) {
            Ok(entry) => entry.remove().0,
            Err(_) => return None,
        };
        self.len -= 1;
        // hashbrown's capacity counts a freed slot only when it needs no tombstone.
        self.capacity = self.capacity + shard.capacity() - before;
        Some(removed)
    }

    /// Moves a single table's entries into `SHARDS` tables: once, at `SPLIT_AT` entries.
    fn split(&mut self, hasher: &impl Fn(&T) -> u64) {
        let single = std::mem::take(&mut self.shards[0]);
        self.shards = (0..SHARDS).map(|_| HashTable::new()).collect();
        for value in single {
            let hash = hasher(&value);
            self.shards[shard_of(hash, SHARDS)].insert_unique(hash, value, hasher);
        }
        self.capacity = self.shards.iter().map(HashTable::capacity).sum();
    }

    pub fn heap_bytes(&self) -> usize {
        // hashbrown: one control byte per bucket plus the slot, buckets at most 8/7 of capacity.
        self.capacity * (std::mem::size_of::<T>() + 1) * 8 / 7
    }
}

/// A map on a sharded table. Keys come from clients (user IDs, seat names, idempotency keys),
/// so it hashes with std's randomly keyed SipHash, which resists chosen-collision floods; each
/// entry keeps 32 bits of that hash (in what is padding next to a 4-byte value) so that growing
/// never hashes a key again.
pub struct ShardedMap<K, V> {
    table: ShardedTable<(K, V, u32)>,
    hasher: RandomState,
}

impl<K, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        Self {
            table: ShardedTable::default(),
            hasher: RandomState::new(),
        }
    }
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u32 {
        self.hasher.hash_one(key) as u32
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        self.table
            .find(spread(hash), |(k, _, h)| *h == hash && k.borrow() == key)
            .map(|(_, v, _)| v)
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let hash = self.hash(&key);
        if let Some((_, old, _)) = self
            .table
            .find_mut(spread(hash), |(k, _, h)| *h == hash && *k == key)
        {
            return Some(std::mem::replace(old, value));
        }
        self.table
            .insert_unique(spread(hash), (key, value, hash), |(_, _, h)| spread(*h));
        None
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        self.table
            .remove(spread(hash), |(k, _, h)| *h == hash && k.borrow() == key)
            .map(|(_, v, _)| v)
    }

    pub fn heap_bytes(&self) -> usize {
        self.table.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// What the kept capacity stands for: every shard visited.
    fn visited_capacity<T>(table: &ShardedTable<T>) -> usize {
        table.shards.iter().map(HashTable::capacity).sum()
    }

    #[test]
    fn behaves_like_a_map_across_the_split() {
        let mut map: ShardedMap<u64, u64> = ShardedMap::default();
        let mut model = HashMap::new();
        for i in 0..(SPLIT_AT as u64 * 3) {
            let k = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 60_000;
            assert_eq!(map.insert(k, i), model.insert(k, i));
            if i % 5 == 0 {
                let r = k / 2;
                assert_eq!(map.remove(&r), model.remove(&r));
            }
            if i % 1000 == 0 {
                assert_eq!(map.table.capacity, visited_capacity(&map.table), "at {i}");
            }
        }
        assert_eq!(map.table.capacity, visited_capacity(&map.table));
        assert!(map.heap_bytes() > model.len() * 16);
        assert_eq!(map.len(), model.len());
        for (k, v) in &model {
            assert_eq!(map.get(k), Some(v));
        }
        assert!(model.keys().all(|k| map.get(k).is_some()));
    }

    /// A key type that counts how often it is hashed.
    #[derive(PartialEq, Eq)]
    struct Counted(u64);

    thread_local! {
        static HASHED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    impl Hash for Counted {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            HASHED.with(|h| h.set(h.get() + 1));
            self.0.hash(state);
        }
    }

    #[test]
    fn growing_and_splitting_never_hash_a_key_again() {
        let mut map: ShardedMap<Counted, u32> = ShardedMap::default();
        let n = SPLIT_AT * 40;
        for i in 0..n {
            HASHED.with(|h| h.set(0));
            map.insert(Counted(i as u64), i as u32);
            // The key's own hash, and nothing else, whatever doubled or split meanwhile.
            assert_eq!(HASHED.with(|h| h.get()), 1, "insert {i}");
        }
        assert_eq!(map.len(), n);
        for i in (0..n).step_by(7) {
            assert_eq!(map.get(&Counted(i as u64)), Some(&(i as u32)));
        }
        assert_eq!(map.remove(&Counted(3)), Some(3));
        assert_eq!(map.get(&Counted(3)), None);
    }

    #[test]
    fn entries_of_a_map_cost_no_more_than_before() {
        // The kept hash fills what was padding beside a 4-byte value.
        assert_eq!(
            std::mem::size_of::<(Box<[u8]>, u32, u32)>(),
            std::mem::size_of::<(Box<[u8]>, u32)>()
        );
    }
}
