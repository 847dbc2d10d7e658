"""A real Prometheus (the Debian package's server) scraping a real ``streams worker``:

- the rules of prometheus/alerts.yml load (``GET /api/v1/rules``: every group, every rule,
  each evaluated by Prometheus itself with health ``ok``);
- every alert expression evaluates without error against the worker's real series
  (``GET /api/v1/query``);
- every query of every dashboard (``$instance`` as its "All" value ``.*``, Grafana's
  ``$__rate_interval`` as 1m) evaluates, and those on series a running worker always has
  (process and GC metrics, build info, unlabelled counters and histograms, the PO watcher's
  gauges, the SP-API and commercetools responses the PO poller and the warehouse policy
  cause) return data.

Prometheus binds 127.0.0.1 on a free port with a temporary storage directory and is
stopped by its pid. It comes with the Debian package ``prometheus`` (scripts/setup.sh
--dev installs it); the test skips, saying so, only when it is missing, and fails instead
under .ci/run (``REQUIRE_PROMETHEUS_TOOLS=1``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from streams.adapters.kafka_admin import create_topics
from streams.config import Settings
from streams.observability.metrics import REGISTRY
from streams.sandbox.amazon import running_sandbox
from tests.contract.test_observability_config import (
    ALERTS,
    dashboard_queries,
    metric_names,
    registry_labels,
)
from tests.support import miniyaml
from tests.support.e2e import at_sandbox, e2e_sandbox, e2e_settings
from tests.support.promtool import tool_missing
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.kafka]

SCRAPE_S = 1
# Grafana's variables as a dashboard with "All" selected would send them
GRAFANA_VARS = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "${__range}": "1h",
    "$instance": ".*",
}
# labelled series a running worker of this test has from its first minutes
PRESENT_LABELLED = {
    "streams_po_unacknowledged",
    "streams_spapi_responses_total",
    "streams_http_client_request_duration_seconds_bucket",
    "streams_http_client_request_duration_seconds_count",
    "streams_http_client_request_duration_seconds_sum",
    "streams_build_info",
    "python_gc_collections_total",
}
# the label matchers such queries may carry and still find those series
PRESENT_MATCHERS = {'system="spapi"', 'system="commercetools"', 'job="streams"'}


def prometheus_binary() -> str | None:
    given = os.environ.get("PROMETHEUS")
    if given:
        return given if os.access(given, os.X_OK) else None
    return shutil.which("prometheus")


def always_present() -> set[str]:
    """Series names a running worker exposes whatever it has done: unlabelled metrics of the
    registry (prometheus_client exports them at 0 from the start), the process collector's,
    ``up``, and the labelled ones this test's worker is known to produce."""
    names = {"up"} | PRESENT_LABELLED
    for name, labels in registry_labels().items():
        if not labels - {"le"}:
            names.add(name)
    for family in REGISTRY.collect():
        if family.name.startswith("process_"):
            names.update(s.name for s in family.samples)
    return names


def substitute(expr: str) -> str:
    for var, value in sorted(GRAFANA_VARS.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(var, value)
    return expr


def must_have_data(expr: str, present: set[str]) -> bool:
    """A query on always-present series only, with no matcher that could select none (and
    no ``offset``: a Prometheus started minutes ago has no yesterday)."""
    if not metric_names(expr) <= present or re.search(r"\boffset\b", expr):
        return False
    matchers = re.findall(r'(\w+\s*(?:=~|!~|!=|=)\s*"[^"]*")', expr)
    return all(
        m.startswith("instance=~") or m.replace(" ", "") in PRESENT_MATCHERS for m in matchers
    )


class Prom:
    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str, **params: str) -> dict[str, Any]:
        url = f"{self.base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body: dict[str, Any] = json.loads(r.read())
        except urllib.error.HTTPError as e:  # 400/422: a bad query, with Prometheus' reason
            body = json.loads(e.read())
        return body

    def query(self, expr: str) -> dict[str, Any]:
        return self.get("/api/v1/query", query=expr)


@contextmanager
def running_prometheus(binary: str, worker_port: int, tmp: Path) -> Iterator[Prom]:
    port = free_port()
    config = tmp / "prometheus.yml"
    # JSON is YAML
    config.write_text(
        json.dumps(
            {
                "global": {
                    "scrape_interval": f"{SCRAPE_S}s",
                    "evaluation_interval": f"{SCRAPE_S}s",
                },
                "rule_files": [str(ALERTS)],
                "scrape_configs": [
                    {
                        "job_name": "streams",
                        "metrics_path": "/metrics",
                        "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}],
                    }
                ],
            }
        )
    )
    log = (tmp / "prometheus.log").open("ab")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited {proc.returncode}: {_tail(tmp)}")
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"prometheus not ready: {_tail(tmp)}")
            time.sleep(0.2)
        yield Prom(base)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        log.close()


def _tail(tmp: Path) -> str:
    path = tmp / "prometheus.log"
    return path.read_text(errors="replace")[-2000:] if path.exists() else ""


async def until(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(check)
        if last:
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


async def test_a_real_prometheus_scrapes_the_worker_and_runs_rules_and_dashboards(
    kafka: str, ct_api: str, tmp_path: Path
) -> None:
    binary = prometheus_binary()
    if binary is None:
        tool_missing(
            "the Prometheus server is not installed: `apt-get install -y prometheus` "
            "(Debian/Ubuntu) or set PROMETHEUS=/path/to/prometheus"
        )
    assert binary is not None
    s: Settings = at_sandbox(
        e2e_settings(
            kafka,
            tmp_path,
            ct_api_url=ct_api,
            ct_auth_url=ct_api,
            ct_project_key=f"prom-{uuid.uuid4().hex[:10]}",
            reconcile_interval_s=3600.0,
            ops_watch_interval_s=1.0,
        )
    )
    await create_topics(s)
    async with running_sandbox(e2e_sandbox(s), port=s.sandbox_port):
        w = WorkerProcess(s, tmp_path / "worker.log").start()
        try:
            w.wait_ready(timeout=90)
            # the series the must-have-data queries rely on, on the worker itself first
            await until(
                "the worker's SP-API, commercetools and watcher series",
                lambda: all(
                    x in w.metrics()
                    for x in (
                        'system="spapi"',
                        'system="commercetools"',
                        "streams_po_unacknowledged{",
                    )
                ),
            )
            with running_prometheus(binary, s.web_port, tmp_path) as prom:
                await check_with_prometheus(prom, w)
        finally:
            w.stop()


async def check_with_prometheus(prom: Prom, w: WorkerProcess) -> None:
    # scraped, and long enough for rate() over 1m to see two samples of every series
    await until(
        "the worker scraped",
        lambda: prom.query('up{job="streams"} == 1')["data"]["result"],
    )
    await asyncio.sleep(6 * SCRAPE_S)

    # 1. the rules load, and Prometheus evaluated every one without error
    groups = miniyaml.load_file(ALERTS)["groups"]
    expected = {g["name"]: [r.get("alert") or r.get("record") for r in g["rules"]] for g in groups}

    def evaluated() -> dict[str, Any] | None:
        body = prom.get("/api/v1/rules")
        rules = [r for g in body["data"]["groups"] for r in g["rules"]]
        done = all(not r["lastEvaluation"].startswith("0001") for r in rules)
        return body if done else None

    body = await until("every rule evaluated once", evaluated)
    loaded = {g["name"]: [r["name"] for r in g["rules"]] for g in body["data"]["groups"]}
    assert loaded == expected
    bad = [
        f"{r['name']}: {r['health']} {r.get('lastError', '')}"
        for g in body["data"]["groups"]
        for r in g["rules"]
        if r["health"] != "ok"
    ]
    assert not bad, bad

    # 2. every alert expression, asked directly, evaluates against the real series
    for group in groups:
        for rule in group["rules"]:
            answer = prom.query(rule["expr"])
            assert answer["status"] == "success", (rule.get("alert"), answer)

    # 3. every dashboard query evaluates; those on always-present series return data
    present = always_present()
    failed, empty, with_data = [], [], []
    for where, expr in dashboard_queries():
        answer = prom.query(substitute(expr))
        if answer["status"] != "success":
            failed.append(f"{where}: {answer.get('error')}")
            continue
        if must_have_data(expr, present):
            if answer["data"]["result"]:
                with_data.append(where)
            else:
                empty.append(f"{where}: {substitute(expr)}")
    assert not failed, "\n".join(failed)
    assert not empty, "queries on always-present series returned nothing:\n" + "\n".join(empty)
    # not vacuous: a good part of the panels are on such series
    assert len(with_data) >= 20, with_data
    print(f"dashboard queries: {len(with_data)} returned data as they must, all evaluated")
