"""Shipment accepted -> invoice, end to end: a real worker process on a real broker
acknowledges POs from the SP-API sandbox (over HTTP), confirms WMS dispatches as ASNs, and
invoices what Amazon accepted with ``submitInvoices``. Billed once per shipment whatever is
redelivered; a SIGKILL in the middle of a send still bills exactly once; a transaction
Amazon fails becomes a finance exception."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from streams.adapters.kafka_admin import create_topics
from streams.adapters.spapi import SpApiClient
from streams.config import Settings
from streams.domain.invoice import InvoiceRules, build_invoice
from streams.sandbox.amazon import SandboxControl, running_sandbox
from streams.sandbox.amazon.invoices import DUPLICATE
from streams.views import fetch
from tests.e2e.test_asn import dispatch, metric, sscc
from tests.e2e.test_purchase_orders import item, mapping, order, stock
from tests.support.e2e import at_sandbox, e2e_sandbox, e2e_settings
from tests.support.kafka import Record, produce, read_all, wait_for
from tests.support.worker import WorkerProcess
from tests.unit.test_invoices import terms

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
SUBMIT = "submitInvoices"


def metrics_of(w: WorkerProcess) -> str:
    """The worker's /metrics, or "" while it is too busy to answer (a loaded machine)."""
    try:
        return w.metrics()
    except OSError:
        return ""


def summary(w: WorkerProcess) -> str:
    keep = ("streams_invoices", "streams_asn_total", "streams_exc")
    text = metrics_of(w)
    lines = [ln for ln in text.splitlines() if ln.startswith(keep)]
    return "\n".join(lines) + "\n" + w.tail(30)


def billed(entries: list[dict[str, Any]]) -> list[str]:
    """Invoice numbers of every submitInvoices request the sandbox took (202)."""
    return sorted(inv["id"] for e in entries if e["status"] == 202 for inv in e["body"]["invoices"])


async def until(cond: Any, tries: int = 160, pause: float = 0.25) -> bool:
    for _ in range(tries):
        if await cond():
            return True
        await asyncio.sleep(pause)
    return bool(await cond())


@pytest.fixture
def inv_settings(kafka: str, tmp_path: Path) -> Settings:
    s = at_sandbox(e2e_settings(kafka, tmp_path, invoices_enabled=True))
    asyncio.run(create_topics(s))
    return s


async def test_accepted_shipments_are_invoiced_once_even_across_a_sigkill(
    inv_settings: Settings, tmp_path: Path
) -> None:
    s = inv_settings
    bs = s.kafka_bootstrap
    products = [("SKU-CASE", "B0CASE0001", 12), ("SKU-EACH", "B0EACH0001", None)]
    await produce(
        bs, s.topic_sku_mappings, [(p.encode(), mapping(p, a, n)) for p, a, n in products]
    )
    await produce(
        bs,
        s.topic_ct_messages,
        [(b"ct", stock(f"e{i}", p, "wh-1", 500)) for i, (p, _, _) in enumerate(products)],
    )
    orders = {
        "INVPO001": [
            item("1", "B0CASE0001", 4, "Cases", 12, cost="1.995"),
            item("2", "B0EACH0001", 10, "Eaches", cost="7.33"),
        ],
        "INVPO002": [item("1", "B0EACH0001", 5, "Eaches")],
        "INVPO003": [item("1", "B0EACH0001", 6, "Eaches", cost="3.10")],
    }
    d = {
        "INVPO001": dispatch(
            "I1",
            "SHIP-I1",
            "INVPO001",
            [(sscc(11), [("SKU-CASE", 24)]), (sscc(12), [("SKU-EACH", 3)])],
        ),
        "INVPO002": dispatch("I2", "SHIP-I2", "INVPO002", [(sscc(13), [("SKU-EACH", 5)])]),
        "INVPO003": dispatch("I3", "SHIP-I3", "INVPO003", [(sscc(14), [("SKU-EACH", 6)])]),
    }
    log = tmp_path / "worker.log"
    sandbox = running_sandbox(e2e_sandbox(s), port=s.sandbox_port)
    async with sandbox as url, aiohttp.ClientSession() as http:
        control = SandboxControl(url, http)

        async def acked(numbers: set[str]) -> bool:
            acks = await control.received("submitAcknowledgement")
            done = {
                a["purchaseOrderNumber"]
                for e in acks
                if e["status"] == 202
                for a in e["body"]["acknowledgements"]
            }
            return numbers <= done

        # Amazon already holds an invoice numbered as the worker will number PO 2's
        async with SpApiClient(s) as api:
            other = build_invoice(
                "INV-INVPO002-1",
                terms(("1", "Eaches", 1, 5, 5, "1.00")),
                {"1": 1},
                InvoiceRules(remit_to={"partyId": "VENDOR1"}),
                datetime.now(UTC),
            )
            await api.wait_for_transaction(await api.submit_invoices([other]), poll_s=0.1)

        w = WorkerProcess(s, log).start()
        try:
            w.wait_ready()
            await wait_for(bs, s.topic_inventory_updates, lambda r: len({x.key for x in r}) == 2)
            await control.add_orders([order(po, lines) for po, lines in orders.items()])
            assert await until(lambda: acked(set(orders))), summary(w)
            await asyncio.sleep(1.0)  # the worker records the acks it just submitted
            await produce(
                bs, s.topic_dispatches, [(b"INVPO001", d["INVPO001"]), (b"INVPO002", d["INVPO002"])]
            )

            async def first_round() -> bool:
                text = metrics_of(w)
                return (
                    metric(text, "streams_invoices_total", outcome="accepted") >= 1
                    and metric(text, "streams_invoices_total", outcome="failed") >= 1
                )

            assert await until(first_round), summary(w)

            # redeliveries: the same dispatch, and the invoice flow's own event again
            events = await read_all(bs, f"{s.app_id}-invoice-events")
            shipment_events = [r for r in events if (r.json() or {}).get("t") == "shipment"]
            assert {r.key for r in shipment_events} == {b"INVPO001", b"INVPO002"}
            again = [(r.key, r.value) for r in shipment_events if r.key == b"INVPO001"]
            await produce(bs, s.topic_dispatches, [(b"INVPO001", d["INVPO001"])])
            await produce(bs, f"{s.app_id}-invoice-events", again)

            async def redelivered() -> bool:
                return metric(metrics_of(w), "streams_invoices_total", outcome="duplicate") >= 1

            assert await until(redelivered), summary(w)

            # SIGKILL while the invoice of PO 3 is on its way: Amazon answers slowly
            await control.set_faults({"operations": {SUBMIT: {"latencyMs": 2500}}})
            await produce(bs, s.topic_dispatches, [(b"INVPO003", d["INVPO003"])])

            def built(r: list[Record]) -> bool:
                return any(x.key == b"INV-INVPO003-1" for x in r)

            assert built(await wait_for(bs, s.topic_invoices, built)), summary(w)
            await asyncio.sleep(1.0)  # the sender has recorded its intent and is sending
            w.kill()
        finally:
            w.stop()

        async def amazon_took_it() -> bool:
            return "INV-INVPO003-1" in billed(await control.received(SUBMIT))

        await until(amazon_took_it, tries=40)  # the request may not have left before the kill
        await control.set_faults({"clear": True})
        w = WorkerProcess(s, log).start()
        try:
            w.wait_ready()

            async def settled() -> bool:
                text = metrics_of(w)
                # after the restart: PO 3 accepted (once), PO 2 invoiced anew and accepted
                return metric(text, "streams_invoices_total", outcome="accepted") >= 2

            assert await until(settled), summary(w)
            await asyncio.sleep(2.0)  # anything that would be sent twice has had time to be
            # streams invoice <number>: through the worker's API
            status, view = await asyncio.to_thread(fetch, s, "/api/invoice/INV-INVPO003-1")
            assert status == 200 and view["status"] == "accepted", view
            assert view["shipments"] == ["SHIP-I3"] and view["total"] == "18.60"
            status, view = await asyncio.to_thread(fetch, s, "/api/invoice/INV-INVPO002-1")
            assert view["status"] == "failed" and view["errors"][0]["code"] == DUPLICATE
            assert [x["kind"] for x in view["exceptions"]] == ["invoice-transaction-failed"]
            status, _ = await asyncio.to_thread(fetch, s, "/api/invoice/INV-NOPO-1")
            assert status == 404
        finally:
            w.stop()

        entries = await control.received(SUBMIT)
        numbers = billed(entries)
        # PO 1 once; PO 2: the held number (refused), then a new one; PO 3 once or resent
        assert numbers.count("INV-INVPO001-1") == 1, numbers
        assert numbers.count("INV-INVPO002-1") == 2 and numbers.count("INV-INVPO002-2") == 1
        assert 1 <= numbers.count("INV-INVPO003-1") <= 2, numbers
        assert not any(n.startswith("INV-INVPO003-") and n != "INV-INVPO003-1" for n in numbers)
        async with SpApiClient(s) as api:
            outcomes: dict[str, list[str]] = {}
            for e in entries:
                if e["status"] == 202:
                    tx = await api.get_transaction(e["transactionId"])
                    for inv in e["body"]["invoices"]:
                        outcomes.setdefault(inv["id"], []).append(tx["status"])
        # exactly one invoice per shipment billed (Success) at Amazon
        assert outcomes["INV-INVPO001-1"] == ["Success"]
        assert outcomes["INV-INVPO003-1"].count("Success") == 1, outcomes
        print("PO 3 at Amazon after the SIGKILL:", outcomes["INV-INVPO003-1"])
        assert outcomes["INV-INVPO002-2"] == ["Success"]
        first = next(e for e in entries if e["body"]["invoices"][0]["id"] == "INV-INVPO001-1")
        inv = first["body"]["invoices"][0]
        assert [i["invoicedQuantity"] for i in inv["items"]] == [
            {"amount": 2, "unitOfMeasure": "Cases", "unitSize": 12},
            {"amount": 3, "unitOfMeasure": "Eaches"},
        ]
        assert inv["invoiceTotal"] == {"currencyCode": "USD", "amount": "69.87"}  # 47.88+21.99
        assert inv["remitToParty"] == {"partyId": "VENDOR1"}

        # the finance exception of the refused invoice, resolved by the one billed instead
        exc = [r.json() for r in await read_all(bs, s.topic_exceptions)]
        failed = [x for x in exc if x["kind"] == "invoice-transaction-failed"]
        assert failed and failed[0]["owner"] == "finance" and failed[0]["status"] == "open"
        assert "DuplicateInvoiceNumber" in failed[0]["rootCause"]
        refs = failed[0]["refs"]
        assert (refs["purchaseOrderNumber"], refs["invoiceNumber"]) == (
            "INVPO002",
            "INV-INVPO002-1",
        )
        assert failed[-1]["status"] == "resolved"
