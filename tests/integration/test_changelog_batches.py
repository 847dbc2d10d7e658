"""Table changelog records and inventory deltas as whole record batches on Faust's own
aiokafka producer, on a real broker: the records land in order in the partition each must
have (the table's partition; the default partitioner's for a key), the persisted offset is
the last record's, and Faust's producer flush (what it awaits before committing offsets)
covers them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.runtime.consumer import StreamsApp
from streams.runtime.kafka import aiokafka_producer
from streams.runtime.store import OFFSET_KEY, TableStore, read_partition, send_keyed
from tests.support.kafka import read_all

pytestmark = [pytest.mark.kafka]


async def create(kafka: str, topics: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        new = [NewTopic(t, num_partitions=n, replication_factor=1) for t, n in topics.items()]
        await admin.create_topics(new)
    finally:
        await admin.close()


@pytest.fixture
async def app(kafka: str, tmp_path: Path) -> AsyncIterator[Any]:
    a = StreamsApp(f"batches-{uuid.uuid4().hex[:8]}", broker=f"kafka://{kafka}",
                   store="rocksdb://", datadir=str(tmp_path))  # fmt: skip
    a.Table("t", partitions=2, key_type=bytes, value_type=bytes, options={"driver": "rocksdict"})
    await create(kafka, {a.tables["t"].changelog_topic.get_topic_name(): 2})
    await a.producer.start()
    try:
        yield a
    finally:
        await a.producer.stop()
        for table in a.tables.values():
            cast(Any, table).data.reset_state()


async def test_changelog_records_go_as_batches_in_order_with_the_last_offset_persisted(
    app: Any, kafka: str
) -> None:
    table = app.tables["t"]
    topic = table.changelog_topic.get_topic_name()
    store = TableStore(app, table)
    assert aiokafka_producer(app) is not None, "Faust's producer has started"
    writes = [(f"k{i:04d}".encode(), f"v{i}".encode()) for i in range(3000)]
    futs = await store.put_many(1, writes)
    futs += await store.put_many(1, [(b"k0001", None), (b"k0002", b"again")])
    # batches, not a future per record (3,002 records)
    assert 0 < len(futs) < 100
    await app.producer.flush()  # Faust's flush before a commit: every batch is delivered
    assert all(f.done() and f.exception() is None for f in futs)
    recs = await read_all(kafka, topic)
    assert [(r.key, r.value) for r in recs] == [
        *writes, (b"k0001", None), (b"k0002", b"again")
    ]  # fmt: skip
    assert {r.partition for r in recs} == {1}
    assert read_partition(table, 1).get(OFFSET_KEY) == str(recs[-1].offset).encode()
    assert store.get(1, b"k0001") is None and store.get(1, b"k0002") == b"again"


async def test_keyed_records_land_where_the_default_partitioner_puts_them(
    app: Any, kafka: str
) -> None:
    out = f"updates-{uuid.uuid4().hex[:8]}"
    await create(kafka, {out: 3})
    records = [(f"SKU-{i}".encode(), f'{{"n":{i}}}'.encode()) for i in range(200)]
    await aiokafka_producer(app).partitions_for(out)  # the topic's metadata is known
    futs = await send_keyed(app, out, records)
    futs += await send_keyed(app, out, records)
    assert len(futs) <= 6, "one batch per partition per call, not a future per record"
    await app.producer.flush()
    # the reference: aiokafka's own keyed send of the same keys
    ref = AIOKafkaProducer(bootstrap_servers=kafka)
    await ref.start()
    try:
        expected = {k: (await (await ref.send(out, b"", key=k))).partition for k, _ in records}
    finally:
        await ref.stop()
    got = [r for r in await read_all(kafka, out) if r.value]
    assert len(got) == 400
    assert all(r.partition == expected[r.key or b""] for r in got)
    for p in range(3):  # per partition, in the order sent, twice over
        keys = [r.key for r in got if r.partition == p]
        mine = [k for k, _ in records if expected[k] == p]
        assert keys == mine + mine
