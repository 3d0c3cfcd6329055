"""The synchronous client: every QUEUE.* / SEAT.* command with typed results and exceptions,
and the waiting loop (:meth:`Seatq.wait_for_pass`)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import redis
from redis.cluster import RedisCluster

from . import _commands as c
from ._sharded import ShardedBase, ShardMap, meta_key, on_primary, on_replica, read_meta
from .errors import Duplicate, NotReady, TicketEnded, TryAgain, WaitCancelled, WaitTimeout, from_reply
from .types import (
    Admission,
    Confirmation,
    HoldReceipt,
    Joined,
    PassCheck,
    QueuedTicket,
    QueueInfo,
    QueueRange,
    Renewal,
    SeatInfo,
    SeatStatus,
    TicketStatus,
)

Arg = Union[str, bytes, int]

#: Pause after TRYAGAIN in the waiting loop (a slot migration in progress), seconds.
TRYAGAIN_PAUSE = 0.1


class Seatq:
    """seatq's commands on a redis-py client: ``redis.Redis`` (RESP2 or RESP3) or
    ``redis.cluster.RedisCluster`` (each command goes to the node serving its event key).

    >>> sq = Seatq.from_url("redis://localhost:6379/0", protocol=3)
    >>> admission = sq.wait_for_pass("sale:2026", "user-42")
    >>> sq.hold("sale:2026", "user-42", ["A1", "A2"], pass_=admission.pass_)
    """

    def __init__(self, client: Union["redis.Redis", RedisCluster]) -> None:
        self.redis = client

    @classmethod
    def from_url(
        cls, url: str, *, cluster: bool = False, protocol: int = 2, **kwargs: Any
    ) -> "Seatq":
        """A client for ``url`` (``redis://[:password@]host:port/db``); ``cluster=True`` for a
        Redis Cluster (``url`` names any node); ``protocol=3`` for RESP3."""
        if protocol != 2:  # redis-py 4 has RESP2 only and no `protocol` option
            kwargs["protocol"] = protocol
        if cluster:
            return cls(RedisCluster.from_url(url, **kwargs))
        return cls(redis.Redis.from_url(url, **kwargs))

    def close(self) -> None:
        """Closes the connections (``Seatq`` is also a context manager)."""
        self.redis.close()

    def __enter__(self) -> "Seatq":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _run(self, call: c.Call, **options: Any) -> Any:
        """Sends a command; ``options`` go to ``execute_command`` (a cluster's ``target_nodes``)."""
        args, parse = call
        try:
            reply = self.redis.execute_command(*args, **options)
        except redis.exceptions.ResponseError as e:
            raise from_reply(e) from None
        return parse(reply)

    def sharded(self, event: str) -> "ShardedEvent":
        """The sharded event ``event`` (``seatq-coordinator create``): its meta record, read
        once, routes each user's commands to the user's line shard and the seats' to the
        inventory (:class:`ShardedEvent`)."""
        return ShardedEvent(self, _read_map(self, event))

    # --- the waiting line ------------------------------------------------------------------

    def enqueue(
        self,
        event: Arg,
        user: Arg,
        *,
        idempotency: Optional[Arg] = None,
        data: Optional[Mapping[Arg, Arg]] = None,
    ) -> Joined:
        """QUEUE.ENQUEUE: joins the line (a second join of the user returns the same ticket).
        ``state`` is ``admitted`` when the join was called at once (or the user has a session)."""
        return self._run(c.enqueue(event, user, idempotency, data))

    def status(
        self, event: Arg, ticket: Optional[Arg] = None, *, user: Optional[Arg] = None
    ) -> TicketStatus:
        """QUEUE.STATUS by ticket or ``user=``; renews the heartbeat. ``NoSuchTicket`` for an
        unknown ticket or user, on a missing event too."""
        return self._run(c.status(event, ticket, user))

    def admit(
        self, event: Arg, ticket: Optional[Arg] = None, *, user: Optional[Arg] = None
    ) -> Admission:
        """QUEUE.ADMIT: claims the session of an admitted ticket (``NotReady`` while waiting)."""
        return self._run(c.admit(event, ticket, user))

    def leave(self, event: Arg, ticket: Optional[Arg] = None, *, user: Optional[Arg] = None) -> bool:
        """QUEUE.LEAVE: True if a waiting ticket left or a live session ended."""
        return self._run(c.leave(event, ticket, user))

    def renew(
        self, event: Arg, ticket: Optional[Arg] = None, *, user: Optional[Arg] = None
    ) -> Renewal:
        """QUEUE.RENEW: a new pass, PASS-TTL from now rounded up to a whole second (at most
        SESSION-MAX after the call); ``NotReady`` while the ticket waits."""
        return self._run(c.renew(event, ticket, user))

    def revoke(
        self, event: Arg, ticket: Optional[Arg] = None, *, user: Optional[Arg] = None
    ) -> bool:
        """QUEUE.REVOKE: True if a live session ended."""
        return self._run(c.revoke(event, ticket, user))

    def verify(self, event: Arg, pass_: Arg) -> PassCheck:
        """QUEUE.VERIFY: the server's view of a pass (valid, expired, revoked, invalid; invalid
        for a missing event)."""
        return self._run(c.verify(event, pass_))

    def pause(self, event: Arg) -> bool:
        return self._run(c.phase("QUEUE.PAUSE", event))

    def resume(self, event: Arg) -> bool:
        return self._run(c.phase("QUEUE.RESUME", event))

    def close_line(self, event: Arg) -> bool:
        """QUEUE.CLOSE (named so as not to shadow :meth:`close`)."""
        return self._run(c.phase("QUEUE.CLOSE", event))

    def reopen_line(self, event: Arg) -> bool:
        """QUEUE.REOPEN."""
        return self._run(c.phase("QUEUE.REOPEN", event))

    def dequeue(self, event: Arg, count: int = 1) -> List[QueuedTicket]:
        """QUEUE.DEQUEUE: up to ``count`` tickets from the head, state ``dequeued`` (``NotOpen``
        before OPENS-AT)."""
        return self._run(c.dequeue(event, count))

    def queue_len(self, event: Arg) -> int:
        return self._run(c.queue_len(event))

    def queue_range(self, event: Arg, start: int = 0, count: int = 100) -> QueueRange:
        """QUEUE.RANGE: waiting tickets in line order (``NotOpen`` before OPENS-AT)."""
        return self._run(c.queue_range(event, start, count))

    def queue_info(self, event: Arg) -> QueueInfo:
        return self._run(c.queue_info(event))

    def config_get(self, event: Arg, *names: str) -> Dict[str, int]:
        """QUEUE.CONFIG GET: settings by lower-case name, e.g. ``{"rate": 100, "claim-ttl":
        30000}`` (all of them when none is named; names as ``rate``, ``CLAIM-TTL`` or
        ``claim_ttl``)."""
        return self._run(c.config_get(event, names))

    def config_set(
        self, event: Arg, settings: Optional[Mapping[str, Any]] = None, **kwargs: Any
    ) -> None:
        """QUEUE.CONFIG SET: ``config_set(ev, {"CLAIM-TTL": 5000})`` or
        ``config_set(ev, claim_ttl=5000, require_pass=False)``."""
        return self._run(c.config_set(event, {**(settings or {}), **kwargs}))

    # --- seats -----------------------------------------------------------------------------

    def seat_add(self, event: Arg, *seats: Arg) -> int:
        """SEAT.ADD named seats: how many were new."""
        return self._run(c.seat_add(event, seats))

    def seat_add_qty(self, event: Arg, qty: int) -> int:
        """SEAT.ADD QTY: the new general-admission total."""
        return self._run(c.seat_add_qty(event, qty))

    def hold(
        self,
        event: Arg,
        user: Arg,
        seats: Optional[Sequence[Arg]] = None,
        *,
        qty: Optional[int] = None,
        ttl: Optional[int] = None,
        pass_: Optional[Arg] = None,
    ) -> HoldReceipt:
        """SEAT.HOLD seats (all or nothing) or ``qty=`` units; ``ttl`` in seconds; ``pass_``
        the user's pass when the event requires one."""
        return self._run(c.hold(event, user, seats, qty, ttl, pass_))

    def release(
        self, event: Arg, user: Arg, seats: Optional[Sequence[Arg]] = None, *, qty: Optional[int] = None
    ) -> int:
        """SEAT.RELEASE: the units available afterwards."""
        return self._run(c.release(event, user, seats, qty))

    def confirm(
        self, event: Arg, user: Arg, seats: Optional[Sequence[Arg]] = None, *, qty: Optional[int] = None
    ) -> Confirmation:
        """SEAT.CONFIRM: held units become sold."""
        return self._run(c.confirm(event, user, seats, qty))

    def seat_status(self, event: Arg, *seats: Arg) -> List[SeatStatus]:
        return self._run(c.seat_status(event, seats))

    def seat_info(self, event: Arg) -> SeatInfo:
        return self._run(c.seat_info(event))

    # --- the waiting loop ------------------------------------------------------------------

    def wait_for_pass(
        self,
        event: Arg,
        user: Arg,
        *,
        idempotency: Optional[Arg] = None,
        data: Optional[Mapping[Arg, Arg]] = None,
        cancel: Optional[threading.Event] = None,
        timeout: Optional[float] = None,
        leave_on_cancel: bool = True,
        on_status: Optional[Callable[[TicketStatus], None]] = None,
    ) -> Admission:
        """Joins the line, waits for the server to call the ticket, claims it, returns the pass.

        A join the server calls at once (its reply says ``admitted``) is claimed right away.
        Otherwise it polls QUEUE.STATUS as the server says (``retry_after_ms``: it keeps the
        ticket's heartbeat alive and is never longer than half the claim window, so a call is
        not missed), and claims with QUEUE.ADMIT once ``state`` is ``admitted``. A user who
        already has a ticket or a live session gets it back (the join is idempotent per user).

        ``cancel`` (set from another thread) or ``timeout`` (seconds) stop the wait with
        :class:`WaitCancelled` / :class:`WaitTimeout`; the ticket then leaves the line unless
        ``leave_on_cancel`` is False. An ended ticket (expired, no_show, revoked, ...) raises
        :class:`TicketEnded`; ``on_status`` sees every STATUS reply (progress display).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        ticket, admitted = _joined(lambda: self.enqueue(event, user, idempotency=idempotency, data=data))
        try:
            if admitted:
                try:
                    return replace(self.admit(event, ticket), ticket=ticket)
                except (NotReady, TryAgain):
                    pass  # poll as below
            while True:
                if cancel is not None and cancel.is_set():
                    raise WaitCancelled("cancelled")
                delay = self._step(event, ticket, on_status)
                if isinstance(delay, Admission):
                    return delay
                _sleep(delay, cancel, deadline)
        except WaitCancelled as stopped:
            stopped.ticket = ticket
            if leave_on_cancel:
                try:
                    stopped.left = self.leave(event, ticket)
                except redis.exceptions.RedisError:
                    pass
            raise

    def _step(
        self, event: Arg, ticket: str, on_status: Optional[Callable[[TicketStatus], None]]
    ) -> Union[Admission, float]:
        """One poll: the admission, or how long to wait before the next poll (seconds)."""
        try:
            st = self.status(event, ticket)
            if on_status is not None:
                on_status(st)
            if st.state == "admitted":
                return replace(self.admit(event, ticket), ticket=ticket)
            if st.state != "waiting":
                raise TicketEnded(f"TICKET_ENDED {st.state}")
            return st.retry_after_ms / 1000
        except NotReady as e:  # not expected after "admitted", but its retry_after_ms is honest
            return e.retry_after_ms / 1000
        except TryAgain:
            return TRYAGAIN_PAUSE


class ShardedEvent(ShardedBase):
    """A sharded event (docs/sharding.md): each user's QUEUE.* commands go to the line shard
    the user belongs to (:func:`seatq.shard_of`), the SEAT.* commands to the inventory key, which
    accepts the pass the user's shard issued. Made by :meth:`Seatq.sharded`, which reads the
    meta record once; :meth:`refresh` reads it again.

    Operator commands over the whole event (pause, resume, close, reopen, the settings) are
    ``seatq-coordinator each`` and ``seatq-coordinator config``; a shard's own counters are the
    :class:`Seatq` methods on its key (``shards[i]``).

    >>> sale = sq.sharded("sale")
    >>> admission = sale.wait_for_pass("user-42")
    >>> sale.hold("user-42", ["A1"], pass_=admission.pass_)
    """

    def __init__(self, sq: Seatq, shard_map: ShardMap) -> None:
        self.sq = sq
        self.map = shard_map

    def refresh(self) -> ShardMap:
        """Reads the meta record again (and checks the keys against it)."""
        self.map = _read_map(self.sq, self.event)
        return self.map

    # --- the user's line shard -------------------------------------------------------------

    def enqueue(
        self, user: Arg, *, idempotency: Optional[Arg] = None, data: Optional[Mapping[Arg, Arg]] = None
    ) -> Joined:
        return self.sq._run(self.map.enqueue(user, idempotency, data))

    def status(self, user: Arg, *, from_replica: bool = False) -> TicketStatus:
        """QUEUE.STATUS of the user on their shard's primary, which renews the heartbeat.

        ``from_replica=True`` asks a replica of the shard's slot instead, on a ``RedisCluster``
        whose connections send READONLY (made with ``read_from_replicas=True`` or a
        ``load_balancing_strategy``; ``ValueError`` with any other cluster client). A replica
        renews nothing: poll the user on the primary too, at least every HEARTBEAT/2. The
        primary answers instead when the slot has no replica (or the client is not a cluster)
        and when the replica answers an error: ``NO_SUCH_TICKET`` for a join it has not received
        yet, a connection error (a replica that no longer serves the slot answers ``MOVED``,
        which redis-py follows to the primary)."""
        call = self.map.status(user)
        replica = on_replica(self.sq.redis, self.key_for(user)) if from_replica else None
        if replica is not None:
            try:
                return self.sq._run(call, **replica)
            except redis.exceptions.RedisError:
                pass  # the primary answers
        return self.sq._run(call)

    def admit(self, user: Arg) -> Admission:
        return self.sq._run(self.map.admit(user))

    def renew(self, user: Arg) -> Renewal:
        return self.sq._run(self.map.renew(user))

    def leave(self, user: Arg) -> bool:
        return self.sq._run(self.map.leave(user))

    def revoke(self, user: Arg) -> bool:
        return self.sq._run(self.map.revoke(user))

    def verify(self, user: Arg, pass_: Arg) -> PassCheck:
        """QUEUE.VERIFY on the shard that issued the user's pass (it sees revocations, which
        the inventory does not)."""
        return self.sq._run(self.map.verify(user, pass_))

    def wait_for_pass(self, user: Arg, **options: Any) -> Admission:
        """:meth:`Seatq.wait_for_pass` on the user's shard (it polls the primary, which keeps
        the ticket alive); the same options."""
        return self.sq.wait_for_pass(self.key_for(user), user, **options)

    # --- the inventory ---------------------------------------------------------------------

    def seat_add(self, *seats: Arg) -> int:
        return self.sq._run(self.map.seat_add(seats))

    def seat_add_qty(self, qty: int) -> int:
        return self.sq._run(self.map.seat_add_qty(qty))

    def hold(
        self,
        user: Arg,
        seats: Optional[Sequence[Arg]] = None,
        *,
        qty: Optional[int] = None,
        ttl: Optional[int] = None,
        pass_: Optional[Arg] = None,
    ) -> HoldReceipt:
        """SEAT.HOLD on the inventory, with the pass the user's shard issued."""
        return self.sq._run(self.map.hold(user, seats, qty, ttl, pass_))

    def release(
        self, user: Arg, seats: Optional[Sequence[Arg]] = None, *, qty: Optional[int] = None
    ) -> int:
        return self.sq._run(self.map.release(user, seats, qty))

    def confirm(
        self, user: Arg, seats: Optional[Sequence[Arg]] = None, *, qty: Optional[int] = None
    ) -> Confirmation:
        return self.sq._run(self.map.confirm(user, seats, qty))

    def seat_status(self, *seats: Arg) -> List[SeatStatus]:
        return self.sq._run(self.map.seat_status(seats))

    def seat_info(self) -> SeatInfo:
        return self.sq._run(self.map.seat_info())


def _read_map(sq: Seatq, event: str) -> ShardMap:
    """The meta record, read on its primary, and the keys checked against it."""
    shard_map = sq._run(read_meta(event), **on_primary(sq.redis, meta_key(event)))
    for check in shard_map.checks():
        sq._run(check)
    return shard_map


def _joined(join: Callable[[], Joined]) -> Tuple[str, bool]:
    """The ticket of a join, and whether the join says it is admitted; a reused idempotency key
    of the same user names its ticket (its state then comes from polling)."""
    try:
        joined = join()
    except Duplicate as e:
        if e.ticket is None:  # another user's idempotency key
            raise
        return e.ticket, False
    return joined.ticket, joined.admitted


def _sleep(seconds: float, cancel: Optional[threading.Event], deadline: Optional[float]) -> None:
    """Waits ``seconds``; raises WaitCancelled when ``cancel`` is set meanwhile, WaitTimeout
    (at the deadline) when the deadline comes first."""
    timed_out = False
    if deadline is not None:
        left = deadline - time.monotonic()
        if left < seconds:
            seconds, timed_out = max(left, 0.0), True
    if cancel is not None:
        if cancel.wait(seconds):
            raise WaitCancelled("cancelled")
    elif seconds > 0:
        time.sleep(seconds)
    if timed_out:
        raise WaitTimeout("timed out waiting for admission")
