"""The compiled model check answers exactly as jsonschema does (valid or not)."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from streams.adapters import amazon_models, fast_schema
from streams.sandbox.amazon.generator import OrderGenerator, acknowledgement_for

# values of every JSON type, and near misses of the model's (bool vs int, float vs int)
ODD_VALUES: list[Any] = [None, True, 0, 1, -3, 1.0, 2.5, "", "x", "Cases", [], [1], {}, {"a": 1}]


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


def mutate(doc: Any, rng: random.Random) -> Any:
    doc = copy.deepcopy(doc)
    path = rng.choice([p for p in paths(doc) if p])
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    action = rng.random()
    if action < 0.3 and isinstance(parent, dict):
        del parent[last]
    elif action < 0.4 and isinstance(parent, dict):
        parent[f"extra{rng.randint(0, 9)}"] = rng.choice(ODD_VALUES)
    else:
        parent[last] = rng.choice(ODD_VALUES)
    return doc


def acknowledgements(n: int) -> list[dict[str, Any]]:
    gen = OrderGenerator(seed=7)
    out: list[dict[str, Any]] = []
    for _ in range(n):
        order = gen.order()
        if not order["orderDetails"]["items"]:
            continue
        out.append(acknowledgement_for(order, code=random.Random(len(out)).choice(
            ["Accepted", "Backordered", "Rejected"]
        )))  # fmt: skip
    return out


def test_valid_acknowledgements_pass_without_jsonschema() -> None:
    check = fast_schema.checker("vendorOrders", "OrderAcknowledgement")
    assert check is not None
    for ack in acknowledgements(20):
        assert amazon_models.validate("vendorOrders", "OrderAcknowledgement", ack) == []
        assert check(ack)
        assert fast_schema.validate("vendorOrders", "OrderAcknowledgement", ack) == []


@pytest.mark.parametrize("definition", ["OrderAcknowledgement", "SubmitAcknowledgementRequest"])
def test_mutated_payloads_get_jsonschemas_answer(definition: str) -> None:
    rng = random.Random(1)
    check = fast_schema.checker("vendorOrders", definition)
    assert check is not None
    acks = acknowledgements(10)
    seen_invalid = 0
    for i in range(600):
        base: Any = acks[i % len(acks)]
        if definition == "SubmitAcknowledgementRequest":
            base = {"acknowledgements": [base, acks[(i + 1) % len(acks)]]}
        doc = mutate(base, rng)
        expected = amazon_models.validate("vendorOrders", definition, doc)
        assert check(doc) == (expected == []), (doc, expected)
        assert fast_schema.validate("vendorOrders", definition, doc) == expected
        seen_invalid += bool(expected)
    assert seen_invalid > 120  # the mutations do reach the model's rules


def test_other_models_compile_too() -> None:
    for api, definition in (
        ("vendorShipments", "SubmitShipmentConfirmationsRequest"),
        ("vendorDirectFulfillmentInventory", "SubmitInventoryUpdateRequest"),
        ("vendorTransactionStatus", "GetTransactionResponse"),
    ):
        assert fast_schema.checker(api, definition) is not None, (api, definition)


def test_unknown_keywords_fall_back_to_jsonschema() -> None:
    with pytest.raises(fast_schema.Unsupported):
        fast_schema._Compiler({}).schema({"type": "string", "minItems": 1})
