"""seatq-exporter against a real server under load: scraped over HTTP, every metric checked for
its type, labels and value (against INFO seatq, QUEUE.INFO and SEAT.INFO)."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import urllib.request
import uuid
from typing import Dict, Iterator, Tuple

import pytest
import redis
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from seatq import NotReady, Seatq
from seatq.exporter import SeatqCollector, command_label, parse_info, read_info

from helpers import capacity_one, eventually

Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int, openmetrics: bool = False) -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if openmetrics:
        req.add_header("Accept", "application/openmetrics-text; version=1.0.0")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read().decode()


def families(text: str) -> Tuple[Dict[str, str], Samples]:
    """(family name -> type, (sample name, labels) -> value)."""
    types: Dict[str, str] = {}
    samples: Samples = {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return types, samples


def exporter(url: str, port: int, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "seatq.exporter", "--redis-url", url, "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def up() -> bool:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            scrape(port)
            return True
        except OSError:
            return False

    eventually(up, 15, 0.1)
    return proc


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def loaded(url: str, run_id: str) -> Iterator[Dict[str, str]]:
    """Events under load: three lines of different lengths behind a taken CAPACITY, one event
    with a sale, paused and closed; refused ADMITs (NOT_READY) and a few other errors."""
    sq = Seatq.from_url(url)
    ev = {name: f"exp:{run_id}:{name}" for name in ("big", "mid", "small", "named")}
    for name, waiting in (("big", 30), ("mid", 10), ("small", 2)):
        capacity_one(sq, ev[name])
        for i in range(waiting):
            sq.enqueue(ev[name], f"{name}{i}")
    named = ev["named"]
    sq.config_set(named, require_pass=False)
    sq.seat_add(named, "A1", "A2", "A3")
    sq.seat_add_qty(named, 10)
    sq.enqueue(named, "buyer")
    sq.hold(named, "buyer", ["A1"])
    sq.hold(named, "buyer", qty=4)
    sq.confirm(named, "buyer", qty=3)
    sq.pause(named)
    sq.close_line(named)
    refused = 0
    for i in range(25):
        try:
            sq.admit(ev["big"], user=f"big{i}")
        except NotReady:
            refused += 1
    assert refused == 25
    yield ev
    # The server is shared with the other tests: these lines must not rank in their top N.
    for key in ev.values():
        sq.redis.delete(key, sq.queue_info(key).journal_key)
    sq.close()


def test_metrics_types_and_values(url: str, loaded: Dict[str, str]) -> None:
    port = free_port()
    proc = exporter(url, port, "--event", loaded["named"], "--top", "2")
    try:
        text = scrape(port)
        info = parse_info(read_info(redis.Redis.from_url(url)))
    finally:
        proc.terminate()
        proc.wait(10)
    types, samples = families(text)

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("seatq_up") == 1
    for name in ("seatq_commands", "seatq_command_errors", "seatq_errors", "seatq_effects",
                 "seatq_journal_entries", "seatq_timer_runs"):
        assert types[name] == "counter", name
    assert types["seatq_command_duration_seconds"] == "histogram"
    for name in ("seatq_events", "seatq_tickets_waiting", "seatq_sessions", "seatq_holds"):
        assert types[name] == "gauge", name
        assert value(name) == info[name[len("seatq_"):]]

    # Counters: the same numbers as INFO seatq (commands the exporter never calls).
    for cmd in ("queue.enqueue", "queue.admit", "seat.hold", "seat.confirm"):
        stats = info[f"cmd_{cmd.replace('.', '_')}"]
        assert value("seatq_commands_total", command=cmd) == stats["calls"], cmd
        assert value("seatq_command_errors_total", command=cmd) == stats["failed"], cmd
    assert value("seatq_command_errors_total", command="queue.admit") >= 25
    assert value("seatq_errors_total", code="NOT_READY") == info["errors_total"]["NOT_READY"] >= 25
    assert value("seatq_effects_total", effect="joined") == info["effects_total"]["joined"] >= 46
    assert value("seatq_effects_total", effect="sold") >= 1
    assert value("seatq_journal_entries_total") == info["journal_entries_total"] > 0
    assert value("seatq_timer_runs_total") > 0
    # The timer's runs: a histogram whose _count is the runs INFO counted when it was read
    # (the timer may have run again before the scrape, never fewer times).
    assert types["seatq_timer_run_duration_seconds"] == "histogram"
    runs = value("seatq_timer_run_duration_seconds_count")
    assert runs == value("seatq_timer_run_duration_seconds_bucket", le="+Inf") > 0
    assert value("seatq_timer_run_duration_seconds_bucket", le="0.001") <= runs
    assert runs == value("seatq_timer_runs_total") <= info["timer_runs_total"]
    assert value("seatq_timer_run_duration_seconds_sum") > 0

    # The latency histogram: seconds, cumulative buckets, +Inf = _count = calls.
    stats = info["cmd_queue_enqueue"]
    buckets = sorted(
        (float(dict(labels)["le"]), v)
        for (name, labels), v in samples.items()
        if name == "seatq_command_duration_seconds_bucket" and dict(labels)["command"] == "queue.enqueue"
    )
    assert len(buckets) == 15
    assert buckets[0][0] == 5e-06 and buckets[-2][0] == 1.0 and math.isinf(buckets[-1][0])
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts[-1] == stats["calls"]
    assert value("seatq_command_duration_seconds_count", command="queue.enqueue") == stats["calls"]
    assert value("seatq_command_duration_seconds_sum", command="queue.enqueue") == pytest.approx(stats["usec"] / 1e6)

    # Per-event gauges: the named event and the top 2 by waiting, not the third.
    events = {dict(labels)["event"] for (name, labels) in samples if name == "seatq_event_waiting"}
    assert events == {loaded["named"], loaded["big"], loaded["mid"]}
    assert value("seatq_event_waiting", event=loaded["big"]) == 30
    assert value("seatq_event_waiting", event=loaded["mid"]) == 10
    assert value("seatq_event_sessions", event=loaded["big"]) == 1
    assert value("seatq_event_sessions_unclaimed", event=loaded["big"]) == 0
    named = loaded["named"]
    assert value("seatq_event_waiting", event=named) == 0
    assert (value("seatq_event_held", event=named), value("seatq_event_sold", event=named),
            value("seatq_event_available", event=named)) == (2, 3, 8)
    assert value("seatq_event_paused", event=named) == 1 and value("seatq_event_closed", event=named) == 1
    assert value("seatq_event_paused", event=loaded["big"]) == 0
    for name in ("seatq_event_waiting", "seatq_event_held", "seatq_event_paused"):
        assert types[name] == "gauge"


def test_openmetrics_exposition(url: str, loaded: Dict[str, str]) -> None:
    """What Prometheus asks for first (OpenMetrics) parses too, with the same families."""
    port = free_port()
    proc = exporter(url, port, "--top", "1")
    try:
        text = scrape(port, openmetrics=True)
    finally:
        proc.terminate()
        proc.wait(10)
    assert text.rstrip().endswith("# EOF")
    fams = {f.name: f for f in parse_openmetrics(text)}
    assert fams["seatq_commands"].type == "counter"
    assert fams["seatq_command_duration_seconds"].type == "histogram"
    assert any(s.name == "seatq_commands_total" for s in fams["seatq_commands"].samples)
    waiting = [s for s in fams["seatq_event_waiting"].samples]
    assert [s.labels["event"] for s in waiting] == [loaded["big"]]


def test_unreachable_server_reports_down() -> None:
    from prometheus_client import generate_latest
    from prometheus_client.registry import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    client = redis.Redis(port=free_port(), socket_connect_timeout=1)
    registry.register(SeatqCollector(client, events=["x"], top=3))
    text = generate_latest(registry).decode()
    _, samples = families(text)
    assert samples[("seatq_up", ())] == 0
    assert not any(name.startswith("seatq_commands") for name, _ in samples)


def test_info_parsing() -> None:
    info = parse_info(
        "# seatq\r\nseatq_events:2\r\nseatq_errors_total:\r\n"
        "seatq_cmd_seat_hold:calls=3,failed=1,usec=40\r\n"
        "seatq_latency_seat_hold:le_5=1,le_10=2,le_inf=3\r\n"
    )
    assert info == {
        "events": 2,
        "errors_total": {},
        "cmd_seat_hold": {"calls": 3, "failed": 1, "usec": 40},
        "latency_seat_hold": {"le_5": 1, "le_10": 2, "le_inf": 3},
    }
    assert command_label("seat_hold") == "seat.hold"
    assert command_label("seatq_apply") == "seatq.apply"
