//! Reading events written by the first release (encoding version 1) into today's model.
//!
//! Version 1 kept tickets by stream-style IDs in line order and admitted sessions by ticket ID;
//! today tickets have serials and sessions stand apart. Tickets get serials in line order (so
//! positions do not change), ended tickets keep their state (an admitted one with a live session
//! is a called ticket, without one it was dequeued), sessions count as claimed and keep their
//! 128-bit pass (still accepted, as the exact pass of the user's session). A session whose user
//! waits in the line again had lapsed (the first release let such a user join again before its
//! timer ended the session): it ends at conversion, its ticket `expired`, as that timer would
//! have ended it. Tickets clients hold in the old form no longer resolve: a client gets its
//! ticket again by joining again (one ticket per user) or is addressed by user. The journal goes
//! on under today's naming rule (the same stream for a key with a hash tag, a new one without).
//!
//! The event gets a secret derived from everything stored (a SHA-256 of the version 1 payload):
//! every server that converts the same stored event (a replica loading its own old RDB, an AOF
//! whose version 1 snapshot is replayed at each start) must derive the same tickets, and a
//! random draw per load would not. The payload holds the first release's random passes and the
//! clients' idempotency keys, but an event that had neither is derived from what its users and
//! operators sent (docs/upgrade.md says so).

use super::{get_count, get_id, load_config, load_history, load_inventory, Source, MAX_ITEMS};
use crate::admission::budget::AdmissionBudget;
use crate::admission::sessions::{Session, Sessions};
use crate::config::Setting;
use crate::entry_id::EntryId;
use crate::event::{Event, Phase, Totals};
use crate::queue::idempotency::{IdempotencyRecord, MAX_KEY_LEN};
use crate::queue::line::{EndState, Serial, Ticket, WaitingLine};
use crate::queue::payload::TicketPayload;
use crate::secret::EventSecret;
use sha2::{Digest, Sha256};

/// The effects of the first release's `SEATQ.APPLY`. They name tickets by their `<ms>-<seq>`
/// IDs, which converted events no longer know, so they cannot be replayed; none of today's
/// effects has one of these names.
pub const EFFECTS: [&[u8]; 15] = [
    b"JOIN",
    b"TOUCH",
    b"END",
    b"REMEMBER",
    b"PURGE",
    b"CONFIG",
    b"SEATS",
    b"STOCK",
    b"HOLD",
    b"RELEASE",
    b"SELL",
    b"EXPIRE-HOLD",
    b"ADMIT",
    b"OPEN",
    b"SESSION-END",
];

/// A source that hashes every item it reads.
struct Digesting<'a, S> {
    source: &'a mut S,
    hash: Sha256,
}

impl<S: Source> Source for Digesting<'_, S> {
    fn unsigned(&mut self) -> Result<u64, String> {
        let value = self.source.unsigned()?;
        self.hash.update([b'u']);
        self.hash.update(value.to_le_bytes());
        Ok(value)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let bytes = self.source.bytes()?;
        self.hash.update([b'b']);
        self.hash.update((bytes.len() as u64).to_le_bytes());
        self.hash.update(&bytes);
        Ok(bytes)
    }
}

enum V1State {
    Waiting(u64, TicketPayload),
    Admitted,
    Left,
    Expired,
}

pub fn load(source: &mut impl Source) -> Result<Event, String> {
    let mut hash = Sha256::new();
    hash.update(b"seatq: the secret of an event converted from encoding version 1");
    let source = &mut Digesting { source, hash };
    let config = load_config(source)?;
    // The secret is known once everything is read; nothing before that uses it.
    let mut event = Event::new(config, [0; 32]);
    event.last_id = get_id(source)?;
    let (joined, admitted, left, expired) = (
        source.unsigned()?,
        source.unsigned()?,
        source.unsigned()?,
        source.unsigned()?,
    );
    let opened = source.unsigned()? == 1;
    let _shuffled_len = get_count(source, MAX_ITEMS)?;
    let n = get_count(source, MAX_ITEMS)?;
    if n as u64 >= u64::from(Serial::MAX) {
        return Err("too many tickets".into());
    }
    let mut tickets: Vec<(EntryId, V1State)> = Vec::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        let id = get_id(source)?;
        let state = match source.unsigned()? {
            0 => V1State::Waiting(
                source.unsigned()?,
                TicketPayload::from_packed(&source.bytes()?).map_err(|e| e.message())?,
            ),
            1 => V1State::Admitted,
            2 => V1State::Left,
            3 => V1State::Expired,
            code => return Err(format!("unknown version 1 ticket state {code}")),
        };
        tickets.push((id, state));
    }
    let serial_of: std::collections::HashMap<EntryId, Serial> = tickets
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i as Serial))
        .collect();
    let mut records = Vec::new();
    for _ in 0..get_count(source, MAX_ITEMS)? {
        let key = source.bytes()?;
        let ticket = get_id(source)?;
        let expires_at = source.unsigned()?;
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err("bad idempotency key".into());
        }
        if let Some(&serial) = serial_of.get(&ticket) {
            records.push(IdempotencyRecord {
                key: key.into(),
                serial,
                expires_at,
            });
        }
    }
    records.sort_by(|a, b| (a.expires_at, &a.key).cmp(&(b.expires_at, &b.key)));
    event.inventory = load_inventory(source)?;
    let tat_us = source.unsigned()?;
    let rate = event.config.get(Setting::Rate);
    event.budget = AdmissionBudget {
        tat: (u128::from(tat_us) * u128::from(rate)).div_ceil(1000),
    };
    event.history = load_history(source)?;
    let pass_ttl = event.config.get(Setting::PassTtl);
    // The first release let a user whose pass had expired join again before its timer ended
    // the session: such a session had lapsed already, and ends here as its timer would have.
    let waiting_users: std::collections::HashSet<&[u8]> = tickets
        .iter()
        .filter_map(|(_, state)| match state {
            V1State::Waiting(_, payload) => Some(payload.user()),
            _ => None,
        })
        .collect();
    let mut lapsed = std::collections::HashSet::new();
    let mut sessions = Sessions::default();
    for _ in 0..get_count(source, MAX_ITEMS)? {
        let ticket = get_id(source)?;
        let user = source.bytes()?;
        let pass = source.bytes()?;
        let expires_at = source.unsigned()?;
        let serial = *serial_of
            .get(&ticket)
            .ok_or("a session of an unknown ticket")?;
        if pass.len() != 16 || !crate::event::valid_user(&user) {
            return Err("bad version 1 session".into());
        }
        if waiting_users.contains(&*user) {
            lapsed.insert(serial);
            continue;
        }
        let hex: String = pass.iter().map(|b| format!("{b:02x}")).collect();
        sessions.insert(
            serial,
            Session {
                user: user.into(),
                admitted_at: expires_at.saturating_sub(pass_ttl),
                claimed: true,
                claim_deadline: expires_at,
                expires_at,
                max_expires_at: expires_at,
                pass: hex.into(),
            },
        )?;
    }
    let stored = tickets.into_iter().enumerate().map(|(i, (_, state))| {
        let serial = i as Serial;
        let ticket = match state {
            V1State::Waiting(deadline, payload) => Ticket::Waiting {
                heartbeat_deadline: deadline,
                payload,
            },
            V1State::Admitted if sessions.get(serial).is_some() => Ticket::Ended(EndState::Called),
            V1State::Admitted if lapsed.contains(&serial) => Ticket::Ended(EndState::Expired),
            V1State::Admitted => Ticket::Ended(EndState::Dequeued),
            V1State::Left => Ticket::Ended(EndState::Left),
            V1State::Expired => Ticket::Ended(EndState::Expired),
        };
        (serial, ticket)
    });
    event.secret = EventSecret::new(source.hash.finalize_reset().into());
    let prequeue = !opened && event.config.get(Setting::OpensAt) > 0;
    event.line = WaitingLine::restore(event.secret.shuffle_key(), stored, n as Serial, |_| {
        prequeue
    })?;
    event.sessions = sessions;
    for record in records {
        event.idempotency.remember(record);
    }
    event.phase = Phase {
        opened: !prequeue,
        paused: false,
        closed: false,
    };
    event.totals = Totals {
        joined,
        admitted,
        claimed: admitted,
        left,
        expired,
        dequeued: 0,
        sessions_ended: 0,
    };
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::super::from_bytes;
    use crate::queue::line::{EndState, Ticket};

    /// The first release allowed RATE up to 1,000,000; this release's upkeep calls at most
    /// 20,000 a second. A converted event gets the most this release allows, and its budget
    /// the same point in time in the new units.
    #[test]
    fn a_rate_above_this_release_range_becomes_its_maximum() {
        use super::super::{ByteSink, Sink};
        use crate::config::{Setting, SETTINGS};
        let mut v1 = ByteSink::default();
        v1.unsigned(1);
        v1.unsigned(Setting::Rate.spec().persist_id);
        v1.unsigned(50_000);
        for n in [7, 0, 0, 0, 0, 0, 1, 0, 0, 0] {
            v1.unsigned(n); // last ID, totals, opened, shuffled, no tickets, no keys
        }
        for n in [0, 0, 0, 0, 0, 0, 0, 0, 0] {
            v1.unsigned(n); // no seats, buyers or holds; next hold, GA counts, lapsed holds
        }
        v1.unsigned(3_000_000); // the budget's next admission, in microseconds: at 3 s
        v1.unsigned(0); // no history
        v1.unsigned(0); // no sessions
        let event = from_bytes(&v1.0, 1).unwrap();
        let max = SETTINGS
            .iter()
            .find(|s| s.setting == Setting::Rate)
            .unwrap()
            .max;
        assert_eq!(event.config.get(Setting::Rate), max as u64);
        assert_eq!(
            event.budget.tat,
            3_000 * max as u128,
            "3 s in 1/(1000 x RATE) s units"
        );
    }

    /// The commands of an AOF file (RESP arrays of bulk strings).
    fn commands(mut aof: &[u8]) -> Vec<Vec<Vec<u8>>> {
        fn line<'a>(input: &mut &'a [u8]) -> &'a [u8] {
            let end = input.windows(2).position(|w| w == b"\r\n").unwrap();
            let (head, rest) = input.split_at(end);
            *input = &rest[2..];
            head
        }
        let number = |l: &[u8]| {
            std::str::from_utf8(&l[1..])
                .unwrap()
                .parse::<usize>()
                .unwrap()
        };
        let mut out = Vec::new();
        while !aof.is_empty() {
            let n = number(line(&mut aof));
            let mut args = Vec::new();
            for _ in 0..n {
                let len = number(line(&mut aof));
                args.push(aof[..len].to_vec());
                aof = &aof[len + 2..];
            }
            out.push(args);
        }
        out
    }

    /// The first release's own bytes, the SNAPSHOT blobs of its AOF rewrite (tests/fixtures/v1,
    /// made by generate.py there), convert ticket by ticket as it showed them: serials in its
    /// line order, waiting tickets in place, each ended ticket in its state (which no client can
    /// read any more: nobody holds the converted tickets), sessions with their passes.
    #[test]
    fn the_first_release_snapshots_convert_ticket_by_ticket() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1/");
        let aof = std::fs::read(format!("{dir}v1-snapshot.aof")).unwrap();
        let v1: serde_json::Value =
            serde_json::from_slice(&std::fs::read(format!("{dir}v1.json")).unwrap()).unwrap();
        let mut seen = 0;
        for args in commands(&aof) {
            if args[0] != b"SEATQ.APPLY" {
                continue;
            }
            assert_eq!(args[2], b"SNAPSHOT");
            let key = String::from_utf8(args[1].clone()).unwrap();
            let event = from_bytes(&args[3], 1).unwrap();
            let users = v1["events"][&key]["users"].as_object().unwrap();
            // The line order is the order of the IDs, except in a pre-queue shuffled at opening.
            let shuffled = key == "{tour}:opened";
            let id = |u: &serde_json::Value| {
                let (ms, seq) = u["ticket"].as_str().unwrap().split_once('-').unwrap();
                (ms.parse::<u64>().unwrap(), seq.parse::<u64>().unwrap())
            };
            let mut order: Vec<_> = users.iter().collect();
            order.sort_by_key(|(_, u)| id(u));
            assert_eq!(event.line.next_serial() as usize, order.len(), "{key}");
            for (rank, (user, u)) in order.into_iter().enumerate() {
                let state = u["state"].as_str().unwrap();
                let found = event
                    .line
                    .waiting_of(user.as_bytes())
                    .or_else(|| event.sessions.of_user(user.as_bytes()));
                let serial = match found {
                    Some(serial) if shuffled => serial,
                    _ => rank as crate::queue::line::Serial,
                };
                assert!(found.is_none() || found == Some(serial), "{key} {user}");
                let session = event.sessions.get(serial);
                let ticket = event.line.get(serial);
                if state == "waiting" {
                    let Some(Ticket::Waiting { payload, .. }) = ticket else {
                        panic!("{key} {user}: {ticket:?}");
                    };
                    assert_eq!(payload.user(), user.as_bytes());
                    continue;
                }
                let want = match (state, u.get("pass")) {
                    ("admitted", Some(pass)) => {
                        let s = session.unwrap_or_else(|| panic!("{key} {user}: no session"));
                        assert_eq!(&*s.pass, pass.as_str().unwrap());
                        assert!(s.claimed);
                        assert_eq!(s.expires_at, v1["far_ms"].as_u64().unwrap());
                        EndState::Called
                    }
                    ("admitted", None) => EndState::Dequeued,
                    ("left", _) => EndState::Left,
                    ("expired", _) => EndState::Expired,
                    other => panic!("{key} {user}: {other:?}"),
                };
                assert_eq!(ticket, Some(&Ticket::Ended(want)), "{key} {user}");
                if want != EndState::Called {
                    assert!(session.is_none(), "{key} {user}");
                }
            }
            seen += 1;
        }
        assert_eq!(seen, v1["events"].as_object().unwrap().len());
    }
}
