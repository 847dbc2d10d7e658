"""The probe rules (streams.observability.health), the Health object with a hand-written app
and probe, the restore-time server on a real port, and the metrics the probes sit next to
(build_info, the HTTP latency histogram fed by the client hooks)."""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.config import Settings
from streams.observability import metrics as M
from streams.observability.health import (
    KAFKA_STALE_S,
    LIVENESS_STALL_S,
    Health,
    RestoreProgress,
    WorkerState,
    liveness,
    readiness,
    serving_during_restore,
)
from tests.support.services import free_port

READY = WorkerState(
    recovered=True,
    in_recovery=False,
    rebalancing=False,
    remaining=0,
    kafka_ok_age=1.0,
    kafka_error=None,
)


def test_liveness_follows_the_heartbeat_age() -> None:
    assert liveness(100.0, 99.0) == (200, {"status": "alive", "heartbeatAgeSeconds": 1.0})
    status, body = liveness(100.0 + LIVENESS_STALL_S + 1, 100.0)
    assert status == 503 and body["status"] == "stalled"


def test_ready_only_when_every_check_passes() -> None:
    status, body = readiness(READY)
    assert status == 200 and body["status"] == "ready" and body["reasons"] == []
    assert body["checks"]["kafka"]["reachable"] is True


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"recovered": False, "remaining": 1234},
            "recovering tables: 1,234 changelog records left",
        ),
        ({"in_recovery": True, "remaining": None}, "recovering tables"),
        ({"rebalancing": True}, "rebalancing"),
        ({"kafka_ok_age": None, "kafka_error": None}, "Kafka not reachable (not probed yet)"),
        (
            {"kafka_ok_age": KAFKA_STALE_S + 5, "kafka_error": "KafkaConnectionError"},
            f"Kafka not reachable for {KAFKA_STALE_S + 5:.0f} s (KafkaConnectionError)",
        ),
    ],
)
def test_not_ready_says_why(change: dict[str, Any], reason: str) -> None:
    st = WorkerState(**{**READY.__dict__, **change})
    status, body = readiness(st)
    assert status == 503 and body["status"] == "not ready"
    assert body["reasons"] == [reason]


class FakeRecovery:
    def __init__(self, done: bool, remaining: int) -> None:
        self.completed = asyncio.Event()
        if done:
            self.completed.set()
        self.remaining = remaining

    def active_remaining_total(self) -> int:
        return self.remaining


class FakeApp:
    def __init__(self, done: bool = True, remaining: int = 0) -> None:
        self.tables = type("Tables", (), {"recovery": FakeRecovery(done, remaining)})()
        self.rebalancing = False
        self.in_recovery = False


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_health_reads_the_app_and_the_probe() -> None:
    clock = Clock()
    fail: list[Exception] = []

    async def probe() -> None:
        if fail:
            raise fail[0]

    app = FakeApp(done=False, remaining=50)
    h = Health(app, clock=clock, kafka_probe=probe)
    assert h.ready()[1]["reasons"] == [
        "recovering tables: 50 changelog records left",
        "Kafka not reachable (not probed yet)",
    ]
    await h.probe_kafka()
    app.tables.recovery.completed.set()
    app.tables.recovery.remaining = 0
    assert h.ready()[0] == 200
    app.rebalancing = True
    assert h.ready()[1]["reasons"] == ["rebalancing"]
    app.rebalancing = False
    # the broker goes away: ready until the last answer is too old, then not
    fail.append(ConnectionError("refused"))
    clock.t += 10
    await h.probe_kafka()
    assert h.ready()[0] == 200
    clock.t += KAFKA_STALE_S
    status, body = h.ready()
    assert status == 503 and "ConnectionError: refused" in body["reasons"][0]
    # liveness: the heartbeat stamps the time
    assert h.live()[0] == 503
    h.beat()
    assert h.live()[0] == 200


def test_restore_progress_counts_tables_and_records() -> None:
    p = RestoreProgress(tables=["skus", "products"], started=0.0)
    p.start_table("skus", 200)
    p.records = 50
    body = p.to_json(now=4.0)
    assert body["table"] == "skus" and body["tablePercent"] == 25.0
    assert body["recordsRestored"] == 50 and body["elapsedSeconds"] == 4.0
    p.records = 200
    p.finish_table()
    p.start_table("products", 10)
    p.records = 5
    body = p.to_json(now=5.0)
    assert (body["tablesDone"], body["table"], body["recordsRestored"]) == (1, "products", 205)


def _get(port: int, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


async def test_probes_answer_during_the_restore_and_the_port_is_free_after(
    tmp_path: Path,
) -> None:
    port = free_port()
    s = Settings(web_port=port, web_host="127.0.0.1", data_dir=tmp_path)
    progress = RestoreProgress(tables=["skus"])
    step = asyncio.Event()
    seen: list[tuple[int, Any]] = []

    async def restore() -> str:
        progress.start_table("skus", 1000)
        progress.records = 400
        await step.wait()
        return "restored"

    async def ask() -> None:
        await asyncio.sleep(0.2)
        for path in ("/readyz", "/health", "/livez", "/metrics"):
            seen.append(await asyncio.to_thread(_get, port, path))
        step.set()

    result, _ = await asyncio.gather(serving_during_restore(s, progress, restore()), ask())
    assert result == "restored"
    (ready_st, ready), (health_st, health), (live_st, _), (metrics_st, metrics) = seen
    assert ready_st == 503 and health_st == 503 and live_st == 200 and metrics_st == 200
    body = orjson.loads(ready)
    assert body["phase"] == "bulk-restore" and body["table"] == "skus"
    assert (body["tableRecords"], body["tableRecordsTotal"], body["tablePercent"]) == (
        400,
        1000,
        40.0,
    )
    assert orjson.loads(health)["tableRecords"] == 400  # /health: the same answer
    assert b"streams_build_info" in metrics
    # the server is gone: Faust can bind the same port
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


async def test_a_taken_port_costs_only_the_answers(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        s = Settings(web_port=port, web_host="127.0.0.1", data_dir=tmp_path)

        async def restore() -> int:
            return 7

        assert await serving_during_restore(s, RestoreProgress(), restore()) == 7


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "ok"),
        (201, "ok"),
        (304, "ok"),
        (404, "client_error"),
        (401, "client_error"),
        (429, "throttled"),
        (503, "server_error"),
        (0, "no_response"),
    ],
)
def test_http_outcome(status: int, outcome: str) -> None:
    assert M.http_outcome(status) == outcome


def _count(system: str, operation: str, outcome: str) -> float:
    value = M.REGISTRY.get_sample_value(
        "streams_http_client_request_duration_seconds_count",
        {"system": system, "operation": operation, "outcome": outcome},
    )
    return value or 0.0


def test_client_hooks_feed_the_latency_histogram() -> None:
    before = _count("spapi", "opsa-test-op", "throttled"), _count("commercetools", "opsa-x", "ok")
    M.SpApiResponses().on_response("opsa-test-op", 429, 0.2)
    M.CtResponses().on_response("opsa-x", 200, 0.01)
    M.CtResponses().on_response("opsa-x", 200, 0.02)
    assert _count("spapi", "opsa-test-op", "throttled") == before[0] + 1
    assert _count("commercetools", "opsa-x", "ok") == before[1] + 2
    le = M.REGISTRY.get_sample_value(
        "streams_http_client_request_duration_seconds_bucket",
        {"system": "spapi", "operation": "opsa-test-op", "outcome": "throttled", "le": "0.25"},
    )
    assert le is not None and le >= 1


def test_build_info_names_the_versions() -> None:
    import platform

    from streams import __version__

    M.set_build_info()
    samples = [
        s for fam in M.REGISTRY.collect() if fam.name == "streams_build_info" for s in fam.samples
    ]
    assert len(samples) == 1 and samples[0].value == 1
    assert samples[0].labels["version"] == __version__
    assert samples[0].labels["python"] == platform.python_version()
    assert samples[0].labels["faust"] not in ("", "unknown")


def test_process_and_gc_collectors_are_served() -> None:
    names = {fam.name for fam in M.REGISTRY.collect()}
    assert {
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "python_gc_collections",
    } <= names
