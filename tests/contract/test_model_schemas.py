"""One source of truth: the schemas of model-parsed topics are generated from the models, and
the published schema and the worker's parser give the same answer on every example and on
mutated records (wrong types, strings for numbers and booleans, missing fields, extras)."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from streams import contracts, schemas_gen
from streams.domain.ctmessages import BadRecord, parse_delivery
from streams.domain.inventory_commands import parse_command

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
GENERATED = sorted(schemas_gen.CONTRACTS)

# Every keyword a generated schema may use: an unknown one (pydantic's "ge" when it cannot
# turn a constraint into JSON Schema) would be ignored by validators, so it is a bug.
KEYWORDS = {
    "$schema", "$id", "$ref", "$defs", "title", "description", "default", "type", "enum",
    "const", "format", "pattern", "minLength", "maxLength", "minimum", "maximum", "items",
    "exclusiveMinimum", "minItems", "maxItems", "uniqueItems", "required", "properties",
    "additionalProperties", "anyOf",
}  # fmt: skip


def keywords(node: Any, names: bool = False) -> set[str]:
    if isinstance(node, list):
        return set().union(*(keywords(v) for v in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    if names:
        return set().union(*(keywords(v) for v in node.values())) if node else set()
    out = set(node)
    for k, v in node.items():
        if k not in ("enum", "const", "default", "required"):
            out |= keywords(v, names=k in ("properties", "$defs"))
    return out


@pytest.mark.parametrize("topic", GENERATED)
def test_committed_schema_is_the_generated_one(topic: str) -> None:
    committed = (SCHEMAS / f"{topic}.schema.json").read_text()
    assert committed == schemas_gen.render(topic), (
        f"schemas/{topic}.schema.json differs from its model: run python -m streams.schemas_gen"
    )
    assert schemas_gen.main(["--check"]) == 0


@pytest.mark.parametrize("topic", GENERATED)
def test_generated_schema_is_valid_and_uses_only_known_keywords(topic: str) -> None:
    doc = schemas_gen.generate(topic)
    Draft202012Validator.check_schema(doc)
    assert keywords(doc) <= KEYWORDS, keywords(doc) - KEYWORDS


@pytest.mark.parametrize("topic", GENERATED)
def test_the_public_shape_is_kept(topic: str) -> None:
    """Names, required fields and descriptions of the hand-written schemas this replaced."""
    doc = schemas_gen.generate(topic)
    before = {
        "master.sku-mappings": (
            ["sku"],
            ["sku", "asin", "vendorProductIdentifier", "unitsPerCase", "amazonUnitOfMeasure",
             "amazonChannels", "safetyBuffer", "obsolete", "netCost"],
        ),
        "wms.dispatches": (
            ["dispatchId", "shipmentId", "purchaseOrderNumber", "shipFromWarehouse",
             "shippedDate", "shipmentType"],
            ["dispatchId", "shipmentId", "purchaseOrderNumber", "shipFromWarehouse",
             "shippedDate", "estimatedDeliveryDate", "shipmentType", "transportationMode",
             "carrierScac", "proNumber", "trackingNumbers", "billOfLading",
             "amazonReferenceNumber", "isCorrection", "cartons", "pallets"],
        ),
        "ct.inventory-commands": (
            ["commandId", "action", "sku", "supplyChannel", "quantity", "createdAt"],
            ["commandId", "action", "sku", "supplyChannel", "quantity", "purchaseOrderNumber",
             "itemSequenceNumber", "createdAt"],
        ),
    }[topic]  # fmt: skip
    assert doc["required"] == before[0]
    assert list(doc["properties"]) == before[1]
    assert doc["title"] and doc["description"] and doc["$id"]
    if topic == "wms.dispatches":
        assert "Becomes ShipmentConfirmation" in doc["properties"]["shipmentId"]["description"]
        assert doc["$defs"]["pallet"]["properties"]["cartons"]["uniqueItems"] is True


# --- agreement on examples and mutations --------------------------------------------------
def worker_accepts(topic: str, obj: Any) -> bool:
    """The worker's own parse of ``topic``'s value (its DLQ decision, key aside)."""
    raw = orjson.dumps(obj)
    try:
        if topic == "ct.inventory-commands":
            parse_command(raw, str(obj.get("sku")).encode() if isinstance(obj, dict) else b"x")
        elif topic == "ct.messages":
            parse_delivery(orjson.loads(raw))
        else:
            c = contracts.CONTRACTS[topic]
            assert c.parse is not None
            c.parse(orjson.loads(raw))  # the agents decode with orjson, then model_validate
    except (BadRecord, ValueError):
        return False
    return True


def schema_accepts(topic: str, obj: Any) -> bool:
    doc = orjson.loads((SCHEMAS / f"{topic}.schema.json").read_bytes())
    v = Draft202012Validator(doc, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return bool(v.is_valid(obj))


def examples(topic: str) -> list[Any]:
    files = sorted((SCHEMAS / "examples" / topic).glob("*.json"))
    assert files, topic
    return [orjson.loads(f.read_bytes()) for f in files]


def leaves(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += leaves(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += leaves(v, (*prefix, i))
    return out


def replaced(v: Any) -> list[Any]:
    """The wrong values tried in place of ``v``: its string form, other types, near misses."""
    out: list[Any] = [None, {}, [], "yes", "", " ", True, 0, -1, 1.5]
    if isinstance(v, bool):
        out += ["true", "false", 1, "yes"]
    elif isinstance(v, int):
        out += [str(v), float(v), v + 0.5, 10**12, f"{v}.0"]
    elif isinstance(v, str):
        out += [12, v.upper(), v + " ", v * 30, v[:1], "x" * 300]
    elif isinstance(v, list):
        out += [v + v, v[:0], {"0": v[0]} if v else {"0": 1}]
    return out


def set_at(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    doc = copy.deepcopy(doc)
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return doc


def delete_at(doc: Any, path: tuple[Any, ...]) -> Any:
    doc = copy.deepcopy(doc)
    node = doc
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]
    return doc


def mutations(doc: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for path in leaves(doc):
        here = "/".join(map(str, path))
        value = doc
        for p in path:
            value = value[p]
        for wrong in replaced(value):
            out.append((f"{here}={wrong!r}", set_at(doc, path, wrong)))
        out.append((f"{here} removed", delete_at(doc, path)))
        if isinstance(value, dict):
            out.append((f"{here}+extra", set_at(doc, (*path, "extraField"), 1)))
    out.append(("+extra", {**doc, "extraField": "x"}))
    return out


def disagreements(topic: str, docs: list[Any]) -> list[str]:
    out = []
    for doc in docs:
        for what, mutated in mutations(doc):
            s, w = schema_accepts(topic, mutated), worker_accepts(topic, mutated)
            if s != w:
                out.append(f"{what}: schema {'accepts' if s else 'refuses'}, worker {w}")
    return out


@pytest.mark.parametrize("topic", [*GENERATED, "ct.messages"])
def test_schema_and_worker_accept_every_example(topic: str) -> None:
    for doc in examples(topic):
        assert schema_accepts(topic, doc)
        assert worker_accepts(topic, doc)


@pytest.mark.parametrize("topic", GENERATED)
def test_schema_and_worker_agree_on_every_mutation_of_the_examples(topic: str) -> None:
    docs = examples(topic)
    assert disagreements(topic, docs) == []
    refused = sum(not schema_accepts(topic, m) for d in docs for _, m in mutations(d))
    assert refused > 50  # the table does reach the contract's rules


def test_the_issues_mapping_is_refused_by_both() -> None:
    bad = {"sku": "SKU-1", "unitsPerCase": "12", "obsolete": "yes"}
    assert not schema_accepts("master.sku-mappings", bad)
    assert not worker_accepts("master.sku-mappings", bad)
    good = {"sku": "SKU-1", "unitsPerCase": 12, "obsolete": True}
    assert schema_accepts("master.sku-mappings", good)
    assert worker_accepts("master.sku-mappings", good)


@pytest.mark.parametrize("topic", GENERATED)
def test_schema_and_worker_agree_on_random_double_mutations(topic: str) -> None:
    rng = random.Random(topic)
    docs = examples(topic)
    bad = []
    for i in range(300):
        first = rng.choice(mutations(docs[i % len(docs)]))[1]
        if isinstance(first, dict) and leaves(first):
            what, second = rng.choice(mutations(first))
        else:
            what, second = "single", first
        if schema_accepts(topic, second) != worker_accepts(topic, second):
            bad.append(what)
    assert bad == []


def test_a_ct_delivery_the_schema_accepts_is_one_the_worker_processes() -> None:
    """ct.messages is parsed field by field, not by a model, and its schema is written by
    hand: the worker tolerates fields it does not read (a CloudEvent's ``source``, a
    message's ``createdAt``), so it takes more than the schema; but every delivery the
    schema accepts it must process, or ``streams validate`` would pass what is dead-lettered."""
    docs = examples("ct.messages")
    rng = random.Random(4)
    bad = []
    accepted = 0
    for doc in docs:
        single = mutations(doc)
        double = [rng.choice(mutations(m)) for _, m in rng.sample(single, 60) if leaves(m)]
        for what, m in single + double:
            if schema_accepts("ct.messages", m):
                accepted += 1
                if not worker_accepts("ct.messages", m):
                    bad.append(what)
    assert bad == []
    assert accepted > 200  # the mutations do leave valid deliveries to check
