//! A sorted set of keys, each with two weights, that answers "the summed weights of all keys up
//! to k" in O(log n + block). Seat holds use it by deadline: how many seats and units lapsed holds
//! still hold, which reads count as available before the holds are returned.

use super::fenwick::Fenwick;

const MAX_BLOCK: usize = 512;

pub type Weights = [u64; 2];

#[derive(Clone, Debug)]
pub struct SumBlocks<K> {
    blocks: Vec<Vec<(K, Weights)>>,
    /// Each block's summed weights, so a split or a dropped block rebuilds the Fenwick trees
    /// from one entry per block, never by summing every key again.
    block_sums: Vec<Weights>,
    sums: [Fenwick; 2],
    /// Keys per block.
    counts: Fenwick,
    len: usize,
}

impl<K> Default for SumBlocks<K> {
    fn default() -> Self {
        Self {
            blocks: Vec::new(),
            block_sums: Vec::new(),
            sums: [Fenwick::default(), Fenwick::default()],
            counts: Fenwick::default(),
            len: 0,
        }
    }
}

fn block_weights<K>(block: &[(K, Weights)]) -> Weights {
    #[cfg(test)]
    tests::SUMMED.with(|s| s.set(s.get() + block.len()));
    block
        .iter()
        .fold([0, 0], |acc, (_, w)| [acc[0] + w[0], acc[1] + w[1]])
}

impl<K: Ord + Copy> SumBlocks<K> {
    pub fn len(&self) -> usize {
        self.len
    }

    fn block_of(&self, key: &K) -> usize {
        self.blocks
            .partition_point(|b| b.first().is_some_and(|(first, _)| first <= key))
            .saturating_sub(1)
    }

    /// Rebuilds the Fenwick trees from `block_sums` and the block lengths: O(blocks).
    fn rebuild(&mut self) {
        for (i, fenwick) in self.sums.iter_mut().enumerate() {
            *fenwick = Fenwick::from_counts(self.block_sums.iter().map(|w| w[i]));
        }
        self.counts = Fenwick::from_counts(self.blocks.iter().map(|b| b.len() as u64));
    }

    fn add(&mut self, b: usize, w: Weights, sign: i64) {
        for (i, fenwick) in self.sums.iter_mut().enumerate() {
            fenwick.add(b, sign * w[i] as i64);
            let sum = &mut self.block_sums[b][i];
            *sum = sum.wrapping_add_signed(sign * w[i] as i64);
        }
        self.counts.add(b, sign);
    }

    /// Inserts `key` with its weights; false if it was already present.
    pub fn insert(&mut self, key: K, weights: Weights) -> bool {
        if self.blocks.is_empty() {
            self.blocks.push(Vec::new());
            self.block_sums.push([0, 0]);
            self.rebuild();
        }
        let b = self.block_of(&key);
        let Err(at) = self.blocks[b].binary_search_by(|(k, _)| k.cmp(&key)) else {
            return false;
        };
        self.blocks[b].insert(at, (key, weights));
        self.len += 1;
        self.add(b, weights, 1);
        if self.blocks[b].len() > MAX_BLOCK {
            let upper = self.blocks[b].split_off(MAX_BLOCK / 2);
            let upper_sums = block_weights(&upper);
            let lower = &mut self.block_sums[b];
            *lower = [lower[0] - upper_sums[0], lower[1] - upper_sums[1]];
            self.blocks.insert(b + 1, upper);
            self.block_sums.insert(b + 1, upper_sums);
            self.rebuild();
        }
        true
    }

    /// Removes `key`, returning its weights.
    pub fn remove(&mut self, key: &K) -> Option<Weights> {
        if self.blocks.is_empty() {
            return None;
        }
        let b = self.block_of(key);
        let at = self.blocks[b].binary_search_by(|(k, _)| k.cmp(key)).ok()?;
        let (_, weights) = self.blocks[b].remove(at);
        self.len -= 1;
        if self.blocks[b].is_empty() && self.blocks.len() > 1 {
            self.blocks.remove(b);
            self.block_sums.remove(b);
            self.rebuild();
        } else {
            self.add(b, weights, -1);
        }
        Some(weights)
    }

    pub fn first(&self) -> Option<K> {
        self.blocks.iter().find_map(|b| b.first()).map(|(k, _)| *k)
    }

    /// Summed weights of every key <= `key`.
    pub fn sum_through(&self, key: &K) -> Weights {
        if self.blocks.is_empty() {
            return [0, 0];
        }
        let b = self.block_of(key);
        let partial = self.blocks[b]
            .iter()
            .take_while(|(k, _)| k <= key)
            .fold([0, 0], |acc, (_, w)| [acc[0] + w[0], acc[1] + w[1]]);
        [
            self.sums[0].prefix(b) + partial[0],
            self.sums[1].prefix(b) + partial[1],
        ]
    }

    /// How many keys are <= `key`.
    pub fn count_through(&self, key: &K) -> usize {
        if self.blocks.is_empty() {
            return 0;
        }
        let b = self.block_of(key);
        let partial = self.blocks[b].iter().take_while(|(k, _)| k <= key).count();
        self.counts.prefix(b) as usize + partial
    }

    /// Keys in order, from the smallest.
    pub fn iter(&self) -> impl Iterator<Item = K> + '_ {
        self.blocks.iter().flatten().map(|(k, _)| *k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    thread_local! {
        /// Keys whose weights were summed by `block_weights`.
        pub static SUMMED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn a_split_sums_one_block_not_every_key() {
        // Hold deadlines arrive in increasing order: every insert goes to the last block, which
        // splits every MAX_BLOCK / 2 inserts.
        let mut blocks = SumBlocks::default();
        let n = 200_000u64;
        SUMMED.with(|s| s.set(0));
        for key in 0..n {
            blocks.insert(key, [1, key % 3]);
        }
        let summed = SUMMED.with(|s| s.get());
        // Each split sums the half it moves (MAX_BLOCK / 2 keys): about n keys in all. Summing
        // every key at every split would be ~n^2 / 512 (78 million here).
        assert!(
            summed <= 2 * n as usize,
            "summed {summed} keys for {n} inserts"
        );
        assert_eq!(
            blocks.sum_through(&(n - 1)),
            [n, (0..n).map(|k| k % 3).sum()]
        );
        assert_eq!(blocks.count_through(&(n / 2)), n as usize / 2 + 1);
    }

    #[test]
    fn prefix_sums_match_a_naive_model() {
        let mut state = 12345u64;
        let mut rnd = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut blocks = SumBlocks::default();
        let mut model: BTreeMap<u64, Weights> = BTreeMap::new();
        for round in 0..8000 {
            let key = rnd() % 3000;
            if rnd() % 3 == 0 {
                assert_eq!(blocks.remove(&key), model.remove(&key));
            } else {
                let w = [rnd() % 5, rnd() % 9];
                let fresh = !model.contains_key(&key);
                assert_eq!(blocks.insert(key, w), fresh);
                if fresh {
                    model.insert(key, w);
                }
            }
            if round % 401 == 0 {
                for probe in (0..3000).step_by(37) {
                    let want = model
                        .range(..=probe)
                        .fold([0, 0], |a, (_, w)| [a[0] + w[0], a[1] + w[1]]);
                    assert_eq!(blocks.sum_through(&probe), want);
                    assert_eq!(blocks.count_through(&probe), model.range(..=probe).count());
                }
                assert_eq!(blocks.first(), model.keys().next().copied());
                assert_eq!(blocks.len(), model.len());
            }
        }
    }
}
