"""Kafka for benchmarks: produce a prepared record set, the raw consume ceiling, read a
topic back, the deltas on it, records per topic of a run."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.config import Settings


# --------------------------------------------------------------------------------------
# kafka helpers
# --------------------------------------------------------------------------------------
async def produce_all(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    """Produce as fast as aiokafka goes (batched, linger); returns seconds taken."""
    p = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=10,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
        acks=1,
    )
    await p.start()
    try:
        t0 = time.perf_counter()
        futs = [await p.send(topic, key=k, value=v) for k, v in records]
        await p.flush()
        for f in futs:
            f.result()
        return time.perf_counter() - t0
    finally:
        await p.stop()


async def consume_ceiling(bootstrap: str, topic: str, expect: int) -> tuple[int, float]:
    """Raw aiokafka consume + orjson decode of the whole topic: (records, seconds)."""
    c = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    await c.start()
    try:
        parts = c.partitions_for_topic(topic) or set()
        if not parts:
            await c._client.force_metadata_update()
            parts = c.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await c.end_offsets(tps)
        total = sum(end.values())
        n = 0
        t0 = time.perf_counter()
        while n < total:
            batch = await c.getmany(*tps, timeout_ms=500, max_records=10_000)
            for msgs in batch.values():
                for m in msgs:
                    orjson.loads(m.value)
                n += len(msgs)
        return n, time.perf_counter() - t0
    finally:
        await c.stop()


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record currently in ``topic`` (all partitions up to their end offsets)."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        await c._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await c.end_offsets(tps)
        out: list[Any] = []
        while True:
            pos = [await c.position(tp) for tp in tps]
            if all(p >= end[tp] for p, tp in zip(pos, tps, strict=True)):
                return out
            batch = await c.getmany(*tps, timeout_ms=500, max_records=10_000)
            for msgs in batch.values():
                out.extend(msgs)
    finally:
        await c.stop()


def deltas_of(records: list[Any]) -> list[tuple[str, int, int]]:
    """(sku, amount, kafka timestamp ms) of every delta record, in timestamp order."""
    out = []
    for r in records:
        v = orjson.loads(r.value)
        if v.get("kind") == "delta":
            out.append((v["sku"], v["availableQuantity"]["amount"], r.timestamp))
    out.sort(key=lambda x: x[2])
    return out


async def topic_records(s: Settings, tag: str) -> dict[str, int]:
    """Records written to every topic of this run (end offsets summed over partitions)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        names = sorted(t for t in await admin.list_topics() if tag in t)
    finally:
        await admin.close()
    c = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        await c._client.force_metadata_update()
        out: dict[str, int] = {}
        for name in names:
            tps = [TopicPartition(name, p) for p in sorted(c.partitions_for_topic(name) or ())]
            if tps:
                end = await c.end_offsets(tps)
                out[name] = sum(end.values())
        return out
    finally:
        await c.stop()
