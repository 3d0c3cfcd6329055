"""seatq's error replies as exceptions, one class per error code, carrying the reply's fields.

Every seatq error reply starts with an upper-case code (``NOT_READY position 3 retry_after_ms
250``). :func:`from_reply` turns a redis-py ``ResponseError`` into the matching class below.
They all derive from :class:`SeatqError`, itself a ``redis.exceptions.ResponseError``, so code
that already catches redis-py's errors keeps working.

Exceptions raised by the client itself, not by the server (:class:`WaitCancelled`,
:class:`WaitTimeout`, :class:`NotSharded`), derive from :class:`ClientError`.
"""

from __future__ import annotations

import re
from typing import Dict, Optional, Type

from redis.exceptions import ResponseError, TryAgainError

__all__ = [
    "SeatqError",
    "CommandError",
    "WrongType",
    "Duplicate",
    "NoSuchTicket",
    "NoSuchEvent",
    "JournalUnavailable",
    "TryAgain",
    "Closed",
    "NotOpen",
    "SeatUnavailable",
    "SoldOut",
    "NoSuchSeat",
    "NotHeld",
    "NotOwner",
    "HoldExpired",
    "LimitExceeded",
    "NotReady",
    "TicketEnded",
    "PassRequired",
    "PassInvalid",
    "ClientError",
    "WaitCancelled",
    "WaitTimeout",
    "NotSharded",
    "ERRORS",
    "from_reply",
    "from_message",
]


class SeatqError(ResponseError):
    """An error reply. ``code`` is its first word, ``detail`` the rest of the line."""

    code = "ERR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        first, _, rest = message.partition(" ")
        self.detail = rest if first == self.code else message
        self._parse()

    def _parse(self) -> None:  # fields of the detail, per class
        pass

    def __str__(self) -> str:
        return self.message


class CommandError(SeatqError):
    """``ERR ...``: wrong arity, syntax, a value out of range (a bug in the caller)."""

    code = "ERR"


class WrongType(SeatqError):
    """``WRONGTYPE``: the key holds something other than a seatq event."""

    code = "WRONGTYPE"


class Duplicate(SeatqError):
    """``DUPLICATE``: the idempotency key was already used.

    ``ticket`` is the caller's own ticket (the key was used by this user), or ``None`` when
    another user used the key.
    """

    code = "DUPLICATE"
    ticket: Optional[str]

    def _parse(self) -> None:
        d = self.detail.strip()
        self.ticket = None if (not d or " " in d) else d


class NoSuchTicket(SeatqError):
    """``NO_SUCH_TICKET``: unknown, mistyped or guessed ticket (or a user with none:
    ``NO_SUCH_TICKET user <user>``), on an event that exists or not (a missing event reads as an
    empty one)."""

    code = "NO_SUCH_TICKET"
    ticket: str

    def _parse(self) -> None:
        self.ticket = self.detail


class NoSuchEvent(SeatqError):
    """``NO_SUCH_EVENT``: QUEUE.INFO / SEAT.INFO on a key that holds no event (the other commands
    read a missing event as an empty one)."""

    code = "NO_SUCH_EVENT"


class JournalUnavailable(SeatqError):
    """``JOURNAL_UNAVAILABLE``: the write could not be journaled and was refused whole."""

    code = "JOURNAL_UNAVAILABLE"


class TryAgain(SeatqError):
    """``TRYAGAIN``: retry shortly (a slot migration, or lapsed holds being returned)."""

    code = "TRYAGAIN"


class Closed(SeatqError):
    """``CLOSED``: the line takes no new joins."""

    code = "CLOSED"


class NotOpen(SeatqError):
    """``NOT_OPEN``: QUEUE.RANGE / QUEUE.DEQUEUE before OPENS-AT (the pre-queue's order is
    secret until the opening)."""

    code = "NOT_OPEN"


class SeatUnavailable(SeatqError):
    """``SEAT_UNAVAILABLE <seat>``: the seat is held or sold."""

    code = "SEAT_UNAVAILABLE"
    seat: str

    def _parse(self) -> None:
        self.seat = self.detail


class SoldOut(SeatqError):
    """``SOLD_OUT [n left]``: not enough stock. ``left`` is the general-admission units left
    (``None`` for named seats)."""

    code = "SOLD_OUT"
    left: Optional[int]

    def _parse(self) -> None:
        m = re.match(r"(\d+) left", self.detail)
        self.left = int(m.group(1)) if m else None


class _Units(SeatqError):
    """Errors naming a seat, or ``QTY n: m held`` for general admission."""

    seat: Optional[str]
    qty: Optional[int]
    held: Optional[int]

    def _parse(self) -> None:
        m = re.fullmatch(r"QTY (\d+): (\d+) held", self.detail)
        if m:
            self.seat, self.qty, self.held = None, int(m.group(1)), int(m.group(2))
        else:
            self.seat, self.qty, self.held = self.detail, None, None


class NoSuchSeat(SeatqError):
    """``NO_SUCH_SEAT <seat>``."""

    code = "NO_SUCH_SEAT"
    seat: str

    def _parse(self) -> None:
        self.seat = self.detail


class NotHeld(_Units):
    """``NOT_HELD <seat>`` or ``NOT_HELD QTY n: m held``."""

    code = "NOT_HELD"


class NotOwner(_Units):
    """``NOT_OWNER <seat>``: another user holds it."""

    code = "NOT_OWNER"


class HoldExpired(_Units):
    """``HOLD_EXPIRED <seat>`` (or ``QTY n: m held``): the hold lapsed before SEAT.CONFIRM."""

    code = "HOLD_EXPIRED"


class LimitExceeded(SeatqError):
    """``LIMIT_EXCEEDED <owned> held or bought, <requested> requested, limit <limit>``."""

    code = "LIMIT_EXCEEDED"
    owned: Optional[int]
    requested: Optional[int]
    limit: Optional[int]

    def _parse(self) -> None:
        m = re.match(r"(\d+) held or bought, (\d+) requested, limit (\d+)", self.detail)
        if m:
            self.owned, self.requested, self.limit = (int(g) for g in m.groups())
        else:
            self.owned = self.requested = self.limit = None


class NotReady(SeatqError):
    """``NOT_READY position <P> retry_after_ms <R>``: QUEUE.ADMIT or QUEUE.RENEW on a ticket still
    waiting (no session yet)."""

    code = "NOT_READY"
    position: int
    retry_after_ms: int

    def _parse(self) -> None:
        fields = self.detail.split()
        values = dict(zip(fields[::2], fields[1::2]))
        self.position = int(values.get("position", 0))
        self.retry_after_ms = int(values.get("retry_after_ms", 0))


class TicketEnded(SeatqError):
    """``TICKET_ENDED <state>``: the wait or session is over. ``state`` is left, expired,
    no_show, revoked, completed or dequeued."""

    code = "TICKET_ENDED"
    state: str

    def _parse(self) -> None:
        self.state = self.detail.strip()


class PassRequired(SeatqError):
    """``PASS_REQUIRED``: the event requires an admission pass (SEAT.HOLD ... PASS)."""

    code = "PASS_REQUIRED"


class PassInvalid(SeatqError):
    """``PASS_INVALID``: malformed, forged, expired, revoked or not this user's pass."""

    code = "PASS_INVALID"


class WrongShard(SeatqError):
    """``WRONG_SHARD``: a join sent to a line shard that the user's hash does not name;
    ``shard`` is the one it names (route with ``shard_of`` or ``Seatq.sharded``)."""

    code = "WRONG_SHARD"
    shard: int

    def _parse(self) -> None:
        # "the user belongs to shard <i> of <K> (shard_of)"
        words = self.detail.split()
        self.shard = int(words[words.index("shard") + 1])


#: Error code -> exception class.
ERRORS: Dict[str, Type[SeatqError]] = {
    cls.code: cls
    for cls in (
        WrongType,
        Duplicate,
        NoSuchTicket,
        NoSuchEvent,
        JournalUnavailable,
        TryAgain,
        Closed,
        NotOpen,
        SeatUnavailable,
        SoldOut,
        NoSuchSeat,
        NotHeld,
        NotOwner,
        HoldExpired,
        LimitExceeded,
        NotReady,
        TicketEnded,
        PassRequired,
        PassInvalid,
        WrongShard,
    )
}


def from_message(message: str) -> SeatqError:
    """The exception for an error line (without the leading ``-``)."""
    code = message.split(" ", 1)[0]
    return ERRORS.get(code, CommandError)(message)


def from_reply(exc: Exception) -> Exception:
    """The seatq exception for a redis-py error reply; other exceptions are returned as is.

    redis-py strips the code of the errors it knows (``ERR``, ``TRYAGAIN`` ...) from the
    message and turns them into its own classes; the rest arrive as ``ResponseError`` with the
    whole line.
    """
    if isinstance(exc, SeatqError) or not isinstance(exc, ResponseError):
        return exc
    if isinstance(exc, TryAgainError):
        return TryAgain(_with_code("TRYAGAIN", str(exc)))
    message = str(exc)
    code = message.split(" ", 1)[0]
    if code in ERRORS:
        return ERRORS[code](message)
    status = getattr(exc, "status_code", None)
    if status and status in ERRORS:
        return ERRORS[status](_with_code(status, message))
    if type(exc) is not ResponseError:
        return exc  # redis-py's own classes (READONLY, NOPERM, OOM, ...): keep them
    return CommandError(message)


def _with_code(code: str, message: str) -> str:
    return message if message.startswith(code) else f"{code} {message}".rstrip()


class ClientError(Exception):
    """An error raised by the client itself (not a server reply)."""


class WaitCancelled(ClientError):
    """The waiting loop was cancelled. ``ticket`` is the ticket it waited with; ``left`` tells
    whether it left the line on the way out."""

    def __init__(self, message: str, ticket: Optional[str] = None, left: bool = False) -> None:
        super().__init__(message)
        self.ticket = ticket
        self.left = left


class WaitTimeout(WaitCancelled):
    """The waiting loop gave up after its ``timeout``."""


class NotSharded(ClientError):
    """A sharded event's meta record is missing, or it and the event's keys disagree: the event
    was not created with ``seatq-coordinator create``, or its meta record or keys were changed
    since. ``meta_key`` is the record's key."""

    def __init__(self, message: str, meta_key: str) -> None:
        super().__init__(message)
        self.meta_key = meta_key
