"""A Faust table's local RocksDB partitions, read and written directly.

Faust's ``table[key] = value`` and ``topic.send`` wrap every record in a FutureMessage and a
producer buffer: most of a worker's time at a few thousand records per second. Here the
store is written and the changelog record produced directly; Faust still flushes the
producer before it commits offsets, so at-least-once holds, and the changelog offset is
persisted in the store as Faust itself does (for a fast restart).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import faust
from rocksdict import WriteBatch

from streams.runtime.events import bind_event

# where Faust keeps a partition's changelog offset (faust.stores.rocksdb.Store.offset_key)
OFFSET_KEY = b"__faust\0offset__"


def read_partition(table: Any, partition: int) -> Any:
    """The RocksDB of one partition of ``table`` (raw bytes keys and values), for reads
    that know the partition and need no current event. It holds ``OFFSET_KEY`` too."""
    return table.data._db_for_partition(partition)


def _persist_offset(store: Any) -> Any:
    def persisted(f: Any) -> None:
        if not f.cancelled() and f.exception() is None:
            meta = f.result()
            store.set_persisted_offset(meta.topic_partition, meta.offset)

    return persisted


async def _send(app: faust.App, topic: str, key: bytes | None, value: bytes | None,
                partition: int | None = None, headers: Any = None) -> Any:  # fmt: skip
    return await app.producer.send(topic, key, value, partition, None, headers)


class TableStore:
    """A :class:`~streams.runtime.ports.PartitionStore` over one Faust table of bytes."""

    def __init__(self, app: faust.App, table: Any) -> None:
        self.app = app
        self.table = table

    def get(self, partition: int, key: bytes) -> bytes | None:
        value: bytes | None = read_partition(self.table, partition).get(key)
        return value

    def items(self, partition: int, from_key: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        for key, value in read_partition(self.table, partition).items(from_key=from_key):
            if key != OFFSET_KEY:
                yield key, value

    async def put_many(
        self, partition: int, items: Sequence[tuple[bytes, bytes | None]]
    ) -> list[Any]:
        """Write ``items`` into one store partition in one RocksDB WriteBatch, and their
        changelog records in order; the persisted offset follows the last one delivered.

        The per-key path (``DirectWriter.put``) costs a current-event bind, a store lookup
        and a persisted-offset write per key; a batch of thousands of SKUs pays them once.
        """
        if not items:
            return []
        self.put_local(partition, items)
        return await self._log(partition, items)

    def put_local(self, partition: int, items: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Write ``items`` into one store partition in one WriteBatch, with no changelog
        record: a restore from the changelog does not see them until :meth:`log_current`
        (or a later ``put_many`` of the key) logs them."""
        if not items:
            return
        wb = WriteBatch(raw_mode=True)
        for key, value in items:
            if value is None:
                wb.delete(key)
            else:
                wb.put(key, value)
        read_partition(self.table, partition).write(wb)

    async def log_current(self, partition: int, keys: Sequence[bytes]) -> list[Any]:
        """Changelog records of the stored values of ``keys`` as they are now (a deleted
        key: a tombstone), in order; the persisted offset follows the last one."""
        db = read_partition(self.table, partition)
        return await self._log(partition, [(key, db.get(key)) for key in keys])

    async def _log(self, partition: int, items: Sequence[tuple[bytes, bytes | None]]) -> list[Any]:
        if not items:
            return []
        topic = self.table.changelog_topic.get_topic_name()
        send: Any = self.app.producer.send
        futs = [await send(topic, key, value, partition, None, None) for key, value in items]
        futs[-1].add_done_callback(_persist_offset(self.table.data))
        return futs


class DirectWriter:
    """Table writes and sends that go straight to the producer (see the module)."""

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
        return await _send(self.app, topic, key, value, partition, headers)

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
        fut.add_done_callback(_persist_offset(table.data))
        return fut

    async def put_many(
        self, table: Any, partition: int, items: list[tuple[bytes, bytes | None]]
    ) -> list[Any]:
        """``TableStore(app, table).put_many``: one WriteBatch, changelog records in order."""
        return await TableStore(self.app, table).put_many(partition, items)


def rocksdict_targets(app: faust.App) -> list[tuple[str, str, Any, Any]]:
    """Every rocksdict-backed table of ``app``: (name, changelog topic, partition -> path,
    path -> opened Rdict with the table's options), from Faust's own store objects, so the
    path and options are exactly the ones Faust opens."""
    from faust.stores.rocksdb import Store as RocksStore

    out = []
    for name, table in sorted(app.tables.items()):
        store = table.data
        if isinstance(store, RocksStore) and store.use_rocksdict:
            topic = table.changelog_topic.get_topic_name()
            out.append((name, topic, store.partition_path, store.rocksdb_options.open))
    return out
