"""The demo's stand-ins for the outside world, and the traffic they generate.

* commercetools: the emulator holds the inventory entries (3 supply channels per SKU); stock
  changes are written there and delivered to ``ct.messages`` as its subscription would
  (with the duplicates, late redeliveries and broken records real subscriptions produce);
* Amazon: the SP-API sandbox serves purchase orders for the same catalogue, and more arrive
  while the demo runs;
* the storefront: shoppers' carts become orders on the emulator (inventory mode
  ReserveOnOrder), which deducts the stock seconds later with no inventory message and
  delivers the order messages to ``ct.messages`` through a Kafka subscription; some orders
  are cancelled, and the emulator gives their stock back;
* the warehouse: dispatches for acknowledged POs on ``wms.dispatches``;
* master data: one mapping per SKU on ``master.sku-mappings``.

Each source of traffic is one coroutine in ``GENERATORS``, started with the shared
``Traffic`` context once the worker is ready; a new kind of traffic is one more entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

from streams.adapters.commercetools import CommercetoolsError
from streams.config import Settings


class SeesAcks(Protocol):
    """What the generators read of the view: the acknowledgements it has seen."""

    @property
    def acks(self) -> Iterable[dict[str, Any]]: ...


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
    # per SKU, the Kafka times (s) of the stock changes delivered: the latency reference
    changes: dict[str, list[float]] = field(default_factory=dict)

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


async def seed(s: Settings, ct: Any, world: World, producer: AIOKafkaProducer) -> None:
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


@dataclass
class Traffic:
    """What every generator shares: settings, the commercetools client, the emulated world,
    what the view has seen (acknowledgements for dispatches), the producer, the stop flag."""

    s: Settings
    ct: Any
    world: World
    view: SeesAcks
    producer: AIOKafkaProducer
    stop: asyncio.Event
    rate: float = 20.0  # stock changes per second


async def stock_changes(t: Traffic) -> None:
    """Stock changes in commercetools, delivered to ``ct.messages`` as its subscription would:
    with duplicates and, now and then, a broken record."""
    s, world, producer = t.s, t.world, t.producer
    interval = 1.0 / max(t.rate, 0.1)
    while not t.stop.is_set():
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
        fresh = await t.ct.get_inventory_entry(e.id)  # the worker's reservations change it too
        if fresh is None:
            continue
        old = fresh["quantityOnStock"]
        new = max(0, old + world.rng.choice((-5, -3, -2, -1, 1, 4, 12, 24)))
        try:
            updated = await t.ct.update_inventory(
                e.id, fresh["version"], [{"action": "changeQuantity", "quantity": new}]
            )
        except CommercetoolsError as exc:
            if exc.status != 409:
                raise
            continue  # a reservation of the worker's came in between: another change next
        e.version, e.qty = updated["version"], updated["quantityOnStock"]
        msg = world.message(e, old)
        world.sent["changes"] += 1
        # the record's time is the worker's masterChangedAt: latency is measured from it
        ts_ms = int(time.time() * 1000)
        world.changes.setdefault(e.sku, []).append(ts_ms / 1000.0)
        await producer.send(s.topic_ct_messages, key=b"demo-subscription",
                            value=orjson.dumps(msg), timestamp_ms=ts_ms)  # fmt: skip


async def purchase_orders(t: Traffic, every: float = 20.0) -> None:
    """New Amazon POs for the demo catalogue arrive at the sandbox now and then."""
    from streams.sandbox.amazon import SandboxControl

    seed = 1000
    async with aiohttp.ClientSession() as http:
        control = SandboxControl(t.s.spapi_endpoint, http)
        while not t.stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(t.stop.wait(), timeout=every)
            if t.stop.is_set():
                break
            seed += 1
            catalogue = [tuple(c) for c in t.world.catalogue]
            with contextlib.suppress(aiohttp.ClientError, RuntimeError):
                added = await control.add_orders(count=1, seed=seed, catalogue=catalogue)
                t.world.sent["pos"] += len(added)
                if t.s.df_enabled:  # a Direct Fulfillment customer order too (DF poller)
                    await control.add_df_orders(count=1, seed=seed, catalogue=catalogue)


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


async def dispatches(t: Traffic) -> None:
    """The warehouse ships acknowledged POs; every fifth dispatch has a mistyped SSCC."""
    shipped: set[str] = set()
    n = 0
    while not t.stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(t.stop.wait(), timeout=4.0)
        for ack in list(t.view.acks):
            po = ack["purchaseOrderNumber"]
            if po in shipped:
                continue
            shipped.add(po)
            n += 1
            d = dispatch_for(ack, t.world, n, bad_sscc=n % 5 == 1)
            if d["cartons"]:
                t.world.sent["dispatches"] = t.world.sent.get("dispatches", 0) + 1
                await t.producer.send(t.s.topic_dispatches, key=po.encode(), value=orjson.dumps(d))
            break  # one dispatch per round keeps the view readable


async def storefront_orders(t: Traffic, every: float = 1.0, cancel_every: int = 5) -> None:
    """Shoppers buy on the storefront: an order of 1-3 units of one or two SKUs about every
    second, from a warehouse that serves Amazon or from the store; every fifth is cancelled
    a few seconds later. The emulator's subscription delivers the order messages."""
    from streams.sandbox.ctmock import storefront as sf

    s, world = t.s, t.world
    secret = s.ct_client_secret.get_secret_value()
    async with aiohttp.ClientSession() as http:
        token = await sf.fetch_token(http, s.ct_auth_url, s.ct_client_id, secret)
        base, project = s.ct_api_url, s.ct_project_key
        await sf.create_kafka_subscription(
            http, base, token, project, s.kafka_bootstrap, s.topic_ct_messages,
            "demo-subscription", messages=({"resourceTypeId": "order", "types": []},),
        )  # fmt: skip
        skus = [c.sku for c in world.catalogue]
        await sf.ensure_products(http, base, token, project, skus)
        to_cancel: list[tuple[float, dict[str, Any]]] = []
        n = 0
        while not t.stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(t.stop.wait(), timeout=every)
            now = time.monotonic()
            for due, order in [c for c in to_cancel if c[0] <= now]:
                to_cancel.remove((due, order))
                with contextlib.suppress(sf.StorefrontError):
                    await sf.cancel_order(http, base, token, project, order)
                    world.sent["orders_cancelled"] = world.sent.get("orders_cancelled", 0) + 1
            if t.stop.is_set():
                break
            channel = world.channels[world.rng.choice(CHANNELS)]
            lines = {
                sku: world.rng.randint(1, 3)
                for sku in world.rng.sample(skus, 2)[: world.rng.randint(1, 2)]
            }
            try:
                order = await sf.place_order(
                    http, base, token, project, lines, "ReserveOnOrder", channel, ensure=False
                )
            except sf.StorefrontError as exc:
                if "OutOfStock" not in exc.codes:
                    raise
                world.sent["orders_out_of_stock"] = world.sent.get("orders_out_of_stock", 0) + 1
                continue
            n += 1
            world.sent["orders"] = world.sent.get("orders", 0) + 1
            world.sent["order_lines"] = world.sent.get("order_lines", 0) + len(lines)
            if n % cancel_every == 0:
                to_cancel.append((now + 5.0, order))


Generator = Callable[[Traffic], Coroutine[Any, Any, None]]
# every source of traffic the demo runs, each as one task
GENERATORS: list[Generator] = [stock_changes, storefront_orders, purchase_orders, dispatches]
