"""Direct Fulfillment invoices end to end, on a real broker, the SP-API sandbox and the
commercetools emulator: a DF order accepted -> dispatched -> confirmed (its DF transaction
Success) -> invoiced once with submitInvoice (a DF transaction, Success); the dispatch and
the invoice event delivered again -> no second invoice."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from streams.adapters.commercetools import CommercetoolsClient
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings
from streams.resync import resource_updated
from streams.sandbox.amazon import SandboxControl, running_sandbox
from tests.e2e.test_sales_orders_and_policy import metric, until
from tests.support.e2e import amounts, at_sandbox, e2e_sandbox, e2e_settings
from tests.support.kafka import Record, produce, read_all, wait_for
from tests.support.worker import WorkerProcess
from tests.unit.test_df_orders import df_order

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.ctmock]

SKU, ASIN, PO = "SKU-DFI1", "B0DFI00001", "DFINV001"
NUMBER = f"INV-DF-{PO}-1"


async def redeliver(bootstrap: str, topic: str, rec: Record) -> None:
    """``rec`` again, on its own partition (as a consumer's redelivery would see it)."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await p.start()
    try:
        await p.send_and_wait(topic, key=rec.key, value=rec.value, partition=rec.partition)
    finally:
        await p.stop()


async def test_a_confirmed_df_order_is_invoiced_once_and_redelivery_bills_nothing_twice(
    kafka: str, ct_api: str, tmp_path: Path
) -> None:
    s: Settings = at_sandbox(e2e_settings(
        kafka, tmp_path, ct_api_url=ct_api, ct_auth_url=ct_api,
        ct_project_key=f"dfi-{uuid.uuid4().hex[:10]}", df_pii_key="test-key",
        df_enabled=True, invoices_enabled=True, invoice_df_bill_to={"partyId": "AMZN-DF"},
    ))  # fmt: skip
    await create_topics(s)
    bs = s.kafka_bootstrap
    order = df_order(PO, (ASIN, 2))
    async with (
        running_sandbox(e2e_sandbox(s), port=s.sandbox_port) as url,
        aiohttp.ClientSession() as http,
        CommercetoolsClient(s) as ct,
    ):
        control = SandboxControl(url, http)
        await control.add_df_orders([order])
        ch = await ct.create_channel({"key": "wh-dfi", "roles": ["InventorySupply"]})
        supply = {"typeId": "channel", "id": ch["id"]}
        await ct.create_inventory_entry({"sku": SKU, "quantityOnStock": 5, "supplyChannel": supply})
        mapping = {"sku": SKU, "asin": ASIN, "amazonChannels": [ch["id"]]}
        w = WorkerProcess(s, tmp_path / "worker.log").start()
        try:
            await asyncio.to_thread(w.wait_ready)
            fresh = await ct.inventory_by_sku(SKU)
            note = resource_updated(fresh[0], s.ct_project_key, time.time())
            await produce(bs, s.topic_ct_messages, [(b"ct", note)])
            await produce(bs, s.topic_sku_mappings, [(SKU.encode(), mapping)])
            await wait_for(bs, s.topic_inventory_updates, lambda r: SKU in amounts(r), 120)
            await produce(bs, s.topic_df_orders, [(PO.encode(), order)])
            assert await until(
                lambda: metric(w.metrics(), "streams_df_orders_total", outcome="acknowledged") >= 1,
                timeout=90,
            ), w.tail()
            dispatch = {
                "dispatchId": "D-DFI1", "shipmentId": "S-DFI1", "purchaseOrderNumber": PO,
                "shipFromWarehouse": "WH1", "shippedDate": "2026-12-06T12:00:00Z",
                "shipmentType": "SmallParcel", "carrierScac": "UPSN",
                "cartons": [{"sscc": "001234560000000018", "trackingNumber": "1Z1",
                             "weight": {"value": "1", "unitOfMeasure": "KG"},
                             "items": [{"sku": SKU, "quantityEaches": 2}]}],
            }  # fmt: skip
            await produce(bs, s.topic_dispatches, [(PO.encode(), dispatch)])
            out = await wait_for(bs, s.topic_invoices, lambda r: len(r) >= 1, 90)
            [rec] = out
            assert rec.key == NUMBER.encode(), w.tail()
            body = rec.json()
            assert body["invoiceNumber"] == NUMBER and body["shipFromParty"] == {"partyId": "WH1"}
            assert body["billToParty"] == {"partyId": "AMZN-DF"}
            assert body["invoiceTotal"] == {"currencyCode": "USD", "amount": "10.00"}
            [item] = body["items"]
            assert item["purchaseOrderNumber"] == PO and item["buyerProductIdentifier"] == ASIN
            assert item["invoicedQuantity"] == {"amount": 2, "unitOfMeasure": "Each"}
            assert await until(
                lambda: metric(w.metrics(), "streams_invoices_total", outcome="accepted") >= 1,
                timeout=60,
            ), w.tail()
            [sent] = await control.received("submitInvoice")
            assert sent["status"] == 202 and sent["body"] == {"invoices": [body]}

            # redelivery: the dispatch again, and the invoice flow's own event again
            await produce(bs, s.topic_dispatches, [(PO.encode(), dispatch)])
            events = f"{s.app_id}-invoice-events"
            [shipment] = [r for r in await read_all(bs, events) if r.json()["t"] == "shipment"]
            await redeliver(bs, events, shipment)
            assert await until(
                lambda: metric(w.metrics(), "streams_invoices_total", outcome="duplicate") >= 1,
                timeout=60,
            ), w.tail()
            await asyncio.sleep(2.0)
            assert len(await read_all(bs, s.topic_invoices)) == 1
            assert len(await control.received("submitInvoice")) == 1
            assert metric(w.metrics(), "streams_invoices_total", outcome="built") == 1
        finally:
            w.stop()
