//! The seat inventory's decisions: what each SEAT command changes (as effects) and answers.
//! Pure functions of the event and the server time, unit-tested without Redis.
//!
//! Lapsed holds read as returned at once; they are returned for real by the timer, or by a
//! command that needs their seats or units, which returns at most `MAX_RETURNS` of them and
//! leaves the rest to the timer.

pub mod inventory;

use std::collections::HashSet;

use crate::config::Setting;
use crate::entry_id::EntryId;
use crate::error::{printable, SeatqError};
use crate::event::{Effect, Event};
use inventory::{HoldId, SeatState, MAX_SEAT_NAME, RESERVED_NAMES};

/// Lapsed holds one command returns at most on its own.
pub const MAX_RETURNS: usize = 64;

/// What a SEAT command names: named seats, or a quantity of general-admission stock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Units {
    Seats(Vec<Box<[u8]>>),
    Qty(u64),
}

/// Seat names are 1-64 bytes of visible ASCII except `,` (the journal lists seats
/// comma-separated), and not an option word of the SEAT commands.
pub fn validate_seat_name(name: &[u8]) -> Result<(), SeatqError> {
    let visible = name.iter().all(|&b| b.is_ascii_graphic() && b != b',');
    if name.is_empty() || name.len() > MAX_SEAT_NAME || !visible {
        return Err(SeatqError::Invalid(format!(
            "seat names are 1 to {MAX_SEAT_NAME} visible ASCII characters without ',', got '{}'",
            printable(name)
        )));
    }
    if RESERVED_NAMES
        .iter()
        .any(|w| w.as_bytes().eq_ignore_ascii_case(name))
    {
        return Err(SeatqError::Invalid(format!(
            "'{}' is reserved and cannot name a seat",
            printable(name)
        )));
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
pub struct HoldReceipt {
    pub hold: HoldId,
    pub expires_at: u64,
    /// Units still available in the pool the hold drew from (named seats or GA stock).
    pub remaining: u64,
    pub seats: usize,
    pub qty: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub struct SeatView {
    pub seat: Vec<u8>,
    pub state: &'static str,
    pub holder: Option<Vec<u8>>,
    pub expires_at: u64,
}

/// Effects in order, each journaled after the previous one.
struct Steps<'e> {
    event: &'e Event,
    now: u64,
    effects: Vec<Effect>,
    after: Option<EntryId>,
    returned: HashSet<HoldId>,
}

impl<'e> Steps<'e> {
    fn new(event: &'e Event, now: u64) -> Self {
        Self {
            event,
            now,
            effects: Vec::new(),
            after: None,
            returned: HashSet::new(),
        }
    }

    fn at(&mut self) -> EntryId {
        let at = self.event.next_id(self.now, self.after);
        self.after = Some(at);
        at
    }

    /// Returns lapsed holds, refusing (TRYAGAIN) if more than `MAX_RETURNS` are needed.
    fn expire(&mut self, holds: impl IntoIterator<Item = HoldId>) -> Result<(), SeatqError> {
        for hold in holds {
            if !self.returned.insert(hold) {
                continue;
            }
            if self.returned.len() > MAX_RETURNS {
                return Err(SeatqError::TryAgain(
                    "lapsed holds are being returned to stock; retry".into(),
                ));
            }
            let at = self.at();
            self.effects.push(Effect::HoldExpired { at, hold });
        }
        Ok(())
    }
}

impl Event {
    /// Resolves seat names to indices: each must exist and appear once.
    fn resolve_seats(&self, names: &[Box<[u8]>]) -> Result<Vec<u32>, SeatqError> {
        let mut seen = HashSet::with_capacity(names.len());
        names
            .iter()
            .map(|name| {
                if !seen.insert(&**name) {
                    return Err(SeatqError::Invalid(format!(
                        "seat {} is named twice",
                        printable(name)
                    )));
                }
                self.inventory
                    .seat_index(name)
                    .ok_or_else(|| SeatqError::NoSuchSeat(name.to_vec()))
            })
            .collect()
    }

    pub fn plan_add(&self, units: Units) -> Result<Vec<Effect>, SeatqError> {
        Ok(match units {
            Units::Seats(names) => {
                for name in &names {
                    validate_seat_name(name)?;
                }
                vec![Effect::SeatsAdded { names }]
            }
            Units::Qty(qty) => {
                if self
                    .inventory
                    .general
                    .total
                    .checked_add(qty)
                    .is_none_or(|t| t > inventory::MAX_STOCK)
                {
                    return Err(SeatqError::Invalid(format!(
                        "general admission stock is limited to {}",
                        inventory::MAX_STOCK
                    )));
                }
                vec![Effect::StockAdded { qty }]
            }
        })
    }

    /// Returns holds whose deadline passed (at most `limit`), journal IDs after `after`.
    pub fn plan_hold_expiry(
        &self,
        now: u64,
        after: &mut Option<EntryId>,
        limit: usize,
    ) -> Vec<Effect> {
        self.inventory
            .due_holds(now)
            .take(limit)
            .map(|hold| {
                let at = self.next_id(now, *after);
                *after = Some(at);
                Effect::HoldExpired { at, hold }
            })
            .collect()
    }

    /// SEAT.HOLD: all-or-nothing over the requested units. Lapsed holds in the way are
    /// returned first (they read as available already).
    pub fn plan_hold(
        &self,
        now: u64,
        user: &[u8],
        units: Units,
        ttl_ms: u64,
    ) -> Result<(Vec<Effect>, HoldReceipt), SeatqError> {
        let inv = &self.inventory;
        let (named, general) = inv.counts_at(now);
        let mut steps = Steps::new(self, now);
        let (seats, qty) = match units {
            Units::Seats(names) => {
                let indices = self.resolve_seats(&names)?;
                let mut in_the_way = Vec::new();
                for (i, &s) in indices.iter().enumerate() {
                    match inv.seats[s as usize].state {
                        SeatState::Available { .. } => {}
                        SeatState::Held { hold } if inv.lapsed(hold, now) => in_the_way.push(hold),
                        _ if named.available == 0 => {
                            return Err(SeatqError::SoldOut(String::new()))
                        }
                        _ => return Err(SeatqError::SeatUnavailable(names[i].to_vec())),
                    }
                }
                steps.expire(in_the_way)?;
                (names, 0)
            }
            Units::Qty(qty) => {
                if general.available < qty {
                    return Err(SeatqError::SoldOut(format!("{} left", general.available)));
                }
                // Return lapsed GA holds, earliest first, until the stock covers the request.
                let mut short = qty.saturating_sub(inv.general.available);
                let needed = inv
                    .due_holds(now)
                    .filter(|id| inv.holds[id].qty > 0)
                    .take_while(|id| {
                        let more = short > 0;
                        short = short.saturating_sub(inv.holds[id].qty);
                        more
                    });
                steps.expire(needed.collect::<Vec<_>>())?;
                (Vec::new(), qty)
            }
        };
        let units = seats.len() as u64 + qty;
        let limit = self.config.get(Setting::UserLimit);
        let mut owned = 0;
        if let Some(b) = inv.buyer(user) {
            // The user's lapsed holds no longer count against the cap: they go back now.
            let lapsed: Vec<HoldId> = b
                .holds
                .range(..=(now, HoldId::MAX))
                .map(|&(_, id)| id)
                .collect();
            let lapsed_units: u64 = lapsed
                .iter()
                .map(|id| inv.holds[id].qty + inv.holds[id].seats.len() as u64)
                .sum();
            if limit > 0 {
                steps.expire(lapsed)?;
            }
            owned = b.held + b.sold - lapsed_units;
        }
        if limit > 0 && owned + units > limit {
            return Err(SeatqError::LimitExceeded(format!(
                "{owned} held or bought, {units} requested, limit {limit}"
            )));
        }
        let receipt = HoldReceipt {
            hold: inv.next_hold,
            expires_at: now.saturating_add(ttl_ms),
            remaining: if qty > 0 {
                general.available - qty
            } else {
                named.available - seats.len() as u64
            },
            seats: seats.len(),
            qty,
        };
        let at = steps.at();
        steps.effects.push(Effect::Held {
            at,
            hold: receipt.hold,
            user: user.into(),
            expires_at: receipt.expires_at,
            seats,
            qty,
        });
        Ok((steps.effects, receipt))
    }

    /// SEAT.RELEASE / SEAT.CONFIRM: every unit must be held by `user` in a live hold. The
    /// effects (returning the user's own lapsed holds) apply whatever the answer; the answer is
    /// the units left available in the pool.
    pub fn plan_settle(
        &self,
        now: u64,
        user: &[u8],
        units: Units,
        to_sold: bool,
    ) -> Result<(Vec<Effect>, Result<u64, SeatqError>), SeatqError> {
        let inv = &self.inventory;
        let buyer = inv.buyer_index(user);
        let mut steps = Steps::new(self, now);
        let mut refusal = None;
        let (seats, qty) = match units {
            Units::Seats(names) => {
                let indices = self.resolve_seats(&names)?;
                let mut lapsed = Vec::new();
                for (name, &s) in names.iter().zip(&indices) {
                    let err = match inv.seats[s as usize].state {
                        SeatState::Held { hold } if Some(inv.holds[&hold].buyer) == buyer => {
                            if !inv.lapsed(hold, now) {
                                continue;
                            }
                            lapsed.push(hold);
                            if to_sold {
                                SeatqError::HoldExpired(name.to_vec())
                            } else {
                                SeatqError::NotHeld(name.to_vec())
                            }
                        }
                        SeatState::Held { hold } if !inv.lapsed(hold, now) => {
                            SeatqError::NotOwner(name.to_vec())
                        }
                        SeatState::Available { lapsed_holder }
                            if to_sold && lapsed_holder.is_some() && lapsed_holder == buyer =>
                        {
                            SeatqError::HoldExpired(name.to_vec())
                        }
                        _ => SeatqError::NotHeld(name.to_vec()),
                    };
                    refusal.get_or_insert(err);
                }
                steps.expire(lapsed)?;
                (names, 0)
            }
            Units::Qty(qty) => {
                let held = buyer.map_or(0, |b| inv.held_qty(b, now));
                let own_lapsed: Vec<HoldId> = buyer.map_or(Vec::new(), |b| {
                    inv.buyers[b as usize]
                        .holds
                        .range(..=(now, HoldId::MAX))
                        .map(|&(_, id)| id)
                        .filter(|id| inv.holds[id].qty > 0)
                        .collect()
                });
                if held < qty {
                    let lapsed = !own_lapsed.is_empty()
                        || buyer.is_some_and(|b| inv.buyers[b as usize].lapsed_qty > 0);
                    let detail = format!("QTY {qty}: {held} held").into_bytes();
                    refusal = Some(if to_sold && lapsed {
                        SeatqError::HoldExpired(detail)
                    } else {
                        SeatqError::NotHeld(detail)
                    });
                }
                // Units come from the earliest-expiring holds: lapsed ones go back first.
                steps.expire(own_lapsed)?;
                (Vec::new(), qty)
            }
        };
        if let Some(err) = refusal {
            return Ok((steps.effects, Err(err)));
        }
        let (named, general) = inv.counts_at(now);
        let remaining = match (to_sold, qty > 0) {
            (false, true) => general.available + qty,
            (false, false) => named.available + seats.len() as u64,
            (true, true) => general.available,
            (true, false) => named.available,
        };
        let (at, user) = (steps.at(), user.into());
        steps.effects.push(if to_sold {
            Effect::Sold {
                at,
                user,
                seats,
                qty,
            }
        } else {
            Effect::Released {
                at,
                user,
                seats,
                qty,
            }
        });
        Ok((steps.effects, Ok(remaining)))
    }

    /// SEAT.STATUS: each seat's state as of `now` (a lapsed hold shows as available).
    pub fn seat_views(&self, now: u64, names: &[Box<[u8]>]) -> Result<Vec<SeatView>, SeatqError> {
        let inv = &self.inventory;
        let indices: Vec<u32> = names
            .iter()
            .map(|n| {
                inv.seat_index(n)
                    .ok_or_else(|| SeatqError::NoSuchSeat(n.to_vec()))
            })
            .collect::<Result<_, _>>()?;
        Ok(indices
            .into_iter()
            .map(|s| {
                let seat = &inv.seats[s as usize];
                let (state, holder, expires_at) = match seat.state {
                    SeatState::Held { hold } if !inv.lapsed(hold, now) => {
                        let h = &inv.holds[&hold];
                        (
                            "held",
                            Some(inv.buyers[h.buyer as usize].id.to_vec()),
                            h.expires_at,
                        )
                    }
                    SeatState::Sold { buyer } => {
                        ("sold", Some(inv.buyers[buyer as usize].id.to_vec()), 0)
                    }
                    _ => ("available", None, 0),
                };
                SeatView {
                    seat: seat.name.to_vec(),
                    state,
                    holder,
                    expires_at,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::tests::run;

    fn event(seats: usize, ga: u64, limit: u64) -> Event {
        let mut ev = crate::queue::tests::event();
        run(
            &mut ev,
            vec![Effect::Configured(vec![(Setting::UserLimit, limit)])],
        );
        let names: Vec<Box<[u8]>> = (0..seats)
            .map(|i| format!("A-{i}").into_bytes().into())
            .collect();
        let added = ev.plan_add(Units::Seats(names)).unwrap();
        run(&mut ev, added);
        if ga > 0 {
            let stock = ev.plan_add(Units::Qty(ga)).unwrap();
            run(&mut ev, stock);
        }
        ev
    }

    fn seats(names: &[&str]) -> Units {
        Units::Seats(names.iter().map(|n| n.as_bytes().into()).collect())
    }

    fn hold(ev: &mut Event, now: u64, user: &str, units: Units) -> Result<HoldReceipt, SeatqError> {
        let (effects, receipt) = ev.plan_hold(now, user.as_bytes(), units, 10_000)?;
        run(ev, effects);
        Ok(receipt)
    }

    fn settle(
        ev: &mut Event,
        now: u64,
        user: &str,
        units: Units,
        to_sold: bool,
    ) -> Result<u64, SeatqError> {
        let (effects, answer) = ev.plan_settle(now, user.as_bytes(), units, to_sold)?;
        run(ev, effects);
        answer
    }

    fn expire_due(ev: &mut Event, now: u64) {
        let effects = ev.plan_hold_expiry(now, &mut None, usize::MAX);
        run(ev, effects);
    }

    #[test]
    fn seed_hold_release_and_sold_out() {
        let mut ev = event(0, 100, 0);
        assert_eq!(hold(&mut ev, 1, "u1", Units::Qty(1)).unwrap().remaining, 99);
        assert_eq!(settle(&mut ev, 2, "u1", Units::Qty(1), false).unwrap(), 100);
        let mut ev = event(2, 0, 0);
        hold(&mut ev, 1, "u1", seats(&["A-0"])).unwrap();
        assert_eq!(
            hold(&mut ev, 1, "u2", seats(&["A-0"])),
            Err(SeatqError::SeatUnavailable(b"A-0".to_vec()))
        );
        hold(&mut ev, 1, "u2", seats(&["A-1"])).unwrap();
        assert_eq!(
            hold(&mut ev, 1, "u3", seats(&["A-1"])),
            Err(SeatqError::SoldOut(String::new()))
        );
        let mut ev = event(0, 0, 0);
        assert!(matches!(
            hold(&mut ev, 1, "u", Units::Qty(1)),
            Err(SeatqError::SoldOut(_))
        ));
        assert_eq!(ev.inventory.general.available, 0);
    }

    #[test]
    fn holds_are_all_or_nothing() {
        let mut ev = event(4, 0, 0);
        hold(&mut ev, 1, "u1", seats(&["A-2"])).unwrap();
        assert_eq!(
            hold(&mut ev, 1, "u2", seats(&["A-0", "A-1", "A-2"])),
            Err(SeatqError::SeatUnavailable(b"A-2".to_vec()))
        );
        assert_eq!(
            ev.inventory.named.available, 3,
            "nothing of the failed hold was taken"
        );
        assert_eq!(
            hold(&mut ev, 1, "u2", seats(&["A-0", "A-9"])),
            Err(SeatqError::NoSuchSeat(b"A-9".to_vec()))
        );
        assert!(matches!(
            hold(&mut ev, 1, "u2", seats(&["A-0", "A-0"])),
            Err(SeatqError::Invalid(_))
        ));
        assert_eq!(
            hold(&mut ev, 1, "u2", seats(&["A-0", "A-1", "A-3"]))
                .unwrap()
                .remaining,
            0
        );
    }

    #[test]
    fn only_the_holder_releases_or_confirms_and_the_cap_counts_held_plus_sold() {
        let mut ev = event(6, 10, 4);
        hold(&mut ev, 1, "u1", seats(&["A-0", "A-1"])).unwrap();
        assert_eq!(
            settle(&mut ev, 2, "u2", seats(&["A-0"]), false),
            Err(SeatqError::NotOwner(b"A-0".to_vec()))
        );
        assert_eq!(
            settle(&mut ev, 2, "u1", seats(&["A-2"]), true),
            Err(SeatqError::NotHeld(b"A-2".to_vec()))
        );
        settle(&mut ev, 2, "u1", seats(&["A-0"]), true).unwrap();
        assert_eq!(ev.inventory.named.sold, 1);
        hold(&mut ev, 3, "u1", Units::Qty(2)).unwrap();
        assert!(matches!(
            hold(&mut ev, 3, "u1", Units::Qty(1)),
            Err(SeatqError::LimitExceeded(_))
        ));
        settle(&mut ev, 4, "u1", Units::Qty(1), false).unwrap();
        hold(&mut ev, 4, "u1", seats(&["A-3"])).unwrap();
        assert_eq!(
            ev.inventory.buyer(b"u1").map(|b| (b.held, b.sold)),
            Some((3, 1))
        );
        assert!(matches!(
            settle(&mut ev, 5, "u1", Units::Qty(2), true),
            Err(SeatqError::NotHeld(_))
        ));
        settle(&mut ev, 5, "u1", Units::Qty(1), true).unwrap();
        assert_eq!(ev.inventory.general.sold, 1);
    }

    #[test]
    fn lapsed_holds_read_as_returned_and_a_late_confirm_sells_nothing() {
        let mut ev = event(3, 5, 0);
        let r = hold(&mut ev, 1000, "u1", seats(&["A-0", "A-1"])).unwrap();
        hold(&mut ev, 1000, "u1", Units::Qty(3)).unwrap();
        assert_eq!(r.expires_at, 11_000);
        let (named, general) = ev.inventory.counts_at(11_000);
        assert_eq!(
            (named.available, general.available),
            (3, 5),
            "reads see lapsed holds as returned"
        );
        assert_eq!(ev.plan_hold_expiry(10_999, &mut None, 10), vec![]);
        // A late confirm returns the lapsed hold and answers HOLD_EXPIRED.
        assert_eq!(
            settle(&mut ev, 11_001, "u1", seats(&["A-0"]), true),
            Err(SeatqError::HoldExpired(b"A-0".to_vec()))
        );
        assert_eq!(
            ev.inventory.holds_expired_total, 1,
            "returned by the confirm itself"
        );
        assert!(matches!(
            settle(&mut ev, 11_001, "u1", Units::Qty(1), true),
            Err(SeatqError::HoldExpired(_))
        ));
        assert_eq!(
            settle(&mut ev, 11_001, "u1", seats(&["A-0"]), false),
            Err(SeatqError::NotHeld(b"A-0".to_vec()))
        );
        expire_due(&mut ev, 11_001);
        assert_eq!(
            (ev.inventory.named.available, ev.inventory.general.available),
            (3, 5)
        );
        assert_eq!(ev.inventory.named.sold + ev.inventory.general.sold, 0);
        hold(&mut ev, 11_002, "u2", seats(&["A-0"])).unwrap();
        assert_eq!(
            settle(&mut ev, 11_003, "u1", seats(&["A-0"]), true),
            Err(SeatqError::NotOwner(b"A-0".to_vec()))
        );
    }

    #[test]
    fn a_hold_returns_lapsed_holds_in_its_way_but_only_a_bounded_number() {
        let mut ev = event(1, (MAX_RETURNS * 2) as u64, 0);
        hold(&mut ev, 0, "a", seats(&["A-0"])).unwrap();
        let (effects, _) = ev.plan_hold(10_000, b"b", seats(&["A-0"]), 10_000).unwrap();
        assert!(matches!(
            effects[..],
            [Effect::HoldExpired { .. }, Effect::Held { .. }]
        ));
        run(&mut ev, effects);
        for i in 0..MAX_RETURNS * 2 {
            hold(&mut ev, 20_000, &format!("g{i}"), Units::Qty(1)).unwrap();
        }
        let (named, general) = ev.inventory.counts_at(30_000);
        assert_eq!(
            (named.available, general.available),
            (1, (MAX_RETURNS * 2) as u64)
        );
        assert!(matches!(
            ev.plan_hold(30_000, b"c", Units::Qty(MAX_RETURNS as u64 + 1), 1000),
            Err(SeatqError::TryAgain(_))
        ));
        let (effects, receipt) = ev
            .plan_hold(30_000, b"c", Units::Qty(MAX_RETURNS as u64), 1000)
            .unwrap();
        assert_eq!(effects.len(), MAX_RETURNS + 1);
        run(&mut ev, effects);
        assert_eq!(receipt.remaining, MAX_RETURNS as u64);
    }

    #[test]
    fn random_operations_keep_the_invariants() {
        let mut ev = event(20, 30, 5);
        let mut state = 0x2545F4914F6CDD1Du64;
        let mut rnd = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for step in 0..5000u64 {
            let now = step * 10;
            if rnd(5) == 0 {
                expire_due(&mut ev, now);
            }
            let user = format!("u{}", rnd(8));
            let units = if rnd(3) == 0 {
                Units::Qty(1 + rnd(3))
            } else {
                let k = 1 + rnd(3) as usize;
                let names: Vec<String> = (0..k).map(|_| format!("A-{}", rnd(20))).collect();
                seats(&names.iter().map(String::as_str).collect::<Vec<_>>())
            };
            let _ = match rnd(4) {
                0 | 1 => hold(&mut ev, now, &user, units).map(|_| 0),
                2 => settle(&mut ev, now, &user, units, false),
                _ => settle(&mut ev, now, &user, units, true),
            };
            let inv = &ev.inventory;
            for b in inv.buyers.iter() {
                assert!(b.sold <= 5, "cap holds");
            }
        }
        let inv = &ev.inventory;
        assert_eq!(inv.named.available + inv.named.held + inv.named.sold, 20);
        assert!(
            inv.named.sold + inv.general.sold > 0,
            "the run sold something"
        );
    }

    #[test]
    fn seat_names_are_validated() {
        for bad in [
            &b""[..],
            b"has space",
            b"a,b",
            b"qty",
            b"TTL",
            b"\xff",
            &[b'x'; 65],
        ] {
            assert!(validate_seat_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_seat_name(b"Floor/R3#12").is_ok());
    }
}
