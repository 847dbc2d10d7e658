"""Validate payloads against Amazon's own SP-API models (Swagger 2.0).

Two places hold the models: the ones vendored in ``schemas/amazon`` (retail orders, retail
shipments, retail transaction status, DF inventory) and a directory the deployment names in
``STREAMS_AMAZON_MODELS_DIR`` (a checkout of amzn/selling-partner-api-models, or a folder of
its model files, searched recursively by file name) for the rest: Direct Fulfillment orders,
shipping and transactions 2021-12-28, and the Tokens API. Those are not shipped with the
product, so a model found in neither place is reported once, counted, and that API's bodies
go out without model validation (:func:`validate` returns no problems for it) - never silently.

Swagger 2.0 definitions are JSON Schema draft 4 with ``#/definitions/...`` references, so a
draft-4 validator over a root that carries the file's ``definitions`` validates any of them.
``jsonschema-rs`` answers "valid or not" (about 1 µs per acknowledgement or ASN, against
0.4 ms for ``jsonschema``: ``bench/amazon_models.py``); only a body it refuses goes through
``jsonschema`` for the list of problems, so the messages stay the same.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
from jsonschema import Draft4Validator

log = logging.getLogger(__name__)

# package data (src/streams/schemas links to the repository's schemas/), so an installed
# wheel finds the models outside the checkout
MODELS_DIR = Path(str(files("streams").joinpath("schemas", "amazon")))
ENV_DIR = "STREAMS_AMAZON_MODELS_DIR"

# API name -> model file (vendored in MODELS_DIR, else looked up in STREAMS_AMAZON_MODELS_DIR)
MODELS = {
    "vendorOrders": "vendorOrders.json",
    "vendorShipments": "vendorShipments.json",
    "vendorTransactionStatus": "vendorTransactionStatus.json",
    "vendorInvoices": "vendorInvoices.json",
    "vendorDirectFulfillmentInventory": "vendorDirectFulfillmentInventoryV1.json",
    "df-orders": "vendorDirectFulfillmentOrders_2021-12-28.json",
    "df-shipping": "vendorDirectFulfillmentShipping_2021-12-28.json",
    "df-transactions": "vendorDirectFulfillmentTransactions_2021-12-28.json",
    "df-payments": "vendorDirectFulfillmentPaymentsV1.json",
    "tokens": "tokens_2021-03-01.json",
}

# API name -> bodies that went out without model validation (the model was not available)
UNVALIDATED: Counter[str] = Counter()
# called with the API name on every such body (the app counts them in a metric)
unvalidated_hooks: list[Callable[[str], None]] = []


class ModelUnavailable(LookupError):
    def __init__(self, api: str) -> None:
        file = MODELS.get(api, api)
        super().__init__(
            f"model {api} ({file}) not available: set {ENV_DIR} to a checkout of "
            "amzn/selling-partner-api-models or a folder of its model files"
        )
        self.api = api


_configured: list[Path] = []  # set_models_dir's, ahead of the environment


def configure(
    path: Path | str | None = None, on_unvalidated: Callable[[str], None] | None = None
) -> None:
    """Look models up in ``path`` (the ``amazon_models_dir`` setting; None = the environment
    only) and call ``on_unvalidated(api)`` for each body sent without validation (replaces
    an earlier hook: one per process)."""
    _configured[:] = [Path(path)] if path else []
    unvalidated_hooks[:] = [on_unvalidated] if on_unvalidated else []


def models_dir() -> Path | None:
    if _configured:
        return _configured[0]
    value = os.environ.get(ENV_DIR, "").strip()
    return Path(value) if value else None


@cache
def _find(api: str, extra: Path | None) -> Path | None:
    name = MODELS[api]
    vendored = MODELS_DIR / name
    if vendored.is_file():
        return vendored
    if extra is None or not extra.is_dir():
        return None
    return next((p for p in sorted(extra.rglob(name)) if p.is_file()), None)


def model_path(api: str) -> Path | None:
    """Where ``api``'s model is, or None (KeyError for an unknown API name)."""
    return _find(api, models_dir())


def available(api: str) -> bool:
    return model_path(api) is not None


@cache
def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    return data


def model(api: str) -> dict[str, Any]:
    """``api``'s model; :class:`ModelUnavailable` if it is in neither place."""
    path = model_path(api)
    if path is None:
        raise ModelUnavailable(api)
    return _load(path)


def _root(path: Path, definition: str) -> dict[str, Any]:
    m = _load(path)
    if definition not in m["definitions"]:
        raise KeyError(f"{path.name} has no definition {definition!r}")
    return {"$ref": f"#/definitions/{definition}", "definitions": m["definitions"]}


@cache
def _validator(path: Path, definition: str) -> Draft4Validator:
    return Draft4Validator(_root(path, definition))


@cache
def _fast(path: Path, definition: str) -> jsonschema_rs.Draft4Validator:
    # draft 4 without a format checker, as jsonschema: "format" is an annotation only
    return jsonschema_rs.Draft4Validator(_root(path, definition), validate_formats=False)


def is_valid(api: str, definition: str, payload: Any) -> bool:
    """Whether ``payload`` fits Amazon's model (the same answer as ``validate(...) == []``)."""
    return not validate(api, definition, payload)


@cache
def _warn_once(api: str, message: str) -> None:
    log.warning("%s; its bodies are sent without model validation", message)


def validate(api: str, definition: str, payload: Any) -> list[str]:
    """Every way ``payload`` breaks Amazon's model, as ``path: message`` lines (empty = valid).

    When ``api``'s model is not available: no problems, the body counted in
    :data:`UNVALIDATED` (and the hooks), and one warning per API.
    """
    path = model_path(api)
    if path is None:
        UNVALIDATED[api] += 1
        _warn_once(api, str(ModelUnavailable(api)))
        for hook in unvalidated_hooks:
            hook(api)
        return []
    if _fast(path, definition).is_valid(payload):
        return []
    errors = sorted(_validator(path, definition).iter_errors(payload), key=lambda e: list(e.path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors]


def example(api: str, operation_id: str, status: str = "200") -> list[dict[str, Any]]:
    """Amazon's sandbox examples (``x-amzn-api-sandbox``) of one operation's response; none
    when the model is not available."""
    if not available(api):
        return []
    out: list[dict[str, Any]] = []
    for path_item in model(api)["paths"].values():
        for op in path_item.values():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                resp = op.get("responses", {}).get(status, {})
                for kind in ("static", "dynamic"):
                    out.extend(resp.get("x-amzn-api-sandbox", {}).get(kind, []))
    return out
