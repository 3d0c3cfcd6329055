//! The commands a worker sends for its users.

use super::{Exit, Worker};
use crate::sale::user_name;
use crate::stats::Command;

/// A command in flight, and whom it is for.
#[derive(Clone, Copy, Debug)]
pub enum Request {
    Join(usize),
    RetryJoin(usize),
    Status(usize),
    /// QUEUE.ADMIT: the called user claims its session.
    Claim(usize),
    Hold(usize),
    ExtraHold(usize, usize),
    Confirm(usize),
    Leave(usize, Exit),
    /// A lingering user's poll of its session (QUEUE.STATUS by USER).
    LingerStatus(usize),
    /// A lingering user's last checks by USER: 0 STATUS, 1 ADMIT, 2 LEAVE.
    LingerCheck(usize, u8),
    /// SEAT.STATUS of the user's seats, after a hold or confirm whose reply was lost.
    Resolve(usize),
    Inventory,
}

impl Request {
    pub fn command(self) -> Command {
        match self {
            Request::Join(_) | Request::RetryJoin(_) => Command::Enqueue,
            Request::Status(_) | Request::LingerStatus(_) | Request::LingerCheck(_, 0) => {
                Command::Status
            }
            Request::Claim(_) | Request::LingerCheck(_, 1) => Command::Admit,
            Request::Leave(..) | Request::LingerCheck(..) => Command::Leave,
            Request::Hold(_) | Request::ExtraHold(..) => Command::SeatHold,
            Request::Confirm(_) => Command::SeatConfirm,
            Request::Resolve(_) => Command::SeatStatus,
            Request::Inventory => Command::SeatInfo,
        }
    }

    /// The user the request is for.
    pub fn slot(self) -> Option<usize> {
        match self {
            Request::Join(s)
            | Request::RetryJoin(s)
            | Request::Status(s)
            | Request::Claim(s)
            | Request::Hold(s)
            | Request::ExtraHold(s, _)
            | Request::Confirm(s)
            | Request::Leave(s, _)
            | Request::LingerStatus(s)
            | Request::LingerCheck(s, _)
            | Request::Resolve(s) => Some(s),
            Request::Inventory => None,
        }
    }

    /// Whether sending it twice may differ from sending it once (its outcome matters when the
    /// reply is lost).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Request::Join(_)
                | Request::Claim(_)
                | Request::Hold(_)
                | Request::ExtraHold(..)
                | Request::Confirm(_)
                | Request::Leave(..)
                | Request::LingerCheck(_, 2)
        )
    }
}

impl Worker<'_> {
    pub(super) fn build(&self, request: Request) -> redis::Cmd {
        let key = &self.sale.key;
        let names = &self.sale.seat_names;
        // QUEUE.STATUS / ADMIT / LEAVE name the user's ticket, as a browser would.
        let on_ticket = |command: &str, slot: usize| {
            redis::cmd(command)
                .arg(key)
                .arg(&self.shoppers[slot].ticket)
                .to_owned()
        };
        // ... or the user, as the gateway that authenticated it would.
        let on_user = |command: &str, slot: usize| {
            redis::cmd(command)
                .arg(key)
                .arg("USER")
                .arg(user_name(self.shoppers[slot].user))
                .to_owned()
        };
        // SEAT.HOLD / CONFIRM name the user and the seats.
        let on_seats = |command: &str, slot: usize, seats: &[usize]| {
            let mut cmd = redis::cmd(command);
            cmd.arg(key).arg(user_name(self.shoppers[slot].user));
            for &seat in seats {
                cmd.arg(&names[seat]);
            }
            cmd
        };
        match request {
            Request::Join(slot) | Request::RetryJoin(slot) => {
                let s = &self.shoppers[slot];
                let mut cmd = redis::cmd("QUEUE.ENQUEUE");
                cmd.arg(key).arg(user_name(s.user));
                if s.plan.idempotency {
                    // A join after a lapse is a new request: a new key.
                    let attempt = match request {
                        Request::RetryJoin(_) => s.joins.saturating_sub(1),
                        _ => s.joins,
                    };
                    if attempt == 0 {
                        cmd.arg("IDEMPOTENCY").arg(format!("req-{}", s.user));
                    } else {
                        cmd.arg("IDEMPOTENCY")
                            .arg(format!("req-{}-{attempt}", s.user));
                    }
                }
                cmd
            }
            Request::Status(slot) => on_ticket("QUEUE.STATUS", slot),
            Request::Claim(slot) => on_ticket("QUEUE.ADMIT", slot),
            Request::Leave(slot, _) => on_ticket("QUEUE.LEAVE", slot),
            Request::LingerStatus(slot) | Request::LingerCheck(slot, 0) => {
                on_user("QUEUE.STATUS", slot)
            }
            Request::LingerCheck(slot, 1) => on_user("QUEUE.ADMIT", slot),
            Request::LingerCheck(slot, _) => on_user("QUEUE.LEAVE", slot),
            Request::Hold(slot) => {
                let s = &self.shoppers[slot];
                on_seats("SEAT.HOLD", slot, &s.seats)
                    .arg("PASS")
                    .arg(&s.pass)
                    .to_owned()
            }
            Request::ExtraHold(slot, seat) => on_seats("SEAT.HOLD", slot, &[seat])
                .arg("PASS")
                .arg(&self.shoppers[slot].pass)
                .to_owned(),
            Request::Confirm(slot) => on_seats("SEAT.CONFIRM", slot, &self.shoppers[slot].seats),
            Request::Resolve(slot) => {
                let mut cmd = redis::cmd("SEAT.STATUS");
                cmd.arg(key);
                for &seat in &self.shoppers[slot].seats {
                    cmd.arg(&names[seat]);
                }
                cmd
            }
            Request::Inventory => redis::cmd("SEAT.INFO").arg(key).to_owned(),
        }
    }
}
