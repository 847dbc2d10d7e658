"""Probes and process metrics of a real ``streams worker`` process (real broker, the SP-API
sandbox, the commercetools emulator): while the bulk restore reads a changelog /readyz
answers 503 with its progress, then 200 once recovery is done and Kafka answered; /livez
and /health answer, the probes need no token while the API does, and
/metrics carries build_info, the process and GC collectors and the HTTP latency histogram
of both clients (the PO poller's SP-API calls, the warehouse policy's commercetools reads);
and, on a broker of its own that stops and comes back, /readyz follows the broker while
/livez stays 200."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from bench.state_scale import StateGen
from pydantic import SecretStr

from streams.adapters.kafka_admin import create_topics
from streams.agents.faustutil import partition_for
from streams.config import Settings
from streams.sandbox.amazon import running_sandbox
from tests.support.e2e import at_sandbox, e2e_sandbox, e2e_settings
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.kafka]

TOKEN = "probe-test-token-" + "x" * 16
RESTORED = 20_000  # SKU states in the changelog the bulk restore reads at start


async def fill_skus_changelog(s: Settings) -> None:
    """The skus changelog as Faust declares it, with RESTORED valid SKU states."""
    topic = f"{s.app_id}-skus-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        config = {"cleanup.policy": "compact"}
        await admin.create_topics([NewTopic(topic, s.partitions, 1, topic_configs=config)])
    finally:
        await admin.close()
    gen = StateGen(RESTORED, channels=1, recent_ids=1)
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, linger_ms=20)
    await producer.start()
    try:
        for i in range(RESTORED):
            key = gen.sku(i).encode()
            value = orjson.dumps(gen.state(i))
            await producer.send(topic, value, key=key, partition=partition_for(key, s.partitions))
        await producer.flush()
    finally:
        await producer.stop()


def get(port: int, path: str, token: str | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=3) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def health_settings(kafka: str, ct_api: str, tmp: Path) -> Settings:
    s = e2e_settings(
        kafka,
        tmp,
        web_token=SecretStr(TOKEN),
        ct_api_url=ct_api,
        ct_auth_url=ct_api,
        ct_project_key=f"health-{uuid.uuid4().hex[:10]}",
        reconcile_interval_s=3600.0,
    )
    return at_sandbox(s)


async def test_probes_and_process_metrics_of_a_running_worker(
    kafka: str, ct_api: str, tmp_path: Path
) -> None:
    s = health_settings(kafka, ct_api, tmp_path)
    await create_topics(s)
    await fill_skus_changelog(s)
    port = s.web_port
    async with running_sandbox(e2e_sandbox(s), port=s.sandbox_port):
        w = WorkerProcess(s, tmp_path / "worker.log").start()
        try:
            answers: list[tuple[int, Any]] = []
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                assert w.proc is not None and w.proc.poll() is None, w.tail()
                try:
                    answer = await asyncio.to_thread(get, port, "/readyz")
                except OSError:  # not listening yet
                    await asyncio.sleep(0.2)
                    continue
                answers.append(answer)
                if answer[0] == 200:
                    break
                await asyncio.sleep(0.05)
            assert answers and answers[-1][0] == 200, (answers[-3:], w.tail())
            ready = orjson.loads(answers[-1][1])
            assert ready["status"] == "ready" and ready["reasons"] == []
            assert ready["checks"]["kafka"]["reachable"] is True
            assert ready["checks"]["recovery"]["done"] is True
            # every "not ready" on the way said why; the bulk restore's with its progress
            restoring = []
            for status, body in answers[:-1]:
                assert status == 503 and orjson.loads(body)["reasons"], body
                if orjson.loads(body).get("phase") == "bulk-restore":
                    restoring.append(orjson.loads(body))
            assert restoring, [a[1][:120] for a in answers[:5]]
            assert all("skus" in r["tables"] for r in restoring)
            for r in restoring:
                if r["table"] == "skus":
                    assert 0 <= r["tableRecords"] <= r["tableRecordsTotal"] == RESTORED, r
            assert "bulk restore: skus" in w.tail(400) or "records into" in w.tail(400)

            status, live = await asyncio.to_thread(get, port, "/livez")
            assert status == 200 and orjson.loads(live)["status"] == "alive"
            assert orjson.loads(live)["heartbeatAgeSeconds"] < 5
            status, compat = await asyncio.to_thread(get, port, "/health")
            assert status == 200
            assert orjson.loads(compat) == {"status": "ok", "rebalancing": False, "ready": True}
            # probes and /metrics without the token; the API needs it
            assert (await asyncio.to_thread(get, port, "/api/exceptions"))[0] == 401
            assert (await asyncio.to_thread(get, port, "/api/exceptions", TOKEN))[0] == 200

            want = (
                "streams_build_info{",
                "process_cpu_seconds_total ",
                "process_resident_memory_bytes ",
                "python_gc_collections_total{",
                "streams_gc_pause_seconds_total ",
                'streams_http_client_request_duration_seconds_count{operation="getPurchaseOrders",outcome="ok",system="spapi"}',
                'system="commercetools"',
            )
            text = ""
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                text = w.metrics()
                if all(x in text for x in want):
                    break
                await asyncio.sleep(0.5)
            missing = [x for x in want if x not in text]
            assert not missing, (missing, w.tail())
            info = next(
                line for line in text.splitlines() if line.startswith("streams_build_info{")
            )
            assert 'version="' in info and 'faust="0.' in info and info.endswith(" 1.0")
            # the collector policy (runtime/gcpolicy.py) is applied once the worker is ready
            frozen = next(
                line for line in text.splitlines() if line.startswith("streams_gc_frozen_objects ")
            )
            assert float(frozen.split()[1]) > 10_000, (frozen, w.tail())
        finally:
            w.stop()


async def test_readiness_follows_the_broker_and_liveness_does_not(tmp_path: Path) -> None:
    """A worker on a broker of its own: ready; the broker stops (by its pid) and /readyz
    turns 503 naming Kafka while /livez stays 200 (restarting would not help); the broker
    comes back and the worker is ready again, without a restart."""
    from streams import localkafka
    from tests.support.kafka import unique_settings
    from tests.support.services import free_port

    k = localkafka.LocalKafka(tmp_path / "kafka", free_port(), free_port(), heap="512m")
    await asyncio.to_thread(localkafka.up, k)
    try:
        s = unique_settings(k.bootstrap, tmp_path, web_port=free_port(), kafka_replication_factor=1)
        await create_topics(s)
        w = WorkerProcess(s, tmp_path / "worker.log").start()
        try:

            async def until(status: int, timeout: float) -> dict[str, Any]:
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    assert w.proc is not None and w.proc.poll() is None, w.tail()
                    live = await asyncio.to_thread(get, s.web_port, "/livez")
                    ready = await asyncio.to_thread(get, s.web_port, "/readyz")
                    if ready[0] == status:
                        assert live[0] == 200, live
                        return dict(orjson.loads(ready[1]))
                    await asyncio.sleep(0.5)
                raise AssertionError(f"/readyz never {status}: {ready!r}\n{w.tail()}")

            await asyncio.to_thread(w.wait_ready, 90)
            await until(200, 60)
            await asyncio.to_thread(localkafka.down, k)
            body = await until(503, 60)
            assert [r for r in body["reasons"] if r.startswith("Kafka not reachable")], body
            assert body["checks"]["kafka"]["reachable"] is False
            await asyncio.to_thread(localkafka.up, k)
            body = await until(200, 60)
            assert body["checks"]["kafka"]["reachable"] is True
        finally:
            w.stop()
    finally:
        await asyncio.to_thread(localkafka.down, k)
