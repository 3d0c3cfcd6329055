//! The deadline index across events: for every event key (database, name), when its upkeep is
//! next due. The timer takes only what is due, so events with nothing due cost nothing per
//! tick, however many there are.
//!
//! Entries are added whenever an event is written, loaded (RDB, full sync, RESTORE, MIGRATE),
//! renamed, copied or moved, and follow SWAPDB and FLUSHDB. An entry whose key no longer holds
//! an event is dropped when it comes due.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

type Name = Box<[u8]>;

#[derive(Default)]
pub struct Schedule {
    by_due: BTreeSet<(u64, i32, Name)>,
    by_key: HashMap<i32, HashMap<Name, u64>>,
}

impl Schedule {
    /// Sets when `(db, key)` is next due (None: never, until its next change).
    pub fn set(&mut self, db: i32, key: &[u8], due: Option<u64>) {
        let keys = self.by_key.entry(db).or_default();
        match (keys.get_mut(key), due) {
            (Some(old), Some(due)) if *old == due => {}
            (Some(old), Some(due)) => {
                self.by_due.remove(&(*old, db, key.into()));
                *old = due;
                self.by_due.insert((due, db, key.into()));
            }
            (Some(old), None) => {
                self.by_due.remove(&(*old, db, key.into()));
                keys.remove(key);
            }
            (None, Some(due)) => {
                keys.insert(key.into(), due);
                self.by_due.insert((due, db, key.into()));
            }
            (None, None) => {}
        }
    }

    /// Takes the earliest entry due at `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<(i32, Name)> {
        let (due, _, _) = self.by_due.first()?;
        if *due > now {
            return None;
        }
        let (_, db, key) = self.by_due.pop_first()?;
        if let Some(keys) = self.by_key.get_mut(&db) {
            keys.remove(&key);
        }
        Some((db, key))
    }

    pub fn next_due(&self) -> Option<u64> {
        self.by_due.first().map(|(due, _, _)| *due)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_due.len()
    }

    pub fn swap_db(&mut self, a: i32, b: i32) {
        let entries: Vec<(u64, i32, Name)> = self
            .by_due
            .iter()
            .filter(|(_, db, _)| *db == a || *db == b)
            .cloned()
            .collect();
        for (due, db, key) in entries {
            self.by_due.remove(&(due, db, key.clone()));
            let other = if db == a { b } else { a };
            self.by_due.insert((due, other, key));
        }
        let (ka, kb) = (self.by_key.remove(&a), self.by_key.remove(&b));
        if let Some(keys) = ka {
            self.by_key.insert(b, keys);
        }
        if let Some(keys) = kb {
            self.by_key.insert(a, keys);
        }
    }

    /// Forgets a database's entries (-1: all).
    pub fn flush_db(&mut self, db: i32) {
        if db < 0 {
            *self = Self::default();
            return;
        }
        self.by_due.retain(|(_, d, _)| *d != db);
        self.by_key.remove(&db);
    }
}

static SCHEDULE: Mutex<Option<Schedule>> = Mutex::new(None);

/// Runs `f` on the process-wide schedule.
pub fn with<R>(f: impl FnOnce(&mut Schedule) -> R) -> R {
    let mut guard = SCHEDULE.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(Schedule::default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_due_entries_come_out_in_order() {
        let mut s = Schedule::default();
        s.set(0, b"a", Some(30));
        s.set(0, b"b", Some(10));
        s.set(1, b"a", Some(20));
        s.set(0, b"a", Some(5));
        s.set(0, b"c", None);
        assert_eq!(s.len(), 3);
        assert_eq!(s.pop_due(4), None);
        assert_eq!(s.pop_due(100), Some((0, b"a".to_vec().into())));
        assert_eq!(s.pop_due(100), Some((0, b"b".to_vec().into())));
        s.set(1, b"a", None);
        assert_eq!(s.pop_due(100), None);
        assert_eq!(s.next_due(), None);
    }

    #[test]
    fn follows_swapdb_and_flushdb() {
        let mut s = Schedule::default();
        s.set(0, b"x", Some(1));
        s.set(3, b"y", Some(2));
        s.swap_db(0, 3);
        assert_eq!(s.pop_due(10), Some((3, b"x".to_vec().into())));
        s.set(3, b"x", Some(4));
        s.flush_db(0);
        assert_eq!(s.pop_due(10), Some((3, b"x".to_vec().into())));
        s.set(5, b"z", Some(1));
        s.flush_db(-1);
        assert_eq!(s.len(), 0);
    }
}
