"""Shared pieces of the reliability tests: the settings and SP-API sandbox of a mixed-workload
run, fast batched producing, /metrics parsing, waiting for a worker to drain its input topics,
topics that accept records over 1 MB."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from streams.agents.ingest import ingest_group
from streams.config import Settings
from streams.sandbox.amazon import SandboxConfig
from tests.support.kafka import partitions_of, unique_settings
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

BIG = 4 * 1024 * 1024  # what the test topics and producer accept (Kafka's default: 1 MB)

# input topic (default name) -> the module of the flow that consumes it
FLOW_MODULES = {
    "ct.messages": "streams.agents.inventory",
    "master.sku-mappings": "streams.agents.inventory",
    "amazon.purchase-orders": "streams.agents.purchase_orders",
    "wms.dispatches": "streams.agents.asn",
    "ct.inventory-commands": "streams.agents.ct_commands",
}
# what a topic's records end as; "fetched" is a step, not an outcome (a fetched record is
# counted again as applied / duplicate / stale)
OUTCOMES = ("applied", "ignored", "duplicate", "stale", "dlq")


def workload_settings(
    bootstrap: str, work: Any, ct_api: str, project: str, **overrides: Any
) -> Settings:
    """Settings of a mixed-workload run (crash, soak, broker restart, rebalance, API faults):
    this run's own topics and group, a free web port, the broker's minimum session timeout (a
    killed member leaves fast), short debounce and poll intervals, the commercetools API at
    ``ct_api`` with a fresh project ``<project>-<random>``, SP-API at a sandbox on a free port
    (:func:`sandbox_port`). ``overrides`` replace any of these."""
    sandbox = f"http://127.0.0.1:{free_port()}"
    fields: dict[str, Any] = {
        "web_port": free_port(),
        "broker_session_timeout_s": 6.0,
        "debounce_window_s": 0.2,
        "debounce_max_wait_s": 1.0,
        "debounce_tick_s": 0.1,
        "po_poll_interval_s": 1.0,
        "tx_poll_interval_s": 0.5,
        "ct_api_url": ct_api,
        "ct_auth_url": ct_api,
        "ct_project_key": f"{project}-{uuid.uuid4().hex[:10]}",
        "spapi_endpoint": sandbox,
        "spapi_lwa_url": f"{sandbox}/auth/o2/token",
    }
    fields.update(overrides)
    return unique_settings(bootstrap, work, **fields)


def sandbox_port(s: Settings) -> int:
    """The port of the SP-API sandbox the settings point at."""
    return int(s.spapi_endpoint.rsplit(":", 1)[1])


def workload_sandbox(s: Settings, **overrides: Any) -> SandboxConfig:
    """The SP-API sandbox of a mixed-workload run: no orders of its own and no Amazon
    examples (the scenario creates the POs), transactions settled after 0.3 s, 50 requests/s
    and a burst of 50 (``overrides`` replace any of these)."""
    fields: dict[str, Any] = {
        "order_count": 0,
        "include_amazon_examples": False,
        "transaction_processing_s": 0.3,
        "rate_per_s": 50.0,
        "burst": 50,
    }
    fields.update(overrides)
    return SandboxConfig.from_settings(s, **fields)


def flow_missing(topic: str) -> str | None:
    """Why ``topic`` cannot be tested yet (its flow module does not exist), else None."""
    module = FLOW_MODULES[topic]
    if importlib.util.find_spec(module) is None:
        return f"the flow consuming {topic} ({module}) does not exist yet"
    return None


def consumer_group(s: Settings, topic: str) -> str:
    """The group that consumes ``topic``: the raw ingest group for the inventory inputs."""
    if topic in (s.topic_ct_messages, s.topic_sku_mappings):
        return ingest_group(s)
    return s.app_id


def topic_name(s: Settings, default: str) -> str:
    """The settings' name of the topic whose default name is ``default``."""
    for name, f in Settings.model_fields.items():
        if name.startswith("topic_") and f.default == default:
            return str(getattr(s, name))
    raise KeyError(default)


async def produce_fast(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]
) -> list[tuple[int, int]]:
    """Send in order, batched, without waiting per record; returns (partition, offset) each."""
    p = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=20,
        max_batch_size=512 * 1024,
        max_request_size=BIG,
        acks="all",
        enable_idempotence=True,  # ordered and exactly once per partition, even on retries
    )
    await p.start()
    try:
        futures = [await p.send(topic, key=k, value=v) for k, v in records]
        metas = await asyncio.gather(*futures)
    finally:
        await p.stop()
    return [(m.partition, m.offset) for m in metas]


async def ensure_big_topics(s: Settings, topics: Iterable[str], partitions: int = 1) -> None:
    """Let ``topics`` take records up to 4 MB (created with one partition when missing)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        names = list(topics)
        existing = set(await admin.list_topics())
        for t in names:
            if t not in existing:
                try:
                    await admin.create_topics(
                        [NewTopic(t, partitions, 1, topic_configs={"max.message.bytes": str(BIG)})]
                    )
                except TopicAlreadyExistsError:
                    pass
        await admin.alter_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, t, {"max.message.bytes": str(BIG)})
                for t in names
            ]
        )
    finally:
        await admin.close()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    parts = await partitions_of(bootstrap, topic)
    if not parts:
        return {}
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in parts]
        ends = await c.end_offsets(tps)
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await c.stop()


@dataclass
class Metrics:
    """A parsed Prometheus text exposition: name -> [(labels, value)]."""

    series: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Metrics:
        out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$", line)
            if not m:
                continue
            labels = {
                k: v.replace('\\"', '"').replace("\\\\", "\\")
                for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or "")
            }
            out[m.group(1)].append((labels, float(m.group(3))))
        return cls(dict(out))

    def get(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        return [
            (lab, v)
            for lab, v in self.series.get(name, [])
            if all(lab.get(k) == want for k, want in labels.items())
        ]

    def total(self, name: str, **labels: str) -> float:
        return sum(v for _, v in self.get(name, **labels))

    def outcomes(self, topic: str) -> dict[str, int]:
        return {
            lab["outcome"]: int(v)
            for lab, v in self.get("streams_records_total", topic=topic)
            if lab.get("outcome") != "fetched"
        }

    def lag(self, group: str, topic: str) -> dict[int, int]:
        return {
            int(lab["partition"]): int(v)
            for lab, v in self.get("kafka_consumergroup_group_lag", group=group, topic=topic)
        }


def scrape(w: WorkerProcess) -> Metrics:
    return Metrics.parse(w.metrics())


def health(w: WorkerProcess) -> dict[str, Any]:
    import orjson

    url = f"http://127.0.0.1:{w.settings.web_port}/health"
    with urllib.request.urlopen(url, timeout=3) as r:
        body: dict[str, Any] = orjson.loads(r.read())
        return body


@dataclass
class Drained:
    """Where each input topic stood when the worker had processed everything."""

    records: dict[str, int]  # topic -> records in it (sum of end offsets)
    outcomes: dict[str, dict[str, int]]
    lag: dict[str, dict[int, int]]
    metrics: Metrics
    seconds: float


async def wait_drained(
    w: WorkerProcess,
    topics: list[str],
    timeout: float,
    extra: Callable[[Metrics], bool] = lambda m: True,
    *,
    counted: bool = True,
) -> Drained:
    """Until every record of ``topics`` has an outcome and every partition's lag is 0.

    ``counted=False``: lag only (a restarted worker's counters start again at zero).

    Returns the last observation either way (the caller asserts on it), so a stall shows
    up as numbers, not as a hang.
    """
    s = w.settings
    started = time.monotonic()
    while True:
        records = {t: sum((await end_offsets(s.kafka_bootstrap, t)).values()) for t in topics}
        m = scrape(w)
        outcomes = {t: m.outcomes(t) for t in topics}
        lag = {t: m.lag(consumer_group(s, t), t) for t in topics}
        parts = {t: await partitions_of(s.kafka_bootstrap, t) for t in topics}
        done = all(
            (not counted or sum(outcomes[t].values()) >= records[t])
            and set(lag[t]) >= set(parts[t])
            and not any(lag[t].values())
            for t in topics
        )
        elapsed = time.monotonic() - started
        if (done and extra(m)) or elapsed > timeout or (w.proc and w.proc.poll() is not None):
            return Drained(records, outcomes, lag, m, elapsed)
        await asyncio.sleep(2.0)
