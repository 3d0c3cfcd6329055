//! The waiting line's decisions: what each QUEUE command changes (as effects) and answers.
//! Pure functions of the event and the server time, so they are unit-tested without Redis.

pub mod idempotency;
pub mod line;
pub mod payload;

use crate::admission::Signer;
use crate::config::Setting;
use crate::error::SeatqError;
use crate::event::{Effect, Event};
use idempotency::IdempotencyRecord;
use line::{EndState, Serial, Ticket};
use payload::TicketPayload;

/// How a command names a ticket: by the ticket a client holds, or by its user (the gateway's
/// authenticated identity).
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    Ticket(&'a [u8]),
    User(&'a [u8]),
}

/// The shortest and longest wait a NOT_READY or STATUS reply suggests before asking again.
const MIN_RETRY_MS: u64 = 100;

#[derive(Debug, PartialEq, Eq)]
pub struct Joined {
    pub serial: Serial,
    pub ticket: String,
    /// 1-based position, 0 while hidden in the pre-queue (or once admitted).
    pub position: usize,
    /// `waiting`, or `admitted` when the user already has a session.
    pub state: &'static str,
    pub existing: bool,
}

/// What a live session shows.
#[derive(Debug, PartialEq, Eq)]
pub struct SessionView {
    pub pass: String,
    pub expires_at: u64,
    pub claim_deadline: u64,
    pub claimed: bool,
}

/// What STATUS, RANGE and DEQUEUE show of a ticket.
#[derive(Debug, PartialEq, Eq)]
pub struct TicketView {
    pub serial: Serial,
    /// `waiting`, `admitted`, or how the ticket ended.
    pub state: &'static str,
    /// 1-based position among waiting tickets; 0 when not waiting, or while the event has not
    /// opened and the ticket is in the pre-queue (whose order is revealed at opening).
    pub position: usize,
    pub prequeue: bool,
    /// Expected wait until the server calls the ticket; None while admission is paused.
    pub eta_ms: Option<u64>,
    /// When to ask again: soon enough to keep the heartbeat and never miss a claim window.
    pub retry_after_ms: u64,
    pub heartbeat_deadline: u64,
    pub session: Option<SessionView>,
}

/// A waiting ticket's user and DATA (RANGE, DEQUEUE).
#[derive(Debug, PartialEq, Eq)]
pub struct TicketDetail {
    pub ticket: String,
    pub view: TicketView,
    pub user: Vec<u8>,
    pub data: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Event {
    fn heartbeat_deadline(&self, now: u64) -> u64 {
        now.saturating_add(self.config.heartbeat_ms())
    }

    /// A heartbeat renewal, or None while the current deadline is more than 3/4 of HEARTBEAT
    /// away: renewing at most every HEARTBEAT/4 keeps the write and replication cost of polling
    /// low, while a ticket polled at least every 3/4 of HEARTBEAT never lapses.
    pub(crate) fn renewal(&self, serial: Serial, now: u64) -> Option<Effect> {
        let Some(Ticket::Waiting {
            heartbeat_deadline, ..
        }) = self.line.get(serial)
        else {
            return None;
        };
        let heartbeat = self.config.heartbeat_ms();
        (*heartbeat_deadline < now.saturating_add(heartbeat - heartbeat / 4)).then(|| {
            Effect::Touched {
                serial,
                heartbeat_deadline: self.heartbeat_deadline(now),
            }
        })
    }

    /// The serial a command names: a ticket must be well-formed, carry its right tag and be
    /// known; a user must wait or have a session. A guessed ticket and a missing one answer
    /// the same.
    pub fn resolve(&self, target: Target) -> Result<Serial, SeatqError> {
        let serial = match target {
            Target::Ticket(ticket) => self
                .secret
                .serial_of(ticket)
                .filter(|&s| self.line.get(s).is_some() || self.sessions.get(s).is_some()),
            Target::User(user) => self
                .line
                .waiting_of(user)
                .or_else(|| self.sessions.of_user(user)),
        };
        serial.ok_or_else(|| SeatqError::NoSuchTicket(target_text(target)))
    }

    /// Admissions per second for ETAs: measured over the last minute, RATE before that.
    pub fn call_rate(&self, now: u64) -> f64 {
        self.history.rate(now, self.config.get(Setting::Rate))
    }

    /// When to ask again given an expected wait: not later than half a heartbeat (the ticket
    /// stays alive) nor half a claim window (a call is never missed).
    fn retry_after(&self, eta_ms: Option<u64>) -> u64 {
        let cap = (self.config.heartbeat_ms() / 2).min(self.config.get(Setting::ClaimTtl) / 2);
        eta_ms
            .unwrap_or(cap)
            .clamp(MIN_RETRY_MS, cap.max(MIN_RETRY_MS))
    }

    pub fn view(&self, serial: Serial, now: u64) -> TicketView {
        let mut view = TicketView {
            serial,
            state: EndState::Expired.name(),
            position: 0,
            prequeue: false,
            eta_ms: None,
            retry_after_ms: 0,
            heartbeat_deadline: 0,
            session: None,
        };
        if let Some(session) = self.sessions.get(serial) {
            if session.live(now) {
                view.state = "admitted";
                view.session = Some(SessionView {
                    pass: session.pass.to_string(),
                    expires_at: session.expires_at,
                    claim_deadline: session.claim_deadline,
                    claimed: session.claimed,
                });
            } else {
                // Lapsed before the timer ended it: how it will end.
                view.state = if session.claimed {
                    EndState::Expired.name()
                } else {
                    EndState::NoShow.name()
                };
            }
            return view;
        }
        match self.line.get(serial) {
            Some(Ticket::Waiting {
                heartbeat_deadline, ..
            }) if *heartbeat_deadline > now => {
                view.state = "waiting";
                view.heartbeat_deadline = *heartbeat_deadline;
                view.prequeue = !self.phase.opened;
                // A pre-queue ticket's rank is the secret shuffle's: nothing may depend on it.
                let position = if view.prequeue {
                    1
                } else {
                    self.line.position(serial).expect("a waiting ticket")
                };
                if !view.prequeue {
                    view.position = position;
                }
                view.eta_ms = self.eta(position, now);
                view.retry_after_ms = self.retry_after(view.eta_ms);
            }
            Some(Ticket::Waiting { .. }) => {}
            // A called ticket whose session is gone but whose tombstone was not restated.
            Some(Ticket::Ended(EndState::Called)) => view.state = EndState::Expired.name(),
            Some(Ticket::Ended(state)) => view.state = state.name(),
            None => {}
        }
        view
    }

    /// Expected wait of the ticket at `position`: until calls can start (opening; with CAPACITY
    /// full, the first session deadline), then one call interval per ticket ahead at the rate
    /// calls actually happen. None while admission is paused.
    fn eta(&self, position: usize, now: u64) -> Option<u64> {
        if self.phase.paused {
            return None;
        }
        let mut start = if self.phase.opened {
            0
        } else {
            self.config.get(Setting::OpensAt).saturating_sub(now)
        };
        if self.capacity_left() == 0 {
            let first_end = self.sessions.next_deadline().unwrap_or(now);
            start = start.max(first_end.saturating_sub(now));
        }
        let rate = self.call_rate(now).max(f64::MIN_POSITIVE);
        Some(start + ((position - 1) as f64 * 1000.0 / rate).ceil() as u64)
    }

    pub fn plan_enqueue(
        &self,
        now: u64,
        payload: TicketPayload,
        idempotency_key: Option<&[u8]>,
    ) -> Result<(Vec<Effect>, Joined), SeatqError> {
        let user = payload.user();
        self.check_user_shard(user)?;
        if let Some(key) = idempotency_key {
            if let Some(serial) = self.idempotency.lookup(key, now) {
                // Name the ticket only to its own user.
                let own = self
                    .line
                    .waiting_of(user)
                    .or_else(|| self.sessions.of_user(user))
                    == Some(serial);
                return Err(SeatqError::Duplicate(own.then(|| self.ticket(serial))));
            }
        }
        let mut effects = Vec::new();
        let mut after = None;
        if let Some(serial) = self.sessions.of_user(user) {
            let session = self.sessions.get(serial).expect("indexed session");
            if session.live(now) {
                return Ok((
                    effects,
                    Joined {
                        serial,
                        ticket: self.ticket(serial),
                        position: 0,
                        state: "admitted",
                        existing: true,
                    },
                ));
            }
            // A lapsed session the timer has not ended yet: it ends now, and the user joins
            // again at the back (a user never holds two sessions).
            let at = self.next_id(now, after);
            after = Some(at);
            effects.push(self.session_lapse(serial, at));
        }
        if let Some(serial) = self.line.waiting_of(user) {
            if !self.line.get(serial).is_some_and(|t| t.lapsed(now)) {
                effects.extend(self.renewal(serial, now));
                return Ok((
                    effects,
                    Joined {
                        serial,
                        ticket: self.ticket(serial),
                        position: self.visible_position(serial),
                        state: "waiting",
                        existing: true,
                    },
                ));
            }
            let at = self.next_id(now, after);
            after = Some(at);
            effects.push(Effect::Expired { at, serial });
        }
        // A closed line still answers those already in it (above), and only them.
        if self.phase.closed {
            return Err(SeatqError::Closed);
        }
        let serial = self.line.next_serial();
        if serial == Serial::MAX {
            return Err(SeatqError::Invalid(
                "this event has issued every ticket it can; create a new event".into(),
            ));
        }
        effects.push(Effect::Joined {
            at: self.next_id(now, after),
            serial,
            heartbeat_deadline: self.heartbeat_deadline(now),
            payload,
        });
        if let Some(key) = idempotency_key {
            effects.push(Effect::Remembered(IdempotencyRecord {
                key: key.into(),
                serial,
                expires_at: now.saturating_add(self.config.get(Setting::IdempotencyTtl)),
            }));
        }
        let replaced_waiting = effects.iter().any(|e| matches!(e, Effect::Expired { .. }));
        Ok((
            effects,
            Joined {
                serial,
                ticket: self.ticket(serial),
                position: if self.phase.opened {
                    self.line.waiting() + 1 - usize::from(replaced_waiting)
                } else {
                    0
                },
                state: "waiting",
                existing: false,
            },
        ))
    }

    /// A join's answer as the event stands now: the upkeep that ran after the join may have
    /// called the ticket, or others ahead of it.
    pub fn refresh_joined(&self, joined: Joined) -> Joined {
        if joined.state != "waiting" {
            joined
        } else if self.sessions.get(joined.serial).is_some() {
            Joined {
                position: 0,
                state: "admitted",
                ..joined
            }
        } else {
            Joined {
                position: self.visible_position(joined.serial),
                ..joined
            }
        }
    }

    /// A waiting ticket's position as a client may see it (0 in a pre-queue not yet opened).
    fn visible_position(&self, serial: Serial) -> usize {
        if self.phase.opened {
            self.line.position(serial).unwrap_or(0)
        } else {
            0
        }
    }

    /// How a lapsed session ends: a claimed one expired, an unclaimed one was a no-show.
    pub(crate) fn session_lapse(&self, serial: Serial, at: crate::entry_id::EntryId) -> Effect {
        let claimed = self.sessions.get(serial).is_some_and(|s| s.claimed);
        Effect::SessionEnded {
            at,
            serial,
            end: if claimed {
                EndState::Expired
            } else {
                EndState::NoShow
            },
        }
    }

    /// STATUS: the ticket's view, plus what the primary applies: a heartbeat renewal or the
    /// expiry of a ticket that lapsed before the sweep reached it, or, for an admitted user,
    /// the renewal of their session (activity keeps it, up to SESSION-MAX).
    pub fn plan_status(
        &self,
        now: u64,
        target: Target,
        signer: &Signer,
    ) -> Result<(Vec<Effect>, TicketView), SeatqError> {
        let serial = self.resolve(target)?;
        let view = self.view(serial, now);
        let effects = if self.line.get(serial).is_some_and(|t| t.lapsed(now)) {
            vec![Effect::Expired {
                at: self.next_id(now, None),
                serial,
            }]
        } else if view.state == "admitted" {
            self.plan_session_activity(now, serial, signer)
                .into_iter()
                .collect()
        } else {
            self.renewal(serial, now).into_iter().collect()
        };
        Ok((effects, view))
    }

    /// LEAVE: ends a waiting ticket, or a live session (freeing its place under CAPACITY).
    /// Answers whether there was anything to end.
    pub fn plan_leave(&self, now: u64, target: Target) -> Result<(Vec<Effect>, bool), SeatqError> {
        let serial = self.resolve(target)?;
        let at = self.next_id(now, None);
        if let Some(session) = self.sessions.get(serial) {
            return Ok(if session.live(now) {
                (
                    vec![Effect::SessionEnded {
                        at,
                        serial,
                        end: EndState::Left,
                    }],
                    true,
                )
            } else {
                (vec![self.session_lapse(serial, at)], false)
            });
        }
        Ok(match self.line.get(serial) {
            Some(t @ Ticket::Waiting { .. }) if t.lapsed(now) => {
                (vec![Effect::Expired { at, serial }], false)
            }
            Some(Ticket::Waiting { .. }) => (vec![Effect::Left { at, serial }], true),
            _ => (Vec::new(), false),
        })
    }

    fn detail(&self, serial: Serial, now: u64) -> TicketDetail {
        let payload = self
            .line
            .get(serial)
            .and_then(Ticket::payload)
            .expect("a waiting ticket");
        TicketDetail {
            ticket: self.ticket(serial),
            view: self.view(serial, now),
            user: payload.user().to_vec(),
            data: payload
                .data()
                .into_iter()
                .map(|(f, v)| (f.to_vec(), v.to_vec()))
                .collect(),
        }
    }

    /// DEQUEUE: takes up to `count` live tickets from the head (a worker's flow, outside RATE
    /// and CAPACITY) while `more(bytes so far)` allows (the caller bounds the reply's size and
    /// the command's time); lapsed ones met on the way expire instead. The head ticket is
    /// always looked at, whatever `more` says: a call that lost its time to the machine before
    /// starting still takes it, so no call answers nothing while a live ticket is first in line.
    /// Answers the details of the taken tickets.
    pub fn plan_dequeue(
        &self,
        now: u64,
        count: usize,
        more: &mut dyn FnMut(usize) -> bool,
    ) -> (Vec<Effect>, Vec<TicketDetail>) {
        let mut effects = Vec::new();
        let mut taken = Vec::new();
        let mut after = None;
        let mut bytes = 0;
        let mut k = 0;
        while taken.len() < count && (k == 0 || more(bytes)) {
            let Some(serial) = self.line.nth_waiting(k) else {
                break;
            };
            k += 1;
            let at = self.next_id(now, after);
            after = Some(at);
            if self.line.get(serial).is_some_and(|t| t.lapsed(now)) {
                effects.push(Effect::Expired { at, serial });
            } else {
                let mut detail = self.detail(serial, now);
                bytes += detail_bytes(&detail);
                detail.view.state = EndState::Dequeued.name();
                detail.view.position = 0;
                taken.push(detail);
                effects.push(Effect::Dequeued { at, serial });
            }
        }
        (effects, taken)
    }

    /// RANGE: details of up to `count` waiting tickets from 0-based offset `start` in line
    /// order, while `more(bytes so far)` allows. Lapsed tickets not yet swept are listed: they
    /// count in positions until the sweep ends them.
    pub fn range(
        &self,
        now: u64,
        start: usize,
        count: usize,
        more: &mut dyn FnMut(usize) -> bool,
    ) -> Vec<TicketDetail> {
        let end = start.saturating_add(count).min(self.line.waiting());
        let mut bytes = 0;
        let mut details = Vec::new();
        for k in start..end {
            // The first entry whatever `more` says, so every call makes progress.
            if k > start && !more(bytes) {
                break;
            }

            let Some(serial) = self.line.nth_waiting(k) else {
                break;
            };
            let mut detail = self.detail(serial, now);
            detail.view.position = k + 1;
            if detail.view.state != "waiting" {
                detail.view.state = "waiting";
            }
            bytes += detail_bytes(&detail);
            details.push(detail);
        }
        details
    }
}

/// About what a ticket's record costs in a reply.
pub fn detail_bytes(detail: &TicketDetail) -> usize {
    256 + detail.user.len()
        + detail
            .data
            .iter()
            .map(|(f, v)| f.len() + v.len() + 8)
            .sum::<usize>()
}

pub fn target_text(target: Target) -> Vec<u8> {
    match target {
        Target::Ticket(t) => t.to_vec(),
        Target::User(u) => [&b"user "[..], u].concat(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::EventConfig;

    pub fn event() -> Event {
        let mut config = EventConfig::from_defaults();
        config.set(Setting::Heartbeat, 10_000);
        config.set(Setting::IdempotencyTtl, 300_000);
        config.set(Setting::Rate, 10);
        config.set(Setting::OpensAt, 0);
        Event::new(config, [5; 32])
    }

    pub fn run(ev: &mut Event, effects: Vec<Effect>) {
        for e in &effects {
            ev.apply(e).unwrap_or_else(|r| panic!("{e:?} refused: {r}"));
        }
        ev.check_invariants().unwrap();
    }

    pub fn join(
        ev: &mut Event,
        now: u64,
        user: &str,
        idem: Option<&str>,
    ) -> Result<Joined, SeatqError> {
        let payload = TicketPayload::new(user.as_bytes(), &[]).unwrap();
        let (effects, joined) = ev.plan_enqueue(now, payload, idem.map(str::as_bytes))?;
        run(ev, effects);
        Ok(joined)
    }

    pub const SIGNER: Signer = Signer {
        event: b"ev",
        keys: &[],
    };

    fn status(ev: &Event, now: u64, ticket: &str) -> TicketView {
        ev.plan_status(now, Target::Ticket(ticket.as_bytes()), &SIGNER)
            .unwrap()
            .1
    }

    #[test]
    fn fifo_positions_and_one_ticket_per_user() {
        let mut ev = event();
        let tickets: Vec<_> = (0..5)
            .map(|i| join(&mut ev, 1000, &format!("u{i}"), None).unwrap())
            .collect();
        assert_eq!(
            tickets.iter().map(|j| j.position).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        let again = join(&mut ev, 1001, "u2", None).unwrap();
        assert_eq!(
            again,
            Joined {
                serial: tickets[2].serial,
                ticket: tickets[2].ticket.clone(),
                position: 3,
                state: "waiting",
                existing: true
            }
        );
        let view = status(&ev, 1002, &tickets[3].ticket);
        assert_eq!(
            (view.state, view.position, view.eta_ms),
            ("waiting", 4, Some(300))
        );
        let by_user = ev
            .plan_status(1002, Target::User(b"u3"), &SIGNER)
            .unwrap()
            .1;
        assert_eq!(by_user, view);
    }

    #[test]
    fn guessed_tickets_answer_like_missing_ones() {
        let mut ev = event();
        let t = join(&mut ev, 1000, "a", None).unwrap().ticket;
        let serial = t.split('.').next().unwrap();
        for guess in [
            format!("{serial}.0000000000000000"),
            serial.to_string(),
            "1.abc".into(),
            t.to_uppercase(),
        ] {
            assert!(matches!(
                ev.plan_status(1001, Target::Ticket(guess.as_bytes()), &SIGNER),
                Err(SeatqError::NoSuchTicket(_))
            ));
            assert!(matches!(
                ev.plan_leave(1001, Target::Ticket(guess.as_bytes())),
                Err(SeatqError::NoSuchTicket(_))
            ));
        }
        assert!(matches!(
            ev.plan_status(1001, Target::User(b"nobody"), &SIGNER),
            Err(SeatqError::NoSuchTicket(_))
        ));
    }

    #[test]
    fn idempotency_key_answers_duplicate_naming_only_the_callers_ticket() {
        let mut ev = event();
        let first = join(&mut ev, 1000, "a", Some("k")).unwrap();
        assert_eq!(
            join(&mut ev, 1001, "a", Some("k")),
            Err(SeatqError::Duplicate(Some(first.ticket)))
        );
        assert_eq!(
            join(&mut ev, 1001, "b", Some("k")),
            Err(SeatqError::Duplicate(None))
        );
        assert_eq!(ev.line.waiting(), 1);
        // A user already waiting gets their ticket back; the new key is not remembered.
        assert!(join(&mut ev, 1002, "a", Some("k2")).unwrap().existing);
        assert_eq!(ev.idempotency.len(), 1);
        assert!(join(&mut ev, 1000 + 300_000, "b", Some("k")).is_ok());
    }

    #[test]
    fn leaving_shifts_everyone_behind() {
        let mut ev = event();
        let t: Vec<_> = (0..4)
            .map(|i| join(&mut ev, 1000, &format!("u{i}"), None).unwrap().ticket)
            .collect();
        let (effects, left) = ev
            .plan_leave(1001, Target::Ticket(t[1].as_bytes()))
            .unwrap();
        assert!(left);
        run(&mut ev, effects);
        assert_eq!(status(&ev, 1002, &t[2]).position, 2);
        assert_eq!(status(&ev, 1002, &t[1]).state, "left");
        assert!(
            !ev.plan_leave(1003, Target::Ticket(t[1].as_bytes()))
                .unwrap()
                .1
        );
    }

    #[test]
    fn status_renews_the_heartbeat_only_when_a_quarter_has_passed() {
        let mut ev = event();
        let t = join(&mut ev, 1000, "a", None).unwrap().ticket;
        let target = Target::Ticket(t.as_bytes());
        assert!(ev.plan_status(2000, target, &SIGNER).unwrap().0.is_empty());
        let (effects, _) = ev.plan_status(3600, target, &SIGNER).unwrap();
        assert_eq!(effects.len(), 1);
        run(&mut ev, effects);
        let (effects, view) = ev.plan_status(13_599, target, &SIGNER).unwrap();
        assert_eq!(view.state, "waiting");
        assert_eq!(view.heartbeat_deadline, 13_600);
        run(&mut ev, effects);
        let (effects, view) = ev.plan_status(30_000, target, &SIGNER).unwrap();
        assert_eq!(view.state, "expired");
        run(&mut ev, effects);
        assert_eq!(ev.line.waiting(), 0);
        assert_eq!(ev.totals.expired, 1);
    }

    #[test]
    fn dequeue_takes_live_tickets_from_the_head_within_a_byte_budget() {
        let mut ev = event();
        join(&mut ev, 0, "lapsed", None).unwrap();
        for i in 0..4 {
            join(&mut ev, 5000, &format!("u{i}"), None).unwrap();
        }
        let (effects, taken) = ev.plan_dequeue(10_000, 2, &mut |_| true);
        assert_eq!(
            taken.iter().map(|d| d.user.clone()).collect::<Vec<_>>(),
            [b"u0".to_vec(), b"u1".to_vec()]
        );
        assert_eq!(effects.len(), 3);
        run(&mut ev, effects);
        assert_eq!(
            (ev.line.waiting(), ev.totals.dequeued, ev.totals.expired),
            (2, 2, 1)
        );
        let views = ev.range(10_000, 0, 10, &mut |_| true);
        assert_eq!(
            views.iter().map(|v| v.view.position).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(
            ev.range(10_000, 0, 10, &mut |bytes| bytes < 1).len(),
            1,
            "the bound stops early"
        );
        assert_eq!(
            ev.plan_dequeue(10_000, 10, &mut |bytes| bytes < 1).1.len(),
            1
        );
    }

    /// A call whose time ran out before it started (the machine took it) still makes progress:
    /// it takes or lists the head ticket, or expires it when it lapsed.
    #[test]
    fn a_call_out_of_time_before_it_starts_still_looks_at_the_head() {
        let mut ev = event();
        join(&mut ev, 0, "lapsed", None).unwrap();
        join(&mut ev, 5000, "live", None).unwrap();
        let (effects, taken) = ev.plan_dequeue(10_000, 10, &mut |_| false);
        assert!(taken.is_empty(), "the head had lapsed");
        assert!(matches!(effects[..], [Effect::Expired { serial: 0, .. }]));
        run(&mut ev, effects);
        let listed = ev.range(10_000, 0, 10, &mut |_| false);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].user, b"live".to_vec());
        let (effects, taken) = ev.plan_dequeue(10_000, 10, &mut |_| false);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].user, b"live".to_vec());
        run(&mut ev, effects);
        assert_eq!(ev.line.waiting(), 0);
        assert!(ev.range(10_000, 0, 10, &mut |_| false).is_empty());
        assert!(ev.plan_dequeue(10_000, 10, &mut |_| false).0.is_empty());
    }

    #[test]
    fn a_user_whose_ticket_lapsed_rejoins_at_the_back() {
        let mut ev = event();
        let old = join(&mut ev, 0, "a", None).unwrap();
        join(&mut ev, 5000, "b", None).unwrap();
        let again = join(&mut ev, 10_001, "a", None).unwrap();
        assert!(!again.existing);
        assert_ne!(again.ticket, old.ticket);
        assert_eq!(again.position, 2);
    }

    #[test]
    fn a_closed_line_refuses_joins() {
        let mut ev = event();
        let at = ev.next_id(1, None);
        run(&mut ev, vec![Effect::Closed { at }]);
        assert_eq!(join(&mut ev, 2, "a", None), Err(SeatqError::Closed));
    }
}
