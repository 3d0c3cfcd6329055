//! Admission: the server calls the line. On the primary, every upkeep of an event (the timer,
//! and commands that touch it) moves tickets from the front of the line into sessions as fast
//! as the budget (RATE, BURST) and CAPACITY allow, in line order, whatever the clients do. Each
//! admitted ticket gets a signed pass at that moment; its user claims it with QUEUE.ADMIT within
//! CLAIM-TTL or the session ends as a no-show and frees its place. Pure decisions, unit-tested
//! without Redis.

pub mod budget;
pub mod pass;
pub mod sessions;

use crate::config::Setting;
use crate::entry_id::EntryId;
use crate::error::SeatqError;
use crate::event::Effect;
use crate::event::Event;
use crate::queue::line::{EndState, Serial};
use crate::queue::Target;
use pass::{Claims, PassKey};

/// What signing a pass needs besides the event: the event's key name (a claim) and the
/// configured keys.
pub struct Signer<'a> {
    pub event: &'a [u8],
    pub keys: &'a [PassKey],
}

#[derive(Debug, PartialEq, Eq)]
pub struct Admission {
    pub pass: String,
    pub expires_at: u64,
    /// The session had been claimed before: the same session again.
    pub existing: bool,
}

/// What QUEUE.VERIFY answers about a pass.
#[derive(Debug, PartialEq, Eq)]
pub enum PassState {
    Valid,
    Expired,
    /// Its session ended before the pass expired (revoked, left, completed, no-show).
    Revoked,
    /// Malformed, forged, signed by an unknown key, or for another event.
    Invalid,
}

impl PassState {
    pub fn name(&self) -> &'static str {
        match self {
            PassState::Valid => "valid",
            PassState::Expired => "expired",
            PassState::Revoked => "revoked",
            PassState::Invalid => "invalid",
        }
    }
}

/// `ms` rounded up to a whole second.
fn whole_second(ms: u64) -> u64 {
    ms.div_ceil(1000).saturating_mul(1000)
}

/// When a pass issued at `now` expires: PASS-TTL later, rounded up to a whole second, within
/// the session's maximum (itself whole). A JWT's `exp` is in whole seconds: so that a pass
/// expires exactly when its session does, for every verifier, sessions end on whole seconds.
fn pass_expiry(now: u64, pass_ttl: u64, max_expires_at: u64) -> u64 {
    whole_second(now.saturating_add(pass_ttl)).min(max_expires_at)
}

#[derive(Debug, PartialEq, Eq)]
pub struct PassCheck {
    pub state: PassState,
    pub claims: Option<Claims>,
}

impl Event {
    fn sign(
        &self,
        signer: &Signer,
        serial: Serial,
        user: &[u8],
        now: u64,
        expires_at: u64,
    ) -> Box<str> {
        let claims = Claims::new(signer.event, user, serial, now, expires_at);
        pass::sign(&claims, pass::signer(signer.keys, self.secret.pass_key())).into_boxed_str()
    }

    /// Room left under CAPACITY (usize::MAX without a cap). Every session not ended yet counts:
    /// upkeep ends lapsed ones before it calls anyone, so this is exact where it matters and
    /// costs nothing however many sessions there are.
    pub(crate) fn capacity_left(&self) -> usize {
        match self.config.get(Setting::Capacity) {
            0 => usize::MAX,
            cap => (cap as usize).saturating_sub(self.sessions.len()),
        }
    }

    /// Whether calls can happen at all now: open, not paused, someone waiting.
    fn calling(&self) -> bool {
        self.phase.opened && !self.phase.paused && self.line.waiting() > 0
    }

    /// When the next call is due (None while nobody can be called, or CAPACITY is full: a
    /// session's end is then what is due).
    pub fn next_call(&self, now: u64) -> Option<u64> {
        if !self.calling() || self.capacity_left() == 0 {
            return None;
        }
        let (rate, burst) = (
            self.config.get(Setting::Rate),
            self.config.get(Setting::Burst),
        );
        Some(self.budget.ready_at(now, rate, burst))
    }

    /// Calls the front of the line at `now`: at most `limit` admissions, within the budget and
    /// CAPACITY, in line order. A lapsed ticket met at the front expires instead of being called.
    /// `after` is the last journal ID already planned in this step.
    pub fn plan_calls(
        &self,
        now: u64,
        limit: usize,
        signer: &Signer,
        after: &mut Option<EntryId>,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        if !self.calling() {
            return effects;
        }
        let (rate, burst) = (
            self.config.get(Setting::Rate),
            self.config.get(Setting::Burst),
        );
        let mut budget = self.budget;
        let mut room = self.capacity_left();
        let claim_ttl = self.config.get(Setting::ClaimTtl);
        let pass_ttl = self.config.get(Setting::PassTtl);
        let session_max = self.config.get(Setting::SessionMax);
        let mut k = 0;
        while effects.len() < limit && room > 0 && budget.allows(now, rate, burst) {
            let Some(serial) = self.line.nth_waiting(k) else {
                break;
            };
            k += 1;
            let at = self.next_id(now, *after);
            *after = Some(at);
            let ticket = self.line.get(serial).expect("waiting");
            if ticket.lapsed(now) {
                effects.push(Effect::Expired { at, serial });
                continue;
            }
            let user = ticket.payload().expect("waiting").user();
            let max_expires_at = whole_second(now.saturating_add(session_max));
            let expires_at = pass_expiry(now, pass_ttl, max_expires_at);
            effects.push(Effect::Admitted {
                at,
                serial,
                claim_deadline: now.saturating_add(claim_ttl),
                expires_at,
                max_expires_at,
                pass: self.sign(signer, serial, user, now, expires_at),
            });
            budget.consume(now, rate);
            room -= 1;
        }
        effects
    }

    /// Ends sessions whose deadline passed at `now` (no-shows, expired passes): at most `limit`.
    pub fn plan_session_lapses(
        &self,
        now: u64,
        limit: usize,
        after: &mut Option<EntryId>,
    ) -> Vec<Effect> {
        self.sessions
            .lapsed(now)
            .take(limit)
            .map(|serial| {
                let at = self.next_id(now, *after);
                *after = Some(at);
                self.session_lapse(serial, at)
            })
            .collect()
    }

    /// A renewal of a live session's pass on its user's activity: PASS-TTL from now, up to the
    /// session's maximum, and only once a quarter of PASS-TTL has passed since the last one.
    pub fn plan_session_activity(
        &self,
        now: u64,
        serial: Serial,
        signer: &Signer,
    ) -> Option<Effect> {
        let session = self.sessions.get(serial).filter(|s| s.live(now))?;
        let pass_ttl = self.config.get(Setting::PassTtl);
        let expires_at = pass_expiry(now, pass_ttl, session.max_expires_at);
        let due = session.expires_at < now.saturating_add(pass_ttl - pass_ttl / 4);
        (due && expires_at > session.expires_at).then(|| Effect::Renewed {
            serial,
            expires_at,
            pass: self.sign(signer, serial, &session.user, now, expires_at),
        })
    }

    /// QUEUE.ADMIT: claims the session of an admitted ticket (idempotent: a claimed session
    /// answers its pass again). A ticket still waiting answers NOT_READY with its position and
    /// when to ask again, and keeps its heartbeat: the effects apply whatever the answer.
    pub fn plan_admit(
        &self,
        now: u64,
        target: Target,
        signer: &Signer,
    ) -> Result<(Vec<Effect>, Result<Admission, SeatqError>), SeatqError> {
        let serial = self.resolve(target)?;
        if let Some(session) = self.sessions.get(serial) {
            if !session.live(now) {
                let end = if session.claimed {
                    EndState::Expired
                } else {
                    EndState::NoShow
                };
                return Err(SeatqError::TicketEnded(end.name()));
            }
            let mut effects = Vec::new();
            let renewal = self.plan_session_activity(now, serial, signer);
            let (pass, expires_at) = match &renewal {
                Some(Effect::Renewed {
                    pass, expires_at, ..
                }) => (pass.to_string(), *expires_at),
                _ => (session.pass.to_string(), session.expires_at),
            };
            if !session.claimed {
                effects.push(Effect::Claimed {
                    at: self.next_id(now, None),
                    serial,
                });
            }
            effects.extend(renewal);
            return Ok((
                effects,
                Ok(Admission {
                    pass,
                    expires_at,
                    existing: session.claimed,
                }),
            ));
        }
        let view = self.view(serial, now);
        if view.state != "waiting" {
            // Lapsed, left, ...: a lapsed ticket is left for the timer to expire.
            return Err(SeatqError::TicketEnded(view.state));
        }
        // Polling ADMIT keeps the ticket alive like polling STATUS.
        let renewal = self.renewal(serial, now).into_iter().collect();
        Ok((
            renewal,
            Err(SeatqError::NotReady {
                position: view.position as u64,
                retry_after_ms: view.retry_after_ms,
            }),
        ))
    }

    /// QUEUE.RENEW: reissues a live session's pass with PASS-TTL from now, up to SESSION-MAX.
    pub fn plan_renew(
        &self,
        now: u64,
        target: Target,
        signer: &Signer,
    ) -> Result<(Vec<Effect>, Admission), SeatqError> {
        let serial = self.resolve(target)?;
        let Some(session) = self.sessions.get(serial).filter(|s| s.live(now)) else {
            let view = self.view(serial, now);
            return Err(if view.state == "waiting" {
                SeatqError::NotReady {
                    position: view.position as u64,
                    retry_after_ms: view.retry_after_ms,
                }
            } else {
                SeatqError::TicketEnded(view.state)
            });
        };
        let expires_at = pass_expiry(
            now,
            self.config.get(Setting::PassTtl),
            session.max_expires_at,
        )
        .max(session.expires_at);
        let pass = self.sign(signer, serial, &session.user, now, expires_at);
        Ok((
            vec![Effect::Renewed {
                serial,
                expires_at,
                pass: pass.clone(),
            }],
            Admission {
                pass: pass.into(),
                expires_at,
                existing: session.claimed,
            },
        ))
    }

    /// QUEUE.REVOKE: ends a session (the origin's decision). Answers whether one was live.
    pub fn plan_revoke(&self, now: u64, target: Target) -> Result<(Vec<Effect>, bool), SeatqError> {
        let serial = self.resolve(target)?;
        Ok(match self.sessions.get(serial) {
            Some(s) if s.live(now) => (
                vec![Effect::SessionEnded {
                    at: self.next_id(now, None),
                    serial,
                    end: EndState::Revoked,
                }],
                true,
            ),
            Some(_) => (
                vec![self.session_lapse(serial, self.next_id(now, None))],
                false,
            ),
            None => (Vec::new(), false),
        })
    }

    /// Ends the user's live session, if any (SEAT.CONFIRM with CONFIRM-ENDS-SESSION).
    pub fn plan_session_end_of(
        &self,
        now: u64,
        user: &[u8],
        after: Option<EntryId>,
        end: EndState,
    ) -> Option<Effect> {
        let serial = self.sessions.of_user(user)?;
        self.sessions
            .get(serial)
            .filter(|s| s.live(now))
            .map(|_| Effect::SessionEnded {
                at: self.next_id(now, after),
                serial,
                end,
            })
    }

    /// QUEUE.VERIFY: what a pass is worth now, read-only.
    pub fn check_pass_state(
        &self,
        now: u64,
        token: &[u8],
        event: &[u8],
        keys: &[PassKey],
    ) -> PassCheck {
        let Ok(claims) = pass::verify(token, keys, self.secret.pass_key()) else {
            return PassCheck {
                state: PassState::Invalid,
                claims: None,
            };
        };
        let session = self.sessions.get(claims.tkt);
        let state = if !claims.event_is(event) {
            PassState::Invalid
        } else if claims.exp.saturating_mul(1000) <= now {
            PassState::Expired
        } else if session.is_none_or(|s| !s.live(now) || !claims.user_is(&s.user)) {
            PassState::Revoked
        } else {
            PassState::Valid
        };
        PassCheck {
            state,
            claims: Some(claims),
        }
    }

    /// Checks a PASS given to SEAT.HOLD: a valid pass of `user` for this event whose session is
    /// live. Without one, the hold is refused only when the event has REQUIRE-PASS on.
    pub fn check_pass(
        &self,
        now: u64,
        user: &[u8],
        token: Option<&[u8]>,
        event: &[u8],
        keys: &[PassKey],
    ) -> Result<(), SeatqError> {
        let Some(token) = token else {
            return if self.config.get(Setting::RequirePass) == 1 {
                Err(SeatqError::PassRequired)
            } else {
                Ok(())
            };
        };
        // The session's current pass, compared as is: no signature to check (and the only way a
        // pass issued before passes were signed tokens is accepted), unless its key was retired.
        let current = self
            .sessions
            .of_user(user)
            .and_then(|serial| self.sessions.get(serial))
            .filter(|s| s.live(now));
        if current.is_some_and(|s| s.pass.as_bytes() == token)
            && pass::issued_with_listed_key(token, keys)
        {
            return Ok(());
        }
        let check = self.check_pass_state(now, token, event, keys);
        let for_user = check.claims.as_ref().is_some_and(|c| c.user_is(user));
        if check.state == PassState::Valid && for_user {
            Ok(())
        } else {
            Err(SeatqError::PassInvalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::tests::{event, join, run, SIGNER};

    fn configured(rate: u64, burst: u64, capacity: u64) -> Event {
        let mut ev = event();
        let values = vec![
            (Setting::Rate, rate),
            (Setting::Burst, burst),
            (Setting::Capacity, capacity),
            (Setting::Heartbeat, 60_000),
            (Setting::PassTtl, 10_000),
            (Setting::ClaimTtl, 2_000),
            (Setting::SessionMax, 30_000),
        ];
        run(&mut ev, vec![Effect::Configured(values)]);
        ev
    }

    /// One upkeep step's calls, applied.
    fn call(ev: &mut Event, now: u64) -> Vec<Serial> {
        let mut after = None;
        let effects = ev.plan_calls(now, usize::MAX, &SIGNER, &mut after);
        let called = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Admitted { serial, .. } => Some(*serial),
                _ => None,
            })
            .collect();
        run(ev, effects);
        called
    }

    fn admit(ev: &mut Event, now: u64, ticket: &str) -> Result<Admission, SeatqError> {
        let (effects, answer) = ev.plan_admit(now, Target::Ticket(ticket.as_bytes()), &SIGNER)?;
        run(ev, effects);
        answer
    }

    #[test]
    fn the_server_calls_the_line_in_order_within_the_budget() {
        let mut ev = configured(10, 2, 0);
        let t: Vec<String> = (0..6)
            .map(|i| join(&mut ev, 1000, &format!("u{i}"), None).unwrap().ticket)
            .collect();
        assert_eq!(call(&mut ev, 1000), vec![0, 1], "BURST at once");
        assert_eq!(call(&mut ev, 1050), Vec::<Serial>::new());
        assert_eq!(ev.next_call(1050), Some(1100), "one interval later");
        assert_eq!(call(&mut ev, 1100), vec![2]);
        assert_eq!(
            call(&mut ev, 1300),
            vec![3, 4],
            "catch-up is capped by BURST"
        );
        // Waiting tickets learn their state; the called claim their pass once.
        assert!(matches!(
            admit(&mut ev, 1300, &t[5]),
            Err(SeatqError::NotReady { position: 1, .. })
        ));
        let first = admit(&mut ev, 1300, &t[0]).unwrap();
        assert!(!first.existing);
        let again = admit(&mut ev, 1301, &t[0]).unwrap();
        assert!(again.existing && again.pass == first.pass);
        assert_eq!(ev.totals.admitted, 5);
    }

    #[test]
    fn a_no_show_costs_only_its_claim_window() {
        let mut ev = configured(1000, 100, 1);
        let t: Vec<String> = (0..3)
            .map(|i| join(&mut ev, 0, &format!("u{i}"), None).unwrap().ticket)
            .collect();
        assert_eq!(call(&mut ev, 0), vec![0], "CAPACITY 1");
        assert_eq!(call(&mut ev, 1000), Vec::<Serial>::new());
        assert_eq!(
            ev.sessions.next_deadline(),
            Some(2000),
            "the claim deadline"
        );
        let mut after = None;
        let ended = ev.plan_session_lapses(2000, 10, &mut after);
        assert!(matches!(
            ended[..],
            [Effect::SessionEnded {
                end: EndState::NoShow,
                ..
            }]
        ));
        run(&mut ev, ended);
        assert_eq!(
            call(&mut ev, 2000),
            vec![1],
            "the next user is called at once"
        );
        assert_eq!(
            admit(&mut ev, 2001, &t[0]),
            Err(SeatqError::TicketEnded("no_show"))
        );
    }

    #[test]
    fn lapsed_tickets_are_never_called() {
        let mut ev = configured(1000, 100, 0);
        join(&mut ev, 0, "gone", None).unwrap();
        join(&mut ev, 50_000, "here", None).unwrap();
        let mut after = None;
        let effects = ev.plan_calls(70_000, 10, &SIGNER, &mut after);
        assert!(matches!(effects[0], Effect::Expired { serial: 0, .. }));
        assert!(matches!(effects[1], Effect::Admitted { serial: 1, .. }));
    }

    #[test]
    fn sessions_renew_up_to_the_maximum_and_can_be_revoked() {
        let mut ev = configured(1000, 100, 0);
        let t = join(&mut ev, 0, "alice", None).unwrap().ticket;
        call(&mut ev, 0);
        admit(&mut ev, 100, &t).unwrap();
        let target = Target::Ticket(t.as_bytes());
        let (effects, renewed) = ev.plan_renew(9_000, target, &SIGNER).unwrap();
        assert_eq!(renewed.expires_at, 19_000);
        run(&mut ev, effects);
        let (effects, _) = ev.plan_renew(18_000, target, &SIGNER).unwrap();
        run(&mut ev, effects);
        let (effects, capped) = ev.plan_renew(25_000, target, &SIGNER).unwrap();
        assert_eq!(capped.expires_at, 30_000, "SESSION-MAX");
        run(&mut ev, effects);
        let pass = capped.pass.clone();
        assert_eq!(
            ev.check_pass_state(26_000, pass.as_bytes(), b"ev", &[])
                .state,
            PassState::Valid
        );
        assert!(ev
            .check_pass(26_000, b"alice", Some(pass.as_bytes()), b"ev", &[])
            .is_ok());
        assert_eq!(
            ev.check_pass(26_000, b"bob", Some(pass.as_bytes()), b"ev", &[]),
            Err(SeatqError::PassInvalid)
        );
        assert_eq!(
            ev.check_pass_state(26_000, pass.as_bytes(), b"other", &[])
                .state,
            PassState::Invalid
        );
        let (effects, live) = ev.plan_revoke(26_000, target).unwrap();
        assert!(live);
        run(&mut ev, effects);
        assert_eq!(
            ev.check_pass_state(26_001, pass.as_bytes(), b"ev", &[])
                .state,
            PassState::Revoked
        );
        assert_eq!(
            ev.check_pass(26_001, b"alice", Some(pass.as_bytes()), b"ev", &[]),
            Err(SeatqError::PassInvalid)
        );
        assert_eq!(ev.view(0, 26_001).state, "revoked");
    }

    #[test]
    fn a_pass_expires_exactly_when_its_session_does() {
        let mut ev = configured(1000, 100, 0);
        let t = join(&mut ev, 0, "alice", None).unwrap().ticket;
        call(&mut ev, 1_234);
        let issued = admit(&mut ev, 1_300, &t).unwrap();
        assert_eq!(
            issued.expires_at, 12_000,
            "PASS-TTL later, on a whole second"
        );
        let renewed = ev.plan_renew(9_999, Target::Ticket(t.as_bytes()), &SIGNER);
        assert_eq!(renewed.unwrap().1.expires_at, 20_000);
        let pass = issued.pass.as_bytes();
        let state = |now| ev.check_pass_state(now, pass, b"ev", &[]).state;
        assert_eq!(state(11_999), PassState::Valid);
        assert_eq!(state(12_000), PassState::Expired);
        let session = ev.sessions.get(0).unwrap();
        assert!(session.live(11_999) && !session.live(12_000));
        assert_eq!(
            session.max_expires_at, 32_000,
            "SESSION-MAX, on a whole second"
        );
    }

    #[test]
    fn a_user_never_holds_two_sessions() {
        // The pass lapses; the user rejoins before the timer ends the old session.
        let mut ev = configured(1000, 100, 0);
        join(&mut ev, 0, "alice", None).unwrap();
        call(&mut ev, 0);
        let again = join(&mut ev, 3_000, "alice", None).unwrap();
        assert!(!again.existing, "the no-show ended, a new ticket");
        assert_eq!(ev.sessions.len(), 0);
        call(&mut ev, 3_000);
        assert_eq!(ev.sessions.len(), 1);
        ev.check_invariants().unwrap();
    }

    #[test]
    fn paused_admission_calls_nobody_and_has_no_eta() {
        let mut ev = configured(1000, 100, 0);
        let t = join(&mut ev, 0, "a", None).unwrap().ticket;
        let at = ev.next_id(0, None);
        run(&mut ev, vec![Effect::Paused { at }]);
        assert_eq!(call(&mut ev, 10), Vec::<Serial>::new());
        assert_eq!(ev.next_call(10), None);
        let view = ev
            .plan_status(10, Target::Ticket(t.as_bytes()), &SIGNER)
            .unwrap()
            .1;
        assert_eq!((view.position, view.eta_ms), (1, None));
    }
}
