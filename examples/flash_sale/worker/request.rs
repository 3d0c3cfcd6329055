//! The commands a worker sends for its users.

use super::{Exit, Worker};
use crate::sale::{user_name, SEAT_CHUNK};
use crate::stats::Command;

/// A command in flight, and whom it is for.
#[derive(Clone, Copy)]
pub enum Request {
    Join(usize),
    RetryJoin(usize),
    Status(usize),
    Admit(usize),
    Hold(usize),
    ExtraHold(usize, usize),
    Confirm(usize),
    Leave(usize, Exit),
    SeatMap(usize),
    Inventory,
}

impl Request {
    pub fn command(self) -> Command {
        match self {
            Request::Join(_) | Request::RetryJoin(_) => Command::Enqueue,
            Request::Status(_) => Command::Status,
            Request::Admit(_) => Command::Admit,
            Request::Hold(_) | Request::ExtraHold(..) => Command::SeatHold,
            Request::Confirm(_) => Command::SeatConfirm,
            Request::Leave(..) => Command::Leave,
            Request::SeatMap(_) => Command::SeatStatus,
            Request::Inventory => Command::SeatInfo,
        }
    }
}

impl Worker<'_> {
    pub(super) fn build(&self, request: Request) -> redis::Cmd {
        let key = &self.sale.key;
        let names = &self.sale.seat_names;
        // QUEUE.STATUS / ADMIT / LEAVE name the user's ticket.
        let on_ticket = |command: &str, slot: usize| {
            redis::cmd(command)
                .arg(key)
                .arg(&self.shoppers[slot].ticket)
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
                    cmd.arg("IDEMPOTENCY").arg(format!("req-{}", s.user));
                }
                cmd
            }
            Request::Status(slot) => on_ticket("QUEUE.STATUS", slot),
            Request::Admit(slot) => on_ticket("QUEUE.ADMIT", slot),
            Request::Leave(slot, _) => on_ticket("QUEUE.LEAVE", slot),
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
            Request::SeatMap(first) => {
                let mut cmd = redis::cmd("SEAT.STATUS");
                cmd.arg(key);
                for name in names.iter().skip(first).take(SEAT_CHUNK) {
                    cmd.arg(name);
                }
                cmd
            }
            Request::Inventory => redis::cmd("SEAT.INFO").arg(key).to_owned(),
        }
    }
}
