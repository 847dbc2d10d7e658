"""Parsing SP-API Orders (Amazon's own sandbox examples verbatim) and splitting them into lines."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from streams.adapters import amazon_models
from streams.domain.mapping import SkuMapping
from streams.domain.purchase_orders import (
    DateTimeInterval,
    Order,
    PoLine,
    parse_datetime_interval,
    sequence_sort_key,
    split_lines,
)


def sandbox_orders() -> list[dict[str, Any]]:
    """Every Order in Amazon's sandbox examples of getPurchaseOrders and getPurchaseOrder."""
    out: list[dict[str, Any]] = []
    for ex in amazon_models.example("vendorOrders", "getPurchaseOrders"):
        out.extend(ex["response"]["payload"]["orders"])
    for ex in amazon_models.example("vendorOrders", "getPurchaseOrder"):
        out.append(ex["response"]["payload"])
    return out


def raw_order(**items_override: Any) -> dict[str, Any]:
    item = {
        "itemSequenceNumber": "1",
        "amazonProductIdentifier": "B000000001",
        "vendorProductIdentifier": "4000000000001",
        "orderedQuantity": {"amount": 3, "unitOfMeasure": "Cases", "unitSize": 12},
        "isBackOrderAllowed": True,
        "netCost": {"currencyCode": "EUR", "amount": "4.20"},
        **items_override,
    }
    return {
        "purchaseOrderNumber": "PO000001",
        "purchaseOrderState": "New",
        "orderDetails": {
            "purchaseOrderDate": "2024-03-01T10:00:00Z",
            "purchaseOrderStateChangedDate": "2024-03-01T10:00:00Z",
            "shipWindow": "2024-03-04T07:00:00Z--2024-03-08T07:00:00Z",
            "items": [item],
        },
    }


def test_parses_every_sandbox_order_amazon_accepts() -> None:
    orders = sandbox_orders()
    assert len(orders) >= 8
    for raw in orders:
        amazon_errors = amazon_models.validate("vendorOrders", "Order", raw)
        if not amazon_errors:
            order = Order.model_validate(raw)
            assert order.purchaseOrderNumber == raw["purchaseOrderNumber"]


def test_sandbox_order_with_upper_case_cases_and_weight_price() -> None:
    # 3TRD2IAB: Amazon's example says "CASES" (not in its own enum) and prices per POUND.
    raw = next(o for o in sandbox_orders() if o["purchaseOrderNumber"] == "3TRD2IAB")
    order = Order.model_validate(raw)
    assert order.orderDetails is not None
    item = order.orderDetails.items[0]
    assert item.orderedQuantity.unitOfMeasure == "Cases"
    assert item.netCost is not None and item.netCost.unitOfMeasure == "POUNDS"
    (line,) = split_lines(order, lambda _a, _v: None)
    assert (line.eaches, line.unitSize) == (50, 10)


def test_sandbox_dynamic_templates_missing_required_fields_are_refused() -> None:
    # mock-purchaseOrderNumber1/2 lack purchaseOrderState: Amazon's model refuses them too.
    for raw in sandbox_orders():
        if raw["purchaseOrderNumber"].startswith("mock-"):
            assert amazon_models.validate("vendorOrders", "Order", raw)
            with pytest.raises(ValidationError):
                Order.model_validate(raw)


def test_order_without_details_parses_but_cannot_be_split() -> None:
    order = Order.model_validate({"purchaseOrderNumber": "2JK3S9XY", "purchaseOrderState": "New"})
    assert order.orderDetails is None
    with pytest.raises(ValueError, match="no orderDetails"):
        split_lines(order, lambda _a, _v: None)


def test_unknown_fields_are_ignored() -> None:
    raw = raw_order(someNewAmazonField={"x": 1})
    raw["orderDetails"]["anotherNewField"] = "y"
    raw["extra"] = True
    Order.model_validate(raw)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("isBackOrderAllowed", "true"),
        ("itemSequenceNumber", 1),
        ("netCost", {"currencyCode": "EUR", "amount": 4.2}),
        ("netCost", {"currencyCode": "EUR", "amount": "4,20"}),
        ("netCost", {"currencyCode": "EURO", "amount": "4.20"}),
        ("orderedQuantity", {"amount": 1.5, "unitOfMeasure": "Eaches"}),
        ("orderedQuantity", {"amount": 1, "unitOfMeasure": "Pallets"}),
    ],
)
def test_strict_on_fields_we_use(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        Order.model_validate(raw_order(**{field: value}))


def test_strict_on_order_level_fields() -> None:
    for path, value in [
        (("purchaseOrderState",), "Open"),
        (("orderDetails", "purchaseOrderDate"), "2024-03-01T10:00:00"),  # no timezone
        (("orderDetails", "shipWindow"), "next week"),
        (("orderDetails", "items"), []),
    ]:
        raw = raw_order()
        target = raw
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = value
        with pytest.raises(ValidationError):
            Order.model_validate(raw)


def test_duplicate_item_sequence_numbers_are_refused() -> None:
    raw = raw_order()
    raw["orderDetails"]["items"].append(copy.deepcopy(raw["orderDetails"]["items"][0]))
    with pytest.raises(ValidationError, match="duplicate itemSequenceNumber"):
        Order.model_validate(raw)


def test_money_keeps_decimal_exactly() -> None:
    order = Order.model_validate(raw_order(netCost={"currencyCode": "EUR", "amount": "0.10"}))
    assert order.orderDetails is not None
    cost = order.orderDetails.items[0].netCost
    assert cost is not None and cost.amount == Decimal("0.10")


# -- DateTimeInterval --------------------------------------------------------------------------

T1 = datetime(2007, 3, 1, 13, tzinfo=UTC)
T2 = datetime(2007, 3, 11, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2007-03-01T13:00:00Z--2007-03-11T15:30:00Z",  # the model's form
        "2007-03-01T13:00:00Z-2007-03-11T15:30:00Z",  # the docs page's form
        " 2007-03-01T13:00:00Z - 2007-03-11T15:30:00Z ",
        "2007-03-01T13:00:00.000Z--2007-03-11T15:30:00.000Z",
        "2007-03-01T13:00Z--2007-03-11T15:30Z",
    ],
)
def test_interval_accepts_both_separators(text: str) -> None:
    assert parse_datetime_interval(text) == DateTimeInterval(start=T1, end=T2)


def test_interval_with_offsets_and_single_hyphen() -> None:
    iv = parse_datetime_interval("2007-03-01T08:00:00-05:00-2007-03-11T10:30:00-05:00")
    assert (iv.start, iv.end) == (T1, T2)
    assert iv.start.utcoffset() == timedelta(hours=-5)
    iv2 = parse_datetime_interval("2007-03-01T14:00:00+01:00--2007-03-11T15:30:00+0000")
    assert (iv2.start, iv2.end) == (T1, T2)


@pytest.mark.parametrize(
    "text",
    [
        "2007-03-11T15:30:00Z--2007-03-01T13:00:00Z",  # ends before it starts
        "2007-03-01T13:00:00--2007-03-11T15:30:00",  # no timezone
        "08/25/2021 - 08/31/2021",  # vendorShipments' free text is not this type
        "2007-03-01T13:00:00Z",
        "2007-02-30T13:00:00Z--2007-03-11T15:30:00Z",
    ],
)
def test_interval_rejects(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_datetime_interval(text)


def test_interval_serialises_in_the_model_form() -> None:
    iv = parse_datetime_interval("2007-03-01T13:00:00Z-2007-03-11T15:30:00Z")
    assert iv.model_dump() == "2007-03-01T13:00:00Z--2007-03-11T15:30:00Z"
    order = Order.model_validate(raw_order())
    again = Order.model_validate_json(order.model_dump_json())
    assert again == order


# -- split_lines -------------------------------------------------------------------------------


def test_split_sandbox_order_verbatim() -> None:
    raw = next(o for o in sandbox_orders() if o["purchaseOrderNumber"] == "2JK3S9VC")
    order = Order.model_validate(raw)
    asked: list[tuple[str | None, str | None]] = []

    def resolve(asin: str | None, vpi: str | None) -> SkuMapping | None:
        asked.append((asin, vpi))
        return SkuMapping(sku=f"SKU-{vpi}", asin=asin) if asin != "B07MC84QAB" else None

    lines = split_lines(order, resolve)
    assert asked[0] == ("B07DFVDRAB", "8806098286500")
    assert [ln.key for ln in lines] == ["2JK3S9VC#1", "2JK3S9VC#2", "2JK3S9VC#3"]
    assert {ln.lineCount for ln in lines} == {3}
    assert [ln.sku for ln in lines] == ["SKU-8806098286500", "SKU-8806098286123", None]
    assert [ln.eaches for ln in lines] == [1, 2, 13]
    assert all(ln.hold is None and not ln.isBackOrderAllowed for ln in lines)
    assert lines[0].netCost is not None and lines[0].netCost.amount == Decimal("346.27")
    assert lines[0].shipWindowEnd == datetime(2019, 8, 27, 7, tzinfo=UTC)
    # A changed PO's lines carry the change date, so a newer version supersedes an older one.
    assert lines[0].revision == datetime(2019, 8, 22, 16, 5, tzinfo=UTC)


def test_split_orders_lines_numerically_and_keeps_the_count() -> None:
    raw = raw_order()
    template = raw["orderDetails"]["items"][0]
    raw["orderDetails"]["items"] = [
        {**template, "itemSequenceNumber": s} for s in ["10", "2", "1", "00003"]
    ]
    lines = split_lines(Order.model_validate(raw), lambda _a, _v: None)
    assert [ln.itemSequenceNumber for ln in lines] == ["1", "2", "00003", "10"]
    assert {ln.lineCount for ln in lines} == {4}
    assert sorted(["b", "10", "a", "9"], key=sequence_sort_key) == ["9", "10", "a", "b"]


def test_split_holds_a_case_line_without_any_size() -> None:
    raw = raw_order(orderedQuantity={"amount": 3, "unitOfMeasure": "Cases"})
    mapping = SkuMapping(sku="Y", asin="B000000001")
    (line,) = split_lines(Order.model_validate(raw), lambda _a, _v: mapping)
    assert line.eaches is None
    assert line.hold == (
        "PO PO000001 line 1: ordered in Cases but no unitSize and no unitsPerCase for SKU Y"
    )


def test_split_uses_units_per_case_when_unit_size_missing() -> None:
    raw = raw_order(orderedQuantity={"amount": 3, "unitOfMeasure": "Cases"})
    mapping = SkuMapping(sku="Y", asin="B000000001", unitsPerCase=6)
    (line,) = split_lines(Order.model_validate(raw), lambda _a, _v: mapping)
    assert (line.eaches, line.unitSize, line.hold) == (18, 6, None)


def test_split_cancelled_line_has_zero_eaches_and_no_hold() -> None:
    # Amazon's TestPO1 line 1: quantity updated to 0 when Amazon cancels the item.
    raw = next(o for o in sandbox_orders() if o["purchaseOrderNumber"] == "TestPO1")
    lines = split_lines(Order.model_validate(raw), lambda _a, _v: None)
    assert lines[0].cancelled and lines[0].eaches == 0 and lines[0].hold is None
    assert not lines[1].cancelled and lines[1].eaches == 10


def test_po_line_round_trips_through_json() -> None:
    raw = raw_order()
    raw["orderDetails"]["deliveryWindow"] = "2024-03-09T07:00:00+01:00--2024-03-10T07:00:00+01:00"
    (line,) = split_lines(Order.model_validate(raw), lambda _a, _v: None)
    data = line.model_dump_json()
    assert '"key":"PO000001#1"' in data
    again = PoLine.model_validate_json(data)
    assert again == line
    assert again.deliveryWindowEnd == datetime(2024, 3, 10, 7, tzinfo=timezone(timedelta(hours=1)))
