"""The inventory sender's pure rules: record -> ItemDetails, coalescing, request size, body."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.adapters.amazon_models import validate
from streams.domain.inventory_feed import (
    DEFAULT_MAX_ITEMS,
    InventoryRequest,
    NotAnUpdate,
    Update,
    coalesce,
    item_details,
    plan_requests,
    request_body,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "schemas" / "examples" / "amazon.inventory-updates").glob("*.json"))


def record(sku: str, amount: int, **extra: Any) -> dict[str, Any]:
    return {
        "sku": sku,
        "availableQuantity": {"amount": amount, "unitOfMeasure": "Each"},
        "isObsolete": False,
        "vendorProductIdentifier": f"V-{sku}",
        "previousAmount": None,
        "kind": "delta",
        "publishedAt": "2026-11-27T08:15:04.125Z",
        "masterChangedAt": None,
        **extra,
    }


def up(sku: str, amount: int, warehouse: str = "WH1") -> Update:
    return Update(warehouse, *item_details(record(sku, amount)))


def test_item_details_keeps_only_amazons_fields() -> None:
    sku, item = item_details(record("A", 5, buyerProductIdentifier="B0A"))
    assert sku == "A"
    assert item == {
        "availableQuantity": {"amount": 5, "unitOfMeasure": "Each"},
        "isObsolete": False,
        "vendorProductIdentifier": "V-A",
        "buyerProductIdentifier": "B0A",
    }
    assert validate("vendorDirectFulfillmentInventory", "ItemDetails", item) == []


def test_the_topic_examples_become_valid_items() -> None:
    assert EXAMPLES
    for path in EXAMPLES:
        _, item = item_details(orjson.loads(path.read_bytes()))
        assert validate("vendorDirectFulfillmentInventory", "ItemDetails", item) == [], path


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [],
        {
            "availableQuantity": {"amount": 1, "unitOfMeasure": "Each"},
            "vendorProductIdentifier": "V",
        },
        {"sku": "A", "vendorProductIdentifier": "V"},
        {"sku": "A", "availableQuantity": {"amount": -1, "unitOfMeasure": "Each"}},
        {"sku": "A", "availableQuantity": {"amount": 1.5, "unitOfMeasure": "Each"}},
        {"sku": "A", "availableQuantity": {"amount": True, "unitOfMeasure": "Each"}},
        # neither identifier: the model only describes the rule, Amazon applies it
        {"sku": "A", "availableQuantity": {"amount": 1, "unitOfMeasure": "Each"}},
    ],
)
def test_records_that_are_no_item(bad: Any) -> None:
    with pytest.raises(NotAnUpdate):
        item_details(bad)


def test_latest_amount_per_sku_wins_within_a_batch() -> None:
    merged = coalesce([up("A", 1), up("B", 2), up("A", 3), up("A", 0)])
    assert {k: v["availableQuantity"]["amount"] for k, v in merged["WH1"].items()} == {
        "A": 0,
        "B": 2,
    }


def test_a_zero_is_sent_not_dropped() -> None:
    plan = plan_requests([up("A", 7), up("A", 0)])
    [req] = plan.requests
    assert [i["availableQuantity"]["amount"] for _, i in req.items] == [0]
    assert plan.superseded == 1


def test_requests_per_warehouse_and_at_most_max_items() -> None:
    updates = [up(f"S{i:04d}", i) for i in range(2500)]
    updates += [up(f"S{i:04d}", i + 1) for i in range(100)]  # 100 SKUs again, later amounts
    updates += [up("X", 1, "WH2"), up("Y", 2, "WH2")]
    plan = plan_requests(updates, max_items=1000)
    assert [(r.warehouse, len(r.items)) for r in plan.requests] == [
        ("WH1", 1000),
        ("WH1", 1000),
        ("WH1", 500),
        ("WH2", 2),
    ]
    assert plan.superseded == 100
    sent = {sku: item for r in plan.requests if r.warehouse == "WH1" for sku, item in r.items}
    assert len(sent) == 2500  # each SKU exactly once
    assert sent["S0042"]["availableQuantity"]["amount"] == 43
    assert sent["S2000"]["availableQuantity"]["amount"] == 2000


def test_the_same_batch_makes_the_same_requests() -> None:
    a = plan_requests([up("B", 1), up("A", 2), up("C", 3)], max_items=2)
    b = plan_requests([up("C", 3), up("A", 2), up("B", 1)], max_items=2)
    assert a.requests == b.requests
    assert [r.skus for r in a.requests] == [["A", "B"], ["C"]]


def test_empty_batch_and_bad_size() -> None:
    assert plan_requests([]).requests == []
    with pytest.raises(ValueError):
        plan_requests([up("A", 1)], max_items=0)
    assert DEFAULT_MAX_ITEMS == 1000


def test_split_in_halves() -> None:
    [req] = plan_requests([up(f"S{i}", i) for i in range(5)]).requests
    first, second = req.split()
    assert first.skus + second.skus == req.skus and len(first.items) == 2
    with pytest.raises(ValueError):
        InventoryRequest("WH1", req.items[:1]).split()


def test_request_body_is_a_valid_partial_feed() -> None:
    [req] = plan_requests([up(f"S{i}", i) for i in range(3)]).requests
    body = request_body("VENDOR1", (item for _, item in req.items))
    assert body["inventory"]["isFullUpdate"] is False
    assert body["inventory"]["sellingParty"] == {"partyId": "VENDOR1"}
    assert len(body["inventory"]["items"]) == 3
    assert validate("vendorDirectFulfillmentInventory", "SubmitInventoryUpdateRequest", body) == []
