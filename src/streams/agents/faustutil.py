"""Small bridges to Faust internals, kept in one place and covered by tests."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faust
from faust.streams import _current_event
from faust.types import EventT


@contextmanager
def bind_event(event: EventT) -> Iterator[None]:
    """Make ``event`` Faust's current event while a batch writes tables.

    Faust routes a table write (store partition and changelog partition) by the current
    event. With ``take_events`` that is the last event buffered, which may belong to another
    partition; binding an event of the partition being written keeps both right.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def raw_topic(app: faust.App, name: str, **kwargs: Any) -> faust.TopicT:
    """A topic of bytes in, bytes out: the agents decode with orjson themselves."""
    return app.topic(name, key_serializer="raw", value_serializer="raw", **kwargs)


class PartitionEvent:
    """Stands in for an event of ``topic``/``partition`` where a timer writes a table: Faust
    routes a store write by the current event's partition and nothing else."""

    class _Message:
        def __init__(self, topic: str, partition: int) -> None:
            self.topic = topic
            self.partition = partition

    def __init__(self, topic: str, partition: int) -> None:
        self.message = self._Message(topic, partition)


class DirectWriter:
    """Table writes and sends that go straight to the producer.

    Faust's ``table[key] = value`` and ``topic.send`` wrap every record in a FutureMessage
    and a producer buffer: most of a worker's time at a few thousand records per second.
    Here the store is written and the changelog record produced directly; Faust still
    flushes the producer before it commits offsets, so at-least-once holds, and the changelog
    offset is persisted in the store as Faust itself does (for a fast restart).
    """

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Any = None,
    ) -> Any:
        return await self.app.producer.send(topic, key, value, partition, None, headers)

    async def put(self, table: Any, key: bytes, value: bytes | None, event: Any) -> Any:
        """Write ``key`` in the store partition of ``event`` and its changelog record."""
        partition = event.message.partition
        with bind_event(event):
            if value is None:
                table.data._del(key)
            else:
                table.data[key] = value
        topic = table.changelog_topic.get_topic_name()
        fut = await self.send(topic, key, value, partition)
        store = table.data

        def persisted(f: Any) -> None:
            if not f.cancelled() and f.exception() is None:
                meta = f.result()
                store.set_persisted_offset(meta.topic_partition, meta.offset)

        fut.add_done_callback(persisted)
        return fut


def partition_for(key: bytes, partitions: int) -> int:
    """The partition aiokafka's default partitioner (murmur2, as Java's) gives ``key``."""
    from aiokafka.partitioner import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % partitions
