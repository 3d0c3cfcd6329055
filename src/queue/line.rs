//! The waiting line of one event.
//!
//! Every ticket has a serial number (the order it joined in), stable for the life of the event.
//! Tickets are stored in segments of `SEGMENT` serials, so that:
//! - a ticket is found by its serial in O(1), and positions are exact in O(log n): a Fenwick tree
//!   counts waiting tickets per segment, a bitmap per segment ranks within it;
//! - growing the line never copies more than one segment, and ended tickets (tombstones, kept
//!   so STATUS can still say `left` or `expired`) are dropped one segment at a time, oldest
//!   first, without moving anything else: serials never change, so the user index, the
//!   pre-queue order and the sessions, which all refer to serials, never need rewriting;
//! - each segment keeps a lower bound of its waiting tickets' heartbeat deadlines, indexed, so
//!   the sweep of lapsed tickets visits only segments where something may be due.
//!
//! Tickets that joined while the event was in its pre-queue (before OPENS-AT) are ordered by a
//! keyed hash of their serial (a shuffle fixed at join time, revealed at opening); everyone else
//! follows in join order.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, VecDeque};
use std::hash::BuildHasher;

use super::payload::TicketPayload;
use crate::collections::fenwick::Fenwick;
use crate::collections::ordered_blocks::OrderedBlocks;
use crate::collections::sharded::{spread as table_hash, ShardedTable};

/// A ticket's number: the order it joined the event in.
pub type Serial = u32;

const SEGMENT_BITS: u32 = 10;
pub const SEGMENT: usize = 1 << SEGMENT_BITS;
const WORDS: usize = SEGMENT / 64;

/// Ended tickets (tombstones) are kept, so STATUS can still tell `left` from `expired`, until
/// they outnumber half of this and half the waiting tickets; the oldest then go, a few segments
/// per upkeep step.
pub const TOMBSTONES_KEPT: usize = 100_000;

/// How a ticket left the line, or (after it was called) how its session ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EndState {
    /// Called by the server: the ticket's session lives in `Sessions` until it ends.
    Called,
    /// Taken from the head by QUEUE.DEQUEUE (a worker's flow).
    Dequeued,
    Left,
    Expired,
    /// Called, but its user did not claim it within CLAIM-TTL.
    NoShow,
    Revoked,
    /// The session ended with a purchase (SEAT.CONFIRM with CONFIRM-ENDS-SESSION).
    Completed,
}

impl EndState {
    pub const ALL: [EndState; 7] = [
        EndState::Called,
        EndState::Dequeued,
        EndState::Left,
        EndState::Expired,
        EndState::NoShow,
        EndState::Revoked,
        EndState::Completed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EndState::Called => "called",
            EndState::Dequeued => "dequeued",
            EndState::Left => "left",
            EndState::Expired => "expired",
            EndState::NoShow => "no_show",
            EndState::Revoked => "revoked",
            EndState::Completed => "completed",
        }
    }

    pub fn from_name(name: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name().as_bytes() == name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ticket {
    Waiting {
        /// Server time after which the ticket is dropped unless its holder polls again.
        heartbeat_deadline: u64,
        payload: TicketPayload,
    },
    Ended(EndState),
}

impl Ticket {
    pub fn payload(&self) -> Option<&TicketPayload> {
        match self {
            Ticket::Waiting { payload, .. } => Some(payload),
            Ticket::Ended(_) => None,
        }
    }

    pub fn lapsed(&self, now: u64) -> bool {
        matches!(self, Ticket::Waiting { heartbeat_deadline, .. } if *heartbeat_deadline <= now)
    }
}

fn bit(words: &[u64; WORDS], offset: usize) -> bool {
    words[offset / 64] >> (offset % 64) & 1 == 1
}

fn set_bit(words: &mut [u64; WORDS], offset: usize, on: bool) {
    if on {
        words[offset / 64] |= 1 << (offset % 64);
    } else {
        words[offset / 64] &= !(1 << (offset % 64));
    }
}

/// Set bits strictly before `offset`.
fn rank(words: &[u64; WORDS], offset: usize) -> usize {
    let (w, b) = (offset / 64, offset % 64);
    let whole: u32 = words[..w].iter().map(|x| x.count_ones()).sum();
    let partial = if b == 0 {
        0
    } else {
        (words[w] & ((1u64 << b) - 1)).count_ones()
    };
    (whole + partial) as usize
}

/// Offset of the k-th set bit.
fn select(words: &[u64; WORDS], mut k: usize) -> Option<usize> {
    for (w, &word) in words.iter().enumerate() {
        let ones = word.count_ones() as usize;
        if k < ones {
            let mut x = word;
            for _ in 0..k {
                x &= x - 1;
            }
            return Some(w * 64 + x.trailing_zeros() as usize);
        }
        k -= ones;
    }
    None
}

struct Segment {
    /// Which serials of the segment are still stored (compaction clears ended ones).
    present: [u64; WORDS],
    /// Which are waiting.
    waiting: [u64; WORDS],
    waiting_count: u32,
    /// The present tickets, in serial order.
    tickets: Vec<Ticket>,
    /// At most the earliest heartbeat deadline of the waiting tickets (u64::MAX: none). Only
    /// lowered on insert and recomputed by a sweep, so it is a lower bound at all times.
    min_deadline: u64,
}

impl Segment {
    fn new() -> Self {
        Self {
            present: [0; WORDS],
            waiting: [0; WORDS],
            waiting_count: 0,
            tickets: Vec::new(),
            min_deadline: u64::MAX,
        }
    }

    fn index(&self, offset: usize) -> Option<usize> {
        bit(&self.present, offset).then(|| rank(&self.present, offset))
    }

    fn offsets(&self) -> impl Iterator<Item = usize> + '_ {
        (0..SEGMENT).filter(|&o| bit(&self.present, o))
    }
}

/// A waiting ticket's entry in the user index: its serial and its user's hash (kept so that
/// growing the table rehashes without touching the ticket payloads).
#[derive(Clone, Copy)]
struct UserSlot {
    serial: Serial,
    hash: u32,
}

#[derive(Default)]
pub struct WaitingLine {
    segments: VecDeque<Option<Box<Segment>>>,
    /// Segment number (serial >> SEGMENT_BITS) of `segments[0]`.
    first_segment: u32,
    next_serial: Serial,
    /// Waiting tickets per segment of `segments`.
    counts: Fenwick,
    tombstones: usize,
    users: ShardedTable<UserSlot>,
    hasher: RandomState,
    /// (heartbeat lower bound, segment number) of every segment with waiting tickets.
    due: BTreeSet<(u64, u32)>,
    /// The pre-queue's waiting tickets by (order key, serial).
    prequeue: OrderedBlocks<(u64, Serial)>,
    /// Keys the pre-queue order (a secret of the event: nobody can predict the order).
    shuffle_key: [u8; 16],
    payload_bytes: usize,
    /// Heap bytes of the segments and their ticket arrays, kept as they change so that
    /// MEMORY USAGE and QUEUE.INFO do not visit every segment.
    segment_bytes: usize,
}

impl WaitingLine {
    pub fn new(shuffle_key: [u8; 16]) -> Self {
        Self {
            shuffle_key,
            ..Self::default()
        }
    }

    /// A pre-queue ticket's place in the shuffled order: a keyed hash of its serial.
    fn order_key(&self, serial: Serial) -> u64 {
        use std::hash::Hasher;
        let mut h = siphasher::sip::SipHasher24::new_with_key(&self.shuffle_key);
        h.write_u32(serial);
        h.finish()
    }

    /// The pre-queue rank of a ticket, if it is a waiting pre-queue ticket.
    fn prequeue_rank(&self, serial: Serial) -> Option<usize> {
        if self.prequeue.len() == 0 {
            return None;
        }
        self.prequeue.rank(&(self.order_key(serial), serial))
    }

    pub fn next_serial(&self) -> Serial {
        self.next_serial
    }

    pub fn waiting(&self) -> usize {
        self.counts.total() as usize
    }

    pub fn tombstones(&self) -> usize {
        self.tombstones
    }

    /// Waiting tickets in the pre-queue order.
    pub fn prequeue_waiting(&self) -> usize {
        self.prequeue.len()
    }

    fn locate(&self, serial: Serial) -> Option<(usize, usize)> {
        let segment = (serial >> SEGMENT_BITS).checked_sub(self.first_segment)? as usize;
        Some((segment, serial as usize & (SEGMENT - 1)))
    }

    fn segment(&self, serial: Serial) -> Option<(&Segment, usize)> {
        let (s, offset) = self.locate(serial)?;
        Some((self.segments.get(s)?.as_deref()?, offset))
    }

    pub fn get(&self, serial: Serial) -> Option<&Ticket> {
        let (segment, offset) = self.segment(serial)?;
        segment.index(offset).map(|i| &segment.tickets[i])
    }

    fn get_mut(&mut self, serial: Serial) -> Option<&mut Ticket> {
        let (s, offset) = self.locate(serial)?;
        let segment = self.segments.get_mut(s)?.as_deref_mut()?;
        let i = segment.index(offset)?;
        Some(&mut segment.tickets[i])
    }

    fn user_hash(&self, user: &[u8]) -> u32 {
        self.hasher.hash_one(user) as u32
    }

    /// The serial of the user's waiting ticket.
    pub fn waiting_of(&self, user: &[u8]) -> Option<Serial> {
        let hash = self.user_hash(user);
        self.users
            .find(table_hash(hash), |slot| {
                slot.hash == hash
                    && self
                        .get(slot.serial)
                        .and_then(Ticket::payload)
                        .is_some_and(|p| p.user() == user)
            })
            .map(|slot| slot.serial)
    }

    /// 1-based position of a waiting ticket among those still waiting, in line order.
    pub fn position(&self, serial: Serial) -> Option<usize> {
        if let Some(rank) = self.prequeue_rank(serial) {
            return Some(rank + 1);
        }
        let (segment, offset) = self.segment(serial)?;
        bit(&segment.waiting, offset).then(|| {
            let (s, _) = self.locate(serial).expect("located above");
            // Pre-queue tickets have lower serials than anyone who joined after opening, so
            // the physical rank already counts them.
            self.counts.prefix(s) as usize + rank(&segment.waiting, offset) + 1
        })
    }

    /// The serial of the k-th (0-based) waiting ticket in line order.
    pub fn nth_waiting(&self, k: usize) -> Option<Serial> {
        if let Some((_, serial)) = self.prequeue.select(k) {
            return Some(serial);
        }
        let (s, within) = self.counts.select(k as u64)?;
        let segment = self.segments[s].as_deref()?;
        let offset = select(&segment.waiting, within as usize)?;
        Some(((self.first_segment + s as u32) << SEGMENT_BITS) | offset as Serial)
    }

    fn tail_segment(&mut self, serial: Serial) -> &mut Segment {
        let number = serial >> SEGMENT_BITS;
        if self.segments.is_empty() {
            self.first_segment = number;
        }
        while (self.first_segment as usize + self.segments.len()) <= number as usize {
            self.segments.push_back(None);
            self.counts.push(0);
        }
        let s = (number - self.first_segment) as usize;
        if self.segments[s].is_none() {
            self.segment_bytes += std::mem::size_of::<Segment>();
        }
        self.segments[s].get_or_insert_with(|| Box::new(Segment::new()))
    }

    /// Appends a waiting ticket with the next serial, in the pre-queue order if `prequeue`.
    /// Refuses (changing nothing) a serial that is not the next one or a user already waiting.
    pub fn push(
        &mut self,
        serial: Serial,
        heartbeat_deadline: u64,
        payload: TicketPayload,
        prequeue: bool,
    ) -> Result<(), &'static str> {
        if serial != self.next_serial || serial == Serial::MAX {
            return Err("ticket serial out of sequence");
        }
        if self.waiting_of(payload.user()).is_some() {
            return Err("the user already has a waiting ticket");
        }
        self.insert(
            serial,
            Ticket::Waiting {
                heartbeat_deadline,
                payload,
            },
            prequeue,
        );
        Ok(())
    }

    /// Stores a ticket at `serial` (after every stored one), indexing it if it waits.
    fn insert(&mut self, serial: Serial, ticket: Ticket, prequeue: bool) {
        let offset = serial as usize & (SEGMENT - 1);
        let waiting = match &ticket {
            Ticket::Waiting {
                heartbeat_deadline,
                payload,
            } => Some((
                *heartbeat_deadline,
                payload.len(),
                self.user_hash(payload.user()),
            )),
            Ticket::Ended(_) => None,
        };
        let number = serial >> SEGMENT_BITS;
        self.next_serial = serial + 1;
        let segment = self.tail_segment(serial);
        set_bit(&mut segment.present, offset, true);
        let capacity = segment.tickets.capacity();
        segment.tickets.push(ticket);
        let grown = segment.tickets.capacity() - capacity;
        let Some((deadline, len, hash)) = waiting else {
            self.segment_bytes += grown * std::mem::size_of::<Ticket>();
            self.tombstones += 1;
            return;
        };
        set_bit(&mut segment.waiting, offset, true);
        segment.waiting_count += 1;
        let old_bound = segment.min_deadline;
        if deadline < old_bound {
            segment.min_deadline = deadline;
            self.due.remove(&(old_bound, number));
            self.due.insert((deadline, number));
        }
        self.counts.add((number - self.first_segment) as usize, 1);
        self.payload_bytes += len;
        self.segment_bytes += grown * std::mem::size_of::<Ticket>();
        self.users
            .insert_unique(table_hash(hash), UserSlot { serial, hash }, |s| {
                table_hash(s.hash)
            });
        if prequeue {
            let key = self.order_key(serial);
            self.prequeue.insert((key, serial));
        }
    }

    pub fn touch(&mut self, serial: Serial, deadline: u64) {
        if let Some(Ticket::Waiting {
            heartbeat_deadline, ..
        }) = self.get_mut(serial)
        {
            // Deadlines only move forward here, so the segment's bound stays a lower bound.
            *heartbeat_deadline = (*heartbeat_deadline).max(deadline);
        }
    }

    /// Ends a waiting ticket and returns what it carried; None (nothing changes) if it is not
    /// waiting.
    pub fn end(&mut self, serial: Serial, state: EndState) -> Option<TicketPayload> {
        let (s, offset) = self.locate(serial)?;
        let segment = self.segments.get_mut(s)?.as_deref_mut()?;
        if !bit(&segment.waiting, offset) {
            return None;
        }
        let i = segment.index(offset)?;
        let Ticket::Waiting { payload, .. } =
            std::mem::replace(&mut segment.tickets[i], Ticket::Ended(state))
        else {
            unreachable!("the waiting bit marks waiting tickets");
        };
        set_bit(&mut segment.waiting, offset, false);
        segment.waiting_count -= 1;
        if segment.waiting_count == 0 {
            self.due
                .remove(&(segment.min_deadline, serial >> SEGMENT_BITS));
            segment.min_deadline = u64::MAX;
        }
        self.counts.add(s, -1);
        self.tombstones += 1;
        self.payload_bytes -= payload.len();
        let hash = self.user_hash(payload.user());
        self.users
            .remove(table_hash(hash), |slot| slot.serial == serial);
        if self.prequeue.len() > 0 {
            let key = self.order_key(serial);
            self.prequeue.remove(&(key, serial));
        }
        Some(payload)
    }

    /// Changes an ended ticket's state (its session ended); false if it is not in state `from`
    /// (or its tombstone was compacted away).
    pub fn restate(&mut self, serial: Serial, from: EndState, to: EndState) -> bool {
        match self.get_mut(serial) {
            Some(ticket) if *ticket == Ticket::Ended(from) => {
                *ticket = Ticket::Ended(to);
                true
            }
            _ => false,
        }
    }

    /// The earliest time a waiting ticket may lapse (a lower bound).
    pub fn next_lapse(&self) -> Option<u64> {
        self.due.first().map(|&(deadline, _)| deadline)
    }

    /// Serials of waiting tickets lapsed at `now`, at most `limit`, from segments due at `now`.
    /// Scans at most `max_segments` segments; each scanned segment's bound becomes exact again.
    pub fn lapsed(&mut self, now: u64, limit: usize, max_segments: usize) -> Vec<Serial> {
        let mut found = Vec::new();
        for _ in 0..max_segments {
            let Some(&(bound, number)) = self.due.first() else {
                break;
            };
            if bound > now || found.len() >= limit {
                break;
            }
            self.due.pop_first();
            let s = (number - self.first_segment) as usize;
            let segment = self.segments[s].as_deref_mut().expect("due segments exist");
            let mut next_bound = u64::MAX;
            let base = number << SEGMENT_BITS;
            let mut i = 0;
            for offset in 0..SEGMENT {
                if !bit(&segment.present, offset) {
                    continue;
                }
                if bit(&segment.waiting, offset) {
                    let Ticket::Waiting {
                        heartbeat_deadline, ..
                    } = segment.tickets[i]
                    else {
                        unreachable!("the waiting bit marks waiting tickets");
                    };
                    if heartbeat_deadline <= now && found.len() < limit {
                        found.push(base | offset as Serial);
                    } else {
                        // A lapsed ticket past the limit keeps the bound at or below `now`,
                        // so the segment is due again at once.
                        next_bound = next_bound.min(heartbeat_deadline);
                    }
                }
                i += 1;
            }
            segment.min_deadline = next_bound;
            if next_bound != u64::MAX {
                self.due.insert((next_bound, number));
            }
        }
        found
    }

    /// How many tombstones are kept at most.
    fn tombstone_allowance(&self) -> usize {
        TOMBSTONES_KEPT.max(self.waiting()) / 2
    }

    /// Whether old tombstones should go: more than the allowance, by at least a segment's
    /// worth (so compaction runs in whole segments, not one ticket at a time).
    pub fn compaction_due(&self) -> bool {
        self.tombstones > self.tombstone_allowance() + SEGMENT
    }

    /// Where to compact up to in one step: the serial below which the oldest `max_segments`
    /// segments holding tombstones lie (fewer if that already brings tombstones down to half the
    /// allowance). None when no compaction is due.
    pub fn compaction_step(&self, max_segments: usize) -> Option<Serial> {
        if !self.compaction_due() {
            return None;
        }
        let target = self.tombstone_allowance();
        let mut left = self.tombstones;
        let mut taken = 0;
        let mut through = None;
        for (s, segment) in self.segments.iter().enumerate() {
            let Some(segment) = segment else { continue };
            let ended = segment.tickets.len() - segment.waiting_count as usize;
            if ended == 0 {
                continue;
            }
            left -= ended;
            taken += 1;
            through = Some((self.first_segment + s as u32 + 1) << SEGMENT_BITS);
            if taken >= max_segments || left <= target {
                break;
            }
        }
        through
    }

    /// Drops every tombstone with a serial below `through` (its waiting tickets stay, with their
    /// serials): the same on every copy, so compaction is replicated as this bound.
    pub fn compact_through(&mut self, through: Serial) {
        let end = ((through >> SEGMENT_BITS).saturating_sub(self.first_segment) as usize)
            .min(self.segments.len());
        for slot in self.segments.range_mut(..end) {
            let Some(segment) = slot.as_deref_mut() else {
                continue;
            };
            let ended = segment.tickets.len() - segment.waiting_count as usize;
            if ended == 0 {
                continue;
            }
            let capacity = segment.tickets.capacity();
            segment
                .tickets
                .retain(|t| matches!(t, Ticket::Waiting { .. }));
            segment.tickets.shrink_to_fit();
            segment.present = segment.waiting;
            self.tombstones -= ended;
            self.segment_bytes -=
                (capacity - segment.tickets.capacity()) * std::mem::size_of::<Ticket>();
            if segment.tickets.is_empty() {
                *slot = None;
                self.segment_bytes -= std::mem::size_of::<Segment>();
            }
        }
        self.drop_empty_front();
    }

    /// Forgets leading segments that hold nothing (their serials are never reused).
    fn drop_empty_front(&mut self) {
        let mut dropped = 0;
        // The tail segment stays: the next serial goes there.
        while self.segments.len() > 1 && self.segments.front().is_some_and(Option::is_none) {
            self.segments.pop_front();
            self.first_segment += 1;
            dropped += 1;
        }
        if dropped > 0 {
            self.counts = Fenwick::from_counts(
                self.segments
                    .iter()
                    .map(|s| s.as_ref().map_or(0, |s| u64::from(s.waiting_count))),
            );
        }
    }

    /// Every stored ticket with its serial, in serial order (persistence, digest).
    pub fn tickets(&self) -> impl Iterator<Item = (Serial, &Ticket)> + '_ {
        self.segments
            .iter()
            .enumerate()
            .flat_map(move |(s, segment)| {
                let base = (self.first_segment + s as u32) << SEGMENT_BITS;
                segment.iter().flat_map(move |segment| {
                    segment
                        .offsets()
                        .zip(&segment.tickets)
                        .map(move |(offset, t)| (base | offset as Serial, t))
                })
            })
    }

    /// Whether a waiting ticket is in the pre-queue order.
    pub fn in_prequeue(&self, serial: Serial) -> bool {
        self.prequeue_rank(serial).is_some()
    }

    /// Rebuilds a line from stored tickets in increasing serial order (loading), then the
    /// serial the next join gets. Waiting tickets for which `prequeue` is true join the
    /// pre-queue order.
    pub fn restore(
        shuffle_key: [u8; 16],
        tickets: impl IntoIterator<Item = (Serial, Ticket)>,
        next_serial: Serial,
        prequeue: impl Fn(Serial) -> bool,
    ) -> Result<Self, String> {
        let mut line = Self::new(shuffle_key);
        for (serial, ticket) in tickets {
            if serial < line.next_serial || serial >= next_serial {
                return Err("ticket serials are not increasing".into());
            }
            if let Ticket::Waiting { payload, .. } = &ticket {
                if line.waiting_of(payload.user()).is_some() {
                    return Err("a user has two waiting tickets".into());
                }
            }
            let in_prequeue = matches!(ticket, Ticket::Waiting { .. }) && prequeue(serial);
            line.insert(serial, ticket, in_prequeue);
        }
        line.next_serial = next_serial;
        Ok(line)
    }

    /// Heap bytes used (MEMORY USAGE, QUEUE.INFO): kept counts and container capacities, no
    /// visit of the segments (QUEUE.INFO is a fast command, whatever the line's length).
    pub fn heap_bytes(&self) -> usize {
        self.segment_bytes
            + self.segments.capacity() * 8
            + self.payload_bytes
            // Allocator rounding of payload blocks, on average.
            + self.waiting() * 8
            + self.users.heap_bytes()
            + self.counts.heap_bytes()
            + self.prequeue.heap_bytes()
            + self.due.len() * 32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(user: &str) -> TicketPayload {
        TicketPayload::new(user.as_bytes(), &[]).unwrap()
    }

    const KEY: [u8; 16] = [7; 16];

    fn line_of(n: u32) -> WaitingLine {
        let mut line = WaitingLine::new(KEY);
        for i in 0..n {
            line.push(i, 5000 + u64::from(i), payload(&format!("u{i}")), false)
                .unwrap();
        }
        line
    }

    /// What the kept count stands for: every segment visited.
    fn visited_segment_bytes(line: &WaitingLine) -> usize {
        line.segments
            .iter()
            .flatten()
            .map(|s| {
                std::mem::size_of::<Segment>()
                    + s.tickets.capacity() * std::mem::size_of::<Ticket>()
            })
            .sum()
    }

    #[test]
    fn the_kept_heap_bytes_match_a_visit_of_every_segment() {
        let n = (TOMBSTONES_KEPT + 5 * SEGMENT) as u32 + 17;
        let mut line = line_of(n);
        assert_eq!(line.segment_bytes, visited_segment_bytes(&line));
        assert!(line.segment_bytes > n as usize * std::mem::size_of::<Ticket>());
        for s in (0..n).filter(|s| s % 7 != 0) {
            line.end(s, EndState::Dequeued);
        }
        while let Some(through) = line.compaction_step(2) {
            line.compact_through(through);
            assert_eq!(line.segment_bytes, visited_segment_bytes(&line));
        }
        for s in (0..n).filter(|s| s % 7 == 0) {
            line.end(s, EndState::Left);
        }
        line.push(n, 0, payload("late"), false).unwrap();
        while let Some(through) = line.compaction_step(3) {
            line.compact_through(through);
        }
        assert_eq!(line.segment_bytes, visited_segment_bytes(&line));
        let restored = WaitingLine::restore(
            KEY,
            line.tickets().map(|(s, t)| (s, t.clone())),
            n + 1,
            |_| false,
        )
        .unwrap();
        assert_eq!(restored.segment_bytes, visited_segment_bytes(&restored));
    }

    #[test]
    fn a_ticket_costs_24_bytes_plus_its_payload() {
        // The memory goal (<= 128 bytes per waiting user) depends on this layout.
        assert_eq!(std::mem::size_of::<Ticket>(), 24);
    }

    #[test]
    fn positions_are_dense_and_shift_when_someone_leaves() {
        let mut line = line_of(5);
        for i in 0..5 {
            assert_eq!(line.position(i), Some(i as usize + 1));
        }
        assert_eq!(line.end(2, EndState::Left).unwrap().user(), b"u2");
        assert_eq!(line.waiting(), 4);
        assert_eq!(
            [0, 1, 3, 4].map(|i| line.position(i)),
            [1, 2, 3, 4].map(Some)
        );
        assert_eq!(line.position(2), None);
        assert_eq!(line.nth_waiting(2), Some(3));
        assert_eq!(line.get(2), Some(&Ticket::Ended(EndState::Left)));
        assert_eq!(
            line.end(2, EndState::Expired),
            None,
            "ending twice changes nothing"
        );
        assert!(line.restate(2, EndState::Left, EndState::Expired));
        assert!(!line.restate(2, EndState::Left, EndState::Expired));
    }

    #[test]
    fn one_waiting_ticket_per_user_and_serials_in_sequence() {
        let mut line = line_of(3);
        assert_eq!(line.waiting_of(b"u1"), Some(1));
        assert!(line.push(3, 0, payload("u1"), false).is_err());
        assert!(line.push(7, 0, payload("new"), false).is_err());
        line.end(1, EndState::Left);
        assert_eq!(line.waiting_of(b"u1"), None);
        line.push(3, 0, payload("u1"), false).unwrap();
        assert_eq!(line.waiting_of(b"u1"), Some(3));
    }

    #[test]
    fn the_prequeue_comes_first_in_a_keyed_order() {
        let n = 200u32;
        let mut line = WaitingLine::new(KEY);
        for i in 0..n {
            line.push(i, 9999, payload(&format!("p{i}")), true).unwrap();
        }
        line.push(n, 9999, payload("late1"), false).unwrap();
        line.push(n + 1, 9999, payload("late2"), false).unwrap();
        let order: Vec<Serial> = (0..n as usize + 2)
            .map(|k| line.nth_waiting(k).unwrap())
            .collect();
        let mut shuffled = order[..n as usize].to_vec();
        assert_ne!(
            shuffled,
            (0..n).collect::<Vec<_>>(),
            "the pre-queue is shuffled"
        );
        shuffled.sort();
        assert_eq!(shuffled, (0..n).collect::<Vec<_>>(), "a permutation");
        assert_eq!(
            &order[n as usize..],
            &[n, n + 1],
            "later joiners keep their order behind"
        );
        for (k, &s) in order.iter().enumerate() {
            assert_eq!(line.position(s), Some(k + 1));
        }
        // The same key gives the same order (replicas); another key another one.
        let same: Vec<Serial> = {
            let mut l = WaitingLine::new(KEY);
            for i in 0..n {
                l.push(i, 9999, payload(&format!("p{i}")), true).unwrap();
            }
            (0..n as usize).map(|k| l.nth_waiting(k).unwrap()).collect()
        };
        assert_eq!(same, order[..n as usize]);
        line.end(order[0], EndState::Left);
        assert_eq!(line.position(order[1]), Some(1));
        assert_eq!(line.position(n), Some(n as usize));
        assert_eq!(line.prequeue_waiting(), n as usize - 1);
        assert!(line.in_prequeue(order[1]) && !line.in_prequeue(n));
        let rebuilt = WaitingLine::restore(
            KEY,
            line.tickets().map(|(s, t)| (s, t.clone())),
            line.next_serial(),
            |s| s < n,
        )
        .unwrap();
        for k in 0..n as usize + 1 {
            assert_eq!(rebuilt.nth_waiting(k), line.nth_waiting(k));
        }
    }

    #[test]
    fn lapsed_tickets_are_found_through_segment_bounds() {
        let n = SEGMENT as u32 * 3;
        let mut line = line_of(n);
        // Keep the middle segment alive.
        for i in SEGMENT as u32..2 * SEGMENT as u32 {
            line.touch(i, 1_000_000);
        }
        let now = 5000 + u64::from(n);
        let first = line.lapsed(now, usize::MAX, 1);
        assert_eq!(first.len(), SEGMENT, "one segment per step");
        let rest = line.lapsed(now, usize::MAX, 10);
        assert_eq!(rest.len(), SEGMENT, "the touched segment yields nothing");
        assert!(rest.iter().all(|&s| s >= 2 * SEGMENT as u32));
        // Nothing is due until the touched tickets' deadline.
        assert_eq!(line.next_lapse(), Some(1_000_000));
        let limited = {
            let mut l = line_of(10);
            let some = l.lapsed(10_000, 3, 10);
            assert_eq!(l.next_lapse(), Some(5003), "the rest stays due");
            some
        };
        assert_eq!(limited, vec![0, 1, 2]);
    }

    #[test]
    fn compaction_drops_old_tombstones_and_keeps_everything_else_findable() {
        let n = (TOMBSTONES_KEPT + 3 * SEGMENT) as u32;
        let mut line = line_of(n);
        let survivors = [5u32, 70_000, n - 1];
        for s in 0..n {
            if !survivors.contains(&s) {
                line.end(s, EndState::Dequeued);
            }
        }
        assert!(line.compaction_due());
        let mut steps = 0;
        while let Some(through) = line.compaction_step(8) {
            line.compact_through(through);
            steps += 1;
        }
        assert!(steps > 1, "in bounded steps");
        assert!(line.tombstones() <= TOMBSTONES_KEPT / 2 + SEGMENT);
        for (k, &s) in survivors.iter().enumerate() {
            assert_eq!(line.position(s), Some(k + 1));
            assert_eq!(line.nth_waiting(k), Some(s));
            assert_eq!(line.waiting_of(format!("u{s}").as_bytes()), Some(s));
        }
        assert_eq!(line.get(6), None, "old tombstones are gone");
        assert_eq!(line.get(n - 2), Some(&Ticket::Ended(EndState::Dequeued)));
        line.push(n, 0, payload("late"), false).unwrap();
        assert_eq!(line.position(n), Some(4));
        let stored: Vec<Serial> = line.tickets().map(|(s, _)| s).collect();
        assert!(stored.windows(2).all(|w| w[0] < w[1]));
        let rebuilt = WaitingLine::restore(
            KEY,
            line.tickets().map(|(s, t)| (s, t.clone())),
            line.next_serial(),
            |_| false,
        )
        .unwrap();
        assert_eq!(rebuilt.waiting(), line.waiting());
        assert_eq!(rebuilt.position(n), Some(4));
    }

    #[test]
    fn restore_rejects_what_commands_cannot_produce() {
        let dup = [
            (
                0,
                Ticket::Waiting {
                    heartbeat_deadline: 1,
                    payload: payload("a"),
                },
            ),
            (
                1,
                Ticket::Waiting {
                    heartbeat_deadline: 1,
                    payload: payload("a"),
                },
            ),
        ];
        assert!(WaitingLine::restore(KEY, dup, 2, |_| false).is_err());
        let order = [
            (3, Ticket::Ended(EndState::Left)),
            (2, Ticket::Ended(EndState::Left)),
        ];
        assert!(WaitingLine::restore(KEY, order, 4, |_| false).is_err());
        let beyond = [(5, Ticket::Ended(EndState::Left))];
        assert!(WaitingLine::restore(KEY, beyond, 5, |_| false).is_err());
    }
}
