"""The asyncio client: the same commands and waiting loop as :class:`seatq.Seatq`, awaited, on
``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster

from . import _commands as c
from ._sharded import ShardedBase, ShardMap, meta_key, on_primary, on_replica, read_meta
from .client import TRYAGAIN_PAUSE
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

__all__ = ["AsyncSeatq", "AsyncShardedEvent"]


class AsyncSeatq:
    """seatq's commands on ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``.

    >>> sq = AsyncSeatq.from_url("redis://localhost:6379/0", protocol=3)
    >>> admission = await sq.wait_for_pass("sale:2026", "user-42")
    """

    def __init__(self, client: Union[aioredis.Redis, RedisCluster]) -> None:
        self.redis = client

    @classmethod
    def from_url(
        cls, url: str, *, cluster: bool = False, protocol: int = 2, **kwargs: Any
    ) -> "AsyncSeatq":
        if protocol != 2:  # redis-py 4 has RESP2 only and no `protocol` option
            kwargs["protocol"] = protocol
        if cluster:
            return cls(RedisCluster.from_url(url, **kwargs))
        return cls(aioredis.Redis.from_url(url, **kwargs))

    async def close(self) -> None:
        closer = getattr(self.redis, "aclose", None) or self.redis.close
        await closer()

    async def __aenter__(self) -> "AsyncSeatq":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _run(self, call: c.Call, **options: Any) -> Any:
        args, parse = call
        try:
            reply = await self.redis.execute_command(*args, **options)
        except redis.exceptions.ResponseError as e:
            raise from_reply(e) from None
        return parse(reply)

    async def sharded(self, event: str) -> "AsyncShardedEvent":
        """The sharded event ``event``, its meta record read once (see :meth:`seatq.Seatq.sharded`)."""
        return AsyncShardedEvent(self, await _read_map(self, event))

    # --- the waiting line ------------------------------------------------------------------

    async def enqueue(
        self,
        event: Arg,
        user: Arg,
        *,
        idempotency: Optional[Arg] = None,
        data: Optional[Mapping[Arg, Arg]] = None,
    ) -> Joined:
        return await self._run(c.enqueue(event, user, idempotency, data))

    async def status(
        self, event: Arg, ticket: Optional[Arg] = None, *, user: Optional[Arg] = None
    ) -> TicketStatus:
        return await self._run(c.status(event, ticket, user))

    async def admit(
        self, event: Arg, ticket: Optional[Arg] = None, *, user: Optional[Arg] = None
    ) -> Admission:
        return await self._run(c.admit(event, ticket, user))

    async def leave(
        self, event: Arg, ticket: Optional[Arg] = None, *, user: Optional[Arg] = None
    ) -> bool:
        return await self._run(c.leave(event, ticket, user))

    async def renew(
        self, event: Arg, ticket: Optional[Arg] = None, *, user: Optional[Arg] = None
    ) -> Renewal:
        return await self._run(c.renew(event, ticket, user))

    async def revoke(
        self, event: Arg, ticket: Optional[Arg] = None, *, user: Optional[Arg] = None
    ) -> bool:
        return await self._run(c.revoke(event, ticket, user))

    async def verify(self, event: Arg, pass_: Arg) -> PassCheck:
        return await self._run(c.verify(event, pass_))

    async def pause(self, event: Arg) -> bool:
        return await self._run(c.phase("QUEUE.PAUSE", event))

    async def resume(self, event: Arg) -> bool:
        return await self._run(c.phase("QUEUE.RESUME", event))

    async def close_line(self, event: Arg) -> bool:
        return await self._run(c.phase("QUEUE.CLOSE", event))

    async def reopen_line(self, event: Arg) -> bool:
        return await self._run(c.phase("QUEUE.REOPEN", event))

    async def dequeue(self, event: Arg, count: int = 1) -> List[QueuedTicket]:
        return await self._run(c.dequeue(event, count))

    async def queue_len(self, event: Arg) -> int:
        return await self._run(c.queue_len(event))

    async def queue_range(self, event: Arg, start: int = 0, count: int = 100) -> QueueRange:
        return await self._run(c.queue_range(event, start, count))

    async def queue_info(self, event: Arg) -> QueueInfo:
        return await self._run(c.queue_info(event))

    async def config_get(self, event: Arg, *names: str) -> Dict[str, int]:
        return await self._run(c.config_get(event, names))

    async def config_set(
        self, event: Arg, settings: Optional[Mapping[str, Any]] = None, **kwargs: Any
    ) -> None:
        return await self._run(c.config_set(event, {**(settings or {}), **kwargs}))

    # --- seats -----------------------------------------------------------------------------

    async def seat_add(self, event: Arg, *seats: Arg) -> int:
        return await self._run(c.seat_add(event, seats))

    async def seat_add_qty(self, event: Arg, qty: int) -> int:
        return await self._run(c.seat_add_qty(event, qty))

    async def hold(
        self,
        event: Arg,
        user: Arg,
        seats: Optional[Sequence[Arg]] = None,
        *,
        qty: Optional[int] = None,
        ttl: Optional[int] = None,
        pass_: Optional[Arg] = None,
    ) -> HoldReceipt:
        return await self._run(c.hold(event, user, seats, qty, ttl, pass_))

    async def release(
        self, event: Arg, user: Arg, seats: Optional[Sequence[Arg]] = None, *, qty: Optional[int] = None
    ) -> int:
        return await self._run(c.release(event, user, seats, qty))

    async def confirm(
        self, event: Arg, user: Arg, seats: Optional[Sequence[Arg]] = None, *, qty: Optional[int] = None
    ) -> Confirmation:
        return await self._run(c.confirm(event, user, seats, qty))

    async def seat_status(self, event: Arg, *seats: Arg) -> List[SeatStatus]:
        return await self._run(c.seat_status(event, seats))

    async def seat_info(self, event: Arg) -> SeatInfo:
        return await self._run(c.seat_info(event))

    # --- the waiting loop ------------------------------------------------------------------

    async def wait_for_pass(
        self,
        event: Arg,
        user: Arg,
        *,
        idempotency: Optional[Arg] = None,
        data: Optional[Mapping[Arg, Arg]] = None,
        cancel: Optional[asyncio.Event] = None,
        timeout: Optional[float] = None,
        leave_on_cancel: bool = True,
        on_status: Optional[Callable[[TicketStatus], None]] = None,
    ) -> Admission:
        """Joins, polls QUEUE.STATUS every ``retry_after_ms`` (unless the join was admitted at
        once), claims with QUEUE.ADMIT once admitted, returns the pass (see
        :meth:`seatq.Seatq.wait_for_pass`).

        Cancelling the task, setting ``cancel`` or reaching ``timeout`` leaves the line (unless
        ``leave_on_cancel`` is False); the task's ``CancelledError`` is re-raised,
        ``cancel`` / ``timeout`` raise :class:`WaitCancelled` / :class:`WaitTimeout`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            joined = await self.enqueue(event, user, idempotency=idempotency, data=data)
        except Duplicate as e:
            if e.ticket is None:
                raise
            ticket, admitted = e.ticket, False
        else:
            ticket, admitted = joined.ticket, joined.admitted
        try:
            if admitted:
                try:
                    return replace(await self.admit(event, ticket), ticket=ticket)
                except (NotReady, TryAgain):
                    pass  # poll as below
            while True:
                if cancel is not None and cancel.is_set():
                    raise WaitCancelled("cancelled")
                step = await self._step(event, ticket, on_status)
                if isinstance(step, Admission):
                    return step
                await _sleep(step, cancel, deadline)
        except WaitCancelled as stopped:
            stopped.ticket = ticket
            if leave_on_cancel:
                stopped.left = await self._leave_quietly(event, ticket)
            raise
        except asyncio.CancelledError:
            if leave_on_cancel:
                # The task is being cancelled: leave in a task of its own, which the
                # cancellation does not interrupt.
                await asyncio.shield(asyncio.ensure_future(self._leave_quietly(event, ticket)))
            raise

    async def _leave_quietly(self, event: Arg, ticket: str) -> bool:
        try:
            return await self.leave(event, ticket)
        except redis.exceptions.RedisError:
            return False

    async def _step(
        self, event: Arg, ticket: str, on_status: Optional[Callable[[TicketStatus], None]]
    ) -> Union[Admission, float]:
        try:
            st = await self.status(event, ticket)
            if on_status is not None:
                on_status(st)
            if st.state == "admitted":
                return replace(await self.admit(event, ticket), ticket=ticket)
            if st.state != "waiting":
                raise TicketEnded(f"TICKET_ENDED {st.state}")
            return st.retry_after_ms / 1000
        except NotReady as e:
            return e.retry_after_ms / 1000
        except TryAgain:
            return TRYAGAIN_PAUSE


class AsyncShardedEvent(ShardedBase):
    """A sharded event's commands, awaited: the user's QUEUE.* commands on the user's line
    shard, the SEAT.* commands on the inventory (see :class:`seatq.ShardedEvent`). Made by
    :meth:`AsyncSeatq.sharded`."""

    def __init__(self, sq: AsyncSeatq, shard_map: ShardMap) -> None:
        self.sq = sq
        self.map = shard_map

    async def refresh(self) -> ShardMap:
        self.map = await _read_map(self.sq, self.event)
        return self.map

    # --- the user's line shard -------------------------------------------------------------

    async def enqueue(
        self, user: Arg, *, idempotency: Optional[Arg] = None, data: Optional[Mapping[Arg, Arg]] = None
    ) -> Joined:
        return await self.sq._run(self.map.enqueue(user, idempotency, data))

    async def status(self, user: Arg, *, from_replica: bool = False) -> TicketStatus:
        """QUEUE.STATUS on the user's shard: its primary, or a replica with ``from_replica``
        (falling back to the primary; see :meth:`seatq.ShardedEvent.status`)."""
        call = self.map.status(user)
        replica = on_replica(self.sq.redis, self.key_for(user)) if from_replica else None
        if replica is not None:
            try:
                return await self.sq._run(call, **replica)
            except redis.exceptions.RedisError:
                pass  # the primary answers
        return await self.sq._run(call)

    async def admit(self, user: Arg) -> Admission:
        return await self.sq._run(self.map.admit(user))

    async def renew(self, user: Arg) -> Renewal:
        return await self.sq._run(self.map.renew(user))

    async def leave(self, user: Arg) -> bool:
        return await self.sq._run(self.map.leave(user))

    async def revoke(self, user: Arg) -> bool:
        return await self.sq._run(self.map.revoke(user))

    async def verify(self, user: Arg, pass_: Arg) -> PassCheck:
        return await self.sq._run(self.map.verify(user, pass_))

    async def wait_for_pass(self, user: Arg, **options: Any) -> Admission:
        """:meth:`AsyncSeatq.wait_for_pass` on the user's shard; the same options."""
        return await self.sq.wait_for_pass(self.key_for(user), user, **options)

    # --- the inventory ---------------------------------------------------------------------

    async def seat_add(self, *seats: Arg) -> int:
        return await self.sq._run(self.map.seat_add(seats))

    async def seat_add_qty(self, qty: int) -> int:
        return await self.sq._run(self.map.seat_add_qty(qty))

    async def hold(
        self,
        user: Arg,
        seats: Optional[Sequence[Arg]] = None,
        *,
        qty: Optional[int] = None,
        ttl: Optional[int] = None,
        pass_: Optional[Arg] = None,
    ) -> HoldReceipt:
        return await self.sq._run(self.map.hold(user, seats, qty, ttl, pass_))

    async def release(
        self, user: Arg, seats: Optional[Sequence[Arg]] = None, *, qty: Optional[int] = None
    ) -> int:
        return await self.sq._run(self.map.release(user, seats, qty))

    async def confirm(
        self, user: Arg, seats: Optional[Sequence[Arg]] = None, *, qty: Optional[int] = None
    ) -> Confirmation:
        return await self.sq._run(self.map.confirm(user, seats, qty))

    async def seat_status(self, *seats: Arg) -> List[SeatStatus]:
        return await self.sq._run(self.map.seat_status(seats))

    async def seat_info(self) -> SeatInfo:
        return await self.sq._run(self.map.seat_info())


async def _read_map(sq: AsyncSeatq, event: str) -> ShardMap:
    """The meta record, read on its primary, and the keys checked against it."""
    await sq.redis.initialize()  # a cluster client learns the slot map (on_primary reads it)
    shard_map = await sq._run(read_meta(event), **on_primary(sq.redis, meta_key(event)))
    for check in shard_map.checks():
        await sq._run(check)
    return shard_map


async def _sleep(seconds: float, cancel: Optional[asyncio.Event], deadline: Optional[float]) -> None:
    timed_out = False
    if deadline is not None:
        left = deadline - time.monotonic()
        if left < seconds:
            seconds, timed_out = max(left, 0.0), True
    if cancel is not None:
        try:
            await asyncio.wait_for(cancel.wait(), seconds)
        except asyncio.TimeoutError:
            pass
        else:
            raise WaitCancelled("cancelled")
    else:
        await asyncio.sleep(seconds)
    if timed_out:
        raise WaitTimeout("timed out waiting for admission")
