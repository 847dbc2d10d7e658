"""Deletes that name only the entry, through a real worker on real Kafka: a ResourceDeleted
without ``resourceUserProvidedIdentifiers.sku`` and a PayloadNotIncluded InventoryEntryDeleted
are placed by entry id (the SKU agent's entry index) instead of being dead-lettered; a delete
of an entry never seen is dead-lettered with a reason that says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streams.adapters.kafka_admin import create_topics
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


async def test_deletes_without_a_sku_are_placed_by_entry_id(tmp_path: Path, kafka: str) -> None:
    s = e2e_settings(kafka, tmp_path, po_poller_enabled=False, ct_api_url="http://127.0.0.1:9")
    await create_topics(s)
    bs = s.kafka_bootstrap
    await produce(bs, s.topic_sku_mappings, [(b"SKU-D", mapping("SKU-D", "B0DELETE01", None))])
    await produce(
        bs,
        s.topic_ct_messages,
        [(b"ct", stock("d1", "SKU-D", "wh-1", 30)), (b"ct", stock("d2", "SKU-D", "wh-2", 12))],
    )
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
        await produce(bs, s.topic_ct_messages, [(b"ct", resource_deleted("never-seen", 3))])
        dlq = s.dlq_topic(s.topic_ct_messages)
        dead = await wait_for(bs, dlq, lambda r: len(r) >= 1)
    finally:
        w.stop()
    assert len(dead) == 1, w.tail()
    assert "not in the entry index" in dead[0].json()["error"]
