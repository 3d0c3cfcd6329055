"""Sharded events (docs/sharding.md): where each command of a sharded event goes, shared by the
sync and asyncio handles (:class:`seatq.ShardedEvent`, :class:`seatq.asyncio.AsyncShardedEvent`).

A sharded event is K line shards (ordinary seatq event keys, spread over a cluster's primaries),
one inventory key holding the seats, and a meta record ``{<event>}:meta`` (a hash written by
``seatq-coordinator create``) naming them. A user belongs to one shard, :func:`shard_of`: their
QUEUE.* commands go to that shard's key, their SEAT.* commands to the inventory, which accepts
a pass issued by the shard the user belongs to.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from . import _commands as c
from ._commands import Arg, Call
from .errors import NotSharded
from .types import record, text

__all__ = ["shard_of", "meta_key", "ShardMap", "ShardedBase", "read_meta", "on_primary", "on_replica"]

#: The meta record's format this client reads (its ``version`` field).
META_VERSION = 1

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_U64 = (1 << 64) - 1


def _fnv1a64(data: bytes) -> int:
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _U64
    return h


def _mix(x: int) -> int:
    """The splitmix64 finalizer."""
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _U64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _U64
    return x ^ (x >> 31)


def _bytes(value: Arg) -> bytes:
    """A user ID or key as the bytes redis-py sends (text as UTF-8; text decoded from a reply
    with surrogate escapes gets its original bytes back)."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")


def shard_of(user: Arg, shards: int) -> int:
    """The shard (0 to ``shards - 1``) that ``user`` belongs to in an event of ``shards`` line
    shards: FNV-1a 64 over the user ID's bytes (text as UTF-8), the splitmix64 finalizer, then
    ``(h * shards) >> 64``; 0 when ``shards`` is 0 or 1. The same function as the module's and
    the coordinator's (``crates/sharding/src/hash.rs`` has the reference vectors)."""
    if shards <= 1:
        return 0
    return (_mix(_fnv1a64(_bytes(user))) * shards) >> 64


def meta_key(event: str) -> str:
    """The key of a sharded event's meta record: ``{<event>}:meta``."""
    if not event or "{" in event or "}" in event:
        raise ValueError(f"not a sharded event's name (1 or more characters, no braces): {event!r}")
    return f"{{{event}}}:meta"


@dataclass(frozen=True)
class ShardMap:
    """A sharded event as its meta record names it, and the key each command goes to: the
    user's shard for the line's commands, the inventory for the seats'. Each method returns the
    command to send (as :mod:`seatq._commands` builds it)."""

    event: str
    #: The line shards' keys, by index (K = ``len(shards)``).
    shards: Tuple[str, ...]
    #: The key holding the seats (SEAT.*).
    inventory: str
    #: The sharded event's identity (every key's ``SHARD-GROUP``; the passes' ``grp`` claim).
    group: int

    @property
    def meta_key(self) -> str:
        return meta_key(self.event)

    @classmethod
    def from_meta(cls, event: str, reply: Any) -> "ShardMap":
        """The map in an HGETALL reply of the meta record; :class:`NotSharded` when the record
        is missing or incomplete. Fields this client does not know (the coordinator's state)
        are ignored."""
        key = meta_key(event)
        meta = {k: text(v) for k, v in record(reply or {}).items()}
        if not meta:
            raise NotSharded(
                f"{event!r} is not a sharded event: there is no meta record {key}; create it with "
                f"`seatq-coordinator create {event} --shards K`",
                key,
            )

        def field(name: str) -> str:
            value = meta.get(name)
            if not value:
                raise NotSharded(f"the meta record {key} lacks {name}", key)
            return value

        def number(name: str) -> int:
            value = field(name)
            if not (value.isascii() and value.isdigit()):
                raise NotSharded(f"the meta record {key} has {name} {value!r}, not a number", key)
            return int(value)

        version = number("version")
        if version != META_VERSION:
            raise NotSharded(
                f"the meta record {key} is version {version}; this client reads version "
                f"{META_VERSION}: upgrade the seatq package",
                key,
            )
        k = number("shards")
        if k < 1:
            raise NotSharded(f"the meta record {key} has shards {k}", key)
        return cls(
            event=event,
            shards=tuple(field(f"shard:{i}") for i in range(k)),
            inventory=field("inventory"),
            group=number("group"),
        )

    def index_of(self, user: Arg) -> int:
        """The index of the shard ``user`` belongs to."""
        return shard_of(user, len(self.shards))

    def key_for(self, user: Arg) -> str:
        """The key of the shard ``user`` belongs to: where their QUEUE.* commands go."""
        return self.shards[self.index_of(user)]

    def checks(self) -> List[Call]:
        """QUEUE.CONFIG GET of every key's sharding settings, each reply checked against the
        record (:class:`NotSharded` when a key is missing or belongs elsewhere: a wrong K would
        send users to shards whose passes the inventory refuses)."""
        expected = list(enumerate(self.shards)) + [(len(self.shards), self.inventory)]
        return [self._check(key, index) for index, key in expected]

    def _check(self, key: str, index: int) -> Call:
        args, parse = c.config_get(key, ["SHARDS", "SHARD-INDEX", "SHARD-GROUP"])
        want = {"shards": len(self.shards), "shard-index": index, "shard-group": self.group}

        def check(reply: Any) -> None:
            got = parse(reply)
            if got != want:
                raise NotSharded(
                    f"{key} has SHARDS {got.get('shards')}, SHARD-INDEX {got.get('shard-index')}, "
                    f"SHARD-GROUP {got.get('shard-group')}, but the meta record {self.meta_key} "
                    f"says {want['shards']}, {index}, {self.group} (was the event recreated, or "
                    f"its meta record written by hand?)",
                    self.meta_key,
                )

        return args, check

    # --- the user's shard ------------------------------------------------------------------

    def enqueue(
        self, user: Arg, idempotency: Optional[Arg], data: Optional[Mapping[Arg, Arg]]
    ) -> Call:
        return c.enqueue(self.key_for(user), user, idempotency, data)

    def status(self, user: Arg) -> Call:
        return c.status(self.key_for(user), None, user)

    def admit(self, user: Arg) -> Call:
        return c.admit(self.key_for(user), None, user)

    def renew(self, user: Arg) -> Call:
        return c.renew(self.key_for(user), None, user)

    def leave(self, user: Arg) -> Call:
        return c.leave(self.key_for(user), None, user)

    def revoke(self, user: Arg) -> Call:
        return c.revoke(self.key_for(user), None, user)

    def verify(self, user: Arg, pass_: Arg) -> Call:
        return c.verify(self.key_for(user), pass_)

    # --- the inventory ---------------------------------------------------------------------

    def seat_add(self, seats: Sequence[Arg]) -> Call:
        return c.seat_add(self.inventory, seats)

    def seat_add_qty(self, qty: int) -> Call:
        return c.seat_add_qty(self.inventory, qty)

    def hold(
        self,
        user: Arg,
        seats: Optional[Sequence[Arg]],
        qty: Optional[int],
        ttl: Optional[int],
        pass_: Optional[Arg],
    ) -> Call:
        return c.hold(self.inventory, user, seats, qty, ttl, pass_)

    def release(self, user: Arg, seats: Optional[Sequence[Arg]], qty: Optional[int]) -> Call:
        return c.release(self.inventory, user, seats, qty)

    def confirm(self, user: Arg, seats: Optional[Sequence[Arg]], qty: Optional[int]) -> Call:
        return c.confirm(self.inventory, user, seats, qty)

    def seat_status(self, seats: Sequence[Arg]) -> Call:
        return c.seat_status(self.inventory, seats)

    def seat_info(self) -> Call:
        return c.seat_info(self.inventory)


class ShardedBase:
    """What the sync and asyncio handles share: the map they route by, and its keys."""

    map: ShardMap

    @property
    def event(self) -> str:
        return self.map.event

    @property
    def shards(self) -> Tuple[str, ...]:
        """The line shards' keys, by index."""
        return self.map.shards

    @property
    def inventory(self) -> str:
        """The key holding the seats."""
        return self.map.inventory

    @property
    def group(self) -> int:
        return self.map.group

    def key_for(self, user: Arg) -> str:
        """The key of the shard ``user`` belongs to."""
        return self.map.key_for(user)

    def index_of(self, user: Arg) -> int:
        """The index of the shard ``user`` belongs to."""
        return self.map.index_of(user)

    def __repr__(self) -> str:
        name, k = type(self).__name__, len(self.shards)
        return f"<{name} {self.event!r}: {k} shards, inventory {self.inventory!r}>"


def read_meta(event: str) -> Call:
    """HGETALL of the meta record, parsed into a :class:`ShardMap` (send it :func:`on_primary`
    of :func:`meta_key`: a replica may not have the record yet)."""
    return ["HGETALL", meta_key(event)], lambda reply: ShardMap.from_meta(event, reply)


def _slot_nodes(client: Any, key: Arg) -> List[Any]:
    """The nodes serving ``key``'s slot as the cluster client knows them, primary first (none
    for a standalone client, or a slot the client does not know)."""
    if not isinstance(client, (RedisCluster, AsyncRedisCluster)):
        return []
    return list(client.nodes_manager.slots_cache.get(client.keyslot(key)) or [])


def on_primary(client: Any, key: Arg) -> Dict[str, Any]:
    """``execute_command`` options that send a command on ``key`` to its slot's primary, also
    when the cluster client sends read commands such as HGETALL to replicas."""
    nodes = _slot_nodes(client, key)
    return {"target_nodes": nodes[0]} if nodes else {}


def on_replica(client: Any, key: Arg) -> Optional[Dict[str, Any]]:
    """``execute_command`` options that send a command on ``key`` to a replica of its slot
    (chosen at random), or ``None`` when there is none: a standalone client, or no replica
    serves the slot.

    redis-py sends READONLY (without which a replica redirects every command to its primary)
    only on the connections of a cluster client made with ``read_from_replicas=True`` or a
    ``load_balancing_strategy``: with any other cluster client this raises ``ValueError``."""
    if isinstance(client, (RedisCluster, AsyncRedisCluster)) and not (
        getattr(client, "read_from_replicas", False)
        or getattr(client, "load_balancing_strategy", None)
    ):
        raise ValueError(
            "reading from replicas needs a RedisCluster made with read_from_replicas=True (or a "
            "load_balancing_strategy): only then does redis-py send READONLY to the replicas"
        )
    replicas = _slot_nodes(client, key)[1:]
    return {"target_nodes": random.choice(replicas)} if replicas else None
