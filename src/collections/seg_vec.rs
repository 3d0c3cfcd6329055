//! A vector in fixed-size segments: indexing is O(1), growing never copies the elements already
//! stored (a `Vec` doubling copies all of them in one call), and elements can be taken from the
//! front (a queue) while the others keep their indices.

use std::collections::VecDeque;

const SEGMENT: usize = 4096;

pub struct SegVec<T> {
    segments: VecDeque<VecDeque<T>>,
    /// Index of the first element still stored.
    first: usize,
    /// Index the next pushed element gets.
    end: usize,
}

impl<T> Default for SegVec<T> {
    fn default() -> Self {
        Self {
            segments: VecDeque::new(),
            first: 0,
            end: 0,
        }
    }
}

impl<T> SegVec<T> {
    /// Elements stored.
    pub fn len(&self) -> usize {
        self.end - self.first
    }

    /// The index of the first stored element.
    pub fn first_index(&self) -> usize {
        self.first
    }

    /// The index the next push gets.
    pub fn end_index(&self) -> usize {
        self.end
    }

    pub fn push(&mut self, value: T) {
        if self.end % SEGMENT == 0 || self.segments.is_empty() {
            // A lone segment grows as needed (copying at most a segment), so that a small
            // vector costs what it holds; once there are more, each is reserved whole.
            let segment = if self.segments.is_empty() {
                VecDeque::new()
            } else {
                VecDeque::with_capacity(SEGMENT)
            };
            self.segments.push_back(segment);
        }
        self.segments
            .back_mut()
            .expect("a segment")
            .push_back(value);
        self.end += 1;
    }

    pub fn pop_front(&mut self) -> Option<T> {
        let segment = self.segments.front_mut()?;
        let value = segment.pop_front()?;
        self.first += 1;
        if segment.is_empty() {
            self.segments.pop_front();
        }
        Some(value)
    }

    pub fn front(&self) -> Option<&T> {
        self.segments.front()?.front()
    }

    fn locate(&self, i: usize) -> Option<(usize, usize)> {
        if i < self.first || i >= self.end {
            return None;
        }
        // The first segment may be partly popped: count from its nominal start.
        let start = self.first - self.first % SEGMENT;
        let s = (i - start) / SEGMENT;
        let within = if s == 0 {
            i - self.first
        } else {
            (i - start) % SEGMENT
        };
        Some((s, within))
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        let (s, within) = self.locate(i)?;
        self.segments.get(s)?.get(within)
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        let (s, within) = self.locate(i)?;
        self.segments.get_mut(s)?.get_mut(within)
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.segments.iter().flatten()
    }

    pub fn heap_bytes(&self) -> usize {
        self.segments.iter().map(VecDeque::capacity).sum::<usize>() * std::mem::size_of::<T>()
            + self.segments.capacity() * std::mem::size_of::<VecDeque<T>>()
    }
}

impl<T> std::ops::Index<usize> for SegVec<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        self.get(i).expect("SegVec index in range")
    }
}

impl<T> std::ops::IndexMut<usize> for SegVec<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        self.get_mut(i).expect("SegVec index in range")
    }
}

impl<T> FromIterator<T> for SegVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut v = Self::default();
        for x in iter {
            v.push(x);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_across_segments() {
        let mut v: SegVec<usize> = (0..SEGMENT * 2 + 5).collect();
        assert_eq!(v.len(), SEGMENT * 2 + 5);
        assert_eq!(v[SEGMENT], SEGMENT);
        v[SEGMENT * 2 + 4] = 7;
        assert_eq!(v.get(SEGMENT * 2 + 4), Some(&7));
        assert_eq!(v.get(SEGMENT * 2 + 5), None);
        assert_eq!(v.iter().count(), SEGMENT * 2 + 5);
    }

    #[test]
    fn a_small_vector_costs_what_it_holds() {
        let mut v: SegVec<[u64; 4]> = SegVec::default();
        v.push([0; 4]);
        assert!(v.heap_bytes() < 1024, "{}", v.heap_bytes());
        for _ in 1..SEGMENT * 3 {
            v.push([0; 4]);
        }
        let whole = 3 * SEGMENT * 32;
        assert!(v.heap_bytes() >= whole && v.heap_bytes() < whole + 1024);
    }

    #[test]
    fn a_queue_keeps_indices_stable() {
        let mut v = SegVec::default();
        let mut model = std::collections::VecDeque::new();
        let mut next = 0usize;
        for round in 0..30_000 {
            if round % 3 == 2 {
                assert_eq!(v.pop_front(), model.pop_front().map(|(_, x)| x));
            } else {
                v.push(next * 10);
                model.push_back((next, next * 10));
                next += 1;
            }
            if round % 1001 == 0 {
                for &(i, x) in &model {
                    assert_eq!(v.get(i), Some(&x));
                }
                assert_eq!(v.len(), model.len());
                assert_eq!(v.front(), model.front().map(|(_, x)| x));
                if let Some(&(first, _)) = model.front() {
                    assert_eq!(v.first_index(), first);
                    assert_eq!(v.get(first.wrapping_sub(1)), None);
                }
            }
        }
    }
}
