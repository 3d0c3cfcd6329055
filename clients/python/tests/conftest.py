"""Fixtures for the client's tests against real servers with seatq loaded.

The servers are started by the Rust suite (tests/clients.rs, through seatq's testkit) and named
here by environment variables:

    SEATQ_TEST_URL            a standalone server, redis://127.0.0.1:PORT/ (required)
    SEATQ_TEST_SERVER         its kind, redis or valkey (for messages)
    SEATQ_TEST_CLUSTER_URLS   the primaries of a 3-primary cluster, comma-separated (cluster
                              tests); each has a replica (the sharded events' replica reads
                              find them with CLUSTER SLOTS)
    SEATQ_TEST_PASS_KEYS      the seatq.pass-keys the servers were started with
    SEATQ_COORDINATOR         the seatq-coordinator binary (target/release/seatq-coordinator,
                              built by `cargo build --release`): the sharded events' tests
                              create and run events with it, and are skipped without it
    SEATQ_PROMETHEUS          a prometheus binary (the Prometheus test; else `prometheus` on PATH)

Each test uses event keys of its own (``event`` fixture), so tests never share state.
"""

from __future__ import annotations

import os
import uuid
from typing import Iterator, List

import pytest
import redis

from seatq import Seatq

PROTOCOLS = [2, 3]


def _url() -> str:
    url = os.environ.get("SEATQ_TEST_URL")
    if not url:
        pytest.exit("SEATQ_TEST_URL is not set: run through `cargo test --test clients` (see tests/clients.rs)", 2)
    return url


@pytest.fixture(scope="session")
def url() -> str:
    return _url()


@pytest.fixture(scope="session")
def server_kind() -> str:
    return os.environ.get("SEATQ_TEST_SERVER", "server")


def _given(name: str, what: str) -> str:
    """The environment variable ``name``; the test is skipped without it."""
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set ({what})")
    return value


@pytest.fixture(scope="session")
def pass_keys() -> str:
    return _given("SEATQ_TEST_PASS_KEYS", "the servers' seatq.pass-keys")


@pytest.fixture(scope="session")
def cluster_urls() -> List[str]:
    urls = [u for u in os.environ.get("SEATQ_TEST_CLUSTER_URLS", "").split(",") if u]
    if not urls:
        pytest.skip("SEATQ_TEST_CLUSTER_URLS is not set (no cluster started)")
    return urls


@pytest.fixture(scope="session")
def coordinator() -> str:
    return _given("SEATQ_COORDINATOR", "the seatq-coordinator binary")


@pytest.fixture
def event(request: pytest.FixtureRequest) -> str:
    """A fresh event key for this test."""
    return f"test:{request.node.name[:40]}:{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=PROTOCOLS, ids=lambda p: f"resp{p}")
def protocol(request: pytest.FixtureRequest) -> int:
    return request.param


@pytest.fixture
def sq(url: str, protocol: int) -> Iterator[Seatq]:
    """The sync client, once per protocol (RESP2, RESP3)."""
    client = Seatq.from_url(url, protocol=protocol)
    yield client
    client.close()


@pytest.fixture
def raw(url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client (RESP2, decoded) for setup and checks."""
    r = redis.Redis.from_url(url, decode_responses=True)
    yield r
    r.close()
