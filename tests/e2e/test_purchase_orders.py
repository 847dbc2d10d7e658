"""Purchase orders end to end: the SP-API sandbox (over HTTP) -> poller -> Kafka -> allocation
against known stock -> reservations, acknowledgements accepted by the sandbox, availability
deltas, owned exceptions; a real worker process on a real broker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from streams.adapters.amazon_models import validate as amazon_validate
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings
from streams.sandbox.amazon import SandboxControl, running_sandbox
from tests.support.badinput import po_item, purchase_order
from tests.support.e2e import amounts, at_sandbox, e2e_sandbox, e2e_settings
from tests.support.kafka import produce, read_all, wait_for
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

NOW = datetime.now(UTC).replace(microsecond=0)


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


item = po_item  # a PO line; backorder=, cost= for the odd ones


def order(number: str, items: list[dict[str, Any]], minutes_ago: int = 30) -> dict[str, Any]:
    return purchase_order(number, items, NOW, date=NOW - timedelta(minutes=minutes_ago))


def stock(entry: str, sku: str, channel: str, qty: int) -> dict[str, Any]:
    return {
        "notificationType": "Message",
        "projectKey": "p",
        "id": f"{entry}-1",
        "version": 1,
        "sequenceNumber": 1,
        "resource": {"typeId": "inventory-entry", "id": entry},
        "resourceVersion": 1,
        "type": "InventoryEntryCreated",
        "inventoryEntry": {
            "id": entry,
            "version": 1,
            "sku": sku,
            "quantityOnStock": qty,
            "availableQuantity": qty,
            "supplyChannel": {"typeId": "channel", "id": channel},
        },
        "createdAt": iso(NOW),
    }


def mapping(sku: str, asin: str, units: int | None) -> dict[str, Any]:
    m: dict[str, Any] = {
        "sku": sku,
        "asin": asin,
        "vendorProductIdentifier": f"V{asin}",
        "amazonChannels": ["wh-1", "wh-2"],
        "netCost": {"amount": "10.00", "currencyCode": "USD"},
    }
    if units:
        m["unitsPerCase"] = units
    return m


def acks_by_po(records: list[Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        out.setdefault(r.key.decode(), []).append(r.json())
    return out


def entries(ack: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        it["itemSequenceNumber"]: [
            (
                e["acknowledgementCode"],
                e["acknowledgedQuantity"]["amount"],
                e["acknowledgedQuantity"]["unitOfMeasure"],
                e.get("rejectionReason"),
            )
            for e in it["itemAcknowledgements"]
        ]
        for it in ack["items"]
    }


def summary(w: WorkerProcess) -> str:
    keep = ("streams_records_total", "streams_acknowledgements", "streams_po_", "streams_exc")
    lines = [ln for ln in w.metrics().splitlines() if ln.startswith(keep) and "bucket" not in ln]
    return "\n".join(lines) + "\n" + w.tail(15)


@pytest.fixture
def po_settings(kafka: str, ct_api: str, tmp_path: Path) -> Settings:
    s = e2e_settings(
        kafka,
        tmp_path,
        # a reachable commercetools (the emulator): the command and sales-order flows answer
        # at once instead of retrying a closed port for the whole test
        ct_api_url=ct_api,
        ct_auth_url=ct_api,
        ct_project_key=f"po-{tmp_path.name[-8:]}".replace("_", "-"),
    )
    asyncio.run(create_topics(s))
    return s


async def test_purchase_orders_are_allocated_reserved_and_acknowledged(
    po_settings: Settings, tmp_path: Path
) -> None:
    port = po_settings.sandbox_port
    s = at_sandbox(po_settings)
    bs = s.kafka_bootstrap
    config = e2e_sandbox(s)
    await produce(
        bs,
        s.topic_sku_mappings,
        [
            (b"SKU-CASE", mapping("SKU-CASE", "B0CASE0001", 12)),
            (b"SKU-EACH", mapping("SKU-EACH", "B0EACH0001", None)),
            (b"SKU-NOSIZE", mapping("SKU-NOSIZE", "B0NOSIZE01", None)),
        ],
    )
    await produce(
        bs,
        s.topic_ct_messages,
        [
            (b"ct", stock("e1", "SKU-CASE", "wh-1", 30)),
            (b"ct", stock("e2", "SKU-CASE", "wh-2", 0)),
            (b"ct", stock("e3", "SKU-EACH", "wh-1", 5)),
            (b"ct", stock("e4", "SKU-NOSIZE", "wh-1", 50)),
        ],
    )
    async with running_sandbox(config, port=port) as url, aiohttp.ClientSession() as http:
        control = SandboxControl(url, http)
        w = WorkerProcess(s, tmp_path / "worker.log").start()
        try:
            w.wait_ready()
            out = s.topic_inventory_updates
            await wait_for(
                bs,
                out,
                lambda r: amounts(r).get("SKU-CASE") == [30] and amounts(r).get("SKU-EACH") == [5],
            )
            # the first acknowledgement submissions hit a 429 storm; the client must ride it out
            await control.set_faults({"operations": {"submitAcknowledgement": {"throttleNext": 3}}})
            await control.add_orders(
                [
                    order(
                        "CASEPO01",
                        [
                            item("1", "B0CASE0001", 3, "Cases", 12, backorder=True),  # 36 eaches
                            item("2", "B0EACH0001", 8, "Eaches"),  # 5 in stock
                            item("3", "B0UNKNOWN1", 2, "Eaches"),  # no such product
                        ],
                    ),
                    order("NOSIZE01", [item("1", "B0NOSIZE01", 2, "Cases")]),  # no case size
                ]
            )
            acks = await wait_for(
                bs, s.topic_po_acknowledgements, lambda r: "CASEPO01" in acks_by_po(r)
            )
            assert "CASEPO01" in acks_by_po(acks), summary(w)
            ack = acks_by_po(acks)["CASEPO01"][0]
            assert entries(ack) == {
                "1": [("Accepted", 2, "Cases", None), ("Backordered", 1, "Cases", None)],
                "2": [
                    ("Accepted", 5, "Eaches", None),
                    ("Rejected", 3, "Eaches", "TemporarilyUnavailable"),
                ],
                "3": [("Rejected", 2, "Eaches", "InvalidProductIdentifier")],
            }
            first = ack["items"][0]["itemAcknowledgements"][0]
            assert first["acknowledgedQuantity"]["unitSize"] == 12
            assert amazon_validate("vendorOrders", "OrderAcknowledgement", ack) == []

            # a second PO for the case SKU sees only what is left (30 - 24 = 6 < 12) and its
            # transaction fails at Amazon
            await control.set_faults({"transactionFailures": {"purchaseOrders": ["FAILTX01"]}})
            await control.add_orders(
                [order("FAILTX01", [item("1", "B0CASE0001", 1, "Cases", 12)], minutes_ago=10)]
            )
            acks = await wait_for(
                bs, s.topic_po_acknowledgements, lambda r: "FAILTX01" in acks_by_po(r)
            )
            assert "FAILTX01" in acks_by_po(acks), summary(w)
            assert entries(acks_by_po(acks)["FAILTX01"][0]) == {
                "1": [("Rejected", 1, "Cases", "TemporarilyUnavailable")]
            }

            # a PO delivered twice (an EDI translator replays it) allocates nothing new
            await produce(
                bs,
                s.topic_purchase_orders,
                [
                    (
                        b"CASEPO01",
                        order(
                            "CASEPO01",
                            [
                                item("1", "B0CASE0001", 3, "Cases", 12, backorder=True),
                                item("2", "B0EACH0001", 8, "Eaches"),
                                item("3", "B0UNKNOWN1", 2, "Eaches"),
                            ],
                        ),
                    )
                ],
            )

            exc = await wait_for(
                bs,
                s.topic_exceptions,
                lambda r: (
                    {"unit-of-measure", "ack-transaction-failed"} <= {x.json()["kind"] for x in r}
                ),
            )
            kinds = {x.json()["kind"]: x.json() for x in exc}
            assert kinds["unit-of-measure"]["refs"]["purchaseOrderNumber"] == "NOSIZE01"
            assert kinds["unit-of-measure"]["owner"] == "operations"
            assert "INVALID_ORDER_ID" in kinds["ack-transaction-failed"]["rootCause"]
            await asyncio.sleep(3)  # anything that would be duplicated has had time to be

            commands = [r.json() for r in await read_all(bs, s.topic_inventory_commands)]
            assert sorted(
                (c["action"], c["sku"], c["supplyChannel"], c["quantity"], c["purchaseOrderNumber"])
                for c in commands
            ) == [
                ("reserve", "SKU-CASE", "wh-1", 24, "CASEPO01"),
                ("reserve", "SKU-EACH", "wh-1", 5, "CASEPO01"),
            ]
            final = acks_by_po(await read_all(bs, s.topic_po_acknowledgements))
            assert sorted(final) == ["CASEPO01", "FAILTX01"]  # none for the held PO
            assert all(len(v) == 1 for v in final.values())
            sent = await control.received("submitAcknowledgement")
            accepted = [e for e in sent if e["status"] == 202]
            assert sorted(
                e["body"]["acknowledgements"][0]["purchaseOrderNumber"] for e in accepted
            ) == ["CASEPO01", "FAILTX01"]
            assert [e["status"] for e in sent].count(429) == 3
            updates = amounts(await read_all(bs, out))
            assert updates["SKU-CASE"] == [30, 6] and updates["SKU-EACH"] == [5, 0]
            assert "SKU-NOSIZE" not in {c["sku"] for c in commands}
        finally:
            w.stop()


async def test_waiting_acknowledgements_share_a_request_and_its_transaction(
    po_settings: Settings, tmp_path: Path
) -> None:
    """Acknowledgements built while a request is under way go out together in the next one;
    each is submitted once, exactly as published, and a failed transaction raises an owned
    exception for every PO it carried."""
    port = po_settings.sandbox_port
    s = at_sandbox(po_settings)
    bs = s.kafka_bootstrap
    config = e2e_sandbox(s)
    await produce(
        bs, s.topic_sku_mappings, [(b"SKU-EACH", mapping("SKU-EACH", "B0EACH0001", None))]
    )
    await produce(bs, s.topic_ct_messages, [(b"ct", stock("e1", "SKU-EACH", "wh-1", 1000))])
    numbers = [f"BATCH{i:03d}" for i in range(8)]
    doomed = numbers[5]
    async with running_sandbox(config, port=port) as url, aiohttp.ClientSession() as http:
        control = SandboxControl(url, http)
        w = WorkerProcess(s, tmp_path / "worker.log").start()
        try:
            w.wait_ready()
            await wait_for(bs, s.topic_inventory_updates, lambda r: "SKU-EACH" in amounts(r))
            # every request takes a while: what is built meanwhile waits for the next one
            await control.set_faults(
                {
                    "operations": {"submitAcknowledgement": {"latencyMs": 700}},
                    "transactionFailures": {"purchaseOrders": [doomed]},
                }
            )
            await produce(
                bs,
                s.topic_purchase_orders,
                [(n.encode(), order(n, [item("1", "B0EACH0001", 2, "Eaches")])) for n in numbers],
            )
            acks = await wait_for(
                bs,
                s.topic_po_acknowledgements,
                lambda r: set(numbers) <= set(acks_by_po(r)),
            )
            published = acks_by_po(acks)
            assert set(numbers) <= set(published), summary(w)
            exc = await wait_for(
                bs,
                s.topic_exceptions,
                lambda r: (
                    doomed
                    in {
                        x.json()["refs"]["purchaseOrderNumber"]
                        for x in r
                        if x.json()["kind"] == "ack-transaction-failed"
                    }
                ),
            )
            await asyncio.sleep(2)  # anything that would be duplicated has had time to be

            sent = await control.received("submitAcknowledgement")
            accepted = [e for e in sent if e["status"] == 202]
            carried = [
                [a["purchaseOrderNumber"] for a in e["body"]["acknowledgements"]] for e in accepted
            ]
            assert sorted(n for request in carried for n in request) == numbers  # each once
            assert max(len(request) for request in carried) > 1, carried
            for e in accepted:
                for a in e["body"]["acknowledgements"]:
                    assert [a] == published[a["purchaseOrderNumber"]]  # as published, once
            [together] = [r for r in carried if doomed in r]
            failed = {
                x.json()["refs"]["purchaseOrderNumber"]: x.json()
                for x in await read_all(bs, s.topic_exceptions)
                if x.json()["kind"] == "ack-transaction-failed"
            }
            assert set(failed) == set(together), (failed, carried)
            assert len({f["refs"]["transactionId"] for f in failed.values()}) == 1
            assert all("INVALID_ORDER_ID" in f["rootCause"] for f in failed.values())
            assert exc
        finally:
            w.stop()
