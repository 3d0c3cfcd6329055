//! A sorted set of small keys with rank and select in O(log n): keys live in blocks of at most
//! `MAX_BLOCK` (a sorted `Vec` each), a Fenwick tree counts keys per block. An insert or removal
//! moves at most one block's keys; a split or a dropped block rebuilds the Fenwick tree over the
//! blocks (a few thousand counts at most), never anything proportional to the number of keys.

use super::fenwick::Fenwick;

const MAX_BLOCK: usize = 1024;

#[derive(Debug)]
pub struct OrderedBlocks<K> {
    blocks: Vec<Vec<K>>,
    counts: Fenwick,
    /// The blocks' capacities summed, kept as they change, so that `heap_bytes` (QUEUE.INFO)
    /// does not visit every block.
    capacity: usize,
}

impl<K> Default for OrderedBlocks<K> {
    fn default() -> Self {
        Self {
            blocks: Vec::new(),
            counts: Fenwick::default(),
            capacity: 0,
        }
    }
}

impl<K: Ord + Copy> OrderedBlocks<K> {
    pub fn len(&self) -> usize {
        self.counts.total() as usize
    }

    /// The block that holds `key` or would hold it.
    fn block_of(&self, key: &K) -> usize {
        // The last block whose first key is <= key (block 0 for keys before every block).
        self.blocks
            .partition_point(|b| b.first().is_some_and(|first| first <= key))
            .saturating_sub(1)
    }

    fn rebuild_counts(&mut self) {
        self.counts = Fenwick::from_counts(self.blocks.iter().map(|b| b.len() as u64));
    }

    /// Inserts `key`; false if it was already present.
    pub fn insert(&mut self, key: K) -> bool {
        if self.blocks.is_empty() {
            self.blocks.push(Vec::new());
            self.counts.push(0);
        }
        let b = self.block_of(&key);
        let Err(at) = self.blocks[b].binary_search(&key) else {
            return false;
        };
        let before = self.blocks[b].capacity();
        self.blocks[b].insert(at, key);
        self.capacity += self.blocks[b].capacity() - before;
        if self.blocks[b].len() > MAX_BLOCK {
            let upper = self.blocks[b].split_off(MAX_BLOCK / 2);
            self.capacity += upper.capacity();
            self.blocks.insert(b + 1, upper);
            self.rebuild_counts();
        } else {
            self.counts.add(b, 1);
        }
        true
    }

    /// Removes `key`; false if it was absent.
    pub fn remove(&mut self, key: &K) -> bool {
        if self.blocks.is_empty() {
            return false;
        }
        let b = self.block_of(key);
        let Ok(at) = self.blocks[b].binary_search(key) else {
            return false;
        };
        self.blocks[b].remove(at);
        if self.blocks[b].is_empty() && self.blocks.len() > 1 {
            self.capacity -= self.blocks.remove(b).capacity();
            self.rebuild_counts();
        } else {
            self.counts.add(b, -1);
        }
        true
    }

    /// Number of keys smaller than `key`, if `key` is present.
    pub fn rank(&self, key: &K) -> Option<usize> {
        if self.blocks.is_empty() {
            return None;
        }
        let b = self.block_of(key);
        let at = self.blocks[b].binary_search(key).ok()?;
        Some(self.counts.prefix(b) as usize + at)
    }

    /// The k-th smallest key (0-based).
    pub fn select(&self, k: usize) -> Option<K> {
        let (b, at) = self.counts.select(k as u64)?;
        Some(self.blocks[b][at as usize])
    }

    /// Keys in order.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = &K> {
        self.blocks.iter().flatten()
    }

    pub fn heap_bytes(&self) -> usize {
        self.capacity * std::mem::size_of::<K>()
            + self.blocks.capacity() * std::mem::size_of::<Vec<K>>()
            + self.counts.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn matches_a_sorted_set() {
        let mut state = 0x9e37_79b9u64;
        let mut rnd = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut blocks = OrderedBlocks::default();
        let mut model = BTreeSet::new();
        for round in 0..20_000 {
            let key = rnd() % 5000;
            if rnd() % 3 == 0 {
                assert_eq!(blocks.remove(&key), model.remove(&key));
            } else {
                assert_eq!(blocks.insert(key), model.insert(key));
            }
            if round % 997 == 0 {
                assert_eq!(blocks.len(), model.len());
                for (i, k) in model.iter().enumerate() {
                    assert_eq!(blocks.rank(k), Some(i));
                    assert_eq!(blocks.select(i), Some(*k));
                }
                assert_eq!(blocks.select(model.len()), None);
                assert!(blocks.iter().copied().eq(model.iter().copied()));
                let visited: usize = blocks.blocks.iter().map(Vec::capacity).sum();
                assert_eq!(blocks.capacity, visited, "the kept capacity");
            }
        }
        for k in model.clone() {
            assert!(blocks.remove(&k));
        }
        assert_eq!(blocks.len(), 0);
        assert_eq!(blocks.rank(&1), None);
    }
}
