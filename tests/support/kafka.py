"""Kafka helpers for tests: unique topic sets, producing, consuming until a condition."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.config import Settings


def unique_settings(bootstrap: str, tmp: Any, **overrides: Any) -> Settings:
    """Settings whose topics, consumer group and state are this test's alone."""
    tag = uuid.uuid4().hex[:8]
    fields: dict[str, Any] = {
        "kafka_bootstrap": bootstrap,
        "app_id": f"t-{tag}",
        "data_dir": tmp / "data",
        "partitions": 3,
        "broker_session_timeout_s": 10.0,
    }
    for name in Settings.model_fields:
        if name.startswith("topic_"):
            fields[name] = f"{Settings.model_fields[name].default}.{tag}"
    fields.update(overrides)
    return Settings(**fields)


@dataclass
class Record:
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int

    def json(self) -> Any:
        return orjson.loads(self.value) if self.value is not None else None


async def produce(
    bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | Any]]
) -> None:
    """Send (key, value) pairs in order; values that are not bytes are JSON-encoded."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await p.start()
    try:
        for key, value in records:
            raw = value if isinstance(value, bytes | None) else orjson.dumps(value)
            await p.send(topic, key=key, value=raw)
        await p.flush()
    finally:
        await p.stop()


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        meta = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if not meta or meta[0].get("error_code", 0) != 0:
        return []
    return [p["partition"] for p in meta[0]["partitions"]]


async def read_all(bootstrap: str, topic: str, timeout: float = 3.0) -> list[Record]:
    """Everything currently in ``topic`` (all partitions, up to their end offsets)."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        parts = await partitions_of(bootstrap, topic)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await c.end_offsets(tps)
        out: list[Record] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            positions = [await c.position(tp) for tp in tps]
            if all(pos >= end[tp] for pos, tp in zip(positions, tps, strict=True)):
                break
            batch = await c.getmany(*tps, timeout_ms=200)
            for tp, msgs in batch.items():
                out.extend(Record(m.key, m.value, tp.partition, m.offset) for m in msgs)
        return sorted(out, key=lambda r: (r.partition, r.offset))
    finally:
        await c.stop()


async def wait_for(
    bootstrap: str,
    topic: str,
    cond: Callable[[list[Record]], bool],
    timeout: float = 60.0,
) -> list[Record]:
    """Poll ``topic`` until ``cond(records)`` holds; returns the records either way."""
    deadline = time.monotonic() + timeout
    records: list[Record] = []
    while time.monotonic() < deadline:
        records = await read_all(bootstrap, topic)
        if cond(records):
            return records
        await asyncio.sleep(0.5)
    return records


def latest_by_key(records: list[Record]) -> dict[str, Any]:
    return {r.key.decode(): r.json() for r in records if r.key is not None}


async def create_topic(bootstrap: str, prefix: str, partitions: int) -> str:
    """A new topic named ``<prefix>-<random>`` with ``partitions`` partitions (one replica)."""
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, replication_factor=1)])
    finally:
        await admin.close()
    return topic


async def topic_names(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: set[str]) -> None:
    """Delete ``names`` (internal ``__`` topics never), in batches the broker takes at once."""
    doomed = sorted(n for n in names if not n.startswith("__"))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=60_000)
    await admin.start()
    try:
        for i in range(0, len(doomed), 200):
            await admin.delete_topics(doomed[i : i + 200], timeout_ms=60_000)
    finally:
        await admin.close()
