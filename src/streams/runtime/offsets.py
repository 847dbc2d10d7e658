"""Seeking a consumer's partitions to their committed offsets in one request.

aiokafka's ``seek_to_committed`` asks the group coordinator for one partition at a time (an
OffsetFetch round trip each). A worker holds a hundred partitions or more (every topic and
changelog its agents and tables read), so Faust's seek after each recovery took 1.5 s of
every start and every rebalance, with the streams paused. One OffsetFetch names them all.
"""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition


async def seek_all_to_committed(consumer: Any) -> dict[TopicPartition, int | None]:
    """What ``AIOKafkaConsumer.seek_to_committed()`` does for every assigned partition, with
    a single OffsetFetch: each partition with a committed offset > 0 is sought to it; returns
    every assigned partition's committed offset (None: never committed)."""
    partitions = consumer._subscription.assigned_partitions()
    assert partitions, "No partitions are currently assigned"  # as aiokafka's
    fetched = await consumer._coordinator.fetch_committed_offsets(list(partitions))
    committed: dict[TopicPartition, int | None] = {}
    for tp in partitions:
        meta = fetched.get(tp)
        offset = meta.offset if meta is not None and meta.offset != -1 else None
        committed[tp] = offset
        if offset and offset > 0:
            consumer._fetcher.seek_to(tp, offset)
    return committed
