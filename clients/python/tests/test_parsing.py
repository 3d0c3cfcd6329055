"""Reply and error parsing without a server: RESP2 arrays and RESP3 maps, bytes or str, and
redis-py's exception classes turned into seatq's."""

from __future__ import annotations

import redis.exceptions as rex

from seatq import CommandError, NotOpen, NotReady, QueuedTicket, QueueRange, SoldOut, TicketStatus, TryAgain
from seatq.errors import from_reply


def test_resp2_and_resp3_records_read_alike() -> None:
    resp2 = [b"ticket", b"3.00aa", b"state", b"waiting", b"position", 2, b"ahead", 1, b"eta_ms", 500,
             b"retry_after_ms", 250, b"heartbeat_expires_at_ms", 99, b"prequeue", 0]
    resp3 = {resp2[i].decode(): (v.decode() if isinstance(v, bytes) else v)
             for i, v in zip(range(0, len(resp2), 2), resp2[1::2])}
    a, b = TicketStatus.from_reply(resp2), TicketStatus.from_reply(resp3)
    assert a == b and a.position == 2 and a.eta_ms == 500 and a.pass_ is None and a.waiting


def test_nested_records() -> None:
    entry = [b"ticket", b"1.ff", b"serial", 1, b"state", b"waiting", b"position", 1,
             b"heartbeat_expires_at_ms", 99, b"user", b"u", b"data", [b"k", b"v"]]
    rng = QueueRange.from_reply([b"entries", [entry], b"next", -1])
    assert rng.next is None and rng.entries[0].data == {"k": "v"} and rng.entries[0].user == "u"
    assert (rng.entries[0].serial, rng.entries[0].position, rng.entries[0].heartbeat_expires_at_ms) == (1, 1, 99)
    rng3 = QueueRange.from_reply({b"entries": [{b"ticket": b"1.ff", b"state": b"waiting", b"data": {}}], b"next": 5})
    assert rng3.next == 5 and rng3.entries[0].data == {}
    # QUEUE.DEQUEUE's record: out of the line, without position or heartbeat.
    taken = QueuedTicket.from_reply({"ticket": "2.ee", "serial": 2, "state": "dequeued", "user": "w", "data": {}})
    assert (taken.serial, taken.state, taken.position, taken.heartbeat_expires_at_ms) == (2, "dequeued", 0, 0)


def test_redis_py_error_classes() -> None:
    # redis-py strips the codes it knows (TRYAGAIN, ERR) and keeps the others in the message.
    assert isinstance(from_reply(rex.TryAgainError("lapsed holds are being returned to stock; retry")), TryAgain)
    e = from_reply(rex.ResponseError("NOT_READY position 4 retry_after_ms 900"))
    assert isinstance(e, NotReady) and (e.position, e.retry_after_ms) == (4, 900)
    assert isinstance(from_reply(rex.ResponseError("SOLD_OUT")), SoldOut)
    assert isinstance(from_reply(rex.ResponseError("NOT_OPEN the event has not opened")), NotOpen)
    bad = from_reply(rex.ResponseError("syntax error: unknown option 'FOO'"))
    assert isinstance(bad, CommandError) and bad.code == "ERR"
    ro = rex.ReadOnlyError("You can't write against a read only replica.")
    assert from_reply(ro) is ro
    conn = rex.ConnectionError("down")
    assert from_reply(conn) is conn
