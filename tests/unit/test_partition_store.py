"""``PartitionStore``: the dict fake the unit tests use and ``TableStore`` over a real Faust
RocksDB table answer alike; ``TableStore.put_many`` writes the partition in one batch,
produces one changelog record per key in order, and persists the last delivered offset.
The producer is a hand-written fake (no broker): it records sends and resolves them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.types import TP

from streams.runtime.ports import MemoryPartitionStore, PartitionStore
from streams.runtime.store import OFFSET_KEY, TableStore, read_partition


class Meta:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self.topic_partition = TP(topic, partition)
        self.offset = offset


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, int]] = []

    async def send(self, topic: str, key: bytes, value: bytes | None, partition: int,
                   timestamp: Any, headers: Any) -> asyncio.Future[Meta]:  # fmt: skip
        self.sent.append((topic, key, value, partition))
        fut: asyncio.Future[Meta] = asyncio.get_running_loop().create_future()
        fut.set_result(Meta(topic, partition, len(self.sent) - 1))
        return fut


class FakeApp:
    def __init__(self) -> None:
        self.producer = FakeProducer()


@pytest.fixture
def table(tmp_path: Path) -> Iterator[Any]:
    app = faust.App(f"ps-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:1",
                    store="rocksdb://", datadir=str(tmp_path))  # fmt: skip
    t: Any = app.Table("s", partitions=2, key_type=bytes, value_type=bytes,
                       options={"driver": "rocksdict"})  # fmt: skip
    yield t
    t.data.reset_state()


async def exercise(store: PartitionStore) -> list[Any]:
    await store.put_many(1, [(b"b", b"2"), (b"a", b"1"), (b"c", b"3")])
    await store.put_many(1, [(b"c", None), (b"d", b"4")])
    await store.put_many(0, [(b"a", b"other partition")])
    await asyncio.sleep(0)  # deliveries done: TableStore has persisted its offsets
    return [
        store.get(1, b"a"), store.get(1, b"c"), store.get(0, b"a"), store.get(0, b"zz"),
        list(store.items(1)), list(store.items(1, from_key=b"b")), list(store.items(0)),
    ]  # fmt: skip


async def test_the_fake_and_the_table_store_answer_alike(table: Any) -> None:
    app = FakeApp()
    ts = TableStore(app, table)  # type: ignore[arg-type]
    got = await exercise(ts)
    assert got == await exercise(MemoryPartitionStore())
    assert got[4] == [(b"a", b"1"), (b"b", b"2"), (b"d", b"4")]
    assert read_partition(table, 1).get(OFFSET_KEY) is not None  # stored, never listed


async def test_put_many_sends_the_changelog_in_order_and_persists_the_last_offset(
    table: Any,
) -> None:
    app = FakeApp()
    ts = TableStore(app, table)  # type: ignore[arg-type]
    futs = await ts.put_many(1, [(b"b", b"2"), (b"a", None)])
    await asyncio.sleep(0)  # done callbacks run on the loop
    changelog = table.changelog_topic.get_topic_name()
    assert app.producer.sent == [(changelog, b"b", b"2", 1), (changelog, b"a", None, 1)]
    assert len(futs) == 2
    assert read_partition(table, 1).get(OFFSET_KEY) == b"1"  # the last delivered
    assert await ts.put_many(1, []) == [] and len(app.producer.sent) == 2


async def test_put_local_writes_no_changelog_until_log_current_logs_the_stored_values(
    table: Any,
) -> None:
    app = FakeApp()
    ts = TableStore(app, table)  # type: ignore[arg-type]
    ts.put_local(1, [(b"a", b"1"), (b"b", b"2")])
    assert ts.get(1, b"a") == b"1" and app.producer.sent == []
    ts.put_local(1, [(b"a", b"1'"), (b"b", None)])  # changed again before it is logged
    await ts.log_current(1, [b"a", b"b"])
    await asyncio.sleep(0)
    changelog = table.changelog_topic.get_topic_name()
    assert app.producer.sent == [(changelog, b"a", b"1'", 1), (changelog, b"b", None, 1)]
    assert read_partition(table, 1).get(OFFSET_KEY) == b"1"
    assert await ts.log_current(1, []) == []
    fake = MemoryPartitionStore()
    fake.put_local(1, [(b"a", b"1'"), (b"b", b"2")])
    fake.put_local(1, [(b"b", None)])
    assert list(fake.items(1)) == list(ts.items(1)) == [(b"a", b"1'")]
