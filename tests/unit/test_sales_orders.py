"""Sales orders for finance (pure): the order draft from a PO's decisions, and the plan for an
existing order (create once, update, replace, cancel, diverge)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from streams.domain.allocation import allocate
from streams.domain.mapping import Money, SkuMapping
from streams.domain.purchase_orders import Order, split_lines
from streams.domain.sales_order_sync import plan_sync, untouched
from streams.domain.sales_orders import (
    HASH_FIELD,
    REVISION_FIELD,
    SalesOrder,
    SalesOrderError,
    build_sales_order,
    cents,
    line_type_draft,
    order_type_draft,
    sales_order_number,
)

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
MAPPINGS = {
    "B0CASE0001": SkuMapping(
        sku="SKU-CASE", asin="B0CASE0001", unitsPerCase=12,
        netCost=Money(amount=Decimal("10.00"), currencyCode="USD"),
    ),
    "B0EACH0001": SkuMapping(
        sku="SKU EACH/1", asin="B0EACH0001",
        netCost=Money(amount=Decimal("2.50"), currencyCode="USD"),
    ),
}  # fmt: skip
TYPES = {"order_type_key": "streams-amazon-order", "line_type_key": "streams-amazon-order-line"}


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def item(seq: str, asin: str, amount: int, unit: str, cost: str, currency: str = "USD",
         size: int | None = None) -> dict[str, Any]:  # fmt: skip
    qty: dict[str, Any] = {"amount": amount, "unitOfMeasure": unit}
    if size:
        qty["unitSize"] = size
    return {
        "itemSequenceNumber": seq,
        "amazonProductIdentifier": asin,
        "orderedQuantity": qty,
        "isBackOrderAllowed": True,
        "netCost": {"currencyCode": currency, "amount": cost},
    }


def raw_order(items: list[dict[str, Any]], changed: datetime | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {
        "purchaseOrderDate": iso(NOW - timedelta(hours=1)),
        "purchaseOrderStateChangedDate": iso(NOW - timedelta(hours=1)),
        "purchaseOrderType": "RegularOrder",
        "shipToParty": {"partyId": "ABE2"},
        "sellingParty": {"partyId": "VENDOR1"},
        "buyingParty": {"partyId": "AMAZON"},
        "items": items,
    }
    if changed:
        details["purchaseOrderChangedDate"] = iso(changed)
    return {"purchaseOrderNumber": "PO1", "purchaseOrderState": "New", "orderDetails": details}


def pos_record(raw: dict[str, Any], stock: dict[str, int], *, acked: bool = True) -> dict[str, Any]:
    """The ``pos`` record the PO flow keeps, with every line decided against ``stock``."""
    lines = split_lines(Order.model_validate(raw), lambda asin, vpi: MAPPINGS.get(asin or ""))
    decisions = {}
    for ln in lines:
        mapping = MAPPINGS.get(ln.amazonProductIdentifier or "")
        d = allocate(ln, stock.get(ln.sku or "", 0), mapping, now=NOW, backorder_lead_days=7)
        decisions[ln.itemSequenceNumber] = d.model_dump(mode="json")
    rev = lines[0].revision.isoformat()
    return {
        "po": "PO1",
        "rev": rev,
        "state": "New",
        "order": raw,
        "lines": {ln.itemSequenceNumber: ln.model_dump(mode="json") for ln in lines},
        "decisions": decisions,
        # submitted to Amazon for this revision (acked) or for an older one
        "ack": {"rev": rev if acked else "older", "hash": "h", "txid": "tx-1"},
    }


ITEMS = [
    item("1", "B0CASE0001", 3, "Cases", "10.00", size=12),  # 24 of 36 eaches in stock
    item("2", "B0EACH0001", 8, "Eaches", "2.50"),  # 5 in stock
    item("3", "B0UNKNOWN1", 2, "Eaches", "1.00"),  # rejected: unknown product
]
STOCK = {"SKU-CASE": 30, "SKU EACH/1": 5}


def build(po: dict[str, Any]) -> SalesOrder | None:
    return build_sales_order(po, **TYPES)


def existing_from(draft: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """What commercetools holds after importing ``draft``."""
    return {
        "id": "o-1",
        "version": 1,
        "orderNumber": draft["orderNumber"],
        "orderState": draft["orderState"],
        "custom": {
            "type": {"typeId": "type", "id": "t-1"},
            "fields": dict(draft["custom"]["fields"]),
        },
        "customLineItems": draft["customLineItems"],
        "syncInfo": [],
        **changes,
    }


# --- the draft --------------------------------------------------------------------------------
def test_accepted_lines_become_custom_line_items_in_eaches() -> None:
    so = build(pos_record(raw_order(ITEMS), STOCK))
    assert so is not None
    draft = so.draft()
    assert draft["orderNumber"] == "AMZ-PO1" == sales_order_number("PO1")
    assert draft["purchaseOrderNumber"] == "PO1" and draft["orderState"] == "Open"
    lines = draft["customLineItems"]
    assert [(ln["name"]["en"], ln["quantity"]) for ln in lines] == [
        ("SKU-CASE", 24),  # 2 cases of 12 accepted, 1 backordered
        ("SKU EACH/1", 5),  # 5 of 8 accepted, 3 rejected; line 3 had nothing accepted
    ]
    case, each = lines
    assert case["money"] == {"currencyCode": "USD", "centAmount": 83}  # 10.00 / 12 per each
    assert each["money"] == {"currencyCode": "USD", "centAmount": 250}
    # the total is Amazon's value of the accepted units, exact: 2 x 10.00 + 5 x 2.50
    assert draft["totalPrice"] == {"currencyCode": "USD", "centAmount": 3250}
    assert case["custom"]["type"] == {"typeId": "type", "key": "streams-amazon-order-line"}
    assert case["custom"]["fields"] == {
        "sku": "SKU-CASE",
        "amazonItemSequenceNumber": "1",
        "amazonAcceptedQuantity": 2,
        "amazonBackorderedQuantity": 1,
        "amazonUnitOfMeasure": "Cases",
        "amazonUnitSize": 12,
        "amazonNetCost": {"currencyCode": "USD", "centAmount": 1000},
        "amazonProductIdentifier": "B0CASE0001",
    }
    assert each["slug"] == "SKU-EACH-1" and each["key"] == "po-line-2"
    fields = draft["custom"]["fields"]
    assert fields["amazonPurchaseOrderNumber"] == "PO1"
    assert fields["amazonShipToParty"] == "ABE2"
    assert fields["amazonSellingParty"] == "VENDOR1"
    assert fields["amazonBuyingParty"] == "AMAZON"
    assert fields["amazonPurchaseOrderType"] == "RegularOrder"
    assert fields["amazonPurchaseOrderDate"] == "2026-11-27T08:00:00.000Z"
    assert fields[REVISION_FIELD] == so.revision and fields[HASH_FIELD] == so.content_hash
    assert so.accepted_eaches == 29


def test_nothing_is_built_before_the_acknowledgement_of_the_revision() -> None:
    assert build(pos_record(raw_order(ITEMS), STOCK, acked=False)) is None
    built_only = pos_record(raw_order(ITEMS), STOCK)
    del built_only["ack"]["txid"]  # built, not submitted: Amazon has nothing yet
    assert build(built_only) is None
    failed = pos_record(raw_order(ITEMS), STOCK)
    failed["tx"] = {"id": "tx-1", "status": "Failure"}
    assert build(failed) is None
    po = pos_record(raw_order(ITEMS), STOCK)
    del po["decisions"]["2"]
    assert build(po) is None
    held = pos_record(raw_order([item("1", "B0CASE0001", 1, "Cases", "0", size=None)]), STOCK)
    held["decisions"]["1"]["hold"] = {"kind": "missing-price", "owner": "finance", "reason": "x"}
    assert build(held) is None


def test_a_po_with_nothing_accepted_has_no_lines() -> None:
    so = build(pos_record(raw_order(ITEMS), {}))
    assert so is not None and so.lines == () and so.currency is None
    assert plan_sync(None, so, closed=False).kind == "none"


def test_lines_in_two_currencies_cannot_become_one_order() -> None:
    items = [item("1", "B0EACH0001", 1, "Eaches", "2.50"),
             item("2", "B0EACH0001", 1, "Eaches", "2.50", currency="EUR")]  # fmt: skip
    with pytest.raises(SalesOrderError, match="EUR"):
        build(pos_record(raw_order(items), {"SKU EACH/1": 5}))


def test_money_uses_the_currency_minor_unit_and_rounds_half_even() -> None:
    assert cents(Decimal("10.005"), "USD") == 1000
    assert cents(Decimal("10.015"), "USD") == 1002
    assert cents(Decimal("1234.5"), "JPY") == 1234
    assert cents(Decimal("1.2345"), "KWD") == 1234


def test_the_content_marker_ignores_the_revision_but_not_the_lines() -> None:
    a = build(pos_record(raw_order(ITEMS), STOCK))
    b = build(pos_record(raw_order(ITEMS, changed=NOW), STOCK))
    c = build(pos_record(raw_order(ITEMS), {"SKU-CASE": 30, "SKU EACH/1": 4}))
    assert a is not None and b is not None and c is not None
    assert a.revision != b.revision and a.content_hash == b.content_hash
    assert a.content_hash != c.content_hash


# --- the plan ---------------------------------------------------------------------------------
def test_created_once_then_left_alone() -> None:
    so = build(pos_record(raw_order(ITEMS), STOCK))
    assert so is not None
    plan = plan_sync(None, so, closed=False)
    assert plan.kind == "create" and plan.draft == so.draft()
    assert plan_sync(existing_from(so.draft()), so, closed=False).kind == "none"
    assert plan_sync(None, None, closed=False).kind == "none"  # not settled: wait


def test_a_new_revision_with_the_same_lines_updates_the_revision_only() -> None:
    old = build(pos_record(raw_order(ITEMS), STOCK))
    new = build(pos_record(raw_order(ITEMS, changed=NOW), STOCK))
    assert old is not None and new is not None
    plan = plan_sync(existing_from(old.draft()), new, closed=False)
    assert plan.kind == "update"
    assert plan.actions == (
        {"action": "setCustomField", "name": REVISION_FIELD, "value": new.revision},
    )


def test_changed_lines_replace_an_untouched_order_and_diverge_on_a_touched_one() -> None:
    old = build(pos_record(raw_order(ITEMS), STOCK))
    new = build(pos_record(raw_order(ITEMS, changed=NOW), {"SKU-CASE": 12, "SKU EACH/1": 5}))
    assert old is not None and new is not None
    fresh = existing_from(old.draft())
    assert untouched(fresh)
    plan = plan_sync(fresh, new, closed=False)
    assert plan.kind == "replace" and plan.draft == new.draft()
    assert plan_sync(fresh, new, closed=False, replace_allowed=False).kind == "diverged"
    shipped = existing_from(old.draft(), shipmentState="Shipped")
    plan = plan_sync(shipped, new, closed=False)
    assert plan.kind == "diverged" and "edit it by hand" in plan.reason
    # the order keeps the marker of the lines it still holds
    assert [a["name"] for a in plan.actions] == [REVISION_FIELD]
    for touched in ({"syncInfo": [{"channel": {}}]}, {"paymentState": "Paid"},
                    {"orderState": "Confirmed"}, {"returnInfo": [{}]}):  # fmt: skip
        assert not untouched(existing_from(old.draft(), **touched)), touched


def test_a_closed_po_cancels_the_order_or_completes_a_shipped_one() -> None:
    so = build(pos_record(raw_order(ITEMS), STOCK))
    assert so is not None
    plan = plan_sync(existing_from(so.draft()), so, closed=True)
    assert plan.actions == ({"action": "changeOrderState", "orderState": "Cancelled"},)
    shipped = existing_from(so.draft(), shipmentState="Delivered")
    plan = plan_sync(shipped, None, closed=True)  # closed with pos unsettled or lost
    assert plan.actions == ({"action": "changeOrderState", "orderState": "Complete"},)
    cancelled = existing_from(so.draft(), orderState="Cancelled")
    assert plan_sync(cancelled, so, closed=True).kind == "none"
    assert plan_sync(None, so, closed=True).draft["orderState"] == "Cancelled"  # type: ignore[index]


def test_nothing_accepted_any_more_cancels_and_a_cancelled_order_is_not_reopened() -> None:
    old = build(pos_record(raw_order(ITEMS), STOCK))
    none_left = build(pos_record(raw_order(ITEMS, changed=NOW), {}))
    assert old is not None and none_left is not None
    plan = plan_sync(existing_from(old.draft()), none_left, closed=False)
    assert plan.kind == "update"
    assert {"action": "changeOrderState", "orderState": "Cancelled"} in plan.actions
    later = raw_order(ITEMS, changed=NOW + timedelta(hours=1))
    reopen = build(pos_record(later, {"SKU-CASE": 12}))
    assert reopen is not None
    cancelled = existing_from(old.draft(), orderState="Cancelled")
    assert plan_sync(cancelled, reopen, closed=False).kind == "diverged"


def test_an_order_number_held_by_another_po_or_without_our_fields() -> None:
    so = build(pos_record(raw_order(ITEMS), STOCK))
    assert so is not None
    other = existing_from(so.draft())
    other["custom"]["fields"]["amazonPurchaseOrderNumber"] = "PO9"
    plan = plan_sync(other, so, closed=False)
    assert plan.kind == "diverged" and plan.actions == ()
    bare = existing_from(so.draft(), custom=None)
    plan = plan_sync(bare, so, closed=False)
    assert plan.kind == "replace"  # no marker: its lines are unknown, nothing touched it
    plan = plan_sync(existing_from(so.draft(), custom=None, shipmentState="Shipped"), so,
                     closed=False)  # fmt: skip
    assert plan.kind == "diverged" and plan.actions[0]["action"] == "setCustomType"


def test_types_cover_every_field_the_drafts_write() -> None:
    so = build(pos_record(raw_order(ITEMS), STOCK))
    assert so is not None
    draft = so.draft()
    order_fields = {f["name"] for f in order_type_draft("o")["fieldDefinitions"]}
    line_fields = {f["name"] for f in line_type_draft("l")["fieldDefinitions"]}
    assert set(draft["custom"]["fields"]) <= order_fields
    for ln in draft["customLineItems"]:
        assert set(ln["custom"]["fields"]) <= line_fields
    assert order_type_draft("o")["resourceTypeIds"] == ["order"]
    assert line_type_draft("l")["resourceTypeIds"] == ["custom-line-item"]
