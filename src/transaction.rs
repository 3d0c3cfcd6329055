//! The one write path. A transaction opens the event key once for writing and then, for each
//! batch of effects a command, the timer or the replication link brings: appends the journal
//! entries, applies the effects, and at the end replicates them as one `SEATQ.APPLY`, emits the
//! keyspace notifications, signals the modified keys and reschedules the event's upkeep.
//!
//! The first journal append of a transaction comes before anything changes: if the journal
//! cannot take it (the key holds another type, a client wrote IDs past ours, or the journal is
//! missing while seatq expects it, as in the middle of a slot migration), the whole write is
//! refused with nothing changed.

use std::ffi::CStr;

use crate::arg_list::ArgList;
use crate::config::{EventConfig, Setting, SETTINGS};
use crate::datatype::EVENT_TYPE;
use crate::entry_id::EntryId;
use crate::error::{printable, SeatqError};
use crate::event::{Effect, Event};
use crate::ffi::stream::{Stream, StreamState};
use crate::ffi::{bytes_of, Ctx, Key, NotifyClass, RawString};
use crate::journal::{self, journal_key};
use crate::metrics;
use crate::replication::{self, APPLY_COMMAND};
use crate::upkeep::Apply;
use crate::{random, schedule};

const APPLY: &CStr = c"SEATQ.APPLY";

/// Journal entries trimmed by age in one step at most.
const TRIM_STEP: usize = 1000;

/// Whether a transaction decides (primary) or replays what it was sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Decide,
    Replay,
}

pub struct Transaction<'a> {
    ctx: &'a Ctx,
    name: RawString,
    key: &'a [u8],
    handle: Key,
    /// A new event, stored with its first change (a plan that changes nothing creates nothing).
    pending: Option<Box<Event>>,
    journal: Option<(Stream, Vec<u8>)>,
    journal_appended: bool,
    /// `key effect args effect args ...`
    replicated: ArgList,
    applied: usize,
    notifications: Vec<&'static CStr>,
    gauges: Option<metrics::Gauges>,
    mode: Mode,
}

impl<'a> Transaction<'a> {
    /// Opens `name` for a change: WRONGTYPE if it holds anything but an event.
    pub fn open(ctx: &'a Ctx, name: RawString) -> Result<Self, SeatqError> {
        let handle = ctx.open(name, true);
        handle.value(&EVENT_TYPE)?;
        let key = bytes_of(name);
        let mut replicated = ArgList::with_capacity(16, 256);
        replicated.push(key);
        Ok(Self {
            ctx,
            name,
            key,
            handle,
            pending: None,
            journal: None,
            journal_appended: false,
            replicated,
            applied: 0,
            notifications: Vec::new(),
            gauges: None,
            mode: Mode::Decide,
        })
    }

    pub fn key(&self) -> &[u8] {
        self.key
    }

    pub fn exists(&self) -> bool {
        self.pending.is_none() && !self.handle.is_empty()
    }

    /// Whether anything was applied so far.
    pub fn changed(&self) -> bool {
        self.applied > 0
    }

    /// The stored event, or a new one (module defaults, a fresh secret) that is stored only if
    /// something changes.
    pub fn event(&mut self) -> &mut Event {
        if self.handle.is_empty() {
            return self.pending.get_or_insert_with(|| {
                Box::new(Event::new(EventConfig::from_defaults(), random::secret()))
            });
        }
        self.handle
            .value_mut(&EVENT_TYPE)
            .ok()
            .flatten()
            .expect("checked when opened")
    }

    /// Stores a pending new event; its creation is the first effect replicated.
    fn store_pending(&mut self) {
        let Some(event) = self.pending.take() else {
            return;
        };
        let settings = SETTINGS
            .iter()
            .map(|s| (s.setting, event.config.get(s.setting)))
            .collect();
        let created = Effect::Created {
            secret: *event.secret.bytes(),
            settings,
        };
        replication::encode(&created, &mut self.replicated);
        metrics::count_effect(&created);
        metrics::event_stored(&event);
        self.handle.set_value(&EVENT_TYPE, event);
    }

    fn gauges_before(&mut self) {
        if self.gauges.is_none() {
            let gauges = metrics::Gauges::of(self.event());
            self.gauges = Some(gauges);
        }
    }

    /// Opens the journal for the first journaled effect, refusing (nothing changed yet) what
    /// cannot be journaled.
    fn journal(&mut self) -> Result<&Stream, SeatqError> {
        if self.journal.is_none() {
            let name = journal_key(self.key)?;
            let stream = Stream::open(self.ctx, &name);
            let started = self.event().journal.as_deref() == Some(&name[..]);
            match stream.state() {
                StreamState::Stream => {}
                StreamState::Missing if !started => {}
                // Outside a cluster no migration moves keys one at a time: the journal was
                // deleted, and a new one starts.
                StreamState::Missing if !self.ctx.in_cluster() => {
                    self.ctx.log_warning(&format!(
                        "seatq: the journal {} was deleted; a new one starts",
                        printable(&name)
                    ));
                }
                StreamState::Missing => {
                    return Err(SeatqError::TryAgain(format!(
                        "the journal {} is missing (a slot migration moving it?); if it was deleted, QUEUE.CONFIG {} SET JOURNAL on starts a new one",
                        printable(&name),
                        printable(self.key)
                    )))
                }
                StreamState::Other => {
                    return Err(SeatqError::JournalUnavailable(format!(
                        "the journal key {} holds a value that is not a stream; delete it or rename it",
                        printable(&name)
                    )))
                }
            }
            self.journal = Some((stream, name));
        }
        Ok(&self.journal.as_ref().expect("opened above").0)
    }

    /// Journals and applies effects, in order.
    fn apply_effects(&mut self, effects: &[Effect]) -> Result<(), SeatqError> {
        for effect in effects {
            if let Effect::Created { secret, settings } = effect {
                // Replayed creation of a new event.
                if !self.handle.is_empty() {
                    return Err(SeatqError::Invalid("the event already exists".into()));
                }
                let event = Event::created(*secret, settings);
                metrics::count_effect(effect);
                metrics::event_stored(&event);
                self.handle.set_value(&EVENT_TYPE, Box::new(event));
                replication::encode(effect, &mut self.replicated);
                self.applied += 1;
                continue;
            }
            if self.handle.is_empty() && self.mode == Mode::Replay {
                return Err(SeatqError::Invalid(
                    "an effect for an event that does not exist".into(),
                ));
            }
            self.gauges_before();
            let journaled = self.event().config.journal_on() && effect.journal_id().is_some();
            // The entry describes the event as it is before the effect applies.
            let record = journaled
                .then(|| journal::record(effect, self.event()))
                .flatten();
            match self.mode {
                // Before anything of a new event is stored: a refused append creates nothing.
                Mode::Decide => {
                    if let Some(record) = &record {
                        self.append(record)?;
                    }
                    self.store_pending();
                    if let Err(refusal) = self.event().apply(effect) {
                        return Err(SeatqError::Internal(format!(
                            "an effect did not fit the event: {refusal}"
                        )));
                    }
                }
                // What was sent is journaled only if it applied.
                Mode::Replay => {
                    self.event().apply(effect).map_err(|refusal| {
                        SeatqError::Invalid(format!("an effect does not fit the event: {refusal}"))
                    })?;
                    if let Some(record) = &record {
                        self.append(record)?;
                    }
                }
            }
            metrics::count_effect(effect);
            replication::encode(effect, &mut self.replicated);
            self.applied += 1;
            let name = notification(effect);
            if !self.notifications.contains(&name) {
                self.notifications.push(name);
            }
        }
        Ok(())
    }

    /// Appends a journal entry.
    fn append(&mut self, record: &journal::JournalRecord) -> Result<(), SeatqError> {
        let mode = self.mode;
        let ctx = self.ctx;
        let written = match self.journal() {
            Ok(stream) => stream.append(ctx, record.id, &record.fields),
            // A replica keeps the event identical to its primary's even if its journal cannot
            // follow (it diverged by hand): the effect still applies.
            Err(e) if mode == Mode::Replay => {
                self.ctx.log_warning(&format!(
                    "seatq: a replicated entry was not journaled: {}",
                    e.message()
                ));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if !written {
            // Only the first append can meet a stream whose last ID is ours or later; what
            // applied before it (no journaled effect) is still replicated when the transaction
            // ends.
            if mode == Mode::Decide {
                return Err(SeatqError::JournalUnavailable(format!(
                    "the journal of {} already holds entries at or after {}; delete the journal key to start a new one (a stream's last ID never goes back)",
                    printable(self.key),
                    record.id
                )));
            }
            self.ctx.log_warning(&format!(
                "seatq: journal entry {} was refused by the stream",
                record.id
            ));
            return Ok(());
        }
        self.journal_appended = true;
        metrics::journal_entry();
        let name = self
            .journal
            .as_ref()
            .map(|(_, name)| name.clone())
            .unwrap_or_default();
        let event = self.event();
        if event.journal.as_deref() != Some(&name[..]) {
            event.journal = Some(name.into());
        }
        if event.journal_trim_at == u64::MAX {
            event.journal_trim_at = record
                .id
                .ms
                .saturating_add(event.config.get(Setting::JournalMaxAge));
        }
        Ok(())
    }

    /// Trims the journal by age (JOURNAL-MAXAGE), a bounded number of entries per call, and
    /// propagates it as an exact `XTRIM MINID`.
    pub fn trim_journal(&mut self, now: u64) {
        let event = self.event();
        let max_age = event.config.get(Setting::JournalMaxAge);
        if event.journal.is_none()
            || !event.config.journal_on()
            || max_age == 0
            || now < event.journal_trim_at
        {
            return;
        }
        let Ok(name) = journal_key(self.key) else {
            return;
        };
        let stream = Stream::open(self.ctx, &name);
        let target = EntryId::new(now.saturating_sub(max_age), 0);
        // One read of the front, before anything is trimmed: what goes and what stays first.
        let front = stream.first_ids(TRIM_STEP + 1);
        let old = front.iter().take_while(|&&id| id < target).count();
        let next = if old == 0 {
            front
                .first()
                .map_or(u64::MAX, |f| f.ms.saturating_add(max_age))
        } else {
            // At most TRIM_STEP entries go per step; if more are old, the next step is due now.
            let (cut, next) = if old > TRIM_STEP {
                (front[TRIM_STEP], now)
            } else {
                let kept = front.get(old);
                (
                    target,
                    kept.map_or(u64::MAX, |k| k.ms.saturating_add(max_age)),
                )
            };
            if stream.trim_before(cut) > 0 {
                let mut args = ArgList::with_capacity(3, 64);
                args.push(&name).push(b"MINID").push_id(cut);
                self.ctx.replicate(c"XTRIM", &args);
                self.ctx
                    .notify(NotifyClass::Stream, c"xtrim", stream.name());
                self.ctx.signal_modified(stream.name());
            }
            next
        };
        self.event().journal_trim_at = next;
    }

    /// Replicates, notifies, signals and reschedules what the transaction changed. Runs when
    /// the transaction is dropped, so an error (or a panic) after a change never leaves it
    /// unreplicated.
    fn finish(&mut self) {
        if self.applied == 0 {
            return;
        }
        self.applied = 0;
        let now = self.ctx.now_ms();
        match self.mode {
            Mode::Decide => self.ctx.replicate(APPLY, &self.replicated),
            Mode::Replay => self.ctx.replicate_verbatim(),
        }
        for name in std::mem::take(&mut self.notifications) {
            self.ctx.notify(NotifyClass::Module, name, self.name);
        }
        self.ctx.signal_modified(self.name);
        if let Some((stream, _)) = self.journal.as_ref().filter(|_| self.journal_appended) {
            self.ctx.signal_modified(stream.name());
        }
        if let Some(before) = self.gauges.take() {
            metrics::event_changed(before, self.event());
        }
        self.reschedule(now);
    }

    /// Records when the event's upkeep is next due, in the event and in the schedule.
    pub fn reschedule(&mut self, now: u64) {
        if self.handle.is_empty() {
            return;
        }
        let db = self.ctx.selected_db();
        let event = self.event();
        let due = event.next_due(now);
        event.upkeep_due = due;
        schedule::with(|s| s.set(db, self.key, due));
        if let Some(due) = due {
            crate::timer::wake_by(self.ctx, due);
        }
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Apply for Transaction<'_> {
    fn event(&mut self) -> &mut Event {
        Transaction::event(self)
    }

    fn apply(&mut self, effects: Vec<Effect>) -> Result<(), SeatqError> {
        self.apply_effects(&effects)
    }
}

/// Applies effects received from the primary or the AOF (`SEATQ.APPLY`): no decisions; the
/// journal entries are written here from the effects (same IDs, same fields, so every copy's
/// journal is identical), and the command itself is propagated verbatim to this node's own
/// AOF and replicas. An effect that does not fit stops the list there (each one before it
/// applied whole) and answers an error.
pub fn replay(ctx: &Ctx, name: RawString, effects: &[Effect]) -> Result<(), SeatqError> {
    let mut txn = Transaction::open(ctx, name)?;
    txn.mode = Mode::Replay;
    let outcome = txn.apply_effects(effects);
    if let Err(e) = &outcome {
        ctx.log_warning(&format!(
            "seatq: {APPLY_COMMAND} for {} stopped: {}",
            printable(txn.key),
            e.message()
        ));
    }
    outcome
}

/// Replaces the whole event (the AOF rewrite's snapshot form).
pub fn restore_snapshot(ctx: &Ctx, name: RawString, event: Event) -> Result<(), SeatqError> {
    let mut txn = Transaction::open(ctx, name)?;
    txn.mode = Mode::Replay;
    metrics::event_stored(&event);
    txn.handle.set_value(&EVENT_TYPE, Box::new(event));
    txn.applied = 1;
    txn.notifications.push(c"queue.restored");
    Ok(())
}

/// The keyspace event of an effect (class `d`): its name, under `queue.` or `seat.`.
fn notification(effect: &Effect) -> &'static CStr {
    match effect {
        Effect::Created { .. } => c"queue.created",
        Effect::Configured(_) => c"queue.configured",
        Effect::Joined { .. } => c"queue.joined",
        Effect::Touched { .. } => c"queue.touched",
        Effect::Left { .. } => c"queue.left",
        Effect::Expired { .. } => c"queue.expired",
        Effect::Dequeued { .. } => c"queue.dequeued",
        Effect::Remembered(_) => c"queue.remembered",
        Effect::Purged { .. } => c"queue.purged",
        Effect::Compacted { .. } => c"queue.compacted",
        Effect::Opened { .. } => c"queue.opened",
        Effect::Paused { .. } => c"queue.paused",
        Effect::Resumed { .. } => c"queue.resumed",
        Effect::Closed { .. } => c"queue.closed",
        Effect::Reopened { .. } => c"queue.reopened",
        Effect::Admitted { .. } => c"queue.admitted",
        Effect::Claimed { .. } => c"queue.claimed",
        Effect::Renewed { .. } => c"queue.renewed",
        Effect::SessionEnded { .. } => c"queue.session-ended",
        Effect::SeatsAdded { .. } => c"seat.seats-added",
        Effect::StockAdded { .. } => c"seat.stock-added",
        Effect::Held { .. } => c"seat.held",
        Effect::Released { .. } => c"seat.released",
        Effect::Sold { .. } => c"seat.sold",
        Effect::HoldExpired { .. } => c"seat.hold-expired",
    }
}
