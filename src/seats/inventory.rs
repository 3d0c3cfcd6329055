//! Seat inventory of one event: named seats (reserved seating) and count-only general-admission
//! stock, holds with deadlines, sales, and per-user counts for the purchase cap.
//!
//! Every unit is in exactly one of available / held / sold; held units are exactly the units of
//! live holds; a buyer's counts equal what their holds and sales contain (`check_invariants`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub const MAX_SEAT_NAME: usize = 64;
/// Words that are options of SEAT commands and so cannot name a seat.
pub const RESERVED_NAMES: [&str; 3] = ["QTY", "TTL", "PASS"];

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
    /// GA units in this buyer's holds, and those holds in expiry order, so a GA release or
    /// confirm touches only the holds it takes units from.
    pub ga_held: u64,
    pub ga_holds: BTreeSet<(u64, HoldId)>,
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

/// Where units taken out of holds go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    Release,
    Sale,
}

#[derive(Default)]
pub struct Inventory {
    pub seats: Vec<Seat>,
    by_name: HashMap<Box<[u8]>, u32>,
    pub buyers: Vec<Buyer>,
    by_buyer: HashMap<Box<[u8]>, u32>,
    pub holds: BTreeMap<HoldId, Hold>,
    /// (expires_at, hold), the expiry order.
    deadlines: BTreeSet<(u64, HoldId)>,
    pub next_hold: HoldId,
    pub named: Counts,
    pub general: Counts,
    pub holds_expired_total: u64,
}

impl Inventory {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn seat_index(&self, name: &[u8]) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    pub fn buyer_index(&self, user: &[u8]) -> Option<u32> {
        self.by_buyer.get(user).copied()
    }

    pub fn buyer(&self, user: &[u8]) -> Option<&Buyer> {
        self.buyer_index(user).map(|i| &self.buyers[i as usize])
    }

    pub fn intern(&mut self, user: &[u8]) -> u32 {
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
            if self.by_name.contains_key(name) {
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

    pub fn add_stock(&mut self, qty: u64) {
        self.general.total += qty;
        self.general.available += qty;
    }

    /// Holds whose deadline is at or before `now`, earliest first.
    pub fn due_holds(&self, now: u64) -> impl Iterator<Item = HoldId> + '_ {
        self.deadlines
            .range(..=(now, HoldId::MAX))
            .map(|&(_, id)| id)
    }

    /// A hold's deadline has passed (it counts as returned even before it is expired).
    pub fn lapsed(&self, hold: HoldId, now: u64) -> bool {
        self.holds.get(&hold).is_some_and(|h| h.expires_at <= now)
    }

    /// Named and GA counts as of `now`: lapsed holds count as available (reads between sweeps,
    /// and on replicas, which never expire anything themselves).
    pub fn counts_at(&self, now: u64) -> (Counts, Counts) {
        let (mut named, mut general) = (self.named.clone(), self.general.clone());
        for id in self.due_holds(now) {
            let hold = &self.holds[&id];
            named.take(hold.seats.len() as u64, false);
            general.take(hold.qty, false);
        }
        (named, general)
    }

    /// GA units `buyer` holds in holds still live at `now`.
    pub fn held_qty(&self, buyer: u32, now: u64) -> u64 {
        let b = &self.buyers[buyer as usize];
        let lapsed: u64 = b
            .ga_holds
            .range(..=(now, HoldId::MAX))
            .map(|(_, id)| self.holds[id].qty)
            .sum();
        b.ga_held - lapsed
    }

    /// Creates a hold. The caller has validated that the seats and units are available.
    pub fn hold(&mut self, id: HoldId, user: &[u8], expires_at: u64, seats: &[u32], qty: u64) {
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
        if qty > 0 {
            b.lapsed_qty = 0;
            b.ga_held += qty;
            b.ga_holds.insert((expires_at, id));
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
        self.deadlines.insert((expires_at, id));
        self.next_hold = self.next_hold.max(id + 1);
    }

    /// Moves named seats and GA units out of `buyer`'s holds into stock (release) or into sold
    /// (sale). GA units come from the earliest-expiring holds first. The caller has validated
    /// that the buyer holds all of them.
    pub fn settle(&mut self, buyer: u32, seats: &[u32], qty: u64, how: Settlement) {
        let to_sold = how == Settlement::Sale;
        let mut touched = Vec::new();
        for &s in seats {
            if let SeatState::Held { hold } = self.seats[s as usize].state {
                if let Some(h) = self.holds.get_mut(&hold) {
                    h.seats.retain(|&x| x != s);
                    touched.push(hold);
                }
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
        // Earliest-expiring GA holds first; only the holds the quantity reaches are touched.
        let mut remaining = qty;
        let mut takes = Vec::new();
        for &(_, id) in &self.buyers[buyer as usize].ga_holds {
            if remaining == 0 {
                break;
            }
            let n = self.holds[&id].qty.min(remaining);
            takes.push((id, n));
            remaining -= n;
        }
        for (id, n) in takes {
            self.holds.get_mut(&id).expect("buyer's hold exists").qty -= n;
            touched.push(id);
        }
        let moved_qty = qty - remaining;
        self.general.take(moved_qty, to_sold);
        let b = &mut self.buyers[buyer as usize];
        let units = seats.len() as u64 + moved_qty;
        b.held -= units;
        b.ga_held -= moved_qty;
        if to_sold {
            b.sold += units;
        }
        for id in touched {
            self.drop_if_empty(id);
        }
    }

    fn drop_if_empty(&mut self, id: HoldId) {
        let Some(h) = self.holds.get(&id) else { return };
        if h.seats.is_empty() && h.qty == 0 {
            let key = (h.expires_at, id);
            self.deadlines.remove(&key);
            self.buyers[h.buyer as usize].ga_holds.remove(&key);
            self.holds.remove(&id);
        }
    }

    /// Returns a hold's seats and units to stock; the hold is gone afterwards.
    pub fn expire(&mut self, id: HoldId) -> Option<Hold> {
        let hold = self.holds.remove(&id)?;
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
        b.ga_holds.remove(&(hold.expires_at, id));
        self.holds_expired_total += 1;
        Some(hold)
    }

    /// Rebuilds the indexes after loading seats, buyers and holds (RDB).
    pub fn reindex(&mut self) -> Result<(), String> {
        self.by_name = self
            .seats
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i as u32))
            .collect();
        self.by_buyer = self
            .buyers
            .iter()
            .enumerate()
            .map(|(i, b)| (b.id.clone(), i as u32))
            .collect();
        if self.by_name.len() != self.seats.len() || self.by_buyer.len() != self.buyers.len() {
            return Err("duplicate seat or buyer".into());
        }
        self.deadlines = self
            .holds
            .iter()
            .map(|(id, h)| (h.expires_at, *id))
            .collect();
        for b in &mut self.buyers {
            b.ga_holds.clear();
            b.ga_held = 0;
        }
        for (id, h) in &self.holds {
            let b = self
                .buyers
                .get_mut(h.buyer as usize)
                .ok_or("hold of an unknown buyer")?;
            if h.qty > 0 {
                b.ga_holds.insert((h.expires_at, *id));
                b.ga_held += h.qty;
            }
            if h.seats.iter().any(|&s| {
                self.seats.get(s as usize).map(|seat| seat.state)
                    != Some(SeatState::Held { hold: *id })
            }) {
                return Err("hold and seat states disagree".into());
            }
        }
        self.check_invariants()
    }

    /// The bookkeeping invariants; Err names the first one broken.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut named = Counts {
            total: self.seats.len() as u64,
            ..Counts::default()
        };
        let mut per_buyer = vec![(0u64, 0u64); self.buyers.len()];
        for seat in &self.seats {
            match seat.state {
                SeatState::Available { .. } => named.available += 1,
                SeatState::Held { hold } => {
                    let h = self.holds.get(&hold).ok_or("seat held by a missing hold")?;
                    per_buyer[h.buyer as usize].0 += 1;
                    named.held += 1;
                }
                SeatState::Sold { buyer } => {
                    per_buyer
                        .get_mut(buyer as usize)
                        .ok_or("seat sold to an unknown buyer")?
                        .1 += 1;
                    named.sold += 1;
                }
            }
        }
        if named != self.named {
            return Err(format!("named counts {:?} != {:?}", self.named, named));
        }
        let ga_held: u64 = self.holds.values().map(|h| h.qty).sum();
        let g = &self.general;
        if g.held != ga_held || g.available + g.held + g.sold != g.total {
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
        Ok(())
    }

    /// An estimate for MEMORY USAGE in O(1): per-item sizes with an allowance for names,
    /// user IDs and allocator rounding, rather than a walk over every seat and hold.
    pub fn heap_bytes(&self) -> usize {
        const NAME_ALLOWANCE: usize = 2 * MAX_SEAT_NAME;
        self.seats.capacity() * (std::mem::size_of::<Seat>() + NAME_ALLOWANCE)
            + self.buyers.capacity() * (std::mem::size_of::<Buyer>() + NAME_ALLOWANCE)
            + self.holds.len() * (std::mem::size_of::<Hold>() + 64)
    }
}
