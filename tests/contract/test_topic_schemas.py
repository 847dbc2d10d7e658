"""Every topic contract has a JSON Schema; examples and what the code emits validate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from streams.adapters.amazon_models import validate as amazon_validate
from streams.adapters.codecs import dlq_record
from streams.config import Settings
from streams.domain.ctmessages import StockObservation
from streams.domain.inventory import SkuState, inventory_update
from streams.domain.mapping import SkuMapping
from streams.topics import topic_specs

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "commercetools"


def schema(name: str) -> Draft202012Validator:
    s = orjson.loads((SCHEMAS / f"{name}.schema.json").read_bytes())
    Draft202012Validator.check_schema(s)
    return Draft202012Validator(s)


def errors(v: Draft202012Validator, doc: Any) -> list[str]:
    return [e.message for e in v.iter_errors(doc)]


@pytest.mark.parametrize(
    "topic",
    sorted(p.name for p in (SCHEMAS / "examples").iterdir() if p.is_dir()),
)
def test_examples_validate(topic: str) -> None:
    v = schema(topic)
    files = sorted((SCHEMAS / "examples" / topic).glob("*.json"))
    assert files, f"no examples for {topic}"
    for f in files:
        assert errors(v, orjson.loads(f.read_bytes())) == [], f.name


def test_reference_subscription_payloads_fit_the_ct_messages_contract() -> None:
    v = schema("ct.messages")
    for name in (
        "message-payload",
        "cloudevents-payload",
        "resource-created-payload",
        "resource-updated-payload",
        "resource-deleted-payload",
    ):
        doc = orjson.loads((FIXTURES / "Subscription" / f"{name}.example.json").read_bytes())
        assert errors(v, doc) == [], name


def test_emitted_inventory_update_and_dlq_validate() -> None:
    state = SkuState(
        "SKU-1",
        mapping=SkuMapping(sku="SKU-1", asin="B07XJ8C8F5", vendorProductIdentifier="4006381333931"),
    )
    state.apply(StockObservation("SKU-1", "ch", "e", 1, "set", available=9, on_stock=9))
    rec = inventory_update(state, state.availability(), "delta", "2026-11-27T08:00:00.000Z")
    assert errors(schema("amazon.inventory-updates"), rec) == []
    item = {
        k: rec[k]
        for k in (
            "availableQuantity",
            "isObsolete",
            "buyerProductIdentifier",
            "vendorProductIdentifier",
        )
    }
    assert amazon_validate("vendorDirectFulfillmentInventory", "ItemDetails", item) == []
    dl = dlq_record(
        b"\xff\x00",
        "not JSON: x",
        topic="ct.messages",
        partition=0,
        offset=3,
        timestamp=1.0,
        failed_at=2.0,
    )
    assert errors(schema("dlq"), dl) == []
    assert dl["valueText"] is None and dl["valueBase64"] == "/wA="


def test_emitted_mapping_validates() -> None:
    m = SkuMapping.model_validate_json(
        (SCHEMAS / "examples" / "master.sku-mappings" / "sku-1001.json").read_bytes()
    )
    assert errors(schema("master.sku-mappings"), m.model_dump(mode="json")) == []


def test_every_input_topic_has_a_schema_and_a_dlq() -> None:
    names = {t.name for t in topic_specs(Settings())}
    for topic in ("ct.messages", "master.sku-mappings", "wms.dispatches"):
        assert (SCHEMAS / f"{topic}.schema.json").is_file()
        assert f"{topic}.dlq" in names


def _order_example() -> dict[str, Any]:
    return orjson.loads((SCHEMAS / "examples" / "ct.messages" / "order-created.json").read_bytes())


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["order"]["lineItems"][0].pop("quantity"),
        lambda d: d["order"]["lineItems"][0].update(quantity="2"),
        lambda d: d["order"]["lineItems"][0]["variant"].pop("sku"),
        lambda d: d["order"].update(inventoryMode="Sometimes"),
        lambda d: d["order"].update(lineItems={}),
        lambda d: d.pop("order"),
    ],
)
def test_the_ct_messages_contract_and_the_order_parser_reject_the_same_orders(mutate: Any) -> None:
    from streams.domain.ctmessages import BadRecord, parse_delivery

    good = _order_example()
    assert errors(schema("ct.messages"), good) == []
    parse_delivery(good)
    bad = _order_example()
    mutate(bad)
    assert errors(schema("ct.messages"), bad) != []
    with pytest.raises(BadRecord):
        parse_delivery(bad)
