"""Storefront sales reach Amazon in seconds, end to end: commercetools order messages on
``ct.messages``, the commercetools emulator over HTTP (whose entries change with no message,
as commercetools changes them for orders), the SP-API sandbox, a real worker process on a
real broker.

The brief's scenario: a storefront order takes the last units of a SKU -> Amazon is told 0
before commercetools shows the order -> a PO for that ASIN is not accepted -> the order is
cancelled and commercetools gives the stock back -> Amazon is told again.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from streams.adapters.commercetools import CommercetoolsClient
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings
from streams.sandbox import ctmock
from streams.sandbox.amazon import SandboxControl, running_sandbox
from streams.sandbox.ctmock import storefront
from tests.support import storefront as sf
from tests.support.badinput import po_item, purchase_order
from tests.support.e2e import amounts, at_sandbox, e2e_sandbox, e2e_settings
from tests.support.kafka import produce, wait_for
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

NOW = datetime.now(UTC).replace(microsecond=0)
SETTLE_S = 3.0  # the test's commercetools consistency delay (10 s in production)
ASINS = {
    "SKU-LAST": "B00000LAST",
    "SKU-TWICE": "B0000TWICE",
    "SKU-NONE": "B00000NONE",
    "SKU-SHOP": "B00000SHOP",
    "SKU-SILENT": "B000SILENT",
}


def created(entry: dict[str, Any]) -> dict[str, Any]:
    """The InventoryEntryCreated message commercetools sends for ``entry``."""
    return {
        "notificationType": "Message",
        "projectKey": "p",
        "id": str(uuid.uuid4()),
        "version": 1,
        "sequenceNumber": 1,
        "resource": {"typeId": "inventory-entry", "id": entry["id"]},
        "resourceVersion": entry["version"],
        "type": "InventoryEntryCreated",
        "inventoryEntry": entry,
        "createdAt": entry["createdAt"],
    }


def mapping(sku: str, asin: str, channels: list[str]) -> dict[str, Any]:
    return {
        "sku": sku,
        "asin": asin,
        "vendorProductIdentifier": f"V{asin}",
        "amazonChannels": channels,
        "netCost": {"amount": "10.00", "currencyCode": "USD"},
    }


def last(records: list[Any], sku: str) -> int | None:
    got = amounts(records).get(sku)
    return got[-1] if got else None


def metric(w: WorkerProcess, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.compile(rf"^{re.escape(name)}(\{{{re.escape(want)}\}})? (\S+)$", re.M)
    m = pattern.search(w.metrics())
    return float(m.group(2)) if m else 0.0


async def eventually(cond: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await asyncio.sleep(0.3)
    return bool(cond())


async def set_quantity(ct: CommercetoolsClient, entry: dict[str, Any], qty: int) -> dict[str, Any]:
    """Change an entry with no message to ct.messages: what commercetools does for orders."""
    fresh = await ct.get_inventory_entry(entry["id"])
    assert fresh is not None
    return await ct.update_inventory(
        entry["id"], fresh["version"], [{"action": "changeQuantity", "quantity": qty}]
    )


@pytest.fixture
def sf_settings(kafka: str, ct_api: str, tmp_path: Path) -> Settings:
    project = f"sf-{uuid.uuid4().hex[:8]}"
    s = e2e_settings(
        kafka,
        tmp_path,
        ct_api_url=ct_api,
        ct_auth_url=ct_api,
        ct_project_key=project,
        ct_scopes=f"manage_project:{project}",
        ct_order_settle_delay_s=SETTLE_S,
        ct_order_reread_jitter_s=0.5,
        ct_reread_tick_s=0.2,
        ct_sweep_interval_s=2.0,
        ct_sweep_grace_s=1.0,
        ct_sweep_overlap_s=5.0,
        ct_sweep_missed_threshold=1,
        ops_watch_interval_s=1.0,
        channel_policy_enabled=False,
        sales_orders_enabled=False,
    )
    asyncio.run(create_topics(s))
    return at_sandbox(s)


async def test_storefront_orders_reach_amazon_before_commercetools_shows_them(
    sf_settings: Settings, tmp_path: Path
) -> None:
    s = sf_settings
    bs = s.kafka_bootstrap
    out = s.topic_inventory_updates
    async with CommercetoolsClient(s) as ct:
        wh = await ct.create_channel({"key": "wh-sf", "roles": ["InventorySupply"]})
        store = await ct.create_channel({"key": "store-sf", "roles": ["InventorySupply"]})

        async def entry(sku: str, qty: int, channel: dict[str, Any]) -> dict[str, Any]:
            ref = {"typeId": "channel", "id": channel["id"]}
            return await ct.create_inventory_entry(
                {"sku": sku, "quantityOnStock": qty, "supplyChannel": ref}
            )

        last_units = await entry("SKU-LAST", 5, wh)
        twice = await entry("SKU-TWICE", 10, wh)
        untracked = await entry("SKU-NONE", 10, wh)
        shop_only = await entry("SKU-SHOP", 10, wh)
        shop_entry = await entry("SKU-SHOP", 6, store)  # the storefront's own channel
        silent = await entry("SKU-SILENT", 10, wh)
        all_entries = [last_units, twice, untracked, shop_only, shop_entry, silent]
        skus = list(ASINS)
        await produce(
            bs,
            s.topic_sku_mappings,
            [(k.encode(), mapping(k, ASINS[k], [wh["id"]])) for k in skus],
        )
        await produce(bs, s.topic_ct_messages, [(b"ct", created(e)) for e in all_entries])

        config = e2e_sandbox(s)
        async with (
            running_sandbox(config, port=s.sandbox_port) as url,
            aiohttp.ClientSession() as http,
        ):
            control = SandboxControl(url, http)
            w = WorkerProcess(s, tmp_path / "worker.log").start()
            try:
                w.wait_ready()
                start = {"SKU-LAST": 5, "SKU-TWICE": 10, "SKU-NONE": 10, "SKU-SHOP": 10}
                first = await wait_for(
                    bs, out, lambda r: all(last(r, k) == v for k, v in start.items())
                )
                assert all(last(first, k) == v for k, v in start.items()), w.tail()

                # --- storefront orders; commercetools shows them 1.5 s later, silently
                line = sf.line_item("SKU-LAST", 5, wh["id"])
                o_last = sf.order([line], mode="ReserveOnOrder")
                o_twice = sf.order([sf.line_item("SKU-TWICE", 3, wh["id"])], mode="TrackOnly")
                twice_msg = sf.order_created(o_twice)
                o_none = sf.order([sf.line_item("SKU-NONE", 4, wh["id"])], mode=None)
                o_shop = sf.order([sf.line_item("SKU-SHOP", 2, store["id"])], mode="TrackOnly")
                o_unmapped = sf.order([sf.line_item("SKU-UNMAPPED", 1, wh["id"])])
                sent_at = time.time()
                await produce(
                    bs,
                    s.topic_ct_messages,
                    [
                        (b"ct", sf.order_created(o_last)),
                        (b"ct", twice_msg),
                        (b"ct", twice_msg),  # redelivered
                        (b"ct", sf.cloudevent(twice_msg)),  # and again as a CloudEvent
                        (b"ct", sf.order_created(o_none)),  # inventory mode None: no hold
                        (b"ct", sf.order_created(o_shop)),  # a channel Amazon is not offered
                        (b"ct", sf.order_created(o_unmapped)),  # no mapping: never to Amazon
                        # out of order: a cancellation before its order, which commercetools
                        # no longer has (read, gone, ignored)
                        (b"ct", sf.state_changed(str(uuid.uuid4()), "Cancelled")),
                    ],
                )
                # Amazon hears of the sale from the hold alone: commercetools shows nothing yet
                told = await wait_for(
                    bs, out, lambda r: last(r, "SKU-LAST") == 0 and last(r, "SKU-TWICE") == 7,
                    timeout=SETTLE_S - 0.5,
                )  # fmt: skip
                heard_after = time.time() - sent_at
                assert last(told, "SKU-LAST") == 0, w.tail()
                assert last(told, "SKU-TWICE") == 7  # held once, not three times
                assert amounts(told)["SKU-NONE"] == [10]
                assert amounts(told)["SKU-SHOP"] == [10]
                assert heard_after < SETTLE_S, heard_after
                # now commercetools shows the orders (with no message, as it does)
                await set_quantity(ct, last_units, 0)
                await set_quantity(ct, twice, 7)
                await set_quantity(ct, shop_entry, 4)

                # the re-read after the settle delay ends both holds as settled
                settled = await eventually(
                    lambda: metric(w, "streams_order_holds_total", outcome="settled") >= 3
                )
                assert settled, w.tail()
                assert metric(w, "streams_order_holds_total", outcome="placed") == 4
                assert metric(w, "streams_order_holds_total", outcome="duplicate") == 2
                # the unmapped SKU has no entry to show the order: its hold expires on the
                # re-read; SKU-NONE's order (mode None) held nothing
                expired = await eventually(
                    lambda: metric(w, "streams_order_holds_total", outcome="expired") >= 1
                )
                assert expired and metric(w, "streams_order_holds_total", outcome="settled") == 3
                assert metric(w, "streams_order_holds_total", outcome="expired") == 1
                await asyncio.sleep(1.0)
                after = await wait_for(bs, out, lambda r: True, timeout=2)
                assert last(after, "SKU-LAST") == 0 and last(after, "SKU-TWICE") == 7

                # --- a PO for the sold-out ASIN: not accepted
                item = po_item("1", ASINS["SKU-LAST"], 2, "Eaches")
                await control.add_orders(
                    [purchase_order("SFPO0001", [item], NOW, date=NOW - timedelta(minutes=5))]
                )
                acks = await wait_for(
                    bs, s.topic_po_acknowledgements, lambda r: any(x.key == b"SFPO0001" for x in r)
                )
                ack = next(x.json() for x in acks if x.key == b"SFPO0001")
                codes = [
                    e["acknowledgementCode"]
                    for it in ack["items"]
                    for e in it["itemAcknowledgements"]
                ]
                assert "Accepted" not in codes and codes, ack

                # --- cancelled: commercetools gives the stock back (no inventory message)
                await produce(
                    bs, s.topic_ct_messages, [(b"ct", sf.state_changed(o_last["id"], "Cancelled"))]
                )
                await set_quantity(ct, last_units, 5)
                back = await wait_for(bs, out, lambda r: last(r, "SKU-LAST") == 5, timeout=30)
                assert last(back, "SKU-LAST") == 5, w.tail()

                # --- a change no message announced at all is caught by the sweep
                await set_quantity(ct, silent, 4)
                swept = await wait_for(bs, out, lambda r: last(r, "SKU-SILENT") == 4, timeout=30)
                assert last(swept, "SKU-SILENT") == 4, w.tail()
                assert metric(w, "streams_ct_sweep_findings_total", kind="missed") >= 1
                exc = await wait_for(
                    bs,
                    s.topic_exceptions,
                    lambda r: any(
                        (x.json() or {}).get("kind") == "ct-notifications-missed" for x in r
                    ),
                    timeout=20,
                )
                assert any((x.json() or {}).get("kind") == "ct-notifications-missed" for x in exc)
                assert "SKU-UNMAPPED" not in amounts(await wait_for(bs, out, lambda r: True, 2))
                dlq = await wait_for(bs, s.dlq_topic(s.topic_ct_messages), lambda r: True, 2)
                assert dlq == [], [r.json() for r in dlq]
            finally:
                w.stop()


async def test_a_worker_killed_between_hold_and_settlement_holds_once_and_settles(
    sf_settings: Settings, tmp_path: Path
) -> None:
    s = sf_settings.model_copy(update={"ct_order_settle_delay_s": 8.0})
    bs = s.kafka_bootstrap
    out = s.topic_inventory_updates
    async with CommercetoolsClient(s) as ct:
        wh = await ct.create_channel({"key": "wh-kill", "roles": ["InventorySupply"]})
        ref = {"typeId": "channel", "id": wh["id"]}
        e = await ct.create_inventory_entry(
            {"sku": "SKU-KILL", "quantityOnStock": 5, "supplyChannel": ref}
        )
        await produce(
            bs, s.topic_sku_mappings, [(b"SKU-KILL", mapping("SKU-KILL", "B0000KILL1", [wh["id"]]))]
        )
        await produce(bs, s.topic_ct_messages, [(b"ct", created(e))])
        w = WorkerProcess(s, tmp_path / "worker-1.log").start()
        try:
            w.wait_ready()
            await wait_for(bs, out, lambda r: last(r, "SKU-KILL") == 5)
            o = sf.order([sf.line_item("SKU-KILL", 2, wh["id"])], mode="ReserveOnOrder")
            await produce(bs, s.topic_ct_messages, [(b"ct", sf.order_created(o))])
            held = await wait_for(bs, out, lambda r: last(r, "SKU-KILL") == 3, timeout=6)
            assert last(held, "SKU-KILL") == 3, w.tail()
        finally:
            w.kill()  # SIGKILL: the hold is in RocksDB and its changelog, not settled
        # commercetools shows the order while no worker runs; the message is redelivered
        await set_quantity(ct, e, 3)
        await produce(bs, s.topic_ct_messages, [(b"ct", sf.order_created(o))])
        w2 = WorkerProcess(s, tmp_path / "worker-2.log").start()
        try:
            w2.wait_ready()
            settled = await eventually(
                lambda: metric(w2, "streams_order_holds_total", outcome="settled") >= 1, 40
            )
            assert settled, w2.tail()
            assert metric(w2, "streams_order_holds_total", outcome="placed") == 0
            assert metric(w2, "streams_order_holds_total", outcome="expired") == 0
            records = await wait_for(bs, out, lambda r: True, timeout=2)
            told = amounts(records)["SKU-KILL"]
            # never offered the sold units again, never less than the truth
            assert told[0] == 5 and set(told[1:]) == {3}, told
        finally:
            w2.stop()


@contextlib.contextmanager
def own_emulator(env: dict[str, str]) -> Iterator[str]:
    """An emulator of this test's own, with emulator settings (``CT_MOCK_*``) of its own."""
    port = free_port()
    settings = Settings(ct_mock_port=port)
    assert ctmock.up(settings, port=port, env=env) == 0
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        ctmock.down(settings, port=port)


async def test_orders_placed_on_the_emulator_reach_amazon_through_its_subscription(
    sf_settings: Settings, tmp_path: Path
) -> None:
    """Carts become orders on the emulator, which deducts stock 2 s later with no inventory
    message and delivers its messages to ct.messages as a Kafka subscription does."""
    with own_emulator({"CT_MOCK_ORDER_STOCK_DELAY_MS": "2000"}) as url:
        s = sf_settings.model_copy(update={"ct_api_url": url, "ct_auth_url": url})
        bs = s.kafka_bootstrap
        out = s.topic_inventory_updates
        project, secret = s.ct_project_key, s.ct_client_secret.get_secret_value()
        async with aiohttp.ClientSession() as http, CommercetoolsClient(s) as ct:
            token = await storefront.fetch_token(http, url, s.ct_client_id, secret)
            await storefront.create_kafka_subscription(
                http, url, token, project, bs, s.topic_ct_messages, "ct"
            )
            wh = await ct.create_channel({"key": "wh-emu", "roles": ["InventorySupply"]})
            ref = {"typeId": "channel", "id": wh["id"]}
            await ct.create_inventory_entry(
                {"sku": "SKU-EMU", "quantityOnStock": 5, "supplyChannel": ref}
            )
            await storefront.ensure_products(http, url, token, project, ["SKU-EMU"])
            await produce(
                bs,
                s.topic_sku_mappings,
                [(b"SKU-EMU", mapping("SKU-EMU", "B0000EMU01", [wh["id"]]))],
            )
            w = WorkerProcess(s, tmp_path / "worker.log").start()
            try:
                w.wait_ready()
                first = await wait_for(bs, out, lambda r: last(r, "SKU-EMU") == 5)
                assert last(first, "SKU-EMU") == 5, w.tail()
                placed_at = time.time()
                order = await storefront.place_order(
                    http, url, token, project, {"SKU-EMU": 5}, "ReserveOnOrder", wh["id"]
                )
                # Amazon is told 0 from the order message, before the emulator shows the order
                told = await wait_for(bs, out, lambda r: last(r, "SKU-EMU") == 0, timeout=SETTLE_S)
                assert last(told, "SKU-EMU") == 0, w.tail()
                assert time.time() - placed_at < SETTLE_S
                entries = await ct.inventory_by_sku("SKU-EMU")
                assert entries[0]["availableQuantity"] == 5  # commercetools does not show it yet
                # the storefront cannot sell more either (ReserveOnOrder)
                with pytest.raises(storefront.StorefrontError) as short:
                    await storefront.place_order(
                        http, url, token, project, {"SKU-EMU": 1}, "ReserveOnOrder", wh["id"]
                    )
                assert "OutOfStock" in short.value.codes
                settled = await eventually(
                    lambda: metric(w, "streams_order_holds_total", outcome="settled") >= 1
                )
                assert settled, w.tail()
                # cancelled: the emulator gives the stock back; Amazon hears of it
                await storefront.cancel_order(http, url, token, project, order)
                back = await wait_for(bs, out, lambda r: last(r, "SKU-EMU") == 5, timeout=30)
                assert last(back, "SKU-EMU") == 5, w.tail()
                assert metric(w, "streams_order_holds_total", outcome="expired") == 0
            finally:
                w.stop()


async def test_an_order_message_without_its_payload_is_resolved_by_reading_the_order(
    sf_settings: Settings, tmp_path: Path
) -> None:
    s = sf_settings
    bs = s.kafka_bootstrap
    out = s.topic_inventory_updates
    url, project = s.ct_api_url, s.ct_project_key
    async with aiohttp.ClientSession() as http, CommercetoolsClient(s) as ct:
        token = await storefront.fetch_token(
            http, s.ct_auth_url, s.ct_client_id, s.ct_client_secret.get_secret_value()
        )
        wh = await ct.create_channel({"key": "wh-pl", "roles": ["InventorySupply"]})
        ref = {"typeId": "channel", "id": wh["id"]}
        e = await ct.create_inventory_entry(
            {"sku": "SKU-PL", "quantityOnStock": 9, "supplyChannel": ref}
        )
        await storefront.ensure_products(http, url, token, project, ["SKU-PL"])
        await produce(
            bs, s.topic_sku_mappings, [(b"SKU-PL", mapping("SKU-PL", "B00000PL01", [wh["id"]]))]
        )
        await produce(bs, s.topic_ct_messages, [(b"ct", created(e))])
        w = WorkerProcess(s, tmp_path / "worker.log").start()
        try:
            w.wait_ready()
            await wait_for(bs, out, lambda r: last(r, "SKU-PL") == 9)
            a = await storefront.place_order(
                http, url, token, project, {"SKU-PL": 2}, "TrackOnly", wh["id"]
            )
            b = await storefront.place_order(
                http, url, token, project, {"SKU-PL": 3}, "TrackOnly", wh["id"]
            )
            too_big = {"reason": "payload too large", "payloadType": "OrderCreated"}
            change = {
                "notificationType": "ResourceCreated",
                "projectKey": project,
                "resource": {"typeId": "order", "id": b["id"]},
                "version": 1,
                "modifiedAt": b["createdAt"],
            }
            await produce(
                bs,
                s.topic_ct_messages,
                [
                    (b"ct", sf.message("OrderCreated", a["id"], payloadNotIncluded=too_big)),
                    (b"ct", change),  # a change subscription's notification for order b
                ],
            )
            told = await wait_for(bs, out, lambda r: last(r, "SKU-PL") == 4, timeout=SETTLE_S)
            assert last(told, "SKU-PL") == 4, w.tail()
            assert metric(w, "streams_order_holds_total", outcome="placed") == 2
        finally:
            w.stop()
