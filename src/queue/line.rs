//! The waiting line of one event: tickets in arrival order, exact positions in O(log n), one
//! waiting ticket per user. Ended tickets keep a small tombstone (ID and final state) so STATUS can
//! still tell `left` from `expired`; tombstones are compacted away once they outnumber both the
//! waiting tickets and `TOMBSTONES_KEPT`.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::payload::TicketPayload;
use super::rank::RankIndex;
use crate::entry_id::EntryId;

/// How many ended tickets are always remembered, whatever the size of the line.
pub const TOMBSTONES_KEPT: usize = 100_000;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EndState {
    /// Taken from the head by QUEUE.DEQUEUE (admission by a worker).
    Admitted,
    Left,
    Expired,
}

impl EndState {
    pub const ALL: [EndState; 3] = [EndState::Admitted, EndState::Left, EndState::Expired];

    pub fn name(self) -> &'static str {
        match self {
            EndState::Admitted => "admitted",
            EndState::Left => "left",
            EndState::Expired => "expired",
        }
    }

    pub fn from_name(name: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name().as_bytes() == name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TicketBody {
    Waiting {
        /// Server time after which the ticket is dropped unless its holder polls again.
        heartbeat_deadline: u64,
        payload: TicketPayload,
    },
    Ended(EndState),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub id: EntryId,
    pub body: TicketBody,
}

impl Ticket {
    pub fn waiting_payload(&self) -> Option<&TicketPayload> {
        match &self.body {
            TicketBody::Waiting { payload, .. } => Some(payload),
            TicketBody::Ended(_) => None,
        }
    }
}

/// Asks the CPU to load `block` into cache. A binary search over a block of a long line waits
/// for one cache miss per probe in turn; loading the whole block at once overlaps them.
fn prefetch<T>(block: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let bytes = std::mem::size_of_val(block);
        let start = block.as_ptr().cast::<i8>();
        for offset in (0..bytes).step_by(64) {
            // SAFETY: a prefetch is only a hint; every address is inside `block`.
            unsafe { _mm_prefetch(start.add(offset), _MM_HINT_T0) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = block;
}

#[derive(Clone, Copy)]
struct UserSlot {
    index: u32,
    hash: u32,
}

/// The table's 64-bit hash from a kept 32-bit one: multiplying by an odd constant spreads the
/// bits over the whole word, so both the bucket (low bits) and the tag (top bits) vary.
fn table_hash(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Tickets per block of the fence index (see `WaitingLine::fences`): 0.5 bytes per ticket.
const FENCE_SPACING: usize = 32;

#[derive(Default)]
pub struct WaitingLine {
    /// Tickets in line order: first the pre-queue shuffled at opening (`shuffled_len` of them,
    /// found through `shuffled`), then everyone else in ID order (found by binary search).
    tickets: Vec<Ticket>,
    shuffled_len: usize,
    shuffled: std::collections::HashMap<EntryId, u32>,
    newest: Option<EntryId>,
    /// The ID of every `FENCE_SPACING`-th ticket of the part in ID order. Finding a ticket is a
    /// binary search over these (small enough to stay in cache) and then over one block of
    /// tickets; a binary search over the whole line missed the cache on each of its last dozen
    /// probes and made QUEUE.STATUS on a million-ticket line 1.7-2.5x slower than on a short one.
    fences: Vec<EntryId>,
    rank: RankIndex,
    /// Each waiting ticket's index into `tickets` and its user's hash (32 bits), keyed by the
    /// user. The hash is kept so that growing the table rehashes from it: recomputing it from
    /// the payloads touched a cold heap block per ticket and blocked the server for 160 ms at
    /// 460,000 waiting users.
    by_user: HashTable<UserSlot>,
    hasher: RandomState,
    payload_bytes: usize,
}

impl WaitingLine {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a line from tickets in line order (RDB load): `shuffled_len` shuffled ones, then
    /// the rest in ID order, all newer than the shuffled ones. Rejects anything else, and a user
    /// with two waiting tickets.
    pub fn from_tickets(tickets: Vec<Ticket>, shuffled_len: usize) -> Result<Self, String> {
        if shuffled_len > tickets.len()
            || tickets[shuffled_len..]
                .windows(2)
                .any(|w| w[0].id >= w[1].id)
        {
            return Err("ticket IDs are not in line order".into());
        }
        let newest_shuffled = tickets[..shuffled_len].iter().map(|t| t.id).max();
        if newest_shuffled.is_some_and(|n| tickets.get(shuffled_len).is_some_and(|t| t.id <= n)) {
            return Err("a ticket after the shuffled pre-queue is older than it".into());
        }
        let mut line = Self {
            tickets,
            shuffled_len,
            ..Self::default()
        };
        line.reindex()?;
        if line.shuffled.len() != shuffled_len {
            return Err("duplicate ticket IDs in the pre-queue".into());
        }
        Ok(line)
    }

    pub fn shuffled_len(&self) -> usize {
        self.shuffled_len
    }

    fn reindex(&mut self) -> Result<(), String> {
        self.shuffled = self.tickets[..self.shuffled_len]
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id, i as u32))
            .collect();
        self.newest = self.tickets.iter().map(|t| t.id).max();
        self.fences = self.tickets[self.shuffled_len..]
            .iter()
            .step_by(FENCE_SPACING)
            .map(|t| t.id)
            .collect();
        self.rank = RankIndex::from_bits(
            self.tickets
                .iter()
                .map(|t| matches!(t.body, TicketBody::Waiting { .. })),
        );
        self.by_user = HashTable::with_capacity(self.rank.count());
        self.payload_bytes = 0;
        for i in 0..self.tickets.len() {
            if let Some(payload) = self.tickets[i].waiting_payload() {
                if self.waiting_of(payload.user()).is_some() {
                    return Err("a user has two waiting tickets".into());
                }
                self.payload_bytes += payload.len();
                self.index_user(i);
            }
        }
        Ok(())
    }

    pub fn tickets(&self) -> &[Ticket] {
        &self.tickets
    }

    pub fn waiting(&self) -> usize {
        self.rank.count()
    }

    /// The newest ticket ID.
    pub fn last_id(&self) -> Option<EntryId> {
        self.newest
    }

    pub fn find(&self, id: EntryId) -> Option<usize> {
        if let Some(&i) = self.shuffled.get(&id) {
            return Some(i as usize);
        }
        let block = self
            .fences
            .partition_point(|&fence| fence <= id)
            .checked_sub(1)?;
        let start = self.shuffled_len + block * FENCE_SPACING;
        let end = (start + FENCE_SPACING).min(self.tickets.len());
        prefetch(&self.tickets[start..end]);
        self.tickets[start..end]
            .binary_search_by(|t| t.id.cmp(&id))
            .ok()
            .map(|i| i + start)
    }

    pub fn get(&self, index: usize) -> &Ticket {
        &self.tickets[index]
    }

    /// The user's 32-bit hash, kept in the table.
    fn user_hash(&self, user: &[u8]) -> u32 {
        self.hasher.hash_one(user) as u32
    }

    fn index_user(&mut self, index: usize) {
        let user = self.tickets[index]
            .waiting_payload()
            .expect("waiting")
            .user();
        let hash = self.user_hash(user);
        let slot = UserSlot {
            index: index as u32,
            hash,
        };
        self.by_user
            .insert_unique(table_hash(hash), slot, |s| table_hash(s.hash));
    }

    pub fn waiting_of(&self, user: &[u8]) -> Option<usize> {
        let hash = self.user_hash(user);
        self.by_user
            .find(table_hash(hash), |s| {
                s.hash == hash
                    && self.tickets[s.index as usize]
                        .waiting_payload()
                        .is_some_and(|p| p.user() == user)
            })
            .map(|s| s.index as usize)
    }

    /// 1-based position of a waiting ticket among those still waiting.
    pub fn position(&self, index: usize) -> usize {
        self.rank.rank(index) + 1
    }

    /// Index of the k-th (0-based) waiting ticket.
    pub fn nth_waiting(&self, k: usize) -> Option<usize> {
        self.rank.select(k)
    }

    /// Appends a waiting ticket. The caller guarantees a fresh, larger ID and no waiting ticket
    /// for the same user (checked here too, as a replicated effect must not corrupt the line).
    pub fn push(&mut self, id: EntryId, heartbeat_deadline: u64, payload: TicketPayload) -> bool {
        if self.last_id().is_some_and(|last| last >= id)
            || self.waiting_of(payload.user()).is_some()
        {
            return false;
        }
        self.payload_bytes += payload.len();
        self.newest = Some(id);
        if (self.tickets.len() - self.shuffled_len) % FENCE_SPACING == 0 {
            self.fences.push(id);
        }
        self.tickets.push(Ticket {
            id,
            body: TicketBody::Waiting {
                heartbeat_deadline,
                payload,
            },
        });
        self.rank.push(true);
        self.index_user(self.tickets.len() - 1);
        true
    }

    pub fn touch(&mut self, index: usize, deadline: u64) {
        if let TicketBody::Waiting {
            heartbeat_deadline, ..
        } = &mut self.tickets[index].body
        {
            *heartbeat_deadline = deadline;
        }
    }

    /// Ends a waiting ticket and returns what it carried. Compacts tombstones when they
    /// outnumber the waiting tickets and `TOMBSTONES_KEPT`, so indices are invalid afterwards.
    pub fn end(&mut self, index: usize, state: EndState) -> Option<TicketPayload> {
        let body = std::mem::replace(&mut self.tickets[index].body, TicketBody::Ended(state));
        let TicketBody::Waiting { payload, .. } = body else {
            self.tickets[index].body = body;
            return None;
        };
        let hash = self.user_hash(payload.user());
        if let Ok(entry) = self
            .by_user
            .find_entry(table_hash(hash), |s| s.index as usize == index)
        {
            entry.remove();
        }
        self.rank.set(index, false);
        self.payload_bytes -= payload.len();
        let ended = self.tickets.len() - self.waiting();
        if ended > TOMBSTONES_KEPT.max(self.waiting()) {
            self.compact();
        }
        Some(payload)
    }

    fn compact(&mut self) {
        // Keep the newest TOMBSTONES_KEPT / 2 tombstones so a recently ended ticket still answers.
        let ended = self.tickets.len() - self.waiting();
        let mut drop = ended - TOMBSTONES_KEPT / 2;
        let mut index = 0;
        let mut shuffled_kept = 0;
        let shuffled_len = self.shuffled_len;
        self.tickets.retain(|t| {
            let keep = !(drop > 0 && matches!(t.body, TicketBody::Ended(_)));
            if !keep {
                drop -= 1;
            } else if index < shuffled_len {
                shuffled_kept += 1;
            }
            index += 1;
            keep
        });
        self.shuffled_len = shuffled_kept;
        self.tickets.shrink_to_fit();
        self.reindex().expect("compaction keeps a valid line");
    }

    /// Shuffles, once, the waiting tickets that joined before `opens_at` (the pre-queue), with a
    /// deterministic generator seeded by `seed` so replicas and AOF replays shuffle identically.
    /// They take the front of the line in the new order; later tickets keep theirs. Returns how
    /// many were shuffled.
    pub fn shuffle_prequeue(&mut self, opens_at: u64, seed: u64) -> usize {
        let region = self.shuffled_len
            + self.tickets[self.shuffled_len..].partition_point(|t| t.id.ms < opens_at);
        let (mut waiting, ended): (Vec<Ticket>, Vec<Ticket>) = self
            .tickets
            .drain(..region)
            .partition(|t| matches!(t.body, TicketBody::Waiting { .. }));
        let mut state = seed;
        for i in (1..waiting.len()).rev() {
            // splitmix64: fixed, portable, good enough to order a line fairly.
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            waiting.swap(i, (z % (i as u64 + 1)) as usize);
        }
        let shuffled = waiting.len();
        let rest = std::mem::take(&mut self.tickets);
        self.tickets = waiting.into_iter().chain(ended).chain(rest).collect();
        self.shuffled_len = region;
        self.reindex().expect("shuffling keeps a valid line");
        shuffled
    }

    /// Changes an ended ticket's final state (an admitted session that ended); false if the
    /// ticket is not in state `from`.
    pub fn restate(&mut self, index: usize, from: EndState, to: EndState) -> bool {
        let body = &mut self.tickets[index].body;
        if *body != TicketBody::Ended(from) {
            return false;
        }
        *body = TicketBody::Ended(to);
        true
    }

    /// IDs of waiting tickets whose heartbeat deadline is at or before `now`, scanning at most
    /// `budget` tickets from index `from`. Returns them and the index to resume from (0 when the
    /// scan wrapped around).
    pub fn lapsed(&self, now: u64, from: usize, budget: usize) -> (Vec<EntryId>, usize) {
        let start = if from >= self.tickets.len() { 0 } else { from };
        let end = (start + budget).min(self.tickets.len());
        let lapsed = self.tickets[start..end]
            .iter()
            .filter(|t| matches!(t.body, TicketBody::Waiting { heartbeat_deadline, .. } if heartbeat_deadline <= now))
            .map(|t| t.id)
            .collect();
        (lapsed, if end >= self.tickets.len() { 0 } else { end })
    }

    /// Heap bytes used (MEMORY USAGE): the ticket array, the payload blocks, the user index and
    /// the rank index.
    pub fn heap_bytes(&self) -> usize {
        self.tickets.capacity() * std::mem::size_of::<Ticket>()
            + self.payload_bytes
            + self.waiting() * 8 // allocator rounding of payload blocks, on average
            + self.by_user.capacity() * 9 * 8 / 7
            + self.rank.heap_bytes()
            + self.fences.capacity() * std::mem::size_of::<EntryId>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(user: &str) -> TicketPayload {
        TicketPayload::new(user.as_bytes(), &[]).unwrap()
    }

    fn line_of(n: u64) -> WaitingLine {
        let mut line = WaitingLine::new();
        for i in 0..n {
            assert!(line.push(EntryId::new(1000 + i, 0), 5000, payload(&format!("u{i}"))));
        }
        line
    }

    #[test]
    fn a_waiting_ticket_costs_40_bytes_plus_its_payload() {
        // The memory goal (<= 128 bytes per waiting user) depends on this layout.
        assert_eq!(std::mem::size_of::<Ticket>(), 40);
    }

    #[test]
    fn positions_are_dense_and_shift_when_someone_leaves() {
        let mut line = line_of(5);
        for i in 0..5 {
            assert_eq!(line.position(i), i + 1);
        }
        assert_eq!(line.end(2, EndState::Left).unwrap().user(), b"u2");
        assert_eq!(line.waiting(), 4);
        assert_eq!([0, 1, 3, 4].map(|i| line.position(i)), [1, 2, 3, 4]);
        assert_eq!(line.nth_waiting(2), Some(3));
        assert_eq!(line.get(2).body, TicketBody::Ended(EndState::Left));
        assert_eq!(
            line.end(2, EndState::Expired),
            None,
            "ending twice changes nothing"
        );
        assert_eq!(line.get(2).body, TicketBody::Ended(EndState::Left));
    }

    #[test]
    fn one_waiting_ticket_per_user_and_increasing_ids() {
        let mut line = line_of(3);
        assert_eq!(line.waiting_of(b"u1"), Some(1));
        assert!(!line.push(EntryId::new(9999, 0), 0, payload("u1")));
        assert!(!line.push(EntryId::new(1001, 0), 0, payload("new")));
        line.end(1, EndState::Left);
        assert_eq!(line.waiting_of(b"u1"), None);
        assert!(line.push(EntryId::new(9999, 0), 0, payload("u1")));
        assert_eq!(line.waiting_of(b"u1"), Some(3));
        assert_eq!(line.find(EntryId::new(9999, 0)), Some(3));
        assert_eq!(line.find(EntryId::new(9998, 0)), None);
    }

    #[test]
    fn lapsed_scan_is_bounded_and_wraps() {
        let mut line = line_of(10);
        line.touch(3, 10_000);
        let (ids, next) = line.lapsed(5000, 0, 4);
        assert_eq!(
            ids,
            vec![
                EntryId::new(1000, 0),
                EntryId::new(1001, 0),
                EntryId::new(1002, 0)
            ]
        );
        assert_eq!(next, 4);
        let (ids, next) = line.lapsed(5000, 4, 100);
        assert_eq!(ids.len(), 6);
        assert_eq!(next, 0);
    }

    #[test]
    fn compaction_keeps_waiting_tickets_and_recent_tombstones() {
        let n = TOMBSTONES_KEPT as u64 + 10;
        let mut line = line_of(n);
        for _ in 0..TOMBSTONES_KEPT + 1 {
            let head = line.nth_waiting(0).unwrap();
            line.end(head, EndState::Admitted);
        }
        assert_eq!(line.waiting(), 9);
        assert!(line.tickets().len() <= 9 + TOMBSTONES_KEPT);
        let first = line.nth_waiting(0).unwrap();
        assert_eq!(line.position(first), 1);
        assert_eq!(
            line.waiting_of(format!("u{}", n - 1).as_bytes())
                .map(|i| line.position(i)),
            Some(9)
        );
        let rebuilt = WaitingLine::from_tickets(line.tickets().to_vec(), 0).unwrap();
        assert_eq!(rebuilt.waiting(), 9);
    }

    #[test]
    fn the_prequeue_is_shuffled_once_and_stays_findable() {
        let mut line = line_of(40); // IDs 1000..1040 ms
        line.end(3, EndState::Left);
        let late = EntryId::new(5000, 0);
        assert!(line.push(late, 5000, payload("late")));
        let shuffled = line.shuffle_prequeue(1040, 42);
        assert_eq!(shuffled, 39);
        assert_eq!(line.shuffled_len(), 40);
        let order: Vec<EntryId> = (0..39)
            .map(|k| line.get(line.nth_waiting(k).unwrap()).id)
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_ne!(order, sorted, "the order changed");
        assert_eq!(
            sorted,
            (0..40)
                .filter(|&i| i != 3)
                .map(|i| EntryId::new(1000 + i, 0))
                .collect::<Vec<_>>(),
            "a permutation"
        );
        for (k, id) in order.iter().enumerate() {
            assert_eq!(line.position(line.find(*id).unwrap()), k + 1);
        }
        assert_eq!(
            line.position(line.find(late).unwrap()),
            40,
            "later joiners stay behind"
        );
        assert_eq!(
            line.get(line.find(EntryId::new(1003, 0)).unwrap()).body,
            TicketBody::Ended(EndState::Left)
        );
        // The same seed gives the same order (replicas), and a round trip keeps it.
        let mut again = line_of(40);
        again.end(3, EndState::Left);
        again.push(late, 5000, payload("late"));
        again.shuffle_prequeue(1040, 42);
        assert_eq!(again.tickets(), line.tickets());
        let rebuilt =
            WaitingLine::from_tickets(line.tickets().to_vec(), line.shuffled_len()).unwrap();
        assert_eq!(rebuilt.find(order[7]), line.find(order[7]));
        assert!(line.push(EntryId::new(6000, 0), 0, payload("later")));
    }

    #[test]
    fn every_ticket_is_found_through_the_fences_and_nothing_else_is() {
        // IDs with gaps, across many fence blocks, through compaction and a pre-queue shuffle.
        let mut line = WaitingLine::new();
        let id = |i: u64| EntryId::new(1000 + i * 3, i % 2);
        let n = (TOMBSTONES_KEPT + 5 * FENCE_SPACING) as u64;
        for i in 0..n {
            assert!(line.push(id(i), 0, payload(&format!("u{i}"))));
        }
        let check = |line: &WaitingLine| {
            for (index, ticket) in line.tickets().iter().enumerate() {
                assert_eq!(line.find(ticket.id), Some(index), "{:?}", ticket.id);
            }
            let kept: std::collections::HashSet<EntryId> =
                line.tickets().iter().map(|t| t.id).collect();
            for i in 0..n + 2 {
                for probe in [id(i), EntryId::new(id(i).ms + 1, 0), EntryId::new(0, i)] {
                    if !kept.contains(&probe) {
                        assert_eq!(line.find(probe), None, "{probe:?}");
                    }
                }
            }
        };
        check(&line);
        for _ in 0..TOMBSTONES_KEPT + 1 {
            let head = line.nth_waiting(0).unwrap();
            line.end(head, EndState::Left);
        }
        assert!(line.tickets().len() < n as usize, "compacted");
        check(&line);
        line.shuffle_prequeue(id(n - 40).ms, 9);
        assert!(line.shuffled_len() > 0);
        check(&line);
    }

    #[test]
    fn from_tickets_rejects_corrupt_input() {
        let line = line_of(3);
        let mut tickets = line.tickets().to_vec();
        tickets.swap(0, 1);
        assert!(WaitingLine::from_tickets(tickets, 0).is_err());
        let mut tickets = line.tickets().to_vec();
        tickets[2].body = tickets[0].body.clone();
        assert!(WaitingLine::from_tickets(tickets, 0).is_err());
    }
}
