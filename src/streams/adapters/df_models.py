"""Amazon's Direct Fulfillment models, looked up outside the repository.

The DF orders / shipping / transactions models are not vendored in ``schemas/amazon/``; they
are read from the directory ``STREAMS_AMAZON_MODELS_DIR`` names (a checkout of
amzn/selling-partner-api-models or a folder of its JSON files, searched by file name,
recursively). Without it a body is sent unvalidated: :func:`validate` returns None, and the
sender logs and counts that the first time per model
(``streams_df_model_unavailable_total``), never silently.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft4Validator

from streams.adapters.amazon_models import MODELS_DIR

ENV = "STREAMS_AMAZON_MODELS_DIR"
FILES = {
    "vendorDirectFulfillmentOrders": "vendorDirectFulfillmentOrders_2021-12-28.json",
    "vendorDirectFulfillmentShipping": "vendorDirectFulfillmentShipping_2021-12-28.json",
    "vendorDirectFulfillmentTransactions": "vendorDirectFulfillmentTransactions_2021-12-28.json",
}


def find_model(api: str, models_dir: str | None = None) -> Path | None:
    name = FILES[api]
    vendored = MODELS_DIR / name
    if vendored.exists():
        return vendored
    root = models_dir if models_dir is not None else os.environ.get(ENV)
    if not root or not Path(root).is_dir():
        return None
    return next(iter(sorted(Path(root).rglob(name))), None)


@cache
def _validator(api: str, definition: str, models_dir: str | None) -> Draft4Validator | None:
    path = find_model(api, models_dir)
    if path is None:
        return None
    m = orjson.loads(path.read_bytes())
    root = {"$ref": f"#/definitions/{definition}", "definitions": m["definitions"]}
    return Draft4Validator(root)


def validate(
    api: str, definition: str, payload: Any, models_dir: str | None = None
) -> list[str] | None:
    """Every way ``payload`` breaks Amazon's model (empty = valid); None = model not
    available."""
    v = _validator(api, definition, models_dir if models_dir is not None else os.environ.get(ENV))
    if v is None:
        return None
    errors = sorted(v.iter_errors(payload), key=lambda e: list(e.path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors]


def unavailable_reason(api: str) -> str:
    return f"model {api} not available: set {ENV}"
