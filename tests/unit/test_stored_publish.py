"""The debounce timer's path on the stored layout (``stored_update``, ``stored_told``) gives
exactly what the SkuState path gives: the same delta, and the same bytes stored for the mark,
dirty marker included."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streams.adapters.codecs import dumps, loads
from streams.domain.ctmessages import StockObservation
from streams.domain.inventory import (
    SkuState,
    inventory_update,
    stored_clean,
    stored_told,
    stored_update,
)
from streams.domain.mapping import SkuMapping


def observed(state: SkuState, channel: str, available: int, version: int = 1) -> SkuState:
    state.apply(
        StockObservation(
            sku=state.sku, channel=channel, entry_id=f"e-{channel}", version=version,
            kind="set", available=available, on_stock=available, msg_id=f"m-{version}",
        )
    )  # fmt: skip
    return state


def mapped(**fields: object) -> SkuState:
    s = SkuState("SKU-1", mapping=SkuMapping.model_validate({"sku": "SKU-1", **fields}))
    observed(s, "ch-a", 7)
    observed(s, "ch-b", 3)
    s.changed_at = 1_700_000_000.5
    return s


def with_hold(s: SkuState) -> SkuState:
    s.place_hold("order-1:line-1", "ch-a", 2, 1_700_000_001.0, 1_700_000_011.0, at=1_700_000_000.9)
    return s


def with_reread(s: SkuState) -> SkuState:
    s.request_reread(1_700_000_020.0)
    return s


def published_before(s: SkuState) -> SkuState:
    s.last_published, s.published_at = 4, 1_699_999_000.0
    return s


STATES: dict[str, Callable[[], SkuState]] = {
    "asin": lambda: mapped(asin="B000000001"),
    "vendor id only": lambda: mapped(vendorProductIdentifier="V-1"),
    "both, obsolete": lambda: mapped(
        asin="B000000001", vendorProductIdentifier="V-1", obsolete=True
    ),
    "published before": lambda: published_before(mapped(asin="B000000001")),
    "open hold": lambda: with_hold(mapped(asin="B000000001")),
    "re-read due": lambda: with_reread(mapped(asin="B000000001")),
}


@pytest.mark.parametrize("name", sorted(STATES))
@pytest.mark.parametrize("kind", ["delta", "snapshot"])
def test_the_delta_from_the_stored_state_is_the_states_own(name: str, kind: str) -> None:
    state = STATES[name]()
    d = loads(dumps(state.to_dict()))
    at = "2026-12-07T12:00:00.000Z"
    assert stored_update(d, 9, kind, at) == inventory_update(state, 9, kind, at)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(STATES))
def test_the_mark_on_the_stored_state_stores_what_the_states_mark_stores(name: str) -> None:
    state = STATES[name]()
    d = loads(dumps(state.to_dict()))
    now = 1_700_000_005.25
    state.last_published, state.published_at = 9, now  # the SkuState path of the timer
    state.changed_at = state.order_at = None
    want = dumps(state.to_dict())
    marked = stored_told(d, 9, now)
    assert marked is not None
    assert dumps(marked) == want
    assert stored_clean(want) == (name not in ("open hold", "re-read due"))


def test_a_state_stored_before_the_dirty_marker_is_left_to_the_decoding_path() -> None:
    d = mapped(asin="B000000001").to_dict()
    del d["dirty"]
    legacy = loads(dumps(d))
    assert stored_told(legacy, 9, 1.0) is None
    assert legacy == d  # untouched
