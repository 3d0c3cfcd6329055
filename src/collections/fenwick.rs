//! A Fenwick (binary indexed) tree of counts: prefix sums and "which slot holds the k-th unit"
//! in O(log n), appends in O(log n) amortized. Used for positions in the waiting line (waiting
//! tickets per segment) and in the pre-queue order (entries per block).

#[derive(Clone, Debug)]
pub struct Fenwick {
    /// `tree[j]` sums slots `(j - lowbit(j), j]` in 1-based numbering; `tree[0]` is unused.
    tree: Vec<u64>,
    total: u64,
}

fn lowbit(j: usize) -> usize {
    j & j.wrapping_neg()
}

impl Default for Fenwick {
    fn default() -> Self {
        Self {
            tree: vec![0],
            total: 0,
        }
    }
}

impl Fenwick {
    /// The tree of `counts` in O(n) (pushing them one by one would be O(n log n): a rebuild
    /// over the 10,000 segments of a line of ten million then costs a noticeable fraction of a
    /// millisecond).
    pub fn from_counts(counts: impl IntoIterator<Item = u64>) -> Self {
        let mut tree = vec![0];
        tree.extend(counts);
        let total = tree.iter().sum();
        for j in 1..tree.len() {
            let parent = j + lowbit(j);
            if parent < tree.len() {
                tree[parent] += tree[j];
            }
        }
        Self { tree, total }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.tree.len() - 1
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Appends a slot holding `count`.
    pub fn push(&mut self, count: u64) {
        let j = self.tree.len();
        // A new node covers (j - lowbit(j), j]: the slots before it are already summed.
        let covered = self.prefix(j - 1) - self.prefix(j - lowbit(j));
        self.tree.push(covered + count);
        self.total += count;
    }

    /// Adds `delta` (may be negative) to slot `i`; the slot must not go below zero.
    pub fn add(&mut self, i: usize, delta: i64) {
        let mut j = i + 1;
        while j < self.tree.len() {
            self.tree[j] = self.tree[j].wrapping_add_signed(delta);
            j += lowbit(j);
        }
        self.total = self.total.wrapping_add_signed(delta);
    }

    /// Sum of slots `[0, i)`.
    pub fn prefix(&self, i: usize) -> u64 {
        let mut j = i.min(self.len());
        let mut sum = 0;
        while j > 0 {
            sum += self.tree[j];
            j -= lowbit(j);
        }
        sum
    }

    /// The slot holding unit `k` (0-based) and how many units of that slot come before it.
    pub fn select(&self, k: u64) -> Option<(usize, u64)> {
        if k >= self.total {
            return None;
        }
        let mut pos = 0usize;
        let mut remaining = k;
        let mut step = self.len().next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next < self.tree.len() && self.tree[next] <= remaining {
                pos = next;
                remaining -= self.tree[next];
            }
            step /= 2;
        }
        Some((pos, remaining))
    }

    pub fn heap_bytes(&self) -> usize {
        self.tree.capacity() * std::mem::size_of::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_naive_model() {
        let mut state = 7u64;
        let mut rnd = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut tree = Fenwick::default();
        let mut model: Vec<u64> = Vec::new();
        for round in 0..2000 {
            if model.is_empty() || rnd() % 3 == 0 {
                let c = rnd() % 5;
                tree.push(c);
                model.push(c);
            } else {
                let i = (rnd() as usize) % model.len();
                let delta = (rnd() % 7) as i64 - (model[i].min(3) as i64);
                tree.add(i, delta);
                model[i] = (model[i] as i64 + delta) as u64;
            }
            if round % 50 == 0 {
                let mut sum = 0;
                for (i, &c) in model.iter().enumerate() {
                    assert_eq!(tree.prefix(i), sum);
                    for unit in 0..c {
                        assert_eq!(tree.select(sum + unit), Some((i, unit)));
                    }
                    sum += c;
                }
                assert_eq!(tree.total(), sum);
                assert_eq!(tree.select(sum), None);
            }
        }
        let rebuilt = Fenwick::from_counts(model.iter().copied());
        assert_eq!(rebuilt.total(), tree.total());
        assert_eq!(
            rebuilt.tree, tree.tree,
            "the same tree as pushing one by one"
        );
    }
}
