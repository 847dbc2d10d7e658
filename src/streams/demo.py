"""``streams demo``: generated traffic through every flow, and a live view of what flows.

Stands in for the outside world on local defaults:
* commercetools: the emulator holds the inventory entries (3 supply channels per SKU); stock
  changes are written there and delivered to ``ct.messages`` as its subscription would
  (with the duplicates, late redeliveries and broken records real subscriptions produce);
* Amazon: the SP-API sandbox serves purchase orders for the same catalogue, and more arrive
  while the demo runs;
* master data: one mapping per SKU on ``master.sku-mappings``.
The view shows availability sent to Amazon, acknowledgements, reservations landing in the
emulator, owned exceptions and dead letters, next to the worker's own metrics.
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

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from streams.adapters.kafka_admin import client_kwargs
from streams.config import Settings

CHANNELS = ("wh-east", "wh-west", "store-nyc")  # the store does not serve Amazon
AMAZON_CHANNELS = ("wh-east", "wh-west")


def _iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


@dataclass
class Entry:
    id: str
    sku: str
    channel_id: str
    version: int
    qty: int
    msg: dict[str, Any] | None = None  # the last message delivered for it


@dataclass
class World:
    """The emulated commercetools side: channels, entries, and the subscription's output."""

    catalogue: list[Any]
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    channels: dict[str, str] = field(default_factory=dict)  # key -> id
    entries: dict[str, Entry] = field(default_factory=dict)  # entry id -> entry
    sent: dict[str, int] = field(
        default_factory=lambda: {"changes": 0, "duplicates": 0, "stale": 0, "bad": 0, "pos": 0}
    )

    def message(self, e: Entry, old: int, created: bool = False) -> dict[str, Any]:
        base: dict[str, Any] = {
            "notificationType": "Message", "projectKey": "demo-project",
            "id": f"{e.id}#{e.version}", "version": 1, "sequenceNumber": e.version,
            "resource": {"typeId": "inventory-entry", "id": e.id},
            "resourceVersion": e.version, "resourceUserProvidedIdentifiers": {"sku": e.sku},
            "createdAt": _iso_now(), "lastModifiedAt": _iso_now(),
        }  # fmt: skip
        if created:
            base["type"] = "InventoryEntryCreated"
            base["inventoryEntry"] = {
                "id": e.id, "version": e.version, "sku": e.sku, "quantityOnStock": e.qty,
                "availableQuantity": e.qty,
                "supplyChannel": {"typeId": "channel", "id": e.channel_id},
            }  # fmt: skip
        else:
            base.update(
                type="InventoryEntryQuantitySet", sku=e.sku,
                supplyChannel={"typeId": "channel", "id": e.channel_id},
                oldQuantityOnStock=old, newQuantityOnStock=e.qty,
                oldAvailableQuantity=old, newAvailableQuantity=e.qty,
            )  # fmt: skip
        e.msg = base
        return base


async def _seed(s: Settings, ct: Any, world: World, producer: AIOKafkaProducer) -> None:
    for key in CHANNELS:
        ch = await ct.channel_by_key(key) or await ct.create_channel(
            {"key": key, "roles": ["InventorySupply"], "name": {"en": key}}
        )
        world.channels[key] = ch["id"]
    amazon_ids = [world.channels[k] for k in AMAZON_CHANNELS]
    existing = {(e["sku"], e["supplyChannel"]["id"]): e
                for e in await _all_entries(ct) if e.get("supplyChannel")}  # fmt: skip
    for item in world.catalogue:
        mapping = {"sku": item.sku, "asin": item.asin,
                   "vendorProductIdentifier": item.vendorProductIdentifier,
                   "unitsPerCase": item.unitsPerCase, "amazonChannels": amazon_ids,
                   "safetyBuffer": 2}  # fmt: skip
        await producer.send(
            s.topic_sku_mappings, key=item.sku.encode(), value=orjson.dumps(mapping)
        )
        for key in CHANNELS:
            cid = world.channels[key]
            raw = existing.get((item.sku, cid))
            if raw is None:
                qty = world.rng.randint(20, 400)
                draft = {"sku": item.sku, "quantityOnStock": qty,
                         "supplyChannel": {"typeId": "channel", "id": cid}}  # fmt: skip
                raw = await ct.create_inventory_entry(draft)
            e = Entry(raw["id"], item.sku, cid, raw["version"], raw["quantityOnStock"])
            world.entries[e.id] = e
            msg = world.message(e, 0, created=True)
            await producer.send(
                s.topic_ct_messages, key=b"demo-subscription", value=orjson.dumps(msg)
            )


async def _all_entries(ct: Any) -> list[dict[str, Any]]:
    return [e async for e in ct.query_inventory()]


async def _stock_changes(
    s: Settings, ct: Any, world: World, producer: AIOKafkaProducer, rate: float, stop: asyncio.Event
) -> None:
    interval = 1.0 / max(rate, 0.1)
    while not stop.is_set():
        await asyncio.sleep(interval)
        roll = world.rng.random()
        if roll < 0.01:
            world.sent["bad"] += 1
            await producer.send(s.topic_ct_messages, key=b"demo-subscription",
                                value=b'{"notificationType": "Message", "truncated')  # fmt: skip
            continue
        e = world.rng.choice(list(world.entries.values()))
        if roll < 0.04 and e.msg is not None:
            world.sent["duplicates"] += 1  # the subscription delivers a message twice
            await producer.send(s.topic_ct_messages, key=b"demo-subscription",
                                value=orjson.dumps(e.msg))  # fmt: skip
            continue
        fresh = await ct.get_inventory_entry(e.id)  # the worker's reservations change it too
        if fresh is None:
            continue
        old = fresh["quantityOnStock"]
        new = max(0, old + world.rng.choice((-5, -3, -2, -1, 1, 4, 12, 24)))
        updated = await ct.update_inventory(
            e.id, fresh["version"], [{"action": "changeQuantity", "quantity": new}]
        )
        e.version, e.qty = updated["version"], updated["quantityOnStock"]
        msg = world.message(e, old)
        world.sent["changes"] += 1
        await producer.send(s.topic_ct_messages, key=b"demo-subscription", value=orjson.dumps(msg))


async def _purchase_orders(s: Settings, world: World, every: float, stop: asyncio.Event) -> None:
    """New Amazon POs for the demo catalogue arrive at the sandbox now and then."""
    from streams.sandbox.amazon import SandboxControl

    seed = 1000
    async with aiohttp.ClientSession() as http:
        control = SandboxControl(s.spapi_endpoint, http)
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)
            if stop.is_set():
                break
            seed += 1
            catalogue = [tuple(c) for c in world.catalogue]
            with contextlib.suppress(aiohttp.ClientError, RuntimeError):
                added = await control.add_orders(count=1, seed=seed, catalogue=catalogue)
                world.sent["pos"] += len(added)


def dispatch_for(ack: dict[str, Any], world: World, n: int, *, bad_sscc: bool) -> dict[str, Any]:
    """A WMS dispatch shipping everything ``ack`` accepted, one carton per line."""
    from streams.domain.gs1 import with_check_digit

    by_asin = {c.asin: c.sku for c in world.catalogue}
    cartons: list[dict[str, Any]] = []
    for i, item in enumerate(ack.get("items", [])):
        accepted = [
            e for e in item["itemAcknowledgements"] if e["acknowledgementCode"] == "Accepted"
        ]
        sku = by_asin.get(item.get("amazonProductIdentifier", ""))
        if not accepted or sku is None:
            continue
        q = accepted[0]["acknowledgedQuantity"]
        eaches = q["amount"] * (q.get("unitSize") or 1 if q["unitOfMeasure"] == "Cases" else 1)
        sscc = with_check_digit(f"0061414{n:06d}{i:04d}")
        if bad_sscc and not cartons:
            sscc = sscc[:-1] + str((int(sscc[-1]) + 1) % 10)  # a mistyped check digit
        cartons.append({"sscc": sscc, "trackingNumber": f"1Z999AA1{n:06d}{i:04d}",
                        "items": [{"sku": sku, "quantityEaches": eaches}]})  # fmt: skip
    return {
        "dispatchId": f"DEMO-DSP-{n:06d}", "shipmentId": f"DEMOSHIP{n:06d}",
        "purchaseOrderNumber": ack["purchaseOrderNumber"], "shipFromWarehouse": "wh-east",
        "shippedDate": _iso_now(), "shipmentType": "SmallParcel", "carrierScac": "UPSN",
        "trackingNumbers": [c["trackingNumber"] for c in cartons], "cartons": cartons,
    }  # fmt: skip


async def _dispatches(
    s: Settings, world: World, v: View, producer: AIOKafkaProducer, stop: asyncio.Event
) -> None:
    """The warehouse ships acknowledged POs; every fifth dispatch has a mistyped SSCC."""
    shipped: set[str] = set()
    n = 0
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=4.0)
        for ack in list(v.acks):
            po = ack["purchaseOrderNumber"]
            if po in shipped:
                continue
            shipped.add(po)
            n += 1
            d = dispatch_for(ack, world, n, bad_sscc=n % 5 == 1)
            if d["cartons"]:
                world.sent["dispatches"] = world.sent.get("dispatches", 0) + 1
                await producer.send(s.topic_dispatches, key=po.encode(), value=orjson.dumps(d))
            break  # one dispatch per round keeps the view readable


@dataclass
class View:
    deltas: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=8))
    acks: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=6))
    commands: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=6))
    exceptions: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=5))
    asns: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=4))
    dlq: deque[str] = field(default_factory=lambda: deque(maxlen=3))
    counts: dict[str, int] = field(default_factory=dict)
    landed: dict[str, int] = field(default_factory=dict)  # entry id -> quantity now
    metrics: dict[str, float] = field(default_factory=dict)


async def _watch(s: Settings, v: View, stop: asyncio.Event) -> None:
    dlq = s.dlq_topic(s.topic_ct_messages)
    topics = {
        s.topic_inventory_updates: v.deltas, s.topic_po_acknowledgements: v.acks,
        s.topic_inventory_commands: v.commands, s.topic_exceptions: v.exceptions,
        s.topic_shipment_confirmations: v.asns,
    }  # fmt: skip
    c = AIOKafkaConsumer(*topics, dlq, **client_kwargs(s), auto_offset_reset="latest",
                         enable_auto_commit=False)  # fmt: skip
    await c.start()
    try:
        while not stop.is_set():
            for tp, msgs in (await c.getmany(timeout_ms=300)).items():
                for m in msgs:
                    if m.value is None:
                        continue
                    rec = orjson.loads(m.value)
                    v.counts[tp.topic] = v.counts.get(tp.topic, 0) + 1
                    if tp.topic == dlq:
                        v.dlq.appendleft(str(rec.get("error", "?"))[:100])
                    else:
                        topics[tp.topic].appendleft(rec)
    finally:
        await c.stop()


async def _landed(ct: Any, world: World, v: View, stop: asyncio.Event) -> None:
    """Read back the entries reservations touched: proof they landed in commercetools."""
    while not stop.is_set():
        await asyncio.sleep(1.0)
        for cmd in list(v.commands):
            key = (cmd["sku"], cmd["supplyChannel"])
            for e in world.entries.values():
                if (e.sku, e.channel_id) == key:
                    with contextlib.suppress(Exception):
                        fresh = await ct.get_inventory_entry(e.id)
                        if fresh is not None:
                            v.landed[cmd["commandId"]] = fresh["quantityOnStock"]


def _scrape(s: Settings) -> dict[str, float]:
    url = f"http://{s.web_host}:{s.web_port}/metrics"
    out: dict[str, float] = {}
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(("streams_", "kafka_")) and " " in line:
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    out[name] = float(value)
    return out


def _sum(m: dict[str, float], prefix: str) -> int:
    return int(sum(v for k, v in m.items() if k.startswith(prefix)))


def _render(s: Settings, world: World, v: View, started: float) -> Group:
    m = v.metrics
    ct = s.topic_ct_messages
    names = {c.sku: c.unitsPerCase for c in world.catalogue}
    channel_names = {cid: key for key, cid in world.channels.items()}

    def rec(outcome: str) -> int:
        return int(m.get(f'streams_records_total{{outcome="{outcome}",topic="{ct}"}}', 0))

    lat_n = m.get("streams_inventory_delta_latency_seconds_count", 0)
    lat = m.get("streams_inventory_delta_latency_seconds_sum", 0) / lat_n if lat_n else 0.0
    head = Table.grid(padding=(0, 2))
    sent = world.sent
    head.add_row(
        f"[b]commercetools →[/b] {sent['changes']} stock changes, {sent['duplicates']} duplicate "
        f"and {sent['bad']} broken deliveries",
        f"[b]worker[/b] applied {rec('applied')}, dropped {rec('duplicate')} duplicates, "
        f"{rec('stale')} stale, dead-lettered {rec('dlq')}",
    )
    acked = _sum(m, 'streams_acknowledgements_total{outcome="submitted"')
    head.add_row(
        f"[b]→ Amazon[/b] {v.counts.get(s.topic_inventory_updates, 0)} availability updates, "
        f"mean change→published {lat:.1f}s (window {s.debounce_window_s:g}s)",
        f"[b]Amazon POs[/b] {_sum(m, 'streams_po_polled_total')} pulled, "
        f"{acked} acknowledged, "
        f"{v.counts.get(s.topic_inventory_commands, 0)} reservations "
        f"({sent['pos']} new POs sent by the demo)",
    )
    asns = ", ".join(
        f"{a.get('shipmentIdentifier')} ({a.get('shipmentConfirmationType')})" for a in v.asns
    )
    head.add_row(
        f"[b]ASNs[/b] {v.counts.get(s.topic_shipment_confirmations, 0)} sent of "
        f"{sent.get('dispatches', 0)} dispatches: {asns or '-'}",
        f"[b]exceptions[/b] {v.counts.get(s.topic_exceptions, 0)} raised · "
        f"up {time.monotonic() - started:.0f}s",
    )

    deltas = Table(title="availability sent to Amazon (eaches)", expand=True, title_justify="left")
    for col in ("SKU", "ASIN", "now", "was", "kind"):
        deltas.add_column(col)
    for d in v.deltas:
        deltas.add_row(d["sku"], d.get("buyerProductIdentifier", ""),
                       str(d["availableQuantity"]["amount"]), str(d.get("previousAmount")),
                       d.get("kind", ""))  # fmt: skip

    acks = Table(title="acknowledgements to Amazon", expand=True, title_justify="left")
    for col in ("PO", "lines", "accepted", "backordered", "rejected"):
        acks.add_column(col)
    for a in v.acks:
        tot = {"Accepted": 0, "Backordered": 0, "Rejected": 0}
        for it in a.get("items", []):
            for e in it.get("itemAcknowledgements", []):
                q = e["acknowledgedQuantity"]
                size = (q.get("unitSize") or 1) if q.get("unitOfMeasure") == "Cases" else 1
                n = q["amount"] * size
                tot[e["acknowledgementCode"]] = tot.get(e["acknowledgementCode"], 0) + n
        acks.add_row(
            a["purchaseOrderNumber"],
            str(len(a.get("items", []))),
            f"{tot['Accepted']} ea",
            f"{tot['Backordered']} ea",
            f"{tot['Rejected']} ea",
        )

    res = Table(title="reservations → commercetools", expand=True, title_justify="left")
    for col in ("PO", "SKU", "channel", "eaches", "stock in ct now"):
        res.add_column(col)
    for c in v.commands:
        res.add_row(c["purchaseOrderNumber"], c["sku"],
                    channel_names.get(c["supplyChannel"], c["supplyChannel"][:8]),
                    ("-" if c["action"] == "reserve" else "+") + str(c["quantity"]),
                    str(v.landed.get(c["commandId"], "…")))  # fmt: skip

    exc = Table(title="owned exceptions (ops.exceptions)", expand=True, title_justify="left")
    for col in ("kind", "owner", "refs", "root cause"):
        exc.add_column(col)
    for e in v.exceptions:
        refs = " ".join(f"{k}={x}" for k, x in e.get("refs", {}).items() if x)
        exc.add_row(e["kind"], e["owner"], refs, str(e.get("rootCause", ""))[:70])

    dlq = "\n".join(v.dlq) or "(none yet)"
    hint = (f"status http://{s.web_host}:{s.web_port}/status · "
            f"metrics http://{s.web_host}:{s.web_port}/metrics · logs .run/worker.log · "
            f"SP-API sandbox {s.spapi_endpoint}/_sandbox/received · Ctrl-C stops · "
            f"{len(names)} SKUs")  # fmt: skip
    grid = Table.grid(expand=True)
    grid.add_column(ratio=1)
    grid.add_column(ratio=1)
    grid.add_row(deltas, acks)
    grid.add_row(res, exc)
    return Group(
        Panel(head, title="Amazon Vendor Central ⇄ commercetools, live"),
        grid,
        Panel(dlq, title=f"{s.dlq_topic(ct)}: bad records, each with its reason"),
        hint,
    )


async def _seed_only(s: Settings, skus: int) -> None:
    from streams.adapters.commercetools import CommercetoolsClient
    from streams.sandbox.amazon.generator import default_catalogue

    producer = AIOKafkaProducer(**client_kwargs(s), linger_ms=5)
    await producer.start()
    try:
        async with CommercetoolsClient(s) as ct:
            await _seed(s, ct, World(default_catalogue(skus)), producer)
    finally:
        await producer.stop()


async def _demo(s: Settings, duration: float, rate: float, skus: int) -> None:
    from streams.adapters.commercetools import CommercetoolsClient
    from streams.sandbox.amazon.generator import default_catalogue

    world, v, stop = World(default_catalogue(skus)), View(), asyncio.Event()
    started = time.monotonic()
    producer = AIOKafkaProducer(**client_kwargs(s), linger_ms=5)
    await producer.start()
    tasks: list[asyncio.Task[Any]] = []
    async with CommercetoolsClient(s) as ct:
        try:
            await _seed(s, ct, world, producer)
            tasks = [
                asyncio.create_task(_stock_changes(s, ct, world, producer, rate, stop)),
                asyncio.create_task(_purchase_orders(s, world, 20.0, stop)),
                asyncio.create_task(_watch(s, v, stop)),
                asyncio.create_task(_landed(ct, world, v, stop)),
                asyncio.create_task(_dispatches(s, world, v, producer, stop)),
            ]
            with Live(_render(s, world, v, started), refresh_per_second=2) as live:
                while not stop.is_set():
                    await asyncio.sleep(0.5)
                    v.metrics = await asyncio.to_thread(_scrape, s)
                    live.update(_render(s, world, v, started))
                    if duration and time.monotonic() - started >= duration:
                        stop.set()
                    for task in tasks:
                        if task.done() and task.exception():
                            raise task.exception()  # type: ignore[misc]
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await producer.stop()


def run_demo(
    s: Settings, duration: float = 0, rate: float = 20.0, skus: int = 40, seed_only: bool = False
) -> int:
    """Seed master data and stock (``seed_only``), or seed and run the traffic and view."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_seed_only(s, skus) if seed_only else _demo(s, duration, rate, skus))
    return 0
