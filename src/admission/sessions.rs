//! Admitted sessions: who was let in, with which pass, until when. A pass is 128 random bits
//! bound to one user; the number of live sessions is what CAPACITY caps.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::entry_id::EntryId;

pub type Pass = [u8; 16];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub user: Box<[u8]>,
    pub pass: Pass,
    pub expires_at: u64,
}

#[derive(Default)]
pub struct Sessions {
    pub by_ticket: BTreeMap<EntryId, Session>,
    by_pass: HashMap<Pass, EntryId>,
    by_user: HashMap<Box<[u8]>, EntryId>,
    deadlines: BTreeSet<(u64, EntryId)>,
}

pub fn pass_to_hex(pass: &Pass) -> String {
    pass.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn pass_from_hex(text: &[u8]) -> Option<Pass> {
    if text.len() != 32 {
        return None;
    }
    let mut pass = [0u8; 16];
    for (i, pair) in text.chunks(2).enumerate() {
        let digits = std::str::from_utf8(pair).ok()?;
        pass[i] = u8::from_str_radix(digits, 16).ok()?;
    }
    Some(pass)
}

impl Sessions {
    pub fn insert(&mut self, ticket: EntryId, session: Session) {
        self.by_pass.insert(session.pass, ticket);
        self.by_user.insert(session.user.clone(), ticket);
        self.deadlines.insert((session.expires_at, ticket));
        self.by_ticket.insert(ticket, session);
    }

    pub fn remove(&mut self, ticket: EntryId) -> Option<Session> {
        let session = self.by_ticket.remove(&ticket)?;
        // The user may already have a newer session (re-admitted after this pass lapsed but
        // before the timer ended it): only drop index entries that still point here.
        if self.by_pass.get(&session.pass) == Some(&ticket) {
            self.by_pass.remove(&session.pass);
        }
        if self.by_user.get(&session.user) == Some(&ticket) {
            self.by_user.remove(&session.user);
        }
        self.deadlines.remove(&(session.expires_at, ticket));
        Some(session)
    }

    pub fn get(&self, ticket: EntryId) -> Option<&Session> {
        self.by_ticket.get(&ticket)
    }

    pub fn of_user(&self, user: &[u8]) -> Option<EntryId> {
        self.by_user.get(user).copied()
    }

    pub fn of_pass(&self, pass: &Pass) -> Option<EntryId> {
        self.by_pass.get(pass).copied()
    }

    /// Sessions whose pass expired at or before `now`, earliest first.
    pub fn lapsed(&self, now: u64) -> impl Iterator<Item = EntryId> + '_ {
        self.deadlines
            .range(..=(now, EntryId::new(u64::MAX, u64::MAX)))
            .map(|&(_, t)| t)
    }

    /// Sessions still live at `now` (what CAPACITY counts).
    pub fn live(&self, now: u64) -> usize {
        self.by_ticket.len() - self.lapsed(now).count()
    }

    /// The earliest pass expiry after `now`.
    pub fn next_expiry(&self, now: u64) -> Option<u64> {
        self.deadlines
            .range((now + 1, EntryId::default())..)
            .next()
            .map(|&(t, _)| t)
    }

    pub fn len(&self) -> usize {
        self.by_ticket.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_follow_inserts_and_removals() {
        let mut s = Sessions::default();
        let t = EntryId::new(1, 0);
        s.insert(
            t,
            Session {
                user: b"u".to_vec().into(),
                pass: [7; 16],
                expires_at: 100,
            },
        );
        s.insert(
            EntryId::new(2, 0),
            Session {
                user: b"v".to_vec().into(),
                pass: [8; 16],
                expires_at: 200,
            },
        );
        assert_eq!(
            (
                s.of_user(b"u"),
                s.of_pass(&[7; 16]),
                s.live(99),
                s.live(100)
            ),
            (Some(t), Some(t), 2, 1)
        );
        assert_eq!(s.next_expiry(100), Some(200));
        s.remove(t);
        assert_eq!(
            (s.of_user(b"u"), s.of_pass(&[7; 16]), s.len()),
            (None, None, 1)
        );
        let hex = pass_to_hex(&[0xab; 16]);
        assert_eq!(pass_from_hex(hex.as_bytes()), Some([0xab; 16]));
        assert_eq!(pass_from_hex(b"zz"), None);
        assert_eq!(pass_from_hex(&[b'g'; 32]), None);
    }
}
