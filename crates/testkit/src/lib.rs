//! seatq's dev-only kit, shared by the integration tests (`tests/`), the benchmark (`benches/`)
//! and the flash-sale simulator (`examples/`):
//!
//! - `server`, `cluster`: real Redis 7.0 / Valkey 9.1 processes with the built module loaded;
//!   `clock`: their clocks set apart; `callgrind`: their instructions counted;
//! - `reply`, `commands`, `journal`: seatq's replies as Rust values, commands given as words,
//!   an event's journal, and the tests' assertions;
//! - `info`, `rng`, `stats`: INFO parsing, a seeded generator and percentiles for the
//!   benchmark and the simulator.
//!
//! Tests take the helpers with `use seatq_testkit::*;`.

pub mod callgrind;
pub mod clock;
pub mod cluster;
pub mod commands;
pub mod info;
pub mod journal;
pub mod reply;
pub mod rng;
pub mod server;
pub mod stats;

pub use commands::{assert_refused_unchanged, digest, enqueue, err, ok, run, settled, status};
pub use journal::{field, journal, JournalEntry};
pub use reply::{error_line, int, items, record, text};
pub use server::{for_each_server, wait_until, Server, ServerKind};
