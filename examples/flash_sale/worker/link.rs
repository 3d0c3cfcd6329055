//! The worker's connection: pipelines sent and answered, and under `--chaos` the way back to
//! the primary after a fault. A command whose reply came is acknowledged; one refused because
//! the server is not (or no longer, or not yet) the primary (READONLY, LOADING, MASTERDOWN) was
//! not applied and is sent again; one whose reply was lost with the connection may or may not
//! have been applied: it is sent again and its user knows that its outcome is uncertain.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redis::{Connection, Value};
use seatq_testkit::reply::reply_error;

use super::{Request, Worker};

/// How long a worker keeps trying to reach a primary before it gives up (the run fails).
const GIVE_UP_AFTER: Duration = Duration::from_secs(180);

/// Errors that mean "not applied here; find the primary and send it again".
fn not_applied(reply: &Value) -> bool {
    matches!(
        reply_error(reply),
        Some(("READONLY" | "LOADING" | "MASTERDOWN" | "BUSY", _))
    )
}

impl Worker<'_> {
    /// The connection to the primary; under `--chaos`, reconnects (with backoff) to whichever
    /// server the router names, once it says it is a master.
    fn connection(&mut self) -> Result<&mut Connection, String> {
        if self.con.is_none() {
            if !self.shared.router.chaos {
                return Err("the connection to the server was lost".to_string());
            }
            let started = Instant::now();
            let mut backoff = Duration::from_millis(20);
            loop {
                let epoch = self.shared.router.epoch.load(Ordering::Relaxed);
                let url = self.shared.router.primary();
                match self.shared.router.connect_primary(&url) {
                    Ok(con) => {
                        self.con = Some(con);
                        self.con_epoch = epoch;
                        self.outcome.reconnects += 1;
                        break;
                    }
                    Err(e) if started.elapsed() > GIVE_UP_AFTER => {
                        return Err(format!("no primary for {GIVE_UP_AFTER:?}: {e}"));
                    }
                    Err(_) => {
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_millis(500));
                    }
                }
            }
        }
        Ok(self.con.as_mut().expect("connected"))
    }

    /// Sends the batch as one pipeline and handles each reply as it arrives; a command's
    /// latency runs from sending the pipeline to its own reply.
    pub(super) fn exchange(&mut self, batch: Vec<Request>) -> Result<(), String> {
        let mut packed = Vec::new();
        for &request in &batch {
            packed.extend(self.build(request).get_packed_command());
        }
        if let Some(cap) = &self.shared.cap {
            cap.acquire(self.shared.started, batch.len());
        }
        let router = &self.shared.router;
        if router.chaos && router.epoch.load(Ordering::Relaxed) != self.con_epoch {
            // The primary changed since this connection was made: it may lead to a replica.
            self.con = None;
        }
        self.connection()?;
        self.batch_sent_ms = super::replies::epoch_ms();
        let sent_us = self.shared.now_us();
        let sent = Instant::now();
        let con = self.con.as_mut().expect("connected");
        if let Err(e) = con.send_packed_command(&packed) {
            return self.lost(&batch, &e);
        }
        let mut reroute = false;
        for (i, &request) in batch.iter().enumerate() {
            let reply = match self.con.as_mut().expect("connected").recv_response() {
                Ok(reply) => reply,
                Err(e) => return self.lost(&batch[i..], &e),
            };
            self.stats.record(request.command(), sent.elapsed(), &reply);
            if self.shared.router.chaos && not_applied(&reply) {
                self.outcome.refused_not_primary += 1;
                self.resend.push(request);
                reroute = true;
                continue;
            }
            self.trusted = !self.shared.router.chaos
                || (self.shared.router.epoch.load(Ordering::Relaxed) == self.con_epoch
                    && !self.shared.outage_since(sent_us));
            self.on_reply(request, reply);
        }
        if reroute {
            // This server is not the primary (any more): ask the router again, a little later.
            self.con = None;
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// The connection failed with `requests` unanswered: under `--chaos` they go again, and
    /// their users know that the writes among them may have been applied.
    fn lost(&mut self, requests: &[Request], e: &redis::RedisError) -> Result<(), String> {
        self.con = None;
        if !self.shared.router.chaos {
            return Err(format!("a worker lost the server: {e}"));
        }
        self.outcome.replies_lost += requests.len() as u64;
        for &request in requests {
            if let Some(slot) = request.slot() {
                if request.is_write() {
                    let s = &mut self.shoppers[slot];
                    if !s.uncertain {
                        s.uncertain_sent_ms = self.batch_sent_ms;
                    }
                    s.uncertain = true;
                }
            }
            self.resend.push(request);
        }
        Ok(())
    }
}
