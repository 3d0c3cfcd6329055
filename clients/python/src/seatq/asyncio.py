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

__all__ = ["AsyncSeatq"]


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

    async def _run(self, call: c.Call) -> Any:
        args, parse = call
        try:
            reply = await self.redis.execute_command(*args)
        except redis.exceptions.ResponseError as e:
            raise from_reply(e) from None
        return parse(reply)

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
