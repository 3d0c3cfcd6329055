//! The users as state machines: each worker thread schedules its share of them over one
//! connection and pipelines the commands of those that are due (`request`), then moves each
//! user on from its reply (`replies`).

mod replies;
mod request;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use redis::Connection;
use seatq_testkit::rng::Rng;

use crate::plan::Plan;
use crate::run::Shared;
use crate::sale::{Sale, HEARTBEAT_MS, RATE, SEAT_CHUNK};
use crate::seat_map::SeatMap;
use crate::stats::{Outcome, Stats};
use request::Request;

// Client pacing, in microseconds. A waiting user polls at half its ETA, but at least every
// third of the heartbeat, so its ticket never lapses; within half a second of the front it
// asks QUEUE.ADMIT instead, as the README's client loop does.
const MIN_POLL_US: u64 = 100_000;
const MAX_POLL_US: u64 = HEARTBEAT_MS * 1000 / 3;
const NEAR_FRONT: u64 = RATE / 2;

/// A worker with users in line reads SEAT.INFO this often, to learn that the sale sold out.
const INVENTORY_CHECK_US: u64 = 250_000;

/// Most commands a worker sends in one pipeline.
pub const MAX_PIPELINE: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Arrive,
    RetryJoin,
    Wait,
    Shop,
    ExtraSeat,
    Confirm,
    Leave(Exit),
    Done,
}

/// Why a user leaves without buying.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Exit {
    Impatient,
    SoldOutWaiting,
    SoldOutAdmitted,
}

/// One user: its plan, where it stands, and what the server gave it.
struct Shopper {
    user: u32,
    plan: Plan,
    step: Step,
    /// When the user is due; schedule entries with another time are stale and skipped.
    wake_at: u64,
    in_line: bool,
    near_front: bool,
    joined_at: u64,
    renewed_at: u64,
    ticket: String,
    pass: String,
    /// Seats asked for by the hold in flight, then held.
    seats: Vec<usize>,
    hold: u64,
}

/// One thread's users, due by time, over one connection.
pub struct Worker<'a> {
    con: Connection,
    sale: &'a Sale,
    shared: &'a Shared,
    rng: Rng,
    shoppers: Vec<Shopper>,
    schedule: BinaryHeap<Reverse<(u64, usize)>>,
    seat_map: SeatMap,
    sold_out: bool,
    next_inventory_check: u64,
    in_line: usize,
    active: usize,
    stats: Stats,
    outcome: Outcome,
}

impl<'a> Worker<'a> {
    pub fn new(
        con: Connection,
        sale: &'a Sale,
        shared: &'a Shared,
        users: impl Iterator<Item = u32>,
        seed: u64,
        arrival: Duration,
    ) -> Worker<'a> {
        let shoppers: Vec<Shopper> = users
            .map(|user| Shopper {
                user,
                plan: Plan::draw(seed, user, arrival),
                step: Step::Arrive,
                wake_at: 0,
                in_line: false,
                near_front: false,
                joined_at: 0,
                renewed_at: 0,
                ticket: String::new(),
                pass: String::new(),
                seats: Vec::new(),
                hold: 0,
            })
            .collect();
        let mut worker = Worker {
            con,
            sale,
            shared,
            rng: Rng::new(seed ^ shoppers.first().map_or(0, |s| s.user as u64)),
            active: shoppers.len(),
            shoppers,
            schedule: BinaryHeap::new(),
            seat_map: SeatMap {
                available: vec![false; sale.seat_names.len()],
                refreshed_at: None,
            },
            sold_out: false,
            next_inventory_check: 0,
            in_line: 0,
            stats: Stats::new(),
            outcome: Outcome::default(),
        };
        for slot in 0..worker.shoppers.len() {
            let at = worker.shoppers[slot].plan.arrives_at_us;
            worker.wake(slot, at);
        }
        worker
    }

    fn wake(&mut self, slot: usize, at: u64) {
        self.shoppers[slot].wake_at = at;
        self.schedule.push(Reverse((at, slot)));
    }

    /// Runs until every user of this worker is done.
    pub fn run(mut self) -> redis::RedisResult<(Stats, Outcome)> {
        while self.active > 0 {
            let now = self.shared.now_us();
            let mut batch = Vec::new();
            if self.in_line > 0 && !self.sold_out && now >= self.next_inventory_check {
                self.next_inventory_check = now + INVENTORY_CHECK_US;
                batch.push(Request::Inventory);
            }
            let limit = self.pipeline_limit();
            while batch.len() < limit {
                let Some(&Reverse((at, slot))) = self.schedule.peek() else {
                    break;
                };
                if at > now {
                    break;
                }
                self.schedule.pop();
                if self.shoppers[slot].wake_at == at {
                    // Consumed: a second entry with the same time must not send twice.
                    self.shoppers[slot].wake_at = u64::MAX;
                    if let Some(request) = self.next_request(slot, now)? {
                        batch.push(request);
                    }
                }
            }
            if batch.is_empty() {
                if self.schedule.is_empty() {
                    // Every reply handler schedules or finishes its user; this is a bug here.
                    self.outcome.record_unexpected(format!(
                        "{} users were left without a next step",
                        self.active
                    ));
                    break;
                }
                let mut next = self.schedule.peek().map_or(u64::MAX, |r| r.0 .0);
                if self.in_line > 0 && !self.sold_out {
                    next = next.min(self.next_inventory_check);
                }
                let pause = next.saturating_sub(self.shared.now_us()).min(20_000);
                std::thread::sleep(Duration::from_micros(pause));
                continue;
            }
            self.exchange(batch)?;
        }
        Ok((self.stats, self.outcome))
    }

    /// Under `--rps`, pipelines shrink so that each thread sends about 100 of them a second:
    /// the load stays smooth instead of arriving in bursts of MAX_PIPELINE.
    fn pipeline_limit(&self) -> usize {
        match &self.shared.cap {
            Some(cap) => {
                let rate = cap.rate_at(self.shared.started.elapsed().as_secs_f64());
                ((rate / self.shared.threads as f64 / 100.0) as usize).clamp(1, MAX_PIPELINE)
            }
            None => MAX_PIPELINE,
        }
    }

    /// The command a due user sends now, if any.
    fn next_request(&mut self, slot: usize, now: u64) -> redis::RedisResult<Option<Request>> {
        let s = &self.shoppers[slot];
        Ok(Some(match s.step {
            Step::Arrive => Request::Join(slot),
            Step::RetryJoin => Request::RetryJoin(slot),
            Step::Wait => {
                let exit = if self.sold_out {
                    Some(Exit::SoldOutWaiting)
                } else if s
                    .plan
                    .leaves_after_us
                    .is_some_and(|after| now >= s.joined_at + after)
                {
                    Some(Exit::Impatient)
                } else {
                    None
                };
                match exit {
                    Some(exit) => {
                        self.shoppers[slot].step = Step::Leave(exit);
                        Request::Leave(slot, exit)
                    }
                    None if s.near_front && now < s.renewed_at + MAX_POLL_US => {
                        Request::Admit(slot)
                    }
                    None => Request::Status(slot),
                }
            }
            Step::Shop => {
                let wants = s.plan.wants;
                if self.seat_map.is_stale(now) {
                    self.refresh_seat_map()?;
                }
                // Nothing left on the map: guess one seat, so the server says SOLD_OUT or
                // that seats came back (SEAT_UNAVAILABLE, and the map is read again).
                let seats = self.seat_map.pick(wants, &mut self.rng).unwrap_or_else(|| {
                    vec![self.rng.below(self.sale.seat_names.len() as u64) as usize]
                });
                self.shoppers[slot].seats = seats;
                Request::Hold(slot)
            }
            Step::ExtraSeat => match self.seat_map.pick(1, &mut self.rng) {
                Some(seat) => Request::ExtraHold(slot, seat[0]),
                None => {
                    self.shoppers[slot].step = Step::Confirm;
                    Request::Confirm(slot)
                }
            },
            Step::Confirm => Request::Confirm(slot),
            Step::Leave(exit) => Request::Leave(slot, exit),
            Step::Done => return Ok(None),
        }))
    }

    fn refresh_seat_map(&mut self) -> redis::RedisResult<()> {
        let chunks = (0..self.sale.seat_names.len())
            .step_by(SEAT_CHUNK)
            .map(Request::SeatMap)
            .collect();
        self.exchange(chunks)?;
        self.seat_map.refreshed_at = Some(self.shared.now_us());
        Ok(())
    }

    /// Sends the batch as one pipeline and handles each reply as it arrives; a command's
    /// latency runs from sending the pipeline to its own reply.
    fn exchange(&mut self, batch: Vec<Request>) -> redis::RedisResult<()> {
        let mut packed = Vec::new();
        for &request in &batch {
            packed.extend(self.build(request).get_packed_command());
        }
        if let Some(cap) = &self.shared.cap {
            cap.acquire(self.shared.started, batch.len());
        }
        let sent = Instant::now();
        self.con.send_packed_command(&packed)?;
        for request in batch {
            let reply = self.con.recv_response()?;
            self.stats.record(request.command(), sent.elapsed(), &reply);
            self.on_reply(request, reply);
        }
        Ok(())
    }
}
