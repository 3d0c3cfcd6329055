//! A worker's picture of the seats, as the seat-map page its users look at would show it.

use seatq_testkit::rng::Rng;

use crate::sale::SEATS_PER_ROW;

/// A worker's seat map is read again when older than this.
pub const SEAT_MAP_MAX_AGE_US: u64 = 250_000;

/// A worker's picture of which seats are available, as a seat-map page would show it.
pub struct SeatMap {
    pub available: Vec<bool>,
    pub refreshed_at: Option<u64>,
}

impl SeatMap {
    pub fn is_stale(&self, now: u64) -> bool {
        self.refreshed_at
            .is_none_or(|at| now >= at + SEAT_MAP_MAX_AGE_US)
    }

    /// Up to `wants` adjacent available seats in one row, from a random place on the map; the
    /// seats are marked taken so that this worker's other users look elsewhere.
    pub fn pick(&mut self, wants: usize, rng: &mut Rng) -> Option<Vec<usize>> {
        let n = self.available.len();
        let start = rng.below(n as u64) as usize;
        let first = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| self.available[i])?;
        let row_end = ((first / SEATS_PER_ROW + 1) * SEATS_PER_ROW).min(n);
        let seats: Vec<usize> = (first..row_end)
            .take_while(|&i| self.available[i])
            .take(wants)
            .collect();
        for &s in &seats {
            self.available[s] = false;
        }
        Some(seats)
    }
}
