"""Validate payloads against Amazon's own SP-API models (Swagger 2.0, vendored in schemas/amazon).

Swagger 2.0 definitions are JSON Schema draft 4 with ``#/definitions/...`` references, so a
draft-4 validator over a root that carries the file's ``definitions`` validates any of them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft4Validator

MODELS_DIR = Path(__file__).resolve().parents[3] / "schemas" / "amazon"

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


@cache
def _validator(api: str, definition: str) -> Draft4Validator:
    m = model(api)
    if definition not in m["definitions"]:
        raise KeyError(f"{api} has no definition {definition!r}")
    root = {"$ref": f"#/definitions/{definition}", "definitions": m["definitions"]}
    return Draft4Validator(root)


def validate(api: str, definition: str, payload: Any) -> list[str]:
    """Every way ``payload`` breaks Amazon's model, as ``path: message`` lines (empty = valid)."""
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
