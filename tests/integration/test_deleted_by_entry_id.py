"""Deletes that name only the entry, through a real worker on real Kafka: a ResourceDeleted
without ``resourceUserProvidedIdentifiers.sku`` and a PayloadNotIncluded InventoryEntryDeleted
reach every SKU partition, and the one whose states hold the entry applies it (the entry
index derived in ``skus``, domain/entry_index.py); a delete of an entry no state holds has
nothing to remove: no partition places it, and the partition flows on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streams.adapters.kafka_admin import create_topics
from streams.config import Settings
from tests.e2e.test_purchase_orders import amounts, mapping, stock
from tests.support.e2e import e2e_settings
from tests.support.kafka import produce, wait_for
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.kafka]


def resource_deleted(entry: str, version: int) -> dict[str, Any]:
    return {
        "notificationType": "ResourceDeleted",
        "projectKey": "p",
        "resource": {"typeId": "inventory-entry", "id": entry},
        "version": version,
        "modifiedAt": "2026-12-06T08:00:00.000Z",
    }


def deleted_without_payload(entry: str, version: int) -> dict[str, Any]:
    return {
        "notificationType": "Message",
        "projectKey": "p",
        "id": f"{entry}-deleted",
        "sequenceNumber": version,
        "resource": {"typeId": "inventory-entry", "id": entry},
        "resourceVersion": version,
        "payloadNotIncluded": {
            "reason": "Payload too large.",
            "payloadType": "InventoryEntryDeleted",
        },
        "createdAt": "2026-12-06T08:00:00.000Z",
    }


async def sku_on_two_entries(
    tmp_path: Path, kafka: str, sku: str, entries: tuple[tuple[str, int], tuple[str, int]]
) -> Settings:
    """Topics of a new app, a mapping for ``sku`` and stock on two entries (wh-1, wh-2)."""
    s = e2e_settings(kafka, tmp_path, po_poller_enabled=False, ct_api_url="http://127.0.0.1:9")
    await create_topics(s)
    asin = f"B0{sku.replace('-', '')[:8]:0>8}"
    await produce(kafka, s.topic_sku_mappings, [(sku.encode(), mapping(sku, asin, None))])
    stocks = [stock(e, sku, f"wh-{n}", q) for n, (e, q) in enumerate(entries, 1)]
    await produce(kafka, s.topic_ct_messages, [(b"ct", x) for x in stocks])
    return s


async def test_deletes_without_a_sku_are_placed_by_entry_id(tmp_path: Path, kafka: str) -> None:
    s = await sku_on_two_entries(tmp_path, kafka, "SKU-D", (("d1", 30), ("d2", 12)))
    bs = s.kafka_bootstrap
    w = WorkerProcess(s, tmp_path / "worker.log").start()
    try:
        w.wait_ready()
        out = s.topic_inventory_updates
        recs = await wait_for(bs, out, lambda r: (amounts(r).get("SKU-D") or [0])[-1] == 42)
        assert amounts(recs)["SKU-D"][-1] == 42, w.tail()
        await produce(bs, s.topic_ct_messages, [(b"ct", resource_deleted("d1", 2))])
        recs = await wait_for(bs, out, lambda r: amounts(r)["SKU-D"][-1] == 12)
        assert amounts(recs)["SKU-D"][-1] == 12, w.tail()
        await produce(bs, s.topic_ct_messages, [(b"ct", deleted_without_payload("d2", 2))])
        recs = await wait_for(bs, out, lambda r: amounts(r)["SKU-D"][-1] == 0)
        assert amounts(recs)["SKU-D"][-1] == 0, w.tail()
        await produce(
            bs,
            s.topic_ct_messages,
            [(b"ct", resource_deleted("never-seen", 3)), (b"ct", stock("d3", "SKU-D", "wh-1", 5))],
        )
        recs = await wait_for(bs, out, lambda r: amounts(r)["SKU-D"][-1] == 5)
        assert amounts(recs)["SKU-D"][-1] == 5, w.tail()
        metrics = w.metrics()
    finally:
        w.stop()
    ct = s.topic_ct_messages
    assert f'streams_records_total{{outcome="by_entry",topic="{ct}"}} 3.0' in metrics
    assert 'streams_entry_deletes_total{result="placed"} 2.0' in metrics
    elsewhere = 3 * s.partitions - 2  # each delete reached every partition
    assert f'streams_entry_deletes_total{{result="elsewhere"}} {elsewhere}.0' in metrics
    assert 'streams_dlq_records_total{' not in metrics, w.tail()


def strip_entry_index(data_dir: Path) -> int:
    """A data dir as the previous release left it: ``skus`` states without the entry index
    or the layout marker (the worker that wrote it is stopped). Returns the keys removed."""
    import rocksdict

    from streams.domain.entry_index import ENTRY
    from streams.runtime.store import LAYOUT_KEY

    removed = 0
    paths = sorted(data_dir.rglob("skus-*.db"))
    assert paths, f"no skus partitions under {data_dir}"
    for path in paths:
        db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))
        try:
            for key in [k for k in db.keys() if k.startswith(ENTRY) or k == LAYOUT_KEY]:
                del db[key]
                removed += 1
        finally:
            db.close()
    return removed


@pytest.mark.parametrize("start", ["bulk-restore", "faust-recovery", "previous-release-data"])
async def test_the_entry_index_is_derived_wherever_states_are_restored(
    tmp_path: Path, kafka: str, start: str
) -> None:
    """A worker that has only the ``skus`` changelog (a fresh data dir, read by the bulk
    restore or by Faust's recovery), or a data dir of the previous release (states, no
    index), places a delete by entry id: the index comes from the states, not a record."""
    s = await sku_on_two_entries(tmp_path, kafka, "SKU-R", (("r1", 7), ("r2", 3)))
    bs, out = s.kafka_bootstrap, s.topic_inventory_updates
    first = WorkerProcess(s, tmp_path / "first.log").start()
    try:
        first.wait_ready()
        recs = await wait_for(bs, out, lambda r: (amounts(r).get("SKU-R") or [0])[-1] == 10)
        assert amounts(recs)["SKU-R"][-1] == 10, first.tail()
    finally:
        first.stop()
    if start == "previous-release-data":
        assert strip_entry_index(s.data_dir) == 3  # its 2 entries, the marker of their partition
        again = s
    else:
        again = s.model_copy(
            update={"data_dir": tmp_path / "fresh", "bulk_restore": start == "bulk-restore"}
        )
    w = WorkerProcess(again, tmp_path / "again.log").start()
    try:
        w.wait_ready()
        await produce(bs, s.topic_ct_messages, [(b"ct", resource_deleted("r1", 2))])
        recs = await wait_for(bs, out, lambda r: amounts(r)["SKU-R"][-1] == 3)
        assert amounts(recs)["SKU-R"][-1] == 3, w.tail()
        metrics = w.metrics()
        log = w.tail(400)
    finally:
        w.stop()
    assert 'streams_entry_deletes_total{result="placed"} 1.0' in metrics
    if start == "previous-release-data":
        assert "skus partition" in log and "derived keys rebuilt" in log, log
