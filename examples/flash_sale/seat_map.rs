//! The seat map users look at: one reading of every seat (SEAT.STATUS), shared by all workers
//! like a seat-map page served from a cache, and each worker's copy of it, on which it marks
//! the seats its own users just asked for.

use std::sync::Mutex;

use redis::{Connection, Value};
use seatq_testkit::rng::Rng;

use crate::reply::field_text;
use crate::sale::{Sale, SEATS_PER_ROW, SEAT_CHUNK};

/// A map of up to `SEATS_PER_AGE_STEP` seats is read again when older than this; a bigger map
/// proportionally less often (reading 100,000 seats costs the server about 140 ms).
const SEAT_MAP_MAX_AGE_US: u64 = 250_000;
const SEATS_PER_AGE_STEP: usize = 5_000;

/// How long a reading of a map of `seats` seats is used.
pub fn max_age_us(seats: usize) -> u64 {
    SEAT_MAP_MAX_AGE_US * seats.div_ceil(SEATS_PER_AGE_STEP).max(1) as u64
}

/// The latest reading of the seats, shared by the workers.
pub struct SharedSeatMap {
    inner: Mutex<Reading>,
}

struct Reading {
    available: Vec<bool>,
    /// Readings so far (0: none yet).
    version: u64,
    read_at_us: u64,
}

impl SharedSeatMap {
    pub fn new(seats: usize) -> SharedSeatMap {
        SharedSeatMap {
            inner: Mutex::new(Reading {
                available: vec![false; seats],
                version: 0,
                read_at_us: 0,
            }),
        }
    }

    pub fn is_stale(&self, now_us: u64) -> bool {
        let r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        r.version == 0 || now_us >= r.read_at_us + max_age_us(r.available.len())
    }

    pub fn readings(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).version
    }

    /// Reads every seat (one pipeline of SEAT.STATUS calls) and publishes the reading.
    pub fn refresh(
        &self,
        con: &mut Connection,
        sale: &Sale,
        now_us: u64,
    ) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        for chunk in sale.seat_names.chunks(SEAT_CHUNK) {
            pipe.cmd("SEAT.STATUS").arg(&sale.key).arg(chunk);
        }
        let replies: Vec<Value> = pipe.query(con)?;
        let mut available = Vec::with_capacity(sale.seat_names.len());
        for reply in &replies {
            if let Value::Array(records) = reply {
                available.extend(
                    records
                        .iter()
                        .map(|r| field_text(r, "state") == "available"),
                );
            }
        }
        if available.len() == sale.seat_names.len() {
            let mut r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            r.available = available;
            r.version += 1;
            r.read_at_us = now_us;
        }
        Ok(())
    }
}

/// A worker's copy of the map.
pub struct SeatMap {
    pub available: Vec<bool>,
    /// The shared reading this copy comes from (0: none yet).
    pub version: u64,
    /// When that reading was made (microseconds since the start).
    pub read_at_us: u64,
}

impl SeatMap {
    pub fn new(seats: usize) -> SeatMap {
        SeatMap {
            available: vec![false; seats],
            version: 0,
            read_at_us: 0,
        }
    }

    /// Takes the shared reading if it is newer than this copy.
    pub fn update(&mut self, shared: &SharedSeatMap) {
        let r = shared.inner.lock().unwrap_or_else(|e| e.into_inner());
        if r.version > self.version {
            self.available.clone_from(&r.available);
            self.version = r.version;
            self.read_at_us = r.read_at_us;
        }
    }

    /// When the next reading is due (microseconds since the start).
    pub fn next_reading_us(&self) -> u64 {
        self.read_at_us + max_age_us(self.available.len())
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
