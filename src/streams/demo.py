"""``streams demo``: generated commercetools traffic and a live view of what flows.

Seeds SKU mappings, then publishes stock changes (with the duplicates, stale redeliveries and
bad records real subscriptions produce) to ``ct.messages`` and shows, live, what the worker
publishes to Amazon, what it dead-letters, and its own metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from streams.adapters.kafka_admin import client_kwargs
from streams.config import Settings

CHANNELS = ("wh-east", "wh-west", "store-nyc")  # the store does not serve Amazon
AMAZON_CHANNELS = ["wh-east", "wh-west"]


@dataclass
class Traffic:
    skus: int
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    versions: dict[tuple[str, str], int] = field(default_factory=dict)
    sent: dict[str, int] = field(
        default_factory=lambda: {"changes": 0, "duplicates": 0, "stale": 0, "bad": 0}
    )
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=50))

    def sku(self, i: int) -> str:
        return f"DEMO-{i:05d}"

    def mappings(self) -> list[tuple[bytes, bytes]]:
        out = []
        for i in range(self.skus):
            sku = self.sku(i)
            m = {
                "sku": sku,
                "asin": f"B0DEMO{i:04d}"[:10],
                "vendorProductIdentifier": f"40{i:011d}",
                "unitsPerCase": 12,
                "amazonChannels": AMAZON_CHANNELS,
                "safetyBuffer": 2,
            }
            out.append((sku.encode(), orjson.dumps(m)))
        return out

    def next_record(self) -> bytes:
        roll = self.rng.random()
        if roll < 0.005:
            self.sent["bad"] += 1
            return b'{"notificationType": "Message", "truncated'
        if roll < 0.025 and self.recent:
            self.sent["duplicates"] += 1
            return orjson.dumps(self.rng.choice(self.recent))
        sku = self.sku(self.rng.randrange(self.skus))
        channel = self.rng.choice(CHANNELS)
        entry = f"{sku}@{channel}"
        version = self.versions.get((sku, channel), 0) + 1
        stale = roll < 0.035 and version > 2
        if stale:
            self.sent["stale"] += 1
            version -= 2  # an old state redelivered late
        else:
            self.versions[(sku, channel)] = version
            self.sent["changes"] += 1
        qty = self.rng.randint(0, 60)
        msg = {
            "notificationType": "Message",
            "projectKey": "demo-project",
            "id": f"{entry}#{version}",
            "version": 1,
            "sequenceNumber": version,
            "resource": {"typeId": "inventory-entry", "id": entry},
            "resourceVersion": version,
            "resourceUserProvidedIdentifiers": {"sku": sku},
            "type": "InventoryEntryQuantitySet",
            "sku": sku,
            "supplyChannel": {"typeId": "channel", "id": channel},
            "oldQuantityOnStock": 0,
            "newQuantityOnStock": qty,
            "oldAvailableQuantity": 0,
            "newAvailableQuantity": qty,
            "createdAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        }
        if not stale:
            self.recent.append(msg)
        return orjson.dumps(msg)


@dataclass
class View:
    deltas: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=14))
    dlq: deque[str] = field(default_factory=lambda: deque(maxlen=5))
    published: int = 0
    dead: int = 0
    metrics: dict[str, float] = field(default_factory=dict)


async def _produce(s: Settings, t: Traffic, rate: float, stop: asyncio.Event) -> None:
    p = AIOKafkaProducer(**client_kwargs(s), linger_ms=5)
    await p.start()
    try:
        for key, value in t.mappings():
            await p.send(s.topic_sku_mappings, key=key, value=value)
        interval, sent, started = 0.1, 0, time.monotonic()
        while not stop.is_set():
            due = int((time.monotonic() - started) * rate)
            for _ in range(due - sent):
                await p.send(s.topic_ct_messages, key=b"demo-subscription", value=t.next_record())
            sent = due
            await asyncio.sleep(interval)
    finally:
        await p.stop()


async def _watch(s: Settings, v: View, stop: asyncio.Event) -> None:
    dlq_topic = s.dlq_topic(s.topic_ct_messages)
    c = AIOKafkaConsumer(
        s.topic_inventory_updates,
        dlq_topic,
        **client_kwargs(s),
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await c.start()
    try:
        while not stop.is_set():
            batch = await c.getmany(timeout_ms=300)
            for tp, msgs in batch.items():
                for m in msgs:
                    if m.value is None:
                        continue
                    rec = orjson.loads(m.value)
                    if tp.topic == dlq_topic:
                        v.dead += 1
                        v.dlq.appendleft(rec.get("error", "?")[:90])
                    else:
                        v.published += 1
                        v.deltas.appendleft(rec)
    finally:
        await c.stop()


def _scrape(s: Settings) -> dict[str, float]:
    url = f"http://{s.web_host}:{s.web_port}/metrics"
    out: dict[str, float] = {}
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("streams_") and " " in line:
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    out[name] = float(value)
    return out


def _render(s: Settings, t: Traffic, v: View, started: float) -> Group:
    m = v.metrics
    ct = s.topic_ct_messages

    def rec(outcome: str) -> int:
        return int(m.get(f'streams_records_total{{outcome="{outcome}",topic="{ct}"}}', 0))

    pending = int(m.get('streams_queue_length{queue="deltas"}', 0))
    lat_n = m.get("streams_inventory_delta_latency_seconds_count", 0)
    lat = (m.get("streams_inventory_delta_latency_seconds_sum", 0) / lat_n) if lat_n else 0
    head = Table.grid(padding=(0, 3))
    head.add_row(
        f"[b]sent[/b] {t.sent['changes']} changes, {t.sent['duplicates']} duplicates, "
        f"{t.sent['stale']} stale, {t.sent['bad']} bad",
        f"[b]worker[/b] applied {rec('applied')}  duplicate {rec('duplicate')}  "
        f"stale {rec('stale')}  dlq {rec('dlq')}",
    )
    head.add_row(
        f"[b]to Amazon[/b] {v.published} availability updates (pending {pending})",
        f"[b]mean change→published[/b] {lat:.2f}s (debounce window {s.debounce_window_s:g}s)"
        f"   up {time.monotonic() - started:.0f}s",
    )
    deltas = Table(title="amazon.inventory-updates (latest first)", expand=True)
    for col in ("SKU", "ASIN", "available (eaches)", "was", "published"):
        deltas.add_column(col)
    for d in v.deltas:
        deltas.add_row(
            d["sku"],
            d.get("buyerProductIdentifier", ""),
            str(d["availableQuantity"]["amount"]),
            str(d.get("previousAmount")),
            d.get("publishedAt", "")[11:23],
        )
    dlq = "\n".join(v.dlq) or "(none yet)"
    hint = (
        f"metrics: http://{s.web_host}:{s.web_port}/metrics   "
        "worker log: .run/worker.log   Ctrl-C stops"
    )
    return Group(
        Panel(head, title="Vendor Central ⇄ commercetools"),
        deltas,
        Panel(dlq, title=f"{s.dlq_topic(ct)} (bad records, with reasons)"),
        hint,
    )


async def _demo(s: Settings, duration: float, rate: float, skus: int) -> None:
    t, v, stop = Traffic(skus), View(), asyncio.Event()
    started = time.monotonic()
    tasks = [
        asyncio.create_task(_produce(s, t, rate, stop)),
        asyncio.create_task(_watch(s, v, stop)),
    ]
    try:
        with Live(_render(s, t, v, started), refresh_per_second=2, screen=False) as live:
            while not stop.is_set():
                await asyncio.sleep(0.5)
                v.metrics = await asyncio.to_thread(_scrape, s)
                live.update(_render(s, t, v, started))
                if duration and time.monotonic() - started >= duration:
                    stop.set()
                for task in tasks:
                    if task.done() and task.exception():
                        raise task.exception()  # type: ignore[misc]
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


def run_demo(s: Settings, duration: float = 0, rate: float = 50.0, skus: int = 40) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_demo(s, duration, rate, skus))
    return 0
