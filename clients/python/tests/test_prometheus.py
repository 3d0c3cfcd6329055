"""seatq-exporter scraped by a real Prometheus (Debian 12's ``prometheus`` 2.42): the counters
``rate()`` and the latency histogram ``histogram_quantile()`` through the HTTP API, and every
query of the Grafana dashboard (docker/grafana/dashboards/seatq.json) evaluates.

Needs a prometheus binary: ``SEATQ_PROMETHEUS``, else ``prometheus`` on PATH (``apt-get install
prometheus``; .ci/prometheus installs it). Without one the test is skipped, unless
``SEATQ_REQUIRE_PROMETHEUS=1`` (CI), which makes that a failure.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterator, List

import pytest

from seatq import NotReady, Seatq

from helpers import capacity_one, eventually
from test_exporter import exporter, free_port

DASHBOARD = Path(__file__).resolve().parents[3] / "docker" / "grafana" / "dashboards" / "seatq.json"


def prometheus_binary() -> str:
    path = os.environ.get("SEATQ_PROMETHEUS") or shutil.which("prometheus")
    if not path:
        message = "no prometheus binary (apt-get install prometheus, or set SEATQ_PROMETHEUS)"
        if os.environ.get("SEATQ_REQUIRE_PROMETHEUS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


class Prometheus:
    def __init__(self, port: int) -> None:
        self.port = port

    def query(self, expr: str) -> List[Any]:
        q = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/query?{q}", timeout=10) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]["result"]


@pytest.fixture(scope="module")
def stack(url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """The exporter, a steady load and Prometheus scraping every second (shared by the tests)."""
    binary = prometheus_binary()
    tmp_path = tmp_path_factory.mktemp("prometheus")
    event = f"prom:{uuid.uuid4().hex[:8]}"
    exporter_port = free_port()
    exp = exporter(url, exporter_port, "--event", event)
    prom_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: seatq\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter_port}']\n"
    )
    log = open(tmp_path / "prometheus.log", "w")
    prom = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    stop = threading.Event()
    load = threading.Thread(target=_load, args=(url, event, stop), daemon=True)
    load.start()
    try:
        def ready() -> bool:
            assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/-/ready", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        eventually(ready, 60, 0.2)
        p = Prometheus(prom_port)
        p.event = event  # type: ignore[attr-defined]
        yield p
    finally:
        stop.set()
        load.join(10)
        prom.terminate()
        prom.wait(20)
        exp.terminate()
        exp.wait(10)
        log.close()
        cleanup = Seatq.from_url(url)  # the server is shared with the other tests
        cleanup.redis.delete(event, cleanup.queue_info(event).journal_key)
        cleanup.close()


def _load(url: str, event: str, stop: threading.Event) -> None:
    """A modest steady load: joins, polls, refused claims (NOT_READY)."""
    sq = Seatq.from_url(url)
    capacity_one(sq, event)
    i = 0
    while not stop.is_set():
        t = sq.enqueue(event, f"p{i}").ticket
        sq.status(event, t)
        try:
            sq.admit(event, t)
        except NotReady:
            pass
        i += 1
        time.sleep(0.01)
    sq.close()


def test_prometheus_rate_and_histogram_quantile(stack: Prometheus) -> None:
    # Enough samples in the window for rate(): up, then at least 4 scrapes of the counter.
    eventually(lambda: [r for r in stack.query('up{job="seatq"}') if r["value"][1] == "1"], 30, 0.5)
    eventually(
        lambda: [r for r in stack.query('count_over_time(seatq_commands_total{command="queue.enqueue"}[1m])')
                 if float(r["value"][1]) >= 4],
        40, 0.5,
    )
    rates = {r["metric"]["command"]: float(r["value"][1]) for r in stack.query("rate(seatq_commands_total[1m])")}
    assert rates["queue.enqueue"] > 0 and rates["queue.status"] > 0 and rates["queue.admit"] > 0
    errors = stack.query('rate(seatq_errors_total{code="NOT_READY"}[1m])')
    assert errors and float(errors[0]["value"][1]) > 0

    p99 = stack.query("histogram_quantile(0.99, sum by (le) (rate(seatq_command_duration_seconds_bucket[1m])))")
    assert len(p99) == 1
    value = float(p99[0]["value"][1])
    assert math.isfinite(value) and 0 < value <= 1.0, value
    per_command = stack.query(
        "histogram_quantile(0.5, sum by (le, command) (rate(seatq_command_duration_seconds_bucket[1m])))"
    )
    medians = {r["metric"]["command"]: float(r["value"][1]) for r in per_command}
    assert 0 < medians["queue.enqueue"] < 0.1, medians

    waiting = stack.query(f'seatq_event_waiting{{event="{stack.event}"}}')  # type: ignore[attr-defined]
    assert waiting and float(waiting[0]["value"][1]) > 0
    assert stack.query("seatq_tickets_waiting") and stack.query("seatq_up")[0]["value"][1] == "1"


def test_dashboard_queries_evaluate(stack: Prometheus) -> None:
    """Every panel of the Grafana dashboard is a valid PromQL query over the exporter's
    metrics, and returns data once the exporter has been scraped."""
    if not DASHBOARD.exists():
        pytest.skip(f"{DASHBOARD} not found")
    eventually(
        lambda: [r for r in stack.query('count_over_time(seatq_commands_total{command="queue.enqueue"}[1m])')
                 if float(r["value"][1]) >= 4],
        40, 0.5,
    )
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in _panels(dashboard) for t in panel.get("targets", []) if t.get("expr")]
    assert exprs, "the dashboard has no queries"
    templates = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    assert {"instance", "event"} <= set(templates), "instance and event selectors"
    empty = []
    for expr in exprs:
        q = (expr.replace("$__rate_interval", "1m").replace("$__interval", "5s")
             .replace("$instance", ".*").replace("$event", ".*"))
        q = re.sub(r"\$\{(\w+)(:\w+)?\}", ".*", q)
        if not stack.query(q):
            empty.append(expr)
    assert not empty, f"queries with no data: {empty}"
    for v in templates.values():
        if v.get("type") == "query":
            query = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query.strip())
            assert m, query
            series = m.group(1).replace("$instance", ".*")
            assert stack.query(f"count by ({m.group(2)}) ({series})"), query


def _panels(dashboard: Any) -> Iterator[Any]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])
