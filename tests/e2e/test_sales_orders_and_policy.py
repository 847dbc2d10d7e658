"""Warehouse policy and sales orders end to end: channels carry the Amazon policy as custom
fields in the commercetools emulator (over HTTP); stock on three channels; POs from the SP-API
sandbox are allocated by that policy (priority, safety stock), the availability published
to Amazon follows it, a policy changed in commercetools changes what comes next, and each
acknowledged PO becomes exactly one commercetools order; a real worker on a real broker."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from streams.adapters.commercetools import CommercetoolsClient
from streams.adapters.kafka_admin import create_topics
from streams.agents.channel_policy import ensure_type
from streams.agents.sales_order_writer import Abandoned, OrderWriter
from streams.config import Settings
from streams.domain.exceptions import Refs
from streams.domain.po_close import plan_close
from streams.domain.sales_orders import (
    CLOSE_FIELD,
    SHIPPED_FIELD,
    SalesOrder,
    build_sales_order,
    order_type_draft,
)
from streams.domain.warehouse_policy import channel_policy_type_draft
from streams.resync import resource_updated
from streams.sandbox.amazon import SandboxControl, running_sandbox
from tests.e2e.test_purchase_orders import acks_by_po, amounts, item, order
from tests.support.e2e import at_sandbox, e2e_sandbox, e2e_settings
from tests.support.kafka import Record, produce, read_all, wait_for
from tests.support.services import free_port
from tests.support.worker import WorkerProcess
from tests.unit.test_sales_orders import ITEMS, NOW, STOCK, pos_record, raw_order

pytestmark = [pytest.mark.ctmock]

SKU, ASIN = "SKU-P", "B0POLICY01"
POLICY_TYPE = "streams-channel-policy"


def policy_fields(eligible: bool, priority: int, safety: int) -> dict[str, Any]:
    return {"amazonEligible": eligible, "amazonPriority": priority, "amazonSafetyStock": safety}


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = 0.0
    for line in text.splitlines():
        if (line.startswith(name + "{") and want in line) or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def until(check: Any, timeout: float = 30.0, step: float = 0.3) -> Any:
    """Poll ``check()`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(step)
    return value


def last_amount(records: list[Record]) -> int | None:
    got = amounts(records).get(SKU)
    return got[-1] if got else None


@pytest.fixture
def policy_settings(kafka: str, ct_api: str, tmp_path: Path) -> Settings:
    s = e2e_settings(
        kafka,
        tmp_path,
        ct_api_url=ct_api,
        ct_auth_url=ct_api,
        ct_project_key=f"policy-{uuid.uuid4().hex[:10]}",
        channel_policy_refresh_s=1.0,
    )
    asyncio.run(create_topics(s))
    return s


async def seed(s: Settings) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Three warehouses with their Amazon policy, and SKU-P's stock on each."""
    layout = {  # key: (policy, stock)
        "wh-a": (policy_fields(True, 2, 5), 50),
        "wh-b": (policy_fields(True, 1, 10), 30),  # first choice, keeps 10 back
        "wh-c": (policy_fields(False, 0, 0), 100),  # does not serve Amazon (yet)
    }
    channels, entries = {}, {}
    async with CommercetoolsClient(s) as ct:
        await ensure_type(ct, channel_policy_type_draft(POLICY_TYPE))
        for key, (fields, qty) in layout.items():
            custom = {"type": {"typeId": "type", "key": POLICY_TYPE}, "fields": fields}
            draft = {"key": key, "roles": ["InventorySupply"], "custom": custom}
            ch = await ct.create_channel(draft)
            channels[key] = ch
            supply = {"typeId": "channel", "id": ch["id"]}
            stock = {"sku": SKU, "quantityOnStock": qty, "supplyChannel": supply}
            entries[key] = await ct.create_inventory_entry(stock)
    return channels, entries


async def deliver(s: Settings, entries: list[dict[str, Any]]) -> None:
    """What commercetools' subscription would deliver: a change notification per entry (no
    payload, so the worker reads the entry itself)."""
    await produce(
        s.kafka_bootstrap,
        s.topic_ct_messages,
        [(b"ct", resource_updated(e, s.ct_project_key, time.time())) for e in entries],
    )


@pytest.mark.kafka
@pytest.mark.slow
async def test_policy_drives_allocation_and_availability_and_orders_are_created_once(
    policy_settings: Settings, tmp_path: Path
) -> None:
    port = policy_settings.sandbox_port
    s = at_sandbox(policy_settings)
    bs = s.kafka_bootstrap
    channels, entries = await seed(s)
    ids = {key: ch["id"] for key, ch in channels.items()}
    mapping = {
        "sku": SKU,
        "asin": ASIN,
        "vendorProductIdentifier": f"V{ASIN}",
        "netCost": {"amount": "10.00", "currencyCode": "USD"},
    }  # no amazonChannels: the warehouse policy decides
    config = e2e_sandbox(s)
    async with (
        running_sandbox(config, port=port) as url,
        aiohttp.ClientSession() as http,
        CommercetoolsClient(s) as ct,
    ):
        control = SandboxControl(url, http)
        w = WorkerProcess(s, tmp_path / "worker.log").start()
        try:
            await asyncio.to_thread(w.wait_ready)
            policy_in_effect = await until(
                lambda: (
                    metric(w.metrics(), "streams_channel_policy_channels", state="eligible") == 2
                )
            )
            assert policy_in_effect, w.tail()
            await deliver(s, list(entries.values()))
            assert await until(
                lambda: metric(w.metrics(), "streams_records_total", outcome="fetched") >= 3
            ), w.tail()
            # mapped once its stock is known: the first figure Amazon sees is the real one
            await produce(bs, s.topic_sku_mappings, [(SKU.encode(), mapping)])

            # wh-a 50 - 5 kept + wh-b 30 - 10 kept; wh-c does not serve Amazon: one figure
            out = s.topic_inventory_updates
            recs = await wait_for(bs, out, lambda r: last_amount(r) == 65)
            assert amounts(recs).get(SKU) == [65], w.tail()

            # PO 1: 25 eaches come from wh-b first (priority 1) but only the 20 beyond its
            # safety stock, the rest from wh-a
            await control.add_orders([order("POLPO001", [item("1", ASIN, 25, "Eaches")])])
            acks = await wait_for(
                bs, s.topic_po_acknowledgements, lambda r: "POLPO001" in acks_by_po(r)
            )
            assert "POLPO001" in acks_by_po(acks), w.tail()
            recs = await wait_for(bs, out, lambda r: last_amount(r) == 40)
            assert last_amount(recs) == 40, w.tail()
            first = await until(lambda: ct.get_order_by_number("AMZ-POLPO001"))
            assert first, w.tail()
            assert [(li["name"]["en"], li["quantity"]) for li in first["customLineItems"]] == [
                (SKU, 25)
            ]
            fields = first["custom"]["fields"]
            assert fields["amazonPurchaseOrderNumber"] == "POLPO001"
            assert fields["amazonShipToParty"] == "ABE2"
            assert fields["amazonPurchaseOrderDate"].endswith("Z")
            assert first["totalPrice"]["centAmount"] == 25 * 1000
            assert first["orderState"] == "Open"

            # the reservations land in commercetools; its notifications come back
            async def applied() -> bool:
                got = {e["id"]: e for e in await ct.inventory_by_sku(SKU)}
                a, b = got[entries["wh-a"]["id"]], got[entries["wh-b"]["id"]]
                return a["quantityOnStock"] == 45 and b["quantityOnStock"] == 10

            assert await until(applied), w.tail()
            fresh = await ct.inventory_by_sku(SKU)
            await deliver(s, [e for e in fresh if e["id"] != entries["wh-c"]["id"]])
            assert await until(
                lambda: metric(w.metrics(), "streams_records_total", outcome="fetched") >= 5
            ), w.tail()
            await asyncio.sleep(1.0)  # the SKU agent applies what the ingest fetched

            # the policy changes in commercetools: wh-b stops serving Amazon, wh-c serves first
            async with CommercetoolsClient(s) as pc:
                for key, fields_now in (
                    ("wh-b", policy_fields(False, 1, 10)),
                    ("wh-c", policy_fields(True, 0, 0)),
                ):
                    ch = next(c for c in await pc.all_channels() if c["key"] == key)
                    actions = [
                        {"action": "setCustomField", "name": n, "value": v}
                        for n, v in fields_now.items()
                    ]
                    await pc.update_channel(ch["id"], ch["version"], actions)
            # no stock event at all: the refresh alone re-publishes (wh-a 45 - 5 + wh-c 100)
            recs = await wait_for(bs, out, lambda r: last_amount(r) == 140, 30)
            assert last_amount(recs) == 140, w.tail()

            await control.add_orders(
                [order("POLPO002", [item("1", ASIN, 30, "Eaches")], minutes_ago=5)]
            )
            recs = await wait_for(bs, out, lambda r: last_amount(r) == 110)
            assert last_amount(recs) == 110, w.tail()
            second = await until(lambda: ct.get_order_by_number("AMZ-POLPO002"))
            assert second and second["customLineItems"][0]["quantity"] == 30, w.tail()

            # Amazon closes PO 1: its order is cancelled, its units go back (the 20 on wh-b,
            # which no longer serves Amazon, do not raise what Amazon is offered)
            closed = order("POLPO001", [item("1", ASIN, 25, "Eaches")])
            closed["purchaseOrderState"] = "Closed"
            await produce(bs, s.topic_purchase_orders, [(b"POLPO001", closed)])

            async def cancelled() -> bool:
                found = await ct.get_order_by_number("AMZ-POLPO001")
                return bool(found and found["orderState"] == "Cancelled")

            assert await until(cancelled), w.tail()
            recs = await wait_for(bs, out, lambda r: last_amount(r) == 115)
            assert last_amount(recs) == 115, w.tail()

            # the acknowledgement of PO 1 delivered again: no second order
            acks = await read_all(bs, s.topic_po_acknowledgements)
            again = next(r for r in acks if r.key == b"POLPO001")
            await produce(bs, s.topic_po_acknowledgements, [(again.key, again.value)])
            assert await until(
                lambda: metric(w.metrics(), "streams_sales_orders_total", outcome="unchanged") >= 1
            ), w.tail()
            metrics = w.metrics()
        finally:
            w.stop()

        for number in ("AMZ-POLPO001", "AMZ-POLPO002"):
            found = await ct.query_orders("orderNumber = :n", {"n": number})
            assert len(found) == 1, number

    commands = [r.json() for r in await read_all(bs, s.topic_inventory_commands)]
    assert [
        (c["action"], c["supplyChannel"], c["quantity"], c["purchaseOrderNumber"]) for c in commands
    ] == [
        ("reserve", ids["wh-b"], 20, "POLPO001"),
        ("reserve", ids["wh-a"], 5, "POLPO001"),
        ("reserve", ids["wh-c"], 30, "POLPO002"),
        ("release", ids["wh-a"], 5, "POLPO001"),  # the least preferred channel first
        ("release", ids["wh-b"], 20, "POLPO001"),
    ]
    assert amounts(await read_all(bs, s.topic_inventory_updates))[SKU] == [65, 40, 140, 110, 115]
    assert metric(metrics, "streams_sales_orders_total", outcome="created") == 2
    assert metric(metrics, "streams_sales_orders_total", outcome="updated") >= 1  # cancelled
    assert metric(metrics, "streams_channel_policy_refreshes_total", result="changed") >= 2


# --- the order writer against the emulator (no Kafka): updates, replacement, closure ----------
class Reports:
    def __init__(self) -> None:
        self.raised: list[tuple[str, str]] = []
        self.resolved = 0

    async def report(self, kind: str, refs: Refs, cause: str) -> None:
        self.raised.append((kind, cause))

    async def resolve(self, refs: Refs) -> None:
        self.resolved += 1


def sales_order(stock: dict[str, int], changed: datetime | None = None) -> SalesOrder:
    so = build_sales_order(
        pos_record(raw_order(ITEMS, changed), stock),
        order_type_key="streams-amazon-order",
        line_type_key="streams-amazon-order-line",
    )
    assert so is not None
    return so


@pytest.mark.ctmock
async def test_order_writer_creates_once_replaces_diverges_and_cancels(ct_api: str) -> None:
    s = Settings(ct_api_url=ct_api, ct_auth_url=ct_api, ct_project_key=f"so-{uuid.uuid4().hex}")
    reports = Reports()
    refs = Refs(purchaseOrderNumber="PO1")
    first = sales_order(STOCK)
    changed = sales_order({"SKU-CASE": 12, "SKU EACH/1": 5}, changed=NOW)
    async with CommercetoolsClient(s) as ct:
        writer = OrderWriter(
            ct,
            order_type_key="streams-amazon-order",
            line_type_key="streams-amazon-order-line",
            report=reports.report,
            resolved=reports.resolve,
        )
        assert (await writer.sync("AMZ-PO1", None, False, refs))[0] == "skipped"
        outcome, order = await writer.sync("AMZ-PO1", first, False, refs)
        assert outcome == "created" and order is not None
        assert (await writer.sync("AMZ-PO1", first, False, refs))[0] == "unchanged"
        # a new revision with other lines: nothing touched the order, so it is re-imported
        outcome, order = await writer.sync("AMZ-PO1", changed, False, refs)
        assert outcome == "replaced" and order is not None
        assert [li["quantity"] for li in order["customLineItems"]] == [12, 5]
        assert order["custom"]["fields"]["amazonPurchaseOrderRevision"] == changed.revision
        # fulfilment acts on it; the next change is reported to finance, not re-imported
        order = await ct.update_order(
            order["id"], order["version"],
            [{"action": "changeShipmentState", "shipmentState": "Shipped"}],
        )  # fmt: skip
        outcome, _ = await writer.sync("AMZ-PO1", first, False, refs)
        assert outcome == "diverged"
        assert reports.raised[-1][0] == "sales-order-diverged"
        # Amazon closes the PO after it shipped: Complete
        outcome, order = await writer.sync("AMZ-PO1", changed, True, refs)
        assert outcome == "updated" and order is not None and order["orderState"] == "Complete"
        found = await ct.query_orders("orderNumber = :n", {"n": "AMZ-PO1"})
        assert len(found) == 1
        # another PO closed before it shipped: created, then Cancelled
        other = replace(first, order_number="AMZ-PO2")
        assert (await writer.sync("AMZ-PO2", other, False, refs))[0] == "created"
        outcome, order = await writer.sync("AMZ-PO2", None, True, refs)
        assert outcome == "updated" and order is not None and order["orderState"] == "Cancelled"


@pytest.mark.ctmock
async def test_a_received_po_completes_its_order_and_a_cancelled_one_cancels_it(
    ct_api: str,
) -> None:
    """Amazon's Closed read against what shipped, on the emulator: the order of a received
    PO is Complete, Shipped (or Partial) with the shipped eaches; a cancelled one Cancelled.
    The order Type of an earlier version (without the close fields) gets them added."""
    s = Settings(ct_api_url=ct_api, ct_auth_url=ct_api, ct_project_key=f"so-{uuid.uuid4().hex}")
    reports = Reports()
    refs = Refs(purchaseOrderNumber="PO1")
    so = sales_order(STOCK)  # 24 + 5 eaches accepted
    lines = {"1": {"sku": "SKU-CASE"}, "2": {"sku": "SKU EACH/1"}}
    decisions = {"1": {"allocatedEaches": 24}, "2": {"allocatedEaches": 5}}
    received = plan_close(lines, decisions, {"1": 24, "2": 5}).to_json()
    partial = plan_close(lines, decisions, {"1": 24}).to_json()
    cancelled = plan_close(lines, decisions, {}).to_json()
    old_type = order_type_draft("streams-amazon-order")
    old_type["fieldDefinitions"] = [
        f for f in old_type["fieldDefinitions"] if f["name"] not in (SHIPPED_FIELD, CLOSE_FIELD)
    ]
    async with CommercetoolsClient(s) as ct:
        await ensure_type(ct, old_type)
        writer = OrderWriter(
            ct,
            order_type_key="streams-amazon-order",
            line_type_key="streams-amazon-order-line",
            report=reports.report,
            resolved=reports.resolve,
        )
        for number, close, state, shipment in (
            ("AMZ-PO1", received, "Complete", "Shipped"),
            ("AMZ-PO2", partial, "Complete", "Partial"),
            ("AMZ-PO3", cancelled, "Cancelled", None),
        ):
            mine = replace(so, order_number=number)
            assert (await writer.sync(number, mine, False, refs))[0] == "created"
            outcome, order = await writer.sync(number, mine, True, refs, close)
            assert outcome == "updated" and order is not None, reports.raised
            assert (order["orderState"], order.get("shipmentState")) == (state, shipment)
            fields = order["custom"]["fields"]
            assert fields[SHIPPED_FIELD] == close["shipped"]
            assert fields[CLOSE_FIELD] == close["outcome"]
            again = await writer.sync(number, mine, True, refs, close)
            assert again[0] == "unchanged"  # redelivered: nothing more
        # a PO first seen closed: imported Complete and Shipped at once
        outcome, order = await writer.sync("AMZ-PO4", replace(so, order_number="AMZ-PO4"),
                                           True, refs, received)  # fmt: skip
        assert outcome == "created" and order is not None and order["orderState"] == "Complete"
        if order.get("shipmentState") is None:  # the emulator drops an import's shipmentState
            outcome, order = await writer.sync("AMZ-PO4", replace(so, order_number="AMZ-PO4"),
                                               True, refs, received)  # fmt: skip
            assert outcome == "updated" and order is not None
        assert order["shipmentState"] == "Shipped"
    assert reports.raised == []


class Unimportable(SalesOrder):
    """A draft commercetools refuses for good (a line item for a SKU that is no product)."""

    def draft(
        self, *, closed: bool = False, close: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        money = {"currencyCode": "USD", "centAmount": 100}
        line = {"name": {"en": "x"}, "variant": {"sku": "NO-SUCH-SKU"}, "price": {"value": money},
                "quantity": 1}  # fmt: skip
        return {**super().draft(closed=closed, close=close), "lineItems": [line]}


@pytest.mark.ctmock
async def test_order_writer_reports_a_refused_order_and_keeps_retrying_an_outage(
    ct_api: str,
) -> None:
    s = Settings(ct_api_url=ct_api, ct_auth_url=ct_api, ct_project_key=f"so-{uuid.uuid4().hex}")
    reports = Reports()
    refs = Refs(purchaseOrderNumber="PO1")
    sleeps: list[float] = []

    async def no_sleep(t: float) -> None:
        sleeps.append(t)

    bad = Unimportable(**sales_order(STOCK).__dict__)
    async with CommercetoolsClient(s) as ct:
        writer = OrderWriter(
            ct, order_type_key="o", line_type_key="l", report=reports.report,
            resolved=reports.resolve, abort=lambda: True, sleep=no_sleep,
        )  # fmt: skip
        outcome, _ = await writer.sync("AMZ-PO1", bad, False, refs)
    assert outcome == "failed" and sleeps == []  # refused: told at once, not retried
    assert reports.raised[0][0] == "sales-order-failed" and "NO-SUCH-SKU" in reports.raised[0][1]

    closed = f"http://127.0.0.1:{free_port()}"
    down = Settings(ct_api_url=closed, ct_auth_url=closed, ct_project_key="gone")
    async with CommercetoolsClient(down, max_attempts=1) as ct:
        writer = OrderWriter(
            ct, order_type_key="o", line_type_key="l", retry_s=0, report=reports.report,
            resolved=reports.resolve, abort=lambda: len(sleeps) >= 3, sleep=no_sleep,
        )  # fmt: skip
        with pytest.raises(Abandoned):
            await writer.sync("AMZ-PO1", sales_order(STOCK), False, refs)
    assert len(sleeps) == 3  # retried until the worker had to let go
    assert [k for k, _ in reports.raised].count("sales-order-failed") == 2  # told once more
