"""jsonschema-rs (the quick yes/no) and jsonschema (the messages) judge Amazon's models alike."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft4Validator

from streams.adapters import amazon_models
from streams.sandbox.amazon.generator import OrderGenerator, acknowledgement_for

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
ASN_EXAMPLES = EXAMPLES / "amazon.shipment-confirmations"
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
    elif action < 0.5 and isinstance(parent[last], str):
        parent[last] = parent[last] + rng.choice(["!", " ", "0", "-"])  # patterns, lengths
    else:
        parent[last] = rng.choice(ODD_VALUES)
    return doc


def acknowledgements(n: int) -> list[dict[str, Any]]:
    gen = OrderGenerator(seed=7)
    rng = random.Random(2)
    out: list[dict[str, Any]] = []
    while len(out) < n:
        order = gen.order()
        if order["orderDetails"]["items"]:
            code = rng.choice(["Accepted", "Backordered", "Rejected"])
            out.append(acknowledgement_for(order, code=code))
    return out


def shipment_confirmations() -> list[dict[str, Any]]:
    return [orjson.loads(p.read_bytes()) for p in sorted(ASN_EXAMPLES.glob("*.json"))]


def reference(api: str, definition: str) -> Draft4Validator:
    m = amazon_models.model(api)
    return Draft4Validator({"$ref": f"#/definitions/{definition}", "definitions": m["definitions"]})


CASES = [
    ("vendorOrders", "OrderAcknowledgement", lambda: acknowledgements(10)),
    (
        "vendorOrders",
        "SubmitAcknowledgementRequest",
        lambda: [{"acknowledgements": acknowledgements(n)} for n in (1, 2)],
    ),
    ("vendorShipments", "ShipmentConfirmation", shipment_confirmations),
    (
        "vendorShipments",
        "SubmitShipmentConfirmationsRequest",
        lambda: [{"shipmentConfirmations": [a]} for a in shipment_confirmations()],
    ),
]


@pytest.mark.parametrize(("api", "definition", "bodies"), CASES, ids=[c[1] for c in CASES])
def test_valid_bodies_pass(api: str, definition: str, bodies: Any) -> None:
    for body in bodies():
        assert reference(api, definition).is_valid(body)
        assert amazon_models.is_valid(api, definition, body)
        assert amazon_models.validate(api, definition, body) == []


@pytest.mark.parametrize(("api", "definition", "bodies"), CASES, ids=[c[1] for c in CASES])
def test_1000_mutated_bodies_get_the_same_answer(api: str, definition: str, bodies: Any) -> None:
    rng = random.Random(definition)
    ref = reference(api, definition)
    base = bodies()
    invalid = 0
    for i in range(1000):
        doc = mutate(base[i % len(base)], rng)
        expected = sorted(e.message for e in ref.iter_errors(doc))
        assert amazon_models.is_valid(api, definition, doc) == (expected == []), (doc, expected)
        got = amazon_models.validate(api, definition, doc)
        assert len(got) == len(expected), (doc, got, expected)
        invalid += bool(expected)
    assert invalid > 250  # the mutations do reach the models' rules


def test_format_is_an_annotation_as_in_draft_4_without_a_format_checker() -> None:
    ack = acknowledgements(1)[0]
    ack["acknowledgementDate"] = "not a date"
    assert reference("vendorOrders", "OrderAcknowledgement").is_valid(ack)
    assert amazon_models.is_valid("vendorOrders", "OrderAcknowledgement", ack)


def test_every_model_the_product_checks_against_builds_and_agrees() -> None:
    for api, definition in (
        ("vendorShipments", "SubmitShipmentConfirmationsRequest"),
        ("vendorDirectFulfillmentInventory", "SubmitInventoryUpdateRequest"),
        ("vendorTransactionStatus", "GetTransactionResponse"),
        ("vendorOrders", "Order"),
    ):
        for doc in ({}, [], {"payload": {}}, {"inventory": {"items": [{}]}}):
            want = reference(api, definition).is_valid(doc)
            assert amazon_models.is_valid(api, definition, doc) == want, (api, definition, doc)
