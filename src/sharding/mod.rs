//! Sharded events, the module's side (docs/sharding.md). One sale spread over K line shards,
//! each an ordinary event key with its own journal, plus one inventory key. What is special on
//! a shard (settings `SHARDS` = K > 0, `SHARD-INDEX`, `SHARD-GROUP`):
//!
//! - it calls its line only as far as the coordinator granted (`SHARD.GRANT`: a ceiling of
//!   admissions under a lease), or, without a lease, its static share RATE/K, CAPACITY/K (the
//!   rules are in `seatq_sharding::gate`; `plan_calls` asks `shard_gate`);
//! - it keeps its tickets' join times (`seatq_sharding::JoinIndex`), which `SHARD.FRONT`
//!   reports for the coordinator's merge;
//! - its passes carry the group and the shard index (`grp`, `shd`), so the inventory key, which
//!   has the same group, accepts them without reading the shard;
//! - QUEUE.STATUS adds a global position estimate from the coordinator's rank table.
//!
//! Everything is decided on the primary and travels as effects (`GRANTED`, `RANKED`, and the
//! join times and share spending follow from `JOINED` and `ADMITTED`), so replicas and AOF
//! replays agree. The state persists as extra (id, value) pairs after the settings in the RDB
//! encoding (IDs from 1000, which releases without sharding skip).

use seatq_sharding::{
    shard_of, Budget, Front, Gate, Grant, JoinIndex, Lease, RankTable, ShardCore,
};

use crate::admission::pass::{self, Claims, PassKey};
use crate::config::Setting;
use crate::error::SeatqError;
use crate::event::{Effect, Event, Refusal};
use crate::queue::line::Serial;
use crate::queue::TicketView;

/// The most front tickets and samples one SHARD.FRONT reports.
pub const MAX_FRONT: usize = 10_000;
pub const MAX_SAMPLES: usize = 1_024;
/// The longest lease a grant may give.
pub const MAX_LEASE_MS: u64 = 60_000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardState {
    pub core: ShardCore,
    pub joins: JoinIndex,
    pub ranks: Option<RankTable>,
}

impl ShardState {
    pub fn heap_bytes(&self) -> usize {
        self.joins.heap_bytes() + self.ranks.as_ref().map_or(0, |r| r.points.len() * 16)
    }
}

impl Event {
    /// K, when the event is part of a sharded event (a line shard or the inventory).
    pub fn shards(&self) -> u64 {
        self.config.get(Setting::Shards)
    }

    /// A line shard takes only the users its hash names, so that each user is on one shard and
    /// "one live ticket per user" stays exact across the whole event (the inventory, whose
    /// SHARD-INDEX is K, takes none).
    pub fn check_user_shard(&self, user: &[u8]) -> Result<(), SeatqError> {
        let shards = self.shards();
        if shards == 0 {
            return Ok(());
        }
        let theirs = seatq_sharding::shard_of(user, shards as u32);
        if u64::from(theirs) == self.config.get(Setting::ShardIndex) {
            Ok(())
        } else {
            Err(SeatqError::WrongShard(theirs, shards))
        }
    }

    fn shard_budget(&self) -> Option<Budget> {
        let shards = self.shards();
        (shards > 0).then(|| Budget {
            rate: self.config.get(Setting::Rate),
            burst: self.config.get(Setting::Burst),
            capacity: self.config.get(Setting::Capacity),
            shards,
        })
    }

    /// What a line shard may call now besides its own bucket (None: not sharded).
    pub fn shard_gate(&self, now: u64) -> Option<Gate> {
        let budget = self.shard_budget()?;
        Some(self.shard.core.gate(now, self.totals.admitted, &budget))
    }

    /// The room under CAPACITY a shard may use now (`room` as is when not sharded).
    pub fn shard_room(&self, now: u64, room: usize) -> usize {
        match self.shard_budget() {
            Some(budget) => self
                .shard
                .core
                .room(now, room, self.sessions.len(), &budget),
            None => room,
        }
    }

    pub(crate) fn apply_grant(
        &mut self,
        at_ms: u64,
        epoch: u64,
        lease_until: u64,
        ceiling: u64,
        capacity: Option<u64>,
        spread_ms: u64,
    ) -> Result<(), Refusal> {
        let budget = self.shard_budget().ok_or("not a shard")?;
        if !self.shard.core.accepts(epoch) {
            return Err("a grant of an older epoch");
        }
        self.shard.core.grant(
            Lease {
                epoch,
                until: lease_until,
                ceiling,
                capacity,
                spread_ms,
                ..Lease::default()
            },
            at_ms,
            self.totals.admitted,
            &budget,
        );
        Ok(())
    }

    pub(crate) fn apply_ranks(&mut self, table: &RankTable) -> Result<(), Refusal> {
        if self.shards() == 0 {
            return Err("not a shard");
        }
        let ordered = table
            .points
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1);
        if !ordered || table.points.len() > seatq_sharding::ranks::MAX_POINTS + 1 {
            return Err("a malformed rank table");
        }
        self.shard.ranks = Some(table.clone());
        Ok(())
    }

    /// After an effect applied: join times and the static share follow the line.
    pub(crate) fn follow_for_shards(&mut self, effect: &Effect) {
        let Some(budget) = self.shard_budget() else {
            return;
        };
        match effect {
            Effect::Joined { at, serial, .. } => self.shard.joins.record(*serial, at.ms),
            Effect::Admitted { at, .. } => {
                self.shard.core.admitted(at.ms, &budget);
                self.trim_joins();
            }
            Effect::Left { .. } | Effect::Expired { .. } | Effect::Dequeued { .. } => {
                self.trim_joins()
            }
            _ => {}
        }
    }

    /// Drops join times no waiting ticket needs (those before the first one in join order).
    fn trim_joins(&mut self) {
        if self.shard.joins.len() < 2 {
            return;
        }
        let first = self
            .line
            .nth_waiting(self.line.prequeue_waiting())
            .unwrap_or_else(|| self.line.next_serial());
        self.shard.joins.trim(first);
    }

    /// SHARD.GRANT: the grant's effects, or FENCED.
    pub fn plan_grant(&self, now: u64, grant: Grant) -> Result<Vec<Effect>, SeatqError> {
        if self.shards() == 0 {
            return Err(SeatqError::Invalid(
                "not a shard of a sharded event (SHARDS is 0)".into(),
            ));
        }
        if !self.shard.core.accepts(grant.epoch) {
            return Err(SeatqError::Fenced(self.shard.core.lease.epoch));
        }
        let mut effects = vec![Effect::Granted {
            at: self.next_id(now, None),
            epoch: grant.epoch,
            lease_until: now.saturating_add(grant.lease_ms),
            ceiling: grant.ceiling,
            capacity: grant.capacity,
            spread_ms: grant.spread_ms,
        }];
        effects.extend(grant.ranks.map(Effect::Ranked));
        Ok(effects)
    }

    /// SHARD.FRONT: the shard's counters, the join times (µs) of its first `count` live
    /// waiting tickets, and `samples` join times spread over its line.
    pub fn front(&self, now: u64, now_us: u64, count: usize, samples: usize) -> Front {
        let core = &self.shard.core;
        let line = &self.line;
        let next = line.next_serial();
        let prequeue = if self.phase.opened {
            line.prequeue_waiting()
        } else {
            0
        };
        let mut joins = Vec::with_capacity(count.min(line.waiting()));
        let mut cursor = self.shard.joins.cursor(next);
        let mut more = false;
        let mut k = 0;
        while let Some(serial) = line.nth_waiting(k) {
            if joins.len() == count {
                more = true;
                break;
            }
            k += 1;
            if line.get(serial).is_some_and(|t| t.lapsed(now)) {
                continue;
            }
            if k <= prequeue {
                joins.push(0);
            } else {
                joins.push(cursor.join_us(serial).unwrap_or(0));
            }
        }
        let waiting = line.waiting() as u64;
        let samples = if waiting == 0 || samples == 0 {
            Vec::new()
        } else {
            let n = samples.min(line.waiting());
            (0..=n)
                .map(|i| ((waiting - 1) * i as u64 / n as u64) as usize)
                .filter(|&p| p >= prequeue)
                .filter_map(|p| {
                    let serial = line.nth_waiting(p)?;
                    Some((p as u64, self.shard.joins.join_us(serial, next)?))
                })
                .collect()
        };
        Front {
            now_ms: now,
            now_us,
            epoch: core.lease.epoch,
            lease_until: core.lease.until,
            ceiling: core.lease.ceiling,
            fallback_capacity: core.lease.capacity,
            admitted: self.totals.admitted,
            sessions: self.sessions.len() as u64,
            waiting,
            prequeue: prequeue as u64,
            calling: self.phase.opened && !self.phase.paused,
            rate: self.config.get(Setting::Rate),
            burst: self.config.get(Setting::Burst),
            capacity: self.config.get(Setting::Capacity),
            shards: self.shards(),
            shard_index: self.config.get(Setting::ShardIndex),
            joins,
            more,
            samples,
        }
    }

    /// A shard's passes name its group and index, so the inventory can accept them.
    pub(crate) fn shard_claims(&self, claims: &mut Claims) {
        if self.shards() > 0 && self.config.get(Setting::ShardGroup) > 0 {
            claims.grp = Some(self.config.get(Setting::ShardGroup));
            claims.shd = Some(self.config.get(Setting::ShardIndex) as u32);
        }
    }

    /// Whether `token` is a valid pass of `user` from a line shard of this event's group (the
    /// inventory's check): signed with a configured key (never a shard's own key, which only
    /// the shard knows), of this group, from the shard the user belongs to, not expired.
    /// Revocation on the shard is not seen here: the pass holds until its `exp`.
    pub(crate) fn group_pass_valid(
        &self,
        now: u64,
        user: &[u8],
        token: &[u8],
        keys: &[PassKey],
    ) -> bool {
        let (shards, group) = (self.shards(), self.config.get(Setting::ShardGroup));
        if shards == 0 || group == 0 {
            return false;
        }
        // The event's own key checks nothing another key signed; a pass signed with it names
        // this key's group only if this key issued it.
        let Ok(claims) = pass::verify(token, keys, self.secret.pass_key()) else {
            return false;
        };
        claims.iss == pass::ISSUER
            && claims.grp == Some(group)
            && claims.shd == Some(shard_of(user, shards as u32))
            && claims.user_is(user)
            && claims.exp.saturating_mul(1000) > now
    }

    /// QUEUE.STATUS on a shard: the global position estimate of a waiting ticket (and its ETA
    /// at the global call rate replaces the shard's), when a rank table has arrived.
    pub fn global_position(&self, view: &mut TicketView, now: u64) -> Option<u64> {
        let table = self.shard.ranks.as_ref()?;
        if view.state != "waiting" || view.position == 0 {
            return None;
        }
        let shard_position = view.position as u64;
        let global = if self.line.in_prequeue(view.serial) {
            table.prequeue_position(shard_position, self.line.waiting() as u64)
        } else {
            let join = self
                .shard
                .joins
                .join_us(view.serial, self.line.next_serial())?;
            table.position(join, shard_position, now)
        };
        if view.eta_ms.is_some() {
            if let Some(eta) = table.eta_ms(global) {
                view.eta_ms = Some(eta);
            }
        }
        Some(global)
    }
}

// ---------------------------------------------------------------------------------------------
// Persistence: (id, value) pairs after the settings.

const EPOCH: u64 = 1001;
const LEASE_UNTIL: u64 = 1002;
const CEILING: u64 = 1003;
const FALLBACK_TAT: u64 = 1004;
const GRANTS: u64 = 1005;
/// The fallback capacity plus one (0: none named).
const CAPACITY: u64 = 1006;
const SPREAD: u64 = 1007;
const BASE: u64 = 1008;
const FROM: u64 = 1009;
const JOIN_SERIAL: u64 = 1010;
const JOIN_MS: u64 = 1011;
const RANK_AT: u64 = 1020;
const RANK_RATE: u64 = 1021;
const RANK_WAITING: u64 = 1022;
const RANK_T: u64 = 1023;
const RANK_COUNT: u64 = 1024;

/// Whether a persisted pair ID belongs to the sharded state.
pub fn is_state_id(id: u64) -> bool {
    (1000..2000).contains(&id)
}

/// The sharded state as pairs (nothing for an event that never was a shard).
pub fn persisted(state: &ShardState) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let core = &state.core;
    if *core != ShardCore::default() {
        out.extend([
            (EPOCH, core.lease.epoch),
            (LEASE_UNTIL, core.lease.until),
            (CEILING, core.lease.ceiling),
            (FALLBACK_TAT, core.fallback.tat_ns),
            (GRANTS, core.grants),
            (
                CAPACITY,
                core.lease.capacity.map_or(0, |c| c.saturating_add(1)),
            ),
            (SPREAD, core.lease.spread_ms),
            (BASE, core.lease.base),
            (FROM, core.lease.from_ms),
        ]);
    }
    for (serial, ms) in state.joins.marks() {
        out.extend([(JOIN_SERIAL, u64::from(serial)), (JOIN_MS, ms)]);
    }
    if let Some(r) = &state.ranks {
        out.extend([
            (RANK_AT, r.at_ms),
            (RANK_RATE, r.rate_milli),
            (RANK_WAITING, r.waiting),
        ]);
        for &(t, c) in &r.points {
            out.extend([(RANK_T, t), (RANK_COUNT, c)]);
        }
    }
    out
}

/// Rebuilds the sharded state from its pairs, in the order `persisted` wrote them.
pub fn restore(pairs: &[(u64, u64)]) -> Result<ShardState, String> {
    let mut state = ShardState::default();
    let mut marks: Vec<(Serial, u64)> = Vec::new();
    let mut ranks: Option<RankTable> = None;
    let mut pending: Option<(u64, u64)> = None;
    for &(id, value) in pairs {
        let core = &mut state.core;
        match id {
            EPOCH => core.lease.epoch = value,
            LEASE_UNTIL => core.lease.until = value,
            CEILING => core.lease.ceiling = value,
            FALLBACK_TAT => core.fallback.tat_ns = value,
            GRANTS => core.grants = value,
            CAPACITY => core.lease.capacity = value.checked_sub(1),
            SPREAD => core.lease.spread_ms = value,
            BASE => core.lease.base = value,
            FROM => core.lease.from_ms = value,
            JOIN_SERIAL | RANK_T => pending = Some((id, value)),
            JOIN_MS => match pending.take() {
                Some((JOIN_SERIAL, serial)) => marks.push((
                    Serial::try_from(serial).map_err(|_| "bad join serial")?,
                    value,
                )),
                _ => return Err("a join time without its serial".into()),
            },
            RANK_AT | RANK_RATE | RANK_WAITING => {
                let r = ranks.get_or_insert_with(RankTable::default);
                match id {
                    RANK_AT => r.at_ms = value,
                    RANK_RATE => r.rate_milli = value,
                    _ => r.waiting = value,
                }
            }
            RANK_COUNT => match (pending.take(), ranks.as_mut()) {
                (Some((RANK_T, t)), Some(r)) => r.points.push((t, value)),
                _ => return Err("a rank count without its time".into()),
            },
            _ => {} // a later release's: skipped
        }
    }
    if pending.is_some() {
        return Err("an unpaired sharded state value".into());
    }
    if marks
        .windows(2)
        .any(|w| w[0].0 >= w[1].0 || w[0].1 >= w[1].1)
    {
        return Err("join times out of order".into());
    }
    state.joins = JoinIndex::restore(marks);
    if let Some(r) = &ranks {
        if r.points
            .windows(2)
            .any(|w| w[0].0 >= w[1].0 || w[0].1 > w[1].1)
        {
            return Err("a rank table out of order".into());
        }
    }
    state.ranks = ranks;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::Signer;
    use crate::queue::tests::{event, join, run};
    use crate::queue::Target;
    use crate::upkeep::{step, Limits};

    const KEYS: &str = "k1:0123456789abcdef0123456789abcdef";

    fn shard(k: u64, index: u64) -> Event {
        let mut ev = event();
        run(
            &mut ev,
            vec![Effect::Configured(vec![
                (Setting::Rate, 100),
                (Setting::Burst, 20),
                (Setting::Capacity, 40),
                (Setting::Heartbeat, 60_000),
                (Setting::Shards, k),
                (Setting::ShardIndex, index),
                (Setting::ShardGroup, 77),
            ])],
        );
        ev
    }

    fn admitted(ev: &Event) -> u64 {
        ev.totals.admitted
    }

    /// The first `n` users `u<i>` whose hash names shard `index` of `k`.
    fn users_of(k: u64, index: u64, n: usize) -> Vec<String> {
        (0..)
            .map(|i| format!("u{i}"))
            .filter(|u| u64::from(shard_of(u.as_bytes(), k as u32)) == index)
            .take(n)
            .collect()
    }

    #[test]
    fn a_shard_takes_only_the_users_its_hash_names() {
        let mut ev = shard(3, 1);
        let mine = &users_of(3, 1, 1)[0];
        let theirs = &users_of(3, 2, 1)[0];
        join(&mut ev, 1_000, mine, None).unwrap();
        let before = ev.line.waiting();
        assert_eq!(
            join(&mut ev, 1_000, theirs, None).unwrap_err(),
            SeatqError::WrongShard(2, 3)
        );
        assert_eq!(ev.line.waiting(), before, "nothing changed");
        // The inventory (SHARD-INDEX K) takes no joins at all.
        let mut inventory = shard(3, 3);
        for index in 0..3 {
            let user = &users_of(3, index, 1)[0];
            assert!(join(&mut inventory, 1_000, user, None).is_err());
        }
    }

    #[test]
    fn without_a_lease_a_shard_calls_its_static_share() {
        let mut ev = shard(4, 0);
        for user in users_of(4, 0, 200) {
            join(&mut ev, 1_000, &user, None).unwrap();
        }
        let signer = Signer {
            event: b"s0",
            keys: &[],
        };
        for now in (1_000..11_000).step_by(10) {
            step(&mut ev, now, Limits::TIMER, &signer).unwrap();
        }
        // RATE/K = 25/s, bucket BURST/K = 5, and at most CAPACITY/K = 10 sessions.
        assert_eq!(admitted(&ev), 10, "CAPACITY/K");
        assert_eq!(ev.shard_room(11_000, usize::MAX), 0);
    }

    #[test]
    fn grants_set_a_ceiling_fenced_by_epoch_and_replay_identically() {
        let mut ev = shard(2, 1);
        for (i, user) in users_of(2, 1, 100).iter().enumerate() {
            join(&mut ev, 1_000 + i as u64, user, None).unwrap();
        }
        let signer = Signer {
            event: b"s1",
            keys: &[],
        };
        let effects = ev
            .plan_grant(
                2_000,
                Grant {
                    epoch: 5,
                    lease_ms: 1_000,
                    ceiling: 30,
                    capacity: Some(20),
                    spread_ms: 0,
                    ranks: None,
                },
            )
            .unwrap();
        run(&mut ev, effects);
        for now in (2_000..2_900).step_by(10) {
            step(&mut ev, now, Limits::TIMER, &signer).unwrap();
        }
        assert_eq!(admitted(&ev), 30, "the ceiling, within the 40 CAPACITY");
        assert_eq!(
            ev.plan_grant(
                2_900,
                Grant {
                    epoch: 4,
                    lease_ms: 1_000,
                    ceiling: 50,
                    capacity: None,
                    spread_ms: 0,
                    ranks: None,
                },
            ),
            Err(SeatqError::Fenced(5))
        );
        // The front: 70 waiting, join times in µs spread within each ms.
        let front = ev.front(2_900, 0, 5, 4);
        assert_eq!((front.waiting, front.admitted, front.ceiling), (70, 30, 30));
        assert_eq!(
            front.joins,
            vec![1_030_500, 1_031_500, 1_032_500, 1_033_500, 1_034_500]
        );
        assert!(front.more && front.calling);
        assert_eq!(front.samples.len(), 5);
        // What persisted comes back the same.
        let back = restore(&persisted(&ev.shard)).unwrap();
        assert_eq!(back, ev.shard);
        assert!(
            ev.shard.joins.len() <= 70,
            "trimmed as tickets left the line"
        );
    }

    #[test]
    fn passes_name_the_group_and_the_inventory_accepts_them() {
        let keys = pass::parse_keys(KEYS).unwrap();
        let k = 3;
        let user = "alice";
        let index = u64::from(shard_of(user.as_bytes(), k as u32));
        let mut line = shard(k, index);
        let signer = Signer {
            event: b"{sale:s0:1}",
            keys: &keys,
        };
        join(&mut line, 1_000, user, None).unwrap();
        let effects = line
            .plan_grant(
                1_000,
                Grant {
                    epoch: 1,
                    lease_ms: 5_000,
                    ceiling: 1,
                    capacity: None,
                    spread_ms: 0,
                    ranks: None,
                },
            )
            .unwrap();
        run(&mut line, effects);
        step(&mut line, 1_001, Limits::TIMER, &signer).unwrap();
        let view = line
            .plan_status(1_002, Target::User(user.as_bytes()), &signer)
            .unwrap()
            .1;
        let token = view.session.unwrap().pass;
        let claims = pass::verify(token.as_bytes(), &keys, line.secret.pass_key()).unwrap();
        assert_eq!((claims.grp, claims.shd), (Some(77), Some(index as u32)));
        // The inventory: same group, K; no line of its own.
        let mut inventory = shard(k, 0);
        run(&mut inventory, vec![Effect::StockAdded { qty: 10 }]);
        let t = token.as_bytes();
        assert!(inventory.group_pass_valid(2_000, b"alice", t, &keys));
        assert!(inventory
            .check_pass(2_000, b"alice", Some(t), b"{sale}:seats", &keys)
            .is_ok());
        assert!(
            !inventory.group_pass_valid(2_000, b"bob", t, &keys),
            "another user"
        );
        assert!(
            !inventory.group_pass_valid(1_000_000_000, b"alice", t, &keys),
            "expired"
        );
        assert!(
            !inventory.group_pass_valid(2_000, b"alice", t, &[]),
            "an unlisted key"
        );
        let mut other = shard(k, 0);
        run(
            &mut other,
            vec![Effect::Configured(vec![(Setting::ShardGroup, 78)])],
        );
        assert!(
            !other.group_pass_valid(2_000, b"alice", t, &keys),
            "another group"
        );
    }

    #[test]
    fn global_positions_come_from_the_rank_table() {
        let mut ev = shard(2, 0);
        let users = users_of(2, 0, 10);
        for (i, user) in users.iter().enumerate() {
            join(&mut ev, 1_000 + i as u64, user, None).unwrap();
        }
        // The other shard has as many tickets, interleaved: twice the positions.
        let table = RankTable {
            at_ms: 1_100,
            rate_milli: 0,
            waiting: 20,
            points: vec![(1_000_000, 0), (1_010_000, 20)],
        };
        let effects = ev
            .plan_grant(
                1_100,
                Grant {
                    epoch: 1,
                    lease_ms: 1_000,
                    ceiling: 0,
                    capacity: None,
                    spread_ms: 0,
                    ranks: Some(table),
                },
            )
            .unwrap();
        run(&mut ev, effects);
        let (_, mut view) = ev
            .plan_status(
                1_100,
                Target::User(users[5].as_bytes()),
                &crate::queue::tests::SIGNER,
            )
            .unwrap();
        assert_eq!(view.position, 6);
        assert_eq!(ev.global_position(&mut view, 1_100), Some(12));
    }
}
