"""The aiokafka internals the raw stages and the bulk restore read, and its partitioner."""

from __future__ import annotations

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


def partition_for(key: bytes, partitions: int) -> int:
    """The partition aiokafka's default partitioner (murmur2, as Java's) gives ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
