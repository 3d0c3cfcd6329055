"""Sharded events through the client (docs/sharding.md): events created and run by the real
``seatq-coordinator`` (SEATQ_COORDINATOR) on the test cluster (3 primaries, a replica each).

- :func:`seatq.shard_of` gives the module's reference vectors, and the meta record is read
  strictly (no server);
- users joined through the handle are on the key their hash names, and nowhere else;
- a whole sale: join, wait for the pass, hold on the inventory with the shard's pass, confirm
  (sync and asyncio), with sessions ended by the coordinator when buyers confirm;
- replica reads answer what the primary answers once replicated, and fall back to the primary
  when the replica has not got the join yet, no longer serves the slot, or there is no replica;
- redis-py's RedisCluster follows ASK and MOVED for seatq's commands while a shard moves;
- an event without a meta record, a record lacking a shard, and a record whose K disagrees
  with the keys are refused with :class:`seatq.NotSharded`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import subprocess
import tempfile
import uuid
from collections import Counter
from typing import IO, Callable, Dict, Iterator, List, Tuple

import pytest
import redis
import redis.cluster

from seatq import NoSuchTicket, NotSharded, PassInvalid, Seatq, ShardMap, WrongShard, shard_of
from seatq._sharded import _fnv1a64
from seatq.asyncio import AsyncSeatq
from seatq.passes import verify_pass
from seatq.types import record

from helpers import eventually

K = 3
RUN = uuid.uuid4().hex[:8]
_NEXT = itertools.count()

# A cluster client whose connections send READONLY (redis-py 5.3 replaced read_from_replicas by
# load_balancing_strategy; both make it send READONLY).
if hasattr(redis.cluster, "LoadBalancingStrategy"):
    REPLICA_READS: Dict[str, object] = {
        "load_balancing_strategy": redis.cluster.LoadBalancingStrategy.ROUND_ROBIN_REPLICAS
    }
else:
    REPLICA_READS = {"read_from_replicas": True}


# --- no server ---------------------------------------------------------------------------------


def test_shard_of_gives_the_reference_vectors() -> None:
    # crates/sharding/src/hash.rs, known_values: the module and the coordinator agree on these.
    assert _fnv1a64(b"") == 0xCBF29CE484222325
    assert _fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    users = ["alice", "bob", "user-1", "user-2", "", "\u00e9"]
    assert [shard_of(u, 16) for u in users] == [12, 6, 12, 4, 15, 2]
    assert shard_of("anyone", 1) == 0 and shard_of("anyone", 0) == 0
    # The user's bytes decide: bytes, text, and text decoded with surrogate escapes agree, and
    # an int is what redis-py sends for it.
    assert shard_of(b"\xc3\xa9", 16) == shard_of("\u00e9", 16) == 2
    assert shard_of(b"\xff", 16) == shard_of(b"\xff".decode("utf-8", "surrogateescape"), 16)
    assert shard_of(42, 16) == shard_of("42", 16)
    counts = Counter(shard_of(f"user-{i}", K) for i in range(30_000))
    assert sorted(counts) == [0, 1, 2] and all(abs(n - 10_000) < 300 for n in counts.values())


def _meta(**fields: object) -> Dict[bytes, bytes]:
    """An HGETALL reply of a meta record (bytes, as without decode_responses)."""
    base: Dict[str, object] = {
        "version": 1, "shards": 3, "inventory": "{s}:seats", "group": 77,
        "shard:0": "{s:s0:4}", "shard:1": "{s:s1:0}", "shard:2": "{s:s2:9}",
    }
    base.update(fields)
    return {k.encode(): str(v).encode() for k, v in base.items() if v is not None}


def test_the_meta_record_is_read_strictly() -> None:
    # The coordinator's state fields are not the client's business.
    m = ShardMap.from_meta("s", _meta(epoch=7, ranks_at_ms=123))
    assert (m.shards, m.inventory, m.group, m.meta_key) == (
        ("{s:s0:4}", "{s:s1:0}", "{s:s2:9}"), "{s}:seats", 77, "{s}:meta")
    # The line's commands go to the user's shard, the seats' to the inventory.
    for user in ["alice", "bob", "carol", "dave"]:
        key = m.shards[shard_of(user, 3)]
        assert m.key_for(user) == key
        assert m.status(user)[0] == ["QUEUE.STATUS", key, "USER", user]
        assert m.enqueue(user, "req-1", None)[0] == ["QUEUE.ENQUEUE", key, user, "IDEMPOTENCY", "req-1"]
        assert m.hold(user, ["A1"], None, None, "p")[0] == ["SEAT.HOLD", "{s}:seats", user, "A1", "PASS", "p"]
        assert m.confirm(user, None, 2)[0] == ["SEAT.CONFIRM", "{s}:seats", user, "QTY", 2]
    # A stale shard:3 (a record rewritten by `create --force` with fewer shards) is ignored, as
    # the coordinator ignores it.
    assert ShardMap.from_meta("s", _meta(**{"shard:3": "{s:s3:0}"})).shards == m.shards
    refused = [
        ({}, "no meta record {s}:meta; create it with `seatq-coordinator create s --shards K`"),
        (_meta(**{"shard:1": None}), "lacks shard:1"),
        (_meta(inventory=None), "lacks inventory"),
        (_meta(version=2), "version 2; this client reads version 1"),
        (_meta(version=None), "lacks version"),
        (_meta(shards="three"), "shards 'three', not a number"),
        (_meta(shards=0), "shards 0"),
    ]
    for reply, message in refused:
        with pytest.raises(NotSharded) as e:
            ShardMap.from_meta("s", reply)
        assert message in str(e.value) and e.value.meta_key == "{s}:meta"
    with pytest.raises(ValueError):
        ShardMap.from_meta("s}x", _meta())
    # Each key's settings are checked against the record: shard i of 3 in group 77.
    checks = m.checks()
    assert [args[1] for args, _ in checks] == [*m.shards, "{s}:seats"]
    _, parse = checks[1]
    parse({"shards": 3, "shard-index": 1, "shard-group": 77})
    for wrong in [{"shards": 2, "shard-index": 1, "shard-group": 77},
                  {"shards": 3, "shard-index": 2, "shard-group": 77},
                  {"shards": 0, "shard-index": 0, "shard-group": 0}]:
        with pytest.raises(NotSharded, match=r"\{s:s1:0\} has SHARDS"):
            parse(wrong)


# --- the cluster -------------------------------------------------------------------------------


Node = Tuple[str, int]


def _node(address: Node) -> redis.Redis:
    return redis.Redis(host=address[0], port=address[1], decode_responses=True)


def _address(url: str) -> Node:
    host, port = url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
    return host, int(port)


def _slot_nodes(asked: Node, key: str) -> Tuple[Node, List[Node]]:
    """The primary serving ``key``'s slot and its replicas, as node ``asked`` sees them."""
    with _node(asked) as n:
        slot = n.cluster("KEYSLOT", key)
        for start, end, primary, *replicas in n.execute_command("CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                return (primary[0], int(primary[1])), [(r[0], int(r[1])) for r in replicas]
    raise AssertionError(f"no node serves slot {slot}")


def _calls(address: Node, command: str) -> int:
    with _node(address) as n:
        return n.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0)


def _errors(address: Node, code: str) -> int:
    with _node(address) as n:
        return n.info("errorstats").get(f"errorstat_{code}", {}).get("count", 0)


def _replicated(primary: Node) -> None:
    with _node(primary) as n:
        assert n.execute_command("WAIT", 1, 5000) >= 1, "the replica did not acknowledge"


def _coordinator(coordinator: str, *args: str) -> str:
    out = subprocess.run([coordinator, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"seatq-coordinator {' '.join(args)}:\n{out.stdout}{out.stderr}"
    return out.stdout


class Sales:
    """Sharded events of K line shards made with ``seatq-coordinator create`` (``paused``: all
    their shards paused with ``seatq-coordinator each``, nobody is called), each with ``seatq-
    coordinator run`` in the background until :meth:`stop`."""

    def __init__(self, binary: str, cluster_urls: List[str]) -> None:
        self.binary = binary
        self.cluster_urls = cluster_urls
        self.urls = [a for url in cluster_urls for a in ("--url", url)]
        self.running: Dict[str, Tuple[subprocess.Popen, IO[bytes]]] = {}

    def __call__(self, paused: bool = False, **settings: int) -> str:
        event = f"sale-{RUN}-{next(_NEXT)}"
        sets = [a for name, value in settings.items() for a in ("--set", name.replace("_", "-").upper(), str(value))]
        _coordinator(self.binary, "create", event, "--shards", str(K), *self.urls, *sets)
        if paused:
            _coordinator(self.binary, "each", event, "QUEUE.PAUSE", *self.urls)
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen([self.binary, "run", event, "--quiet", *self.urls], stdout=log, stderr=log)
        self.running[event] = (proc, log)
        # The coordinator holds the event's lease once it runs.
        with redis.cluster.RedisCluster.from_url(self.cluster_urls[0], decode_responses=True) as rc:
            eventually(lambda: rc.get(f"{{{event}}}:coordinator") or proc.poll() is not None, timeout=15)
        assert proc.poll() is None, f"seatq-coordinator run exited with {proc.returncode}: {_tail(log)}"
        return event

    @contextlib.contextmanager
    def coordinator_stopped(self, event: str) -> Iterator[None]:
        """The event's coordinator stopped (SIGSTOP) meanwhile: the servers' counters count only
        the test's commands."""
        proc, _ = self.running[event]
        proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stops the coordinators; fails if one died before."""
        died = []
        for event, (proc, log) in self.running.items():
            if proc.poll() is not None:
                died.append(f"{event} ({proc.returncode}): {_tail(log)}")
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        assert not died, f"seatq-coordinator run died during the test: {died}"


def _tail(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-2000:]


@pytest.fixture
def sales(coordinator: str, cluster_urls: List[str]) -> Iterator[Sales]:
    made = Sales(coordinator, cluster_urls)
    yield made
    made.stop()


@pytest.fixture
def cluster(cluster_urls: List[str]) -> Iterator[redis.cluster.RedisCluster]:
    """A plain cluster client, for checks."""
    rc = redis.cluster.RedisCluster.from_url(cluster_urls[0], decode_responses=True)
    yield rc
    rc.close()


def _users_of(shard: int, n: int, prefix: str = "user") -> List[str]:
    return [u for u in (f"{prefix}-{i}" for i in range(10_000)) if shard_of(u, K) == shard][:n]


def test_users_land_on_the_shard_their_hash_names(
    sales: Sales, cluster_urls: List[str], cluster: redis.cluster.RedisCluster, protocol: int
) -> None:
    event = sales(paused=True)
    sq = Seatq.from_url(cluster_urls[0], cluster=True, protocol=protocol)
    sale = sq.sharded(event)
    meta = cluster.hgetall(f"{{{event}}}:meta")
    assert sale.shards == tuple(meta[f"shard:{i}"] for i in range(K)) and sale.inventory == meta["inventory"]
    assert sale.group == int(meta["group"])
    users = [f"u{i}" for i in range(40)]
    tickets = {}
    for u in users:
        joined = sale.enqueue(u)
        assert joined.state == "waiting" and not joined.existing
        tickets[u] = joined.ticket
    for u in users:
        for i, key in enumerate(sale.shards):
            if i == shard_of(u, K):
                assert sale.key_for(u) == key and sale.index_of(u) == i
                st = cluster.execute_command("QUEUE.STATUS", key, "USER", u)
                assert record(st)["ticket"] == tickets[u]
            else:
                with pytest.raises(redis.exceptions.ResponseError, match="NO_SUCH_TICKET"):
                    cluster.execute_command("QUEUE.STATUS", key, "USER", u)
    per_shard = Counter(shard_of(u, K) for u in users)
    assert [cluster.execute_command("QUEUE.LEN", key) for key in sale.shards] == [per_shard[i] for i in range(K)]
    assert all(per_shard[i] > 0 for i in range(K))
    # Positions are within the user's shard, in join order.
    for i in range(K):
        mine = [u for u in users if shard_of(u, K) == i]
        assert [sale.status(u).position for u in mine] == list(range(1, len(mine) + 1))
    assert cluster.execute_command("QUEUE.LEN", sale.inventory) == 0
    # The coordinator writes its state into the meta record (besides the version, K, the
    # inventory, the group and the shards); the client reads past it.
    eventually(lambda: len(cluster.hgetall(f"{{{event}}}:meta")) > 4 + K)
    before = sale.map
    assert sale.refresh() == before and sale.map is not before
    sq.close()


def test_a_whole_sale_join_wait_hold_confirm(
    sales: Sales, cluster_urls: List[str], pass_keys: str
) -> None:
    # CAPACITY 2 over 3 shards: the third buyer is called only once the coordinator has ended a
    # buyer's session on its shard (SEAT.CONFIRM on the inventory, then SHARD.COMPLETE).
    event = sales(rate=50, burst=5, capacity=2, claim_ttl=2000, pass_ttl=60_000)
    sq = Seatq.from_url(cluster_urls[0], cluster=True, protocol=3)
    sale = sq.sharded(event)
    buyers = [_users_of(i, 2, "buyer")[j] for j in range(2) for i in range(K)]
    sale.seat_add(*(f"A{i}" for i in range(len(buyers))))
    for i, user in enumerate(buyers):
        admission = sale.wait_for_pass(user, timeout=30)
        claims = verify_pass(admission.pass_, pass_keys, event=sale.key_for(user), user=user)
        assert (claims.group, claims.shard) == (sale.group, shard_of(user, K))
        assert sale.verify(user, admission.pass_).valid
        hold = sale.hold(user, [f"A{i}"], pass_=admission.pass_)
        assert (hold.seats, hold.qty) == (1, 0)
        assert sale.confirm(user, [f"A{i}"]).sold == 1
    assert sale.seat_info().sold == len(buyers)
    assert [s.state for s in sale.seat_status("A0", "A5")] == ["sold", "sold"]
    # The buyers' sessions end on their shards.
    for user in buyers:
        eventually(lambda: _no_ticket(lambda: sale.status(user)))
    sq.close()


def _no_ticket(status: Callable[[], object]) -> bool:
    try:
        status()
    except NoSuchTicket:
        return True
    return False


def test_a_join_on_the_wrong_shard_is_refused(sales: Sales, cluster_urls: List[str]) -> None:
    """A shard takes only the users its hash names (so a user is on one shard), and the
    inventory takes only a pass issued for the user by the group's shards."""
    event = sales(rate=50, burst=5, capacity=10)
    sq = Seatq.from_url(cluster_urls[0], cluster=True)
    sale = sq.sharded(event)
    sale.seat_add_qty(2)
    user = _users_of(0, 1)[0]
    with pytest.raises(WrongShard) as e:
        sq.enqueue(sale.shards[1], user)  # not through the handle
    assert e.value.shard == 0
    assert sq.queue_len(sale.shards[1]) == 0
    admission = sale.wait_for_pass(user, timeout=30)
    other = _users_of(0, 2)[1]
    with pytest.raises(PassInvalid):
        sale.hold(other, qty=1, pass_=admission.pass_)  # another user's pass
    assert sale.hold(user, qty=1, pass_=admission.pass_).qty == 1
    sq.close()


def test_replica_reads_answer_as_the_primary_and_fall_back(
    sales: Sales, cluster_urls: List[str]
) -> None:
    event = sales(paused=True)
    sq = Seatq.from_url(cluster_urls[0], cluster=True, protocol=3, **REPLICA_READS)
    sale = sq.sharded(event)
    users = _users_of(0, 4)
    for u in users[:3]:
        sale.enqueue(u)
    primary, replicas = _slot_nodes(_address(cluster_urls[0]), sale.shards[0])
    assert replicas, "the test cluster has a replica per primary (tests/clients.rs)"
    (replica,) = replicas
    _replicated(primary)
    on_replica, on_primary = _calls(replica, "queue.status"), _calls(primary, "queue.status")
    for position, u in enumerate(users[:3], 1):
        seen = sale.status(u, from_replica=True)
        st = sale.status(u)
        assert (seen.ticket, seen.state, seen.position, seen.ahead) == (st.ticket, "waiting", position, position - 1)
    assert _calls(replica, "queue.status") == on_replica + 3
    assert _calls(primary, "queue.status") == on_primary + 3

    # The replica stops replicating (it cannot log in to its primary): a new join is not there.
    with _node(replica) as r:
        r.config_set("masterauth", "not-the-password")
        r.client_kill_filter(_type="master")
        try:
            eventually(lambda: r.info("replication")["master_link_status"] == "down")
            late = users[3]
            sale.enqueue(late)
            missing = _errors(replica, "NO_SUCH_TICKET")
            on_primary = _calls(primary, "queue.status")
            assert sale.status(late, from_replica=True).position == 4  # the primary answered
            assert _errors(replica, "NO_SUCH_TICKET") == missing + 1
            assert _calls(primary, "queue.status") == on_primary + 1
        finally:
            r.config_set("masterauth", "")
    _replicated(primary)
    assert sale.status(late, from_replica=True).position == 4
    assert _errors(replica, "NO_SUCH_TICKET") == missing + 1
    # A user with no ticket anywhere: the replica and then the primary say so.
    with pytest.raises(NoSuchTicket):
        sale.status("nobody", from_replica=True)
    # A cluster client that does not send READONLY cannot read from replicas.
    plain = Seatq.from_url(cluster_urls[0], cluster=True)
    with pytest.raises(ValueError, match="read_from_replicas"):
        plain.sharded(event).status(users[0], from_replica=True)
    plain.close()
    sq.close()


def test_asyncio_handle(sales: Sales, cluster_urls: List[str], cluster: redis.cluster.RedisCluster) -> None:
    event = sales(rate=100, burst=10, capacity=100)
    buyers = [f"abuyer-{i}" for i in range(6)]

    async def main() -> None:
        sq = AsyncSeatq.from_url(cluster_urls[0], cluster=True, protocol=3, **REPLICA_READS)
        sale = await sq.sharded(event)
        assert sale.shards == (await sq.sharded(event)).shards
        assert await sale.seat_add_qty(len(buyers)) == len(buyers)
        admissions = await asyncio.gather(*(sale.wait_for_pass(u, timeout=30) for u in buyers))
        for user in buyers:
            primary, _ = _slot_nodes(_address(cluster_urls[0]), sale.key_for(user))
            _replicated(primary)
            seen, st = await sale.status(user, from_replica=True), await sale.status(user)
            assert (seen.ticket, seen.state) == (st.ticket, "admitted") and st.claimed
        for user, admission in zip(buyers, admissions):
            await sale.hold(user, qty=1, pass_=admission.pass_)
            assert (await sale.confirm(user, qty=1)).sold == 1
        assert (await sale.seat_info()).sold == len(buyers)
        with pytest.raises(NoSuchTicket):
            await sale.status("nobody", from_replica=True)
        await sq.close()

    asyncio.run(main())
    per_shard = Counter(shard_of(u, K) for u in buyers)
    sale = Seatq(cluster).sharded(event)
    assert [Seatq(cluster).queue_info(key).claimed_total for key in sale.shards] == [per_shard[i] for i in range(K)]


def test_redis_cluster_follows_ask_and_moved_while_a_shard_moves(
    sales: Sales, cluster_urls: List[str], cluster: redis.cluster.RedisCluster
) -> None:
    event = sales(paused=True)
    sq = Seatq.from_url(cluster_urls[0], cluster=True)
    reader = Seatq.from_url(cluster_urls[0], cluster=True, **REPLICA_READS)
    sale, read = sq.sharded(event), reader.sharded(event)
    first, second, third = _users_of(0, 3)
    sale.enqueue(first)
    key = sale.shards[0]
    journal = sq.queue_info(key).journal_key
    src, (src_replica,) = _slot_nodes(_address(cluster_urls[0]), key)
    dst, _ = _slot_nodes(_address(cluster_urls[0]), sale.shards[1])
    assert src != dst, "seatq-coordinator create puts the shards on different primaries"
    _replicated(src)
    assert read.status(first, from_replica=True).position == 1
    slot = cluster.keyslot(key)
    # The coordinator, stopped meanwhile, adds no redirection of its own to the counts.
    with sales.coordinator_stopped(event):
        with _node(src) as s, _node(dst) as d:
            src_id, dst_id = s.cluster("MYID"), d.cluster("MYID")
            d.cluster("SETSLOT", slot, "IMPORTING", src_id)
            s.cluster("SETSLOT", slot, "MIGRATING", dst_id)
            s.execute_command("MIGRATE", dst[0], dst[1], "", 0, 5000, "KEYS", key, journal)
        # The keys are on dst, the slot still src's: src answers ASK, which the client follows
        # (a read and a write).
        asked = _errors(src, "ASK")
        assert sale.status(first).position == 1
        assert sale.enqueue(second).position == 2
        assert _errors(src, "ASK") == asked + 2
        others = [a for a in map(_address, cluster_urls) if a not in (src, dst)]
        for address in [dst, src, *others]:
            with _node(address) as n:
                n.cluster("SETSLOT", slot, "NODE", dst_id)
        # The slot is dst's: src, and its replica once it has heard, answer MOVED, which the
        # client follows.
        eventually(lambda: _slot_nodes(src_replica, key)[0] == dst)
        moved, replica_moved = _errors(src, "MOVED"), _errors(src_replica, "MOVED")
        assert sale.enqueue(third).position == 3
        assert _errors(src, "MOVED") == moved + 1
        assert read.status(third, from_replica=True).position == 3
        assert _errors(src_replica, "MOVED") == replica_moved + 1
    assert [sale.status(u).position for u in (first, second, third)] == [1, 2, 3]
    sq.close()
    reader.close()


def test_events_without_a_valid_meta_record_are_refused(
    sales: Sales, cluster_urls: List[str], cluster: redis.cluster.RedisCluster
) -> None:
    sq = Seatq.from_url(cluster_urls[0], cluster=True)
    with pytest.raises(NotSharded, match="create it with `seatq-coordinator create") as e:
        sq.sharded(f"none-{RUN}")
    assert e.value.meta_key == f"{{none-{RUN}}}:meta"
    # A meta record written by hand that lacks a shard.
    hand = f"hand-{RUN}"
    cluster.hset(f"{{{hand}}}:meta", mapping={"version": 1, "shards": 2, "inventory": f"{{{hand}}}:seats",
                                              "group": 5, "shard:0": f"{{{hand}:s0:0}}"})
    with pytest.raises(NotSharded, match="lacks shard:1"):
        sq.sharded(hand)
    # A meta record whose K disagrees with the keys: users would land on the wrong shards.
    event = sales()
    sale = sq.sharded(event)
    good = sale.map
    meta = f"{{{event}}}:meta"
    cluster.hset(meta, "shards", 2)
    with pytest.raises(NotSharded, match=r"has SHARDS 3, SHARD-INDEX 0, SHARD-GROUP \d+, but the meta record"):
        sale.refresh()
    assert sale.map is good  # a failed refresh keeps the map the handle had
    cluster.hset(meta, mapping={"shards": 4, "shard:3": f"{{{event}:s3:0}}"})  # a key never created
    with pytest.raises(NotSharded, match=r"has SHARDS 3, SHARD-INDEX 0"):
        sale.refresh()
    cluster.hset(meta, "shards", 3)
    assert sale.refresh() == good
    sq.close()


def test_recreating_with_fewer_shards_leaves_no_stale_shard(
    coordinator: str, cluster_urls: List[str], cluster: redis.cluster.RedisCluster
) -> None:
    """``create --force`` with a smaller K drops the old record's extra shard fields and keeps
    the coordinators' epoch (shards refuse grants from an older one)."""
    event = f"fewer-{RUN}"
    urls = [a for url in cluster_urls for a in ("--url", url)]
    _coordinator(coordinator, "create", event, "--shards", "3", *urls)
    meta_key = f"{{{event}}}:meta"
    cluster.hincrby(meta_key, "epoch", 7)
    _coordinator(coordinator, "create", event, "--shards", "2", "--force", *urls)
    meta = cluster.hgetall(meta_key)
    assert meta["shards"] == "2" and meta["epoch"] == "7"
    assert sorted(f for f in meta if f.startswith("shard:")) == ["shard:0", "shard:1"]
    sq = Seatq.from_url(cluster_urls[0], cluster=True)
    assert len(sq.sharded(event).shards) == 2
    sq.close()


def test_no_replica_means_the_primary(sq: Seatq, raw: redis.Redis, event: str) -> None:
    """On a standalone server (no replica known) a replica read is a primary read; the handle
    works there too, on an event laid out by hand as the coordinator lays them out."""
    name = event.replace(":", "-")
    shards = [f"{{{name}:s{i}:0}}" for i in range(2)]
    inventory = f"{{{name}}}:seats"
    for index, key in enumerate([*shards, inventory]):
        sq.config_set(key, shards=2, shard_index=index, shard_group=9)
    raw.hset(f"{{{name}}}:meta", mapping={"version": 1, "shards": 2, "inventory": inventory, "group": 9,
                                         **{f"shard:{i}": k for i, k in enumerate(shards)}})
    sale = sq.sharded(name)
    sq.pause(shards[shard_of("alice", 2)])
    joined = sale.enqueue("alice")
    st = sale.status("alice", from_replica=True)
    assert (st.ticket, st.position) == (joined.ticket, 1)
    assert raw.execute_command("QUEUE.LEN", sale.key_for("alice")) == 1
