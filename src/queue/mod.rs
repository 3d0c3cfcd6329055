//! The waiting line's decisions: what each QUEUE command changes (as effects) and answers.
//! Pure functions of the event and the server time, so they are unit-tested without Redis.

pub mod idempotency;
pub mod line;
pub mod payload;
pub mod rank;

use crate::config::Setting;
use crate::entry_id::EntryId;
use crate::error::SeatqError;
use crate::event::{Effect, Event, SessionEnd};
use idempotency::IdempotencyRecord;
use line::{EndState, TicketBody};
use payload::TicketPayload;

/// How long after the last expiry a purge of idempotency keys waits, so purges batch up.
pub const IDEMPOTENCY_PURGE_SLACK_MS: u64 = 1_000;

#[derive(Debug, PartialEq, Eq)]
pub struct Joined {
    pub ticket: EntryId,
    pub position: usize,
    /// `waiting`, or `admitted` when the user already has a live session.
    pub state: &'static str,
    pub existing: bool,
}

/// What STATUS and RANGE show of a ticket.
#[derive(Debug, PartialEq, Eq)]
pub struct TicketView {
    pub ticket: EntryId,
    /// `waiting`, or the end state.
    pub state: &'static str,
    /// 1-based position among waiting tickets; 0 once the ticket is no longer waiting.
    pub position: usize,
    pub eta_ms: u64,
    pub heartbeat_deadline: u64,
    pub user: Option<Vec<u8>>,
    pub data: Vec<(Vec<u8>, Vec<u8>)>,
    /// The admission pass of an admitted ticket whose session is live.
    pub pass: Option<crate::admission::sessions::Pass>,
    pub pass_expires_at: u64,
}

impl Event {
    fn heartbeat_deadline(&self, now: u64) -> u64 {
        now.saturating_add(self.config.heartbeat_ms())
    }

    /// A heartbeat renewal for a waiting ticket, or None while the current deadline is still
    /// more than 3/4 of HEARTBEAT away. Renewing at most every HEARTBEAT/4 keeps the write and
    /// replication cost of polling low while a ticket polled at least every 3/4 of HEARTBEAT
    /// never lapses.
    fn renewal(&self, index: usize, now: u64) -> Option<Effect> {
        let ticket = self.line.get(index);
        let TicketBody::Waiting {
            heartbeat_deadline, ..
        } = ticket.body
        else {
            return None;
        };
        let heartbeat = self.config.heartbeat_ms();
        (heartbeat_deadline < now.saturating_add(heartbeat - heartbeat / 4)).then(|| {
            Effect::Touched {
                ticket: ticket.id,
                heartbeat_deadline: self.heartbeat_deadline(now),
            }
        })
    }

    fn lapsed(&self, index: usize, now: u64) -> bool {
        matches!(self.line.get(index).body, TicketBody::Waiting { heartbeat_deadline, .. } if heartbeat_deadline <= now)
    }

    pub fn plan_enqueue(
        &self,
        now: u64,
        payload: TicketPayload,
        idempotency_key: Option<&[u8]>,
    ) -> Result<(Vec<Effect>, Joined), SeatqError> {
        if let Some(key) = idempotency_key {
            if let Some(ticket) = self.idempotency.lookup(key, now) {
                return Err(SeatqError::Duplicate(ticket));
            }
        }
        let mut effects = Vec::new();
        let session = self
            .sessions
            .of_user(payload.user())
            .filter(|&t| self.sessions.get(t).is_some_and(|s| s.expires_at > now));
        let joined = match self.line.waiting_of(payload.user()) {
            // One live ticket per user: an admitted user's ticket is their session's.
            _ if session.is_some() => Joined {
                ticket: session.expect("checked"),
                position: 0,
                state: "admitted",
                existing: true,
            },
            Some(index) if !self.lapsed(index, now) => {
                effects.extend(self.renewal(index, now));
                Joined {
                    ticket: self.line.get(index).id,
                    position: self.line.position(index),
                    state: "waiting",
                    existing: true,
                }
            }
            lapsed => {
                let mut after = None;
                if let Some(index) = lapsed {
                    // The user's old ticket lapsed but was not swept yet: it expires now and
                    // the user goes to the back, as if the sweep had already run.
                    let at = self.next_id(now, None);
                    effects.push(Effect::Ended {
                        ticket: self.line.get(index).id,
                        state: EndState::Expired,
                        at,
                    });
                    after = Some(at);
                }
                let ticket = self.next_id(now, after);
                effects.push(Effect::Joined {
                    ticket,
                    heartbeat_deadline: self.heartbeat_deadline(now),
                    payload,
                });
                Joined {
                    ticket,
                    position: self.line.waiting() + 1 - usize::from(lapsed.is_some()),
                    state: "waiting",
                    existing: false,
                }
            }
        };
        if let Some(key) = idempotency_key {
            effects.push(Effect::Remembered {
                key: key.into(),
                record: IdempotencyRecord {
                    ticket: joined.ticket,
                    expires_at: now.saturating_add(self.config.get(Setting::IdempotencyTtl)),
                },
            });
        }
        Ok((effects, joined))
    }

    pub(crate) fn find_ticket(&self, ticket: &[u8]) -> Result<usize, SeatqError> {
        EntryId::parse(ticket)
            .and_then(|id| self.line.find(id))
            .ok_or_else(|| SeatqError::NoSuchTicket(ticket.to_vec()))
    }

    fn view(&self, index: usize, now: u64) -> TicketView {
        let ticket = self.line.get(index);
        let mut view = TicketView {
            ticket: ticket.id,
            state: EndState::Expired.name(),
            position: 0,
            eta_ms: 0,
            heartbeat_deadline: 0,
            user: None,
            data: Vec::new(),
            pass: None,
            pass_expires_at: 0,
        };
        match &ticket.body {
            TicketBody::Waiting {
                heartbeat_deadline,
                payload,
            } if *heartbeat_deadline > now => {
                view.state = "waiting";
                view.position = self.line.position(index);
                let rate = self.outflow_rate(now);
                // Before OPENS-AT nobody is admitted: the wait until opening comes first.
                let until_open = self.config.get(Setting::OpensAt).saturating_sub(now);
                view.eta_ms =
                    until_open + ((view.position - 1) as f64 * 1000.0 / rate).ceil() as u64;
                view.heartbeat_deadline = *heartbeat_deadline;
                view.user = Some(payload.user().to_vec());
                view.data = payload
                    .data()
                    .into_iter()
                    .map(|(f, v)| (f.to_vec(), v.to_vec()))
                    .collect();
            }
            TicketBody::Waiting { .. } => {}
            TicketBody::Ended(EndState::Admitted) => match self.sessions.get(ticket.id) {
                // A pass past its expiry ends the session even before the timer records it.
                Some(s) if s.expires_at <= now => {}
                Some(s) => {
                    view.state = EndState::Admitted.name();
                    view.user = Some(s.user.to_vec());
                    view.pass = Some(s.pass);
                    view.pass_expires_at = s.expires_at;
                }
                None => view.state = EndState::Admitted.name(), // taken by QUEUE.DEQUEUE
            },
            TicketBody::Ended(state) => view.state = state.name(),
        }
        view
    }

    /// STATUS: the ticket's view, plus the effects the primary applies: a heartbeat renewal,
    /// or the expiry of a ticket whose heartbeat lapsed before the sweep reached it.
    pub fn plan_status(
        &self,
        now: u64,
        ticket: &[u8],
    ) -> Result<(Vec<Effect>, TicketView), SeatqError> {
        let index = self.find_ticket(ticket)?;
        let view = self.view(index, now);
        let effects = if self.lapsed(index, now) {
            vec![Effect::Ended {
                ticket: view.ticket,
                state: EndState::Expired,
                at: self.next_id(now, None),
            }]
        } else {
            self.renewal(index, now).into_iter().collect()
        };
        Ok((effects, view))
    }

    /// LEAVE: ends a waiting ticket. Answers whether it was still waiting.
    pub fn plan_leave(&self, now: u64, ticket: &[u8]) -> Result<(Vec<Effect>, bool), SeatqError> {
        let index = self.find_ticket(ticket)?;
        let t = self.line.get(index);
        Ok(match t.body {
            TicketBody::Waiting { .. } => {
                let state = if self.lapsed(index, now) {
                    EndState::Expired
                } else {
                    EndState::Left
                };
                (
                    vec![Effect::Ended {
                        ticket: t.id,
                        state,
                        at: self.next_id(now, None),
                    }],
                    state == EndState::Left,
                )
            }
            // LEAVE also ends an admitted session, freeing its place under CAPACITY at once.
            TicketBody::Ended(EndState::Admitted)
                if self.sessions.get(t.id).is_some_and(|s| s.expires_at > now) =>
            {
                (
                    vec![Effect::SessionEnded {
                        at: self.next_id(now, None),
                        ticket: t.id,
                        why: SessionEnd::Leave,
                    }],
                    true,
                )
            }
            TicketBody::Ended(_) => (Vec::new(), false),
        })
    }

    /// DEQUEUE: takes up to `count` live tickets from the head; lapsed ones met on the way are
    /// expired instead of handed out. Answers the views of the taken tickets.
    pub fn plan_dequeue(&self, now: u64, count: usize) -> (Vec<Effect>, Vec<TicketView>) {
        let mut effects = Vec::new();
        let mut taken = Vec::new();
        let mut after = None;
        let mut k = 0;
        while taken.len() < count {
            let Some(index) = self.line.nth_waiting(k) else {
                break;
            };
            k += 1;
            let at = self.next_id(now, after);
            after = Some(at);
            let ticket = self.line.get(index).id;
            if self.lapsed(index, now) {
                effects.push(Effect::Ended {
                    ticket,
                    state: EndState::Expired,
                    at,
                });
            } else {
                taken.push(self.view(index, now));
                effects.push(Effect::Ended {
                    ticket,
                    state: EndState::Admitted,
                    at,
                });
            }
        }
        (effects, taken)
    }

    /// RANGE: views of up to `count` waiting tickets from 0-based offset `start`. Lapsed tickets
    /// not yet swept are still listed (they count in positions until the sweep removes them).
    pub fn range(&self, now: u64, start: usize, count: usize) -> Vec<TicketView> {
        let end = start.saturating_add(count).min(self.line.waiting());
        (start..end)
            .filter_map(|k| self.line.nth_waiting(k))
            .map(|index| {
                let mut view = self.view(index, now);
                view.position = self.line.position(index);
                view
            })
            .collect()
    }

    /// The active sweep (timer, primary only): expires lapsed tickets, scanning at most
    /// `budget` tickets from where the last sweep stopped, and purges expired idempotency keys.
    pub fn plan_sweep(&mut self, now: u64, budget: usize) -> Vec<Effect> {
        let (lapsed, next) = self.line.lapsed(now, self.sweep_cursor, budget);
        self.sweep_cursor = next;
        let mut effects = Vec::with_capacity(lapsed.len() + 1);
        let mut after = None;
        for ticket in lapsed {
            let at = self.next_id(now, after);
            after = Some(at);
            effects.push(Effect::Ended {
                ticket,
                state: EndState::Expired,
                at,
            });
        }
        if self.idempotency.purge_due(now, IDEMPOTENCY_PURGE_SLACK_MS) {
            effects.push(Effect::Purged { now });
        }
        effects
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EventConfig;

    fn event() -> Event {
        let mut config = EventConfig::from_defaults();
        config.set(Setting::Heartbeat, 10_000);
        config.set(Setting::IdempotencyTtl, 300_000);
        config.set(Setting::Rate, 10);
        Event::new(config)
    }

    fn join(
        ev: &mut Event,
        now: u64,
        user: &str,
        idem: Option<&str>,
    ) -> Result<Joined, SeatqError> {
        let payload = TicketPayload::new(user.as_bytes(), &[]).unwrap();
        let (effects, joined) = ev.plan_enqueue(now, payload, idem.map(str::as_bytes))?;
        for e in &effects {
            ev.apply(e, true);
        }
        Ok(joined)
    }

    fn run(ev: &mut Event, effects: Vec<Effect>) {
        for e in &effects {
            ev.apply(e, true);
        }
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
        assert!(tickets.windows(2).all(|w| w[0].ticket < w[1].ticket));
        let again = join(&mut ev, 1001, "u2", None).unwrap();
        assert_eq!(
            again,
            Joined {
                ticket: tickets[2].ticket,
                position: 3,
                state: "waiting",
                existing: true
            }
        );
        let (_, view) = ev
            .plan_status(1002, tickets[3].ticket.to_string().as_bytes())
            .unwrap();
        assert_eq!(
            (view.state, view.position, view.eta_ms),
            ("waiting", 4, 300)
        );
    }

    #[test]
    fn idempotency_key_answers_duplicate_until_it_expires() {
        let mut ev = event();
        let first = join(&mut ev, 1000, "a", Some("k")).unwrap();
        assert_eq!(
            join(&mut ev, 1001, "b", Some("k")),
            Err(SeatqError::Duplicate(first.ticket))
        );
        assert_eq!(ev.line.waiting(), 1);
        assert!(join(&mut ev, 1000 + 300_000, "b", Some("k")).is_ok());
    }

    #[test]
    fn leaving_shifts_everyone_behind() {
        let mut ev = event();
        let t: Vec<_> = (0..4)
            .map(|i| join(&mut ev, 1000, &format!("u{i}"), None).unwrap().ticket)
            .collect();
        let (effects, left) = ev.plan_leave(1001, t[1].to_string().as_bytes()).unwrap();
        assert!(left);
        run(&mut ev, effects);
        let pos =
            |ev: &Event, id: EntryId| ev.plan_status(1002, id.to_string().as_bytes()).unwrap().1;
        assert_eq!(pos(&ev, t[2]).position, 2);
        assert_eq!(pos(&ev, t[1]).state, "left");
        assert!(!ev.plan_leave(1003, t[1].to_string().as_bytes()).unwrap().1);
        assert!(matches!(
            ev.plan_leave(1003, b"9-9"),
            Err(SeatqError::NoSuchTicket(_))
        ));
        assert!(matches!(
            ev.plan_status(1003, b"junk"),
            Err(SeatqError::NoSuchTicket(_))
        ));
    }

    #[test]
    fn status_renews_the_heartbeat_only_when_a_quarter_has_passed() {
        let mut ev = event();
        let t = join(&mut ev, 1000, "a", None).unwrap().ticket.to_string();
        assert!(ev.plan_status(2000, t.as_bytes()).unwrap().0.is_empty());
        let (effects, _) = ev.plan_status(3600, t.as_bytes()).unwrap();
        assert_eq!(effects.len(), 1);
        run(&mut ev, effects);
        let (effects, view) = ev.plan_status(13_599, t.as_bytes()).unwrap();
        assert_eq!(view.state, "waiting");
        assert_eq!(view.heartbeat_deadline, 13_600);
        run(&mut ev, effects);
        let (effects, view) = ev.plan_status(30_000, t.as_bytes()).unwrap();
        assert_eq!(view.state, "expired");
        run(&mut ev, effects);
        assert_eq!(ev.line.waiting(), 0);
        assert_eq!(ev.totals.expired, 1);
    }

    #[test]
    fn sweep_expires_lapsed_tickets_and_ids_stay_increasing() {
        let mut ev = event();
        for i in 0..10 {
            join(&mut ev, 1000 + i, &format!("u{i}"), Some(&format!("k{i}"))).unwrap();
        }
        let t5 = ev.line.get(5).id.to_string();
        let renewal = ev.plan_status(8000, t5.as_bytes()).unwrap().0;
        run(&mut ev, renewal);
        let effects = ev.plan_sweep(11_005, 1000);
        assert_eq!(effects.len(), 5, "tickets 0..=5 lapsed but 5 was renewed");
        run(&mut ev, effects);
        assert_eq!(ev.line.waiting(), 5);
        assert_eq!(ev.plan_status(11_006, t5.as_bytes()).unwrap().1.position, 1);
        let last = ev.last_id;
        let j = join(&mut ev, 5, "late", None).unwrap();
        assert!(j.ticket > last, "a clock step back never reuses IDs");
        let effects = ev.plan_sweep(400_000, 1000);
        assert!(effects.contains(&Effect::Purged { now: 400_000 }));
        run(&mut ev, effects);
        assert_eq!(ev.idempotency.len(), 0);
    }

    #[test]
    fn dequeue_takes_live_tickets_from_the_head() {
        let mut ev = event();
        join(&mut ev, 0, "lapsed", None).unwrap();
        for i in 0..4 {
            join(&mut ev, 5000, &format!("u{i}"), None).unwrap();
        }
        let (effects, taken) = ev.plan_dequeue(10_000, 2);
        assert_eq!(
            taken
                .iter()
                .map(|v| v.user.clone().unwrap())
                .collect::<Vec<_>>(),
            [b"u0".to_vec(), b"u1".to_vec()]
        );
        assert_eq!(effects.len(), 3);
        run(&mut ev, effects);
        assert_eq!(
            (ev.line.waiting(), ev.totals.admitted, ev.totals.expired),
            (2, 2, 1)
        );
        let views = ev.range(10_000, 0, 10);
        assert_eq!(views.iter().map(|v| v.position).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(ev.plan_dequeue(10_000, 10).1.len(), 2);
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
}
