//! How each user moves on from the reply to its command.

use std::sync::atomic::Ordering;

use redis::Value;
use seatq_testkit::reply::reply_error;

use super::request::Request;
use super::{Exit, Step, Worker, LINGER_POLL_US, MIN_POLL_US};
use crate::plan::{CalledFate, WaitingFate, PAGE_LOAD_US, RETRY_JOIN_US};
use crate::reply::{describe, field_int, field_text};
use crate::sale::{user_name, USER_LIMIT};
use crate::stats::Expect;

/// Clock granularity between this process and the server (same machine, ms).
const CLOCK_SLACK_MS: u64 = 5;

/// The wall clock in ms since the epoch: the server's clock on the same machine.
/// How far a primary leaves a waiting ticket's heartbeat deadline from its time when a poll
/// or a repeated join touches it: it renews it to HEARTBEAT only once less than 3/4 of
/// HEARTBEAT remains.
fn renewed_ms(settings: &crate::sale::Settings) -> u64 {
    settings.heartbeat_ms - settings.heartbeat_ms / 4
}

pub fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Which deadline the server gave lapsed.
#[derive(Clone, Copy, Debug)]
enum Deadline {
    Heartbeat,
    Claim,
    Pass,
    /// The call's session: the earlier of the claim window and the pass.
    Call,
    Hold,
}

/// What explains a lapse.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lapse {
    /// Before its deadline: a module bug (counted as an unexpected reply).
    Premature,
    /// A fault's outage since the user last heard from the server (`--chaos`).
    Fault,
    /// The client came back too late.
    Slow,
}

/// The serial of a ticket `<serial>.<hex>`.
pub fn serial_of(ticket: &str) -> Option<u32> {
    ticket.split_once('.')?.0.parse().ok()
}

impl Worker<'_> {
    pub(super) fn on_reply(&mut self, request: Request, reply: Value) {
        let now = self.shared.now_us();
        match request {
            Request::Join(slot) => self.on_join(slot, &reply, now),
            Request::RetryJoin(slot) => self.on_retried_join(slot, &reply, now),
            Request::Status(slot) => self.on_status(slot, &reply, now),
            Request::Claim(slot) => self.on_claim(slot, &reply, now),
            Request::Hold(slot) => self.on_hold(slot, &reply, now),
            Request::ExtraHold(slot, seat) => self.on_extra_hold(slot, seat, &reply, now),
            Request::Confirm(slot) => self.on_confirm(slot, &reply, now),
            Request::Leave(slot, exit) => self.on_leave(slot, exit, &reply, now),
            Request::LingerStatus(slot) => self.on_linger_status(slot, &reply, now),
            Request::LingerCheck(slot, stage) => self.on_linger_check(slot, stage, &reply, now),
            Request::Resolve(slot) => self.on_resolve(slot, &reply, now),
            Request::Inventory => self.on_inventory(&reply, now),
        }
    }

    fn unexpected(&mut self, slot: usize, what: &str, reply: &Value) {
        let s = &self.shoppers[slot];
        let user = user_name(s.user);
        let at = self.shared.now_us() as f64 / 1e6;
        let serial = match s.serial {
            u32::MAX => String::new(),
            serial => format!(" (serial {serial})"),
        };
        let code = match reply_error(reply) {
            Some((code, _)) => code.to_string(),
            None => "a reply".to_string(),
        };
        self.outcome.count_unexpected(format!("{what}: {code}"), at);
        self.outcome.record_unexpected(format!(
            "{what} by {user}{serial} at {at:.1} s: {}",
            describe(reply)
        ));
    }

    /// The server says something of this user's lapsed (its ticket's heartbeat, its call's
    /// claim window, its pass, its hold). The server gave the deadline in an earlier reply: if
    /// it has not passed yet, the lapse is premature (a module bug: counted as unexpected).
    /// Otherwise, under `--chaos`, an outage since the user last heard from the server explains
    /// it (`Lapse::Fault`, counted by `what`); else the client was too slow.
    fn lapse(&mut self, slot: usize, deadline: Deadline, what: &str) -> Lapse {
        let s = &self.shoppers[slot];
        let due = match deadline {
            Deadline::Heartbeat => s.heartbeat_ms,
            Deadline::Claim => s.claim_by_ms,
            Deadline::Pass => s.pass_ms,
            Deadline::Call => s.claim_by_ms.min(s.pass_ms),
            Deadline::Hold => s.hold_ms,
        };
        let now_ms = epoch_ms();
        if due > 0 && now_ms + CLOCK_SLACK_MS < due {
            let user = user_name(s.user);
            self.outcome.premature_lapses += 1;
            self.outcome.record_unexpected(format!(
                "{what} for {user} (serial {}) {} ms before the {deadline:?} deadline {due} the \
                 server had given",
                s.serial,
                due - now_ms
            ));
            return Lapse::Premature;
        }
        let since = s.last_ok_at;
        if self.shared.router.chaos && self.shared.outage_since(since) {
            *self
                .outcome
                .fault_casualties
                .entry(what.to_string())
                .or_default() += 1;
            return Lapse::Fault;
        }
        Lapse::Slow
    }

    /// The server answered this user.
    fn heard(&mut self, slot: usize, now: u64) {
        self.shoppers[slot].last_ok_at = now;
    }

    fn expect(&mut self, slot: usize, expect: Expect, now: u64) {
        let s = &self.shoppers[slot];
        let (serial, joined_at) = (s.serial, s.joined_at);
        self.outcome.expect(serial, expect, joined_at, now);
    }

    fn leave_line(&mut self, slot: usize) {
        if std::mem::take(&mut self.shoppers[slot].in_line) {
            self.in_line -= 1;
            self.shared.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub(super) fn finish(&mut self, slot: usize) {
        self.leave_line(slot);
        if self.shoppers[slot].step == Step::Linger {
            self.shared.lingering.fetch_sub(1, Ordering::Relaxed);
        }
        self.shoppers[slot].step = Step::Done;
        self.active -= 1;
        self.shared.finished.fetch_add(1, Ordering::Relaxed);
    }

    /// The next poll of a waiting user: `--poll-ms`'s interval, or the `retry_after_ms` the
    /// server gave (a few percent later, so that polls do not synchronise); an impatient user
    /// comes back when it gives up.
    fn schedule_poll(&mut self, slot: usize, now: u64, retry_after_ms: u64) {
        let jitter = 100 + self.rng.below(6);
        let s = &self.shoppers[slot];
        let delay = match s.plan.poll_us {
            Some(us) => us,
            None => retry_after_ms * 10 * jitter,
        };
        let mut at = now + delay.max(MIN_POLL_US);
        if let WaitingFate::Leaves(after) | WaitingFate::Abandons(after) = s.plan.waiting {
            at = at.min(s.joined_at + after);
        }
        self.wake(slot, at);
    }

    fn on_join(&mut self, slot: usize, reply: &Value, now: u64) {
        let uncertain = std::mem::take(&mut self.shoppers[slot].uncertain);
        // A join whose reply was lost and that was applied: the same ticket again.
        let (ticket, existing) = match reply_error(reply) {
            Some(("DUPLICATE", ticket)) if uncertain && serial_of(ticket).is_some() => {
                // A DUPLICATE renews nothing: the join was made when the first of the lost
                // sends arrived (its heartbeat deadline at least HEARTBEAT after that).
                let s = &mut self.shoppers[slot];
                s.heartbeat_ms = s.uncertain_sent_ms + self.sale.settings.heartbeat_ms;
                (ticket.to_string(), true)
            }
            // Applied, and its ticket ended since (it lapsed during the outage that lost the
            // reply): the key is spent, the user joins again with a new one.
            Some(("DUPLICATE", _))
                if uncertain
                    && self.lapse(
                        slot,
                        Deadline::Heartbeat,
                        "join applied, ticket lapsed: joins again",
                    ) == Lapse::Fault =>
            {
                self.shoppers[slot].joins += 1;
                self.wake(slot, now);
                return;
            }
            Some(_) => {
                self.unexpected(slot, "QUEUE.ENQUEUE", reply);
                return self.finish(slot);
            }
            None => (
                field_text(reply, "ticket"),
                field_int(reply, "existing") != Some(0),
            ),
        };
        let position = field_int(reply, "position").unwrap_or(1);
        let Some(serial) = serial_of(&ticket) else {
            self.unexpected(slot, "QUEUE.ENQUEUE", reply);
            return self.finish(slot);
        };
        // A join may be called at once (state admitted, position 0) when the line is empty
        // and the budget allows: its first poll, right away, finds the call.
        let state = field_text(reply, "state");
        if (existing && !uncertain) || (!existing && state != "waiting" && state != "admitted") {
            self.unexpected(slot, "QUEUE.ENQUEUE of a user without a ticket", reply);
        }
        self.heard(slot, now);
        self.outcome.joined += 1;
        if self.shoppers[slot].joins > 0 {
            self.outcome.rejoined += 1;
        }
        self.outcome
            .ack_joins
            .push((serial, self.shoppers[slot].user));
        self.shared.joined.fetch_add(1, Ordering::Relaxed);
        if !self.shoppers[slot].in_line {
            self.shared.waiting.fetch_add(1, Ordering::Relaxed);
            self.in_line += 1;
        }
        let settings = self.sale.settings;
        let s = &mut self.shoppers[slot];
        if !existing {
            // A new ticket: its heartbeat runs HEARTBEAT from the server's time.
            s.heartbeat_ms = self.batch_sent_ms + settings.heartbeat_ms;
        } else if reply_error(reply).is_none() {
            // The same ticket again (the lost join was applied): renewed like a poll renews.
            s.heartbeat_ms = s
                .heartbeat_ms
                .max(self.batch_sent_ms + renewed_ms(&settings));
        }
        s.joins += 1;
        s.ticket = ticket;
        s.serial = serial;
        s.in_line = true;
        s.joined_at = now;
        if s.plan.probe {
            s.step = Step::Leave(Exit::Probe);
            self.wake(slot, now);
        } else if s.plan.retries_join && s.joins == 1 {
            // The browser retries the request, as if the reply had been lost.
            s.step = Step::RetryJoin;
            let at = now + self.rng.between(RETRY_JOIN_US);
            self.wake(slot, at);
        } else {
            s.step = Step::Wait;
            // The first poll: when the turn may come at RATE, within the server's own cap.
            let eta_ms = position.saturating_sub(1) * 1000 / settings.rate.max(1);
            self.schedule_poll(slot, now, eta_ms.min(settings.retry_cap_ms()));
        }
    }

    fn on_retried_join(&mut self, slot: usize, reply: &Value, now: u64) {
        self.shoppers[slot].uncertain = false;
        self.outcome.retried_joins += 1;
        match reply_error(reply) {
            Some(("DUPLICATE", ticket)) if ticket == self.shoppers[slot].ticket => {
                self.heard(slot, now);
                self.outcome.duplicates_refused += 1
            }
            // The ticket ended meanwhile (a fault delayed the retry past its lapse): the key
            // is refused without naming it.
            // The ticket lapsed before the retry (a fault, or a late client): the key is
            // refused without naming it.
            Some(("DUPLICATE", _))
                if self.lapse(
                    slot,
                    Deadline::Heartbeat,
                    "retried join after its ticket ended",
                ) != Lapse::Premature =>
            {
                self.outcome.duplicates_after_lapse += 1
            }
            _ => self.unexpected(slot, "retried QUEUE.ENQUEUE (same IDEMPOTENCY key)", reply),
        }
        self.shoppers[slot].step = Step::Wait;
        self.wake(slot, now);
    }

    fn on_status(&mut self, slot: usize, reply: &Value, now: u64) {
        if let Some((code, _)) = reply_error(reply) {
            // A ticket that lapsed and whose tombstone was compacted away is forgotten.
            if code == "NO_SUCH_TICKET"
                && self.lapse(
                    slot,
                    Deadline::Heartbeat,
                    "waiting ticket lapsed and forgotten",
                ) != Lapse::Premature
            {
                self.outcome.lapsed_waiting += 1;
            } else if code != "NO_SUCH_TICKET" {
                self.unexpected(slot, "QUEUE.STATUS of a waiting ticket", reply);
            }
            return self.finish(slot);
        }
        match field_text(reply, "state").as_str() {
            "waiting" => {
                self.heard(slot, now);
                // A primary's answer leaves the heartbeat at least 3/4 of HEARTBEAT away
                // from its time, at or after the batch was sent (STATUS does not say when it
                // ends). A replica's (or a pausing primary's) answer renews nothing.
                if self.trusted {
                    let s = &mut self.shoppers[slot];
                    s.heartbeat_ms = s
                        .heartbeat_ms
                        .max(self.batch_sent_ms + renewed_ms(&self.sale.settings));
                }
                let retry = field_int(reply, "retry_after_ms").unwrap_or(1000);
                self.schedule_poll(slot, now, retry);
            }
            "admitted" => {
                self.heard(slot, now);
                let s = &mut self.shoppers[slot];
                s.claim_by_ms = field_int(reply, "claim_by_ms").unwrap_or(0);
                s.pass_ms = field_int(reply, "pass_expires_at_ms").unwrap_or(0);
                self.leave_line(slot);
                self.outcome.admitted_seen += 1;
                self.outcome.ack_admitted.push(self.shoppers[slot].serial);
                self.shared.admitted.fetch_add(1, Ordering::Relaxed);
                if self.shoppers[slot].plan.called == CalledFate::NoShow {
                    // Closes the tab now: the session must end as a no-show.
                    self.outcome.no_shows += 1;
                    self.expect(slot, Expect::NoShow, now);
                    return self.finish(slot);
                }
                self.shoppers[slot].step = Step::Claim;
                self.wake(slot, now);
            }
            "expired" => match self.lapse(
                slot,
                Deadline::Heartbeat,
                "waiting ticket lapsed: joins again",
            ) {
                Lapse::Fault => {
                    // The page says the place was lost: the user joins again, at the back.
                    self.leave_line(slot);
                    self.shoppers[slot].step = Step::Arrive;
                    self.wake(slot, now);
                }
                lapse => {
                    // The heartbeat lapsed: this client was slower than it meant to be.
                    if lapse == Lapse::Slow {
                        self.outcome.lapsed_waiting += 1;
                    }
                    self.finish(slot);
                }
            },
            "no_show" => {
                // Called and not claimed in time: polls too far apart.
                if self.lapse(slot, Deadline::Claim, "call missed") == Lapse::Slow {
                    self.outcome.missed_calls += 1;
                }
                self.finish(slot);
            }
            _ => {
                self.unexpected(slot, "QUEUE.STATUS of a waiting ticket", reply);
                self.finish(slot);
            }
        }
    }

    fn on_claim(&mut self, slot: usize, reply: &Value, now: u64) {
        let uncertain = std::mem::take(&mut self.shoppers[slot].uncertain);
        match reply_error(reply) {
            None => {
                let pass = field_text(reply, "pass");
                let existing = field_int(reply, "existing");
                if pass.matches('.').count() != 2 {
                    self.unexpected(slot, "QUEUE.ADMIT (no JWT pass)", reply);
                    return self.finish(slot);
                }
                if existing != Some(0) && !uncertain {
                    self.unexpected(slot, "QUEUE.ADMIT (first claim)", reply);
                }
                self.heard(slot, now);
                self.shoppers[slot].pass_ms = field_int(reply, "expires_at_ms").unwrap_or(0);
                self.outcome.claimed += 1;
                self.outcome.ack_claims.push(self.shoppers[slot].serial);
                let s = &mut self.shoppers[slot];
                s.pass = pass;
                match s.plan.called {
                    CalledFate::BrowsesAndLeaves => s.step = Step::Leave(Exit::Browsed),
                    CalledFate::Lingers => {
                        s.step = Step::Linger;
                        self.shared.lingering.fetch_add(1, Ordering::Relaxed);
                        self.wake(slot, now + LINGER_POLL_US);
                        return;
                    }
                    _ => s.step = Step::Shop,
                }
                let at = now + self.rng.between(PAGE_LOAD_US);
                self.wake(slot, at);
            }
            // Ended (or ended and forgotten after compaction): the call was missed.
            Some((code @ ("TICKET_ENDED" | "NO_SUCH_TICKET"), state)) => {
                let deadline = match (code, state) {
                    ("TICKET_ENDED", "no_show") => Deadline::Claim,
                    ("TICKET_ENDED", _) => Deadline::Pass,
                    _ => Deadline::Call,
                };
                if self.lapse(slot, deadline, "claim too late") == Lapse::Slow {
                    self.outcome.missed_calls += 1;
                }
                self.finish(slot);
            }
            Some(_) => {
                self.unexpected(slot, "QUEUE.ADMIT of an admitted ticket", reply);
                self.finish(slot);
            }
        }
    }

    /// The user holds its seats (`hold`: the hold's number when its reply came).
    fn held(&mut self, slot: usize, hold: Option<u64>, now: u64) {
        self.outcome.holds_made += 1;
        let s = &mut self.shoppers[slot];
        s.hold = hold;
        if s.plan.called == CalledFate::AbandonsHold {
            // The tab is closed: the hold and the session must lapse on the server.
            match hold {
                Some(hold) => self.outcome.abandoned_holds.push(hold),
                None => self.outcome.holds_without_number += 1,
            }
            self.expect(slot, Expect::SessionExpired, now);
            return self.finish(slot);
        }
        // A greedy user tries a fifth seat halfway through the thinking.
        let think = if s.plan.greedy && s.seats.len() == USER_LIMIT {
            s.step = Step::ExtraSeat;
            s.plan.think_us / 2
        } else {
            s.step = Step::Confirm;
            s.plan.think_us
        };
        let at = now + think;
        self.wake(slot, at);
    }

    /// Seats of the hold just tried are not available: look at the map again.
    fn seats_taken(&mut self, slot: usize, taken: Option<&str>, now: u64) {
        // Taken by another worker's user since the map was read: the others we asked for may
        // still be free.
        for &seat in &self.shoppers[slot].seats {
            self.seat_map.available[seat] = taken.is_some_and(|t| self.sale.seat_names[seat] != t);
        }
        // After a guess on an empty map, seats exist that the map does not show yet: look
        // again once it has been read again.
        let at = if self.seat_map.version > 0 && !self.seat_map.available.contains(&true) {
            now.max(self.seat_map.next_reading_us())
        } else {
            now
        };
        self.wake(slot, at);
    }

    fn on_hold(&mut self, slot: usize, reply: &Value, now: u64) {
        if self.shoppers[slot].uncertain && reply_error(reply).is_some() {
            // The first try may have been applied: the seats tell.
            self.resend.push(Request::Resolve(slot));
            return;
        }
        if std::mem::take(&mut self.shoppers[slot].uncertain) && reply_error(reply).is_none() {
            // Held on the second try: the lost first one was not applied, or it was and its
            // hold lapsed meanwhile (a kill -9 right after it, the seats returned when the
            // server came back). Such a hold's number was never seen: it may be returned.
            self.outcome.holds_without_number += 1;
        }
        match reply_error(reply) {
            None => {
                let asked = self.shoppers[slot].seats.len() as u64;
                let Some(hold) = field_int(reply, "hold") else {
                    self.unexpected(slot, "SEAT.HOLD", reply);
                    return self.finish(slot);
                };
                if field_int(reply, "seats") != Some(asked) {
                    self.unexpected(slot, "SEAT.HOLD (seats held != asked)", reply);
                }
                self.heard(slot, now);
                self.shoppers[slot].hold_ms = field_int(reply, "expires_at_ms").unwrap_or(0);
                self.held(slot, Some(hold), now);
            }
            Some(("SEAT_UNAVAILABLE", taken)) => {
                self.heard(slot, now);
                self.seats_taken(slot, Some(taken), now);
            }
            Some(("TRYAGAIN", _)) => self.wake(slot, now + 10_000),
            Some(("SOLD_OUT", _)) => {
                self.heard(slot, now);
                self.shoppers[slot].step = Step::Leave(Exit::SoldOutAdmitted);
                self.wake(slot, now);
            }
            Some(("PASS_INVALID", _)) => {
                // The session ended before this user got to hold: too slow.
                if self.lapse(slot, Deadline::Pass, "pass expired before the hold") == Lapse::Slow {
                    self.outcome.passes_lost += 1;
                }
                self.finish(slot);
            }
            Some(_) => {
                self.unexpected(slot, "SEAT.HOLD", reply);
                self.finish(slot);
            }
        }
    }

    fn on_extra_hold(&mut self, slot: usize, seat: usize, reply: &Value, now: u64) {
        if std::mem::take(&mut self.shoppers[slot].uncertain)
            && matches!(reply_error(reply), Some(("SEAT_UNAVAILABLE", _)))
        {
            // The lost first try may have held the seat (if the first hold had lapsed, USER-LIMIT
            // let it): a hold whose number is unknown, left to lapse.
            self.outcome.holds_without_number += 1;
        }
        match reply_error(reply) {
            Some(("LIMIT_EXCEEDED", _)) => {
                self.outcome.limit_refusals += 1;
                self.seat_map.available[seat] = true;
            }
            // The seat went first: SEAT.HOLD checks the seats before the limit.
            Some(("SEAT_UNAVAILABLE" | "SOLD_OUT", _)) => {}
            Some(("PASS_INVALID", _)) => {
                if self.lapse(slot, Deadline::Pass, "pass expired before the hold") == Lapse::Slow {
                    self.outcome.passes_lost += 1;
                }
            }
            None if epoch_ms() >= self.shoppers[slot].hold_ms => {
                // The first hold had lapsed (a fault or a slow client): its seats no longer
                // count against USER-LIMIT. The user gives up both holds.
                if self.lapse(slot, Deadline::Hold, "hold lapsed before the confirm") == Lapse::Slow
                {
                    self.outcome.late_confirms += 1;
                }
                match field_int(reply, "hold") {
                    Some(extra) => self.outcome.late_holds.push(extra),
                    None => self.unexpected(slot, "SEAT.HOLD", reply),
                }
                self.give_up_hold(slot);
                return self.finish(slot);
            }
            None => {
                // Over USER-LIMIT: buy it too, so the journal check reports the violation.
                self.unexpected(slot, "SEAT.HOLD of a seat above USER-LIMIT", reply);
                self.shoppers[slot].seats.push(seat);
            }
            Some(_) => self.unexpected(slot, "SEAT.HOLD of an extra seat", reply),
        }
        self.heard(slot, now);
        let s = &mut self.shoppers[slot];
        s.step = Step::Confirm;
        let at = now + s.plan.think_us / 2;
        self.wake(slot, at);
    }

    /// The user leaves its hold to lapse: the server must return it.
    fn give_up_hold(&mut self, slot: usize) {
        match self.shoppers[slot].hold.take() {
            Some(hold) => self.outcome.late_holds.push(hold),
            None => self.outcome.holds_without_number += 1,
        }
    }

    fn on_confirm(&mut self, slot: usize, reply: &Value, now: u64) {
        if self.shoppers[slot].uncertain && reply_error(reply).is_some() {
            self.resend.push(Request::Resolve(slot));
            return;
        }
        self.shoppers[slot].uncertain = false;
        let seats = self.shoppers[slot].seats.len() as u64;
        match reply_error(reply) {
            None if field_int(reply, "sold") == Some(seats) => {
                self.heard(slot, now);
                let user = self.shoppers[slot].user;
                self.outcome.buyers += 1;
                self.outcome
                    .bought
                    .extend(self.shoppers[slot].seats.iter().map(|&seat| (seat, user)));
                self.shared.sold.fetch_add(seats, Ordering::Relaxed);
                if epoch_ms() < self.shoppers[slot].pass_ms {
                    self.expect(slot, Expect::Completed, now);
                } else {
                    // The pass had lapsed (a late client): the session may have ended as
                    // expired before the purchase, which the hold still allowed.
                    self.outcome.bought_after_pass += 1;
                }
            }
            // The hold lapsed (its seats came back: NOT_HELD, or went to someone else:
            // NOT_OWNER).
            Some(("HOLD_EXPIRED" | "NOT_OWNER" | "NOT_HELD", _)) => {
                self.give_up_hold(slot);
                if self.lapse(slot, Deadline::Hold, "hold lapsed before the confirm") == Lapse::Slow
                {
                    self.outcome.late_confirms += 1;
                }
            }
            Some(("PASS_INVALID", _))
                if self.lapse(slot, Deadline::Hold, "hold lapsed before the confirm")
                    == Lapse::Fault =>
            {
                self.give_up_hold(slot);
            }
            _ => self.unexpected(slot, "SEAT.CONFIRM", reply),
        }
        self.finish(slot);
    }

    /// SEAT.STATUS of the seats of a hold or confirm whose reply was lost.
    fn on_resolve(&mut self, slot: usize, reply: &Value, now: u64) {
        let user = user_name(self.shoppers[slot].user);
        let Value::Array(records) = reply else {
            self.unexpected(slot, "SEAT.STATUS", reply);
            return self.finish(slot);
        };
        let all = |state: &str| {
            records
                .iter()
                .all(|r| field_text(r, "state") == state && field_text(r, "holder") == user)
        };
        let (held, sold) = (all("held"), all("sold"));
        self.shoppers[slot].uncertain = false;
        self.heard(slot, now);
        self.outcome.resolved += 1;
        match self.shoppers[slot].step {
            Step::Shop if held => self.held(slot, None, now),
            Step::Shop => self.seats_taken(slot, None, now),
            Step::Confirm if sold => {
                let seats = &self.shoppers[slot].seats;
                self.outcome.buyers += 1;
                self.outcome
                    .bought_unacknowledged
                    .extend(seats.iter().map(|&seat| (seat, self.shoppers[slot].user)));
                self.shared
                    .sold
                    .fetch_add(seats.len() as u64, Ordering::Relaxed);
                self.finish(slot);
            }
            Step::Confirm if held => {
                // Not applied: confirm again.
                self.wake(slot, now);
            }
            _ => {
                // Neither held nor sold: the confirm was not applied and the hold lapsed
                // (checked against its deadline).
                self.give_up_hold(slot);
                if self.lapse(slot, Deadline::Hold, "hold lapsed before the confirm") == Lapse::Slow
                {
                    self.outcome.late_confirms += 1;
                }
                self.finish(slot);
            }
        }
    }

    fn on_leave(&mut self, slot: usize, exit: Exit, reply: &Value, now: u64) {
        let uncertain = std::mem::take(&mut self.shoppers[slot].uncertain);
        let left = match reply {
            Value::Int(1) => true,
            // The first try (whose reply was lost) may have done it.
            Value::Int(0) if uncertain => true,
            // Ended before (and, for NO_SUCH_TICKET, forgotten after compaction).
            Value::Int(0) => false,
            _ if matches!(reply_error(reply), Some(("NO_SUCH_TICKET", _))) => false,
            _ => {
                self.unexpected(slot, "QUEUE.LEAVE", reply);
                return self.finish(slot);
            }
        };
        self.heard(slot, now);
        self.leave_line(slot);
        if left {
            let expect = match exit {
                Exit::Impatient => {
                    self.outcome.left_impatient += 1;
                    Expect::Left
                }
                Exit::SoldOutWaiting => {
                    self.outcome.left_sold_out_waiting += 1;
                    Expect::Left
                }
                Exit::Probe => {
                    self.outcome.probes += 1;
                    let ticket = self.shoppers[slot].ticket.clone();
                    self.shared
                        .probe_tickets
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(ticket);
                    Expect::Left
                }
                Exit::SoldOutAdmitted => {
                    self.outcome.gave_up_sold_out += 1;
                    Expect::SessionLeft
                }
                Exit::Browsed => {
                    self.outcome.browsed_and_left += 1;
                    Expect::SessionLeft
                }
            };
            if !uncertain {
                self.expect(slot, expect, now);
            }
        } else {
            let deadline = match exit {
                Exit::SoldOutAdmitted | Exit::Browsed => Deadline::Pass,
                _ => Deadline::Heartbeat,
            };
            if self.lapse(slot, deadline, "ended before the leave") == Lapse::Slow {
                match exit {
                    // The session had ended (its pass expired): too slow.
                    Exit::SoldOutAdmitted | Exit::Browsed => self.outcome.passes_lost += 1,
                    // The ticket had lapsed while waiting.
                    _ => self.outcome.lapsed_waiting += 1,
                }
            }
        }
        self.finish(slot);
    }

    fn on_linger_status(&mut self, slot: usize, reply: &Value, now: u64) {
        let ticket_ok = field_text(reply, "ticket") == self.shoppers[slot].ticket;
        if field_text(reply, "state") == "admitted"
            && field_int(reply, "claimed") == Some(1)
            && ticket_ok
        {
            self.heard(slot, now);
            self.shoppers[slot].pass_ms = field_int(reply, "pass_expires_at_ms").unwrap_or(0);
            self.outcome.linger_polls_ok += 1;
        } else if matches!(reply_error(reply), Some(("NO_SUCH_TICKET", _)))
            && self.lapse(slot, Deadline::Pass, "lingering session lapsed") != Lapse::Premature
        {
            // The session's pass expired between two polls (the client was late): it is over.
            self.outcome.lingerers_lapsed += 1;
            return self.finish(slot);
        } else {
            let what = format!(
                "{}: QUEUE.STATUS USER during the sale: {}",
                user_name(self.shoppers[slot].user),
                describe(reply)
            );
            self.outcome.linger_failures.push(what);
        }
        self.wake(slot, now + LINGER_POLL_US);
    }

    /// A lingering user's last checks, after compaction: its session still answers by USER.
    fn on_linger_check(&mut self, slot: usize, stage: u8, reply: &Value, now: u64) {
        let s = &self.shoppers[slot];
        let ok = match stage {
            0 => {
                field_text(reply, "state") == "admitted"
                    && field_int(reply, "claimed") == Some(1)
                    && field_text(reply, "ticket") == s.ticket
            }
            1 => reply_error(reply).is_none() && field_int(reply, "existing") == Some(1),
            _ => matches!(reply, Value::Int(1)) || (s.uncertain && matches!(reply, Value::Int(0))),
        };
        if ok {
            self.heard(slot, now);
        } else {
            let command = ["QUEUE.STATUS", "QUEUE.ADMIT", "QUEUE.LEAVE"][stage.min(2) as usize];
            let what = format!(
                "{}: {command} USER after the sale: {}",
                user_name(s.user),
                describe(reply)
            );
            self.outcome.linger_failures.push(what);
            self.shoppers[slot].linger_failed = true;
        }
        self.shoppers[slot].uncertain = false;
        if stage < 2 {
            if stage == 0 {
                self.shared.lingering.fetch_sub(1, Ordering::Relaxed);
            }
            self.shoppers[slot].step = Step::LingerCheck(stage + 1);
            self.wake(slot, now);
        } else {
            if !self.shoppers[slot].linger_failed {
                self.outcome.lingerers_checked += 1;
                self.expect(slot, Expect::SessionLeft, now);
            }
            self.finish(slot);
        }
    }

    fn on_inventory(&mut self, reply: &Value, now: u64) {
        let count = |name| field_int(reply, name);
        let (Some(total), Some(available), Some(held), Some(sold)) = (
            count("total"),
            count("available"),
            count("held"),
            count("sold"),
        ) else {
            return self
                .outcome
                .record_unexpected(format!("SEAT.INFO: {}", describe(reply)));
        };
        self.outcome.inventory_samples += 1;
        if sold + held + available != total {
            self.outcome.inventory_mismatches.push(format!(
                "sold {sold} + held {held} + available {available} != total {total}"
            ));
        }
        if available == 0 && held == 0 {
            // Nothing can come back: everyone still waiting leaves now.
            self.sold_out = true;
            let _ = self.shared.sold_out_at_us.compare_exchange(
                0,
                now.max(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            for slot in 0..self.shoppers.len() {
                if self.shoppers[slot].step == Step::Wait {
                    self.wake(slot, now);
                }
            }
        }
    }
}
