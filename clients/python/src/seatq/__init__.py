"""seatq's Python client: the QUEUE.* / SEAT.* commands of the seatq Redis/Valkey module with
typed results (dataclasses) and one exception class per error code, sync (:class:`Seatq`) and
asyncio (:class:`seatq.asyncio.AsyncSeatq`), standalone or Redis Cluster, RESP2 or RESP3, and
the waiting loop done once (:meth:`Seatq.wait_for_pass`). Sharded events (``seatq-coordinator
create``) through :meth:`Seatq.sharded`, which routes each user to their shard
(:func:`shard_of`).

Passes can be verified offline with :func:`seatq.passes.verify_pass` (PyJWT); the Prometheus
exporter is :mod:`seatq.exporter` (the ``seatq-exporter`` command).
"""

from . import errors as _errors
from ._sharded import ShardMap, shard_of
from .client import Seatq, ShardedEvent
from .errors import (
    ClientError,
    Closed,
    CommandError,
    Duplicate,
    HoldExpired,
    JournalUnavailable,
    LimitExceeded,
    NoSuchEvent,
    NoSuchSeat,
    NoSuchTicket,
    NotHeld,
    NotOpen,
    NotOwner,
    NotReady,
    NotSharded,
    PassInvalid,
    PassRequired,
    SeatqError,
    SeatUnavailable,
    SoldOut,
    TicketEnded,
    TryAgain,
    WaitCancelled,
    WaitTimeout,
    WrongShard,
    WrongType,
)
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

__version__ = "0.1.0"

__all__ = [
    "Seatq",
    "ShardedEvent",
    "ShardMap",
    "shard_of",
    "Admission",
    "Confirmation",
    "HoldReceipt",
    "Joined",
    "PassCheck",
    "QueuedTicket",
    "QueueInfo",
    "QueueRange",
    "Renewal",
    "SeatInfo",
    "SeatStatus",
    "TicketStatus",
]
# The error classes, as errors.py lists them (its helper functions and tables stay there).
__all__ += [
    n
    for n in _errors.__all__
    if isinstance(getattr(_errors, n), type) and issubclass(getattr(_errors, n), Exception)
]
