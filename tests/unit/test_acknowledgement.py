"""OrderAcknowledgement: valid against Amazon's model, complete, deterministic, within stock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.adapters import amazon_models
from streams.domain.acknowledgement import (
    AcknowledgementNotReady,
    build_acknowledgement,
    encode_acknowledgement,
    validate_acknowledgement,
)
from streams.domain.allocation import AllocationLedger, LineDecision, allocate
from streams.domain.mapping import Money as MasterMoney
from streams.domain.mapping import SkuMapping
from streams.domain.purchase_orders import Order, PoLine, split_lines

NOW = datetime(2024, 3, 1, 12, 0, 30, 123456, tzinfo=UTC)
LEAD = 10


def assert_valid(ack: dict[str, Any], order: Order | list[PoLine]) -> None:
    """Amazon's model (alone and as the request body) and the rules it only describes."""
    assert amazon_models.validate("vendorOrders", "OrderAcknowledgement", ack) == []
    body = {"acknowledgements": [ack]}
    assert amazon_models.validate("vendorOrders", "SubmitAcknowledgementRequest", body) == []
    assert validate_acknowledgement(ack, order) == []


def order_of(items: list[dict[str, Any]], po: str = "PO000001") -> Order:
    return Order.model_validate(
        {
            "purchaseOrderNumber": po,
            "purchaseOrderState": "New",
            "orderDetails": {
                "purchaseOrderDate": "2024-03-01T10:00:00Z",
                "purchaseOrderStateChangedDate": "2024-03-01T10:00:00Z",
                "sellingParty": {"partyId": "VENDOR1"},
                "shipWindow": "2024-03-04T07:00:00Z--2024-03-08T07:00:00Z",
                "items": items,
            },
        }
    )


def item(
    seq: str, asin: str, qty: dict[str, Any], *, backorder: bool, cost: str = "4.20"
) -> dict[str, Any]:
    return {
        "itemSequenceNumber": seq,
        "amazonProductIdentifier": asin,
        "vendorProductIdentifier": f"VPI-{asin}",
        "orderedQuantity": qty,
        "isBackOrderAllowed": backorder,
        "netCost": {"currencyCode": "EUR", "amount": cost},
    }


def decide_all(
    order: Order, mappings: dict[str, SkuMapping], stock: dict[str, int]
) -> tuple[list[PoLine], list[LineDecision]]:
    """Flows 4-5 in miniature: split, then allocate each line against its SKU's stock."""
    lines = split_lines(order, lambda asin, _vpi: mappings.get(asin or ""))
    ledger = AllocationLedger()
    decisions = []
    for line in lines:
        m = mappings.get(line.amazonProductIdentifier or "")
        sku = m.sku if m else ""
        available = stock.get(sku, 0) - ledger.open_allocations(sku)
        decisions.append(
            ledger.decide(line, available, m, now=NOW, backorder_lead_days=LEAD).decision
        )
    return lines, decisions


def sku(asin: str, **kw: Any) -> SkuMapping:
    return SkuMapping.model_validate({"sku": f"SKU-{asin}", "asin": asin, **kw})


# -- worked examples ---------------------------------------------------------------------------


@pytest.mark.parametrize("backorder", [True, False])
def test_cases_of_12_against_30_eaches(backorder: bool) -> None:
    order = order_of(
        [
            item(
                "1",
                "B000000001",
                {"amount": 3, "unitOfMeasure": "Cases", "unitSize": 12},
                backorder=backorder,
            )
        ]
    )
    _, decisions = decide_all(
        order, {"B000000001": sku("B000000001", unitsPerCase=12)}, {"SKU-B000000001": 30}
    )
    assert decisions[0].allocatedEaches == 24
    ack = build_acknowledgement(order, decisions, "VENDOR1", NOW)
    assert_valid(ack, order)
    assert ack["acknowledgementDate"] == "2024-03-01T12:00:30Z"
    (it,) = ack["items"]
    assert it["orderedQuantity"] == {"amount": 3, "unitOfMeasure": "Cases", "unitSize": 12}
    assert it["netCost"] == {"currencyCode": "EUR", "amount": "4.20"}
    accepted, rest = it["itemAcknowledgements"]
    assert accepted == {
        "acknowledgementCode": "Accepted",
        "acknowledgedQuantity": {"amount": 2, "unitOfMeasure": "Cases", "unitSize": 12},
    }
    if backorder:
        assert rest == {
            "acknowledgementCode": "Backordered",
            "acknowledgedQuantity": {"amount": 1, "unitOfMeasure": "Cases", "unitSize": 12},
            "scheduledShipDate": "2024-03-11T12:00:30Z",
        }
    else:
        assert rest == {
            "acknowledgementCode": "Rejected",
            "acknowledgedQuantity": {"amount": 1, "unitOfMeasure": "Cases", "unitSize": 12},
            "rejectionReason": "TemporarilyUnavailable",
        }


def test_eaches_unknown_and_obsolete_in_one_po() -> None:
    order = order_of(
        [
            item(
                "1",
                "B000000001",
                {"amount": 5, "unitOfMeasure": "Eaches", "unitSize": 1},
                backorder=False,
            ),
            item("2", "B00000000X", {"amount": 2, "unitOfMeasure": "Eaches"}, backorder=True),
            item(
                "3",
                "B000000003",
                {"amount": 4, "unitOfMeasure": "Cases", "unitSize": 6},
                backorder=True,
            ),
        ]
    )
    mappings = {"B000000001": sku("B000000001"), "B000000003": sku("B000000003", obsolete=True)}
    _, decisions = decide_all(order, mappings, {"SKU-B000000001": 100, "SKU-B000000003": 100})
    ack = build_acknowledgement(order, decisions, "VENDOR1", NOW)
    assert_valid(ack, order)
    codes = [
        [
            (
                e["acknowledgementCode"],
                e["acknowledgedQuantity"]["amount"],
                e.get("rejectionReason"),
            )
            for e in it["itemAcknowledgements"]
        ]
        for it in ack["items"]
    ]
    assert codes == [
        [("Accepted", 5, None)],
        [("Rejected", 2, "InvalidProductIdentifier")],
        [("Rejected", 4, "ObsoleteProduct")],
    ]
    # Eaches: no unitSize invented on acknowledged quantities; ordered quantity echoed as sent.
    assert ack["items"][0]["itemAcknowledgements"][0]["acknowledgedQuantity"] == {
        "amount": 5,
        "unitOfMeasure": "Eaches",
    }
    assert ack["items"][0]["orderedQuantity"] == {
        "amount": 5,
        "unitOfMeasure": "Eaches",
        "unitSize": 1,
    }
    assert ack["items"][1]["vendorProductIdentifier"] == "VPI-B00000000X"


def test_missing_case_size_holds_the_whole_acknowledgement() -> None:
    order = order_of(
        [
            item("1", "B000000001", {"amount": 5, "unitOfMeasure": "Eaches"}, backorder=False),
            item("2", "B000000002", {"amount": 2, "unitOfMeasure": "Cases"}, backorder=False),
        ]
    )
    mappings = {a: sku(a) for a in ("B000000001", "B000000002")}
    _, decisions = decide_all(order, mappings, {"SKU-B000000001": 100, "SKU-B000000002": 100})
    assert decisions[1].status == "Hold" and decisions[1].allocatedEaches == 0
    with pytest.raises(AcknowledgementNotReady, match="PO000001#2: on hold"):
        build_acknowledgement(order, decisions, "VENDOR1", NOW)


def test_not_ready_without_every_decision_or_with_a_stale_one() -> None:
    order = order_of(
        [
            item(s, "B000000001", {"amount": 1, "unitOfMeasure": "Eaches"}, backorder=False)
            for s in ("1", "2")
        ]
    )
    _, decisions = decide_all(order, {"B000000001": sku("B000000001")}, {"SKU-B000000001": 9})
    with pytest.raises(AcknowledgementNotReady, match="PO000001#2: not decided"):
        build_acknowledgement(order, decisions[:1], "VENDOR1", NOW)
    changed = order_of(
        [
            item(s, "B000000001", {"amount": 2, "unitOfMeasure": "Eaches"}, backorder=False)
            for s in ("1", "2")
        ]
    )
    with pytest.raises(AcknowledgementNotReady, match="PO changed"):
        build_acknowledgement(changed, decisions, "VENDOR1", NOW)
    with pytest.raises(ValueError):
        build_acknowledgement(order, decisions, "VENDOR1", NOW.replace(tzinfo=None))


def test_acknowledged_net_cost_never_above_the_po() -> None:
    order = order_of(
        [
            item(
                "1",
                "B000000001",
                {"amount": 1, "unitOfMeasure": "Eaches"},
                backorder=False,
                cost="4.20",
            )
        ]
    )
    for master_cost, expected in (("5.00", "4.20"), ("3.99", "3.99")):
        m = sku("B000000001", netCost=MasterMoney(currencyCode="EUR", amount=Decimal(master_cost)))
        _, decisions = decide_all(order, {"B000000001": m}, {"SKU-B000000001": 1})
        ack = build_acknowledgement(order, decisions, "VENDOR1", NOW)
        assert_valid(ack, order)
        assert ack["items"][0]["netCost"]["amount"] == expected
    # A decision carrying a cost above the PO's is refused, not sent.
    bad = decisions[0].model_copy(
        update={"netCost": decisions[0].netCost.model_copy(update={"amount": Decimal("9")})}
    )  # type: ignore[union-attr]
    with pytest.raises(AcknowledgementNotReady, match="netCost"):
        build_acknowledgement(order, [bad], "VENDOR1", NOW)


def test_deterministic_bytes_whatever_the_decision_order() -> None:
    order = order_of(
        [
            item(str(s), f"B00000000{s}", {"amount": s, "unitOfMeasure": "Eaches"}, backorder=True)
            for s in range(1, 6)
        ]
    )
    mappings = {f"B00000000{s}": sku(f"B00000000{s}") for s in range(1, 6)}
    lines, decisions = decide_all(order, mappings, {f"SKU-B00000000{s}": 3 for s in range(1, 6)})
    first = encode_acknowledgement(build_acknowledgement(order, decisions, "VENDOR1", NOW))
    shuffled = decisions[:]
    random.Random(7).shuffle(shuffled)
    by_key = {d.key: d for d in shuffled}
    assert encode_acknowledgement(build_acknowledgement(order, by_key, "VENDOR1", NOW)) == first
    reversed_lines = list(reversed(lines))
    assert (
        encode_acknowledgement(build_acknowledgement(reversed_lines, shuffled, "VENDOR1", NOW))
        == first
    )
    # Decisions round-tripped through JSON (a Kafka hop) give the same bytes too.
    hopped = [LineDecision.model_validate_json(d.model_dump_json()) for d in decisions]
    assert encode_acknowledgement(build_acknowledgement(order, hopped, "VENDOR1", NOW)) == first


def test_items_in_numeric_sequence_order() -> None:
    seqs = ["10", "2", "1"]
    order = order_of(
        [
            item(s, "B000000001", {"amount": 1, "unitOfMeasure": "Eaches"}, backorder=True)
            for s in seqs
        ]
    )
    _, decisions = decide_all(order, {"B000000001": sku("B000000001")}, {"SKU-B000000001": 100})
    ack = build_acknowledgement(order, decisions, "VENDOR1", NOW)
    assert [it["itemSequenceNumber"] for it in ack["items"]] == ["1", "2", "10"]


# -- Amazon's sandbox orders, verbatim ----------------------------------------------------------


def sandbox_orders() -> list[dict[str, Any]]:
    out = []
    for ex in amazon_models.example("vendorOrders", "getPurchaseOrders"):
        out.extend(o for o in ex["response"]["payload"]["orders"] if "orderDetails" in o)
    return [o for o in out if not o["purchaseOrderNumber"].startswith("mock-")]


@pytest.mark.parametrize("raw", sandbox_orders(), ids=lambda o: o["purchaseOrderNumber"])
def test_sandbox_orders_acknowledge_validly(raw: dict[str, Any]) -> None:
    order = Order.model_validate(raw)
    assert order.orderDetails is not None
    asins = [i.amazonProductIdentifier or "" for i in order.orderDetails.items]
    mappings = {a: SkuMapping(sku=f"SKU-{a}", asin=a) for a in asins[1:]}  # first one unknown
    stock = {f"SKU-{a}": 7 * n for n, a in enumerate(asins)}
    lines, decisions = decide_all(order, mappings, stock)
    ack = build_acknowledgement(order, decisions, order.orderDetails.sellingParty.partyId, NOW)  # type: ignore[union-attr]
    assert_valid(ack, order)
    assert ack["purchaseOrderNumber"] == raw["purchaseOrderNumber"]
    expected = [ln.itemSequenceNumber for ln in lines if not ln.cancelled]
    assert [it["itemSequenceNumber"] for it in ack["items"]] == expected


def test_sandbox_po_2jk3s9vc_worked() -> None:
    raw = next(o for o in sandbox_orders() if o["purchaseOrderNumber"] == "2JK3S9VC")
    order = Order.model_validate(raw)
    mappings = {
        a: SkuMapping(sku=f"SKU-{a}", asin=a) for a in ("B07DFVDRAB", "B07DFYF5AB", "B07MC84QAB")
    }
    stock = {"SKU-B07DFVDRAB": 5, "SKU-B07DFYF5AB": 1, "SKU-B07MC84QAB": 13}
    _, decisions = decide_all(order, mappings, stock)
    ack = build_acknowledgement(order, decisions, "999US", NOW)
    assert_valid(ack, order)
    summary = [
        [
            (e["acknowledgementCode"], e["acknowledgedQuantity"]["amount"])
            for e in it["itemAcknowledgements"]
        ]
        for it in ack["items"]
    ]
    assert summary == [[("Accepted", 1)], [("Accepted", 1), ("Rejected", 1)], [("Accepted", 13)]]
    assert [it["netCost"]["amount"] for it in ack["items"]] == ["346.27", "229.47", "412.71"]


def test_sandbox_po_with_a_cancelled_line_leaves_it_out() -> None:
    raw = next(o for o in sandbox_orders() if o["purchaseOrderNumber"] == "TestPO1")
    order = Order.model_validate(raw)
    mappings = {a: SkuMapping(sku=f"SKU-{a}", asin=a) for a in ("B01XYZ3Z00", "B01XYZ3Z01")}
    _, decisions = decide_all(order, mappings, {"SKU-B01XYZ3Z01": 4})
    assert decisions[0].status == "Cancelled"
    ack = build_acknowledgement(order, decisions, "999US", NOW)
    assert_valid(ack, order)
    assert [it["itemSequenceNumber"] for it in ack["items"]] == ["2"]


def test_sandbox_weight_priced_cases_echo_the_unit() -> None:
    raw = next(o for o in sandbox_orders() if o["purchaseOrderNumber"] == "3TRD2IAB")
    order = Order.model_validate(raw)
    _, decisions = decide_all(
        order, {"B01LNRIIAB": SkuMapping(sku="S", asin="B01LNRIIAB")}, {"S": 25}
    )
    ack = build_acknowledgement(order, decisions, "998US", NOW)
    assert_valid(ack, order)
    (it,) = ack["items"]
    assert it["orderedQuantity"] == {"amount": 5, "unitOfMeasure": "Cases", "unitSize": 10}
    assert it["netCost"] == {"currencyCode": "USD", "amount": "94.97", "unitOfMeasure": "POUNDS"}
    assert [
        (e["acknowledgementCode"], e["acknowledgedQuantity"]["amount"])
        for e in it["itemAcknowledgements"]
    ] == [
        ("Accepted", 2),
        ("Backordered", 3),
    ]


def test_every_line_cancelled_is_not_acknowledged() -> None:
    order = order_of(
        [item("1", "B000000001", {"amount": 0, "unitOfMeasure": "Eaches"}, backorder=True)]
    )
    _, decisions = decide_all(order, {}, {})
    with pytest.raises(AcknowledgementNotReady, match="cancelled"):
        build_acknowledgement(order, decisions, "VENDOR1", NOW)


# -- validate_acknowledgement catches what the schema does not ----------------------------------


def good_ack() -> tuple[dict[str, Any], Order]:
    order = order_of(
        [
            item(
                "1",
                "B000000001",
                {"amount": 3, "unitOfMeasure": "Cases", "unitSize": 12},
                backorder=True,
            ),
            item("2", "B000000001", {"amount": 8, "unitOfMeasure": "Eaches"}, backorder=False),
        ]
    )
    _, decisions = decide_all(
        order, {"B000000001": sku("B000000001", unitsPerCase=12)}, {"SKU-B000000001": 30}
    )
    return build_acknowledgement(order, decisions, "VENDOR1", NOW), order


def test_the_sandbox_acknowledgement_example_breaks_described_rules() -> None:
    # Amazon's own submitAcknowledgement example passes the schema but omits units/currency.
    ex = amazon_models.example("vendorOrders", "submitAcknowledgement", "202")[0]
    ack = ex["request"]["parameters"]["body"]["value"]["acknowledgements"][0]
    assert amazon_models.validate("vendorOrders", "OrderAcknowledgement", ack) == []
    errors = validate_acknowledgement(ack)
    assert any("netCost" in e for e in errors) and any("unitOfMeasure" in e for e in errors)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda a: a["items"][0].pop("netCost"), "netCost: required"),
        (lambda a: a["items"][0]["netCost"].update(amount="0"), "above zero"),
        (lambda a: a["items"][0]["netCost"].update(amount="-1.5"), "above zero"),
        (lambda a: a["items"][0]["netCost"].update(amount=4.2), "decimal string"),
        (lambda a: a["items"][0]["netCost"].update(amount="9.99"), "above the PO's"),
        (lambda a: a["items"].pop(1), "line 2: missing"),
        (
            lambda a: a["items"][0]["itemAcknowledgements"][0]["acknowledgedQuantity"].update(
                amount=0
            ),
            "positive integer",
        ),
        (
            lambda a: a["items"][0]["itemAcknowledgements"][0]["acknowledgedQuantity"].update(
                amount=3
            ),
            "acknowledged 4 > ordered 3",
        ),
        (
            lambda a: a["items"][0]["itemAcknowledgements"][0].update(
                rejectionReason="ObsoleteProduct"
            ),
            "only allowed with Rejected",
        ),
        (
            lambda a: a["items"][0]["itemAcknowledgements"][1].pop("scheduledShipDate"),
            "scheduledShipDate",
        ),
        (
            lambda a: a["items"][1]["itemAcknowledgements"][1].pop("rejectionReason"),
            "required with Rejected",
        ),
        (
            lambda a: a["items"][0]["itemAcknowledgements"][0]["acknowledgedQuantity"].pop(
                "unitSize"
            ),
            "required for Cases",
        ),
        (
            lambda a: a["items"][0]["itemAcknowledgements"][0]["acknowledgedQuantity"].update(
                unitOfMeasure="Eaches"
            ),
            "unit differs",
        ),
        (lambda a: a["items"][0]["itemAcknowledgements"].clear(), "at least one entry"),
        (lambda a: a["items"][1].update(itemSequenceNumber="1"), "duplicate itemSequenceNumber"),
        (lambda a: a["items"][1].update(vendorProductIdentifier="OTHER"), "not the PO's"),
        (lambda a: a["items"].clear(), "at least one item"),
    ],
)
def test_validate_acknowledgement_catches(mutate: Any, expected: str) -> None:
    ack, order = good_ack()
    assert validate_acknowledgement(ack, order) == []
    mutate(ack)
    errors = validate_acknowledgement(ack, order)
    assert any(expected in e for e in errors), errors


# -- property: random POs against random stock ------------------------------------------------

ASINS = [f"B00000000{i}" for i in range(6)]


@st.composite
def world(draw: st.DrawFn) -> tuple[Order, dict[str, SkuMapping], dict[str, int]]:
    mappings: dict[str, SkuMapping] = {}
    for asin in ASINS[:-1]:  # the last ASIN is never mapped
        mappings[asin] = SkuMapping(
            sku=f"SKU-{asin}",
            asin=asin,
            unitsPerCase=draw(st.sampled_from([None, 6, 12])),
            obsolete=draw(st.booleans().map(lambda b: b and draw(st.booleans()))),
            netCost=draw(
                st.one_of(
                    st.none(),
                    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99"), places=2).map(
                        lambda a: MasterMoney(currencyCode="EUR", amount=a)
                    ),
                )
            ),
        )
    n = draw(st.integers(min_value=1, max_value=6))
    seqs = draw(st.permutations([str(i) for i in range(1, n + 1)]))
    items = []
    for seq in seqs:
        asin = draw(st.sampled_from(ASINS))
        unit = draw(st.sampled_from(["Cases", "Eaches"]))
        qty: dict[str, Any] = {
            "amount": draw(st.integers(min_value=0, max_value=40)),
            "unitOfMeasure": unit,
        }
        size = draw(st.sampled_from([None, 1, 6, 12, 24]))
        if size is not None:
            qty["unitSize"] = size
        cost = draw(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99"), places=2))
        items.append(item(seq, asin, qty, backorder=draw(st.booleans()), cost=str(cost)))
    stock = {m.sku: draw(st.integers(min_value=0, max_value=300)) for m in mappings.values()}
    return order_of(items), mappings, stock


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world())
def test_every_ready_acknowledgement_is_valid_complete_and_within_stock(
    w: tuple[Order, dict[str, SkuMapping], dict[str, int]],
) -> None:
    order, mappings, stock = w
    lines, decisions = decide_all(order, mappings, stock)
    by_sku: dict[str, int] = {}
    for line, d in zip(lines, decisions, strict=True):
        if d.sku:
            by_sku[d.sku] = by_sku.get(d.sku, 0) + d.allocatedEaches
        if d.status != "Hold":
            # No over-promise: accepted units are backed by allocated eaches, within the order.
            assert d.allocatedEaches == d.accepted * (d.unitSize or 1)
            assert d.allocatedEaches <= (line.eaches or 0)
    for s, allocated in by_sku.items():
        assert allocated <= stock.get(s, 0)
    if any(d.status == "Hold" for d in decisions):
        with pytest.raises(AcknowledgementNotReady):
            build_acknowledgement(order, decisions, "VENDOR1", NOW)
        return
    if all(ln.cancelled for ln in lines):
        return
    ack = build_acknowledgement(order, decisions, "VENDOR1", NOW)
    assert_valid(ack, order)
    assert [it["itemSequenceNumber"] for it in ack["items"]] == [
        ln.itemSequenceNumber for ln in lines if not ln.cancelled
    ]
    for it, line in zip(ack["items"], [ln for ln in lines if not ln.cancelled], strict=True):
        amounts = [e["acknowledgedQuantity"]["amount"] for e in it["itemAcknowledgements"]]
        assert sum(amounts) == line.orderedQuantity.amount and min(amounts) > 0
        assert Decimal(it["netCost"]["amount"]) <= line.netCost.amount  # type: ignore[union-attr]
    assert encode_acknowledgement(ack) == encode_acknowledgement(
        build_acknowledgement(order, list(reversed(decisions)), "VENDOR1", NOW)
    )


def test_allocate_directly_matches_the_ledger() -> None:
    order = order_of(
        [
            item(
                "1",
                "B000000001",
                {"amount": 3, "unitOfMeasure": "Cases", "unitSize": 12},
                backorder=True,
            )
        ]
    )
    (line,) = split_lines(order, lambda _a, _v: None)
    m = sku("B000000001")
    direct = allocate(line, 30, m, now=NOW, backorder_lead_days=LEAD)
    via = AllocationLedger().decide(line, 30, m, now=NOW, backorder_lead_days=LEAD).decision
    assert direct == via
    assert via.scheduledShipDate == (NOW + timedelta(days=LEAD)).replace(microsecond=0)
