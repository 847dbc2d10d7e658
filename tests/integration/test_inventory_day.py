"""A scripted day of commercetools stock changes through a real worker on real Kafka.

Three warehouses (wh-1 and wh-2 serve Amazon, wh-3 does not), duplicates, out-of-order and
stale messages, a delete, a notification without payload (resolved by reading the entry from
the commercetools emulator over HTTP), bad records; the worker is SIGKILLed mid-way and
restarted, and must resume from its RocksDB state.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from streams.adapters.commercetools import CommercetoolsClient
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings
from tests.support.kafka import produce, read_all, unique_settings, wait_for
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.ctmock]


def qset(
    entry: str, sku: str, channel: str, version: int, available: int, msg_id: str | None = None
) -> dict[str, Any]:
    return {
        "notificationType": "Message",
        "projectKey": "demo-project",
        "id": msg_id or f"{entry}-v{version}",
        "version": 1,
        "sequenceNumber": version,
        "resource": {"typeId": "inventory-entry", "id": entry},
        "resourceVersion": version,
        "resourceUserProvidedIdentifiers": {"sku": sku},
        "type": "InventoryEntryQuantitySet",
        "oldQuantityOnStock": 0,
        "newQuantityOnStock": available,
        "oldAvailableQuantity": 0,
        "newAvailableQuantity": available,
        "sku": sku,
        "supplyChannel": {"typeId": "channel", "id": channel},
        "createdAt": "2026-11-27T08:00:00.000Z",
        "lastModifiedAt": "2026-11-27T08:00:00.000Z",
    }


def created(entry: str, sku: str, channel: str, available: int) -> dict[str, Any]:
    msg = qset(entry, sku, channel, 1, available)
    for k in (
        "oldQuantityOnStock",
        "newQuantityOnStock",
        "oldAvailableQuantity",
        "newAvailableQuantity",
        "sku",
        "supplyChannel",
    ):
        msg.pop(k)
    msg["type"] = "InventoryEntryCreated"
    msg["inventoryEntry"] = {
        "id": entry,
        "version": 1,
        "sku": sku,
        "quantityOnStock": available,
        "availableQuantity": available,
        "supplyChannel": {"typeId": "channel", "id": channel},
        "createdAt": "2026-11-27T08:00:00.000Z",
        "lastModifiedAt": "2026-11-27T08:00:00.000Z",
    }
    return msg


def deleted(entry: str, sku: str, channel: str, version: int) -> dict[str, Any]:
    msg = qset(entry, sku, channel, version, 0)
    for k in (
        "oldQuantityOnStock",
        "newQuantityOnStock",
        "oldAvailableQuantity",
        "newAvailableQuantity",
    ):
        msg.pop(k)
    msg["type"] = "InventoryEntryDeleted"
    return msg


def mapping(sku: str, asin: str, **extra: Any) -> dict[str, Any]:
    return {"sku": sku, "asin": asin, "amazonChannels": ["wh-1", "wh-2"], **extra}


def deltas(records: list[Any]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for r in records:
        v = r.json()
        assert v["kind"] == "delta"
        out.setdefault(v["sku"], []).append(v["availableQuantity"]["amount"])
    return out


@pytest.fixture
def day_settings(kafka: str, ct_api: str, tmp_path: Path) -> Settings:
    s = unique_settings(
        kafka,
        tmp_path,
        web_port=free_port(),
        debounce_window_s=1.0,
        debounce_max_wait_s=5.0,
        debounce_tick_s=0.1,
        ct_api_url=ct_api,
        ct_auth_url=ct_api,
        ct_project_key=f"day-{tmp_path.name[-8:]}".replace("_", "-"),
    )
    asyncio.run(create_topics(s))
    return s


async def seed_entry(s: Settings, sku: str, channel_key: str, qty: int) -> tuple[str, str]:
    async with CommercetoolsClient(s) as ct:
        channel = await ct.create_channel({"key": channel_key, "roles": ["InventorySupply"]})
        entry = await ct.create_inventory_entry(
            {
                "sku": sku,
                "quantityOnStock": qty,
                "supplyChannel": {"typeId": "channel", "id": channel["id"]},
            }
        )
        return entry["id"], channel["id"]


async def test_a_day_of_stock_changes(day_settings: Settings, tmp_path: Path) -> None:
    s = day_settings
    bs = s.kafka_bootstrap
    ct, out, dlq = s.topic_ct_messages, s.topic_inventory_updates, s.dlq_topic(s.topic_ct_messages)
    # SKU-D's entry lives in commercetools; its notification will carry no payload
    d_entry, d_channel = await seed_entry(s, "SKU-D", "wh-4", 40)

    await produce(
        bs,
        s.topic_sku_mappings,
        [
            (b"SKU-A", mapping("SKU-A", "B0000000A1")),
            (b"SKU-B", mapping("SKU-B", "B0000000B1", safetyBuffer=2)),
            (b"SKU-D", {"sku": "SKU-D", "asin": "B0000000D1", "amazonChannels": [d_channel]}),
            (b"SKU-X", {"sku": "SKU-Y", "asin": "B0000000X1"}),  # key and value disagree
        ],
    )
    a_v2 = qset("a1", "SKU-A", "wh-1", 2, 12)
    b_v3 = qset("b1", "SKU-B", "wh-1", 3, 30)
    await produce(
        bs,
        ct,
        [
            (b"ct", created("a1", "SKU-A", "wh-1", 10)),
            (b"ct", created("a2", "SKU-A", "wh-2", 5)),
            (b"ct", created("a3", "SKU-A", "wh-3", 100)),  # not an Amazon warehouse
            (b"ct", a_v2),
            (b"ct", a_v2),  # redelivered
            (b"ct", created("b1", "SKU-B", "wh-1", 20)),
            (b"ct", b_v3),
            (b"ct", qset("b1", "SKU-B", "wh-1", 2, 25)),  # arrives after v3: stale
            (b"ct", created("c1", "SKU-C", "wh-1", 7)),  # no mapping: never sent to Amazon
            (b"ct", b"{not json"),
            (b"ct", {"notificationType": "Message", "type": "InventoryEntryQuantitySet"}),
            (b"ct", {"notificationType": "Teleported", "resource": {"typeId": "x", "id": "1"}}),
        ],
    )

    w = WorkerProcess(s, tmp_path / "worker1.log").start()
    try:
        w.wait_ready()
        recs = await wait_for(bs, out, lambda r: {"SKU-A", "SKU-B", "SKU-D"} <= set(deltas(r)))
        # one coalesced delta per SKU: A = 12 + 5 (wh-3 excluded), B = 30 - 2, D mapped, no stock
        assert deltas(recs) == {"SKU-A": [17], "SKU-B": [28], "SKU-D": [0]}
        first = recs[0].json()
        assert first["buyerProductIdentifier"].startswith("B0000000")
        assert first["availableQuantity"]["unitOfMeasure"] == "Each"

        dl = await wait_for(bs, dlq, lambda r: len(r) >= 3)
        reasons = sorted(r.json()["error"] for r in dl)
        assert len(dl) == 3
        assert reasons[0].startswith("not JSON")
        assert "resource is missing" in reasons[1]
        assert "unknown notificationType 'Teleported'" in reasons[2]
        assert {r.json()["source"]["offset"] for r in dl} == {9, 10, 11}
        assert dl[0].json()["valueText"] == "{not json"
        map_dlq = await read_all(bs, s.dlq_topic(s.topic_sku_mappings))
        assert len(map_dlq) == 1 and "differs from value sku" in map_dlq[0].json()["error"]

        metrics = w.metrics()
        assert 'streams_records_total{outcome="duplicate",topic="' + ct in metrics
        assert 'streams_records_total{outcome="stale",topic="' + ct in metrics
        assert "streams_unmapped_sku_events_total 1.0" in metrics
        # every ct.messages record is processed and committed: its lag gauge settles at 0
        group = f"{s.app_id}-ingest"  # the raw ingest stage's own consumer group
        lag = f'kafka_consumergroup_group_lag{{group="{group}",partition="0",topic="{ct}"}}'
        for _ in range(40):
            if f"{lag} 0.0" in w.metrics():
                break
            await asyncio.sleep(0.5)
        assert f"{lag} 0.0" in w.metrics()
        await asyncio.sleep(4)  # let the published markers and offsets be committed
    finally:
        w.kill()

    # --- after the crash -----------------------------------------------------------------
    await produce(
        bs,
        ct,
        [
            (b"ct", qset("a3", "SKU-A", "wh-3", 2, 50)),  # ineligible warehouse: no delta
            (b"ct", qset("a2", "SKU-A", "wh-2", 2, 5)),  # unchanged figure: no delta
            (b"ct", deleted("a1", "SKU-A", "wh-1", 3)),  # A = 5, only if wh-2 was remembered
            (b"ct", a_v2),  # replay of a deleted entry: stale
            (b"ct", b_v3),  # redelivery
            (
                b"ct",
                {
                    "notificationType": "ResourceUpdated",
                    "projectKey": s.ct_project_key,
                    "resource": {"typeId": "inventory-entry", "id": d_entry},
                    "version": 1,
                    "oldVersion": 1,
                    "modifiedAt": "2026-11-27T09:00:00.000Z",
                },
            ),
        ],
    )
    w2 = WorkerProcess(s, tmp_path / "worker2.log").start()
    try:
        w2.wait_ready()
        recs = await wait_for(
            bs,
            out,
            lambda r: deltas(r).get("SKU-D") == [0, 40] and deltas(r).get("SKU-A") == [17, 5],
        )
        await asyncio.sleep(3)  # nothing else may follow
        recs = await read_all(bs, out)
        assert deltas(recs) == {"SKU-A": [17, 5], "SKU-B": [28], "SKU-D": [0, 40]}, w2.tail()
        assert 'streams_ct_entry_fetches_total{result="ok"} 1.0' in w2.metrics()
    finally:
        w2.stop()
