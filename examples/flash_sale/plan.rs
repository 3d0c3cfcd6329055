//! What each user will do, drawn from the seed before the sale starts.

use std::time::Duration;

use seatq_testkit::rng::Rng;

use crate::sale::USER_LIMIT;

// What the users do, in percent.
pub const IDEMPOTENCY_PCT: u64 = 50;
pub const RETRY_JOIN_PCT: u64 = 10; // of the users with an idempotency key
pub const LEAVE_WHILE_WAITING_PCT: u64 = 5;
pub const ABANDON_WAITING_PCT: u64 = 3;
pub const NO_SHOW_PCT: u64 = 4;
pub const BROWSE_AND_LEAVE_PCT: u64 = 2;
pub const ABANDON_HOLD_PCT: u64 = 10;
pub const GREEDY_PCT: u64 = 3;
/// Users who keep their session alive for the whole sale (they arrive first, claim, and poll
/// until everyone else is done), then check that it still answers by USER, after the line has
/// compacted the old tickets. Only with at least `LINGER_MIN_USERS` users.
pub const LINGERERS: u32 = 10;
/// Users who arrive first and leave at once: their tickets are the oldest tombstones, whose
/// disappearance (`NO_SUCH_TICKET`) shows that compaction happened.
pub const PROBES: u32 = 10;
pub const LINGER_MIN_USERS: usize = 1000;
/// The line compacts when it keeps more tombstones (ended tickets) than half of
/// max(100,000, waiting), by a segment's worth (1024 serials).
pub const COMPACTION_THRESHOLD: u64 = 100_000 / 2 + 1024;

// Ranges the users draw from: admission to the first hold, hold to confirm (well within
// HOLD-TTL), join to its retry, and how long an impatient user waits before leaving or closing
// the tab.
pub const PAGE_LOAD_US: (u64, u64) = (20_000, 100_000);
const THINK_US: (u64, u64) = (100_000, 600_000);
pub const RETRY_JOIN_US: (u64, u64) = (5_000, 50_000);
const GIVE_UP_AFTER_US: (u64, u64) = (200_000, 5_000_000);

/// What a waiting user does besides polling.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WaitingFate {
    /// Polls until called.
    Stays,
    /// Sends QUEUE.LEAVE after this long.
    Leaves(u64),
    /// Stops polling after this long (closes the tab): the ticket must lapse on its own.
    Abandons(u64),
}

/// What a called user does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CalledFate {
    /// Claims, holds, confirms.
    Buys,
    /// Never claims: the session must end as a no-show after CLAIM-TTL.
    NoShow,
    /// Claims, looks, and leaves (QUEUE.LEAVE ends the session).
    BrowsesAndLeaves,
    /// Claims and holds, then closes the tab: the hold must come back after HOLD-TTL and the
    /// session end when its pass expires.
    AbandonsHold,
    /// Claims and keeps the session alive until the end of the sale (see `LINGERERS`).
    Lingers,
}

/// What a user will do, drawn from the seed before the sale starts.
pub struct Plan {
    pub arrives_at_us: u64,
    pub wants: usize,
    pub greedy: bool,
    pub idempotency: bool,
    pub retries_join: bool,
    pub waiting: WaitingFate,
    pub called: CalledFate,
    /// Leaves right after joining (see `PROBES`).
    pub probe: bool,
    /// The fixed interval between polls (`--poll-ms`); None: `retry_after_ms`.
    pub poll_us: Option<u64>,
    pub think_us: u64,
}

impl Plan {
    pub fn draw(
        seed: u64,
        user: u32,
        users: usize,
        arrival: Duration,
        poll_ms: Option<(u64, u64)>,
    ) -> Plan {
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
        let special = users >= LINGER_MIN_USERS && user < LINGERERS + PROBES;
        let lingers = special && user < LINGERERS;
        let waiting = match rng.below(100) {
            _ if special => WaitingFate::Stays,
            n if n < LEAVE_WHILE_WAITING_PCT => WaitingFate::Leaves(rng.between(GIVE_UP_AFTER_US)),
            n if n < LEAVE_WHILE_WAITING_PCT + ABANDON_WAITING_PCT => {
                WaitingFate::Abandons(rng.between(GIVE_UP_AFTER_US))
            }
            _ => WaitingFate::Stays,
        };
        let called = match rng.below(100) {
            _ if lingers => CalledFate::Lingers,
            n if n < NO_SHOW_PCT => CalledFate::NoShow,
            n if n < NO_SHOW_PCT + BROWSE_AND_LEAVE_PCT => CalledFate::BrowsesAndLeaves,
            n if n < NO_SHOW_PCT + BROWSE_AND_LEAVE_PCT + ABANDON_HOLD_PCT => {
                CalledFate::AbandonsHold
            }
            _ => CalledFate::Buys,
        };
        let arrives_at_us = rng.below(arrival.as_micros() as u64);
        let retries_join = idempotency && rng.chance(RETRY_JOIN_PCT);
        let poll_us = poll_ms.map(|range| rng.between(range) * 1000);
        Plan {
            // The special users are the first in line.
            arrives_at_us: if special { 0 } else { arrives_at_us },
            wants,
            greedy,
            idempotency,
            retries_join: retries_join && !special,
            waiting,
            called,
            probe: special && !lingers,
            poll_us,
            think_us: rng.between(THINK_US),
        }
    }
}
