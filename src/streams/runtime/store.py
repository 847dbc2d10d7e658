"""A Faust table's local RocksDB partitions, read and written directly.

Faust's ``table[key] = value`` and ``topic.send`` wrap every record in a FutureMessage and a
producer buffer: most of a worker's time at a few thousand records per second. Here the
store is written and the changelog record produced directly; Faust still flushes the
producer before it commits offsets, so at-least-once holds, and the changelog offset is
persisted in the store as Faust itself does (for a fast restart).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import faust
from faust.tables.globaltable import GlobalTable
from faust.tables.table import Table
from rocksdict import WriteBatch

from streams.runtime.events import bind_event
from streams.runtime.kafka import aiokafka_producer, partition_for
from streams.runtime.ports import LOCAL_PREFIX

# where Faust keeps a partition's changelog offset (faust.stores.rocksdb.Store.offset_key)
OFFSET_KEY = b"__faust\0offset__"

# a table partition whose derived keys are those of its records (DerivedGlobalTable)
LAYOUT_KEY = b"__streams\0layout__"
DERIVED_LAYOUT = b"derived-1"


def is_record_key(key: bytes) -> bool:
    """A key of a table's own records: not Faust's or this module's bookkeeping, not a key
    derived locally (``LOCAL_PREFIX``)."""
    return key[:1] != LOCAL_PREFIX and key != OFFSET_KEY and key != LAYOUT_KEY

Write = tuple[bytes, bytes | None]
# changelog records of one partition, in order, and a reader of that partition's store ->
# the writes that apply them (a table whose stored layout adds keys derived locally)
Derive = Callable[[Iterable[Write], Callable[[bytes], bytes | None]], list[Write]]


def read_partition(table: Any, partition: int) -> Any:
    """The RocksDB of one partition of ``table`` (raw bytes keys and values), for reads
    that know the partition and need no current event. It holds ``OFFSET_KEY`` too."""
    return table.data._db_for_partition(partition)


def _persist_offset(store: Any, later: int = 0) -> Any:
    """Persist the offset a delivery reports (plus ``later``: the last record of a batch
    whose first record's offset is reported)."""

    def persisted(f: Any) -> None:
        if not f.cancelled() and f.exception() is None:
            meta = f.result()
            store.set_persisted_offset(meta.topic_partition, meta.offset + later)

    return persisted


async def send_records(
    producer: Any, topic: str, partition: int, records: Sequence[Write]
) -> tuple[list[Any], int]:
    """``records`` into ``partition`` of ``topic`` in order, in as few aiokafka record
    batches as they fill (``create_batch`` / ``send_batch``): no per-record ``send``, its
    future and its metadata lookups. Returns the batches' delivery futures (each resolves
    to the metadata of its first record) and the record count of the last batch."""
    futs: list[Any] = []
    batch = producer.create_batch()
    for key, value in records:
        if batch.append(key=key, value=value, timestamp=None) is None:
            futs.append(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"a record of {topic} is larger than a producer batch")
    last = batch.record_count()
    if last:
        futs.append(await producer.send_batch(batch, topic, partition=partition))
    return futs, last


async def send_keyed(app: faust.App, topic: str, records: Sequence[Write]) -> list[Any]:
    """``records`` to ``topic``, each in the partition its key gets from the default
    partitioner, as whole record batches on Faust's own aiokafka producer (see
    :func:`send_records`); per record through Faust's producer while the topic's partitions
    are not known yet (or with a fake producer). Returns the delivery futures: one per batch
    (or per record); any of them failing means some of ``records`` were not delivered."""
    producer = aiokafka_producer(app)
    partitions = producer.client.cluster.partitions_for_topic(topic) if producer else None
    if not partitions:
        return [await _send(app, topic, key, value) for key, value in records]
    by_partition: dict[int, list[Write]] = defaultdict(list)
    for key, value in records:
        by_partition[partition_for(key, len(partitions))].append((key, value))
    futs: list[Any] = []
    for partition, recs in by_partition.items():
        futs.extend((await send_records(producer, topic, partition, recs))[0])
    return futs


async def _send(app: faust.App, topic: str, key: bytes | None, value: bytes | None,
                partition: int | None = None, headers: Any = None) -> Any:  # fmt: skip
    return await app.producer.send(topic, key, value, partition, None, headers)


class TableStore:
    """A :class:`~streams.runtime.ports.PartitionStore` over one Faust table of bytes."""

    def __init__(self, app: faust.App, table: Any) -> None:
        self.app = app
        self.table = table
        self._derived = isinstance(table, _Derived)
        self._layout_known: set[int] = set()  # partitions whose layout marker is settled

    def get(self, partition: int, key: bytes) -> bytes | None:
        value: bytes | None = read_partition(self.table, partition).get(key)
        return value

    def items(self, partition: int, from_key: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        for key, value in read_partition(self.table, partition).items(from_key=from_key):
            if key[:1] == LOCAL_PREFIX:
                return  # the derived keys sort last
            if is_record_key(key):
                yield key, value

    async def put_many(
        self,
        partition: int,
        items: Sequence[tuple[bytes, bytes | None]],
        *,
        changelog: Sequence[Write] | None = None,
        producer: Any = None,
        local: Sequence[Write] = (),
    ) -> list[Any]:
        """Write ``items`` into one store partition in one RocksDB WriteBatch, and their
        changelog records in order; the persisted offset follows the last one delivered.
        With ``changelog``, those are the records sent instead (a table whose other keys are
        derived locally from them wherever the changelog is applied: ``DerivedGlobalTable``).
        The records go out as whole record batches (:func:`send_records`) on ``producer``
        (a raw stage's own aiokafka producer) or else on Faust's, instead of one ``send`` and
        one future each. ``local``: writes of keys derived locally (``LOCAL_PREFIX``), in
        the same WriteBatch, never logged.

        The per-key path (``DirectWriter.put``) costs a current-event bind, a store lookup
        and a persisted-offset write per key; a batch of thousands of SKUs pays them once.
        """
        if self._derived and partition not in self._layout_known:
            self._layout_known.add(partition)
            local = [*local, *new_layout(read_partition(self.table, partition))]
        if items or local:
            self.put_local(partition, [*items, *local] if local else items)
        return await self._log(partition, items if changelog is None else changelog, producer)

    def put_local(self, partition: int, items: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Write ``items`` into one store partition in one WriteBatch, with no changelog
        record: a restore from the changelog does not see them until :meth:`log_current`
        (or a later ``put_many`` of the key) logs them."""
        if items:
            write_batch(self.table, partition, items)

    async def log_current(self, partition: int, keys: Sequence[bytes]) -> list[Any]:
        """Changelog records of the stored values of ``keys`` as they are now (a deleted
        key: a tombstone), in order; the persisted offset follows the last one."""
        db = read_partition(self.table, partition)
        return await self._log(partition, [(key, db.get(key)) for key in keys])

    async def _log(self, partition: int, items: Sequence[Write], producer: Any = None) -> list[Any]:
        if not items:
            return []
        store = self.table.data
        topic = self.table.changelog_topic.get_topic_name()
        producer = producer or aiokafka_producer(self.app)
        if producer is not None:
            futs, last = await send_records(producer, topic, partition, items)
            futs[-1].add_done_callback(_persist_offset(store, last - 1))
            return futs
        # a fake producer (unit tests)
        futs = [await _send(self.app, topic, key, value, partition) for key, value in items]
        futs[-1].add_done_callback(_persist_offset(store))
        return futs


def new_layout(db: Any) -> list[Write]:
    """The layout marker for a partition of a derived table that was never written (no
    persisted offset): everything it will hold is applied through ``derive``, so the bulk
    restore need not rebuild its derived keys (restore.py)."""
    if db.get(OFFSET_KEY) is None and db.get(LAYOUT_KEY) is None:
        return [(LAYOUT_KEY, DERIVED_LAYOUT)]
    return []


def write_batch(table: Any, partition: int, items: Iterable[Write]) -> None:
    """``items`` into one store partition of ``table`` in one RocksDB WriteBatch."""
    wb = WriteBatch(raw_mode=True)
    keys = []
    for key, value in items:
        keys.append(key)
        if value is None:
            wb.delete(key)
        else:
            wb.put(key, value)
    read_partition(table, partition).write(wb)
    if getattr(table, "is_global", False):
        # a global table's reads look a key up in the partition Faust last saw it in (its
        # key index), and only there: a key written elsewhere now must be searched again
        index = table.data._key_index
        for key in keys:
            index.pop(key, None)


class _Derived:
    """A Faust table whose changelog records are applied through ``derive`` (in Faust's
    changelog reading: recovery, standbys and, for a global table, every worker following
    the other workers' writes): one WriteBatch per partition per call, with what ``derive``
    adds."""

    derive: Derive
    data: Any

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        records: dict[int, list[Write]] = defaultdict(list)
        offsets: dict[Any, int] = {}
        for event in batch:
            msg = event.message
            records[msg.partition].append((msg.key, msg.value))
            offsets[msg.tp] = max(msg.offset, offsets.get(msg.tp, -1))
        for partition, recs in records.items():
            db = read_partition(self, partition)
            writes = [*new_layout(db), *self.derive(recs, db.get)]
            if writes:
                write_batch(self, partition, writes)
        for tp, offset in offsets.items():
            self.data.set_persisted_offset(tp, offset)


class DerivedGlobalTable(_Derived, GlobalTable):
    """A GlobalTable whose stored layout adds keys derived from its records (``products``)."""

    def __init__(self, *args: Any, derive: Derive, **kwargs: Any) -> None:
        self.derive = derive
        super().__init__(*args, **kwargs)


class DerivedTable(_Derived, Table):
    """A partitioned Table whose stored layout adds keys derived from its records, under
    ``LOCAL_PREFIX`` (``skus`` and its entry index)."""

    def __init__(self, *args: Any, derive: Derive, **kwargs: Any) -> None:
        self.derive = derive
        super().__init__(*args, **kwargs)


def derived_global_table(
    app: faust.App, name: str, *, derive: Derive, partitions: int, **kwargs: Any
) -> DerivedGlobalTable:
    """``app.GlobalTable(name, ...)`` (the same options Faust gives it), as a
    :class:`DerivedGlobalTable`."""
    table = DerivedGlobalTable(
        app,
        name=name,
        beacon=app.tables.beacon,
        partitions=partitions,
        standby_buffer_size=1,  # as app.GlobalTable: apply other workers' writes at once
        is_global=True,
        synchronize_all_active_partitions=False,
        derive=derive,
        **kwargs,
    )
    app.tables.add(table)
    return table


def derived_table(
    app: faust.App, name: str, *, derive: Derive, partitions: int, **kwargs: Any
) -> DerivedTable:
    """``app.Table(name, ...)`` as a :class:`DerivedTable`."""
    table = DerivedTable(
        app, name=name, beacon=app.tables.beacon, partitions=partitions, derive=derive, **kwargs
    )
    app.tables.add(table)
    return table


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
