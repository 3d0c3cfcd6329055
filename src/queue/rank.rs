//! Order statistics over a growing sequence of slots: which slots are still waiting, how many
//! waiting slots precede a given one (a ticket's position) and which slot holds the k-th waiting
//! ticket. One bit per slot plus a Fenwick tree over 64-slot words: O(log n) for every query and
//! update, about 1.06 bits of memory per slot.

#[derive(Debug, Clone)]
pub struct RankIndex {
    words: Vec<u64>,
    /// Fenwick tree over the popcounts of `words`; `tree[j]` covers words `(j - lowbit(j), j]`
    /// in 1-based numbering, `tree[0]` is unused.
    tree: Vec<u32>,
    len: usize,
    count: usize,
}

fn lowbit(j: usize) -> usize {
    j & j.wrapping_neg()
}

impl Default for RankIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl RankIndex {
    pub fn new() -> Self {
        Self {
            words: Vec::new(),
            tree: vec![0],
            len: 0,
            count: 0,
        }
    }

    pub fn from_bits(bits: impl IntoIterator<Item = bool>) -> Self {
        let mut index = Self::new();
        for bit in bits {
            index.push(bit);
        }
        index
    }

    /// Number of set bits.
    pub fn count(&self) -> usize {
        self.count
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn get(&self, i: usize) -> bool {
        i < self.len && self.words[i / 64] >> (i % 64) & 1 == 1
    }

    /// Appends one slot.
    pub fn push(&mut self, bit: bool) {
        if self.len % 64 == 0 {
            // A new Fenwick node covers (j - lowbit(j), j]; its earlier words are already summed.
            let j = self.words.len() + 1;
            let covered = self.word_prefix(j - 1) - self.word_prefix(j - lowbit(j));
            self.words.push(0);
            self.tree.push(covered as u32);
        }
        self.len += 1;
        if bit {
            self.set(self.len - 1, true);
        }
    }

    /// Sets or clears slot `i`; a no-op when it already has that value.
    pub fn set(&mut self, i: usize, bit: bool) {
        assert!(i < self.len, "rank index out of range");
        if self.get(i) == bit {
            return;
        }
        self.words[i / 64] ^= 1 << (i % 64);
        let mut j = i / 64 + 1;
        while j < self.tree.len() {
            if bit {
                self.tree[j] += 1;
            } else {
                self.tree[j] -= 1;
            }
            j += lowbit(j);
        }
        if bit {
            self.count += 1;
        } else {
            self.count -= 1;
        }
    }

    /// Number of set bits in words `[0, w)`.
    fn word_prefix(&self, mut w: usize) -> usize {
        let mut sum = 0usize;
        while w > 0 {
            sum += self.tree[w] as usize;
            w -= lowbit(w);
        }
        sum
    }

    /// Number of set bits strictly before slot `i`.
    pub fn rank(&self, i: usize) -> usize {
        let i = i.min(self.len);
        let (w, b) = (i / 64, i % 64);
        let partial = if b == 0 {
            0
        } else {
            (self.words[w] & ((1u64 << b) - 1)).count_ones() as usize
        };
        self.word_prefix(w) + partial
    }

    /// The slot holding the k-th (0-based) set bit.
    pub fn select(&self, k: usize) -> Option<usize> {
        if k >= self.count {
            return None;
        }
        // Fenwick descent: find the last word index whose prefix is <= k.
        let mut pos = 0usize;
        let mut remaining = k;
        let mut step = (self.tree.len() - 1).next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next < self.tree.len() && (self.tree[next] as usize) <= remaining {
                pos = next;
                remaining -= self.tree[next] as usize;
            }
            step /= 2;
        }
        let mut word = self.words[pos];
        for _ in 0..remaining {
            word &= word - 1;
        }
        Some(pos * 64 + word.trailing_zeros() as usize)
    }

    /// Heap bytes used, for MEMORY USAGE.
    pub fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8 + self.tree.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks every query against a plain Vec<bool> model.
    fn check(index: &RankIndex, model: &[bool]) {
        assert_eq!(index.len(), model.len());
        assert_eq!(index.count(), model.iter().filter(|&&b| b).count());
        let mut seen = 0;
        for (i, &bit) in model.iter().enumerate() {
            assert_eq!(index.rank(i), seen, "rank({i})");
            assert_eq!(index.get(i), bit);
            if bit {
                assert_eq!(index.select(seen), Some(i), "select({seen})");
                seen += 1;
            }
        }
        assert_eq!(index.select(seen), None);
    }

    #[test]
    fn matches_a_naive_model_under_random_updates() {
        let mut state = 0x9e3779b97f4a7c15u64;
        let mut rnd = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut index = RankIndex::new();
        let mut model = Vec::new();
        for round in 0..3000 {
            if rnd() % 3 != 0 || model.is_empty() {
                let bit = rnd() % 4 != 0;
                index.push(bit);
                model.push(bit);
            } else {
                let i = (rnd() as usize) % model.len();
                let bit = rnd() % 2 == 0;
                index.set(i, bit);
                model[i] = bit;
            }
            if round % 97 == 0 {
                check(&index, &model);
            }
        }
        check(&index, &model);
        let rebuilt = RankIndex::from_bits(model.iter().copied());
        check(&rebuilt, &model);
    }

    #[test]
    fn empty_index() {
        let index = RankIndex::new();
        assert_eq!(index.rank(0), 0);
        assert_eq!(index.select(0), None);
    }
}
