//! The seat inventory's decisions: what each SEAT command changes (as effects) and answers.
//! Pure functions of the event and the server time, unit-tested without Redis.

pub mod inventory;

use std::collections::HashSet;

use crate::config::Setting;
use crate::entry_id::EntryId;
use crate::error::{printable, SeatqError};
use crate::event::{Effect, Event};
use inventory::{HoldId, SeatState, Settlement, MAX_SEAT_NAME, RESERVED_NAMES};

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

impl Event {
    /// Resolves seat names to indices: each must exist and appear once.
    fn resolve(&self, names: &[Box<[u8]>]) -> Result<Vec<u32>, SeatqError> {
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
                    .is_none_or(|t| t > u32::MAX as u64)
                {
                    return Err(SeatqError::Invalid(
                        "general admission stock is limited to 4294967295".into(),
                    ));
                }
                vec![Effect::StockAdded { qty }]
            }
        })
    }

    /// Expires holds whose deadline has passed (at most `limit`), journal IDs after `after`.
    pub fn plan_hold_expiry(&self, now: u64, after: Option<EntryId>, limit: usize) -> Vec<Effect> {
        let mut after = after;
        self.inventory
            .due_holds(now)
            .take(limit)
            .map(|hold| {
                let at = self.next_id(now, after);
                after = Some(at);
                Effect::HoldExpired { at, hold }
            })
            .collect()
    }

    /// SEAT.HOLD, after due holds were expired: all-or-nothing over the requested units.
    pub fn plan_hold(
        &self,
        now: u64,
        user: &[u8],
        units: Units,
        ttl_ms: u64,
    ) -> Result<(Vec<Effect>, HoldReceipt), SeatqError> {
        let inv = &self.inventory;
        let (seats, qty) = match units {
            Units::Seats(names) => {
                let indices = self.resolve(&names)?;
                if let Some(i) = indices.iter().position(|&s| {
                    !matches!(inv.seats[s as usize].state, SeatState::Available { .. })
                }) {
                    return Err(if inv.named.available == 0 {
                        SeatqError::SoldOut(String::new())
                    } else {
                        SeatqError::SeatUnavailable(names[i].to_vec())
                    });
                }
                (names, 0)
            }
            Units::Qty(qty) => {
                if inv.general.available < qty {
                    return Err(SeatqError::SoldOut(format!(
                        "{} left",
                        inv.general.available
                    )));
                }
                (Vec::new(), qty)
            }
        };
        let units = seats.len() as u64 + qty;
        let limit = self.config.get(Setting::UserLimit);
        let owned = inv.buyer(user).map_or(0, |b| b.held + b.sold);
        if limit > 0 && owned + units > limit {
            return Err(SeatqError::LimitExceeded(format!(
                "{owned} held or bought, {units} requested, limit {limit}"
            )));
        }
        let receipt = HoldReceipt {
            hold: inv.next_hold,
            expires_at: now.saturating_add(ttl_ms),
            remaining: if qty > 0 {
                inv.general.available - qty
            } else {
                inv.named.available - seats.len() as u64
            },
            seats: seats.len(),
            qty,
        };
        let effect = Effect::Held {
            at: self.next_id(now, None),
            hold: receipt.hold,
            user: user.into(),
            expires_at: receipt.expires_at,
            seats,
            qty,
        };
        Ok((vec![effect], receipt))
    }

    /// SEAT.RELEASE / SEAT.CONFIRM, after due holds were expired: every unit must be held by
    /// `user`. Answers the units left available in the pool.
    pub fn plan_settle(
        &self,
        now: u64,
        user: &[u8],
        units: Units,
        how: Settlement,
    ) -> Result<(Vec<Effect>, u64), SeatqError> {
        let inv = &self.inventory;
        let buyer = inv.buyer_index(user);
        let (seats, qty) = match units {
            Units::Seats(names) => {
                for (name, &s) in names.iter().zip(&self.resolve(&names)?) {
                    match inv.seats[s as usize].state {
                        SeatState::Held { hold } if Some(inv.holds[&hold].buyer) == buyer => {}
                        SeatState::Held { .. } => return Err(SeatqError::NotOwner(name.to_vec())),
                        SeatState::Available { lapsed_holder }
                            if how == Settlement::Sale
                                && lapsed_holder.is_some()
                                && lapsed_holder == buyer =>
                        {
                            return Err(SeatqError::HoldExpired(name.to_vec()));
                        }
                        _ => return Err(SeatqError::NotHeld(name.to_vec())),
                    }
                }
                (names, 0)
            }
            Units::Qty(qty) => {
                let held = buyer.map_or(0, |b| inv.held_qty(b, now));
                if held < qty {
                    let lapsed = buyer.is_some_and(|b| inv.buyers[b as usize].lapsed_qty > 0);
                    let detail = format!("QTY {qty}: {held} held").into_bytes();
                    return Err(if how == Settlement::Sale && lapsed {
                        SeatqError::HoldExpired(detail)
                    } else {
                        SeatqError::NotHeld(detail)
                    });
                }
                (Vec::new(), qty)
            }
        };
        let remaining = match how {
            Settlement::Release if qty > 0 => inv.general.available + qty,
            Settlement::Release => inv.named.available + seats.len() as u64,
            Settlement::Sale if qty > 0 => inv.general.available,
            Settlement::Sale => inv.named.available,
        };
        let effect = Effect::Settled {
            at: self.next_id(now, None),
            user: user.into(),
            how,
            seats,
            qty,
        };
        Ok((vec![effect], remaining))
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
    use crate::config::EventConfig;

    fn event(seats: usize, ga: u64, limit: u64) -> Event {
        let mut config = EventConfig::from_defaults();
        config.set(Setting::UserLimit, limit);
        let mut ev = Event::new(config);
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

    fn run(ev: &mut Event, effects: Vec<Effect>) {
        for e in &effects {
            ev.apply(e, true);
        }
        ev.inventory.check_invariants().unwrap();
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
        how: Settlement,
    ) -> Result<u64, SeatqError> {
        let (effects, remaining) = ev.plan_settle(now, user.as_bytes(), units, how)?;
        run(ev, effects);
        Ok(remaining)
    }

    fn expire_due(ev: &mut Event, now: u64) {
        let effects = ev.plan_hold_expiry(now, None, usize::MAX);
        run(ev, effects);
    }

    #[test]
    fn seed_hold_release_and_sold_out() {
        let mut ev = event(0, 100, 0);
        assert_eq!(hold(&mut ev, 1, "u1", Units::Qty(1)).unwrap().remaining, 99);
        assert_eq!(
            settle(&mut ev, 2, "u1", Units::Qty(1), Settlement::Release).unwrap(),
            100
        );
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
            settle(&mut ev, 2, "u2", seats(&["A-0"]), Settlement::Release),
            Err(SeatqError::NotOwner(b"A-0".to_vec()))
        );
        assert_eq!(
            settle(&mut ev, 2, "u1", seats(&["A-2"]), Settlement::Sale),
            Err(SeatqError::NotHeld(b"A-2".to_vec()))
        );
        settle(&mut ev, 2, "u1", seats(&["A-0"]), Settlement::Sale).unwrap();
        assert_eq!(ev.inventory.named.sold, 1);
        hold(&mut ev, 3, "u1", Units::Qty(2)).unwrap();
        assert!(matches!(
            hold(&mut ev, 3, "u1", Units::Qty(1)),
            Err(SeatqError::LimitExceeded(_))
        ));
        settle(&mut ev, 4, "u1", Units::Qty(1), Settlement::Release).unwrap();
        hold(&mut ev, 4, "u1", seats(&["A-3"])).unwrap();
        assert_eq!(
            ev.inventory.buyer(b"u1").map(|b| (b.held, b.sold)),
            Some((3, 1))
        );
        assert!(matches!(
            settle(&mut ev, 5, "u1", Units::Qty(2), Settlement::Sale),
            Err(SeatqError::NotHeld(_))
        ));
        settle(&mut ev, 5, "u1", Units::Qty(1), Settlement::Sale).unwrap();
        assert_eq!(ev.inventory.general.sold, 1);
    }

    #[test]
    fn expiry_returns_stock_and_a_late_confirm_sells_nothing() {
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
        assert_eq!(ev.plan_hold_expiry(10_999, None, 10), vec![]);
        expire_due(&mut ev, 11_000);
        assert_eq!(
            (
                ev.inventory.named.available,
                ev.inventory.general.available,
                ev.inventory.holds_expired_total
            ),
            (3, 5, 2)
        );
        assert_eq!(
            settle(&mut ev, 11_001, "u1", seats(&["A-0"]), Settlement::Sale),
            Err(SeatqError::HoldExpired(b"A-0".to_vec()))
        );
        assert!(matches!(
            settle(&mut ev, 11_001, "u1", Units::Qty(1), Settlement::Sale),
            Err(SeatqError::HoldExpired(_))
        ));
        assert_eq!(
            settle(&mut ev, 11_001, "u1", seats(&["A-0"]), Settlement::Release),
            Err(SeatqError::NotHeld(b"A-0".to_vec()))
        );
        assert_eq!(ev.inventory.named.sold + ev.inventory.general.sold, 0);
        // Someone else may hold the returned seat; the old holder's late confirm is then NOT_OWNER.
        hold(&mut ev, 11_002, "u2", seats(&["A-0"])).unwrap();
        assert_eq!(
            settle(&mut ev, 11_003, "u1", seats(&["A-0"]), Settlement::Sale),
            Err(SeatqError::NotOwner(b"A-0".to_vec()))
        );
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
            expire_due(&mut ev, now);
            let user = format!("u{}", rnd(8));
            let units = if rnd(3) == 0 {
                Units::Qty(1 + rnd(3))
            } else {
                let k = 1 + rnd(3) as usize;
                seats(
                    &(0..k)
                        .map(|_| format!("A-{}", rnd(20)))
                        .collect::<Vec<_>>()
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>(),
                )
            };
            let _ = match rnd(4) {
                0 | 1 => hold(&mut ev, now, &user, units).map(|_| 0),
                2 => settle(&mut ev, now, &user, units, Settlement::Release),
                _ => settle(&mut ev, now, &user, units, Settlement::Sale),
            };
            for b in &ev.inventory.buyers {
                assert!(b.held + b.sold <= 5, "cap holds");
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
