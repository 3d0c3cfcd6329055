//! Admitted sessions: who the server let in, with which pass, until when. A session starts when
//! the server admits a ticket (its user must claim it within CLAIM-TTL), lives until its pass
//! expires (renewable up to a maximum) and counts against CAPACITY while live. Sessions are
//! kept apart from the waiting line, so nothing that happens to the line (compaction of old
//! tickets) can lose one. A user has at most one session.

use std::collections::{BTreeMap, BTreeSet};

use crate::collections::sharded::ShardedMap;
use crate::queue::line::Serial;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub user: Box<[u8]>,
    pub admitted_at: u64,
    /// Claimed by the user (QUEUE.ADMIT) before `claim_deadline`.
    pub claimed: bool,
    pub claim_deadline: u64,
    pub expires_at: u64,
    /// Renewals extend `expires_at` up to this.
    pub max_expires_at: u64,
    /// The signed pass (a JWT) currently issued for the session.
    pub pass: Box<str>,
}

impl Session {
    /// When the session ends unless something happens: the claim deadline until it is claimed,
    /// then its pass expiry.
    pub fn deadline(&self) -> u64 {
        if self.claimed {
            self.expires_at
        } else {
            self.claim_deadline.min(self.expires_at)
        }
    }

    pub fn live(&self, now: u64) -> bool {
        self.deadline() > now
    }
}

#[derive(Default)]
pub struct Sessions {
    by_serial: BTreeMap<Serial, Session>,
    by_user: ShardedMap<Box<[u8]>, Serial>,
    /// (deadline, serial) of every session.
    deadlines: BTreeSet<(u64, Serial)>,
    unclaimed: usize,
    /// Heap bytes of the sessions, kept as they change (QUEUE.INFO visits none of them).
    bytes: usize,
}

/// About what a session costs on the heap: its entries in the three indexes, user and pass.
fn session_bytes(session: &Session) -> usize {
    160 + 2 * session.user.len() + session.pass.len()
}

impl Sessions {
    /// Adds a session; refused (nothing changes) if the ticket or the user already has one.
    pub fn insert(&mut self, serial: Serial, session: Session) -> Result<(), &'static str> {
        if self.by_serial.contains_key(&serial) || self.by_user.get(&session.user).is_some() {
            return Err("the ticket or its user already has a session");
        }
        self.by_user.insert(session.user.clone(), serial);
        self.deadlines.insert((session.deadline(), serial));
        self.unclaimed += usize::from(!session.claimed);
        self.bytes += session_bytes(&session);
        self.by_serial.insert(serial, session);
        Ok(())
    }

    pub fn remove(&mut self, serial: Serial) -> Option<Session> {
        let session = self.by_serial.remove(&serial)?;
        self.by_user.remove(&session.user);
        self.deadlines.remove(&(session.deadline(), serial));
        self.unclaimed -= usize::from(!session.claimed);
        self.bytes -= session_bytes(&session);
        Some(session)
    }

    /// Changes a session through `change`, keeping the deadline index right.
    pub fn update(&mut self, serial: Serial, change: impl FnOnce(&mut Session)) -> bool {
        let Some(session) = self.by_serial.get_mut(&serial) else {
            return false;
        };
        self.deadlines.remove(&(session.deadline(), serial));
        self.unclaimed -= usize::from(!session.claimed);
        self.bytes -= session_bytes(session);
        change(session);
        self.unclaimed += usize::from(!session.claimed);
        self.bytes += session_bytes(session);
        self.deadlines.insert((session.deadline(), serial));
        true
    }

    pub fn get(&self, serial: Serial) -> Option<&Session> {
        self.by_serial.get(&serial)
    }

    pub fn of_user(&self, user: &[u8]) -> Option<Serial> {
        self.by_user.get(user).copied()
    }

    /// Sessions whose deadline passed at `now`, earliest first.
    pub fn lapsed(&self, now: u64) -> impl Iterator<Item = Serial> + '_ {
        self.deadlines
            .range(..=(now, Serial::MAX))
            .map(|&(_, serial)| serial)
    }

    /// Sessions not claimed yet (including any whose claim window passed a moment ago and that
    /// upkeep has not ended yet).
    pub fn unclaimed(&self) -> usize {
        self.unclaimed
    }

    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    pub fn len(&self) -> usize {
        self.by_serial.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (Serial, &Session)> {
        self.by_serial.iter().map(|(&serial, s)| (serial, s))
    }

    pub fn heap_bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(user: &str, claim_deadline: u64, expires_at: u64) -> Session {
        Session {
            user: user.as_bytes().into(),
            admitted_at: 0,
            claimed: false,
            claim_deadline,
            expires_at,
            max_expires_at: expires_at * 2,
            pass: "p".into(),
        }
    }

    #[test]
    fn the_kept_heap_bytes_match_a_visit_of_every_session() {
        let visited = |s: &Sessions| s.by_serial.values().map(session_bytes).sum::<usize>();
        let mut s = Sessions::default();
        for i in 0..50u32 {
            s.insert(i, session(&format!("user-{i}"), 30, 100)).unwrap();
        }
        assert!(s.insert(3, session("user-3", 30, 100)).is_err());
        assert_eq!(s.heap_bytes(), visited(&s));
        for i in (0..50).step_by(3) {
            s.update(i, |x| x.pass = "a much longer pass than before".into());
        }
        assert_eq!(s.heap_bytes(), visited(&s));
        for i in (0..50).step_by(2) {
            s.remove(i);
        }
        assert_eq!(s.heap_bytes(), visited(&s));
        assert!(s.heap_bytes() > 0);
    }

    #[test]
    fn one_session_per_user_and_deadlines_follow_claims() {
        let mut s = Sessions::default();
        s.insert(1, session("u", 30, 100)).unwrap();
        s.insert(2, session("v", 50, 200)).unwrap();
        assert!(
            s.insert(3, session("u", 30, 100)).is_err(),
            "a second session for u"
        );
        assert!(s.insert(1, session("w", 30, 100)).is_err());
        assert_eq!(
            (s.of_user(b"u"), s.lapsed(29).count(), s.lapsed(30).count()),
            (Some(1), 0, 1)
        );
        assert_eq!(s.next_deadline(), Some(30));
        assert!(s.update(1, |x| x.claimed = true));
        assert_eq!(
            s.next_deadline(),
            Some(50),
            "a claimed session lives until its pass expires"
        );
        assert_eq!(s.lapsed(60).count(), 1);
        assert_eq!(s.unclaimed(), 1);
        s.remove(1);
        assert_eq!((s.of_user(b"u"), s.len()), (None, 1));
        s.insert(3, session("u", 30, 100)).unwrap();
    }
}
