"""The wms.dispatches contract: JSON Schema, examples and the pydantic model agree."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import ValidationError

from streams.domain.dispatch import Dispatch

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "wms.dispatches.schema.json").read_text())
EXAMPLES = sorted((ROOT / "schemas" / "examples" / "wms.dispatches").glob("*.json"))
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=FormatChecker())


def schema_errors(doc: Any) -> list[str]:
    return [e.message for e in VALIDATOR.iter_errors(doc)]


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((ROOT / "schemas/examples/wms.dispatches" / name).read_text())
    return doc


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)


def test_examples_cover_every_shipment_type() -> None:
    kinds = {json.loads(p.read_text())["shipmentType"] for p in EXAMPLES}
    assert kinds == {"SmallParcel", "LessThanTruckLoad", "TruckLoad"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates_and_parses(path: Path) -> None:
    doc = json.loads(path.read_text())
    assert schema_errors(doc) == []
    dispatch = Dispatch.model_validate(doc)
    # what the model writes back is itself a valid dispatch, and parses to the same value
    dumped = dispatch.model_dump(mode="json", exclude_none=True)
    assert schema_errors(dumped) == []
    assert Dispatch.model_validate(dumped) == dispatch


def _without(doc: dict[str, Any], key: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    del out[key]
    return out


def _with(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    *parents, last = path.split("/")
    node: Any = out
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


SMALL = load("small-parcel.json")
LTL = load("ltl.json")

INVALID = {
    "no dispatchId": _without(SMALL, "dispatchId"),
    "no shipmentId": _without(SMALL, "shipmentId"),
    "no purchaseOrderNumber": _without(SMALL, "purchaseOrderNumber"),
    "no shipFromWarehouse": _without(SMALL, "shipFromWarehouse"),
    "no shippedDate": _without(SMALL, "shippedDate"),
    "no shipmentType": _without(SMALL, "shipmentType"),
    "blank shipmentId": _with(SMALL, "shipmentId", "  "),
    "unknown shipmentType": _with(SMALL, "shipmentType", "Freight"),
    "unknown transportationMode": _with(SMALL, "transportationMode", "Rail"),
    "date without time": _with(SMALL, "shippedDate", "2024-03-11"),
    "date-time without offset": _with(SMALL, "shippedDate", "2024-03-11T14:05:00"),
    "date-time as Unix time": _with(SMALL, "shippedDate", 1710165900),
    "shipmentId as number": _with(SMALL, "shipmentId", 1637144422),
    "no containers": _without(_without(SMALL, "cartons"), "trackingNumbers"),
    "empty cartons": _with(SMALL, "cartons", []),
    "carton without items": _with(SMALL, "cartons/0/items", []),
    "carton without sscc": _with(
        SMALL, "cartons/0", {"items": [{"sku": "A", "quantityEaches": 1}]}
    ),
    "zero quantity": _with(SMALL, "cartons/0/items/0/quantityEaches", 0),
    "fractional quantity": _with(SMALL, "cartons/0/items/0/quantityEaches", 1.5),
    "quantity as string": _with(SMALL, "cartons/0/items/0/quantityEaches", "12"),
    "item without sku": _with(SMALL, "cartons/0/items/0", {"quantityEaches": 1}),
    "repeated tracking number": _with(SMALL, "trackingNumbers", ["1Z1", "1Z1"]),
    "isCorrection not boolean": _with(SMALL, "isCorrection", "yes"),
    "pallet without cartons or items": _with(LTL, "pallets/0", {"sscc": "306141412000000017"}),
    "pallet with empty cartons": _with(LTL, "pallets/0/cartons", []),
    "pallet lists a carton twice": _with(
        LTL, "pallets/0/cartons", ["006141411000000033", "006141411000000033"]
    ),
}


@pytest.mark.parametrize("doc", INVALID.values(), ids=INVALID.keys())
def test_schema_and_model_reject_the_same_documents(doc: dict[str, Any]) -> None:
    assert schema_errors(doc), "the schema accepted it"
    with pytest.raises(ValidationError):
        Dispatch.model_validate(doc)


def test_business_rules_are_not_the_contract() -> None:
    # A bad SSCC, SCAC or a missing BOL are ASN rule breaches, reported to the fulfilment
    # team by the ASN check; the dispatch itself is well-formed.
    doc = _with(LTL, "cartons/0/sscc", "123")
    doc = _with(doc, "carrierScac", "not a scac")
    doc = _without(doc, "billOfLading")
    assert schema_errors(doc) == []
    assert Dispatch.model_validate(doc).cartons[0].sscc == "123"


def test_unknown_properties_are_allowed_and_ignored() -> None:
    doc = _with(SMALL, "wmsOperator", "jdoe")
    assert schema_errors(doc) == []
    assert Dispatch.model_validate(doc) == Dispatch.model_validate(SMALL)


def test_sscc_application_identifier_is_removed() -> None:
    doc = _with(LTL, "cartons/0/sscc", "(00)006141411000000033")
    doc = _with(doc, "pallets/0/sscc", "00306141412000000017")
    d = Dispatch.model_validate(doc)
    assert d.cartons[0].sscc == "006141411000000033"
    assert d.pallets[0].sscc == "306141412000000017"
    assert d.pallets[0].cartons is not None
    assert d.pallets[0].cartons[0] == "006141411000000033"


def test_shipped_eaches_counts_cartons_and_loose_pallet_items() -> None:
    d = Dispatch.model_validate(load("truckload.json"))
    assert d.shipped_eaches() == {"WATER-STILL-500": 1920, "WATER-SPARK-500": 720}
    d = Dispatch.model_validate(LTL)
    assert d.shipped_eaches() == {"KETTLE-STEEL-17": 8, "TEA-EARLGREY-100": 24, "MUG-BLUE-350": 12}
