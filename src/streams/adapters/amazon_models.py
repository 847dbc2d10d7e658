"""Validate payloads against Amazon's own SP-API models (Swagger 2.0, vendored in schemas/amazon).

Swagger 2.0 definitions are JSON Schema draft 4 with ``#/definitions/...`` references, so a
draft-4 validator over a root that carries the file's ``definitions`` validates any of them.
``jsonschema-rs`` answers "valid or not" (about 1 µs per acknowledgement or ASN, against
0.4 ms for ``jsonschema``: ``bench/amazon_models.py``); only a body it refuses goes through
``jsonschema`` for the list of problems, so the messages stay the same.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
from jsonschema import Draft4Validator

# package data (src/streams/schemas links to the repository's schemas/), so an installed
# wheel finds the models outside the checkout
MODELS_DIR = Path(str(files("streams").joinpath("schemas", "amazon")))

# API name -> model file
MODELS = {
    "vendorOrders": "vendorOrders.json",
    "vendorShipments": "vendorShipments.json",
    "vendorTransactionStatus": "vendorTransactionStatus.json",
    "vendorDirectFulfillmentInventory": "vendorDirectFulfillmentInventoryV1.json",
}


@cache
def model(api: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((MODELS_DIR / MODELS[api]).read_bytes())
    return data


def _root(api: str, definition: str) -> dict[str, Any]:
    m = model(api)
    if definition not in m["definitions"]:
        raise KeyError(f"{api} has no definition {definition!r}")
    return {"$ref": f"#/definitions/{definition}", "definitions": m["definitions"]}


@cache
def _validator(api: str, definition: str) -> Draft4Validator:
    return Draft4Validator(_root(api, definition))


@cache
def _fast(api: str, definition: str) -> jsonschema_rs.Draft4Validator:
    # draft 4 without a format checker, as jsonschema: "format" is an annotation only
    return jsonschema_rs.Draft4Validator(_root(api, definition), validate_formats=False)


def is_valid(api: str, definition: str, payload: Any) -> bool:
    """Whether ``payload`` fits Amazon's model (the same answer as ``validate(...) == []``)."""
    return bool(_fast(api, definition).is_valid(payload))


def validate(api: str, definition: str, payload: Any) -> list[str]:
    """Every way ``payload`` breaks Amazon's model, as ``path: message`` lines (empty = valid)."""
    if is_valid(api, definition, payload):
        return []
    errors = sorted(_validator(api, definition).iter_errors(payload), key=lambda e: list(e.path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors]


def example(api: str, operation_id: str, status: str = "200") -> list[dict[str, Any]]:
    """Amazon's sandbox examples (``x-amzn-api-sandbox``) of one operation's response."""
    out: list[dict[str, Any]] = []
    for path_item in model(api)["paths"].values():
        for op in path_item.values():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                resp = op.get("responses", {}).get(status, {})
                for kind in ("static", "dynamic"):
                    out.extend(resp.get("x-amzn-api-sandbox", {}).get(kind, []))
    return out
