//! What the primary does for an event on its own, without any client: open it at OPENS-AT,
//! close it at CLOSES-AT, end lapsed sessions (no-shows, expired passes), expire lapsed tickets,
//! call the front of the line, return lapsed holds, purge idempotency keys, drop old
//! tombstones. The timer runs it for events that are due; commands run a small step of it
//! before their own work, so what they answer never depends on how late the timer is.
//!
//! Every stage is bounded by `Limits`: one step never does work that grows with the event.
//! Stages apply as they go (a later stage plans on the state the earlier ones left).

use crate::admission::Signer;
use crate::config::Setting;
use crate::error::SeatqError;
use crate::event::{Effect, Event};

/// How much one upkeep step may do.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Effects per stage (calls, expiries, session ends, hold returns).
    pub effects: usize,
    /// Segments of the line scanned for lapsed tickets, or compacted.
    pub segments: usize,
    /// Idempotency records purged.
    pub purge: usize,
}

impl Limits {
    /// The timer's step: a slice it can finish well inside its time budget.
    pub const TIMER: Limits = Limits {
        effects: 16,
        segments: 2,
        purge: 256,
    };
    /// What a command does before its own work: the transitions its answer depends on
    /// (opening, closing, calls at the front), kept small.
    pub const COMMAND: Limits = Limits {
        effects: 8,
        segments: 1,
        purge: 64,
    };
}

/// Applies effects to an event as part of a larger change (a transaction on Redis, or the
/// event itself in tests).
pub trait Apply {
    fn event(&mut self) -> &mut Event;
    fn apply(&mut self, effects: Vec<Effect>) -> Result<(), SeatqError>;
}

/// How long after the oldest idempotency record expires a purge waits, so purges batch up.
pub const PURGE_SLACK_MS: u64 = 1_000;

/// One bounded step of upkeep at `now`; returns whether anything was done.
pub fn step(
    t: &mut impl Apply,
    now: u64,
    limits: Limits,
    signer: &Signer,
) -> Result<bool, SeatqError> {
    let mut done = false;
    let mut stage = |t: &mut dyn ApplyDyn, effects: Vec<Effect>| -> Result<(), SeatqError> {
        if !effects.is_empty() {
            done = true;
            t.apply_dyn(effects)?;
        }
        Ok(())
    };
    let phase = phase_changes(t.event(), now);
    stage(t, phase)?;
    let ended = t
        .event()
        .plan_session_lapses(now, limits.effects, &mut None);
    stage(t, ended)?;
    let event = t.event();
    let lapsed = event.line.lapsed(now, limits.effects, limits.segments);
    let mut after = None;
    let expired = lapsed
        .into_iter()
        .map(|serial| {
            let at = event.next_id(now, after);
            after = Some(at);
            Effect::Expired { at, serial }
        })
        .collect();
    stage(t, expired)?;
    let calls = t.event().plan_calls(now, limits.effects, signer, &mut None);
    stage(t, calls)?;
    let returns = t.event().plan_hold_expiry(now, &mut None, limits.effects);
    stage(t, returns)?;
    let event = t.event();
    let purge = match event.idempotency.next_expiry() {
        Some(first) if first.saturating_add(PURGE_SLACK_MS) <= now => {
            let mut probe = count_purgeable(event, now, limits.purge);
            if probe > 0 {
                probe = probe.min(limits.purge);
                vec![Effect::Purged {
                    now,
                    count: probe as u32,
                }]
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    };
    stage(t, purge)?;
    let compaction = t
        .event()
        .line
        .compaction_step(limits.segments)
        .map(|through| Effect::Compacted { through })
        .into_iter()
        .collect();
    stage(t, compaction)?;
    Ok(done)
}

/// Object-safe view of `Apply` for the stage closure.
trait ApplyDyn {
    fn apply_dyn(&mut self, effects: Vec<Effect>) -> Result<(), SeatqError>;
}

impl<T: Apply> ApplyDyn for T {
    fn apply_dyn(&mut self, effects: Vec<Effect>) -> Result<(), SeatqError> {
        self.apply(effects)
    }
}

/// How many records a purge at `now` takes off the front (at most `limit`).
fn count_purgeable(event: &Event, now: u64, limit: usize) -> usize {
    event
        .idempotency
        .expiries()
        .take(limit)
        .take_while(|&t| t <= now)
        .count()
}

/// Opening at OPENS-AT and closing at CLOSES-AT.
fn phase_changes(event: &Event, now: u64) -> Vec<Effect> {
    let mut effects = Vec::new();
    let mut after = None;
    let opens_at = event.config.get(Setting::OpensAt);
    if !event.phase.opened && now >= opens_at {
        let at = event.next_id(now, after);
        after = Some(at);
        effects.push(Effect::Opened { at });
    }
    let closes_at = event.config.get(Setting::ClosesAt);
    if !event.phase.closed && closes_at > 0 && now >= closes_at {
        effects.push(Effect::Closed {
            at: event.next_id(now, after),
        });
    }
    effects
}

impl Event {
    /// When upkeep next has something to do (None: nothing until a command changes the event).
    pub fn next_due(&self, now: u64) -> Option<u64> {
        let mut due: Option<u64> = None;
        let mut at = |t: Option<u64>| {
            if let Some(t) = t {
                due = Some(due.map_or(t, |d| d.min(t)));
            }
        };
        if !self.phase.opened {
            at(Some(self.config.get(Setting::OpensAt)));
        }
        let closes_at = self.config.get(Setting::ClosesAt);
        if !self.phase.closed && closes_at > 0 {
            at(Some(closes_at));
        }
        at(self.sessions.next_deadline());
        at(self.line.next_lapse());
        at(self.next_call(now));
        at(self.inventory.next_deadline());
        at(self
            .idempotency
            .next_expiry()
            .map(|t| t.saturating_add(PURGE_SLACK_MS)));
        if self.line.compaction_due() {
            at(Some(now));
        }
        if self.journal.is_some()
            && self.config.journal_on()
            && self.config.get(Setting::JournalMaxAge) > 0
        {
            at(Some(self.journal_trim_at));
        }
        due
    }
}

/// Upkeep applied straight to an event (tests; the same stages as on Redis).
#[cfg(test)]
impl Apply for Event {
    fn event(&mut self) -> &mut Event {
        self
    }

    fn apply(&mut self, effects: Vec<Effect>) -> Result<(), SeatqError> {
        for effect in &effects {
            Event::apply(self, effect).map_err(|r| SeatqError::Internal(r.into()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::tests::{event, join, SIGNER};
    use crate::queue::Target;

    #[test]
    fn an_event_with_nothing_due_costs_nothing() {
        let mut ev = event();
        assert_eq!(ev.next_due(0), None);
        assert!(!step(&mut ev, 0, Limits::TIMER, &SIGNER).unwrap());
    }

    #[test]
    fn upkeep_opens_calls_and_expires_on_its_own() {
        let mut ev = event();
        Apply::apply(
            &mut ev,
            vec![Effect::Configured(vec![
                (Setting::OpensAt, 5_000),
                (Setting::Burst, 3),
            ])],
        )
        .unwrap();
        assert!(!ev.phase.opened);
        let t: Vec<String> = (0..5)
            .map(|i| join(&mut ev, 1000, &format!("u{i}"), None).unwrap().ticket)
            .collect();
        let before = ev
            .plan_status(1001, Target::Ticket(t[0].as_bytes()), &SIGNER)
            .unwrap()
            .1;
        assert!(
            before.prequeue && before.position == 0,
            "hidden before opening"
        );
        assert_eq!(ev.next_due(1001), Some(5_000));
        step(&mut ev, 5_000, Limits::TIMER, &SIGNER).unwrap();
        assert!(ev.phase.opened);
        assert_eq!(ev.sessions.len(), 3, "BURST called at opening");
        // Heartbeats lapse at 11,000: the two left waiting expire with nobody polling.
        step(&mut ev, 11_000, Limits::TIMER, &SIGNER).unwrap();
        assert_eq!(ev.line.waiting(), 0);
        assert_eq!(ev.totals.expired, 2);
        ev.check_invariants().unwrap();
    }

    #[test]
    fn compaction_is_bounded_and_replayable() {
        let mut ev = event();
        let n = crate::queue::line::TOMBSTONES_KEPT + 20_000;
        for i in 0..n {
            join(&mut ev, 1000, &format!("u{i}"), None).unwrap();
        }
        let (effects, _) = ev.plan_dequeue(1001, n - 3, &mut |_| true);
        crate::queue::tests::run(&mut ev, effects);
        let mut steps = 0;
        while ev.line.compaction_due() {
            let through = ev.line.compaction_step(Limits::TIMER.segments).unwrap();
            Apply::apply(&mut ev, vec![Effect::Compacted { through }]).unwrap();
            steps += 1;
        }
        assert!(steps > 10, "many small steps: {steps}");
        assert_eq!(ev.line.waiting(), 3);
        ev.check_invariants().unwrap();
    }
}
