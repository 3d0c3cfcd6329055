//! A shard's join times by ticket serial. Serials are handed out in join order and join times
//! (the `joined` entry's ms) never decrease, so the times form a step function: one mark per
//! millisecond in which somebody joined, `(first serial of that ms, ms)`. A ticket's join time
//! is its mark's ms; inside a millisecond the shard's tickets are spread evenly
//! (`join_us`), which is what the coordinator merges on: the shards' clocks have millisecond
//! resolution, and at 100,000 joins per second a millisecond holds 100 of them.
//!
//! Marks of tickets no longer waiting are dropped (`trim`), so the index is at most one mark
//! per waiting ticket and one per millisecond of joining. It is rebuilt identically everywhere
//! from the `JOINED` effects.

use std::collections::VecDeque;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JoinIndex {
    marks: VecDeque<(u32, u64)>,
}

impl JoinIndex {
    /// A ticket joined at `ms` (serials and times in join order).
    pub fn record(&mut self, serial: u32, ms: u64) {
        match self.marks.back() {
            Some(&(last, at)) if at >= ms || last >= serial => {}
            _ => self.marks.push_back((serial, ms)),
        }
    }

    /// Rebuilds from stored marks (persistence); out-of-order marks are dropped.
    pub fn restore(marks: impl IntoIterator<Item = (u32, u64)>) -> Self {
        let mut index = Self::default();
        for (serial, ms) in marks {
            index.record(serial, ms);
        }
        index
    }

    pub fn marks(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.marks.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.marks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }

    /// The mark holding `serial`: its index.
    fn mark_of(&self, serial: u32) -> Option<usize> {
        let after = self.marks.partition_point(|&(s, _)| s <= serial);
        after.checked_sub(1)
    }

    pub fn join_ms(&self, serial: u32) -> Option<u64> {
        self.mark_of(serial).map(|i| self.marks[i].1)
    }

    /// The join time in microseconds: the mark's ms, plus the ticket's place among the
    /// `next_serial`-bounded tickets of that ms spread evenly over it.
    pub fn join_us(&self, serial: u32, next_serial: u32) -> Option<u64> {
        let i = self.mark_of(serial)?;
        Some(self.us_at(i, serial, next_serial))
    }

    fn us_at(&self, i: usize, serial: u32, next_serial: u32) -> u64 {
        let (first, ms) = self.marks[i];
        let end = self
            .marks
            .get(i + 1)
            .map_or(next_serial, |&(s, _)| s)
            .max(serial + 1);
        let n = u64::from(end - first);
        let j = u64::from(serial - first);
        ms * 1000 + (1000 * (2 * j + 1)) / (2 * n)
    }

    /// A reader for increasing serials (each lookup amortized O(1)).
    pub fn cursor(&self, next_serial: u32) -> Cursor<'_> {
        Cursor {
            index: self,
            at: 0,
            next_serial,
        }
    }

    /// Drops marks no waiting ticket needs: every mark wholly below `first_waiting`.
    pub fn trim(&mut self, first_waiting: u32) {
        while self.marks.len() >= 2 && self.marks[1].0 <= first_waiting {
            self.marks.pop_front();
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.marks.capacity() * std::mem::size_of::<(u32, u64)>()
    }
}

pub struct Cursor<'a> {
    index: &'a JoinIndex,
    at: usize,
    next_serial: u32,
}

impl Cursor<'_> {
    /// The join time (µs) of `serial`; serials must not decrease between calls.
    pub fn join_us(&mut self, serial: u32) -> Option<u64> {
        let marks = &self.index.marks;
        if marks.front().is_none_or(|&(s, _)| s > serial) {
            return None;
        }
        if self.at >= marks.len() || marks[self.at].0 > serial {
            self.at = self.index.mark_of(serial)?;
        }
        while self.at + 1 < marks.len() && marks[self.at + 1].0 <= serial {
            self.at += 1;
        }
        Some(self.index.us_at(self.at, serial, self.next_serial))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_by_serial_spread_within_a_millisecond() {
        let mut j = JoinIndex::default();
        for (serial, ms) in [(0, 5), (1, 5), (2, 5), (3, 5), (4, 9), (5, 12), (6, 12)] {
            j.record(serial, ms);
        }
        assert_eq!(j.len(), 3);
        assert_eq!(j.join_ms(3), Some(5));
        assert_eq!(j.join_us(0, 7), Some(5_125));
        assert_eq!(j.join_us(3, 7), Some(5_875));
        assert_eq!(j.join_us(4, 7), Some(9_500));
        assert_eq!(j.join_us(6, 7), Some(12_750));
        let mut c = j.cursor(7);
        let seq: Vec<u64> = (0..7).map(|s| c.join_us(s).unwrap()).collect();
        let direct: Vec<u64> = (0..7).map(|s| j.join_us(s, 7).unwrap()).collect();
        assert_eq!(seq, direct);
        assert!(seq.windows(2).all(|w| w[0] < w[1]), "{seq:?}");
        j.trim(4);
        assert_eq!(j.len(), 2);
        assert_eq!(j.join_ms(4), Some(9));
        assert_eq!(JoinIndex::restore(j.marks()), j);
        assert_eq!(JoinIndex::default().join_us(3, 4), None);
    }
}
