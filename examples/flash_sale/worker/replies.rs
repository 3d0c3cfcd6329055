//! How each user moves on from the reply to its command.

use std::sync::atomic::Ordering;

use redis::Value;
use seatq_testkit::reply::reply_error;

use super::request::Request;
use super::{Exit, Step, Worker, MAX_POLL_US, MIN_POLL_US, NEAR_FRONT};
use crate::plan::{PAGE_LOAD_US, RETRY_JOIN_US};
use crate::reply::{describe, field_int, field_text, number_after};
use crate::sale::{user_name, RATE, USER_LIMIT};
use crate::seat_map::SEAT_MAP_MAX_AGE_US;

impl Worker<'_> {
    pub(super) fn on_reply(&mut self, request: Request, reply: Value) {
        let now = self.shared.now_us();
        match request {
            Request::Join(slot) => self.on_join(slot, &reply, now),
            Request::RetryJoin(slot) => self.on_retried_join(slot, &reply, now),
            Request::Status(slot) => self.on_status(slot, &reply, now),
            Request::Admit(slot) => self.on_admit(slot, &reply, now),
            Request::Hold(slot) => self.on_hold(slot, &reply, now),
            Request::ExtraHold(slot, seat) => self.on_extra_hold(slot, seat, &reply, now),
            Request::Confirm(slot) => self.on_confirm(slot, &reply),
            Request::Leave(slot, exit) => self.on_leave(slot, exit, &reply),
            Request::SeatMap(first) => self.on_seat_map(first, &reply),
            Request::Inventory => self.on_inventory(&reply, now),
        }
    }

    fn unexpected(&mut self, slot: usize, what: &str, reply: &Value) {
        let user = user_name(self.shoppers[slot].user);
        self.outcome
            .record_unexpected(format!("{what} by {user}: {}", describe(reply)));
    }

    fn leave_line(&mut self, slot: usize) {
        if std::mem::take(&mut self.shoppers[slot].in_line) {
            self.in_line -= 1;
            self.shared.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn finish(&mut self, slot: usize) {
        self.leave_line(slot);
        self.shoppers[slot].step = Step::Done;
        self.active -= 1;
        self.shared.finished.fetch_add(1, Ordering::Relaxed);
    }

    /// Next poll of a waiting user from its position: near the front it asks QUEUE.ADMIT when
    /// its turn should come at RATE; further back it polls QUEUE.STATUS at half its ETA.
    fn schedule_wait(&mut self, slot: usize, now: u64, position: u64, eta_ms: u64) {
        let jitter = 80 + self.rng.below(41); // percent, so polls do not synchronise
        let s = &mut self.shoppers[slot];
        s.near_front = position <= NEAR_FRONT;
        let delay = if s.near_front {
            position.saturating_sub(1) * 1_000_000 / RATE
        } else {
            (eta_ms * 500).clamp(MIN_POLL_US, MAX_POLL_US) * jitter / 100
        };
        let mut at = now + delay.min(MAX_POLL_US);
        if let Some(after) = s.plan.leaves_after_us {
            at = at.min(s.joined_at + after);
        }
        self.wake(slot, at);
    }

    fn on_join(&mut self, slot: usize, reply: &Value, now: u64) {
        let ticket = field_text(reply, "ticket");
        let position = field_int(reply, "position");
        let (Some(position), false) = (position, ticket.is_empty()) else {
            self.unexpected(slot, "QUEUE.ENQUEUE", reply);
            return self.finish(slot);
        };
        if field_text(reply, "state") != "waiting" || field_int(reply, "existing") != Some(0) {
            self.unexpected(slot, "QUEUE.ENQUEUE of a new user", reply);
        }
        self.outcome.joined += 1;
        self.shared.joined.fetch_add(1, Ordering::Relaxed);
        self.shared.waiting.fetch_add(1, Ordering::Relaxed);
        self.in_line += 1;
        let s = &mut self.shoppers[slot];
        s.ticket = ticket;
        s.in_line = true;
        s.joined_at = now;
        s.renewed_at = now;
        if s.plan.retries_join {
            // The browser retries the request, as if the reply had been lost.
            s.step = Step::RetryJoin;
            let at = now + self.rng.between(RETRY_JOIN_US);
            self.wake(slot, at);
        } else {
            s.step = Step::Wait;
            let eta_ms = position.saturating_sub(1) * 1000 / RATE;
            self.schedule_wait(slot, now, position, eta_ms);
        }
    }

    fn on_retried_join(&mut self, slot: usize, reply: &Value, now: u64) {
        self.outcome.retried_joins += 1;
        match reply_error(reply) {
            Some(("DUPLICATE", ticket)) if ticket == self.shoppers[slot].ticket => {
                self.outcome.duplicates_refused += 1
            }
            _ => self.unexpected(slot, "retried QUEUE.ENQUEUE (same IDEMPOTENCY key)", reply),
        }
        self.shoppers[slot].step = Step::Wait;
        self.wake(slot, now);
    }

    fn on_status(&mut self, slot: usize, reply: &Value, now: u64) {
        match field_text(reply, "state").as_str() {
            "waiting" => {
                self.shoppers[slot].renewed_at = now;
                let position = field_int(reply, "position").unwrap_or(1);
                let eta_ms = field_int(reply, "eta_ms").unwrap_or(0);
                self.schedule_wait(slot, now, position, eta_ms);
            }
            "expired" => {
                // The heartbeat lapsed: this client was slower than it meant to be.
                self.outcome.lapsed_waiting += 1;
                self.finish(slot);
            }
            _ => {
                self.unexpected(slot, "QUEUE.STATUS of a waiting ticket", reply);
                self.finish(slot);
            }
        }
    }

    fn on_admit(&mut self, slot: usize, reply: &Value, now: u64) {
        match reply_error(reply) {
            None => {
                let pass = field_text(reply, "pass");
                if pass.len() != 32 || field_int(reply, "existing") != Some(0) {
                    self.unexpected(slot, "QUEUE.ADMIT", reply);
                    return self.finish(slot);
                }
                self.outcome.admitted += 1;
                self.shared.admitted.fetch_add(1, Ordering::Relaxed);
                self.leave_line(slot);
                self.shoppers[slot].pass = pass;
                self.shoppers[slot].step = Step::Shop;
                let at = now + self.rng.between(PAGE_LOAD_US);
                self.wake(slot, at);
            }
            Some((code @ ("NOT_READY" | "RATE_LIMITED"), detail)) => {
                let (Some(position), Some(retry_ms)) = (
                    number_after(detail, "position"),
                    number_after(detail, "retry_after_ms"),
                ) else {
                    self.unexpected(slot, code, reply);
                    return self.finish(slot);
                };
                let s = &mut self.shoppers[slot];
                s.near_front = position <= NEAR_FRONT;
                let at = now + (retry_ms * 1000).clamp(1000, MAX_POLL_US);
                self.wake(slot, at);
            }
            Some(("TICKET_ENDED", "expired")) => {
                self.outcome.lapsed_waiting += 1;
                self.finish(slot);
            }
            Some(_) => {
                self.unexpected(slot, "QUEUE.ADMIT", reply);
                self.finish(slot);
            }
        }
    }

    fn on_hold(&mut self, slot: usize, reply: &Value, now: u64) {
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
                self.outcome.holds_made += 1;
                let s = &mut self.shoppers[slot];
                s.hold = hold;
                if s.plan.abandons {
                    // The tab is closed: the hold and the session must lapse on the server.
                    self.outcome.abandoned_holds.push(hold);
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
            Some(("SEAT_UNAVAILABLE", taken)) => {
                // Taken by another worker's user since the map was read: the others we asked
                // for may still be free.
                for &seat in &self.shoppers[slot].seats {
                    self.seat_map.available[seat] = self.sale.seat_names[seat] != taken;
                }
                // After a guess on an empty map, seats exist that the map does not show yet:
                // look again once it has been read again.
                let at = match self.seat_map.refreshed_at {
                    Some(read) if !self.seat_map.available.contains(&true) => {
                        now.max(read + SEAT_MAP_MAX_AGE_US)
                    }
                    _ => now,
                };
                self.wake(slot, at);
            }
            Some(("SOLD_OUT", _)) => {
                self.shoppers[slot].step = Step::Leave(Exit::SoldOutAdmitted);
                self.wake(slot, now);
            }
            Some(("PASS_INVALID", _)) => {
                // The pass expired before this user got to hold: too slow.
                self.outcome.passes_lost += 1;
                self.finish(slot);
            }
            Some(_) => {
                self.unexpected(slot, "SEAT.HOLD", reply);
                self.finish(slot);
            }
        }
    }

    fn on_extra_hold(&mut self, slot: usize, seat: usize, reply: &Value, now: u64) {
        match reply_error(reply) {
            Some(("LIMIT_EXCEEDED", _)) => {
                self.outcome.limit_refusals += 1;
                self.seat_map.available[seat] = true;
            }
            // The seat went first: SEAT.HOLD checks the seats before the limit.
            Some(("SEAT_UNAVAILABLE" | "SOLD_OUT", _)) => {}
            None => {
                // Over USER-LIMIT: buy it too, so the journal check reports the violation.
                self.unexpected(slot, "SEAT.HOLD of a seat above USER-LIMIT", reply);
                self.shoppers[slot].seats.push(seat);
            }
            Some(_) => self.unexpected(slot, "SEAT.HOLD of an extra seat", reply),
        }
        let s = &mut self.shoppers[slot];
        s.step = Step::Confirm;
        let at = now + s.plan.think_us / 2;
        self.wake(slot, at);
    }

    fn on_confirm(&mut self, slot: usize, reply: &Value) {
        let seats = self.shoppers[slot].seats.len() as u64;
        match reply_error(reply) {
            None if field_int(reply, "sold") == Some(seats) => {
                let user = self.shoppers[slot].user;
                self.outcome.buyers += 1;
                self.outcome
                    .bought
                    .extend(self.shoppers[slot].seats.iter().map(|&seat| (seat, user)));
                self.shared.sold.fetch_add(seats, Ordering::Relaxed);
            }
            Some(("HOLD_EXPIRED", _)) => {
                let hold = self.shoppers[slot].hold;
                self.outcome.late_holds.push(hold);
            }
            _ => self.unexpected(slot, "SEAT.CONFIRM", reply),
        }
        self.finish(slot);
    }

    fn on_leave(&mut self, slot: usize, exit: Exit, reply: &Value) {
        match (reply, exit) {
            (Value::Int(1), Exit::Impatient) => self.outcome.left_impatient += 1,
            (Value::Int(1), Exit::SoldOutWaiting) => self.outcome.left_sold_out_waiting += 1,
            (Value::Int(1), Exit::SoldOutAdmitted) => self.outcome.gave_up_sold_out += 1,
            // 0: the ticket had lapsed while waiting, or the session's pass had expired.
            (Value::Int(0), Exit::SoldOutAdmitted) => self.outcome.passes_lost += 1,
            (Value::Int(0), _) => self.outcome.lapsed_waiting += 1,
            _ => self.unexpected(slot, "QUEUE.LEAVE", reply),
        }
        self.finish(slot);
    }

    fn on_seat_map(&mut self, first: usize, reply: &Value) {
        let Value::Array(records) = reply else {
            return self
                .outcome
                .record_unexpected(format!("SEAT.STATUS: {}", describe(reply)));
        };
        for (i, record) in records.iter().enumerate() {
            self.seat_map.available[first + i] = field_text(record, "state") == "available";
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
