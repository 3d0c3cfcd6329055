"""``seatq-exporter``: a Prometheus exporter for seatq, built on the official
``prometheus_client`` library.

At every scrape it reads ``INFO seatq`` from one server and turns it into metrics: counters as
counters, the per-command latency buckets as histograms (so ``rate()`` and
``histogram_quantile()`` work and sum across nodes), the keyspace totals as gauges. For the
events an operator names (``--event``) and the ``--top N`` events with the most waiting
tickets (found with a bounded ``SCAN ... TYPE seatq-evt``), it adds per-event gauges from
``QUEUE.INFO`` and ``SEAT.INFO``. docs/monitoring.md lists every metric.

Run one exporter per server (in a cluster, one per primary: ``INFO`` and ``SCAN`` are per node).

    seatq-exporter --redis-url redis://localhost:6379/0 --port 9121 --event sale:2026 --top 5
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import redis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

__all__ = ["SeatqCollector", "parse_info", "read_info", "command_label", "main"]

log = logging.getLogger("seatq.exporter")

#: The module's data type, as ``SCAN ... TYPE`` names it.
EVENT_TYPE = "seatq-evt"

InfoValue = Union[int, Dict[str, int]]

GAUGES = [
    ("events", "seatq_events", "Events (seatq keys) stored on this server."),
    ("tickets_waiting", "seatq_tickets_waiting", "Tickets waiting in line, over all events."),
    ("sessions", "seatq_sessions", "Admission sessions stored (live or lapsed, not yet ended), over all events."),
    ("holds", "seatq_holds", "Seat holds stored, over all events."),
]

# (QUEUE.INFO or SEAT.INFO field, metric, help)
EVENT_GAUGES = [
    ("queue", "waiting", "seatq_event_waiting", "Tickets waiting in the event's line."),
    ("queue", "sessions", "seatq_event_sessions", "Live admission sessions of the event (they count against CAPACITY)."),
    ("queue", "sessions_unclaimed", "seatq_event_sessions_unclaimed", "Admitted tickets not claimed with QUEUE.ADMIT yet."),
    ("seat", "held", "seatq_event_held", "Seats / units held."),
    ("seat", "sold", "seatq_event_sold", "Seats / units sold."),
    ("seat", "available", "seatq_event_available", "Seats / units available."),
    ("queue", "paused", "seatq_event_paused", "1 while admission is paused (QUEUE.PAUSE)."),
    ("queue", "closed", "seatq_event_closed", "1 while the line is closed to joins (QUEUE.CLOSE, CLOSES-AT)."),
]


def parse_info(text: Union[str, bytes]) -> Dict[str, InfoValue]:
    """``INFO seatq`` -> {field without the ``seatq_`` prefix: int or {key: int}}."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    fields: Dict[str, InfoValue] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, _, value = line.partition(":")
        if name.startswith("seatq_"):
            name = name[len("seatq_"):]
        if value == "" or "=" in value:
            entries: Dict[str, int] = {}
            for item in value.split(","):
                if "=" in item:
                    k, _, v = item.partition("=")
                    entries[k] = _number(v)
            fields[name] = entries
        else:
            fields[name] = _number(value)
    return fields


def _number(v: str) -> int:
    try:
        return int(v)
    except ValueError:
        return int(float(v))


def read_info(client: "redis.Redis") -> str:
    """``INFO seatq`` as text: through a client sharing ``client``'s connections but without
    redis-py's INFO parser (whose output differs between releases)."""
    raw = redis.Redis(connection_pool=client.connection_pool)
    raw.set_response_callback("INFO", lambda r, **_: r)
    reply = raw.execute_command("INFO", "seatq")
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def command_label(info_name: str) -> str:
    """``queue_enqueue`` (INFO's spelling) -> ``queue.enqueue`` (the command's name)."""
    module, _, command = info_name.partition("_")
    return f"{module}.{command}" if command else module


def _bound_seconds(key: str) -> str:
    """``le_250`` (microseconds) -> ``0.00025``; ``le_inf`` -> ``+Inf``."""
    bound = key[len("le_"):]
    if bound == "inf":
        return "+Inf"
    return floatToGoString(int(bound) / 1_000_000)


class SeatqCollector(Collector):
    """Reads one server at every scrape. ``events``: keys always reported; ``top``: that many
    more, the events with the most waiting tickets, found by a SCAN of at most ``scan_limit``
    keys, redone at most every ``discover_interval`` seconds."""

    def __init__(
        self,
        client: "redis.Redis",
        events: Sequence[str] = (),
        top: int = 0,
        scan_limit: int = 10_000,
        scan_count: int = 1_000,
        discover_interval: float = 60.0,
    ) -> None:
        self.client = client
        self.events = list(dict.fromkeys(events))
        self.top = top
        self.scan_limit = scan_limit
        self.scan_count = scan_count
        self.discover_interval = discover_interval
        self._discovered: List[str] = []
        self._discovered_at: Optional[float] = None
        self._lock = threading.Lock()

    # --- INFO seatq ----------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        with self._lock:  # one scrape at a time (prometheus_client serves from threads)
            yield from self._collect()

    def _collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        up = GaugeMetricFamily("seatq_up", "1 if INFO seatq was read from the server, else 0.")
        try:
            info = parse_info(read_info(self.client))
        except redis.exceptions.RedisError as e:
            log.warning("INFO seatq failed: %s", e)
            up.add_metric([], 0)
            yield up
            return
        if "events" not in info:
            log.warning("INFO seatq has no seatq fields: is the module loaded?")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from self._info_metrics(info)
        yield from self._event_metrics()
        took = GaugeMetricFamily(
            "seatq_exporter_scrape_duration_seconds", "Time the exporter took to read the server."
        )
        took.add_metric([], time.monotonic() - started)
        yield took

    def _info_metrics(self, info: Dict[str, InfoValue]) -> Iterator[Metric]:
        for field, name, doc in GAUGES:
            g = GaugeMetricFamily(name, doc)
            g.add_metric([], _scalar(info.get(field)))
            yield g
        for field, name, doc in [
            ("journal_entries_total", "seatq_journal_entries", "Entries appended to event journals (streams)."),
            ("timer_runs_total", "seatq_timer_runs", "Runs of the upkeep timer."),
        ]:
            cnt = CounterMetricFamily(name, doc)
            cnt.add_metric([], _scalar(info.get(field)))
            yield cnt

        effects = CounterMetricFamily(
            "seatq_effects", "State changes applied, by kind (replicas count what they apply).",
            labels=["effect"],
        )
        for effect, n in sorted(_dict(info.get("effects_total")).items()):
            effects.add_metric([effect], n)
        yield effects

        errors = CounterMetricFamily("seatq_errors", "Error replies, by error code.", labels=["code"])
        for code, n in sorted(_dict(info.get("errors_total")).items()):
            errors.add_metric([code], n)
        yield errors

        calls = CounterMetricFamily("seatq_commands", "Calls of each seatq command.", labels=["command"])
        failed = CounterMetricFamily(
            "seatq_command_errors", "Calls of each seatq command that answered an error.", labels=["command"]
        )
        latency = HistogramMetricFamily(
            "seatq_command_duration_seconds",
            "Time each seatq command took in the server (excluding network and queueing).",
            labels=["command"],
        )
        for key in sorted(k for k in info if k.startswith("cmd_")):
            name = key[len("cmd_"):]
            stats = _dict(info[key])
            command = command_label(name)
            calls.add_metric([command], stats.get("calls", 0))
            failed.add_metric([command], stats.get("failed", 0))
            buckets = _histogram(info.get(f"latency_{name}"), stats.get("calls", 0))
            if buckets:
                latency.add_metric([command], buckets, sum_value=stats.get("usec", 0) / 1_000_000)
        yield calls
        yield failed
        yield latency

        # Timer runs are outside any command: a long one held every client as long.
        runs = _histogram(info.get("timer_runs_latency"), _scalar(info.get("timer_runs_total")))
        if runs:
            timer = HistogramMetricFamily(
                "seatq_timer_run_duration_seconds",
                "Time each run of the upkeep timer took on the primary (every client waits).",
            )
            timer.add_metric([], runs, sum_value=_scalar(info.get("timer_runs_usec")) / 1_000_000)
            yield timer

    # --- per-event gauges ------------------------------------------------------------------

    def _event_metrics(self) -> Iterator[Metric]:
        events = list(self.events)
        if self.top > 0:
            events += [e for e in self._top_events() if e not in events]
        families = {name: GaugeMetricFamily(name, doc, labels=["event"]) for _, _, name, doc in EVENT_GAUGES}
        if events:
            pipe = self.client.pipeline(transaction=False)
            for event in events:
                pipe.execute_command("QUEUE.INFO", event)
                pipe.execute_command("SEAT.INFO", event)
            try:
                replies = pipe.execute(raise_on_error=False)
            except redis.exceptions.RedisError as e:
                log.warning("QUEUE.INFO / SEAT.INFO failed: %s", e)
                replies = []
            for i, event in enumerate(events):
                if len(replies) < 2 * i + 2:
                    break
                queue, seat = replies[2 * i], replies[2 * i + 1]
                if isinstance(queue, Exception) or isinstance(seat, Exception):
                    # NO_SUCH_EVENT (not created yet, deleted), or MOVED (another node's).
                    log.debug("event %s skipped: %s", event, queue if isinstance(queue, Exception) else seat)
                    continue
                rec = {"queue": _record(queue), "seat": _record(seat)}
                for source, field, name, _ in EVENT_GAUGES:
                    families[name].add_metric([event], float(rec[source].get(field, 0)))
        yield from families.values()

    def _top_events(self) -> List[str]:
        now = time.monotonic()
        if self._discovered_at is None or now - self._discovered_at >= self.discover_interval:
            try:
                self._discovered = self._discover()
            except redis.exceptions.RedisError as e:
                log.warning("event discovery failed: %s", e)
            self._discovered_at = now
        return self._discovered

    def _discover(self) -> List[str]:
        """A bounded SCAN for seatq events, ranked by waiting tickets (QUEUE.LEN)."""
        keys: List[str] = []
        cursor = 0
        for _ in range(max(1, -(-self.scan_limit // self.scan_count))):
            cursor, batch = self.client.scan(cursor, count=self.scan_count, _type=EVENT_TYPE)
            keys += [_text(k) for k in batch]
            if int(cursor) == 0:
                break
        keys = list(dict.fromkeys(keys))
        if not keys:
            return []
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.execute_command("QUEUE.LEN", key)
        lens = pipe.execute(raise_on_error=False)
        ranked = sorted(
            ((n, k) for n, k in zip(lens, keys) if isinstance(n, int)), key=lambda nk: (-nk[0], nk[1])
        )
        return [k for _, k in ranked[: self.top]]


def _histogram(v: Optional[InfoValue], count: float) -> List[Tuple[str, float]]:
    """INFO's cumulative ``le_<µs>`` buckets as Prometheus (bound in seconds, count) pairs,
    ending with +Inf (``count`` when INFO has no ``le_inf``); empty when INFO has none."""
    buckets = _dict(v)
    if not buckets:
        return []
    pairs: List[Tuple[str, float]] = [
        (_bound_seconds(k), n) for k, n in sorted(buckets.items(), key=lambda kv: _bound_order(kv[0]))
    ]
    if pairs[-1][0] != "+Inf":
        pairs.append(("+Inf", count))
    return pairs


def _bound_order(key: str) -> float:
    bound = key[len("le_"):]
    return float("inf") if bound == "inf" else float(bound)


def _scalar(v: Optional[InfoValue]) -> float:
    return float(v) if isinstance(v, int) else 0.0


def _dict(v: Optional[InfoValue]) -> Dict[str, int]:
    return v if isinstance(v, dict) else {}


def _text(v: Any) -> str:
    return v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else str(v)


def _record(reply: Any) -> Dict[str, Any]:
    if isinstance(reply, dict):
        return {_text(k): v for k, v in reply.items()}
    return {_text(reply[i]): reply[i + 1] for i in range(0, len(reply) - 1, 2)}


def _password(args: argparse.Namespace) -> Optional[str]:
    if args.redis_password_file:
        with open(args.redis_password_file, encoding="utf-8") as f:
            return f.read().rstrip("\r\n")
    return os.environ.get("SEATQ_REDIS_PASSWORD") or None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="seatq-exporter",
        description="Prometheus exporter for seatq: INFO seatq, and QUEUE.INFO / SEAT.INFO per event.",
    )
    p.add_argument(
        "--redis-url",
        default=os.environ.get("SEATQ_REDIS_URL", "redis://localhost:6379/0"),
        help="the server to read (env SEATQ_REDIS_URL; default %(default)s); rediss:// for TLS",
    )
    p.add_argument(
        "--redis-password-file",
        default=os.environ.get("SEATQ_REDIS_PASSWORD_FILE"),
        help="file holding the password (env SEATQ_REDIS_PASSWORD_FILE; or env SEATQ_REDIS_PASSWORD); "
        "keeps it out of the command line",
    )
    p.add_argument("--port", type=int, default=int(os.environ.get("SEATQ_EXPORTER_PORT", "9121")),
                   help="port serving /metrics (default %(default)s)")
    p.add_argument("--address", default=os.environ.get("SEATQ_EXPORTER_ADDRESS", "127.0.0.1"),
                   help="address to listen on (default %(default)s; 0.0.0.0 in a container)")
    p.add_argument("--event", action="append", metavar="KEY",
                   default=os.environ.get("SEATQ_EXPORTER_EVENTS", "").replace(",", " ").split(),
                   help="an event key to report per-event gauges for (repeatable; env "
                   "SEATQ_EXPORTER_EVENTS, keys separated by spaces or commas)")
    p.add_argument("--top", type=int, default=int(os.environ.get("SEATQ_EXPORTER_TOP", "0")), metavar="N",
                   help="also report the N events with the most waiting tickets (env SEATQ_EXPORTER_TOP; "
                   "default %(default)s)")
    p.add_argument("--scan-limit", type=int, default=10_000,
                   help="keys a discovery SCAN looks at, at most (default %(default)s)")
    p.add_argument("--discover-interval", type=float, default=60.0,
                   help="seconds between two discoveries of the top events (default %(default)s)")
    p.add_argument("--timeout", type=float, default=5.0, help="socket timeout, seconds (default %(default)s)")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from prometheus_client import start_http_server

    kwargs: Dict[str, Any] = {"socket_timeout": args.timeout, "socket_connect_timeout": args.timeout}
    password = _password(args)
    if password is not None:
        kwargs["password"] = password
    client = redis.Redis.from_url(args.redis_url, **kwargs)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        SeatqCollector(
            client,
            events=args.event,
            top=args.top,
            scan_limit=args.scan_limit,
            discover_interval=args.discover_interval,
        )
    )
    server, thread = _serve(start_http_server, args.port, args.address, registry)
    log.info("serving /metrics on %s:%d for %s", args.address, args.port, _safe_url(args.redis_url))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    if server is not None:
        server.shutdown()
    return 0


def _serve(start: Any, port: int, address: str, registry: CollectorRegistry) -> Tuple[Any, Any]:
    started = start(port, addr=address, registry=registry)
    # prometheus_client >= 0.18 returns (server, thread); older releases return None.
    return started if isinstance(started, tuple) else (None, None)


def _safe_url(url: str) -> str:
    """The URL without its password, for the log."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


if __name__ == "__main__":
    sys.exit(main())
