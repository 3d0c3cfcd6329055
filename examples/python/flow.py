#!/usr/bin/env python3
"""seatq from Python: the whole flow of a sale, from joining the line to buying seats.

A template for application developers. It drives one event through every step a web
backend would take for its users, handles each seatq error the way a client should,
and prints the HTTP status an API gateway would answer for it:

  1. configure the event and add stock (named seats A-1..A-6, 10 general-admission units)
  2. five users join the line with an IDEMPOTENCY key; a retried join answers DUPLICATE
  3. one user leaves the line (QUEUE.LEAVE) before their turn
  4. each other user polls QUEUE.STATUS and tries QUEUE.ADMIT, sleeping the retry_after_ms
     of NOT_READY / RATE_LIMITED, until admitted with a pass (one thread per user, as if
     each were a separate browser)
  5. admitted users hold seats with SEAT.HOLD ... PASS <pass> and buy them with SEAT.CONFIRM;
     one user releases instead (SEAT.RELEASE) and leaves
  6. SEAT.INFO and SEAT.STATUS are checked against what the flow sold

Usage:
    pip install redis
    python3 flow.py --url redis://127.0.0.1:6379/0 [--event my-event]

Needs a Redis server with the seatq module loaded. Prints "flow ok" and exits 0, or
prints the reason and exits 1. The event key and its journal ({event}:journal) are left
in place so you can look at them (QUEUE.INFO, SEAT.INFO, XRANGE {event}:journal - +).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis

# --------------------------------------------------------------------------------------
# Replies: seatq answers RESP3 maps, or flat [field, value, field, value, ...] arrays on
# RESP2 (redis-py's default protocol). to_dict() accepts both.
# --------------------------------------------------------------------------------------


def to_dict(reply: Any) -> dict[str, Any]:
    """Turn a seatq record (RESP3 map or RESP2 flat field/value list) into a dict."""
    if isinstance(reply, dict):
        return reply
    if not isinstance(reply, (list, tuple)) or len(reply) % 2:
        raise TypeError(f"expected a field/value reply, got {reply!r}")
    record = dict(zip(reply[0::2], reply[1::2]))
    # QUEUE.STATUS / QUEUE.RANGE / QUEUE.DEQUEUE nest the ticket's DATA as a record too.
    if isinstance(record.get("data"), (list, tuple)):
        record["data"] = to_dict(record["data"])
    return record


# --------------------------------------------------------------------------------------
# Errors: every seatq error starts with an upper-case code, e.g.
#   "NOT_READY position 3 retry_after_ms 100", "SEAT_UNAVAILABLE A-2", "SOLD_OUT 4 left".
# --------------------------------------------------------------------------------------


class SeatqError(Exception):
    """A seatq error reply, split into its code and the rest of the message."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.code, _, self.detail = message.partition(" ")

    def _number_after(self, word: str) -> int | None:
        match = re.search(rf"\b{word} (\d+)", self.message)
        return int(match.group(1)) if match else None

    @property
    def retry_after_ms(self) -> int | None:
        """From NOT_READY / RATE_LIMITED: 'position P retry_after_ms R'."""
        return self._number_after("retry_after_ms")

    @property
    def position(self) -> int | None:
        return self._number_after("position")


class FlowFailure(Exception):
    """The flow did not go as the seatq documentation says it should."""


def call(r: redis.Redis, *args: Any) -> Any:
    """Run one seatq command, turning a Redis error reply into a SeatqError."""
    try:
        return r.execute_command(*args)
    except redis.ResponseError as err:
        # redis-py strips the "ERR " prefix of generic errors; seatq's own codes
        # (NOT_READY, SOLD_OUT, ...) come through whole.
        raise SeatqError(str(err)) from None


# --------------------------------------------------------------------------------------
# seatq error -> HTTP answer of an API gateway in front of the sale.
# --------------------------------------------------------------------------------------

HTTP_STATUS = {
    "DUPLICATE": 409,  # same idempotency key: the request was already done
    "NOT_READY": 403,  # not your turn yet / not open yet / venue full: retry later
    "RATE_LIMITED": 429,  # at the front, admission budget spent: retry after Retry-After
    "SOLD_OUT": 409,
    "SEAT_UNAVAILABLE": 409,
    "LIMIT_EXCEEDED": 403,
    "PASS_REQUIRED": 401,
    "PASS_INVALID": 403,
    "HOLD_EXPIRED": 410,
    "NOT_OWNER": 403,
    "NOT_HELD": 409,
    "NO_SUCH_TICKET": 404,
    "NO_SUCH_SEAT": 404,
    "TICKET_ENDED": 410,  # the user has to join the line again
}


def http_response(err: SeatqError) -> tuple[int, dict[str, str], dict[str, Any]]:
    """The (status, headers, JSON body) an HTTP gateway answers for a seatq error.

    Any code not listed (syntax or range errors, WRONGTYPE, ...) is a server-side bug: 500.
    """
    status = HTTP_STATUS.get(err.code, 500)
    headers: dict[str, str] = {}
    body: dict[str, Any] = {"error": err.code if status != 500 else "INTERNAL"}
    retry_ms = err.retry_after_ms
    if err.code == "RATE_LIMITED" and retry_ms is not None:
        headers["Retry-After"] = str(math.ceil(retry_ms / 1000))
    if err.code in ("NOT_READY", "RATE_LIMITED") and retry_ms is not None:
        body["retry_after_ms"] = retry_ms
        body["position"] = err.position
    return status, headers, body


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------

_print_lock = threading.Lock()
_t0 = time.monotonic()


def log(who: str, text: str) -> None:
    with _print_lock:
        print(f"[+{time.monotonic() - _t0:6.3f}s] {who:<6} {text}", flush=True)


def handled(who: str, command: str, err: SeatqError) -> None:
    """Print a handled error with the HTTP answer a gateway would give."""
    status, headers, body = http_response(err)
    extra = "".join(f" {k}: {v}" for k, v in headers.items())
    log(who, f"{command} -> {err.message}   => HTTP {status}{extra} {body}")


def expect_error(r: redis.Redis, code: str, who: str, command: str, *args: Any) -> SeatqError:
    """Run a command that must fail with `code` (used for the demonstrations)."""
    try:
        reply = call(r, *args)
    except SeatqError as err:
        handled(who, command, err)
        if err.code != code:
            raise FlowFailure(f"{command}: expected {code}, got {err.message}") from None
        return err
    raise FlowFailure(f"{command}: expected {code}, got the reply {reply!r}")


# --------------------------------------------------------------------------------------
# The client steps, one function each
# --------------------------------------------------------------------------------------


def join(r: redis.Redis, event: str, user: str, idem_key: str) -> str:
    """QUEUE.ENQUEUE with an idempotency key (one per user request); returns the ticket.

    A retried request (same key) answers DUPLICATE <ticket>: the first call went through,
    and the error names its ticket, so the client carries on with that ticket.
    """
    try:
        reply = to_dict(
            call(r, "QUEUE.ENQUEUE", event, user, "IDEMPOTENCY", idem_key, "DATA", "locale", "en")
        )
    except SeatqError as err:
        if err.code != "DUPLICATE":
            raise
        handled(user, "QUEUE.ENQUEUE (retry)", err)
        return err.detail
    log(user, f"joined: ticket {reply['ticket']} position {reply['position']} "
              f"state {reply['state']} existing {reply['existing']}")
    return reply["ticket"]


POLL_CAP_MS = 5000  # poll QUEUE.STATUS at least this often, to keep the heartbeat alive


def wait_for_admission(r: redis.Redis, event: str, user: str, ticket: str,
                       timeout_s: float = 15.0) -> str:
    """Poll QUEUE.STATUS (renews the ticket's heartbeat) and try QUEUE.ADMIT until admitted.

    NOT_READY and RATE_LIMITED both say how long to wait: retry_after_ms. Returns the pass.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        status = to_dict(call(r, "QUEUE.STATUS", event, ticket))
        if status["state"] not in ("waiting", "admitted"):
            raise FlowFailure(f"{user}: ticket {ticket} is {status['state']}, must join again")
        log(user, f"QUEUE.STATUS: {status['state']}, position {status['position']}, "
                  f"eta {status['eta_ms']} ms")
        try:
            admit = to_dict(call(r, "QUEUE.ADMIT", event, ticket))
        except SeatqError as err:
            if err.code not in ("NOT_READY", "RATE_LIMITED"):
                raise
            handled(user, "QUEUE.ADMIT", err)
            wait_ms = min(max(err.retry_after_ms or 0, 1), POLL_CAP_MS)
            if time.monotonic() + wait_ms / 1000 > deadline:
                raise FlowFailure(f"{user}: not admitted within {timeout_s} s") from None
            time.sleep(wait_ms / 1000)
            continue
        log(user, f"admitted: pass {admit['pass']} expires_at_ms {admit['expires_at_ms']} "
                  f"existing {admit['existing']}")
        return admit["pass"]


_LIMIT = re.compile(r"(\d+) held or bought, (\d+) requested, limit (\d+)")


def hold_seats(r: redis.Redis, event: str, user: str, pass_: str, want: int,
               preferred: list[str], ttl_s: int | None = None) -> list[str] | None:
    """Hold up to `want` named seats, taken in the order of `preferred`.

    SEAT_UNAVAILABLE <seat>: someone has it, drop it and try the next one.
    LIMIT_EXCEEDED: ask for fewer, as many as USER-LIMIT still allows.
    SOLD_OUT: no named seat is left at all; returns None (the caller may try GA).
    Returns the seats held ([] if the user may not hold any more).
    """
    candidates = list(preferred)
    while True:
        pick = candidates[:want]
        if not pick:
            return None
        args = ["SEAT.HOLD", event, user, *pick, "PASS", pass_]
        if ttl_s is not None:
            args += ["TTL", ttl_s]
        command = f"SEAT.HOLD {' '.join(pick)}"
        try:
            reply = to_dict(call(r, *args))
        except SeatqError as err:
            if err.code == "SEAT_UNAVAILABLE":
                handled(user, command, err)
                candidates.remove(err.detail)
                continue
            if err.code == "LIMIT_EXCEEDED":
                handled(user, command, err)
                match = _LIMIT.search(err.detail)
                if not match:
                    raise
                owned, _, limit = map(int, match.groups())
                want = limit - owned
                if want <= 0:
                    return []
                continue
            if err.code == "SOLD_OUT":
                handled(user, command, err)
                return None
            raise
        log(user, f"{command}: hold {reply['hold']}, {reply['seats']} seat(s) until "
                  f"{reply['expires_at_ms']}, {reply['remaining']} seat(s) left")
        return pick


def confirm(r: redis.Redis, event: str, user: str, units: list[Any]) -> dict | SeatqError:
    """SEAT.CONFIRM (units: seat names, or ["QTY", n]). Returns the reply or the handled error.

    HOLD_EXPIRED: the hold lapsed and the units went back to stock; nothing was sold.
    NOT_OWNER: someone else holds the seat.  NOT_HELD: not held (free, or already sold,
    e.g. a retried confirm); check SEAT.STATUS before telling the user it failed.
    """
    command = "SEAT.CONFIRM " + " ".join(map(str, units))
    try:
        reply = to_dict(call(r, "SEAT.CONFIRM", event, user, *units))
    except SeatqError as err:
        if err.code in ("HOLD_EXPIRED", "NOT_OWNER", "NOT_HELD"):
            handled(user, command, err)
            return err
        raise
    log(user, f"{command}: sold {reply['sold']}, {reply['remaining']} left in that pool")
    return reply


def must_be(result: dict | SeatqError, code: str | None, what: str) -> None:
    got = result.code if isinstance(result, SeatqError) else None
    if got != code:
        raise FlowFailure(f"{what}: expected {code or 'success'}, got {got or 'success'}")


# --------------------------------------------------------------------------------------
# The flow
# --------------------------------------------------------------------------------------

USERS = ["alice", "bob", "carol", "dave", "erin"]
SEATS = [f"A-{i}" for i in range(1, 7)]
GA_QTY = 10


def run(r: redis.Redis, event: str) -> None:
    if r.exists(event):
        raise FlowFailure(f"key {event!r} already exists: pass a new --event")

    # 1. Configure the event and add stock. QUEUE.CONFIG SET creates the event.
    call(r, "QUEUE.CONFIG", event, "SET", "RATE", 20, "BURST", 2, "CAPACITY", 3,
         "PASS-TTL", 60000, "REQUIRE-PASS", "on", "USER-LIMIT", 2)
    added = call(r, "SEAT.ADD", event, *SEATS)
    ga_total = call(r, "SEAT.ADD", event, "QTY", GA_QTY)
    log("setup", f"event {event}: RATE 20 BURST 2 CAPACITY 3 PASS-TTL 60000 REQUIRE-PASS on "
                 f"USER-LIMIT 2; {added} seats, {ga_total} GA units")

    # 2. Five users join. Each request carries its own idempotency key; alice's request is
    #    retried (say the HTTP client timed out) and answers DUPLICATE with her ticket.
    idem = {u: f"join-{u}-{uuid.uuid4().hex}" for u in USERS}
    tickets = {u: join(r, event, u, idem[u]) for u in USERS}
    if join(r, event, "alice", idem["alice"]) != tickets["alice"]:
        raise FlowFailure("DUPLICATE did not name alice's ticket")

    # 3. bob gives up before his turn and leaves the line; his ticket is then ended.
    left = call(r, "QUEUE.LEAVE", event, tickets["bob"])
    log("bob", f"QUEUE.LEAVE -> {left} (left the line)")
    if left != 1:
        raise FlowFailure(f"QUEUE.LEAVE of a waiting ticket answered {left}")
    expect_error(r, "TICKET_ENDED", "bob", "QUEUE.ADMIT", "QUEUE.ADMIT", event, tickets["bob"])

    # 4. Everyone else waits for their turn, each in their own thread (their own browser).
    #    Only the front of the line is admitted: the others are told NOT_READY with their
    #    position. BURST 2 lets two in at once, then RATE 20 one every 50 ms, so whoever
    #    reaches the front too soon is told RATE_LIMITED (which of these you see depends on
    #    the threads' timing). erin, at the front once dave is in, is told NOT_READY
    #    (retry_after_ms up to 1000) if she asks while the CAPACITY of 3 live sessions is
    #    full, until a purchase ends a session.
    buyers = ["alice", "carol", "dave", "erin"]
    sold_seats: dict[str, str] = {}  # seat -> buyer
    sold_ga: dict[str, int] = {}  # buyer -> GA units
    with ThreadPoolExecutor(max_workers=len(buyers)) as pool:
        passes = {u: pool.submit(wait_for_admission, r, event, u, tickets[u]) for u in buyers}

        def pass_of(user: str) -> str:
            return passes[user].result(timeout=20)

        for user in ("alice", "carol", "dave"):  # let the first three in: the venue is full
            pass_of(user)

        # 5a. alice: a hold without her pass, then with a forged one, then the real one.
        p = pass_of("alice")
        expect_error(r, "PASS_REQUIRED", "alice", "SEAT.HOLD A-1 A-2 (no PASS)",
                     "SEAT.HOLD", event, "alice", "A-1", "A-2")
        expect_error(r, "PASS_INVALID", "alice", "SEAT.HOLD A-1 A-2 (bad PASS)",
                     "SEAT.HOLD", event, "alice", "A-1", "A-2", "PASS", "0" * 32)
        held = hold_seats(r, event, "alice", p, 2, ["A-1", "A-2"])
        if held != ["A-1", "A-2"]:
            raise FlowFailure(f"alice held {held}")
        must_be(confirm(r, event, "alice", held), None, "alice's confirm")
        sold_seats.update(dict.fromkeys(held, "alice"))  # her session ends: erin can get in

        # 5b. carol wants 3 seats starting at A-2: A-2 is sold (SEAT_UNAVAILABLE), and 3 is
        #     over USER-LIMIT 2 (LIMIT_EXCEEDED), so she ends up with A-3 A-4.
        p = pass_of("carol")
        held = hold_seats(r, event, "carol", p, 3, ["A-2", "A-3", "A-4", "A-5"])
        if held != ["A-3", "A-4"]:
            raise FlowFailure(f"carol held {held}")
        must_be(confirm(r, event, "carol", held), None, "carol's confirm")
        sold_seats.update(dict.fromkeys(held, "carol"))
        # Her client retries the confirm (lost response): NOT_HELD, the seats are already
        # sold. SEAT.STATUS tells the app they are hers, so it answers success after all.
        must_be(confirm(r, event, "carol", held), "NOT_HELD", "carol's retried confirm")
        status = [to_dict(s) for s in call(r, "SEAT.STATUS", event, *held)]
        if not all(s["state"] == "sold" and s["holder"] == "carol" for s in status):
            raise FlowFailure(f"carol's seats after the retry: {status}")
        log("carol", "retried confirm: seats already sold to carol -> answer 200 after all")

        # 5c. dave holds A-5 A-6 for 1 second, is too slow (HOLD_EXPIRED: nothing sold, the
        #     seats went back to stock), and holds them again.
        p = pass_of("dave")
        held = hold_seats(r, event, "dave", p, 2, ["A-5", "A-6"], ttl_s=1)
        if held != ["A-5", "A-6"]:
            raise FlowFailure(f"dave held {held}")
        time.sleep(1.2)
        must_be(confirm(r, event, "dave", held), "HOLD_EXPIRED", "dave's late confirm")
        held = hold_seats(r, event, "dave", p, 2, ["A-5", "A-6"])
        if held != ["A-5", "A-6"]:
            raise FlowFailure(f"dave held {held} the second time")

        # 5d. erin (admitted once a purchase ended a session): every named seat is
        #     held or sold (SOLD_OUT), so she takes 2 GA units. A confirm of dave's seat
        #     from her is refused (NOT_OWNER).
        p = pass_of("erin")
        if hold_seats(r, event, "erin", p, 2, SEATS) is not None:
            raise FlowFailure("erin found a named seat, expected SOLD_OUT")
        must_be(confirm(r, event, "erin", ["A-5"]), "NOT_OWNER", "erin's confirm of A-5")
        reply = to_dict(call(r, "SEAT.HOLD", event, "erin", "QTY", 2, "PASS", p))
        log("erin", f"SEAT.HOLD QTY 2: hold {reply['hold']}, {reply['remaining']} GA left")
        must_be(confirm(r, event, "erin", ["QTY", 2]), None, "erin's GA confirm")
        sold_ga["erin"] = 2

    # 5e. dave changes his mind: he releases his seats instead of buying them, and leaves
    #     (QUEUE.LEAVE on an admitted ticket ends the session and frees its CAPACITY place).
    available = call(r, "SEAT.RELEASE", event, "dave", "A-5", "A-6")
    log("dave", f"SEAT.RELEASE A-5 A-6 -> {available} seat(s) available")
    log("dave", f"QUEUE.LEAVE -> {call(r, 'QUEUE.LEAVE', event, tickets['dave'])} (session ended)")

    # 6. Check the books.
    check(r, event, tickets, sold_seats, sold_ga)


def check(r: redis.Redis, event: str, tickets: dict[str, str],
          sold_seats: dict[str, str], sold_ga: dict[str, int]) -> None:
    info = to_dict(call(r, "SEAT.INFO", event))
    log("check", "SEAT.INFO " + " ".join(f"{k}={v}" for k, v in info.items()))
    problems = []
    for prefix in ("", "seats_", "ga_"):
        parts = [info[prefix + f] for f in ("sold", "held", "available")]
        if sum(parts) != info[prefix + "total"]:
            problems.append(f"{prefix}sold + {prefix}held + {prefix}available = {sum(parts)}"
                            f" != {prefix}total {info[prefix + 'total']}")
    if info["total"] != len(SEATS) + GA_QTY:
        problems.append(f"total {info['total']} != {len(SEATS) + GA_QTY}")
    if info["seats_sold"] != len(sold_seats):
        problems.append(f"seats_sold {info['seats_sold']} != {len(sold_seats)} confirmed")
    if info["ga_sold"] != sum(sold_ga.values()):
        problems.append(f"ga_sold {info['ga_sold']} != {sum(sold_ga.values())} confirmed")
    if info["held"] != 0:
        problems.append(f"{info['held']} unit(s) still held")

    for seat in (to_dict(s) for s in call(r, "SEAT.STATUS", event, *sold_seats)):
        log("check", f"SEAT.STATUS {seat['seat']}: {seat['state']} holder {seat['holder']}")
        if seat["state"] != "sold" or seat["holder"] != sold_seats[seat["seat"]]:
            problems.append(f"{seat['seat']} is {seat['state']}/{seat['holder']}, "
                            f"expected sold/{sold_seats[seat['seat']]}")

    # Every ticket has ended: bob and dave left, the buyers' sessions ended on confirm.
    for user, ticket in tickets.items():
        state = to_dict(call(r, "QUEUE.STATUS", event, ticket))["state"]
        if state != "left":
            problems.append(f"{user}'s ticket is {state}, expected left")
    if problems:
        raise FlowFailure("; ".join(problems))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0",
                        help="Redis URL (default: %(default)s)")
    parser.add_argument("--event", default=f"seatq-demo:{uuid.uuid4().hex[:12]}",
                        help="event key to create (default: a unique name)")
    args = parser.parse_args()

    r = redis.Redis.from_url(args.url, decode_responses=True, socket_timeout=5)
    try:
        run(r, args.event)
    except FlowFailure as err:
        print(f"flow FAILED: {err}", file=sys.stderr)
        return 1
    except (SeatqError, redis.RedisError, TimeoutError) as err:
        print(f"flow FAILED: unexpected {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print("flow ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
