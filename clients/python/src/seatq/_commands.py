"""Each seatq command as (arguments, reply parser): shared by the sync and asyncio clients.

The event key is always the first argument after the command name, which is what redis-py's
cluster client routes by (it reads the key position from the server's COMMAND reply).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

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
    record,
    text,
)

Arg = Union[str, bytes, int]
Call = Tuple[List[Arg], Callable[[Any], Any]]


def target(ticket: Optional[Arg], user: Optional[Arg]) -> List[Arg]:
    """``<ticket>`` or ``USER <user>``: exactly one of them."""
    if (ticket is None) == (user is None):
        raise ValueError("give either a ticket or user=..., not both")
    return [ticket] if user is None else ["USER", user]  # type: ignore[list-item]


def units(seats: Optional[Sequence[Arg]], qty: Optional[int]) -> List[Arg]:
    """Named seats, or ``QTY n`` of general admission: exactly one of them."""
    if isinstance(seats, (str, bytes)):
        seats = [seats]
    if (not seats) == (qty is None):
        raise ValueError("give either seats or qty=..., not both")
    return ["QTY", int(qty)] if qty is not None else list(seats)  # type: ignore[arg-type]


def _bool(reply: Any) -> bool:
    return bool(int(reply))


def _int(reply: Any) -> int:
    return int(reply)


def _settings(reply: Any) -> Dict[str, int]:
    return {k: int(v) for k, v in record(reply).items()}


def setting_name(name: str) -> str:
    """``claim_ttl`` / ``claim-ttl`` / ``CLAIM-TTL`` -> ``CLAIM-TTL``."""
    return name.replace("_", "-").upper()


def setting_value(value: Any) -> Arg:
    if isinstance(value, bool):
        return int(value)
    return value


def enqueue(
    event: Arg,
    user: Arg,
    idempotency: Optional[Arg] = None,
    data: Optional[Mapping[Arg, Arg]] = None,
) -> Call:
    args: List[Arg] = ["QUEUE.ENQUEUE", event, user]
    if idempotency is not None:
        args += ["IDEMPOTENCY", idempotency]
    if data:
        args.append("DATA")
        for k, v in data.items():
            args += [k, v]
    return args, Joined.from_reply


def status(event: Arg, ticket: Optional[Arg], user: Optional[Arg]) -> Call:
    return ["QUEUE.STATUS", event, *target(ticket, user)], TicketStatus.from_reply


def admit(event: Arg, ticket: Optional[Arg], user: Optional[Arg]) -> Call:
    return ["QUEUE.ADMIT", event, *target(ticket, user)], Admission.from_reply


def leave(event: Arg, ticket: Optional[Arg], user: Optional[Arg]) -> Call:
    return ["QUEUE.LEAVE", event, *target(ticket, user)], _bool


def renew(event: Arg, ticket: Optional[Arg], user: Optional[Arg]) -> Call:
    return ["QUEUE.RENEW", event, *target(ticket, user)], Renewal.from_reply


def revoke(event: Arg, ticket: Optional[Arg], user: Optional[Arg]) -> Call:
    return ["QUEUE.REVOKE", event, *target(ticket, user)], _bool


def verify(event: Arg, pass_: Arg) -> Call:
    return ["QUEUE.VERIFY", event, pass_], PassCheck.from_reply


def phase(command: str, event: Arg) -> Call:
    return [command, event], _bool


def dequeue(event: Arg, count: int) -> Call:
    return (
        ["QUEUE.DEQUEUE", event, "COUNT", int(count)],
        lambda r: [QueuedTicket.from_reply(e) for e in (r or [])],
    )


def queue_len(event: Arg) -> Call:
    return ["QUEUE.LEN", event], _int


def queue_range(event: Arg, start: int, count: int) -> Call:
    return ["QUEUE.RANGE", event, int(start), int(count)], QueueRange.from_reply


def queue_info(event: Arg) -> Call:
    return ["QUEUE.INFO", event], QueueInfo.from_reply


def config_get(event: Arg, names: Sequence[str]) -> Call:
    return ["QUEUE.CONFIG", event, "GET", *(setting_name(n) for n in names)], _settings


def config_set(event: Arg, settings: Mapping[str, Any]) -> Call:
    if not settings:
        raise ValueError("no settings given")
    args: List[Arg] = ["QUEUE.CONFIG", event, "SET"]
    for name, value in settings.items():
        args += [setting_name(name), setting_value(value)]
    return args, lambda r: None


def seat_add(event: Arg, seats: Sequence[Arg]) -> Call:
    if not seats:
        raise ValueError("no seats given")
    return ["SEAT.ADD", event, *seats], _int


def seat_add_qty(event: Arg, qty: int) -> Call:
    return ["SEAT.ADD", event, "QTY", int(qty)], _int


def hold(
    event: Arg,
    user: Arg,
    seats: Optional[Sequence[Arg]],
    qty: Optional[int],
    ttl: Optional[int],
    pass_: Optional[Arg],
) -> Call:
    args: List[Arg] = ["SEAT.HOLD", event, user, *units(seats, qty)]
    if ttl is not None:
        args += ["TTL", int(ttl)]
    if pass_ is not None:
        args += ["PASS", pass_]
    return args, HoldReceipt.from_reply


def release(event: Arg, user: Arg, seats: Optional[Sequence[Arg]], qty: Optional[int]) -> Call:
    return ["SEAT.RELEASE", event, user, *units(seats, qty)], _int


def confirm(event: Arg, user: Arg, seats: Optional[Sequence[Arg]], qty: Optional[int]) -> Call:
    return ["SEAT.CONFIRM", event, user, *units(seats, qty)], Confirmation.from_reply


def seat_status(event: Arg, seats: Sequence[Arg]) -> Call:
    if not seats:
        raise ValueError("no seats given")
    return (
        ["SEAT.STATUS", event, *seats],
        lambda r: [SeatStatus.from_reply(e) for e in (r or [])],
    )


def seat_info(event: Arg) -> Call:
    return ["SEAT.INFO", event], SeatInfo.from_reply


__all__ = ["target", "units", "text"]
