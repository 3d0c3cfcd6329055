//! seatq: a virtual waiting room and seat inventory for flash sales, as a Redis module.
//!
//! Layout: `event` (the aggregate one key holds) and its `queue` logic are plain Rust;
//! `persistence` and `replication` encode it; `datatype`, `store`, `journal`, `timer` and
//! `commands` connect it to Redis through `ffi`; `module` is the entry point.
// The Redis-facing modules are only reachable from the module entry point, which unit-test
// builds leave out (they use the system allocator, not Redis').
#![cfg_attr(test, allow(dead_code))]

mod admission;
mod arg_list;
mod commands;
mod config;
mod datatype;
mod entry_id;
mod error;
mod event;
mod ffi;
mod heap;
mod journal;
mod metrics;
#[cfg(not(test))]
mod module;
mod persistence;
mod queue;
mod replication;
mod seats;
mod store;
mod timer;
