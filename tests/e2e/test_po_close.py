"""Amazon closes purchase orders every way it can, end to end: the SP-API sandbox (over HTTP)
closes them received, rejected or cancelled (one PO under a second vendor code, which its
acknowledgement names); a real worker on a real broker gives back only
what was accepted and never shipped (by our ASNs or by Amazon's received quantities), and
finance's orders in the commercetools emulator are Complete (Shipped / Partial) or Cancelled.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from streams.adapters.commercetools import CommercetoolsClient
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings
from streams.domain.sales_orders import CLOSE_FIELD, SHIPPED_FIELD
from streams.sandbox.amazon import SandboxControl, running_sandbox
from tests.e2e.test_asn import dispatch, sscc
from tests.e2e.test_purchase_orders import amounts, item, mapping, order, stock, summary
from tests.support.e2e import at_sandbox, e2e_sandbox, e2e_settings
from tests.support.kafka import produce, read_all, wait_for
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.ctmock, pytest.mark.slow]

SKU, ASIN = "SKU-EACH", "B0EACH0001"
POS = {"SHIPPED1": 10, "RCVD0001": 8, "CNCL0001": 6, "PART0001": 5}


@pytest.fixture
def close_settings(kafka: str, ct_api: str, tmp_path: Path) -> Settings:
    s = e2e_settings(
        kafka,
        tmp_path,
        ct_api_url=ct_api,
        ct_auth_url=ct_api,
        ct_project_key=f"close-{uuid.uuid4().hex[:10]}",
    )
    asyncio.run(create_topics(s))
    return at_sandbox(s)


async def until(check: object, timeout: float = 120.0) -> object:
    deadline = asyncio.get_running_loop().time() + timeout
    value: object = None
    while asyncio.get_running_loop().time() < deadline:
        value = check()  # type: ignore[operator]
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.3)
    return value


async def test_closed_pos_release_only_what_never_shipped(
    close_settings: Settings, tmp_path: Path
) -> None:
    s = close_settings
    bs = s.kafka_bootstrap
    await produce(bs, s.topic_sku_mappings, [(SKU.encode(), mapping(SKU, ASIN, None))])
    await produce(bs, s.topic_ct_messages, [(b"ct", stock("e1", SKU, "wh-1", 100))])
    async with (
        running_sandbox(e2e_sandbox(s), port=s.sandbox_port) as url,
        aiohttp.ClientSession() as http,
        CommercetoolsClient(s) as ct,
    ):
        control = SandboxControl(url, http)
        w = WorkerProcess(s, tmp_path / "worker.log").start()
        try:
            w.wait_ready()
            out = s.topic_inventory_updates
            await wait_for(bs, out, lambda r: amounts(r).get(SKU) == [100])
            pos = [order(n, [item("1", ASIN, q, "Eaches")]) for n, q in POS.items()]
            # a vendor group orders under several vendor codes: each PO is acknowledged as its own
            pos[-1]["orderDetails"]["sellingParty"] = {"partyId": "VENDOR2"}
            await control.add_orders(pos)
            recs = await wait_for(bs, out, lambda r: (amounts(r).get(SKU) or [0])[-1] == 71, 120)
            assert amounts(recs)[SKU][-1] == 71, summary(w)

            async def acknowledged() -> bool:
                sent = await control.received("submitAcknowledgement")
                done = {a["purchaseOrderNumber"] for e in sent if e["status"] == 202
                        for a in e["body"]["acknowledgements"]}  # fmt: skip
                return set(POS) <= done

            assert await until(acknowledged), summary(w)
            parties = {a["purchaseOrderNumber"]: a["sellingParty"]["partyId"]
                       for e in await control.received("submitAcknowledgement")
                       if e["status"] == 202 for a in e["body"]["acknowledgements"]}  # fmt: skip
            assert parties == {"SHIPPED1": "VENDOR1", "RCVD0001": "VENDOR1",
                               "CNCL0001": "VENDOR1", "PART0001": "VENDOR2"}  # fmt: skip
            for n in POS:  # every PO has its order before Amazon closes it
                assert await until(lambda n=n: ct.get_order_by_number(f"AMZ-{n}")), summary(w)
            await asyncio.sleep(1.5)  # the acknowledgement transactions settle

            # SHIPPED1 leaves on our ASN; Amazon has not booked it yet when it closes the PO
            await produce(bs, s.topic_dispatches, [(b"SHIPPED1", dispatch(
                "D1", "SHIP-1", "SHIPPED1", [(sscc(11), [(SKU, 10)])]))])  # fmt: skip

            async def asn_sent() -> bool:
                got = await control.statuses("SubmitShipmentConfirmations")
                return 202 in got

            assert await until(asn_sent), summary(w)
            at = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
            await control.close_order("SHIPPED1", "rejected", at=at)  # nothing received yet
            await control.close_order("RCVD0001", "received", at=at)  # no ASN of ours
            await control.close_order("CNCL0001", "cancelled", at=at)
            await control.close_order("PART0001", "received", at=at, received={"1": 2})

            # only CNCL0001's 6 and PART0001's 3 unreceived eaches go back: 71 + 9
            recs = await wait_for(bs, out, lambda r: amounts(r)[SKU][-1] == 80, 120)
            assert amounts(recs)[SKU][-1] == 80, summary(w)

            want = {
                "SHIPPED1": ("Complete", "Shipped", 10, "received"),
                "RCVD0001": ("Complete", "Shipped", 8, "received"),
                "CNCL0001": ("Cancelled", None, 0, "cancelled"),
                "PART0001": ("Complete", "Partial", 2, "partially-received"),
            }

            async def orders_match() -> bool:
                for n, (state, shipment, shipped, how) in want.items():
                    o = await ct.get_order_by_number(f"AMZ-{n}")
                    f = (o or {}).get("custom", {}).get("fields", {})
                    got = (o or {}).get("orderState"), (o or {}).get("shipmentState")
                    if got != (state, shipment) or (f.get(SHIPPED_FIELD), f.get(CLOSE_FIELD)) != (
                        shipped, how,
                    ):  # fmt: skip
                        return False
                return True

            assert await until(orders_match), summary(w)
            await asyncio.sleep(2)  # anything duplicated has had time to show
        finally:
            w.stop()

    commands = [r.json() for r in await read_all(bs, s.topic_inventory_commands)]
    releases = sorted(
        (c["purchaseOrderNumber"], c["quantity"]) for c in commands if c["action"] == "release"
    )
    assert releases == [("CNCL0001", 6), ("PART0001", 3)]
    assert sum(1 for c in commands if c["action"] == "reserve") == 4
