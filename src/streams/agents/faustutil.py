"""Small bridges to Faust internals, kept in one place and covered by tests."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faust
from faust.streams import _current_event
from faust.types import EventT
from rocksdict import WriteBatch

log = logging.getLogger(__name__)


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

    async def put_many(
        self, table: Any, partition: int, items: list[tuple[bytes, bytes | None]]
    ) -> list[Any]:
        """Write ``items`` into one store partition in one RocksDB WriteBatch, and their
        changelog records in order; the persisted offset follows the last one delivered.

        The per-key path (``put``) costs a current-event bind, a store lookup and a
        persisted-offset write per key; a batch of thousands of SKUs pays them once.
        """
        if not items:
            return []
        store = table.data
        db = store._db_for_partition(partition)
        wb = WriteBatch(raw_mode=True)
        for key, value in items:
            if value is None:
                wb.delete(key)
            else:
                wb.put(key, value)
        db.write(wb)
        topic = table.changelog_topic.get_topic_name()
        send: Any = self.app.producer.send
        futs = [await send(topic, key, value, partition, None, None) for key, value in items]

        def persisted(f: Any) -> None:
            if not f.cancelled() and f.exception() is None:
                meta = f.result()
                store.set_persisted_offset(meta.topic_partition, meta.offset)

        futs[-1].add_done_callback(persisted)
        return futs


def read_partition(table: Any, partition: int) -> Any:
    """The RocksDB of one partition of ``table`` (raw bytes keys and values), for reads
    that know the partition and need no current event."""
    return table.data._db_for_partition(partition)


def partition_for(key: bytes, partitions: int) -> int:
    """The partition aiokafka's default partitioner (murmur2, as Java's) gives ``key``."""
    from aiokafka.partitioner import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % partitions


async def dead_letter(dlq: Any, event: Any, error: str, failed_at: float) -> Any:
    """Send ``event``'s raw record to the ``dlq`` topic with the reason and where it came from,
    count it (``streams_dlq_records_total``) and log it; returns the send's result."""
    from streams.adapters.codecs import dlq_record, dumps, reason_class
    from streams.observability import metrics as M

    msg = event.message
    value = dlq_record(
        event.value if isinstance(event.value, bytes) else None, error,
        topic=msg.topic, partition=msg.partition, offset=msg.offset,
        timestamp=msg.timestamp, failed_at=failed_at,
    )  # fmt: skip
    M.DLQ.labels(msg.topic, reason_class(error)).inc()
    log.info("dead-lettered %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, error)
    return await dlq.send(
        key=msg.key,
        value=dumps(value),
        headers={"dlq.error": error[:500].encode(), "dlq.topic": msg.topic.encode()},
    )
