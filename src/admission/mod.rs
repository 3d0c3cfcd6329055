//! The front door: QUEUE.ADMIT decides who may enter, under a rate budget (RATE, BURST) and a
//! cap on concurrently admitted users (CAPACITY). Pure decisions, unit-tested without Redis.

pub mod budget;
pub mod sessions;

use crate::config::Setting;
use crate::error::SeatqError;
use crate::event::{Effect, Event, SessionEnd};
use crate::queue::line::{EndState, TicketBody};
use sessions::Pass;

#[derive(Debug, PartialEq, Eq)]
pub struct Admission {
    pub pass: Pass,
    pub expires_at: u64,
    /// The ticket was already admitted: the same pass again.
    pub existing: bool,
}

/// The longest `retry_after_ms` suggested while CAPACITY is full: someone may leave any time.
const CAPACITY_POLL_MS: u64 = 1000;

impl Event {
    /// Admissions per second for ETAs: measured over the last minute, RATE before that.
    pub fn outflow_rate(&self, now: u64) -> f64 {
        self.admission_history
            .rate(now, self.config.get(Setting::Rate))
    }

    /// QUEUE.ADMIT: admits the ticket if it is at the front and the budget allows; `pass` is
    /// fresh randomness, used only if the ticket is admitted now.
    pub fn plan_admit(
        &self,
        now: u64,
        ticket: &[u8],
        pass: Pass,
    ) -> Result<(Vec<Effect>, Admission), SeatqError> {
        let index = self.find_ticket(ticket)?;
        let t = self.line.get(index);
        match &t.body {
            TicketBody::Ended(EndState::Admitted) => {
                return match self.sessions.get(t.id) {
                    Some(s) if s.expires_at > now => Ok((
                        Vec::new(),
                        Admission {
                            pass: s.pass,
                            expires_at: s.expires_at,
                            existing: true,
                        },
                    )),
                    Some(_) => Err(SeatqError::TicketEnded("expired")),
                    None => Err(SeatqError::TicketEnded("admitted")), // taken by QUEUE.DEQUEUE: no pass
                };
            }
            TicketBody::Ended(state) => return Err(SeatqError::TicketEnded(state.name())),
            TicketBody::Waiting {
                heartbeat_deadline, ..
            } if *heartbeat_deadline <= now => {
                return Err(SeatqError::TicketEnded("expired"));
            }
            TicketBody::Waiting { .. } => {}
        }
        let position = self.line.position(index) as u64;
        let opens_at = self.config.get(Setting::OpensAt);
        if now < opens_at {
            return Err(SeatqError::NotReady {
                position,
                retry_after_ms: opens_at - now,
            });
        }
        let (rate, burst) = (
            self.config.get(Setting::Rate),
            self.config.get(Setting::Burst),
        );
        let budget_wait = self.admission_budget.wait_ms(now, rate, burst);
        if position > 1 {
            // Everyone ahead must be admitted first, each taking one interval of the budget.
            let ahead = (position - 1) as f64 * 1000.0 / rate as f64;
            return Err(SeatqError::NotReady {
                position,
                retry_after_ms: budget_wait.max(ahead.ceil() as u64),
            });
        }
        let capacity = self.config.get(Setting::Capacity);
        if capacity > 0 && self.sessions.live(now) as u64 >= capacity {
            let next = self
                .sessions
                .next_expiry(now)
                .map_or(CAPACITY_POLL_MS, |t| t - now);
            return Err(SeatqError::NotReady {
                position,
                retry_after_ms: next.clamp(1, CAPACITY_POLL_MS),
            });
        }
        if budget_wait > 0 {
            return Err(SeatqError::RateLimited {
                position,
                retry_after_ms: budget_wait,
            });
        }
        let expires_at = now.saturating_add(self.config.get(Setting::PassTtl));
        let effect = Effect::Admitted {
            at: self.next_id(now, None),
            ticket: t.id,
            pass,
            expires_at,
        };
        Ok((
            vec![effect],
            Admission {
                pass,
                expires_at,
                existing: false,
            },
        ))
    }

    /// Ends the user's live session, if any (SEAT.CONFIRM with CONFIRM-ENDS-SESSION).
    pub fn plan_session_end_of(
        &self,
        now: u64,
        user: &[u8],
        after: Option<crate::entry_id::EntryId>,
        why: SessionEnd,
    ) -> Option<Effect> {
        let ticket = self.sessions.of_user(user)?;
        (self.sessions.get(ticket)?.expires_at > now).then(|| Effect::SessionEnded {
            at: self.next_id(now, after),
            ticket,
            why,
        })
    }

    /// Checks a PASS given to SEAT.HOLD: it must be a live pass of `user`. Without one, the
    /// hold is refused only when the event has REQUIRE-PASS on.
    pub fn check_pass(&self, now: u64, user: &[u8], pass: Option<&[u8]>) -> Result<(), SeatqError> {
        let Some(text) = pass else {
            return if self.config.get(Setting::RequirePass) == 1 {
                Err(SeatqError::PassRequired)
            } else {
                Ok(())
            };
        };
        let valid = sessions::pass_from_hex(text)
            .and_then(|p| self.sessions.of_pass(&p))
            .and_then(|ticket| self.sessions.get(ticket))
            .is_some_and(|s| &*s.user == user && s.expires_at > now);
        if valid {
            Ok(())
        } else {
            Err(SeatqError::PassInvalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EventConfig;
    use crate::queue::payload::TicketPayload;

    fn event(rate: u64, burst: u64, capacity: u64) -> Event {
        let mut config = EventConfig::from_defaults();
        for (s, v) in [
            (Setting::Rate, rate),
            (Setting::Burst, burst),
            (Setting::Capacity, capacity),
            (Setting::Heartbeat, 60_000),
            (Setting::PassTtl, 10_000),
        ] {
            config.set(s, v);
        }
        Event::new(config)
    }

    fn run(ev: &mut Event, effects: Vec<Effect>) {
        for e in &effects {
            ev.apply(e, true);
        }
    }

    fn join(ev: &mut Event, now: u64, user: &str) -> String {
        let (effects, joined) = ev
            .plan_enqueue(now, TicketPayload::new(user.as_bytes(), &[]).unwrap(), None)
            .unwrap();
        run(ev, effects);
        joined.ticket.to_string()
    }

    fn admit(ev: &mut Event, now: u64, ticket: &str, seed: u8) -> Result<Admission, SeatqError> {
        let (effects, a) = ev.plan_admit(now, ticket.as_bytes(), [seed; 16])?;
        run(ev, effects);
        Ok(a)
    }

    #[test]
    fn only_the_front_is_admitted_and_no_position_bypasses_the_budget() {
        let mut ev = event(10, 2, 0);
        let t: Vec<String> = (0..5)
            .map(|i| join(&mut ev, 1000, &format!("u{i}")))
            .collect();
        assert_eq!(
            admit(&mut ev, 1000, &t[1], 1),
            Err(SeatqError::NotReady {
                position: 2,
                retry_after_ms: 100
            })
        );
        let first = admit(&mut ev, 1000, &t[0], 1).unwrap();
        assert_eq!(
            (first.pass, first.expires_at, first.existing),
            ([1; 16], 11_000, false)
        );
        assert_eq!(
            admit(&mut ev, 1000, &t[0], 9).unwrap(),
            Admission {
                pass: [1; 16],
                expires_at: 11_000,
                existing: true
            },
            "idempotent"
        );
        admit(&mut ev, 1000, &t[1], 2).unwrap();
        assert_eq!(
            admit(&mut ev, 1000, &t[2], 3),
            Err(SeatqError::RateLimited {
                position: 1,
                retry_after_ms: 100
            })
        );
        assert_eq!(
            admit(&mut ev, 1099, &t[2], 3),
            Err(SeatqError::RateLimited {
                position: 1,
                retry_after_ms: 1
            })
        );
        admit(&mut ev, 1100, &t[2], 3).unwrap();
        assert_eq!(ev.totals.admitted, 3);
    }

    #[test]
    fn capacity_frees_when_a_session_ends() {
        let mut ev = event(1000, 100, 2);
        let t: Vec<String> = (0..3).map(|i| join(&mut ev, 0, &format!("u{i}"))).collect();
        admit(&mut ev, 0, &t[0], 1).unwrap();
        admit(&mut ev, 5_000, &t[1], 2).unwrap();
        assert!(matches!(
            admit(&mut ev, 5_000, &t[2], 3),
            Err(SeatqError::NotReady { position: 1, .. })
        ));
        // The pass of t[0] lapses at 10,000: capacity frees even before the timer ends it.
        assert!(admit(&mut ev, 9_999, &t[2], 3).is_err());
        admit(&mut ev, 10_000, &t[2], 3).unwrap();
        // Leaving ends a session at once.
        let (effects, left) = ev.plan_leave(10_001, t[1].as_bytes()).unwrap();
        assert!(left);
        run(&mut ev, effects);
        assert_eq!(ev.sessions.live(10_001), 1);
        assert!(matches!(
            ev.plan_admit(10_002, t[1].as_bytes(), [0; 16]),
            Err(SeatqError::TicketEnded("left"))
        ));
    }

    #[test]
    fn passes_are_bound_to_their_user_and_expire() {
        let mut ev = event(100, 10, 0);
        let t = join(&mut ev, 0, "alice");
        let a = admit(&mut ev, 0, &t, 0xab).unwrap();
        let hex = sessions::pass_to_hex(&a.pass);
        assert_eq!(ev.check_pass(1, b"alice", Some(hex.as_bytes())), Ok(()));
        assert_eq!(
            ev.check_pass(1, b"mallory", Some(hex.as_bytes())),
            Err(SeatqError::PassInvalid)
        );
        assert_eq!(
            ev.check_pass(1, b"alice", Some(b"00000000000000000000000000000000")),
            Err(SeatqError::PassInvalid)
        );
        assert_eq!(
            ev.check_pass(10_000, b"alice", Some(hex.as_bytes())),
            Err(SeatqError::PassInvalid)
        );
        assert_eq!(ev.check_pass(1, b"alice", None), Ok(()));
        ev.config.set(Setting::RequirePass, 1);
        assert_eq!(
            ev.check_pass(1, b"alice", None),
            Err(SeatqError::PassRequired)
        );
    }

    #[test]
    fn the_line_does_not_open_before_opens_at() {
        let mut ev = event(100, 10, 0);
        ev.config.set(Setting::OpensAt, 5_000);
        let t = join(&mut ev, 1_000, "early");
        assert_eq!(
            admit(&mut ev, 1_000, &t, 1),
            Err(SeatqError::NotReady {
                position: 1,
                retry_after_ms: 4_000
            })
        );
        admit(&mut ev, 5_000, &t, 1).unwrap();
    }
}
