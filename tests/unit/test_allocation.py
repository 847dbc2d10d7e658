"""Line allocation, the idempotent ledger, the price check and Amazon availability."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.allocation import (
    AllocationLedger,
    allocate,
    available_for_amazon,
    check_price,
)
from streams.domain.mapping import Money as MasterMoney
from streams.domain.mapping import SkuMapping
from streams.domain.purchase_orders import Money, Order, PoLine, split_lines

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
WINDOW_END = datetime(2024, 3, 8, 7, 0, tzinfo=UTC)
LEAD = 14


def mapping(**kw: Any) -> SkuMapping:
    return SkuMapping.model_validate(
        {"sku": "SKU-1", "asin": "B000000001", "unitsPerCase": 12, **kw}
    )


def make_line(
    amount: int = 3,
    unit: str | None = "Cases",
    unit_size: int | None = 12,
    *,
    backorder: bool = True,
    cost: str | None = "4.20",
    seq: str = "1",
    changed: str | None = None,
    mapped: SkuMapping | None = None,
) -> PoLine:
    qty: dict[str, Any] = {"amount": amount, "unitOfMeasure": unit}
    if unit_size is not None:
        qty["unitSize"] = unit_size
    item: dict[str, Any] = {
        "itemSequenceNumber": seq,
        "amazonProductIdentifier": "B000000001",
        "orderedQuantity": qty,
        "isBackOrderAllowed": backorder,
    }
    if cost is not None:
        item["netCost"] = {"currencyCode": "EUR", "amount": cost}
    details: dict[str, Any] = {
        "purchaseOrderDate": "2024-03-01T10:00:00Z",
        "purchaseOrderStateChangedDate": "2024-03-01T10:00:00Z",
        "shipWindow": "2024-03-04T07:00:00Z--2024-03-08T07:00:00Z",
        "items": [item],
    }
    if changed:
        details["purchaseOrderChangedDate"] = changed
    order = Order.model_validate(
        {"purchaseOrderNumber": "PO000001", "purchaseOrderState": "New", "orderDetails": details}
    )
    (line,) = split_lines(order, lambda _a, _v: mapped)
    return line


def decide(line: PoLine, available: int, m: SkuMapping | None, **kw: Any) -> Any:
    return allocate(line, available, m, now=NOW, backorder_lead_days=LEAD, **kw)


# -- worked examples ---------------------------------------------------------------------------


def test_cases_of_12_against_30_eaches_backorder_allowed() -> None:
    d = decide(make_line(3, backorder=True), 30, mapping())
    assert (d.accepted, d.backordered, d.rejected) == (2, 1, 0)
    assert d.allocatedEaches == 24 and d.unitSize == 12
    assert d.scheduledShipDate == NOW + timedelta(days=LEAD)
    assert d.rejectionReason is None and d.status == "Partial"
    assert d.key == "PO000001#1" and d.lineCount == 1


def test_cases_of_12_against_30_eaches_backorder_not_allowed() -> None:
    d = decide(make_line(3, backorder=False), 30, mapping())
    assert (d.accepted, d.backordered, d.rejected) == (2, 0, 1)
    assert d.rejectionReason == "TemporarilyUnavailable"
    assert d.allocatedEaches == 24 and d.scheduledShipDate is None


def test_eaches_order() -> None:
    d = decide(make_line(10, "Eaches", 1, backorder=False), 7, mapping())
    assert (d.accepted, d.rejected, d.allocatedEaches, d.unitSize) == (7, 3, 7, 1)
    full = decide(make_line(10, "Eaches", None), 50, mapping())
    assert (full.accepted, full.allocatedEaches, full.status) == (10, 10, "Accepted")


def test_no_stock_and_negative_availability() -> None:
    d = decide(make_line(2, backorder=False), -40, mapping())
    assert (d.accepted, d.rejected, d.allocatedEaches, d.status) == (0, 2, 0, "Rejected")
    d = decide(make_line(2, backorder=True), 0, mapping())
    assert (d.backordered, d.status) == (2, "Backordered")


def test_unknown_product_is_rejected_invalid_identifier() -> None:
    d = decide(make_line(3), 1000, None)
    assert (d.rejected, d.rejectionReason, d.allocatedEaches) == (3, "InvalidProductIdentifier", 0)
    assert d.sku is None and d.hold is None


def test_obsolete_product_is_rejected() -> None:
    d = decide(make_line(3), 1000, mapping(obsolete=True))
    assert (d.rejected, d.rejectionReason, d.allocatedEaches) == (3, "ObsoleteProduct", 0)


def test_missing_case_size_is_a_hold_for_operations() -> None:
    m = mapping(unitsPerCase=None)
    d = decide(make_line(3, unit_size=None), 1000, m)
    assert d.status == "Hold" and d.allocatedEaches == 0
    assert d.hold is not None
    assert (d.hold.kind, d.hold.owner) == ("unit-of-measure", "operations")
    assert "no unitSize and no unitsPerCase for SKU SKU-1" in d.hold.reason


def test_disagreeing_case_sizes_hold() -> None:
    d = decide(make_line(3, unit_size=12), 1000, mapping(unitsPerCase=6))
    assert d.status == "Hold" and d.hold is not None and d.hold.kind == "unit-of-measure"


def test_cancelled_line_decides_nothing() -> None:
    d = decide(make_line(0, "Eaches", 1), 1000, mapping())
    assert d.status == "Cancelled" and d.allocatedEaches == 0
    assert (d.accepted, d.backordered, d.rejected) == (0, 0, 0)


def test_scheduled_ship_date_not_before_the_ship_window_end() -> None:
    d = allocate(make_line(3), 0, mapping(), now=NOW, backorder_lead_days=2)
    assert d.scheduledShipDate == WINDOW_END


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError):
        allocate(make_line(), 1, mapping(), now=NOW.replace(tzinfo=None), backorder_lead_days=1)


# -- price -------------------------------------------------------------------------------------


def eur(amount: str) -> MasterMoney:
    return MasterMoney(currencyCode="EUR", amount=Decimal(amount))


def test_price_within_tolerance_acknowledges_the_lower() -> None:
    d = decide(make_line(cost="4.20"), 100, mapping(netCost=eur("4.18")))
    assert d.netCost is not None and d.netCost.amount == Decimal("4.18") and d.findings == ()
    d = decide(make_line(cost="4.20"), 100, mapping(netCost=eur("4.21")))
    assert d.netCost is not None and d.netCost.amount == Decimal("4.20") and d.findings == ()


def test_price_mismatch_is_a_finance_finding_and_never_above_po() -> None:
    d = decide(make_line(cost="4.20"), 100, mapping(netCost=eur("5.00")))
    assert d.netCost is not None and d.netCost.amount == Decimal("4.20")
    (f,) = d.findings
    assert (f.kind, f.owner) == ("PriceMismatch", "finance")
    assert "4.20" in f.reason and "5.00" in f.reason
    d = decide(make_line(cost="4.20"), 100, mapping(netCost=eur("3.00")))
    assert d.netCost is not None and d.netCost.amount == Decimal("3.00") and len(d.findings) == 1


def test_price_check_edge_cases() -> None:
    po = Money(currencyCode="EUR", amount=Decimal("10"))
    usd = MasterMoney(currencyCode="USD", amount=Decimal("1"))
    cost, findings = check_price(po, usd)
    assert cost == po and findings[0].kind == "PriceMismatch"
    by_weight = Money(currencyCode="EUR", amount=Decimal("10"), unitOfMeasure="POUNDS")
    assert check_price(by_weight, eur("1")) == (by_weight, ())
    assert check_price(po, None) == (po, ())
    cost, findings = check_price(None, eur("2.50"))
    assert cost == Money(currencyCode="EUR", amount=Decimal("2.50")) and len(findings) == 1
    assert check_price(None, None)[0] is None
    zero = Money(currencyCode="EUR", amount=Decimal("0"))
    assert check_price(zero, None)[0] is None
    cost, _ = check_price(po, eur("9.5"), Decimal("0.10"))
    assert cost is not None and cost.amount == Decimal("9.5")


def test_no_usable_price_is_a_hold_for_finance() -> None:
    d = decide(make_line(cost=None), 100, mapping())
    assert d.status == "Hold" and d.hold is not None
    assert (d.hold.kind, d.hold.owner) == ("missing-price", "finance")
    # Even a rejection needs a price to be acknowledged, so an unknown product holds too.
    assert decide(make_line(cost="0"), 100, None).status == "Hold"


# -- ledger ------------------------------------------------------------------------------------


def test_redelivery_returns_the_stored_decision_and_allocates_nothing() -> None:
    ledger = AllocationLedger()
    line = make_line(3)
    first = ledger.decide(line, 30, mapping(), now=NOW, backorder_lead_days=LEAD)
    assert (first.delta_eaches, first.replayed) == (24, False)
    later = NOW + timedelta(hours=1)
    again = ledger.decide(line, 1000, mapping(), now=later, backorder_lead_days=LEAD)
    assert again.decision == first.decision and again.delta_eaches == 0 and again.replayed
    assert ledger.open_allocations("SKU-1") == 24


def test_ledger_store_is_json_and_survives_a_restart() -> None:
    store: dict[str, Any] = {}
    first = AllocationLedger(store).decide(
        make_line(3), 30, mapping(), now=NOW, backorder_lead_days=LEAD
    )
    restored = json.loads(json.dumps(store))
    again = AllocationLedger(restored).decide(
        make_line(3), 0, mapping(), now=NOW, backorder_lead_days=LEAD
    )
    assert again.replayed and again.decision == first.decision


def test_release_then_redelivery_never_reallocates() -> None:
    ledger = AllocationLedger()
    line = make_line(3)
    ledger.decide(line, 30, mapping(), now=NOW, backorder_lead_days=LEAD)
    assert ledger.release(line.key) == 24
    assert ledger.release(line.key) == 0
    assert ledger.is_released(line.key) and ledger.open_allocations("SKU-1") == 0
    again = ledger.decide(line, 30, mapping(), now=NOW, backorder_lead_days=LEAD)
    assert again.replayed and again.delta_eaches == 0
    assert ledger.release("UNKNOWN#1") == 0


def test_release_po_releases_only_that_po() -> None:
    ledger = AllocationLedger()
    for seq in ("1", "2"):
        ledger.decide(make_line(1, seq=seq), 100, mapping(), now=NOW, backorder_lead_days=LEAD)
    other = make_line(1).model_copy(update={"purchaseOrderNumber": "PO0000010"})
    ledger.decide(other, 100, mapping(), now=NOW, backorder_lead_days=LEAD)
    assert ledger.release_po("PO000001") == {"PO000001#1": 12, "PO000001#2": 12}
    assert ledger.open_allocations("SKU-1") == 12


def test_changed_line_is_redecided_and_the_difference_released() -> None:
    ledger = AllocationLedger()
    ledger.decide(make_line(3), 100, mapping(), now=NOW, backorder_lead_days=LEAD)
    # Amazon changes the PO: 1 case instead of 3. Availability already counts our 36.
    smaller = make_line(1, changed="2024-03-02T00:00:00Z")
    r = ledger.decide(smaller, 64, mapping(), now=NOW, backorder_lead_days=LEAD)
    assert not r.replayed and r.delta_eaches == -24
    assert (r.decision.accepted, r.decision.allocatedEaches) == (1, 12)
    # Growing again to 4 cases: own 12 + 30 available = 3 whole cases, one backordered.
    bigger = make_line(4, changed="2024-03-03T00:00:00Z")
    r = ledger.decide(bigger, 30, mapping(), now=NOW, backorder_lead_days=LEAD)
    assert (r.decision.accepted, r.decision.backordered, r.delta_eaches) == (3, 1, 24)
    # The original version arriving late is stale and changes nothing.
    r = ledger.decide(make_line(3), 1000, mapping(), now=NOW, backorder_lead_days=LEAD)
    assert r.replayed and r.decision.orderedQuantity.amount == 4


def test_line_cancelled_by_amazon_releases_everything() -> None:
    ledger = AllocationLedger()
    ledger.decide(make_line(3), 100, mapping(), now=NOW, backorder_lead_days=LEAD)
    gone = make_line(0, changed="2024-03-02T00:00:00Z")
    r = ledger.decide(gone, 64, mapping(), now=NOW, backorder_lead_days=LEAD)
    assert r.decision.status == "Cancelled" and r.delta_eaches == -36


def test_a_rejected_line_stays_rejected_when_changed() -> None:
    ledger = AllocationLedger()
    ledger.decide(make_line(3, backorder=False), 0, mapping(), now=NOW, backorder_lead_days=LEAD)
    changed = make_line(2, backorder=False, changed="2024-03-02T00:00:00Z")
    r = ledger.decide(changed, 1000, mapping(), now=NOW, backorder_lead_days=LEAD)
    assert (r.decision.rejected, r.decision.accepted, r.delta_eaches) == (2, 0, 0)
    assert r.decision.rejectionReason == "TemporarilyUnavailable"


def test_a_held_line_is_retried_when_it_comes_again() -> None:
    ledger = AllocationLedger()
    line = make_line(3, unit_size=None)
    held = ledger.decide(line, 100, mapping(unitsPerCase=None), now=NOW, backorder_lead_days=LEAD)
    assert held.decision.status == "Hold" and held.delta_eaches == 0
    fixed = ledger.decide(line, 100, mapping(unitsPerCase=12), now=NOW, backorder_lead_days=LEAD)
    assert not fixed.replayed and fixed.decision.status == "Accepted" and fixed.delta_eaches == 36


@settings(max_examples=60, deadline=None)
@given(
    stock=st.integers(min_value=0, max_value=200),
    orders=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=20),
            st.sampled_from(["Cases", "Eaches"]),
            st.integers(min_value=1, max_value=24),
            st.booleans(),
        ),
        min_size=1,
        max_size=8,
    ),
    redeliver=st.booleans(),
)
def test_never_allocates_more_than_stock(
    stock: int, orders: list[tuple[int, str, int, bool]], redeliver: bool
) -> None:
    ledger = AllocationLedger()
    m = mapping(unitsPerCase=None)
    lines = [
        make_line(amount, unit, size, backorder=bo, seq=str(i + 1))
        for i, (amount, unit, size, bo) in enumerate(orders)
    ]
    for line in lines * (2 if redeliver else 1):
        available = available_for_amazon(
            {"wh": stock}, m, open_allocations=ledger.open_allocations("SKU-1")
        )
        r = ledger.decide(line, available, m, now=NOW, backorder_lead_days=LEAD)
        d = r.decision
        assert d.accepted + d.backordered + d.rejected == line.orderedQuantity.amount
        assert d.allocatedEaches == d.accepted * (d.unitSize or 1)
        assert d.allocatedEaches <= (line.eaches or 0)
        assert (d.backordered == 0) or line.isBackOrderAllowed
    assert ledger.open_allocations("SKU-1") <= stock


# -- availability ------------------------------------------------------------------------------


def test_availability_sums_eligible_channels_minus_buffer_and_open_allocations() -> None:
    m = mapping(amazonChannels=["wh-a", "key-b"], safetyBuffer=5)
    stock = {"wh-a": 40, "id-b": 10, "shop": 100}
    keys = {"id-b": "key-b"}
    assert available_for_amazon(stock, m, open_allocations=12, channel_keys=keys) == 33
    assert available_for_amazon(stock, m, open_allocations=100, channel_keys=keys) == 0
    everything = mapping(safetyBuffer=0)
    assert available_for_amazon(stock, everything, open_allocations=0) == 150
    assert (
        available_for_amazon(stock, everything, open_allocations=0, default_channels=("shop",))
        == 100
    )
    assert available_for_amazon(stock, None, open_allocations=0) == 0
