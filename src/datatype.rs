//! The `seatq-evt` data type: an `Event` as Redis stores, persists, digests, copies and frees it.

use std::ffi::CStr;

use crate::event::Event;
use crate::ffi::value::{DigestSink, ModuleType, ModuleValue, RdbSink, RdbSource};
use crate::persistence::{self, ENCODING_VERSION};
use crate::replication::SNAPSHOT;
use crate::{metrics, schedule};

pub static EVENT_TYPE: ModuleType<Event> = ModuleType::new("seatq-evt", ENCODING_VERSION);

impl ModuleValue for Event {
    fn load(
        source: &mut RdbSource,
        version: i32,
        key: Option<(i32, &[u8])>,
    ) -> Result<Self, String> {
        let mut event = persistence::load(source, version)?;
        // Every path that brings an event into the keyspace without a seatq command (RDB load,
        // full sync, RESTORE, MIGRATE) passes here: its upkeep is due at once.
        event.upkeep_due = Some(0);
        if let Some((db, name)) = key {
            schedule::with(|s| s.set(db, name, Some(0)));
        }
        metrics::event_stored(&event);
        Ok(event)
    }

    fn save(&self, sink: &mut RdbSink) {
        persistence::save(self, sink);
    }

    fn digest(&self, sink: &mut DigestSink) {
        persistence::save(self, sink);
    }

    fn rewrite(&self, key: &[u8]) -> (&'static CStr, Vec<Vec<u8>>) {
        (
            c"SEATQ.APPLY",
            vec![
                key.to_vec(),
                SNAPSHOT.to_vec(),
                ENCODING_VERSION.to_string().into_bytes(),
                persistence::to_bytes(self),
            ],
        )
    }

    fn memory(&self) -> usize {
        self.heap_bytes()
    }

    fn free_effort(&self) -> usize {
        self.line.waiting()
            + self.line.tombstones()
            + self.idempotency.len()
            + self.inventory.seats.len()
            + self.inventory.holds.len()
            + self.inventory.buyers.len()
            + self.sessions.len()
    }

    fn copy(&self, _to: &[u8]) -> Option<Self> {
        let bytes = persistence::to_bytes(self);
        let mut copy = persistence::from_bytes(&bytes, ENCODING_VERSION).ok()?;
        copy.upkeep_due = Some(0);

        metrics::event_stored(&copy);
        Some(copy)
    }

    fn on_free(&self) {
        metrics::event_freed(self);
    }
}
