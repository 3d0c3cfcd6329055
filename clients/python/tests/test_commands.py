"""Every command through the sync client, RESP2 and RESP3: typed results and one exception class
per error code, with its fields."""

from __future__ import annotations

import time

import pytest
import redis

import seatq
from seatq import (
    Admission,
    Closed,
    CommandError,
    Confirmation,
    Duplicate,
    HoldExpired,
    HoldReceipt,
    Joined,
    JournalUnavailable,
    LimitExceeded,
    NoSuchEvent,
    NoSuchSeat,
    NoSuchTicket,
    NotHeld,
    NotOpen,
    NotOwner,
    NotReady,
    PassCheck,
    PassInvalid,
    PassRequired,
    QueuedTicket,
    QueueInfo,
    Renewal,
    Seatq,
    SeatInfo,
    SeatqError,
    SeatStatus,
    SeatUnavailable,
    SoldOut,
    TicketEnded,
    TicketStatus,
    WrongType,
)

from helpers import capacity_one, wait_state


def test_join_status_admit_renew_verify_revoke(sq: Seatq, event: str) -> None:
    # The default RATE and BURST have room: the join's own upkeep calls the ticket, and the
    # join says so.
    joined = sq.enqueue(event, "alice", data={"source": "web", "tier": "gold"})
    assert isinstance(joined, Joined)
    assert joined.position == 0 and joined.state == "admitted" and joined.admitted
    assert not joined.existing and not joined.prequeue
    assert joined.ticket.count(".") == 1

    again = sq.enqueue(event, "alice")
    assert again.ticket == joined.ticket and again.existing and again.admitted

    st = sq.status(event, joined.ticket)
    assert isinstance(st, TicketStatus) and st.admitted and not st.ended
    assert st.pass_ and st.claimed is False and st.claim_by_ms and st.pass_expires_at_ms
    assert st.pass_expires_at_ms % 1000 == 0, "sessions end on whole seconds"

    adm = sq.admit(event, joined.ticket)
    assert isinstance(adm, Admission)
    assert adm.pass_ == st.pass_ and not adm.existing and adm.expires_at_ms == st.pass_expires_at_ms
    assert sq.admit(event, user="alice").existing  # idempotent, addressed by user
    assert sq.status(event, user="alice").claimed is True

    renewed = sq.renew(event, user="alice")
    assert isinstance(renewed, Renewal) and renewed.expires_at_ms >= adm.expires_at_ms
    assert renewed.expires_at_ms % 1000 == 0

    check = sq.verify(event, renewed.pass_)
    assert isinstance(check, PassCheck)
    assert check.valid and check.user == "alice" and check.serial == 0
    assert check.expires_at_ms == renewed.expires_at_ms  # the JWT's exp is the session's end
    assert sq.verify(event, "not-a-pass").state == "invalid"
    assert sq.verify(f"{event}:none", renewed.pass_).state == "invalid"  # a missing event

    assert sq.revoke(event, joined.ticket) is True
    assert sq.revoke(event, joined.ticket) is False
    assert sq.verify(event, renewed.pass_).state == "revoked"
    assert sq.status(event, joined.ticket).state == "revoked"


def test_waiting_ticket_and_not_ready(sq: Seatq, event: str) -> None:
    capacity_one(sq, event)  # the holder's claimed session takes the only place
    b = sq.enqueue(event, "bob")
    c = sq.enqueue(event, "carol")
    assert (b.state, c.state) == ("waiting", "waiting")
    assert (b.position, c.position) == (1, 2)
    st = sq.status(event, c.ticket)
    assert st.waiting and st.position == 2 and st.ahead == 1
    assert st.heartbeat_expires_at_ms > 0 and st.pass_ is None
    # CAPACITY is full: the ETA starts at the first session's end, the holder's pass expiry
    # (PASS-TTL, 15 min), and the client is told to ask again at half of CLAIM-TTL (30 s).
    assert st.eta_ms is not None and 890_000 < st.eta_ms <= 902_000
    assert st.retry_after_ms == 15_000
    with pytest.raises(NotReady) as e:
        sq.admit(event, c.ticket)
    assert e.value.position == 2 and e.value.retry_after_ms == 15_000
    assert e.value.code == "NOT_READY" and isinstance(e.value, redis.exceptions.ResponseError)
    with pytest.raises(NotReady) as r:  # no session to renew yet
        sq.renew(event, user="bob")
    assert r.value.position == 1

    sq.pause(event)
    assert sq.status(event, c.ticket).eta_ms is None  # no ETA while paused
    assert sq.pause(event) is False
    assert sq.resume(event) is True

    assert sq.queue_len(event) == 2
    rng = sq.queue_range(event, 0, 10)
    assert [t.user for t in rng.entries] == ["bob", "carol"] and rng.next is None
    assert [t.position for t in rng.entries] == [1, 2]
    assert all(t.state == "waiting" and t.heartbeat_expires_at_ms > 0 for t in rng.entries)
    assert [t.serial for t in rng.entries] == [1, 2]

    assert sq.leave(event, b.ticket) is True
    assert sq.leave(event, b.ticket) is False
    with pytest.raises(TicketEnded) as ended:
        sq.admit(event, b.ticket)
    assert ended.value.state == "left"
    assert sq.status(event, c.ticket).position == 1


def test_dequeue_range_and_data(sq: Seatq, event: str) -> None:
    capacity_one(sq, event)
    for i in range(3):
        sq.enqueue(event, f"u{i}", data={"n": str(i), "name": f"user {i}"})
    rng = sq.queue_range(event, 1, 5)
    assert [t.user for t in rng.entries] == ["u1", "u2"]
    assert rng.entries[0].data == {"n": "1", "name": "user 1"}
    assert [t.heartbeat_expires_at_ms > 0 for t in rng.entries] == [True, True]
    taken = sq.dequeue(event, count=2)
    assert all(isinstance(t, QueuedTicket) for t in taken)
    assert [t.user for t in taken] == ["u0", "u1"]
    # Out of the line: no position, no heartbeat.
    assert all(t.state == "dequeued" and t.position == 0 and t.heartbeat_expires_at_ms == 0 for t in taken)
    assert taken[1].data["name"] == "user 1" and taken[0].serial == 1
    assert sq.queue_len(event) == 1
    assert sq.dequeue(f"{event}:none") == []


def test_prequeue_reveals_nothing_before_opening(sq: Seatq, event: str) -> None:
    opens_at = int(time.time() * 1000) + 3_600_000
    sq.config_set(event, opens_at=opens_at)
    joined = [sq.enqueue(event, f"early{i}") for i in range(5)]
    assert all(j.prequeue and j.position == 0 and j.state == "waiting" for j in joined)
    statuses = [sq.status(event, j.ticket) for j in joined]
    etas = [s.eta_ms for s in statuses]
    assert all(s.prequeue and s.position == 0 and s.ahead == 0 for s in statuses)
    # Every ticket's ETA is the time until the opening, whatever its hidden rank.
    assert all(e is not None and 3_500_000 < e <= 3_600_000 for e in etas)
    assert max(etas) - min(etas) < 1_000, etas
    with pytest.raises(NotOpen) as e:
        sq.queue_range(event)
    assert e.value.code == "NOT_OPEN" and "OPENS-AT" in e.value.detail
    with pytest.raises(NotOpen):
        sq.dequeue(event)
    info = sq.queue_info(event)
    assert info.waiting == 5 and info.prequeue == 5 and not info.opened
    assert info.head_serial is None and info.tail_serial is None

    sq.pause(event)  # so that the order stays to be seen
    sq.config_set(event, opens_at=0)
    info = sq.queue_info(event)
    assert info.opened and info.prequeue == 5  # waiting in the pre-queue's drawn order
    rng = sq.queue_range(event)
    assert sorted(t.serial for t in rng.entries) == list(range(5))
    assert (info.head_serial, info.tail_serial) == (rng.entries[0].serial, rng.entries[-1].serial)
    assert isinstance(info.head_serial, int)
    assert [sq.status(event, t.ticket).position for t in rng.entries] == [1, 2, 3, 4, 5]


def test_info_and_config(sq: Seatq, event: str) -> None:
    with pytest.raises(NoSuchEvent):
        sq.queue_info(event)
    with pytest.raises(NoSuchEvent):
        sq.seat_info(event)
    defaults = sq.config_get(event)
    assert defaults["rate"] > 0 and "claim-ttl" in defaults
    sq.config_set(event, {"RATE": 1}, burst=3, require_pass=False)
    assert sq.config_get(event, "rate", "BURST", "require-pass") == {
        "rate": 1,
        "burst": 3,
        "require-pass": 0,
    }
    assert sq.enqueue(event, "dan").admitted
    assert sq.enqueue(event, "eve").admitted  # BURST 3
    assert sq.enqueue(event, "fox").admitted
    assert sq.enqueue(event, "gil").position == 1  # the next call is a second away
    info = sq.queue_info(event)
    assert isinstance(info, QueueInfo)
    assert info.joined_total == 4 and info.admitted_total == 3 and info.sessions == 3
    assert info.settings["rate"] == 1 and info.settings["burst"] == 3
    assert not info.paused and not info.closed and info.opened
    assert info.head_serial == 3 and info.tail_serial == 3 and info.next_serial == 4
    assert info.journal_key and info.memory_bytes > 0


def test_seats(sq: Seatq, event: str) -> None:
    sq.config_set(event, require_pass=False, user_limit=3)
    assert sq.seat_add(event, "A1", "A2", "A3") == 3
    assert sq.seat_add(event, "A3", "A4") == 1
    assert sq.seat_add_qty(event, 5) == 5

    receipt = sq.hold(event, "erin", ["A1", "A2"], ttl=60)
    assert isinstance(receipt, HoldReceipt)
    assert receipt.seats == 2 and receipt.qty == 0 and receipt.remaining == 2

    with pytest.raises(SeatUnavailable) as e:
        sq.hold(event, "fay", ["A3", "A2"])
    assert e.value.seat == "A2"
    with pytest.raises(NoSuchSeat) as e2:
        sq.hold(event, "fay", ["Z9"])
    assert e2.value.seat == "Z9"
    with pytest.raises(SoldOut) as e3:
        sq.hold(event, "fay", qty=6)
    assert e3.value.left == 5
    with pytest.raises(LimitExceeded) as e4:
        sq.hold(event, "erin", qty=2)
    assert (e4.value.owned, e4.value.requested, e4.value.limit) == (2, 2, 3)
    with pytest.raises(NotOwner) as e5:
        sq.release(event, "fay", ["A1"])
    assert e5.value.seat == "A1"
    with pytest.raises(NotHeld) as e6:
        sq.release(event, "erin", ["A3"])
    assert e6.value.seat == "A3"
    with pytest.raises(NotHeld) as e7:
        sq.confirm(event, "fay", qty=2)
    assert (e7.value.seat, e7.value.qty, e7.value.held) == (None, 2, 0)

    statuses = sq.seat_status(event, "A1", "A3")
    assert all(isinstance(s, SeatStatus) for s in statuses)
    assert [(s.seat, s.state, s.holder) for s in statuses] == [("A1", "held", "erin"), ("A3", "available", None)]

    assert sq.release(event, "erin", ["A2"]) == 3
    done = sq.confirm(event, "erin", ["A1"])
    assert isinstance(done, Confirmation) and done == Confirmation(sold=1, remaining=3)

    info = sq.seat_info(event)
    assert isinstance(info, SeatInfo)
    assert (info.total, info.available, info.held, info.sold) == (9, 8, 0, 1)
    assert (info.seats_total, info.ga_total, info.user_limit) == (4, 5, 3)


def test_hold_expired(sq: Seatq, event: str) -> None:
    sq.config_set(event, require_pass=False)
    sq.seat_add(event, "B1")
    sq.hold(event, "gus", ["B1"], ttl=1)
    time.sleep(1.1)
    with pytest.raises(HoldExpired) as e:
        sq.confirm(event, "gus", ["B1"])
    assert e.value.seat == "B1"


def test_pass_errors(sq: Seatq, event: str) -> None:
    sq.seat_add_qty(event, 3)
    with pytest.raises(PassRequired):
        sq.hold(event, "hal", qty=1)
    with pytest.raises(PassInvalid):
        sq.hold(event, "hal", qty=1, pass_="a.b.c")
    t = sq.enqueue(event, "hal").ticket
    st = wait_state(sq, event, t, "admitted")
    with pytest.raises(PassInvalid):  # another user's pass
        sq.hold(event, "ivy", qty=1, pass_=st.pass_)
    adm = sq.admit(event, t)
    assert sq.hold(event, "hal", qty=1, pass_=adm.pass_).qty == 1
    assert sq.confirm(event, "hal", qty=1).sold == 1
    # CONFIRM-ENDS-SESSION (on by default): the purchase completed the session.
    with pytest.raises(TicketEnded) as e:
        sq.admit(event, t)
    assert e.value.state == "completed"


def test_duplicate_closed_and_no_such_ticket(sq: Seatq, event: str) -> None:
    capacity_one(sq, event)
    j = sq.enqueue(event, "jay", idempotency="req-1")
    with pytest.raises(Duplicate) as mine:
        sq.enqueue(event, "jay", idempotency="req-1")
    assert mine.value.ticket == j.ticket
    with pytest.raises(Duplicate) as theirs:
        sq.enqueue(event, "kim", idempotency="req-1")
    assert theirs.value.ticket is None

    with pytest.raises(NoSuchTicket) as nst:
        sq.status(event, "99.0123456789abcdef")
    assert nst.value.ticket == "99.0123456789abcdef"
    with pytest.raises(NoSuchTicket):
        sq.status(event, user="nobody")
    # A missing event reads as an empty one.
    with pytest.raises(NoSuchTicket) as missing:
        sq.status(f"{event}:none", user="jay")
    assert missing.value.ticket == "user jay"

    assert sq.close_line(event) is True
    with pytest.raises(Closed):
        sq.enqueue(event, "lee")
    assert sq.reopen_line(event) is True
    sq.enqueue(event, "lee")


def test_wrong_type_journal_unavailable_and_command_errors(sq: Seatq, raw: redis.Redis, event: str) -> None:
    raw.set(event, "a string")
    with pytest.raises(WrongType):
        sq.enqueue(event, "u")
    other = f"{{{event}}}"  # a key with a hash tag: its journal is <key>:journal
    raw.set(f"{other}:journal", "not a stream")
    with pytest.raises(JournalUnavailable) as e:
        sq.enqueue(other, "u")
    assert "journal" in e.value.detail
    with pytest.raises(CommandError) as bad:
        sq.config_set(f"{event}:x", rate=0)
    assert bad.value.code == "ERR" and isinstance(bad.value, SeatqError)
    with pytest.raises(ValueError):
        sq.status(event)  # neither ticket nor user
    with pytest.raises(ValueError):
        sq.hold(event, "u", ["A1"], qty=1)


def test_bytes_and_decoded_clients(url: str, event: str) -> None:
    """The client reads replies whether redis-py decodes them or not."""
    for decode in (False, True):
        sq = Seatq(redis.Redis.from_url(url, decode_responses=decode))
        ev = f"{event}:{decode}"
        j = sq.enqueue(ev, "üser", data={"k": "välue"})
        assert isinstance(j.ticket, str)
        st = wait_state(sq, ev, j.ticket, "admitted")
        assert isinstance(st.pass_, str)
        assert sq.verify(ev, st.pass_).user == "üser"
        sq.close()


def test_exceptions_are_exported() -> None:
    for code, cls in seatq.errors.ERRORS.items():
        assert cls.code == code and issubclass(cls, SeatqError)
        assert getattr(seatq, cls.__name__) is cls
