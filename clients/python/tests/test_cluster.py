"""Cluster routing: redis-py's RedisCluster (sync and asyncio, RESP2 and RESP3) sends every
seatq command straight to the node serving its event key, with no MOVED on the way.

redis-py routes a command it has no table entry for by the key positions the server declares in
its COMMAND reply (seatq's commands declare the event key, first argument); these tests check
that on every node: each node's errorstats count no MOVED, and each node ran exactly the
commands of the keys it serves.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Dict, Iterator, List

import pytest
import redis
from redis.cluster import RedisCluster

from seatq import Seatq, TryAgain
from seatq.asyncio import AsyncSeatq

EVENTS = 24
#: Keys of this run (the cluster may outlive a run when started by hand).
RUN = uuid.uuid4().hex[:8]


@pytest.fixture
def nodes(cluster_urls: List[str]) -> Iterator[List[redis.Redis]]:
    clients = [redis.Redis.from_url(u, decode_responses=True) for u in cluster_urls]
    yield clients
    for c in clients:
        c.close()


def _reset(nodes: List[redis.Redis]) -> None:
    for n in nodes:
        n.config_resetstat()


def _moved(nodes: List[redis.Redis]) -> int:
    return sum(n.info("errorstats").get("errorstat_MOVED", {}).get("count", 0) for n in nodes)


def _calls(node: redis.Redis, command: str) -> int:
    return node.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0)


def _owners(nodes: List[redis.Redis], keys: List[str]) -> Dict[str, int]:
    """Which node (index in `nodes`) serves each key, from CLUSTER SLOTS."""
    slots = nodes[0].execute_command("CLUSTER", "SLOTS")
    ports = [n.connection_pool.connection_kwargs["port"] for n in nodes]
    owner = {}
    for key in keys:
        slot = nodes[0].cluster("KEYSLOT", key)
        for start, end, primary, *_ in slots:
            if int(start) <= slot <= int(end):
                owner[key] = ports.index(int(primary[1]))
    return owner


def _sale(sq: Seatq, event: str, user: str) -> None:
    """The whole flow on one event: every command that a gateway uses."""
    sq.config_set(event, rate=1000, burst=1000)
    sq.seat_add(event, "A1", "A2")
    sq.seat_add_qty(event, 3)
    adm = sq.wait_for_pass(event, user, timeout=10)
    assert sq.verify(event, adm.pass_).valid
    sq.renew(event, user=user)
    assert sq.status(event, user=user).claimed
    sq.hold(event, user, ["A1"], pass_=adm.pass_)
    sq.release(event, user, ["A1"])
    sq.hold(event, user, qty=2, pass_=adm.pass_)
    assert sq.confirm(event, user, qty=2).sold == 2
    assert [s.state for s in sq.seat_status(event, "A1", "A2")] == ["available", "available"]
    assert sq.seat_info(event).sold == 2
    assert sq.queue_info(event).claimed_total == 1
    assert sq.queue_len(event) == 0 and sq.queue_range(event).entries == []
    sq.pause(event), sq.resume(event), sq.close_line(event), sq.reopen_line(event)
    sq.config_get(event, "rate")


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
def test_sync_cluster_routes_by_event_key(cluster_urls: List[str], nodes: List[redis.Redis], protocol: int) -> None:
    keys = [f"route:{RUN}:{protocol}:{i}" for i in range(EVENTS)]
    owners = _owners(nodes, keys)
    assert len(set(owners.values())) == len(nodes), "the keys should land on every node"
    sq = Seatq.from_url(cluster_urls[0], cluster=True, protocol=protocol)
    assert isinstance(sq.redis, RedisCluster)
    _reset(nodes)
    for i, key in enumerate(keys):
        _sale(sq, key, f"user{i}")
    assert _moved(nodes) == 0
    per_node = Counter(owners.values())
    for i, node in enumerate(nodes):
        assert _calls(node, "queue.enqueue") == per_node[i]
        assert _calls(node, "seat.confirm") == per_node[i]
    sq.close()


def test_async_cluster_routes_by_event_key(cluster_urls: List[str], nodes: List[redis.Redis]) -> None:
    keys = [f"aroute:{RUN}:{i}" for i in range(EVENTS)]
    owners = _owners(nodes, keys)

    async def main() -> None:
        sq = AsyncSeatq.from_url(cluster_urls[0], cluster=True, protocol=3)
        await sq.queue_len(keys[0])  # the client learns the slots and the commands' key specs
        _reset(nodes)
        for key in keys:
            await sq.config_set(key, rate=1000, burst=1000)
            await sq.seat_add_qty(key, 2)
        admissions = await asyncio.gather(*(sq.wait_for_pass(k, "u", timeout=10) for k in keys))
        for key, adm in zip(keys, admissions):
            await sq.hold(key, "u", qty=1, pass_=adm.pass_)
            assert (await sq.confirm(key, "u", qty=1)).sold == 1
        await sq.close()

    asyncio.run(main())
    assert _moved(nodes) == 0
    per_node = Counter(owners.values())
    for i, node in enumerate(nodes):
        assert _calls(node, "queue.enqueue") == per_node[i]


def test_moved_is_counted(nodes: List[redis.Redis]) -> None:
    """The check above means something: a command sent to another node's key is a MOVED."""
    key = "route:probe"
    owner = _owners(nodes, [key])[key]
    _reset(nodes)
    with pytest.raises(redis.exceptions.ResponseError) as e:
        nodes[(owner + 1) % len(nodes)].execute_command("QUEUE.LEN", key)
    # redis-py 8 raises MovedError; redis-py 5 a ResponseError with the whole line.
    assert isinstance(e.value, redis.exceptions.MovedError) or str(e.value).startswith("MOVED")
    assert _moved(nodes) == 1


def test_tryagain_when_the_journal_is_missing(cluster_urls: List[str], nodes: List[redis.Redis]) -> None:
    """In a cluster, a journal missing while seatq expects it (a slot migration moving the
    event and its journal one at a time) answers TRYAGAIN. On the owner's own connection the
    client raises TryAgain; RedisCluster retries TRYAGAIN itself and then gives up with
    ClusterError."""
    key = f"{{tryagain-{RUN}}}:ev"
    sq = Seatq.from_url(cluster_urls[0], cluster=True)
    sq.enqueue(key, "u1")
    journal = sq.queue_info(key).journal_key
    assert journal == f"{key}:journal"
    sq.redis.delete(journal)
    owner = nodes[_owners(nodes, [key])[key]]
    direct = Seatq(owner)
    with pytest.raises(TryAgain) as e:
        direct.enqueue(key, "u2")
    assert "journal" in e.value.detail
    with pytest.raises((TryAgain, redis.exceptions.ClusterError)):
        sq.enqueue(key, "u2")
    sq.config_set(key, journal=True)  # starts a new journal
    joined = sq.enqueue(key, "u2")  # the refused joins changed nothing: u2 gets the next serial
    assert joined.ticket.startswith("1.") and not joined.existing
    sq.close()
