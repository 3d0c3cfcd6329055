//! Hash tables that never rehash everything at once. A hashbrown table doubles by moving every
//! entry in one go, which on a table of millions blocks the server for tens of milliseconds; here
//! a table splits into `SHARDS` independent tables once it passes `SPLIT_AT` entries, so a
//! doubling moves at most one shard's share.

use std::hash::{BuildHasher, Hash};

use hashbrown::hash_table::HashTable;
use std::collections::hash_map::RandomState;

const SHARDS: usize = 256;
const SPLIT_AT: usize = 16_384;

/// The shard of a hash: bits that neither the bucket index (low bits) nor hashbrown's control
/// tag (top 7 bits) use, so entries of one shard still spread over its buckets and tags.
fn shard_of(hash: u64, shards: usize) -> usize {
    if shards == 1 {
        0
    } else {
        (hash >> 48) as usize % SHARDS
    }
}

/// A table of `T`, hashed and compared by the caller (so entries can refer to data stored
/// elsewhere).
pub struct ShardedTable<T> {
    shards: Vec<HashTable<T>>,
    len: usize,
}

impl<T> Default for ShardedTable<T> {
    fn default() -> Self {
        Self {
            shards: vec![HashTable::new()],
            len: 0,
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
        self.shards[shard_of(hash, n)].insert_unique(hash, value, &hasher);
        self.len += 1;
    }

    /// Removes the entry matching `eq`.
    pub fn remove(&mut self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<T> {
        let n = self.shards.len();
        match self.shards[shard_of(hash, n)].find_entry(hash, eq) {
            Ok(entry) => {
                self.len -= 1;
                Some(entry.remove().0)
            }
            Err(_) => None,
        }
    }

    /// Moves a single table's entries into `SHARDS` tables: once, at `SPLIT_AT` entries.
    fn split(&mut self, hasher: &impl Fn(&T) -> u64) {
        let single = std::mem::take(&mut self.shards[0]);
        self.shards = (0..SHARDS).map(|_| HashTable::new()).collect();
        for value in single {
            let hash = hasher(&value);
            self.shards[shard_of(hash, SHARDS)].insert_unique(hash, value, hasher);
        }
    }

    pub fn heap_bytes(&self) -> usize {
        // hashbrown: one control byte per bucket plus the slot, buckets at most 8/7 of capacity.
        self.shards
            .iter()
            .map(|s| s.capacity() * (std::mem::size_of::<T>() + 1) * 8 / 7)
            .sum()
    }
}

/// A map on a sharded table. Keys come from clients (user IDs, seat names, idempotency keys),
/// so it hashes with std's randomly keyed SipHash, which resists chosen-collision floods.
pub struct ShardedMap<K, V> {
    table: ShardedTable<(K, V)>,
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
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
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
        self.table
            .find(self.hash(key), |(k, _)| k.borrow() == key)
            .map(|(_, v)| v)
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let hash = self.hash(&key);
        if let Some((_, old)) = self.table.find_mut(hash, |(k, _)| *k == key) {
            return Some(std::mem::replace(old, value));
        }
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash, (key, value), |(k, _)| hasher.hash_one(k));
        None
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        self.table
            .remove(hash, |(k, _)| k.borrow() == key)
            .map(|(_, v)| v)
    }

    pub fn heap_bytes(&self) -> usize {
        self.table.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
        }
        assert_eq!(map.len(), model.len());
        for (k, v) in &model {
            assert_eq!(map.get(k), Some(v));
        }
        assert!(model.keys().all(|k| map.get(k).is_some()));
    }
}
