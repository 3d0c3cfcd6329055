"""The waiting loop, sync and asyncio: join, poll STATUS as retry_after_ms says, claim with
ADMIT, return the pass; cancellable; never loses the ticket to its heartbeat or the claim window."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List

import pytest

from seatq import Admission, Seatq, TicketEnded, TicketStatus, WaitCancelled, WaitTimeout
from seatq.asyncio import AsyncSeatq

from helpers import capacity_one, eventually


def test_a_join_admitted_at_once_is_claimed_without_polling(sq: Seatq, event: str) -> None:
    seen: List[TicketStatus] = []
    adm = sq.wait_for_pass(event, "first", timeout=5, on_status=seen.append)
    assert adm.pass_ and not adm.existing and adm.ticket
    assert seen == [], "the join answered admitted: no STATUS poll was needed"
    assert sq.status(event, adm.ticket).claimed is True


def test_wait_for_pass_in_line_order(url: str, protocol: int, event: str) -> None:
    sq = Seatq.from_url(url, protocol=protocol)
    sq.config_set(event, rate=4, burst=1)
    users = [f"w{i}" for i in range(4)]
    seen: List[TicketStatus] = []

    def wait(user: str) -> Admission:
        client = Seatq.from_url(url, protocol=protocol)
        try:
            return client.wait_for_pass(event, user, timeout=20, on_status=seen.append)
        finally:
            client.close()

    with ThreadPoolExecutor(len(users)) as pool:
        admissions = list(pool.map(wait, users))
    for user, adm in zip(users, admissions):
        assert adm.pass_ and adm.ticket and not adm.existing
        assert sq.verify(event, adm.pass_).user == user
    info = sq.queue_info(event)
    assert info.claimed_total == 4 and info.waiting == 0
    assert any(s.waiting and s.position >= 1 for s in seen)
    # The second call of the same user returns the same session, already claimed.
    again = sq.wait_for_pass(event, "w0", timeout=5)
    assert again.pass_ and again.ticket == admissions[0].ticket
    sq.close()


def test_wait_keeps_the_heartbeat_and_claims_within_the_window(sq: Seatq, event: str) -> None:
    """HEARTBEAT 2 s, CLAIM-TTL 1 s: a user waiting 3 s behind a session keeps the ticket alive
    by polling as told, and claims once called (no no_show)."""
    holder = capacity_one(sq, event, heartbeat=2000, claim_ttl=1000)
    polls: List[TicketStatus] = []
    result: List[Admission] = []
    waiter = threading.Thread(
        target=lambda: result.append(sq.wait_for_pass(event, "patient", timeout=20, on_status=polls.append))
    )
    waiter.start()
    time.sleep(3)
    assert not result, "admitted while CAPACITY was taken"
    sq.leave(event, holder)  # frees the session: the server calls the next ticket
    waiter.join(15)
    assert result and result[0].pass_
    assert all(p.retry_after_ms <= 500 for p in polls if p.waiting)  # <= CLAIM-TTL / 2
    assert sq.status(event, result[0].ticket).claimed is True
    info = sq.queue_info(event)
    assert info.expired_total == 0


def test_cancel_leaves_the_line(sq: Seatq, event: str) -> None:
    capacity_one(sq, event)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(WaitCancelled) as e:
        sq.wait_for_pass(event, "quitter", cancel=cancel)
    assert type(e.value) is WaitCancelled and e.value.left
    assert sq.status(event, e.value.ticket).state == "left"
    assert sq.queue_len(event) == 0


def test_timeout(sq: Seatq, event: str) -> None:
    capacity_one(sq, event)
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as e:
        sq.wait_for_pass(event, "late", timeout=0.5, leave_on_cancel=False)
    assert 0.4 < time.monotonic() - started < 5
    assert not e.value.left and sq.status(event, e.value.ticket).waiting


def test_ended_ticket_raises(sq: Seatq, event: str) -> None:
    # CLAIM-TTL 1 s: a waiting client polls at least every 0.5 s, so it sees the end at once.
    capacity_one(sq, event, claim_ttl=1000)
    t = sq.enqueue(event, "gone").ticket
    revoke_later = threading.Timer(0.3, lambda: sq.dequeue(event))
    revoke_later.start()
    with pytest.raises(TicketEnded) as e:
        # Joining again returns the same ticket; a worker dequeues it meanwhile.
        sq.wait_for_pass(event, "gone", timeout=10)
    assert e.value.state == "dequeued"
    assert sq.status(event, t).state == "dequeued"


def test_async_wait_and_commands(url: str, protocol: int, event: str) -> None:
    async def main() -> None:
        sq = AsyncSeatq.from_url(url, protocol=protocol)
        await sq.config_set(event, rate=5, burst=1)
        await sq.seat_add(event, "S1", "S2", "S3")
        admissions = await asyncio.gather(*(sq.wait_for_pass(event, f"a{i}", timeout=20) for i in range(3)))
        for i, adm in enumerate(admissions):
            receipt = await sq.hold(event, f"a{i}", [f"S{i + 1}"], pass_=adm.pass_)
            assert receipt.seats == 1
            assert (await sq.confirm(event, f"a{i}", [f"S{i + 1}"])).sold == 1
        info = await sq.seat_info(event)
        assert info.sold == 3 and info.available == 0
        assert (await sq.queue_info(event)).claimed_total == 3
        await sq.close()

    asyncio.run(main())


def test_async_cancellation_leaves_the_line(url: str, protocol: int, event: str) -> None:
    sync = Seatq.from_url(url, protocol=protocol)
    capacity_one(sync, event)

    async def main() -> None:
        sq = AsyncSeatq.from_url(url, protocol=protocol)
        task = asyncio.ensure_future(sq.wait_for_pass(event, "async-quitter"))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.2, stop.set)
        with pytest.raises(WaitCancelled) as e:
            await sq.wait_for_pass(event, "async-quitter-2", cancel=stop)
        assert e.value.left
        await sq.close()

    asyncio.run(main())
    # Both left the line: the cancelled task through a shielded LEAVE.
    eventually(lambda: sync.queue_info(event).left_total == 2, 5)
    assert sync.queue_len(event) == 0
    sync.close()
