"""Small helpers shared by the tests."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from seatq import Seatq, TicketStatus

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 10.0, every: float = 0.02) -> T:
    """Calls ``check`` until it returns something truthy; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"condition not met within {timeout}s"
        time.sleep(every)


def wait_state(sq: Seatq, event: str, ticket: str, state: str, timeout: float = 10.0) -> TicketStatus:
    """Polls QUEUE.STATUS until the ticket is in ``state``."""

    def check() -> TicketStatus:
        st = sq.status(event, ticket)
        return st if st.state == state else None  # type: ignore[return-value]

    return eventually(check, timeout)


def capacity_one(sq: Seatq, event: str, **settings: object) -> str:
    """An event admitting one session at a time; its first user (``holder``) is admitted and
    claims, so everyone else waits until the holder's session ends. Returns the holder's ticket."""
    sq.config_set(event, capacity=1, rate=1000, burst=1000, **settings)
    ticket = sq.enqueue(event, "holder").ticket
    wait_state(sq, event, ticket, "admitted")
    sq.admit(event, ticket)
    return ticket
