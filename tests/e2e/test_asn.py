"""Dispatch -> ASN end to end: a real worker process on a real broker acknowledges POs from the
SP-API sandbox (over HTTP), then turns WMS dispatches into shipment confirmations that the
sandbox accepts, or into owned exceptions with every violation; plus the contract of
``amazon.shipment-confirmations`` (schema, examples, what the flow emits, Amazon's model)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from streams.adapters.amazon_models import validate as amazon_validate
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings
from streams.domain.asn_effects import Rules
from streams.domain.asn_state import ShipmentBook, po_state_from_record
from streams.domain.dispatch import Dispatch
from streams.domain.exceptions import Refs, exception_id
from streams.domain.gs1 import with_check_digit
from streams.sandbox.amazon import SandboxControl, running_sandbox
from tests.e2e.test_purchase_orders import item, mapping, order, stock
from tests.support.e2e import at_sandbox, e2e_sandbox, e2e_settings
from tests.support.kafka import Record, produce, read_all, wait_for
from tests.support.worker import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = orjson.loads((ROOT / "schemas" / "amazon.shipment-confirmations.schema.json").read_bytes())
EXAMPLES = sorted((ROOT / "schemas" / "examples" / "amazon.shipment-confirmations").glob("*.json"))
CONTRACT = Draft202012Validator(SCHEMA, format_checker=FormatChecker())
NOW = datetime.now(UTC).replace(microsecond=0)
SUBMIT = "SubmitShipmentConfirmations"


def contract_errors(asn: Any) -> list[str]:
    """Our topic schema, Amazon's model of the confirmation and of the request that carries it."""
    return (
        [f"schema: {e.message}" for e in CONTRACT.iter_errors(asn)]
        + amazon_validate("vendorShipments", "ShipmentConfirmation", asn)
        + amazon_validate(
            "vendorShipments",
            "SubmitShipmentConfirmationsRequest",
            {"shipmentConfirmations": [asn]},
        )
    )


# --- the contract, without Kafka -----------------------------------------------------


def test_schema_and_examples() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert {p.name for p in EXAMPLES} >= {"ltl.json", "small-parcel.json", "truckload.json"}
    for path in EXAMPLES:
        assert contract_errors(orjson.loads(path.read_bytes())) == [], path.name
    replace = orjson.loads((EXAMPLES[0].parent / "small-parcel-replace.json").read_bytes())
    assert replace["shipmentConfirmationType"] == "Replace"


class _NoOtherPo:
    def shipment(self, sid: str) -> None:
        return None

    def bill_of_lading(self, bol: str) -> None:
        return None

    def sscc(self, sscc: str) -> None:
        return None


def test_what_the_flow_emits_fits_the_contract() -> None:
    """The flow's own join (a ``pos`` record as the PO flow writes it) and decision path, on
    the wms.dispatches examples: every ASN it would publish fits both contracts."""
    dispatches = ROOT / "schemas" / "examples" / "wms.dispatches"
    lines = {  # PO line -> (SKU, ASIN, ordered, unit, case size)
        "1": ("KETTLE-STEEL-17", "B09G9FPHY6", 2, "Cases", 4),
        "2": ("TEA-EARLGREY-100", "B08N5WRWNW", 24, "Eaches", None),
        "3": ("MUG-BLUE-350", "B07XJ8C8F5", 1, "Cases", 12),
    }
    record = pos_record("3HX8QZ2A", lines)
    state = po_state_from_record(record, "VENDOR1")
    assert not isinstance(state, str), state
    raw = orjson.loads((dispatches / "ltl.json").read_bytes())
    rules = Rules(
        now=datetime(2024, 3, 13, 12, tzinfo=UTC),
        model_check=partial(amazon_validate, "vendorShipments", "ShipmentConfirmation"),
    )
    book = ShipmentBook("3HX8QZ2A")
    eff = book.on_dispatch(raw, Dispatch.model_validate(raw), state, {}, _NoOtherPo(), rules, 0.0)
    assert eff.outcomes == ["built"] and eff.exceptions == []
    [(sid, asn, version)] = eff.publish
    assert version == 0
    assert sid == asn["shipmentIdentifier"] == "LTL20240312007"
    assert asn["shipToParty"] == {"partyId": "CMH1"}
    assert contract_errors(asn) == []
    # not acknowledged yet (nothing submitted, Amazon still shows it New): nothing to
    # publish, an exception that says so
    record.pop("ack")
    record["state"] = "New"
    waiting = po_state_from_record(record, "VENDOR1")
    assert isinstance(waiting, str) and "not acknowledged" in waiting


def pos_record(po: str, lines: dict[str, tuple[str, str, int, str, int | None]]) -> dict[str, Any]:
    """A ``pos[PO]`` value as the purchase-order flow writes it, every line accepted."""
    qty = {
        seq: {"amount": n, "unitOfMeasure": unit, **({"unitSize": size} if size else {})}
        for seq, (_, _, n, unit, size) in lines.items()
    }
    return {
        "po": po,
        "rev": "2024-03-10T08:00:00+00:00",
        "state": "Acknowledged",
        "order": {
            "purchaseOrderNumber": po,
            "orderDetails": {
                "sellingParty": {"partyId": "VNDR1"},
                "shipToParty": {"partyId": "CMH1"},
            },
        },
        "lines": {
            seq: {"sku": sku, "amazonProductIdentifier": asin, "orderedQuantity": qty[seq]}
            for seq, (sku, asin, *_) in lines.items()
        },
        "decisions": {
            seq: {"sku": sku, "accepted": n, "backordered": 0, "unitSize": size}
            for seq, (sku, _, n, _, size) in lines.items()
        },
        "ack": {"rev": "2024-03-10T08:00:00+00:00", "txid": "tx-1"},
        "tx": {"id": "tx-1", "status": "Success"},
    }


# --- end to end ------------------------------------------------------------------------


def sscc(serial: int) -> str:
    """A valid SSCC-18: extension 0, GS1 company prefix 0614141, a 9-digit serial."""
    return with_check_digit(f"00614141{serial:09d}")


def dispatch(
    dispatch_id: str,
    shipment_id: str,
    po: str,
    cartons: list[tuple[str, list[tuple[str, int]]]],
    *,
    pro: str | None = "PRO-",
    correction: bool = False,
) -> dict[str, Any]:
    """An LTL dispatch: the cartons on one pallet."""
    d: dict[str, Any] = {
        "dispatchId": dispatch_id,
        "shipmentId": shipment_id,
        "purchaseOrderNumber": po,
        "shipFromWarehouse": "wh-1",
        "shippedDate": (NOW - timedelta(hours=1)).isoformat(),
        "estimatedDeliveryDate": (NOW + timedelta(days=2)).isoformat(),
        "shipmentType": "LessThanTruckLoad",
        "transportationMode": "Road",
        "carrierScac": "ODFL",
        "billOfLading": f"BOL-{shipment_id}",
        "isCorrection": correction,
        "cartons": [
            {"sscc": code, "items": [{"sku": s, "quantityEaches": n} for s, n in goods]}
            for code, goods in cartons
        ],
        "pallets": [{"sscc": pallet_sscc(shipment_id), "cartons": [c for c, _ in cartons]}],
    }
    if pro:
        d["proNumber"] = pro + shipment_id
    return d


def pallet_sscc(shipment_id: str) -> str:
    return with_check_digit(f"30614141{sum(map(ord, shipment_id)) % 10**9:09d}")


def submitted(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(shipment id, Original/Replace) of every confirmation the sandbox accepted."""
    return sorted(
        (sc["shipmentIdentifier"], sc["shipmentConfirmationType"])
        for e in entries
        if e["status"] == 202
        for sc in e["body"]["shipmentConfirmations"]
    )


def latest(records: list[Record]) -> dict[str, dict[str, Any]]:
    """ops.exceptions as compaction leaves it: the last record per exception id."""
    return {r.key.decode(): r.json() for r in records if r.key is not None}


def by_shipment(records: list[Record], kind: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        x = r.json()
        if x["kind"] == kind:
            out.setdefault(x["refs"]["shipmentId"], []).append(x)
    return out


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # as exposed: sorted
    m = re.search(rf"^{name}\{{{re.escape(want)}\}} (\S+)$", text, re.M)
    return float(m[1]) if m else 0.0


def summary(w: WorkerProcess) -> str:
    keep = ("streams_asn", "streams_records_total", "streams_exc", "streams_acknowledgements")
    lines = [ln for ln in w.metrics().splitlines() if ln.startswith(keep) and "bucket" not in ln]
    return "\n".join(lines) + "\n" + w.tail(20)


@pytest.fixture
def asn_settings(kafka: str, tmp_path: Path) -> Settings:
    s = at_sandbox(e2e_settings(kafka, tmp_path))
    asyncio.run(create_topics(s))
    return s


@pytest.mark.kafka
@pytest.mark.slow
async def test_dispatches_become_confirmations_or_exceptions(
    asn_settings: Settings, tmp_path: Path
) -> None:
    s = asn_settings
    bs = s.kafka_bootstrap
    config = e2e_sandbox(s)
    await produce(
        bs,
        s.topic_sku_mappings,
        [
            (b"SKU-CASE", mapping("SKU-CASE", "B0CASE0001", 12)),
            (b"SKU-EACH", mapping("SKU-EACH", "B0EACH0001", None)),
        ],
    )
    await produce(
        bs,
        s.topic_ct_messages,
        [
            (b"ct", stock("e1", "SKU-CASE", "wh-1", 200)),
            (b"ct", stock("e2", "SKU-EACH", "wh-1", 100)),
        ],
    )
    good_a = [(sscc(1), [("SKU-CASE", 24)]), (sscc(2), [("SKU-EACH", 4)])]  # 2 cases, 4 eaches
    d = {
        "A1": dispatch("A1", "SHIP-A", "ASNPO001", good_a),
        # with A's 2 cases, 3 more exceed the 4 cases acknowledged
        "B1": dispatch("B1", "SHIP-B", "ASNPO001", [(sscc(3), [("SKU-CASE", 36)])]),
        "C1": dispatch("C1", "SHIP-C", "ASNPO001", [(sscc(4)[:-1] + "0", [("SKU-EACH", 2)])]),
        "D1": dispatch("D1", "SHIP-D", "ASNPO001", [(sscc(5), [("SKU-EACH", 2)])], pro=None),
        "D2": dispatch("D2", "SHIP-D", "ASNPO001", [(sscc(5), [("SKU-EACH", 2)])]),
        # the correction of A: one more each in the second carton
        "A2": dispatch(
            "A2", "SHIP-A", "ASNPO001", [good_a[0], (sscc(2), [("SKU-EACH", 5)])], correction=True
        ),
        "F1": dispatch("F1", "SHIP-F", "ASNPO002", [(sscc(6), [("SKU-EACH", 5)])]),
        # the same shipment sent again once Amazon's problem is fixed: the same content
        "F2": dispatch("F2", "SHIP-F", "ASNPO002", [(sscc(6), [("SKU-EACH", 5)])]),
        "P1": dispatch("P1", "SHIP-P", "ASNPO003", [(sscc(7), [("SKU-EACH", 3)])]),
    }
    assert sscc(4)[:-1] + "0" != sscc(4)  # C's check digit is wrong

    def send(*names: str) -> list[tuple[bytes, Any]]:
        return [(d[n]["purchaseOrderNumber"].encode(), d[n]) for n in names]

    async with running_sandbox(config, port=s.sandbox_port) as url, aiohttp.ClientSession() as http:
        control = SandboxControl(url, http)
        w = WorkerProcess(s, tmp_path / "worker.log").start()
        try:
            w.wait_ready()
            await wait_for(bs, s.topic_inventory_updates, lambda r: len({x.key for x in r}) == 2)
            await control.add_orders(
                [
                    order(
                        "ASNPO001",
                        [
                            item("1", "B0CASE0001", 4, "Cases", 12),
                            item("2", "B0EACH0001", 10, "Eaches"),
                        ],
                    ),
                    order("ASNPO002", [item("1", "B0EACH0001", 5, "Eaches")]),
                ]
            )
            # a dispatch for a PO not received yet, and two records that are no dispatch
            await produce(
                bs,
                s.topic_dispatches,
                [
                    *send("P1"),
                    (b"ASNPO001", b"{not json"),
                    (b"ASNPO001", {k: v for k, v in d["A1"].items() if k != "shipmentId"}),
                ],
            )

            async def acked(numbers: set[str]) -> bool:
                acks = await control.received("submitAcknowledgement")
                done = {
                    a["purchaseOrderNumber"]
                    for e in acks
                    if e["status"] == 202
                    for a in e["body"]["acknowledgements"]
                }
                return numbers <= done

            for _ in range(120):
                if await acked({"ASNPO001", "ASNPO002"}):
                    break
                await asyncio.sleep(0.25)
            assert await acked({"ASNPO001", "ASNPO002"}), summary(w)
            # Amazon will fail every shipment transaction naming ASNPO002 (its ack went through)
            await control.set_faults({"transactionFailures": {"purchaseOrders": ["ASNPO002"]}})
            await asyncio.sleep(1.0)  # the worker records the ack it just submitted
            await produce(bs, s.topic_dispatches, send("A1", "B1", "C1", "D1", "F1"))

            def first_round(r: list[Record]) -> bool:
                invalid = by_shipment(r, "asn-invalid")
                failed = by_shipment(r, "asn-transaction-failed")
                return {"SHIP-B", "SHIP-C", "SHIP-D", "SHIP-P"} <= set(invalid) and "SHIP-F" in set(
                    failed
                )

            exc = await wait_for(bs, s.topic_exceptions, first_round)
            assert first_round(exc), summary(w)
            first = {k: v[0] for k, v in by_shipment(exc, "asn-invalid").items()}
            assert "not acknowledged" in first["SHIP-P"]["rootCause"] or (
                "unknown" in first["SHIP-P"]["rootCause"]
            )
            assert {v["code"] for v in first["SHIP-D"]["violations"]} == {
                "MISSING_CARRIER_REFERENCE"
            }

            # corrections: D with its PRO (an Original: D1 was never sent), A as a Replace;
            # redeliveries of A1 and A2 send nothing; PO 3 arrives, so P's dispatch goes out;
            # Amazon answers 503 twice on the way, which must cost nothing but time; F's
            # failure is fixed at Amazon and F is sent again, with the same content
            failed_first = by_shipment(exc, "asn-transaction-failed")["SHIP-F"][0]
            assert failed_first["status"] == "open"
            assert "INVALID_ORDER_ID" in failed_first["rootCause"]
            await control.set_faults(
                {
                    "operations": {SUBMIT: {"failNext": 2}},
                    "transactionFailures": {"purchaseOrders": []},
                }
            )
            await produce(bs, s.topic_dispatches, send("D2", "A2", "A1", "A2", "D1", "F2"))
            await control.add_orders(
                [order("ASNPO003", [item("1", "B0EACH0001", 3, "Eaches")], minutes_ago=5)]
            )
            want = [
                ("SHIP-A", "Original"),
                ("SHIP-A", "Replace"),
                ("SHIP-D", "Original"),
                ("SHIP-F", "Original"),
                ("SHIP-F", "Original"),
                ("SHIP-P", "Original"),
            ]

            async def all_accepted() -> bool:
                text = w.metrics()
                return metric(text, "streams_asn_total", outcome="accepted") >= 5 and (
                    metric(text, "streams_asn_total", outcome="failed") >= 1
                )

            for _ in range(160):
                if await all_accepted():
                    break
                await asyncio.sleep(0.25)
            assert await all_accepted(), summary(w)
            # anything that would be sent twice has had time to be
            await produce(bs, s.topic_dispatches, send("A2", "D2"))
            await asyncio.sleep(2.5)

            # Amazon got exactly one confirmation per shipment version, each valid
            entries = await control.received(SUBMIT)
            assert submitted(entries) == want, summary(w)
            assert [e["status"] for e in entries].count(503) == 2
            for e in entries:
                for sc in e["body"]["shipmentConfirmations"]:
                    assert contract_errors(sc) == []
            replace = next(
                sc
                for e in entries
                for sc in e["body"]["shipmentConfirmations"]
                if sc["shipmentConfirmationType"] == "Replace"
            )
            assert [c["items"][0]["shippedQuantity"] for c in replace["cartons"]] == [
                {"amount": 2, "unitOfMeasure": "Cases", "unitSize": 12},
                {"amount": 5, "unitOfMeasure": "Eaches"},
            ]
            assert replace["shipToParty"] == {"partyId": "ABE2"}
            assert replace["sellingParty"] == {"partyId": "VENDOR1"}

            # what the flow published: keyed by shipment id, valid, nothing for B and C
            published = await read_all(bs, s.topic_shipment_confirmations)
            assert {(r.key, r.json()["shipmentConfirmationType"]) for r in published} == {
                (sid.encode(), kind) for sid, kind in want
            }
            for r in published:
                assert r.key is not None and r.key.decode() == r.json()["shipmentIdentifier"]
                assert contract_errors(r.json()) == []

            # exceptions, as the compacted topic keeps them
            exc = await read_all(bs, s.topic_exceptions)
            now = latest(exc)

            def final(kind: str, sid: str, po: str = "ASNPO001") -> dict[str, Any]:
                x = now[exception_id(kind, Refs(purchaseOrderNumber=po, shipmentId=sid))]
                assert x["owner"] == "fulfilment" and x["refs"]["shipmentId"] == sid
                return x

            over = final("asn-invalid", "SHIP-B")
            assert over["status"] == "open"
            assert [v["code"] for v in over["violations"]] == ["QUANTITY_EXCEEDS_ACKNOWLEDGED"]
            assert "+ 24 on earlier shipments" in over["rootCause"]
            bad = final("asn-invalid", "SHIP-C")
            assert bad["status"] == "open" and "check digit" in bad["rootCause"]
            assert [v["code"] for v in bad["violations"]] == ["INVALID_SSCC"]
            assert final("asn-invalid", "SHIP-D")["status"] == "resolved"
            assert final("asn-invalid", "SHIP-P", "ASNPO003")["status"] == "resolved"
            assert final("asn-transaction-failed", "SHIP-F", "ASNPO002")["status"] == "resolved"
            kinds = {
                (x["kind"], x["refs"]["shipmentId"])
                for x in now.values()
                if "shipmentId" in x["refs"]
            }
            assert ("asn-invalid", "SHIP-A") not in kinds or (
                final("asn-invalid", "SHIP-A")["status"] == "resolved"
            )

            dead = [r.json() for r in await read_all(bs, s.dlq_topic(s.topic_dispatches))]
            assert len(dead) == 2
            assert dead[0]["error"].startswith("not JSON")
            assert "shipmentId" in dead[1]["error"]

            text = w.metrics()
            assert metric(text, "streams_asn_total", outcome="duplicate") >= 4  # A1, A2 x2, D1
            assert metric(text, "streams_transaction_failures_total", kind="shipment") == 1
            assert (
                metric(
                    text, "streams_dlq_records_total", topic=s.topic_dispatches, reason="not_json"
                )
                == 1
            )
            assert metric(text, "streams_last_success_timestamp_seconds", flow="asn_submit") > 0
        finally:
            # no commercetools here: the command flow's retries would hold a clean shutdown
            # for its full timeout, and every assertion is made by now
            w.stop(timeout=5)
