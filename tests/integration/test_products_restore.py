"""The ``products`` table on a real broker: one changelog record per mapping, and a worker
that has only that changelog (a fresh data dir) resolves purchase-order lines by ASIN and by
vendor product id through the index it derived, with the stale keys of changed and deleted
mappings gone. Both ways a worker reads the changelog: the bulk restore before Faust starts,
and Faust's own changelog reading (``STREAMS_BULK_RESTORE=false``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from streams.adapters.kafka_admin import create_topics
from streams.sandbox.amazon import running_sandbox
from tests.support.badinput import po_item, purchase_order
from tests.support.e2e import at_sandbox, e2e_sandbox, e2e_settings
from tests.support.kafka import produce, read_all, wait_for
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.kafka]


def mapping(sku: str, asin: str, vpi: str) -> dict[str, Any]:
    return {"sku": sku, "asin": asin, "vendorProductIdentifier": vpi}


MAPPINGS: list[tuple[bytes | None, Any]] = [
    (b"SKU-A", mapping("SKU-A", "B0MAPA0001", "VP-A")),
    (b"SKU-B", mapping("SKU-B", "B0MAPB0001", "VP-B")),
    (b"SKU-C", mapping("SKU-C", "B0OLDC0001", "VP-C-OLD")),
    (b"SKU-D", mapping("SKU-D", "B0MAPD0001", "VP-D")),
    (b"SKU-C", mapping("SKU-C", "B0NEWC0001", "VP-C")),  # new identifiers: old keys go
    (b"SKU-D", None),  # deleted: its keys go
]


def line(seq: str, asin: str, vpi: str) -> dict[str, Any]:
    return {**po_item(seq, asin, 1), "vendorProductIdentifier": vpi}


ACKS = "itemAcknowledgements"
LINES = {  # seq -> (line, resolves?)
    "1": (line("1", "B0MAPA0001", "VP-NONE1"), True),  # by ASIN
    "2": (line("2", "B0UNKN0002", "VP-B"), True),  # by vendor product id
    "3": (line("3", "B0OLDC0001", "VP-C-OLD"), False),  # SKU-C's old identifiers
    "4": (line("4", "B0NEWC0001", "VP-C"), True),
    "5": (line("5", "B0MAPD0001", "VP-D"), False),  # SKU-D, deleted
}


@pytest.mark.parametrize("bulk_restore", [True, False], ids=["bulk-restore", "faust-recovery"])
async def test_a_fresh_worker_resolves_po_lines_from_the_changelog_only(
    kafka: str, ct_api: str, tmp_path: Path, bulk_restore: bool
) -> None:
    s = e2e_settings(kafka, tmp_path, ct_api_url=ct_api, ct_auth_url=ct_api,
                     ct_project_key=f"pr-{tmp_path.name[-8:]}".replace("_", "-"))  # fmt: skip
    s = at_sandbox(s)
    await create_topics(s)
    changelog = f"{s.app_id}-products-changelog"
    await produce(kafka, s.topic_sku_mappings, MAPPINGS)

    first = WorkerProcess(s, tmp_path / "first.log").start()
    try:
        first.wait_ready()
        # SKU-D's tombstone: every earlier mapping's record is written before it (they are
        # read and applied in order, a batch's records of one SKU as its last one)
        await wait_for(
            kafka, changelog,
            lambda r: any(x.key == b"sku:SKU-D" and x.value is None for x in r), timeout=60,
        )  # fmt: skip
    finally:
        first.stop()
    recs = await read_all(kafka, changelog)
    # at most one record per mapping record, no index records
    assert {r.key for r in recs} == {b"sku:" + (k or b"") for k, _ in MAPPINGS}, first.tail()
    assert len(recs) <= len(MAPPINGS)
    final = {b"sku:" + (k or b""): v for k, v in MAPPINGS}  # the stored model_dump has every field
    got = {r.key or b"": r.json() for r in recs}  # the last record per key
    assert {k: v and {f: v[f] for f in final[k]} for k, v in got.items()} == final

    fresh = s.model_copy(update={"data_dir": tmp_path / "fresh", "bulk_restore": bulk_restore})
    async with running_sandbox(e2e_sandbox(fresh), port=fresh.sandbox_port):
        w = WorkerProcess(fresh, tmp_path / "fresh.log").start()
        try:
            w.wait_ready()
            items = [li for li, _ in LINES.values()]
            await produce(kafka, s.topic_purchase_orders,
                          [(b"MAPPO001", purchase_order("MAPPO001", items))])  # fmt: skip
            acks = await wait_for(
                kafka, s.topic_po_acknowledgements, lambda r: any(x.key == b"MAPPO001" for x in r),
                timeout=60,
            )  # fmt: skip
            [ack] = [x.json() for x in acks if x.key == b"MAPPO001"]
            reasons = {
                it["itemSequenceNumber"]: {e.get("rejectionReason") for e in it[ACKS]}
                for it in ack["items"]
            }
            for seq, (_, resolves) in LINES.items():
                unmapped = "InvalidProductIdentifier" in reasons[seq]
                assert unmapped is not resolves, (seq, reasons, w.tail())
            if bulk_restore:
                assert "bulk restore: products" in w.tail(400)
        finally:
            w.stop()
    await asyncio.sleep(0)


async def test_changelog_records_go_out_as_record_batches(kafka: str, tmp_path: Path) -> None:
    """``TableStore.put_many(producer=...)``: a real aiokafka producer's record batches; the
    records land in order in their partition and the persisted offset is the last one's."""
    import uuid

    import faust
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from streams.runtime.store import OFFSET_KEY, TableStore, read_partition

    app = faust.App(f"sr-{uuid.uuid4().hex[:8]}", broker=f"kafka://{kafka}",
                    store="rocksdb://", datadir=str(tmp_path))  # fmt: skip
    table: Any = app.Table("t", partitions=2, key_type=bytes, value_type=bytes,
                           options={"driver": "rocksdict"})  # fmt: skip
    topic = table.changelog_topic.get_topic_name()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka, max_batch_size=1024)
    await producer.start()
    try:
        big = b"x" * 300  # a few per 1 KiB batch: several batches
        items = [(f"k{i:02d}".encode(), big + bytes([i])) for i in range(10)]
        items.append((b"gone", None))
        ts = TableStore(app, table)
        futs = await ts.put_many(1, items, producer=producer)
        assert len(futs) > 2
        await asyncio.gather(*futs)
    finally:
        await producer.stop()
    recs = await read_all(kafka, topic)
    assert [(r.key, r.value) for r in recs] == items and {r.partition for r in recs} == {1}
    assert read_partition(table, 1).get(OFFSET_KEY) == str(recs[-1].offset).encode()
    assert read_partition(table, 1).get(b"k03") == big + b"\x03"
    table.data.reset_state()
