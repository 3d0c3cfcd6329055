//! Seat inventory of one event: named seats (reserved seating) and count-only general-admission
//! stock, holds with deadlines, sales, and per-user counts for the purchase cap.
//!
//! Every unit is in exactly one of available / held / sold; held units are exactly the units of
//! holds; a buyer's counts equal what their holds and sales contain (`check_invariants`). Every
//! change checks that it keeps those rules and changes nothing when it would not, so no input,
//! a corrupted AOF included, can make the books disagree.

use std::collections::{BTreeMap, BTreeSet};

use crate::collections::seg_vec::SegVec;
use crate::collections::sharded::ShardedMap;
use crate::collections::sum_blocks::SumBlocks;

pub const MAX_SEAT_NAME: usize = 64;
/// Words that are options of SEAT commands and so cannot name a seat.
pub const RESERVED_NAMES: [&str; 3] = ["QTY", "TTL", "PASS"];
/// General-admission stock of one event.
pub const MAX_STOCK: u64 = u32::MAX as u64;

pub type HoldId = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeatState {
    /// `lapsed_holder`: the buyer whose hold on this seat expired, so that buyer's late confirm
    /// answers HOLD_EXPIRED rather than NOT_HELD; cleared when the seat is held again.
    Available {
        lapsed_holder: Option<u32>,
    },
    Held {
        hold: HoldId,
    },
    Sold {
        buyer: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seat {
    pub name: Box<[u8]>,
    pub state: SeatState,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    pub buyer: u32,
    pub expires_at: u64,
    /// Indices of named seats.
    pub seats: Vec<u32>,
    /// General-admission units.
    pub qty: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Buyer {
    pub id: Box<[u8]>,
    pub held: u64,
    pub sold: u64,
    /// GA units of this buyer's holds that expired since their last GA hold (a late GA confirm
    /// answers HOLD_EXPIRED).
    pub lapsed_qty: u64,
    /// GA units in this buyer's holds.
    pub ga_held: u64,
    /// This buyer's holds in expiry order, so a release or confirm touches only the holds it
    /// takes units from, and the buyer's lapsed holds are found without a scan.
    pub holds: BTreeSet<(u64, HoldId)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub available: u64,
    pub held: u64,
    pub sold: u64,
}

impl Counts {
    fn take(&mut self, n: u64, to_sold: bool) {
        self.held -= n;
        if to_sold {
            self.sold += n;
        } else {
            self.available += n;
        }
    }
}

#[derive(Default)]
pub struct Inventory {
    pub seats: SegVec<Seat>,
    by_name: ShardedMap<Box<[u8]>, u32>,
    pub buyers: SegVec<Buyer>,
    by_buyer: ShardedMap<Box<[u8]>, u32>,
    pub holds: BTreeMap<HoldId, Hold>,
    /// (expires_at, hold) in expiry order, weighted by the hold's seats and units.
    deadlines: SumBlocks<(u64, HoldId)>,
    pub next_hold: HoldId,
    pub named: Counts,
    pub general: Counts,
    pub holds_expired_total: u64,
}

/// Why a change does not fit the inventory (it changes nothing).
pub type Refusal = &'static str;

impl Inventory {
    pub fn seat_index(&self, name: &[u8]) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    pub fn buyer_index(&self, user: &[u8]) -> Option<u32> {
        self.by_buyer.get(user).copied()
    }

    pub fn buyer(&self, user: &[u8]) -> Option<&Buyer> {
        self.buyer_index(user).map(|i| &self.buyers[i as usize])
    }

    fn intern(&mut self, user: &[u8]) -> u32 {
        if let Some(i) = self.buyer_index(user) {
            return i;
        }
        let i = self.buyers.len() as u32;
        self.buyers.push(Buyer {
            id: user.into(),
            ..Buyer::default()
        });
        self.by_buyer.insert(user.into(), i);
        i
    }

    /// Adds the named seats that do not exist yet; returns how many were new.
    pub fn add_seats(&mut self, names: &[Box<[u8]>]) -> usize {
        let mut added = 0;
        for name in names {
            if self.by_name.get(name).is_some() {
                continue;
            }
            self.by_name.insert(name.clone(), self.seats.len() as u32);
            self.seats.push(Seat {
                name: name.clone(),
                state: SeatState::Available {
                    lapsed_holder: None,
                },
            });
            self.named.total += 1;
            self.named.available += 1;
            added += 1;
        }
        added
    }

    pub fn add_stock(&mut self, qty: u64) -> Result<(), Refusal> {
        match self.general.total.checked_add(qty) {
            Some(total) if total <= MAX_STOCK => {
                self.general.total = total;
                self.general.available += qty;
                Ok(())
            }
            _ => Err("general admission stock is limited to 4294967295"),
        }
    }

    /// The hold expiring first.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.first().map(|(t, _)| t)
    }

    /// Holds whose deadline is at or before `now`, earliest first.
    pub fn due_holds(&self, now: u64) -> impl Iterator<Item = HoldId> + '_ {
        self.deadlines
            .iter()
            .take_while(move |&(t, _)| t <= now)
            .map(|(_, id)| id)
    }

    /// Holds whose deadline passed at `now` (not returned yet).
    pub fn lapsed_holds(&self, now: u64) -> usize {
        self.deadlines.count_through(&(now, HoldId::MAX))
    }

    /// A hold's deadline has passed (it counts as returned even before it is expired).
    pub fn lapsed(&self, hold: HoldId, now: u64) -> bool {
        self.holds.get(&hold).is_some_and(|h| h.expires_at <= now)
    }

    /// Named and GA counts as of `now`: lapsed holds count as available (reads between their
    /// deadline and their return, and on replicas, which never expire anything themselves).
    pub fn counts_at(&self, now: u64) -> (Counts, Counts) {
        let [seats, qty] = self.deadlines.sum_through(&(now, HoldId::MAX));
        let (mut named, mut general) = (self.named.clone(), self.general.clone());
        named.take(seats, false);
        general.take(qty, false);
        (named, general)
    }

    /// GA units `buyer` holds in holds still live at `now`.
    pub fn held_qty(&self, buyer: u32, now: u64) -> u64 {
        let b = &self.buyers[buyer as usize];
        let lapsed: u64 = b
            .holds
            .range(..=(now, HoldId::MAX))
            .map(|(_, id)| self.holds[id].qty)
            .sum();
        b.ga_held - lapsed
    }

    /// Creates hold `id` (the next hold ID) on available seats and stock.
    pub fn hold(
        &mut self,
        id: HoldId,
        user: &[u8],
        expires_at: u64,
        seats: &[u32],
        qty: u64,
    ) -> Result<(), Refusal> {
        if id != self.next_hold {
            return Err("hold ID out of sequence");
        }
        if seats.is_empty() && qty == 0 {
            return Err("an empty hold");
        }
        let mut distinct = BTreeSet::new();
        for &s in seats {
            let available = self
                .seats
                .get(s as usize)
                .is_some_and(|seat| matches!(seat.state, SeatState::Available { .. }));
            if !available || !distinct.insert(s) {
                return Err("a seat is not available");
            }
        }
        if qty > self.general.available {
            return Err("not enough stock");
        }
        let buyer = self.intern(user);
        for &s in seats {
            self.seats[s as usize].state = SeatState::Held { hold: id };
        }
        self.named.available -= seats.len() as u64;
        self.named.held += seats.len() as u64;
        self.general.available -= qty;
        self.general.held += qty;
        let b = &mut self.buyers[buyer as usize];
        b.held += seats.len() as u64 + qty;
        b.holds.insert((expires_at, id));
        if qty > 0 {
            b.lapsed_qty = 0;
            b.ga_held += qty;
        }
        self.holds.insert(
            id,
            Hold {
                buyer,
                expires_at,
                seats: seats.to_vec(),
                qty,
            },
        );
        self.deadlines
            .insert((expires_at, id), [seats.len() as u64, qty]);
        self.next_hold = id + 1;
        Ok(())
    }

    /// Whether `buyer` holds every seat in `seats` and at least `qty` GA units.
    fn holds_all(&self, buyer: u32, seats: &[u32], qty: u64) -> bool {
        let mut distinct = BTreeSet::new();
        let seats_held = seats.iter().all(|&s| {
            distinct.insert(s)
                && match self.seats.get(s as usize).map(|seat| seat.state) {
                    Some(SeatState::Held { hold }) => self.holds[&hold].buyer == buyer,
                    _ => false,
                }
        });
        seats_held && self.buyers[buyer as usize].ga_held >= qty
    }

    /// Moves named seats and GA units out of `user`'s holds into stock (release) or into sold
    /// (sale). GA units come from the earliest-expiring holds first.
    pub fn settle(
        &mut self,
        user: &[u8],
        seats: &[u32],
        qty: u64,
        to_sold: bool,
    ) -> Result<(), Refusal> {
        let buyer = self.buyer_index(user).ok_or("the user holds nothing")?;
        if (seats.is_empty() && qty == 0) || !self.holds_all(buyer, seats, qty) {
            return Err("the user does not hold all of it");
        }
        let mut touched = Vec::new();
        for &s in seats {
            if let SeatState::Held { hold } = self.seats[s as usize].state {
                let h = self.holds.get_mut(&hold).expect("held by an existing hold");
                h.seats.retain(|&x| x != s);
                touched.push(hold);
                self.seats[s as usize].state = if to_sold {
                    SeatState::Sold { buyer }
                } else {
                    SeatState::Available {
                        lapsed_holder: None,
                    }
                };
                self.named.take(1, to_sold);
            }
        }
        let mut remaining = qty;
        let mut takes = Vec::new();
        for &(_, id) in &self.buyers[buyer as usize].holds {
            if remaining == 0 {
                break;
            }
            let n = self.holds[&id].qty.min(remaining);
            if n > 0 {
                takes.push((id, n));
                remaining -= n;
            }
        }
        for (id, n) in takes {
            self.holds.get_mut(&id).expect("buyer's hold exists").qty -= n;
            touched.push(id);
        }
        self.general.take(qty, to_sold);
        let b = &mut self.buyers[buyer as usize];
        let units = seats.len() as u64 + qty;
        b.held -= units;
        b.ga_held -= qty;
        if to_sold {
            b.sold += units;
        }
        touched.sort_unstable();
        touched.dedup();
        for id in touched {
            self.reweigh(id);
        }
        Ok(())
    }

    /// After units left hold `id`: its deadline weight follows, and an empty hold goes.
    fn reweigh(&mut self, id: HoldId) {
        let Some(h) = self.holds.get(&id) else { return };
        let key = (h.expires_at, id);
        self.deadlines.remove(&key);
        if h.seats.is_empty() && h.qty == 0 {
            self.buyers[h.buyer as usize].holds.remove(&key);
            self.holds.remove(&id);
        } else {
            let weights = [h.seats.len() as u64, h.qty];
            self.deadlines.insert(key, weights);
        }
    }

    /// Returns a hold's seats and units to stock; the hold is gone afterwards.
    pub fn expire(&mut self, id: HoldId) -> Result<Hold, Refusal> {
        let hold = self.holds.remove(&id).ok_or("no such hold")?;
        self.deadlines.remove(&(hold.expires_at, id));
        for &s in &hold.seats {
            self.seats[s as usize].state = SeatState::Available {
                lapsed_holder: Some(hold.buyer),
            };
        }
        self.named.take(hold.seats.len() as u64, false);
        self.general.take(hold.qty, false);
        let b = &mut self.buyers[hold.buyer as usize];
        b.held -= hold.seats.len() as u64 + hold.qty;
        b.lapsed_qty += hold.qty;
        b.ga_held -= hold.qty;
        b.holds.remove(&(hold.expires_at, id));
        self.holds_expired_total += 1;
        Ok(hold)
    }

    /// Rebuilds an inventory from its stored parts (loading), refusing any that break the rules.
    pub fn restore(
        seats: Vec<Seat>,
        buyers: Vec<Buyer>,
        holds: BTreeMap<HoldId, Hold>,
        next_hold: HoldId,
        general: Counts,
        holds_expired_total: u64,
    ) -> Result<Self, String> {
        let mut inv = Inventory {
            next_hold,
            general,
            holds_expired_total,
            ..Inventory::default()
        };
        for seat in seats {
            if inv
                .by_name
                .insert(seat.name.clone(), inv.seats.len() as u32)
                .is_some()
            {
                return Err("a seat is named twice".into());
            }
            inv.named.total += 1;
            match seat.state {
                SeatState::Available { .. } => inv.named.available += 1,
                SeatState::Held { .. } => inv.named.held += 1,
                SeatState::Sold { .. } => inv.named.sold += 1,
            }
            inv.seats.push(seat);
        }
        for buyer in buyers {
            if inv
                .by_buyer
                .insert(buyer.id.clone(), inv.buyers.len() as u32)
                .is_some()
            {
                return Err("a buyer is listed twice".into());
            }
            inv.buyers.push(Buyer {
                ga_held: 0,
                holds: BTreeSet::new(),
                ..buyer
            });
        }
        for (&id, h) in &holds {
            let b = inv
                .buyers
                .get_mut(h.buyer as usize)
                .ok_or("a hold of an unknown buyer")?;
            b.holds.insert((h.expires_at, id));
            b.ga_held += h.qty;
            if id >= next_hold || (h.seats.is_empty() && h.qty == 0) {
                return Err("a hold out of range or empty".into());
            }
            inv.deadlines
                .insert((h.expires_at, id), [h.seats.len() as u64, h.qty]);
        }
        inv.holds = holds;
        inv.check_invariants()?;
        Ok(inv)
    }

    /// The bookkeeping rules; Err names the first one broken.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut named = Counts {
            total: self.seats.len() as u64,
            ..Counts::default()
        };
        let mut per_buyer = vec![(0u64, 0u64); self.buyers.len()];
        for (i, seat) in self.seats.iter().enumerate() {
            match seat.state {
                SeatState::Available { lapsed_holder } => {
                    if lapsed_holder.is_some_and(|b| b as usize >= self.buyers.len()) {
                        return Err("a seat names an unknown lapsed holder".into());
                    }
                    named.available += 1;
                }
                SeatState::Held { hold } => {
                    let h = self
                        .holds
                        .get(&hold)
                        .ok_or("a seat held by a missing hold")?;
                    if !h.seats.contains(&(i as u32)) {
                        return Err("a seat and its hold disagree".into());
                    }
                    per_buyer[h.buyer as usize].0 += 1;
                    named.held += 1;
                }
                SeatState::Sold { buyer } => {
                    per_buyer
                        .get_mut(buyer as usize)
                        .ok_or("a seat sold to an unknown buyer")?
                        .1 += 1;
                    named.sold += 1;
                }
            }
        }
        if named != self.named {
            return Err(format!("named counts {:?} != {:?}", self.named, named));
        }
        let held_seats: usize = self.holds.values().map(|h| h.seats.len()).sum();
        if held_seats as u64 != named.held {
            return Err("holds list seats that are not held".into());
        }
        let ga_held: u64 = self.holds.values().map(|h| h.qty).sum();
        let g = &self.general;
        if g.held != ga_held || g.available + g.held + g.sold != g.total || g.total > MAX_STOCK {
            return Err(format!(
                "general counts {g:?} disagree with holds ({ga_held} held)"
            ));
        }
        let mut ga_per_buyer = vec![0u64; self.buyers.len()];
        for h in self.holds.values() {
            ga_per_buyer[h.buyer as usize] += h.qty;
        }
        for (i, b) in self.buyers.iter().enumerate() {
            let ga = ga_per_buyer[i];
            if b.held != per_buyer[i].0 + ga || b.ga_held != ga || b.sold < per_buyer[i].1 {
                return Err(format!("buyer {i} counts disagree"));
            }
        }
        if self.deadlines.len() != self.holds.len() {
            return Err("the deadline index disagrees with the holds".into());
        }
        Ok(())
    }

    /// An estimate for MEMORY USAGE in O(1): per-item sizes with an allowance for names,
    /// user IDs and allocator rounding, rather than a walk over every seat and hold.
    pub fn heap_bytes(&self) -> usize {
        const NAME_ALLOWANCE: usize = 2 * MAX_SEAT_NAME;
        self.seats.heap_bytes()
            + self.seats.len() * NAME_ALLOWANCE
            + self.buyers.heap_bytes()
            + self.buyers.len() * NAME_ALLOWANCE
            + self.by_name.heap_bytes()
            + self.by_buyer.heap_bytes()
            + self.holds.len() * (std::mem::size_of::<Hold>() + 96)
    }
}
