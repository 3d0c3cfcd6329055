"""seatq's replies as dataclasses.

Replies are RESP3 maps, or flat ``field value ...`` arrays on RESP2; both are read here, with
keys and strings as ``bytes`` (``decode_responses=False``) or ``str``. Text is decoded as UTF-8
(bytes that are not UTF-8 survive as surrogate escapes: ``s.encode("utf-8",
"surrogateescape")`` gives them back). Times are server milliseconds since the epoch.

The pass is in fields named ``pass_`` (``pass`` is a Python keyword).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Mapping, Optional

__all__ = [
    "Joined",
    "TicketStatus",
    "QueuedTicket",
    "QueueRange",
    "Admission",
    "Renewal",
    "PassCheck",
    "QueueInfo",
    "HoldReceipt",
    "Confirmation",
    "SeatStatus",
    "SeatInfo",
    "ENDED_STATES",
    "record",
    "text",
]

#: Ticket states after which nothing more happens to the ticket.
ENDED_STATES = frozenset({"left", "expired", "no_show", "revoked", "completed", "dequeued"})


def text(value: Any) -> Optional[str]:
    """A reply value as text (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, str):
        return value
    return str(value)


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    return int(text(value) or 0)


def _opt_int(value: Any) -> Optional[int]:
    return None if value is None else _int(value)


def record(reply: Any) -> Dict[str, Any]:
    """A record reply (RESP3 map or RESP2 flat field/value array) as a dict with text keys."""
    if isinstance(reply, Mapping):
        return {text(k): v for k, v in reply.items()}  # type: ignore[misc]
    if isinstance(reply, (list, tuple)):
        if len(reply) % 2:
            raise ValueError(f"not a field/value array: {reply!r}")
        return {text(reply[i]): reply[i + 1] for i in range(0, len(reply), 2)}  # type: ignore[misc]
    raise ValueError(f"not a record: {reply!r}")


@dataclass(frozen=True)
class Joined:
    """QUEUE.ENQUEUE: the user's ticket and place in line."""

    ticket: str
    #: 1-based place in line; 0 when ``admitted`` or in a pre-queue.
    position: int
    #: What the command left: ``admitted`` when the user has a live session, one from before or
    #: the one this join got at once (its own upkeep called it: RATE/BURST allowed it and
    #: CAPACITY had room), else ``waiting``.
    state: str
    #: True when the user already had this ticket (a second join).
    existing: bool

    @property
    def admitted(self) -> bool:
        return self.state == "admitted"

    @property
    def prequeue(self) -> bool:
        """True while the ticket waits in a line not open yet (OPENS-AT): the reply says so
        with ``state`` ``waiting`` and ``position`` 0."""
        return self.state == "waiting" and self.position == 0

    @classmethod
    def from_reply(cls, reply: Any) -> "Joined":
        r = record(reply)
        return cls(
            ticket=text(r["ticket"]) or "",
            position=_int(r["position"]),
            state=text(r["state"]) or "",
            existing=bool(_int(r.get("existing", 0))),
        )


@dataclass(frozen=True)
class TicketStatus:
    """QUEUE.STATUS: where a ticket stands; once ``admitted``, its pass and claim deadline.

    The reply names the ticket only when it was asked for by user; asked for by ticket, the
    client fills ``ticket`` in from its argument."""

    ticket: str
    #: waiting | admitted | left | expired | no_show | revoked | completed | dequeued
    state: str
    position: int
    ahead: int
    #: Expected wait: from the opening (before it, the time until OPENS-AT for every pre-queue
    #: ticket) or, with CAPACITY full, from the first session deadline; ``None`` while
    #: admission is paused or when not waiting.
    eta_ms: Optional[int]
    #: When to ask again: keeps the heartbeat alive and never misses the claim window.
    retry_after_ms: int
    pass_: Optional[str] = None
    #: When the session ends unless renewed (a whole second: the pass's ``exp`` x 1000).
    pass_expires_at_ms: Optional[int] = None
    #: Claim with QUEUE.ADMIT before this, or the session ends as ``no_show``.
    claim_by_ms: Optional[int] = None
    claimed: Optional[bool] = None
    #: On a line shard of a sharded event whose coordinator has sent the shard a rank table:
    #: the estimated position in the whole event (``position`` is the exact place within the
    #: shard, and ``eta_ms`` follows the event's global call rate); else ``None``.
    global_position: Optional[int] = None

    @property
    def waiting(self) -> bool:
        return self.state == "waiting"

    @property
    def admitted(self) -> bool:
        return self.state == "admitted"

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES

    @property
    def prequeue(self) -> bool:
        """True while the ticket waits in a line not open yet (OPENS-AT): ``state`` ``waiting``
        with ``position`` 0."""
        return self.state == "waiting" and self.position == 0

    @classmethod
    def _fields_of(cls, r: Dict[str, Any], ticket: Optional[str] = None) -> Dict[str, Any]:
        eta = _int(r.get("eta_ms", -1))
        claimed = r.get("claimed")
        return dict(
            ticket=text(r.get("ticket")) or ticket or "",
            state=text(r["state"]) or "",
            position=_int(r.get("position", 0)),
            ahead=_int(r.get("ahead", 0)),
            eta_ms=None if eta < 0 else eta,
            retry_after_ms=_int(r.get("retry_after_ms", 0)),
            pass_=text(r.get("pass")),
            pass_expires_at_ms=_opt_int(r.get("pass_expires_at_ms")),
            claim_by_ms=_opt_int(r.get("claim_by_ms")),
            claimed=None if claimed is None else bool(_int(claimed)),
            global_position=_opt_int(r.get("global_position")),
        )

    @classmethod
    def from_reply(cls, reply: Any, ticket: Optional[Any] = None) -> "TicketStatus":
        """``ticket``: the one STATUS was called with (its reply does not repeat it)."""
        return cls(**cls._fields_of(record(reply), text(ticket)))


@dataclass(frozen=True)
class QueuedTicket:
    """A ticket as QUEUE.RANGE lists it (``waiting``, with its position and heartbeat deadline)
    or as QUEUE.DEQUEUE hands it over (``dequeued``: out of the line, its reply has neither, so
    ``position`` and ``heartbeat_expires_at_ms`` are ``None``)."""

    ticket: str
    serial: int
    state: str
    user: str
    data: Dict[str, str] = field(default_factory=dict)
    #: 1-based place in line (QUEUE.RANGE); ``None`` for a dequeued ticket.
    position: Optional[int] = None
    #: When the waiting ticket lapses unless polled (QUEUE.RANGE); ``None`` for a dequeued
    #: ticket.
    heartbeat_expires_at_ms: Optional[int] = None

    @classmethod
    def from_reply(cls, reply: Any) -> "QueuedTicket":
        r = record(reply)
        data = r.get("data") or {}
        return cls(
            ticket=text(r.get("ticket")) or "",
            serial=_int(r.get("serial", 0)),
            state=text(r.get("state")) or "",
            user=text(r.get("user")) or "",
            data={text(k) or "": text(v) or "" for k, v in record(data).items()},
            position=_opt_int(r.get("position")),
            heartbeat_expires_at_ms=_opt_int(r.get("heartbeat_expires_at_ms")),
        )


@dataclass(frozen=True)
class QueueRange:
    """QUEUE.RANGE: waiting tickets in line order; ``next`` is the offset to continue from
    when the reply stopped at its size bound, else ``None``."""

    entries: List[QueuedTicket]
    next: Optional[int]

    @classmethod
    def from_reply(cls, reply: Any) -> "QueueRange":
        r = record(reply)
        nxt = _int(r.get("next", -1))
        return cls(
            entries=[QueuedTicket.from_reply(e) for e in (r.get("entries") or [])],
            next=None if nxt < 0 else nxt,
        )


@dataclass(frozen=True)
class Admission:
    """QUEUE.ADMIT: the claimed session's pass (a JWT) and its expiry."""

    pass_: str
    expires_at_ms: int
    #: True when the session had already been claimed (ADMIT is idempotent).
    existing: bool
    #: The ticket, when the waiting loop returns the admission.
    ticket: Optional[str] = None

    @classmethod
    def from_reply(cls, reply: Any) -> "Admission":
        r = record(reply)
        return cls(
            pass_=text(r["pass"]) or "",
            expires_at_ms=_int(r["expires_at_ms"]),
            existing=bool(_int(r.get("existing", 0))),
        )


@dataclass(frozen=True)
class Renewal:
    """QUEUE.RENEW: the renewed pass."""

    pass_: str
    expires_at_ms: int

    @classmethod
    def from_reply(cls, reply: Any) -> "Renewal":
        r = record(reply)
        return cls(pass_=text(r["pass"]) or "", expires_at_ms=_int(r["expires_at_ms"]))


@dataclass(frozen=True)
class PassCheck:
    """QUEUE.VERIFY: ``state`` is valid | expired | revoked | invalid; the claims when the
    signature checked out."""

    state: str
    user: Optional[str] = None
    serial: Optional[int] = None
    expires_at_ms: Optional[int] = None

    @property
    def valid(self) -> bool:
        return self.state == "valid"

    @classmethod
    def from_reply(cls, reply: Any) -> "PassCheck":
        r = record(reply)
        return cls(
            state=text(r["state"]) or "",
            user=text(r.get("user")),
            serial=_opt_int(r.get("serial")),
            expires_at_ms=_opt_int(r.get("expires_at_ms")),
        )


@dataclass(frozen=True)
class QueueInfo:
    """QUEUE.INFO: the event's phase, counters and settings (``settings``: every setting by its
    lower-case name, e.g. ``rate``, ``capacity``, ``claim-ttl``)."""

    waiting: int
    prequeue: int
    opened: bool
    paused: bool
    closed: bool
    sessions: int
    sessions_unclaimed: int
    joined_total: int
    admitted_total: int
    claimed_total: int
    left_total: int
    expired_total: int
    dequeued_total: int
    sessions_ended_total: int
    idempotency_keys: int
    #: Serials of the first and last waiting tickets; ``None`` when nobody waits, and before
    #: the opening (the pre-queue's order is secret until then).
    head_serial: Optional[int]
    tail_serial: Optional[int]
    next_serial: int
    last_id: str
    call_rate_per_s: int
    journal_key: Optional[str]
    memory_bytes: int
    settings: Dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_reply(cls, reply: Any) -> "QueueInfo":
        r = record(reply)
        known = {f.name for f in fields(cls)} - {"settings"}
        values: Dict[str, Any] = {}
        for name in known:
            v = r.get(name)
            if name in ("opened", "paused", "closed"):
                values[name] = bool(_int(v or 0))
            elif name in ("head_serial", "tail_serial"):
                values[name] = _opt_int(v)
            elif name in ("last_id", "journal_key"):
                values[name] = text(v) if v is not None else (None if name == "journal_key" else "")
            else:
                values[name] = _int(v or 0)
        settings = {k: _int(v) for k, v in r.items() if k not in known and isinstance(v, int)}
        return cls(**values, settings=settings)


@dataclass(frozen=True)
class HoldReceipt:
    """SEAT.HOLD: the hold's id, expiry and the units left in its pool."""

    hold: int
    expires_at_ms: int
    remaining: int
    #: Named seats held (0 for general admission).
    seats: int
    #: General-admission units held (0 for named seats).
    qty: int

    @classmethod
    def from_reply(cls, reply: Any) -> "HoldReceipt":
        r = record(reply)
        return cls(**{f.name: _int(r.get(f.name, 0)) for f in fields(cls)})


@dataclass(frozen=True)
class Confirmation:
    """SEAT.CONFIRM: units sold by this call, units left available in their pool."""

    sold: int
    remaining: int

    @classmethod
    def from_reply(cls, reply: Any) -> "Confirmation":
        r = record(reply)
        return cls(sold=_int(r["sold"]), remaining=_int(r["remaining"]))


@dataclass(frozen=True)
class SeatStatus:
    """One seat of SEAT.STATUS."""

    seat: str
    #: available | held | sold
    state: str
    holder: Optional[str]
    expires_at_ms: int

    @classmethod
    def from_reply(cls, reply: Any) -> "SeatStatus":
        r = record(reply)
        return cls(
            seat=text(r["seat"]) or "",
            state=text(r["state"]) or "",
            holder=text(r.get("holder")),
            expires_at_ms=_int(r.get("expires_at_ms", 0)),
        )


@dataclass(frozen=True)
class SeatInfo:
    """SEAT.INFO: totals over named seats and general admission, each pool apart."""

    total: int
    available: int
    held: int
    sold: int
    seats_total: int
    seats_available: int
    seats_held: int
    seats_sold: int
    ga_total: int
    ga_available: int
    ga_held: int
    ga_sold: int
    holds: int
    holds_expired_total: int
    buyers: int
    user_limit: int
    hold_ttl: int

    @classmethod
    def from_reply(cls, reply: Any) -> "SeatInfo":
        r = record(reply)
        return cls(**{f.name: _int(r.get(f.name, 0)) for f in fields(cls)})
