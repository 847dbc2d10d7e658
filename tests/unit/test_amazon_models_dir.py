"""Amazon models: vendored ones, the STREAMS_AMAZON_MODELS_DIR lookup, and what happens
when a model is in neither place (reported once, counted, the body not validated)."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest

from streams.adapters import amazon_models as am

# a hand-written stand-in for a model file (not Amazon's): one definition
FAKE_MODEL = {
    "swagger": "2.0",
    "paths": {},
    "definitions": {
        "Order": {
            "type": "object",
            "required": ["purchaseOrderNumber"],
            "properties": {"purchaseOrderNumber": {"type": "string"}},
        }
    },
}


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(am.ENV_DIR, raising=False)
    am.configure(None)
    am.UNVALIDATED.clear()
    am._warn_once.cache_clear()


def test_vendored_models_need_no_directory() -> None:
    assert am.available("vendorOrders")
    assert am.validate("vendorOrders", "Order", {}) != []


def test_a_missing_model_is_reported_once_counted_and_not_validated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    am.configure(None, on_unvalidated=seen.append)
    assert not am.available("df-orders")
    with pytest.raises(am.ModelUnavailable, match="set STREAMS_AMAZON_MODELS_DIR"):
        am.model("df-orders")
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert am.validate("df-orders", "Order", {"not": "an order"}) == []
    assert am.UNVALIDATED["df-orders"] == 3 and seen == ["df-orders"] * 3
    warnings = [r.getMessage() for r in caplog.records if "df-orders" in r.getMessage()]
    assert len(warnings) == 1 and "without model validation" in warnings[0]
    assert am.example("tokens", "createRestrictedDataToken") == []


def test_models_are_found_by_file_name_anywhere_under_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nested = tmp_path / "models" / "vendor-direct-fulfillment-orders-api-model"
    nested.mkdir(parents=True)
    (nested / am.MODELS["df-orders"]).write_bytes(orjson.dumps(FAKE_MODEL))
    monkeypatch.setenv(am.ENV_DIR, str(tmp_path))
    assert am.model_path("df-orders") == nested / am.MODELS["df-orders"]
    assert am.validate("df-orders", "Order", {"purchaseOrderNumber": "A1"}) == []
    assert am.validate("df-orders", "Order", {}) == [
        "(root): 'purchaseOrderNumber' is a required property"
    ]
    assert am.UNVALIDATED["df-orders"] == 0
    assert not am.available("df-shipping")  # only what is there


def test_the_setting_comes_before_the_environment(tmp_path: Path) -> None:
    (tmp_path / am.MODELS["tokens"]).write_bytes(orjson.dumps(FAKE_MODEL))
    am.configure(tmp_path)
    assert am.model_path("tokens") == tmp_path / am.MODELS["tokens"]


def test_amazons_df_and_tokens_models_load_from_the_directory(amazon_models_dir: Path) -> None:
    am.configure(amazon_models_dir)
    for api in ("df-orders", "df-shipping", "df-transactions", "tokens"):
        assert am.available(api), api
    assert am.validate("df-orders", "SubmitAcknowledgementRequest", {"orderAcknowledgements": [{}]})
    assert am.example("tokens", "createRestrictedDataToken")  # Amazon's sandbox examples
