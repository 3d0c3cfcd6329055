//! What crosses the wire between a shard and the coordinator, as plain values: `SHARD.FRONT`'s
//! reply (a `Front`), `SHARD.GRANT`'s arguments (a `Grant`) and reply (a `GrantReply`).

use crate::ranks::RankTable;

/// A shard's front and counters, read with `SHARD.FRONT`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Front {
    /// The shard's clock when it answered (ms), and in µs when it can tell (0: it cannot),
    /// for the coordinator's clock offset estimate.
    pub now_ms: u64,
    pub now_us: u64,
    pub epoch: u64,
    /// Shard clock, ms; the lease holds while `now_ms < lease_until`.
    pub lease_until: u64,
    pub ceiling: u64,
    /// The live sessions it may have without a lease, as its last grant named (None: not
    /// named, CAPACITY/K applies).
    pub fallback_capacity: Option<u64>,
    pub admitted: u64,
    /// Live sessions (claimed or not, not ended yet).
    pub sessions: u64,
    pub waiting: u64,
    /// Waiting tickets in the (opened) pre-queue order: the first ones of `joins`.
    pub prequeue: u64,
    /// Open and not paused: the shard calls when allowed.
    pub calling: bool,
    pub rate: u64,
    pub burst: u64,
    pub capacity: u64,
    pub shards: u64,
    pub shard_index: u64,
    /// Join times (µs, the shard's clock) of its first live waiting tickets in line order;
    /// pre-queue tickets first, as 0 (their order is a shuffle, not a time).
    pub joins: Vec<u64>,
    /// The list stopped at the count asked for before the end of the line.
    pub more: bool,
    /// (position among waiting tickets, 0-based; join time µs) spread over the line, for the
    /// rank table (asked for with SAMPLES).
    pub samples: Vec<(u64, u64)>,
}

/// What the coordinator grants a shard (`SHARD.GRANT key epoch lease-ms ceiling [RANKS ...]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grant {
    pub epoch: u64,
    /// The lease lasts this long from when the shard applies the grant.
    pub lease_ms: u64,
    /// The shard may call while its `admitted_total` is below this.
    pub ceiling: u64,
    /// Its part of CAPACITY should the lease lapse (None without a CAPACITY).
    pub capacity: Option<u64>,
    /// Spread the calls it adds over this long (the tick), 0: at once.
    pub spread_ms: u64,
    pub ranks: Option<RankTable>,
}

/// What the shard answers to a grant: its state as the grant applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantReply {
    pub now_ms: u64,
    pub lease_until: u64,
    pub admitted: u64,
    pub sessions: u64,
}
