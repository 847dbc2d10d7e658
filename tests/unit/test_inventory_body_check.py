"""The inventory sender's model check by item shape finds exactly what full validation finds."""

from __future__ import annotations

from typing import Any

import pytest

from streams.adapters.amazon_body_check import BodyCheck, _shape_only
from streams.adapters.amazon_models import model, validate
from streams.domain.inventory_feed import request_body

GOOD = {
    "availableQuantity": {"amount": 5, "unitOfMeasure": "Each"},
    "isObsolete": False,
    "buyerProductIdentifier": "B0123456789",
    "vendorProductIdentifier": "4029413196250",
}


def full(body: Any) -> list[str]:
    return validate("vendorDirectFulfillmentInventory", "SubmitInventoryUpdateRequest", body)


def test_the_vendored_model_constrains_item_shapes_only() -> None:
    check = BodyCheck()
    assert check.by_shape
    defs = model("vendorDirectFulfillmentInventory")["definitions"]
    assert not _shape_only({"X": {"type": "integer", "minimum": 0}}, "X")
    assert _shape_only(defs, "ItemDetails")


@pytest.mark.parametrize(
    "body",
    [
        request_body("VENDOR1", [GOOD] * 3),
        request_body(
            "VENDOR1",
            [
                {**GOOD, "availableQuantity": {"amount": i, "unitOfMeasure": "Each"}}
                for i in range(50)
            ],
        ),
        request_body(
            "VENDOR1",
            [
                GOOD,
                {"availableQuantity": {"amount": "3", "unitOfMeasure": "Each"}},
                {"availableQuantity": {"amount": True}},
                {"isObsolete": 1},
                {**GOOD, "availableQuantity": {"amount": 2.5, "unitOfMeasure": "Each"}},
                GOOD,
            ],
        ),
        {"inventory": {"isFullUpdate": "no", "items": [GOOD]}},
        {"inventory": {"sellingParty": {}, "isFullUpdate": False, "items": "x"}},
        {"inventory": []},
        {},
    ],
)
def test_same_verdict_as_full_validation(body: Any) -> None:
    check = BodyCheck()
    ours, theirs = check(body), full(body)
    assert bool(ours) == bool(theirs)
    assert sorted(p.split(": ", 1)[1] for p in ours) == sorted(p.split(": ", 1)[1] for p in theirs)
    assert check(body) == ours  # the same again, from the shape cache
