//! seatq: a virtual waiting room and seat inventory for flash sales, as a Redis module.
//!
//! Layout: `event` (the aggregate one key holds) with its `queue`, `admission` and `seats`
//! decisions and its `upkeep` are plain Rust over the `collections`; `journal`, `replication`
//! and `persistence` encode it; `transaction` (the one write path), `schedule` and `timer`,
//! `commands`, `datatype`, `metrics` and `info` connect it to Redis through `ffi`, the only
//! place with unsafe code; `module` is the entry point.
// The Redis-facing modules are only reachable from the module entry point, which unit-test
// builds leave out (they use the system allocator, not Redis').
#![cfg_attr(test, allow(dead_code))]

mod admission;
mod arg_list;
mod collections;
mod commands;
mod config;
mod datatype;
mod entry_id;
mod error;
mod event;
mod ffi;
mod info;
mod journal;
mod metrics;
#[cfg(not(test))]
mod module;
mod persistence;
mod queue;
mod random;
mod replication;
mod schedule;
mod seats;
mod secret;
mod timer;
mod transaction;
mod upkeep;
