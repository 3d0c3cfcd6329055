"""Reply and error parsing without a server: RESP2 arrays and RESP3 maps, bytes or str, and
redis-py's exception classes turned into seatq's."""

from __future__ import annotations

import redis.exceptions as rex

from seatq import (
    CommandError,
    Joined,
    NotOpen,
    NotReady,
    QueuedTicket,
    QueueRange,
    SoldOut,
    TicketStatus,
    TryAgain,
)
from seatq.errors import from_reply


def _resp3(resp2: list) -> dict:
    """A RESP2 flat array as the RESP3 map redis-py gives with ``decode_responses=True``."""
    return {resp2[i].decode(): (v.decode() if isinstance(v, bytes) else v)
            for i, v in zip(range(0, len(resp2), 2), resp2[1::2])}


def test_resp2_and_resp3_records_read_alike() -> None:
    # QUEUE.STATUS e USER bob, as the module answers it (the ticket first, asked for by user).
    resp2 = [b"ticket", b"1.a163420f4918ea1f", b"state", b"waiting", b"position", 2, b"ahead", 1,
             b"eta_ms", 29800, b"retry_after_ms", 15000]
    a, b = TicketStatus.from_reply(resp2), TicketStatus.from_reply(_resp3(resp2))
    assert a == b and a.ticket == "1.a163420f4918ea1f" and a.position == 2 and a.ahead == 1
    assert a.eta_ms == 29800 and a.retry_after_ms == 15000 and a.pass_ is None and a.claimed is None
    assert a.waiting and not a.prequeue and not a.admitted and not a.ended


def test_status_by_ticket_takes_the_ticket_from_the_call() -> None:
    # QUEUE.STATUS e 0.743dcd1b108b06b6 of an admitted ticket: the reply does not repeat it.
    reply = [b"state", b"admitted", b"position", 0, b"ahead", 0, b"eta_ms", -1, b"retry_after_ms", 0,
             b"pass", b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln", b"pass_expires_at_ms", 1796179813000,
             b"claim_by_ms", 1796178942476, b"claimed", 0]
    st = TicketStatus.from_reply(reply, ticket=b"0.743dcd1b108b06b6")
    assert st.ticket == "0.743dcd1b108b06b6" and st.admitted and not st.prequeue
    assert st.eta_ms is None and st.pass_ == "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"
    assert (st.pass_expires_at_ms, st.claim_by_ms, st.claimed) == (1796179813000, 1796178942476, False)
    assert TicketStatus.from_reply(_resp3(reply), ticket="0.743dcd1b108b06b6") == st
    assert TicketStatus.from_reply(reply).ticket == ""  # neither the reply nor the call names it
    # A ticket the reply names wins over the argument (asked for by user, there is none).
    named = TicketStatus.from_reply([b"ticket", b"3.00aa00aa00aa00aa"] + reply, ticket="ignored")
    assert named.ticket == "3.00aa00aa00aa00aa"


def test_prequeue_is_waiting_at_position_zero() -> None:
    # A line not open yet (OPENS-AT): waiting, position 0, the ETA is the time to the opening.
    st = TicketStatus.from_reply([b"state", b"waiting", b"position", 0, b"ahead", 0, b"eta_ms", 3599817,
                                  b"retry_after_ms", 15000], ticket="0.f79fe080e8b01e91")
    assert st.prequeue and st.waiting and st.eta_ms == 3599817
    joined = Joined.from_reply([b"ticket", b"0.f79fe080e8b01e91", b"position", 0, b"state", b"waiting",
                                b"existing", 0])
    assert joined.prequeue and not joined.admitted and not joined.existing
    # Admitted at once: position 0 too, but no pre-queue.
    called = Joined.from_reply({"ticket": "0.743dcd1b108b06b6", "position": 0, "state": "admitted", "existing": 1})
    assert called.admitted and called.existing and not called.prequeue
    in_line = Joined.from_reply({"ticket": "1.a163420f4918ea1f", "position": 1, "state": "waiting", "existing": 0})
    assert not in_line.prequeue and in_line.position == 1


def test_nested_records() -> None:
    # QUEUE.RANGE e 0 10: next first, then the entries with position and heartbeat.
    entry = [b"ticket", b"1.a163420f4918ea1f", b"serial", 1, b"state", b"waiting", b"position", 1,
             b"heartbeat_expires_at_ms", 1796178972524, b"user", b"bob", b"data", [b"k", b"v"]]
    rng = QueueRange.from_reply([b"next", -1, b"entries", [entry]])
    assert rng.next is None and rng.entries[0].data == {"k": "v"} and rng.entries[0].user == "bob"
    assert (rng.entries[0].serial, rng.entries[0].position, rng.entries[0].heartbeat_expires_at_ms) == (
        1, 1, 1796178972524)
    rng3 = QueueRange.from_reply({b"next": 5, b"entries": [{b"ticket": b"1.ff", b"state": b"waiting", b"data": {}}]})
    assert rng3.next == 5 and rng3.entries[0].data == {}
    # QUEUE.DEQUEUE's record: out of the line, without position or heartbeat.
    taken = QueuedTicket.from_reply({"ticket": "1.a163420f4918ea1f", "serial": 1, "state": "dequeued",
                                     "user": "bob", "data": {"k": "v"}})
    assert (taken.serial, taken.state, taken.user, taken.data) == (1, "dequeued", "bob", {"k": "v"})
    assert taken.position is None and taken.heartbeat_expires_at_ms is None


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
