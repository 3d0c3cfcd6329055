//! seatq's sharded mode, the parts that are plain Rust: one copy of each rule, used by the
//! module (a shard's side), the coordinator (`seatq-coordinator`) and the simulation in the
//! benchmark (`--only shards`), so what is measured is what runs.
//!
//! - [`hash`]: which shard a user belongs to (the Python client has the same function);
//! - [`naming`]: the keys of a sharded event (shards, inventory, meta record, lease);
//! - [`gate`]: what a shard may call on its own: under a coordinator's lease, up to the granted
//!   ceiling; without one, a static share (RATE/K, BURST/K, CAPACITY/K);
//! - [`joins`]: a shard's join times by ticket serial (what the coordinator merges on);
//! - [`ranks`]: the rank table a shard estimates global positions from;
//! - [`front`]: what a shard reports (`SHARD.FRONT`) and is granted (`SHARD.GRANT`);
//! - [`planner`]: the coordinator's tick: merge the shards' fronts by join time, grant each
//!   shard its calls within the global RATE and CAPACITY, account for shards it cannot reach.

pub mod front;
pub mod gate;
pub mod hash;
pub mod joins;
pub mod naming;
pub mod planner;
pub mod ranks;

pub use front::{Front, Grant, GrantReply};
pub use gate::{Budget, Gate, Gcra, Lease, ShardCore};
pub use hash::shard_of;
pub use joins::JoinIndex;
pub use planner::{Order, Planner, PlannerConfig};
pub use ranks::RankTable;
