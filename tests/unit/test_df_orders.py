"""Direct Fulfillment orders (pure): redaction, conversion to lines, PO and DF lines competing
for the last units, the acknowledgement, the shipment confirmation, the order's book."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from streams.adapters import amazon_models
from streams.domain import df_ack, df_book
from streams.domain.ctmessages import StockObservation
from streams.domain.df_orders import df_lines, df_number, df_po_key, parse_df_order, redact
from streams.domain.df_record import DfRecord, view
from streams.domain.dispatch import Dispatch
from streams.domain.inventory import SkuState
from streams.domain.mapping import Money, SkuMapping
from streams.domain.purchase_orders import ItemQuantity, PoLine
from streams.domain.purchase_orders import Money as PoMoney

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
PLANTED = {
    "name": "Zebulon Quartermaine",
    "attention": "Zebulon Q.",
    "addressLine1": "77 Xylophone Lane",
    "city": "Quuxville",
    "stateOrRegion": "CA",
    "postalCode": "94999",
    "countryCode": "US",
    "phone": "+1-555-0199-777",
}
SECRETS = ("Zebulon", "Xylophone", "Quuxville", "94999", "0199-777", "Happy birthday Zeb")
MAPPINGS = {
    "B0DF000001": SkuMapping(sku="SKU-1", asin="B0DF000001",
                             netCost=Money(amount=Decimal("5.00"), currencyCode="USD")),
    "B0DF000002": SkuMapping(sku="SKU-2", asin="B0DF000002"),
}  # fmt: skip


def df_order(number: str = "DF1", *items: tuple[str, int]) -> dict[str, Any]:
    """A DF Order as the 2021-12-28 API returns it, with a customer's address planted."""
    items = items or (("B0DF000001", 2),)
    return {
        "purchaseOrderNumber": number,
        "orderDetails": {
            "customerOrderNumber": "111-2223334-5556667",
            "orderDate": "2026-12-06T08:00:00Z",
            "orderStatus": "NEW",
            "shipmentDetails": {
                "isPriorityShipment": False,
                "isScheduledDeliveryShipment": False,
                "isPslipRequired": False,
                "isGift": True,
                "shipMethod": "UPS_GROUND",
                "shipmentDates": {"requiredShipDate": "2026-12-07T20:00:00Z"},
                "messageToCustomer": "Thank you",
            },
            "sellingParty": {"partyId": "DFVENDOR"},
            "shipFromParty": {"partyId": "WH1"},
            "shipToParty": dict(PLANTED),
            "billToParty": {"partyId": "AMZBILL", "address": dict(PLANTED)},
            "items": [
                {
                    "itemSequenceNumber": str(i),
                    "buyerProductIdentifier": asin,
                    "orderedQuantity": {"amount": q, "unitOfMeasure": "Each"},
                    "netPrice": {"currencyCode": "USD", "amount": "5.00"},
                    "giftDetails": {"giftMessage": "Happy birthday Zeb", "giftWrapId": "W1"},
                }
                for i, (asin, q) in enumerate(items, 1)
            ],
        },
    }


def resolve(asin: str | None, vpi: str | None) -> SkuMapping | None:
    return MAPPINGS.get(asin or "")


def assert_no_pii(data: Any) -> None:
    text = data if isinstance(data, str) else orjson.dumps(data).decode()
    for s in SECRETS:
        assert s not in text, f"{s!r} leaked"


@pytest.fixture
def models_dir() -> str:
    d = os.environ.get("STREAMS_AMAZON_MODELS_DIR")
    if not d:
        pytest.skip("Amazon's DF models not available: set STREAMS_AMAZON_MODELS_DIR")
    return d


# --- redaction ---------------------------------------------------------------------------
def test_redaction_hashes_every_address_field_and_is_stable() -> None:
    raw = df_order()
    red = redact(raw, b"k")
    assert_no_pii(red)
    d = red["orderDetails"]
    assert d["shipToParty"].startswith("hmac-sha256:")
    assert d["billToParty"]["partyId"] == "AMZBILL"  # what the flow needs stays
    assert d["items"][0]["orderedQuantity"]["amount"] == 2
    assert redact(red, b"k") == red  # redacting twice changes nothing
    assert redact(df_order(), b"k") == red  # the same address hashes the same
    assert redact(df_order(), b"other")["orderDetails"]["shipToParty"] != d["shipToParty"]
    # an upstream that hashed already keeps its hash object
    pre = {"shipToParty": {"addressHash": "hmac-sha256:abc"}}
    assert redact(pre) == pre
    parse_df_order(red)  # a redacted order is still a valid DF Order for the flow


def test_parse_errors_name_fields_not_values() -> None:
    bad = redact(df_order())
    bad["orderDetails"]["items"][0]["orderedQuantity"]["amount"] = -1
    del bad["orderDetails"]["shipmentDetails"]
    with pytest.raises(ValueError) as exc:
        parse_df_order(bad)
    assert "shipmentDetails" in str(exc.value)
    assert_no_pii(str(exc.value))


# --- conversion ----------------------------------------------------------------------------
def test_lines_are_eaches_without_backorder_and_keyed_apart_from_retail() -> None:
    order = parse_df_order(redact(df_order("DF1", ("B0DF000001", 2), ("B0UNKNOWN1", 1))))
    lines = df_lines(order, resolve)
    assert [ln.key for ln in lines] == ["DF-DF1#1", "DF-DF1#2"]
    first = lines[0]
    assert first.sku == "SKU-1" and first.eaches == 2 and first.unitSize == 1
    assert not first.isBackOrderAllowed
    assert first.netCost is not None and first.netCost.amount == Decimal("5.00")
    assert lines[1].sku is None
    assert df_number(df_po_key("DF1")) == "DF1" and df_number("PO1") is None


# --- allocation: PO and DF lines compete for the last units ----------------------------------
def sku_state(available: int) -> SkuState:
    s = SkuState("SKU-1", mapping=MAPPINGS["B0DF000001"])
    s.apply(StockObservation("SKU-1", "ch", "e-1", 1, "set", available=available,
                             on_stock=available, msg_id="m1"))  # fmt: skip
    return s


def po_line(n: int) -> PoLine:
    return PoLine(
        purchaseOrderNumber="PO1", itemSequenceNumber="1", lineCount=1, revision=NOW,
        amazonProductIdentifier="B0DF000001", sku="SKU-1",
        orderedQuantity=ItemQuantity(amount=n, unitOfMeasure="Eaches"), eaches=n, unitSize=1,
        isBackOrderAllowed=True,
        netCost=PoMoney(amount=Decimal("5.00"), currencyCode="USD"),
    )  # fmt: skip


def decide(s: SkuState, line: PoLine) -> Any:
    result, commands = s.allocate(line, NOW, backorder_lead_days=7, price_tolerance=Decimal("0.01"))
    return result, commands


def test_the_earlier_arrival_wins_the_last_units_and_none_is_promised_twice() -> None:
    df_line = df_lines(parse_df_order(redact(df_order())), resolve)[0]  # 2 eaches
    # the PO line first: it takes 2 of 3, the DF order cannot be shipped in full
    s = sku_state(3)
    po, _ = decide(s, po_line(2))
    df, df_cmds = decide(s, df_line)
    assert po.decision.accepted == 2
    assert df.decision.accepted == 1 and df.decision.rejected == 1
    v = df_ack.verdict([df_line], {"1": df.decision.model_dump(mode="json")})
    assert isinstance(v, df_ack.Verdict)
    assert (v.outcome, v.code, v.release) == ("rejected", "03", ("1",))
    # the rejected DF line gives its unit back; availability is what the PO line left
    s.release_line(df_line.key, df_line.purchaseOrderNumber, "1", NOW)
    assert s.availability() == 1
    # redelivery never allocates twice
    again, _ = decide(s, df_line)
    assert again.replayed and s.availability() == 1
    assert [(c["action"], c["quantity"]) for c in df_cmds] == [("reserve", 1)]
    # the DF order first: it takes 2, the PO line gets 1 and backorders the rest
    s = sku_state(3)
    df, _ = decide(s, df_line)
    po, _ = decide(s, po_line(2))
    assert df.decision.status == "Accepted" and po.decision.accepted == 1
    assert po.decision.backordered == 1
    assert s.availability() == 0  # the DF inventory feed reports the lower availability


# --- acknowledgement -----------------------------------------------------------------------
def test_ack_accepts_only_a_complete_order_and_validates(models_dir: str) -> None:
    order = parse_df_order(redact(df_order("DF1", ("B0DF000001", 2), ("B0DF000002", 1))))
    lines = df_lines(order, resolve)
    full = {ln.itemSequenceNumber: {"accepted": ln.eaches, "allocatedEaches": ln.eaches}
            for ln in lines}  # fmt: skip
    assert df_ack.verdict(lines, {"1": full["1"]}) is None  # not every line decided
    v = df_ack.verdict(lines, full)
    assert isinstance(v, df_ack.Verdict) and (v.outcome, v.code) == ("accepted", "00")
    ack = df_ack.build_acknowledgement("DF1", lines, v, "DFVENDOR", "WH1", NOW)
    assert ack["acknowledgementStatus"]["code"] == "00"
    assert [i["acknowledgedQuantity"]["amount"] for i in ack["itemAcknowledgements"]] == [2, 1]
    assert df_ack.check_acknowledgement(ack) == []
    body = df_ack.request_body([ack])
    assert (
        validate_df(
            "vendorDirectFulfillmentOrders", "SubmitAcknowledgementRequest", body, models_dir
        )
        == []
    )
    unknown = {
        **full,
        "2": {"accepted": 0, "rejected": 1, "rejectionReason": "InvalidProductIdentifier"},
    }
    v = df_ack.verdict(lines, unknown)
    assert isinstance(v, df_ack.Verdict)
    assert (v.outcome, v.code, v.release) == ("rejected", "02", ("1",))
    held = {**full, "2": {"hold": {"reason": "no price"}}}
    assert isinstance(df_ack.verdict(lines, held), str)
    assert df_ack.check_acknowledgement({**ack, "itemAcknowledgements": []})


def test_model_missing_is_reported_not_silent(tmp_path: Any) -> None:
    before = amazon_models.UNVALIDATED["df-shipping"]
    assert validate_df("vendorDirectFulfillmentShipping", "Item", {}, str(tmp_path)) == []
    assert amazon_models.UNVALIDATED["df-shipping"] == before + 1
    assert "STREAMS_AMAZON_MODELS_DIR" in str(amazon_models.ModelUnavailable("df-shipping"))


DF_APIS = {
    "vendorDirectFulfillmentOrders": "df-orders",
    "vendorDirectFulfillmentShipping": "df-shipping",
    "vendorDirectFulfillmentTransactions": "df-transactions",
}


def validate_df(api: str, definition: str, body: Any, models_dir: str) -> list[str]:
    """Amazon's model check of ``body`` with the models looked up in ``models_dir``."""
    amazon_models.configure(models_dir)
    try:
        return amazon_models.validate(DF_APIS[api], definition, body)
    finally:
        amazon_models.configure(None)


# --- the book: one order from intake to confirmation -------------------------------------
def ctx(now: float | None = None) -> df_book.Context:
    return df_book.Context(resolve=resolve, now=now or NOW.timestamp(), selling_party="V",
                           ack_within_s=4 * 3600)  # fmt: skip


def decided(rec: DfRecord, available: dict[str, int]) -> list[dict[str, Any]]:
    out = []
    for ln in rec.po_lines():
        s = sku_state(available.get(ln.sku or "", 0))
        result, _ = decide(s, ln)
        out.append(result.decision.model_dump(mode="json"))
    return out


def dispatch(**extra: Any) -> dict[str, Any]:
    carton = {"sscc": "001234560000000018", "trackingNumber": "1Z999",
              "items": [{"sku": "SKU-1", "quantityEaches": 2}],
              "weight": {"value": "1.2", "unitOfMeasure": "KG"}}  # fmt: skip
    return {
        "dispatchId": "D1", "shipmentId": "S1", "purchaseOrderNumber": "DF1",
        "shipFromWarehouse": "WH1", "shippedDate": "2026-12-06T12:00:00Z",
        "shipmentType": "SmallParcel", "carrierScac": "UPSN", "cartons": [carton], **extra,
    }  # fmt: skip


def test_book_acknowledges_once_confirms_after_dispatch(models_dir: str) -> None:
    raw = redact(df_order())
    rec, eff = df_book.apply(None, {"t": "order", "raw": raw}, ctx())
    assert rec is not None and eff.outcome == "received"
    assert [i["t"] for i in eff.sku] == ["alloc"] and eff.sku[0]["df"] == 1
    _, dup = df_book.apply(rec, {"t": "order", "raw": raw}, ctx())
    assert dup.outcome == "duplicate" and not dup.sku
    assert df_book.resend(rec).sku == eff.sku  # a redelivery repeats the undecided lines
    ds = decided(rec, {"SKU-1": 5})
    _, eff = df_book.apply(rec, {"t": "decisions", "ds": ds}, ctx())
    assert [o["kind"] for o in eff.outbox] == ["ack"] and rec.outcome == "accepted"
    ack = eff.outbox[0]
    _, again = df_book.apply(rec, {"t": "decisions", "ds": ds}, ctx(NOW.timestamp() + 60))
    assert not again.outbox  # never a second acknowledgement
    assert not df_book.submitted(rec, "ack", "ack", ack["hash"])
    assert df_book.submitted(rec, "ack", "ack", "other-digest")
    # a dispatch before the ack is submitted waits for it
    _, eff = df_book.apply(rec, {"t": "dispatch", "d": dispatch()}, ctx())
    assert not eff.outbox and rec.shipments["D1"]["status"] == "waiting"
    msg = {"t": "submitted", "kind": "ack", "hash": ack["hash"], "txid": "T1", "at": 1.0}
    _, eff = df_book.apply(rec, msg, ctx())
    assert rec.acknowledged and "acknowledged" in eff.counts
    assert [o["kind"] for o in eff.outbox] == ["confirm"]
    conf = eff.outbox[0]["body"]
    body = {"shipmentConfirmations": [conf]}
    assert (
        validate_df(
            "vendorDirectFulfillmentShipping",
            "SubmitShipmentConfirmationsRequest",
            body,
            models_dir,
        )
        == []
    )
    assert conf["containers"][0]["trackingNumber"] == "1Z999"
    assert_no_pii(rec.to_json())
    # the same dispatch again: nothing new
    _, eff = df_book.apply(rec, {"t": "dispatch", "d": dispatch()}, ctx())
    assert not eff.outbox


def test_book_status_update_and_invalid_dispatch(models_dir: str) -> None:
    rec, _ = df_book.apply(None, {"t": "order", "raw": redact(df_order())}, ctx())
    assert rec is not None
    _, eff = df_book.apply(rec, {"t": "decisions", "ds": decided(rec, {"SKU-1": 5})}, ctx())
    h = eff.outbox[0]["hash"]
    df_book.apply(rec, {"t": "submitted", "kind": "ack", "hash": h, "txid": "T", "at": 1}, ctx())
    status = {"statusCode": "D1", "reasonCode": "NS", "statusDateTime": "2026-12-06T13:00:00Z",
              "location": {"name": "UPS hub", "addressLine1": "1 Hub Rd", "city": "Reno",
                           "stateOrRegion": "NV", "countryCode": "US"}}  # fmt: skip
    _, eff = df_book.apply(rec, {"t": "dispatch", "d": dispatch(status=status)}, ctx())
    kinds = {o["kind"]: o["body"] for o in eff.outbox}
    assert set(kinds) == {"confirm", "status"}
    body = {"shipmentStatusUpdates": [kinds["status"]]}
    assert (
        validate_df(
            "vendorDirectFulfillmentShipping",
            "SubmitShipmentStatusUpdatesRequest",
            body,
            models_dir,
        )
        == []
    )
    bad = dispatch(dispatchId="D2")
    del bad["cartons"][0]["weight"]
    bad["cartons"][0]["items"][0]["quantityEaches"] = 3
    _, eff = df_book.apply(rec, {"t": "dispatch", "d": bad}, ctx())
    assert not eff.outbox
    [(kind, _, cause)] = eff.exceptions
    assert kind == "df-confirmation-invalid" and "weight" in cause and "3 shipped" in cause


def test_rejected_order_releases_and_failures_raise_owned_exceptions() -> None:
    raw = redact(df_order("DF2", ("B0DF000001", 1), ("B0DF000002", 4)))
    rec, _ = df_book.apply(None, {"t": "order", "raw": raw}, ctx())
    assert rec is not None
    _, eff = df_book.apply(rec, {"t": "decisions", "ds": decided(rec, {"SKU-1": 5})}, ctx())
    assert rec.outcome == "rejected" and rec.ack["code"] == "03"
    assert [(i["t"], i["sku"]) for i in eff.sku] == [("release", "SKU-1")]
    assert [(i["t"], i["sku"]) for i in df_book.resend(rec).sku] == [("release", "SKU-1")]
    h = eff.outbox[0]["hash"]
    df_book.apply(rec, {"t": "submitted", "kind": "ack", "hash": h, "txid": "T9", "at": 1}, ctx())
    assert df_book.processing(rec) == [("T9", ("DF2", "ack", "ack", 1.0))]
    tx = {"id": "T9", "status": "Failure", "errors": [{"code": "X", "message": "bad"}]}
    _, eff = df_book.apply(rec, {"t": "tx", "kind": "ack", "tx": tx}, ctx())
    assert [e[0] for e in eff.exceptions] == ["df-ack-transaction-failed"]
    assert eff.settled == ["T9"] and not df_book.processing(rec)
    # a dispatch of a rejected order confirms nothing
    _, eff = df_book.apply(rec, {"t": "dispatch", "d": dispatch(purchaseOrderNumber="DF2")}, ctx())
    assert not eff.outbox and eff.exceptions[0][0] == "df-confirmation-invalid"


def test_deadline_is_reported_once() -> None:
    rec, _ = df_book.apply(None, {"t": "order", "raw": redact(df_order())}, ctx())
    assert rec is not None
    assert rec.ack_by == datetime(2026, 12, 6, 12, 0, tzinfo=UTC).timestamp()
    _, eff = df_book.apply(rec, {"t": "late"}, ctx())
    assert [e[0] for e in eff.exceptions] == ["df-deadline"] and eff.counts == ["late"]
    _, eff = df_book.apply(rec, {"t": "late"}, ctx())
    assert not eff.exceptions


def test_dispatch_model_still_parses_df_extras() -> None:
    Dispatch.model_validate(dispatch(shipMethod="UPS_GROUND", status={"statusCode": "X"}))


def test_view_shows_quantities_and_deadlines_but_no_address() -> None:
    rec, _ = df_book.apply(None, {"t": "order", "raw": redact(df_order())}, ctx())
    assert rec is not None
    df_book.apply(rec, {"t": "decisions", "ds": decided(rec, {"SKU-1": 5})}, ctx())
    v = view(rec, NOW.timestamp())
    assert v["outcome"] == "accepted" and v["ackBy"] == "2026-12-06T12:00:00Z"
    assert v["lines"] == [
        {"itemSequenceNumber": "1", "sku": "SKU-1", "ordered": 2, "accepted": 2,
         "allocatedEaches": 2, "status": "Accepted"}
    ]  # fmt: skip
    assert v["acknowledgement"]["code"] == "00" and not v["late"]
    assert "hmac-sha256" not in orjson.dumps(v).decode()
    assert_no_pii(v)


def test_reconciliation_lists_df_orders_with_quantities() -> None:
    from streams.report import df_rows

    rec, _ = df_book.apply(None, {"t": "order", "raw": redact(df_order())}, ctx())
    assert rec is not None
    _, eff = df_book.apply(rec, {"t": "decisions", "ds": decided(rec, {"SKU-1": 5})}, ctx())
    h = eff.outbox[0]["hash"]
    df_book.apply(rec, {"t": "submitted", "kind": "ack", "hash": h, "txid": "T", "at": 1}, ctx())
    _, eff = df_book.apply(rec, {"t": "dispatch", "d": dispatch()}, ctx())
    hc = eff.outbox[0]["hash"]
    msg = {"t": "submitted", "kind": "confirm", "sid": "D1", "hash": hc, "txid": "C1", "at": 2}
    df_book.apply(rec, msg, ctx())
    rejected, _ = df_book.apply(None, {"t": "order", "raw": redact(df_order("DF9"))}, ctx())
    assert rejected is not None
    df_book.apply(rejected, {"t": "decisions", "ds": decided(rejected, {})}, ctx())
    rows = df_rows({"DF1": rec.to_json(), "DF9": rejected.to_json()}, "2026-12")
    got = [(r.po_number, r.ordered_eaches, r.accepted_eaches, r.rejected_eaches,
            r.shipped_eaches, r.discrepancies) for r in rows]  # fmt: skip
    assert got == [("DF-DF1", 2, 2, 0, 2, ""), ("DF-DF9", 2, 0, 2, 0, "")]
    assert df_rows({"DF1": rec.to_json()}, "2026-11") == []


def test_a_cancelled_order_gives_its_stock_back_once() -> None:
    rec, _ = df_book.apply(None, {"t": "order", "raw": redact(df_order())}, ctx())
    assert rec is not None
    df_book.apply(rec, {"t": "decisions", "ds": decided(rec, {"SKU-1": 5})}, ctx())
    cancelled = redact(df_order())
    cancelled["orderDetails"]["orderStatus"] = "CANCELLED"
    _, eff = df_book.apply(rec, {"t": "order", "raw": cancelled}, ctx())
    assert eff.outcome == "cancelled" and rec.outcome == "cancelled"
    assert [(i["t"], i["sku"], i["keep"]) for i in eff.sku] == [("release", "SKU-1", 0)]
    _, eff = df_book.apply(rec, {"t": "order", "raw": cancelled}, ctx())
    assert eff.outcome == "duplicate" and not eff.sku


def test_a_decision_after_the_cancellation_is_given_back() -> None:
    rec, _ = df_book.apply(None, {"t": "order", "raw": redact(df_order())}, ctx())
    assert rec is not None
    cancelled = redact(df_order())
    cancelled["orderDetails"]["orderStatus"] = "CANCELLED"
    _, eff = df_book.apply(rec, {"t": "order", "raw": cancelled}, ctx())
    assert not eff.sku
    _, eff = df_book.apply(rec, {"t": "decisions", "ds": decided(rec, {"SKU-1": 5})}, ctx())
    assert [i["t"] for i in eff.sku] == ["release"] and not eff.outbox


def test_a_redelivery_that_changes_nothing_repeats_what_the_saved_record_built() -> None:
    """A worker killed after saving the record and before sending what it built: the
    redelivered message (here the last line decisions) is a no-op; the rule repeats the
    stored acknowledgement, identical, until Amazon took it, and never builds another."""
    rec, first = df_book.apply(None, {"t": "order", "raw": redact(df_order())}, ctx())
    assert rec is not None
    # killed before the lines reached their SKU: the redelivered order sends them again
    _, dup = df_book.apply(rec, {"t": "order", "raw": redact(df_order())}, ctx())
    assert df_book.redelivered(rec, dup).sku == first.sku
    ds = decided(rec, {"SKU-1": 5})
    _, eff = df_book.apply(rec, {"t": "decisions", "ds": ds}, ctx())
    assert df_book.redelivered(rec, eff) is eff  # it did something: as it is
    [ack] = eff.outbox
    saved = DfRecord.from_json(orjson.loads(orjson.dumps(rec.to_json())))
    _, again = df_book.apply(saved, {"t": "decisions", "ds": ds}, ctx(NOW.timestamp() + 60))
    assert not again.changed and not again.outbox
    again = df_book.redelivered(saved, again)
    assert again.outbox == [ack] and not again.sku
    assert orjson.dumps(again.outbox[0]["body"]) == orjson.dumps(ack["body"])  # same bytes
    msg = {"t": "submitted", "kind": "ack", "hash": ack["hash"], "txid": "T1", "at": 1.0}
    df_book.apply(saved, msg, ctx())
    _, late = df_book.apply(saved, {"t": "decisions", "ds": ds}, ctx())
    assert df_book.redelivered(saved, late).outbox == []  # Amazon took it: nothing again
