"""The inventory data set: commercetools entries over SKUs x channels with increasing
versions, their QuantitySet messages and SKU mappings."""

from __future__ import annotations

import random
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.harness.env import PROJECT, iso_now


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------
@dataclass
class Entry:
    entry_id: str
    version: int = 0
    available: int = 0
    on_stock: int = 0


@dataclass
class Dataset:
    skus: list[str]
    channels: list[str]
    entries: dict[tuple[int, int], Entry] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    def entry(self, s: int, c: int) -> Entry:
        e = self.entries.get((s, c))
        if e is None:
            e = Entry(str(uuid.UUID(int=self.rng.getrandbits(128), version=4)))
            self.entries[(s, c)] = e
        return e

    def total(self, s: int) -> int:
        """What the product should publish for SKU index s (every channel eligible)."""
        return sum(
            max(0, e.available)
            for c in range(len(self.channels))
            if (e := self.entries.get((s, c))) is not None
        )

    def quantity_set(self, s: int, c: int, available: int, at: str) -> bytes:
        """Apply one change to the model and return its ct.messages record."""
        e = self.entry(s, c)
        old_a, old_q = e.available, e.on_stock
        e.version += 1
        e.available = available
        e.on_stock = available + self.rng.randint(0, 20)  # some units reserved
        sku = self.skus[s]
        msg = {
            "notificationType": "Message",
            "projectKey": PROJECT,
            "id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "version": 1,
            "sequenceNumber": e.version,
            "resource": {"typeId": "inventory-entry", "id": e.entry_id},
            "resourceVersion": e.version,
            "resourceUserProvidedIdentifiers": {"sku": sku},
            "type": "InventoryEntryQuantitySet",
            "oldQuantityOnStock": old_q,
            "newQuantityOnStock": e.on_stock,
            "oldAvailableQuantity": old_a,
            "newAvailableQuantity": e.available,
            "sku": sku,
            "supplyChannel": {"typeId": "channel", "id": self.channels[c]},
            "createdAt": at,
            "lastModifiedAt": at,
        }
        return orjson.dumps(msg)


def make_dataset(skus: int, channels: int, seed: int) -> Dataset:
    rng = random.Random(seed)
    chans = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(channels)]
    return Dataset([f"SKU-{i:07d}" for i in range(skus)], chans, rng=rng)


def mapping_record(i: int, sku: str) -> bytes:
    return orjson.dumps(
        {
            "sku": sku,
            "asin": f"B{i:09d}",
            "vendorProductIdentifier": f"VP-{i:08d}",
            "unitsPerCase": 6,
            "amazonUnitOfMeasure": "Eaches",
            "safetyBuffer": 0,
            "obsolete": False,
        }
    )


def generate(
    messages: int, skus: int, channels: int, seed: int
) -> tuple[Dataset, list[bytes], list[tuple[bytes, bytes]]]:
    """The model, ``messages`` random quantity changes over ``skus`` x ``channels`` (the
    ct.messages values, in order) and a mapping record (key, value) for every SKU."""
    ds = make_dataset(skus, channels, seed)
    at = iso_now()
    ct_values: list[bytes] = []
    for _ in range(messages):
        si, ci = ds.rng.randrange(skus), ds.rng.randrange(channels)
        ct_values.append(ds.quantity_set(si, ci, ds.rng.randint(0, 500), at))
    maps = [(sku.encode(), mapping_record(i, sku)) for i, sku in enumerate(ds.skus)]
    return ds, ct_values, maps


async def fill_topics(
    s: Any, messages: int, skus: int, channels: int, seed: int
) -> tuple[Dataset, dict[str, Any]]:
    """A data set of ``skus`` x ``channels`` with ``messages`` random quantity changes,
    produced into ``s``'s mappings and then ct.messages topics; (the model, figures)."""
    from bench.harness.kafka import produce_all

    t = time.perf_counter()
    ds, ct_values, maps = generate(messages, skus, channels, seed)
    ct_records = [(b"ct", v) for v in ct_values]
    gen_s = time.perf_counter() - t
    sizes = [len(v) for _, v in ct_records]
    map_s = await produce_all(s.kafka_bootstrap, s.topic_sku_mappings, maps)
    ct_s = await produce_all(s.kafka_bootstrap, s.topic_ct_messages, ct_records)
    return ds, {
        "generate_s": round(gen_s, 2),
        "mean_record_bytes": round(statistics.mean(sizes), 1),
        "min_record_bytes": min(sizes),
        "max_record_bytes": max(sizes),
        "entries_touched": len(ds.entries),
        "mappings": len(maps),
        "produce_mappings_s": round(map_s, 2),
        "produce_ct_s": round(ct_s, 2),
        "produce_msgs_per_s": round(messages / ct_s, 1),
    }
