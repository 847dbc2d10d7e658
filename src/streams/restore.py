"""Bulk restore of the worker's RocksDB tables from their changelogs, before Faust starts.

Faust's own changelog recovery applies about 2,000-4,000 records/s (one event per record,
plus its recovery bookkeeping): a cold start on an empty data dir at 1M SKUs (4M changelog
records) takes 20-30 minutes. This module reads the same changelogs with a raw aiokafka
consumer (manual assignment, no group, large fetches) and writes them into the very RocksDB
databases Faust opens for each table partition, one ``WriteBatch`` per fetched chunk, with
Faust's persisted offset (``__faust\\0offset__``) in the same batch. Faust's recovery then
finds the local offset at the changelog's end and has nothing (or only what was written
since) left to read.

Safety:

- each database is opened at Faust's path (``Store.partition_path``) with Faust's options for
  that table (``Store.rocksdb_options``: whatever ``options=`` the table declares), and is
  closed before this returns;
- the offset is written in the same ``WriteBatch`` as the records up to it (RocksDB applies
  a batch atomically), so a database never claims an offset ahead of its data; a restore
  interrupted at any point leaves a database Faust recovers from where it stopped;
- a worker that is one of several restores every partition, also those it will not own:
  wasted work, not wrong (Faust recovers those from the stored offset if they are behind);
- a partition whose local offset is past the changelog's end (topic recreated) is left to
  Faust, which detects and reports that itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.config import Settings
from streams.observability.health import RestoreProgress
from streams.runtime.store import DERIVED_LAYOUT, LAYOUT_KEY, OFFSET_KEY, Derive, new_layout

log = logging.getLogger(__name__)

FETCH_MAX_BYTES = 16 * 1024 * 1024
PARTITION_FETCH_MAX_BYTES = 16 * 1024 * 1024
GETMANY_MAX = 20_000


@dataclass
class TableTarget:
    """One table's changelog and where and how Faust keeps its partitions."""

    table: str
    topic: str
    path_of: Callable[[int], Path]  # partition -> RocksDB directory
    open_db: Callable[[Path], Any]  # path -> rocksdict.Rdict, with Faust's options
    # the table's own apply (runtime.store.DerivedGlobalTable: keys derived locally)
    derive: Derive | None = None


@dataclass
class PartitionResult:
    topic: str
    partition: int
    start: int  # first offset read
    end: int  # the changelog's end (highwater) when the restore began
    records: int = 0
    offset: int | None = None  # the offset persisted at the end (end - 1 when complete)
    skipped: str = ""


@dataclass
class RestoreReport:
    partitions: list[PartitionResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def records(self) -> int:
        return sum(p.records for p in self.partitions)


def read_offset(db: Any) -> int | None:
    raw = db.get(OFFSET_KEY)
    return int(raw) if raw is not None else None


def targets_of(app: Any) -> list[TableTarget]:
    """Every RocksDB-backed table the app declares, from Faust's own store objects (so the
    path and options are exactly the ones Faust will open)."""
    from streams.runtime.store import rocksdict_targets

    return [TableTarget(name, topic, path_of, open_db, getattr(app.tables[name], "derive", None))
            for name, topic, path_of, open_db in rocksdict_targets(app)]  # fmt: skip


async def restore_tables(
    settings: Settings,
    targets: Iterable[TableTarget],
    *,
    progress: Callable[[str], None] | None = None,
    progress_every_s: float = 5.0,
    stall_s: float = 60.0,
    state: RestoreProgress | None = None,
) -> RestoreReport:
    """Restore every partition of every target's changelog into its local database;
    ``state`` follows the progress (for the readiness probe)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from streams.adapters.kafka_admin import client_kwargs
    from streams.runtime.kafka import all_metadata

    say = progress or (lambda msg: log.info("%s", msg))
    targets = list(targets)
    state = state if state is not None else RestoreProgress()
    state.tables = [t.table for t in targets]
    report = RestoreReport()
    t0 = time.monotonic()
    consumer = AIOKafkaConsumer(
        **client_kwargs(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=FETCH_MAX_BYTES,
        max_partition_fetch_bytes=PARTITION_FETCH_MAX_BYTES,
        fetch_max_wait_ms=100,
        isolation_level="read_uncommitted",
    )
    await consumer.start()
    try:
        cluster = await all_metadata(consumer)
        for target in targets:
            parts = cluster.partitions_for_topic(target.topic)
            if not parts:
                say(f"bulk restore: {target.topic} not found, {target.table} left to Faust")
                continue
            results = await _restore_topic(
                consumer,
                TopicPartition,
                target,
                sorted(parts),
                say,
                progress_every_s,
                stall_s,
                state,
            )
            report.partitions.extend(results)
            if target.derive is not None:
                for p in sorted(parts):
                    _derive_layout(target, p, say)
            state.finish_table()
    finally:
        await consumer.stop()
    report.seconds = time.monotonic() - t0
    rate = report.records / report.seconds if report.seconds > 0 else 0.0
    say(
        f"bulk restore: {report.records:,} records into {len(report.partitions)} table "
        f"partitions in {report.seconds:.1f} s ({rate:,.0f} records/s)"
    )
    return report


async def _restore_topic(
    consumer: Any,
    TopicPartition: Any,
    target: TableTarget,
    partitions: list[int],
    say: Callable[[str], None],
    progress_every_s: float,
    stall_s: float,
    state: RestoreProgress,
) -> list[PartitionResult]:
    import rocksdict

    tps = {p: TopicPartition(target.topic, p) for p in partitions}
    ends = await consumer.end_offsets(list(tps.values()))
    begins = await consumer.beginning_offsets(list(tps.values()))
    dbs: dict[int, Any] = {}
    results: dict[int, PartitionResult] = {}
    # no write-ahead log: the data is already in Kafka. A crash loses the memtables, with the
    # offsets written in the same batches (memtables flush in order: a consistent prefix)
    no_wal = rocksdict.WriteOptions()
    no_wal.disable_wal = True  # type: ignore[method-assign,assignment]  # a property at run time
    t0 = time.monotonic()
    try:
        todo: list[Any] = []
        for p, tp in tps.items():
            path = target.path_of(p)
            path.parent.mkdir(parents=True, exist_ok=True)
            db = target.open_db(path)
            try:
                stored = read_offset(db)
                if target.derive is not None:
                    # never written: every record it gets is applied through derive
                    for key, value in new_layout(db):
                        db.put(key, value)
            finally:
                db.close()
            end, begin = ends[tp], begins[tp]
            start = max(begin, stored + 1 if stored is not None else 0)
            res = results[p] = PartitionResult(target.topic, p, start, end, offset=stored)
            if stored is not None and stored + 1 > end:
                res.skipped = f"local offset {stored} past the end {end}: left to Faust"
                continue
            if start >= end:  # nothing to read (empty, or already at the end)
                continue
            todo.append(tp)
        total = sum(results[tp.partition].end - results[tp.partition].start for tp in todo)
        state.start_table(target.table, total)
        say(
            f"bulk restore: {target.table} from {target.topic}: {len(todo)} of "
            f"{len(tps)} partitions to read, about {total:,} records"
        )
        if not todo:
            return list(results.values())
        # one partition at a time: one database's memtables in memory, not every partition's
        done_records = 0
        next_report = time.monotonic() + progress_every_s
        for n, tp in enumerate(todo):
            res = results[tp.partition]
            db = dbs[tp.partition] = target.open_db(target.path_of(tp.partition))
            consumer.assign([tp])
            consumer.seek(tp, res.start)
            last_progress = time.monotonic()
            # an empty database holds only what this restore wrote: derive need not look up
            # a key it has not written (most are read once: the changelog is compacted)
            written: set[bytes] | None = set() if res.offset is None and target.derive else None
            get = db.get if written is None else _reader_of_written(db, written)
            while await consumer.position(tp) < res.end:
                chunk = await consumer.getmany(tp, timeout_ms=1000, max_records=GETMANY_MAX)
                msgs = chunk.get(tp) or []
                wb = rocksdict.WriteBatch(raw_mode=True)
                last: int | None = None
                taken: list[tuple[bytes, bytes | None]] = []
                for m in msgs:
                    if m.offset >= res.end:  # written since the restore began: Faust's part
                        break
                    last = m.offset
                    taken.append((m.key, m.value))
                    res.records += 1
                    done_records += 1
                writes = target.derive(taken, get) if target.derive else taken
                if written is not None:
                    written.update(k for k, _ in taken)
                for key, value in writes:
                    if value is None:
                        wb.delete(key)
                    else:
                        wb.put(key, value)
                state.records = done_records
                now = time.monotonic()
                if last is not None:
                    # the records and the offset up to them, atomically
                    wb.put(OFFSET_KEY, str(last).encode())
                    db.write(wb, no_wal)
                    res.offset = last
                    last_progress = now
                elif now - last_progress > stall_s:
                    say(
                        f"bulk restore: {target.table}: nothing read for {stall_s:.0f} s, "
                        f"partition {tp.partition} and the rest left to Faust's recovery"
                    )
                    return [results[p] for p in partitions]
                if now >= next_report:
                    next_report = now + progress_every_s
                    rate = done_records / (now - t0) if now > t0 else 0.0
                    say(
                        f"bulk restore: {target.table}: {done_records:,} of {total:,} records, "
                        f"{rate:,.0f}/s, partition {n + 1} of {len(todo)}"
                    )
            # complete up to the end it had at the start (compacted gaps and control records
            # have no message to see)
            if res.offset != res.end - 1:
                wb = rocksdict.WriteBatch(raw_mode=True)
                wb.put(OFFSET_KEY, str(res.end - 1).encode())
                db.write(wb, no_wal)
                res.offset = res.end - 1
            _close(dbs.pop(tp.partition))
        took = time.monotonic() - t0
        say(f"bulk restore: {target.table}: {done_records:,} records in {took:.1f} s")
    finally:
        for db in dbs.values():
            _close(db)
    return [results[p] for p in partitions]


def _reader_of_written(db: Any, written: set[bytes]) -> Callable[[bytes], bytes | None]:
    def get(key: bytes) -> bytes | None:
        return db.get(key) if key in written else None

    return get


def _derive_layout(target: TableTarget, partition: int, say: Callable[[str], None]) -> None:
    """A partition written before its table derived keys locally (an older worker applied
    records of the new layout without deriving from them) has its derived keys rebuilt from
    its records, once: then ``LAYOUT_KEY`` says so. Cheap (one scan of the partition)."""
    assert target.derive is not None
    path = target.path_of(partition)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = target.open_db(path)
    try:
        if db.get(LAYOUT_KEY) == DERIVED_LAYOUT:
            return
        import rocksdict

        records = [(k, v) for k, v in db.items() if k not in (OFFSET_KEY, LAYOUT_KEY)]
        wb = rocksdict.WriteBatch(raw_mode=True)
        for key, _ in records:
            wb.delete(key)
        # from nothing, in key order: keys the records no longer derive are dropped
        for key, value in target.derive(records, lambda k: None):
            if value is None:
                wb.delete(key)
            else:
                wb.put(key, value)
        wb.put(LAYOUT_KEY, DERIVED_LAYOUT)
        db.write(wb)
        if records:
            say(f"bulk restore: {target.table} partition {partition}: derived keys rebuilt "
                f"from {len(records):,} records")  # fmt: skip
    finally:
        _close(db)


def _close(db: Any) -> None:
    """Flush the memtables (written without WAL) to SST files, then close."""
    try:
        db.flush(True)
    finally:
        db.close()


def bulk_restore(app: Any, settings: Settings) -> RestoreReport:
    """Restore every RocksDB table of ``app`` from its changelog; runs its own event loop
    (call it before the Faust worker starts). Every database is closed when it returns."""
    targets = targets_of(app)

    def say(msg: str) -> None:
        if settings.log_format == "json":  # JSON logs: every line of the process is JSON
            log.info("%s", msg)
        else:
            print(msg, flush=True)

    say(
        f"bulk restore: {len(targets)} tables ({', '.join(t.table for t in targets)}) "
        f"into {settings.data_dir}"
    )

    from streams.observability.health import serving_during_restore

    state = RestoreProgress(tables=[t.table for t in targets])
    # the probes answer (503 with this progress) while the restore runs: minutes at scale
    work = restore_tables(settings, targets, progress=say, state=state)
    try:
        return asyncio.run(serving_during_restore(settings, state, work))
    except Exception as exc:  # the broker away, say: Faust's recovery does what is left
        log.warning(
            "bulk restore failed (%s: %s), Faust recovers the tables", type(exc).__name__, exc
        )
        return RestoreReport()
