"""Every private part of Faust and aiokafka that ``streams.runtime`` uses, one test each.

``streams.runtime.versions.TESTED`` names the versions these passed with; importing the runtime
with another version fails (``UntestedRuntimeVersion``). To move to a new Faust or aiokafka:
install it, run this file, fix what fails, then add the version to ``TESTED``.

Faust's parts are checked on a real app and its RocksDB tables (no broker needed: nothing is
started); aiokafka's on a real consumer against the broker.
"""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple, cast

import faust
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from faust.sensors import Sensor
from faust.stores.rocksdb import Store as RocksStore
from faust.transport.drivers.aiokafka import Consumer as FaustKafkaConsumer
from faust.types import TP

from streams.runtime.commit import ReadOffsets
from streams.runtime.consumer import (
    ContiguousCommitConsumer,
    OneRequestSeekThread,
    StreamsApp,
    TrackedMessage,
)
from streams.runtime.events import PartitionEvent, bind_event
from streams.runtime.kafka import all_metadata, partition_for, position, producer_metadata
from streams.runtime.offsets import seek_all_to_committed
from streams.runtime.store import OFFSET_KEY, TableStore, read_partition, rocksdict_targets
from streams.runtime.versions import TESTED, UntestedRuntimeVersion, check_versions, installed
from tests.support.kafka import create_topic, produce


@pytest.fixture
def app(tmp_path: Path) -> Iterator[faust.App]:
    a = StreamsApp(
        f"contract-{uuid.uuid4().hex[:8]}",
        broker="kafka://127.0.0.1:1",  # never connected: nothing is started
        store="rocksdb://",
        datadir=str(tmp_path),
    )
    a.Table("t", partitions=2, key_type=bytes, value_type=bytes, options={"driver": "rocksdict"})
    yield a
    for table in a.tables.values():
        cast(Any, table).data.reset_state()


def store_of(app: faust.App) -> Any:
    return cast(Any, app.tables["t"]).data


# --- the guard ---------------------------------------------------------------------------


def test_the_installed_versions_are_the_tested_ones() -> None:
    check_versions()  # importing streams.runtime ran it too
    assert all(installed(d) in ok for d, ok in TESTED.items())


def test_another_version_fails_naming_the_package_and_this_test() -> None:
    said = re.escape(f"faust-streaming {installed('faust-streaming')} (tested: 0.0.1)")
    with pytest.raises(UntestedRuntimeVersion, match=said):
        check_versions({"faust-streaming": ("0.0.1",)})
    with pytest.raises(UntestedRuntimeVersion, match="test_runtime_privates"):
        check_versions({"no-such-distribution-xyz": ("1.0",)})


# --- signatures of what the consumer overrides or calls ----------------------------------

CONSUMER_METHODS = {
    # overridden by BoundedWaitConsumer / ContiguousCommitConsumer
    "wait_empty": [],
    "_getmany": ["active_partitions", "timeout"],
    "_to_message": ["tp", "record"],
    "_add_gap": ["tp", "offset_from", "offset_to"],
    "perform_seek": [],
    "seek": ["partition", "offset"],
    "on_partitions_revoked": ["revoked"],
    "on_partitions_assigned": ["assigned", "generation_id"],
    "ack": ["message"],
    "_filter_tps_with_pending_acks": ["topics"],
    "_new_offset": ["tp"],
    # called by them
    "_wait_for_ack": ["timeout"],
    "_clean_unacked_messages": [],
    "_seek": ["partition", "offset"],
    "seek_to_committed": [],
    "earliest_offsets": ["partitions"],
    "commit_and_end_transactions": [],
    "commit": ["topics", "start_new_transaction"],
}


@pytest.mark.parametrize("name", sorted(CONSUMER_METHODS))
def test_consumer_method_keeps_its_signature(name: str) -> None:
    method = getattr(FaustKafkaConsumer, name)
    params = list(inspect.signature(method).parameters)[1:]
    assert params == CONSUMER_METHODS[name]
    ours = getattr(ContiguousCommitConsumer, name)
    assert list(inspect.signature(ours).parameters)[1:] == params


CONSUMER_STATE = {
    "_unacked_messages": ("discard", "clear", "__len__"),  # release_unacked, wait_empty
    "_acked": ("get", "__getitem__"),  # the Cython iterator's inlined acks land here
    "_acked_index": ("pop",),
    "_read_offset": ("update", "get"),  # replaced by ReadOffsets
    "_committed_offset": ("update",),
    "_n_acked": (),
}


@pytest.mark.parametrize("name", sorted(CONSUMER_STATE))
def test_consumer_state_attribute_exists(app: faust.App, name: str) -> None:
    consumer = app.consumer
    assert hasattr(consumer, name)
    value = getattr(consumer, name)
    for op in CONSUMER_STATE[name]:
        assert hasattr(value, op), (name, op)
    if name == "_n_acked":
        assert isinstance(value, int)


def test_waiting_for_ack_is_what_notify_sets(app: faust.App) -> None:
    assert "_waiting_for_ack" in vars(app.consumer)  # an asyncio.Future or None


def test_new_transport_puts_our_consumer_in_place(app: faust.App) -> None:
    """``StreamsApp._new_transport`` sets the transport's ``Consumer`` class."""
    assert list(inspect.signature(faust.App._new_transport).parameters) == ["self"]
    consumer = app.consumer
    assert isinstance(consumer, ContiguousCommitConsumer)
    assert isinstance(consumer._read_offset, ReadOffsets)


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp: int | None
    timestamp_type: int
    headers: list[tuple[str, bytes]]
    key: bytes | None
    value: bytes | None
    checksum: None
    serialized_key_size: int
    serialized_value_size: int


def test_consumer_message_takes_fields_in_the_order_to_message_passes_them(
    app: faust.App,
) -> None:
    tp = TP("x", 1)
    rec = Record("x", 1, 42, 1_700_000_000_123, 0, [("h", b"1")], b"k", b"v", None, 1, 1)
    m = cast(Any, app.consumer)._to_message(tp, rec)
    assert isinstance(m, TrackedMessage)
    assert (m.topic, m.partition, m.offset, m.key, m.value) == ("x", 1, 42, b"k", b"v")
    assert m.timestamp == pytest.approx(1_700_000_000.123)
    assert m.tp == tp and m.headers == [("h", b"1")]
    assert m.generation_id == app.consumer_generation_id
    m.refcount += 2  # the conductor's delivery to two channels
    assert m.delivered == 2


def test_sensor_hook_the_taken_count_uses() -> None:
    params = list(inspect.signature(Sensor.on_stream_event_in).parameters)[1:]
    assert params == ["tp", "offset", "stream", "event"]


# --- the current event and the stores ----------------------------------------------------


def test_current_event_is_the_bound_one_while_bound() -> None:
    """``faust.streams._current_event``: what ``bind_event`` sets and Faust routes by."""
    from faust.streams import current_event

    ev: Any = PartitionEvent("x", 1)
    before = current_event()
    with bind_event(ev):
        assert current_event() is ev
    assert current_event() is before


def test_a_store_write_goes_to_the_bound_events_partition(app: faust.App) -> None:
    """``Store.__setitem__`` / ``Store._del`` route by the current event's partition (what
    DirectWriter.put and the ingest's PartitionEvent rely on)."""
    store = store_of(app)
    with bind_event(PartitionEvent("t", 1)):  # type: ignore[arg-type]
        store[b"k"] = b"v"
    assert read_partition(app.tables["t"], 1).get(b"k") == b"v"
    assert read_partition(app.tables["t"], 0).get(b"k") is None
    assert inspect.signature(store._del).parameters.keys() == {"key"}
    with bind_event(PartitionEvent("t", 1)):  # type: ignore[arg-type]
        store._del(b"k")
    assert read_partition(app.tables["t"], 1).get(b"k") is None


def test_db_for_partition_is_the_partitions_rocksdict(app: faust.App) -> None:
    """``Store._db_for_partition``: TableStore's reads and WriteBatch writes."""
    from rocksdict import Rdict, WriteBatch

    db = store_of(app)._db_for_partition(0)
    assert isinstance(db, Rdict)
    wb = WriteBatch(raw_mode=True)
    wb.put(b"b", b"2")
    wb.put(b"a", b"1")
    db.write(wb)
    ts = TableStore(app, app.tables["t"])
    assert ts.get(0, b"a") == b"1" and ts.get(1, b"a") is None
    assert list(ts.items(0, from_key=b"b")) == [(b"b", b"2")]


def test_the_persisted_offset_is_kept_under_the_offset_key(app: faust.App) -> None:
    """``Store.offset_key`` (the bulk restore writes it; the scans skip it) and
    ``set_persisted_offset``, which TableStore.put_many calls as records are delivered."""
    store = store_of(app)
    assert store.offset_key == OFFSET_KEY
    changelog = app.tables["t"].changelog_topic.get_topic_name()
    store.set_persisted_offset(TP(changelog, 1), 41)
    assert read_partition(app.tables["t"], 1).get(OFFSET_KEY) == b"41"
    assert list(TableStore(app, app.tables["t"]).items(1)) == []  # never a record


def test_the_restore_opens_the_databases_faust_opens(app: faust.App) -> None:
    """``Store.use_rocksdict``, ``partition_path`` and ``rocksdb_options.open``."""
    store = store_of(app)
    assert isinstance(store, RocksStore) and store.use_rocksdict
    [(name, topic, path_of, open_db)] = rocksdict_targets(app)
    assert name == "t" and topic == app.tables["t"].changelog_topic.get_topic_name()
    db = store._db_for_partition(1)
    db[b"k"] = b"v"
    assert path_of(1) == store.partition_path(1)
    assert Path(path_of(1)).exists()
    assert callable(open_db)


def test_a_global_tables_reads_go_by_its_key_index(app: faust.App) -> None:
    """``Store._key_index`` (write_batch pops the keys it writes): a global table's read looks
    a key up in the partition it was last found in, and only there."""
    g: Any = app.GlobalTable("g", partitions=2, key_type=bytes, value_type=bytes,
                             options={"driver": "rocksdict"})  # fmt: skip
    store = g.data
    store._db_for_partition(0)[b"k"] = b"in 0"
    store._db_for_partition(1)
    assert g.get(b"k") == b"in 0" and store._key_index[b"k"] == 0
    del store._db_for_partition(0)[b"k"]
    store._db_for_partition(1)[b"k"] = b"in 1"
    assert g.get(b"k") is None  # not searched elsewhere while the index names partition 0
    store._key_index.pop(b"k", None)
    assert g.get(b"k") == b"in 1"


def test_a_derived_global_table_is_built_as_app_global_table_builds_one(app: faust.App) -> None:
    """``derived_global_table``: the keyword arguments ``App.GlobalTable`` passes to the table
    class (``beacon``, ``standby_buffer_size``, ``is_global``, ...) and the recovery's hook
    ``Collection.apply_changelog_batch`` (overridden)."""
    from faust.tables.base import Collection

    from streams.runtime.store import DerivedGlobalTable, derived_global_table

    source = inspect.getsource(faust.App.GlobalTable)
    for kw in ("beacon=self.tables.beacon", "standby_buffer_size=1", "is_global=True",
               "synchronize_all_active_partitions="):  # fmt: skip
        assert kw in source, kw
    assert "apply_changelog_batch" in inspect.getsource(Collection)
    t = derived_global_table(app, "d", derive=lambda records, get: list(records), partitions=2,
                             key_type=bytes, value_type=bytes,
                             options={"driver": "rocksdict"})  # fmt: skip
    assert isinstance(t, DerivedGlobalTable) and app.tables["d"] is t
    assert t.is_global and t.standby_buffer_size == 1


# --- aiokafka ----------------------------------------------------------------------------


def test_partition_for_is_the_producers_default_partitioner() -> None:
    partitioner = DefaultPartitioner()
    keys = [f"SKU-{i}".encode() for i in range(200)] + [b"", b"\xff" * 9]
    # twice, and for two partition counts: a remembered key answers for its own count
    for n in (6, 12, 6, 12):
        for key in keys:
            assert partition_for(key, n) == partitioner(key, list(range(n)), list(range(n)))


async def test_position_and_metadata_from_the_consumers_internals(kafka: str) -> None:
    """``consumer._subscription...state_value(tp)`` (the raw stages' lag) and
    ``consumer._client.fetch_all_metadata()`` (the bulk restore)."""
    topic = await create_topic(kafka, "contract-runtime", 2)
    await produce(kafka, topic, [(b"k", b"v%d" % i) for i in range(5)])
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        cluster = await all_metadata(consumer)
        assert cluster.partitions_for_topic(topic) == {0, 1}
        tp = TopicPartition(topic, partition_for(b"k", 2))
        consumer.assign([tp])
        consumer.seek(tp, 2)
        assert position(consumer, tp) == 2
        got = await consumer.getmany(tp, timeout_ms=5000, max_records=2)
        assert [r.offset for r in got[tp]] == [2, 3]
        assert position(consumer, tp) == 4  # the next offset getmany hands out
    finally:
        await consumer.stop()


async def test_seek_all_to_committed_is_aiokafkas_seek_in_one_request(kafka: str) -> None:
    """``consumer._subscription.assigned_partitions()``, ``_coordinator.
    fetch_committed_offsets`` and ``_fetcher.seek_to`` (runtime/offsets.py): the committed
    offsets and positions aiokafka's own ``seek_to_committed`` gives, partition by partition."""
    topic = await create_topic(kafka, "contract-seek", 3)
    tps = [TopicPartition(topic, p) for p in range(3)]
    await produce(kafka, topic, [(f"k{i}".encode(), b"v") for i in range(60)])
    group = f"contract-seek-{uuid.uuid4().hex[:8]}"

    async def consumer_at_start() -> AIOKafkaConsumer:
        c = AIOKafkaConsumer(
            bootstrap_servers=kafka, group_id=group, enable_auto_commit=False,
            auto_offset_reset="earliest",
        )  # fmt: skip
        await c.start()
        c.assign(tps)
        return c

    first = await consumer_at_start()
    try:  # partition 0 at 3, partition 1 at 0, partition 2 never committed
        await first.commit({tps[0]: 3, tps[1]: 0})
    finally:
        await first.stop()
    ours, theirs = await consumer_at_start(), await consumer_at_start()
    try:
        got = await seek_all_to_committed(ours)
        want = await theirs.seek_to_committed()
        assert got == want == {tps[0]: 3, tps[1]: 0, tps[2]: None}
        for tp in tps:
            assert await ours.position(tp) == await theirs.position(tp)
        assert await ours.position(tps[0]) == 3
    finally:
        await ours.stop()
        await theirs.stop()


def test_our_consumer_thread_replaces_fausts_where_faust_makes_it(app: faust.App) -> None:
    """``Consumer._new_consumer_thread()`` makes the thread (``AIOKafkaConsumerThread(self,
    loop=, beacon=)``); its ``seek_to_committed`` runs on it through ``call_thread(fun,
    *args)`` on ``_ensure_consumer()``, as Faust's own does."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    assert list(inspect.signature(FaustKafkaConsumer._new_consumer_thread).parameters) == ["self"]
    source = inspect.getsource(FaustKafkaConsumer._new_consumer_thread)
    assert "AIOKafkaConsumerThread(self, loop=self.loop, beacon=self.beacon)" in source
    own = inspect.getsource(AIOKafkaConsumerThread.seek_to_committed)
    assert "self.call_thread(self._ensure_consumer().seek_to_committed)" in own
    assert isinstance(cast(Any, app.consumer)._thread, OneRequestSeekThread)


def test_fausts_table_manager_starts_with_the_wait_the_prompt_one_leaves_out() -> None:
    """``TableManager.on_start`` is a one-second sleep, then the channels and the recovery:
    the prompt manager is the same without the sleep."""
    from faust.tables import TableManager

    from streams.runtime.tablemanager import PromptTableManager

    def body(method: object) -> list[str]:
        lines = [ln.strip() for ln in inspect.getsource(method).splitlines()[1:]]  # type: ignore[arg-type]
        return [ln for ln in lines if ln and not ln.startswith(('"""', "#"))]  # the code

    faust_body = body(TableManager.on_start)
    assert faust_body[0] == "await self.sleep(1.0)"
    assert body(PromptTableManager.on_start) == faust_body[1:]
    assert inspect.iscoroutinefunction(TableManager._update_channels)


async def test_producer_metadata_over_fausts_own_producer(app: faust.App, kafka: str) -> None:
    """``app.producer._producer`` (Faust's AIOKafkaProducer, None until started) and its
    ``client.fetch_all_metadata()``: the readiness probe's request."""
    with pytest.raises(ConnectionError, match="not started"):
        await producer_metadata(app)
    from aiokafka import AIOKafkaProducer

    producer = cast(Any, app.producer)
    assert producer._producer is None
    raw = AIOKafkaProducer(bootstrap_servers=kafka)
    await raw.start()
    try:
        producer._producer = raw  # what Faust's Producer.on_start does
        cluster = await producer_metadata(app)
        assert cluster.brokers(), "the broker answered with its metadata"
    finally:
        producer._producer = None
        await raw.stop()


def test_mode_worker_schedules_its_stop_where_the_shutdown_watchdog_hooks_in() -> None:
    """``streams.worker`` arms its watchdog in ``Worker._schedule_shutdown`` (the SIGTERM and
    SIGINT handlers' one call), once: while ``_signal_stop_time`` is still unset."""
    from mode.worker import Worker

    params = list(inspect.signature(Worker._schedule_shutdown).parameters)
    assert params == ["self", "signal"]
    source = inspect.getsource(Worker._schedule_shutdown)
    assert "self._signal_stop_time" in source
    assert "_schedule_shutdown(signal.SIGTERM)" in inspect.getsource(Worker._on_sigterm)


async def test_the_stall_watch_reads_the_commit_in_progress_and_the_recovery(
    app: faust.App,
) -> None:
    """``runtime.stall.faust_sample``: ``App._consumer`` (read without creating one),
    ``Consumer._commit_fut`` (set for the length of a commit, None otherwise) and the
    recovery's ``active_remaining_total``."""
    from streams.runtime.stall import faust_sample

    assert cast(Any, app)._consumer is None  # not created by reading it
    consumer = app.consumer
    assert cast(Any, app)._consumer is consumer
    assert cast(Any, consumer)._commit_fut is None
    source = inspect.getsource(FaustKafkaConsumer.commit)
    assert "self._commit_fut = asyncio.Future" in source
    assert "self._commit_fut = self._commit_fut, None" in source
    assert isinstance(app.tables.recovery.active_remaining_total(), int)
    s = faust_sample(app, lambda: True)()
    assert (s.commit, s.kafka_ok, s.recovery_remaining) == (None, True, 0)
