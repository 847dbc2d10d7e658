"""The worker's per-SKU state as its ``skus`` changelog holds it (read with aiokafka)."""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.adapters.codecs import loads
from streams.adapters.kafka_admin import client_kwargs, topic_partitions
from streams.config import Settings
from streams.domain.inventory import SkuState


def changelog_topic(s: Settings) -> str:
    return f"{s.app_id}-skus-changelog"


async def read_states(
    s: Settings, on_progress: Callable[[int, int], None] | None = None
) -> dict[str, SkuState]:
    """Latest ``SkuState`` per SKU from the ``skus`` changelog (compacted semantics:
    the last value per key wins, a tombstone deletes). ``on_progress(done, total)``."""
    topic = changelog_topic(s)
    partitions = await topic_partitions(s, topic)
    if not partitions:
        return {}  # no worker has written state yet
    tps = [TopicPartition(topic, p) for p in partitions]
    # "earliest": an automatic offset reset racing the seek below must not jump to the end
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False, auto_offset_reset="earliest", **client_kwargs(s)
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        start = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        total = sum(end[tp] - start[tp] for tp in tps)
        for tp in tps:
            consumer.seek(tp, start[tp])
        raw: dict[bytes, bytes | None] = {}
        done = 0
        todo = {tp for tp in tps if end[tp] > start[tp]}
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=500)
            for tp, msgs in batch.items():
                for m in msgs:
                    if m.offset < end[tp] and m.key is not None:
                        raw[m.key] = m.value
                        done += 1
                if msgs and msgs[-1].offset >= end[tp] - 1:
                    todo.discard(tp)
            for tp in list(todo):  # compaction can leave the last offsets empty
                if await consumer.position(tp) >= end[tp]:
                    todo.discard(tp)
            if on_progress is not None:
                on_progress(done, total)
    finally:
        await consumer.stop()
    states: dict[str, SkuState] = {}
    for value in raw.values():
        if value is not None:
            state = SkuState.from_dict(loads(value))
            states[state.sku] = state
    return states
