//! The users as state machines: each worker thread schedules its share of them over one
//! connection and pipelines the commands of those that are due (`request`), then moves each
//! user on from its reply (`replies`). Under `--chaos` the connection follows the primary
//! (`link`): commands whose reply was lost are sent again, and writes whose outcome is unknown
//! are resolved by reading the seats.

mod link;
mod replies;
mod request;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::Connection;
use seatq_testkit::rng::Rng;

use crate::options::Options;
use crate::plan::{Plan, WaitingFate, COMPACTION_THRESHOLD};
use crate::run::Shared;
use crate::sale::Sale;
use crate::seat_map::SeatMap;
use crate::stats::{Expect, Lag, Outcome, Stats};
pub use request::Request;

/// The shortest wait between two polls of one user.
const MIN_POLL_US: u64 = 100_000;
/// A lingering user (see `plan::LINGERERS`) polls its session this often.
const LINGER_POLL_US: u64 = 2_000_000;
/// Lingering users wait this long for compaction after everyone else is done.
const LINGER_WAIT_FOR_COMPACTION_US: u64 = 30_000_000;

/// A worker with users in line reads SEAT.INFO this often, to learn that the sale sold out.
const INVENTORY_CHECK_US: u64 = 250_000;

/// Most commands a worker sends in one pipeline.
pub const MAX_PIPELINE: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    Arrive,
    RetryJoin,
    Wait,
    Claim,
    Shop,
    ExtraSeat,
    Confirm,
    Linger,
    /// The lingering user's last checks: 0 STATUS, 1 ADMIT, 2 LEAVE, all by USER.
    LingerCheck(u8),
    Leave(Exit),
    Done,
}

/// Why a user leaves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Exit {
    Impatient,
    SoldOutWaiting,
    SoldOutAdmitted,
    Browsed,
    Probe,
}

/// One user: its plan, where it stands, and what the server gave it.
struct Shopper {
    user: u32,
    plan: Plan,
    step: Step,
    /// When the user is due; schedule entries with another time are stale and skipped.
    wake_at: u64,
    in_line: bool,
    /// When the current ticket was taken.
    joined_at: u64,
    /// When the last reply of the server to this user came (for `--chaos`: a fault since then
    /// explains a lapse).
    last_ok_at: u64,
    ticket: String,
    serial: u32,
    /// Joins so far: a join after a lapse takes a new idempotency key.
    joins: u32,
    pass: String,
    /// Seats asked for by the hold in flight, then held.
    seats: Vec<usize>,
    /// The hold's number, when its reply came.
    hold: Option<u64>,
    /// The last write's reply was lost: it may or may not have been applied.
    uncertain: bool,
    /// When the first of the sends whose reply was lost went out (ms since the epoch): if it
    /// was applied, it was applied at or after this time.
    uncertain_sent_ms: u64,
    /// Deadlines the server gave (ms since the epoch; 0 unknown): the ticket's heartbeat, the
    /// call's claim window, the pass, the hold.
    heartbeat_ms: u64,
    claim_by_ms: u64,
    pass_ms: u64,
    hold_ms: u64,
    /// The lingering user's wait for compaction began (0: not yet).
    linger_done_at: u64,
    /// One of the lingering user's last checks failed.
    linger_failed: bool,
}

/// One thread's users, due by time, over one connection.
pub struct Worker<'a> {
    con: Option<Connection>,
    /// The router's epoch when `con` was made: a change of primary since makes it stale (a
    /// demoted primary still answers reads, as a replica: without renewing anything).
    con_epoch: usize,
    /// The reply being handled came from the primary the router named when the connection
    /// was made, with no fault under way since its pipeline was sent: what the server did
    /// while answering (a heartbeat's renewal) can be counted on.
    trusted: bool,
    /// When the pipeline in flight was sent (ms since the epoch): deadlines the server set
    /// while answering it are at least this plus their TTL.
    batch_sent_ms: u64,
    /// How late users' requests went out after they were due (see `Lag`).
    lag: Lag,
    /// Requests to send again first (their reply was lost or they were not applied).
    resend: Vec<Request>,
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
        con: Option<Connection>,
        sale: &'a Sale,
        shared: &'a Shared,
        users: impl Iterator<Item = u32>,
        seed: u64,
        options: &Options,
    ) -> Worker<'a> {
        let shoppers: Vec<Shopper> = users
            .map(|user| Shopper {
                user,
                plan: Plan::draw(seed, user, options.users, options.arrival, options.poll_ms),
                step: Step::Arrive,
                wake_at: 0,
                in_line: false,
                joined_at: 0,
                last_ok_at: 0,
                ticket: String::new(),
                serial: u32::MAX,
                joins: 0,
                pass: String::new(),
                seats: Vec::new(),
                hold: None,
                uncertain: false,
                uncertain_sent_ms: 0,
                heartbeat_ms: 0,
                claim_by_ms: 0,
                pass_ms: 0,
                hold_ms: 0,
                linger_done_at: 0,
                linger_failed: false,
            })
            .collect();
        let mut worker = Worker {
            con,
            con_epoch: 0,
            trusted: true,
            batch_sent_ms: 0,
            lag: Lag::default(),
            resend: Vec::new(),
            sale,
            shared,
            rng: Rng::new(seed ^ shoppers.first().map_or(0, |s| s.user as u64)),
            active: shoppers.len(),
            shoppers,
            schedule: BinaryHeap::new(),
            seat_map: SeatMap::new(sale.seat_names.len()),
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
    pub fn run(mut self) -> Result<(Stats, Outcome), String> {
        while self.active > 0 {
            let now = self.shared.now_us();
            let mut batch = std::mem::take(&mut self.resend);
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
                    self.lag.record(now - at);
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
        self.outcome.lag.merge(&self.lag);
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
    fn next_request(&mut self, slot: usize, now: u64) -> Result<Option<Request>, String> {
        let s = &self.shoppers[slot];
        Ok(Some(match s.step {
            Step::Arrive => Request::Join(slot),
            Step::RetryJoin => Request::RetryJoin(slot),
            Step::Wait => {
                let since_join = now.saturating_sub(s.joined_at);
                match s.plan.waiting {
                    _ if self.sold_out => {
                        self.shoppers[slot].step = Step::Leave(Exit::SoldOutWaiting);
                        Request::Leave(slot, Exit::SoldOutWaiting)
                    }
                    WaitingFate::Leaves(after) if since_join >= after => {
                        self.shoppers[slot].step = Step::Leave(Exit::Impatient);
                        Request::Leave(slot, Exit::Impatient)
                    }
                    WaitingFate::Abandons(after) if since_join >= after => {
                        // The tab is closed: no more polls; the ticket lapses on the server.
                        let (serial, joined_at) = (s.serial, s.joined_at);
                        self.outcome.expect(serial, Expect::Lapsed, joined_at, now);
                        self.outcome.abandoned_waiting += 1;
                        self.finish(slot);
                        return Ok(None);
                    }
                    _ => Request::Status(slot),
                }
            }
            Step::Claim => Request::Claim(slot),
            Step::Shop => {
                let wants = s.plan.wants;
                self.seat_map.update(&self.shared.seat_map);
                // Nothing left on the map: guess one seat, so the server says SOLD_OUT or
                // that seats came back (SEAT_UNAVAILABLE, and the map is read again).
                let seats = self.seat_map.pick(wants, &mut self.rng).unwrap_or_else(|| {
                    vec![self.rng.below(self.sale.seat_names.len() as u64) as usize]
                });
                self.shoppers[slot].seats = seats;
                self.shoppers[slot].hold = None;
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
            Step::Linger => {
                let others_done = self.shared.finished.load(Ordering::Relaxed)
                    + self.shared.lingering.load(Ordering::Relaxed)
                    >= self.shared.users as u64;
                if others_done && s.linger_done_at == 0 {
                    self.shoppers[slot].linger_done_at = now;
                }
                let waited = now.saturating_sub(self.shoppers[slot].linger_done_at);
                // Compaction can only be waited for when enough tickets end.
                let compacted = self.shared.compacted_at_us.load(Ordering::Relaxed) > 0
                    || self.shared.users as u64 <= COMPACTION_THRESHOLD;
                if others_done && (compacted || waited >= LINGER_WAIT_FOR_COMPACTION_US) {
                    self.shoppers[slot].step = Step::LingerCheck(0);
                    Request::LingerCheck(slot, 0)
                } else {
                    Request::LingerStatus(slot)
                }
            }
            Step::LingerCheck(stage) => Request::LingerCheck(slot, stage),
            Step::Leave(exit) => Request::Leave(slot, exit),
            Step::Done => return Ok(None),
        }))
    }
}
