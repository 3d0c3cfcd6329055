//! What each user will do, drawn from the seed before the sale starts.

use std::time::Duration;

use seatq_testkit::rng::Rng;

use crate::sale::USER_LIMIT;

// What the users do, in percent.
pub const IDEMPOTENCY_PCT: u64 = 50;
pub const RETRY_JOIN_PCT: u64 = 10; // of the users with an idempotency key
pub const LEAVE_WHILE_WAITING_PCT: u64 = 5;
pub const ABANDON_PCT: u64 = 10;
pub const GREEDY_PCT: u64 = 3;

// Ranges the users draw from: admission to the first hold, hold to confirm (well within
// HOLD-TTL), join to its retry, and how long an impatient user waits before leaving.
pub const PAGE_LOAD_US: (u64, u64) = (20_000, 100_000);
const THINK_US: (u64, u64) = (100_000, 600_000);
pub const RETRY_JOIN_US: (u64, u64) = (5_000, 50_000);
const LEAVE_AFTER_US: (u64, u64) = (200_000, 5_000_000);

/// What a user will do, drawn from the seed before the sale starts.
pub struct Plan {
    pub arrives_at_us: u64,
    pub wants: usize,
    pub greedy: bool,
    pub idempotency: bool,
    pub retries_join: bool,
    pub leaves_after_us: Option<u64>,
    pub abandons: bool,
    pub think_us: u64,
}

impl Plan {
    pub fn draw(seed: u64, user: u32, arrival: Duration) -> Plan {
        let mut rng = Rng::new(seed ^ (user as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let greedy = rng.chance(GREEDY_PCT);
        let wants = match rng.below(100) {
            _ if greedy => USER_LIMIT,
            0..=19 => 1,
            20..=64 => 2,
            65..=79 => 3,
            _ => 4,
        };
        let idempotency = rng.chance(IDEMPOTENCY_PCT);
        Plan {
            arrives_at_us: rng.below(arrival.as_micros() as u64),
            wants,
            greedy,
            idempotency,
            retries_join: idempotency && rng.chance(RETRY_JOIN_PCT),
            leaves_after_us: rng
                .chance(LEAVE_WHILE_WAITING_PCT)
                .then(|| rng.between(LEAVE_AFTER_US)),
            abandons: rng.chance(ABANDON_PCT),
            think_us: rng.between(THINK_US),
        }
    }
}
