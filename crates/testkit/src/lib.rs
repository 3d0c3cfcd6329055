//! seatq's dev-only kit, shared by the integration tests (`tests/`), the benchmark (`benches/`)
//! and the flash-sale simulator (`examples/`): real servers with the module loaded (`server`,
//! `cluster`) and small typed wrappers around seatq replies (`reply`, `commands`, `journal`).
//! Tests take the helpers with `use seatq_testkit::*;`.

pub mod cluster;
pub mod commands;
pub mod journal;
pub mod reply;
pub mod server;

pub use commands::{assert_refused_unchanged, digest, enqueue, err, ok, run, status};
pub use journal::{field, journal};
pub use reply::{error_line, int, items, record, text};
pub use server::{for_each_server, wait_until, Server, ServerKind};
