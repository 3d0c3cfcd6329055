//! Reading and changing events in the keyspace. `commit` is the one write path of the primary:
//! it validates, applies effects, journals them, replicates them and notifies, in that order, so
//! commands and the timer behave identically.

use redis_module::raw;

use crate::arg_list::ArgList;
use crate::error::SeatqError;
use crate::event::{Effect, Event};
use crate::ffi::{bytes_of, Ctx, Key, RawString};
use crate::journal::Journal;
use crate::queue::line::EndState;
use crate::replication::{self, APPLY_COMMAND};
use crate::seats::inventory::Settlement;
use crate::{metrics, timer};

/// Opens an event key for reading: Ok(None) when it does not exist, WRONGTYPE for other types.
pub fn read(ctx: &Ctx, key: RawString) -> Result<(Key, bool), SeatqError> {
    let handle = ctx.open(key, false);
    let exists = handle.event()?.is_some();
    Ok((handle, exists))
}

/// The write path of the command handlers: plans a change on the event stored at `key` (a
/// new event with the module defaults when the key is empty, so a plan that changes nothing
/// creates nothing) and commits the effects it returns.
pub fn plan_commit<T>(
    ctx: &Ctx,
    key: RawString,
    plan: impl FnOnce(&Event) -> Result<(Vec<Effect>, T), SeatqError>,
) -> Result<T, SeatqError> {
    let handle = ctx.open(key, false);
    let fresh;
    let event = match handle.event()? {
        Some(event) => event,
        None => {
            fresh = Event::default();
            &fresh
        }
    };
    let (effects, out) = plan(event)?;
    drop(handle);
    commit(ctx, key, effects)?;
    Ok(out)
}

/// The keyspace event name of an effect (class `d`, module events).
fn notification(effect: &Effect) -> Option<&'static str> {
    Some(match effect {
        Effect::Joined { .. } => "queue.join",
        Effect::Touched { .. } => "queue.heartbeat",
        Effect::Ended {
            state: EndState::Left,
            ..
        } => "queue.leave",
        Effect::Ended {
            state: EndState::Expired,
            ..
        } => "queue.expire",
        Effect::Ended {
            state: EndState::Admitted,
            ..
        } => "queue.dequeue",
        Effect::Remembered { .. } => return None,
        Effect::Purged { .. } => "queue.idempotency-purge",
        Effect::Configured(_) => "queue.config",
        Effect::SeatsAdded { .. } | Effect::StockAdded { .. } => "seat.add",
        Effect::Held { .. } => "seat.hold",
        Effect::Settled {
            how: Settlement::Release,
            ..
        } => "seat.release",
        Effect::Settled {
            how: Settlement::Sale,
            ..
        } => "seat.confirm",
        Effect::HoldExpired { .. } => "seat.expire",
        Effect::Admitted { .. } => "queue.admit",
        Effect::SessionEnded { .. } => "queue.session-end",
        Effect::Opened { .. } => "queue.open",
    })
}

/// Emits each distinct notification once per command, in first-seen order.
fn notify_all(ctx: &Ctx, key: RawString, effects: &[Effect]) {
    let mut sent: Vec<&str> = Vec::new();
    for name in effects.iter().filter_map(notification) {
        if !sent.contains(&name) {
            ctx.notify(raw::REDISMODULE_NOTIFY_MODULE, name, key);
            sent.push(name);
        }
    }
}

/// Stores a new event with the module defaults under an empty key. The first effect replicated
/// for it is a `Configured` carrying every setting, so replicas (whose defaults may differ)
/// create exactly the same event.
fn create(handle: &mut Key, effects: &mut Vec<Effect>) {
    let event = Event::default();
    let settings = crate::config::SETTINGS
        .iter()
        .map(|s| (s.setting, event.config.get(s.setting)))
        .collect();
    effects.insert(0, Effect::Configured(settings));
    handle.set_event(Box::new(event));
}

fn journaled(effect: &Effect) -> bool {
    effect.journal_id().is_some()
}

/// Applies effects decided on the primary: journal, replication and notifications included.
pub fn commit(ctx: &Ctx, key: RawString, mut effects: Vec<Effect>) -> Result<(), SeatqError> {
    if effects.is_empty() {
        return Ok(());
    }
    let key_bytes = bytes_of(key);
    // Validate everything that can fail before the first change.
    let mut handle = ctx.open(key, true);
    let existing_journal = handle.event()?.map(|event| event.config.journal_on());
    let journal_on = existing_journal
        .unwrap_or_else(|| crate::config::EventConfig::from_defaults().journal_on());
    let journal = if journal_on && effects.iter().any(journaled) {
        Some(Journal::open(ctx, key_bytes)?)
    } else {
        None
    };
    if existing_journal.is_none() {
        create(&mut handle, &mut effects);
    }
    timer::register(ctx.selected_db(), key_bytes);
    let event = handle.event_mut()?.expect("exists or was created above");
    let gauges = metrics::before_change(event);
    for effect in &effects {
        let record = event.apply(effect, journal.is_some());
        metrics::count_effect(effect);
        let mut args = ArgList::with_capacity(8, 128);
        args.push(key_bytes);
        replication::encode(effect, &mut args);
        ctx.replicate(APPLY_COMMAND, &args);
        if let (Some(journal), Some(record)) = (&journal, record) {
            journal.append(ctx, &record);
        }
    }
    metrics::event_changed(gauges, event);
    notify_all(ctx, key, &effects);
    Ok(())
}

/// Applies effects received from the primary or the AOF (`SEATQ.APPLY`): no decisions; the
/// journal entry is written here from the effect (same ID, same fields, so every copy's journal
/// is identical), and the command itself is propagated verbatim so a replica's own AOF and
/// sub-replicas get it. One replicated command per change instead of an effect plus an XADD
/// halves the primary's propagation work on every journaled write.
pub fn apply_received(ctx: &Ctx, key: RawString, effect: Effect) -> Result<(), SeatqError> {
    let mut handle = ctx.open(key, true);
    if handle.event()?.is_none() {
        handle.set_event(Box::default());
        timer::register(ctx.selected_db(), bytes_of(key));
    }
    let event = handle.event_mut()?.expect("created above");
    // The primary's journal check passed before it replicated this effect, and the replica holds
    // the same data, so opening the journal here fails only on a diverged copy: then the effect
    // still applies, unjournaled, rather than leave the event behind.
    let journal = (event.config.journal_on() && journaled(&effect))
        .then(|| Journal::open(ctx, bytes_of(key)))
        .and_then(|opened| {
            opened
                .inspect_err(|_| {
                    ctx.log_warning("seatq: a replicated effect could not be journaled")
                })
                .ok()
        });
    let gauges = metrics::before_change(event);
    if let (Some(record), Some(journal)) = (event.apply(&effect, journal.is_some()), &journal) {
        journal.append(ctx, &record);
    }
    metrics::count_effect(&effect);
    metrics::event_changed(gauges, event);
    ctx.replicate_verbatim();
    notify_all(ctx, key, std::slice::from_ref(&effect));
    Ok(())
}

/// Replaces the whole event (AOF rewrite snapshot).
pub fn restore_snapshot(ctx: &Ctx, key: RawString, event: Event) -> Result<(), SeatqError> {
    let mut handle = ctx.open(key, true);
    handle.event()?;
    handle.set_event(Box::new(event));
    timer::register(ctx.selected_db(), bytes_of(key));
    ctx.replicate_verbatim();
    ctx.notify(raw::REDISMODULE_NOTIFY_MODULE, "queue.restore", key);
    Ok(())
}
