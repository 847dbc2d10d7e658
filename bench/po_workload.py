"""The purchase-order benchmark's workload: orders, their mappings and stock, and the
watcher that sees each PO through to its acknowledgement."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

import bench.harness as h
from streams.config import Settings
from streams.sandbox.amazon import (
    CatalogueItem,
    OrderGenerator,
)
from streams.sandbox.amazon.generator import unit_cost

CHANNEL = "wh-1"


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------
class Orders:
    """Seeded purchase orders of exactly ``lines`` lines over the catalogue, state New.

    Headers (parties, dates, ship window) and lines (quantities in Cases of the catalogue's
    case size or in Eaches, net cost and list price) come from the sandbox's
    ``OrderGenerator``; the bench only fixes the line count (distinct SKUs per PO) and the
    state, so every PO asks for an acknowledgement of every line.
    """

    def __init__(self, catalogue: list[CatalogueItem], seed: int) -> None:
        self.catalogue = catalogue
        self.seed = seed
        self.gen = OrderGenerator(
            seed=seed, catalogue=catalogue, spread=timedelta(minutes=5), cancel_rate=0.0
        )

    def make(self, count: int, lines: int) -> list[dict[str, Any]]:
        # a fresh ``now`` per batch: the poller's window (created before now) must see them
        self.gen.now = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
        out = []
        for _ in range(count):
            order = self.gen.order()
            # the generator's own rng and line builder (private: it draws 1..max_lines lines)
            products = self.gen._rng.sample(self.catalogue, lines)
            order["purchaseOrderState"] = "New"
            details = order["orderDetails"]
            details["purchaseOrderStateChangedDate"] = details["purchaseOrderDate"]
            details.pop("purchaseOrderChangedDate", None)
            details["items"] = [
                self.gen._line(i + 1, item, False) for i, item in enumerate(products)
            ]
            out.append(order)
        return out


def mapping_record(item: CatalogueItem) -> bytes:
    return orjson.dumps(
        {
            "sku": item.sku,
            "asin": item.asin,
            "vendorProductIdentifier": item.vendorProductIdentifier,
            "unitsPerCase": item.unitsPerCase,
            "netCost": {"amount": str(unit_cost(item.sku)), "currencyCode": "USD"},
        }
    )


def stock_record(i: int, item: CatalogueItem, qty: int) -> bytes:
    entry = str(uuid.UUID(int=random.Random(f"entry-{i}").getrandbits(128), version=4))
    at = h.iso_now()
    return orjson.dumps(
        {
            "notificationType": "Message",
            "projectKey": h.PROJECT,
            "id": f"{entry}-1",
            "version": 1,
            "sequenceNumber": 1,
            "resource": {"typeId": "inventory-entry", "id": entry},
            "resourceVersion": 1,
            "type": "InventoryEntryCreated",
            "inventoryEntry": {
                "id": entry,
                "version": 1,
                "sku": item.sku,
                "quantityOnStock": qty,
                "availableQuantity": qty,
                "supplyChannel": {"typeId": "channel", "id": CHANNEL},
            },
            "createdAt": at,
            "lastModifiedAt": at,
        }
    )


# --------------------------------------------------------------------------------------
# what comes out: acknowledgements and POs on Kafka, submissions at the sandbox
# --------------------------------------------------------------------------------------
@dataclass
class Seen:
    ack_ts: dict[str, float] = field(default_factory=dict)  # PO -> first ack's Kafka ts
    ack_recv: dict[str, float] = field(default_factory=dict)  # PO -> received by the bench
    ack_count: Counter[str] = field(default_factory=Counter)  # PO -> acks published
    ack_codes: dict[str, Counter[str]] = field(default_factory=dict)  # PO -> entry codes
    ack_items: dict[str, int] = field(default_factory=dict)  # PO -> items acknowledged
    po_ts: dict[str, float] = field(default_factory=dict)  # PO -> first record on the PO topic


class Watcher:
    """Follows amazon.po-acknowledgements and amazon.purchase-orders from their end."""

    def __init__(self, s: Settings) -> None:
        self.s = s
        self.seen = Seen()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.c = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )

    async def start(self) -> None:
        c = self.c
        await c.start()
        await c._client.force_metadata_update()
        tps = [
            TopicPartition(t, p)
            for t in (self.s.topic_po_acknowledgements, self.s.topic_purchase_orders)
            for p in sorted(c.partitions_for_topic(t) or ())
        ]
        c.assign(tps)
        await c.seek_to_end(*tps)
        for tp in tps:
            await c.position(tp)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        ack_topic = self.s.topic_po_acknowledgements
        sn = self.seen
        while not self._stop.is_set():
            batch = await self.c.getmany(timeout_ms=100)
            now = time.time()
            for tp, msgs in batch.items():
                for m in msgs:
                    po = m.key.decode() if m.key else ""
                    ts = m.timestamp / 1000
                    if tp.topic != ack_topic:
                        sn.po_ts.setdefault(po, ts)
                        continue
                    sn.ack_count[po] += 1
                    if po in sn.ack_ts:
                        continue
                    sn.ack_ts[po] = ts
                    sn.ack_recv[po] = now
                    ack = orjson.loads(m.value)
                    items = ack.get("items", [])
                    sn.ack_items[po] = len(items)
                    sn.ack_codes[po] = Counter(
                        e["acknowledgementCode"] for it in items for e in it["itemAcknowledgements"]
                    )

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        await self.c.stop()


def submitted_at(received: list[dict[str, Any]]) -> tuple[dict[str, float], Counter[str]]:
    """PO -> time the sandbox accepted its acknowledgement (202); statuses per PO too."""
    first: dict[str, float] = {}
    statuses: Counter[str] = Counter()
    for e in received:
        acks = (e.get("body") or {}).get("acknowledgements") or []
        for a in acks:
            po = a.get("purchaseOrderNumber")
            statuses[str(e["status"])] += 1
            if e["status"] == 202 and po not in first:
                first[po] = datetime.fromisoformat(e["at"]).timestamp()
    return first, statuses
