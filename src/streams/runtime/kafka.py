"""The aiokafka internals the raw stages, the bulk restore and the readiness probe read, and
its partitioner."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2


def position(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    """The next offset ``getmany`` hands out for ``tp``, from the consumer's own state (no
    network call, unlike ``position()``); None while it has no valid position."""
    state = consumer._subscription.subscription.assignment.state_value(tp)
    return state.position if state.has_valid_position else None


async def all_metadata(consumer: AIOKafkaConsumer) -> Any:
    """The cluster metadata of every topic (one request), as aiokafka's ClusterMetadata."""
    return await consumer._client.fetch_all_metadata()


def aiokafka_producer(app: Any) -> Any:
    """The AIOKafkaProducer under Faust's producer (``Producer._producer``; None until it
    has started, and for the hand-written fakes of the unit tests). Faust's commit flushes
    it, so record batches sent on it are delivered before offsets are committed."""
    return getattr(app.producer, "_producer", None)


async def producer_metadata(app: Any) -> Any:
    """One metadata request over the Faust producer's own aiokafka client (the readiness
    probe: the connection the worker's output goes through answers)."""
    producer = aiokafka_producer(app)
    if producer is None:
        raise ConnectionError("the producer has not started")
    return await producer.client.fetch_all_metadata()


# aiokafka's murmur2 is pure Python (about 2.4 us for a SKU, 3% of the inventory path): a
# key's partition never changes and the ingest asks for the same SKUs all day, so the last
# 131,072 keys are remembered (about 20 MB at most)
@lru_cache(maxsize=1 << 17)
def partition_for(key: bytes, partitions: int) -> int:
    """The partition aiokafka's default partitioner (murmur2, as Java's) gives ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
