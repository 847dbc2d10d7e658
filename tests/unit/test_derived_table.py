"""``DerivedGlobalTable`` (runtime/store.py) over a real Faust RocksDB global table: Faust's
changelog apply goes through the table's ``derive`` (one WriteBatch per partition), the
persisted offsets follow, and reads through Faust's own ``table.get`` find keys that moved
between partitions (its key index is kept honest). ``TableStore.put_many(changelog=...)``
writes the derived keys locally and sends only the given records."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import orjson
import pytest
from faust.types import TP

from streams.domain import product_index
from streams.runtime.store import OFFSET_KEY, TableStore, derived_global_table, read_partition
from tests.unit.test_partition_store import FakeApp


class Msg:
    def __init__(self, tp: TP, offset: int, key: bytes, value: bytes | None) -> None:
        self.tp, self.partition, self.offset = tp, tp.partition, offset
        self.key, self.value = key, value


class Event:
    def __init__(self, message: Msg) -> None:
        self.message = message


def rocksdb_table(tmp_path: Path, declare: Any, name: str, derive: Any) -> Iterator[Any]:
    """``declare(app, name, derive=..., ...)`` on a Faust app with RocksDB tables in
    ``tmp_path`` (no broker is reached); its store is reset afterwards."""
    app = faust.App(f"dt-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:1",
                    store="rocksdb://", datadir=str(tmp_path))  # fmt: skip
    t = declare(app, name, derive=derive, partitions=2, key_type=bytes, value_type=bytes,
                options={"driver": "rocksdict"})  # fmt: skip
    assert app.tables[name] is t
    yield t
    t.data.reset_state()


@pytest.fixture
def products(tmp_path: Path) -> Iterator[Any]:
    yield from rocksdb_table(tmp_path, derived_global_table, "products", product_index.derive)


def mapping(sku: str, asin: str) -> bytes:
    return orjson.dumps({"sku": sku, "asin": asin})


def events(table: Any, partition: int, start: int, records: list[Any]) -> list[Event]:
    tp = TP(table.changelog_topic.get_topic_name(), partition)
    return [Event(Msg(tp, start + i, k, v)) for i, (k, v) in enumerate(records)]


def test_faust_changelog_apply_derives_the_index(products: Any) -> None:
    products.apply_changelog_batch(
        events(products, 0, 10, [
            (b"sku:A", mapping("A", "B00000000A")),
            (b"asin:LEGACY0001", b"A"),  # an old-layout record: skipped
            (b"sku:B", mapping("B", "B00000000B")),
        ])
    )  # fmt: skip
    assert products.get(b"asin:B00000000A") == b"A"
    assert products.get(b"asin:B00000000B") == b"B"
    assert products.get(b"asin:LEGACY0001") is None
    assert read_partition(products, 0).get(OFFSET_KEY) == b"12"
    # B's ASIN moves to C in the other partition: Faust's read finds it there
    products.apply_changelog_batch(events(products, 0, 13, [(b"sku:B", None)]))
    products.apply_changelog_batch(events(products, 1, 0, [(b"sku:C", mapping("C", "B00000000B"))]))
    assert products.get(b"sku:B") is None
    assert products.get(b"asin:B00000000B") == b"C"
    assert read_partition(products, 1).get(OFFSET_KEY) == b"0"


async def test_put_many_sends_only_the_changelog_records(products: Any) -> None:
    app = FakeApp()
    ts = TableStore(app, products)  # type: ignore[arg-type]
    records = [(b"sku:A", mapping("A", "B00000000A"))]
    writes = product_index.derive(records, read_partition(products, 1).get)
    futs = await ts.put_many(1, writes, changelog=records)
    await asyncio.sleep(0)
    topic = products.changelog_topic.get_topic_name()
    assert app.producer.sent == [(topic, b"sku:A", mapping("A", "B00000000A"), 1)]
    assert len(futs) == 1 and read_partition(products, 1).get(OFFSET_KEY) == b"0"
    assert products.get(b"asin:B00000000A") == b"A"
    # nothing changed locally: still the record (a redelivery must reach the changelog)
    assert await ts.put_many(1, [], changelog=records) and len(app.producer.sent) == 2
