"""The restart scan (agents/inventory.py) and the drift watcher (agents/ops.py) skip stored SKU
states with nothing left to do without decoding them (``stored_clean``): exactly the states
with no unpublished change, no open storefront hold and no re-read pending - in the format
written now (an explicit ``dirty`` marker first) and in the one stored before it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streams.domain.ctmessages import StockObservation
from streams.domain.inventory import SkuState, stored_clean
from streams.domain.mapping import SkuMapping


def fresh() -> SkuState:
    s = SkuState("SKU-1", mapping=SkuMapping(sku="SKU-1", asin="B0TEST0001"))
    s.apply(StockObservation("SKU-1", "wh-1", "e-1", 3, "set", 10, 10))
    s.changed_at = None
    return s


def clean() -> SkuState:
    s = fresh()
    s.last_published, s.published_at = 10, 100.0
    return s


def changed() -> SkuState:
    s = fresh()
    s.changed_at = 100.5
    return s


def held() -> SkuState:
    s = fresh()
    s.place_hold("o1:l1", "wh-1", 4, 100.0, 110.0, at=99.5)
    s.changed_at = None  # published since: only the hold keeps it dirty
    return s


def reread_only() -> SkuState:
    s = fresh()
    s.reread_at = 120.0
    return s


def legacy_bytes(s: SkuState) -> bytes:
    """What the store holds for ``s`` from before the marker: the same keys, no ``dirty``,
    open holds and the re-read (when any) after ``ca``."""
    d: dict[str, Any] = s.to_dict()
    d.pop("dirty")
    tail = {k: d.pop(k) for k in ("oh", "rr") if k in d}
    d = {k: v for k, v in d.items() if k != "ca"} | {"ca": d["ca"]} | tail
    return orjson.dumps(d)


CASES = [(clean, True), (changed, False), (held, False), (reread_only, False)]


@pytest.mark.parametrize(("make", "is_clean"), CASES, ids=lambda x: getattr(x, "__name__", x))
def test_the_marker_says_what_the_state_says(make: Any, is_clean: bool) -> None:
    s = make()
    raw = orjson.dumps(s.to_dict())
    assert stored_clean(raw) is is_clean
    assert s.dirty is (not is_clean)
    assert raw.startswith(b'{"dirty":')  # the prefix is the test, whatever follows
    assert SkuState.from_dict(orjson.loads(raw)) == s


@pytest.mark.parametrize(("make", "is_clean"), CASES, ids=lambda x: getattr(x, "__name__", x))
def test_states_stored_before_the_marker_are_still_scanned_right(make: Any, is_clean: bool) -> None:
    s = make()
    raw = legacy_bytes(s)
    assert not raw.startswith(b'{"dirty":')
    assert stored_clean(raw) is is_clean
    back = SkuState.from_dict(orjson.loads(raw))
    assert back == s and back.dirty is (not is_clean)


def test_the_marker_no_longer_depends_on_key_order() -> None:
    """The old byte test needed changed_at last; a dirty state whose last key happens to be a
    null changed_at (a re-read pending, written before it) is still found dirty."""
    s = reread_only()
    d = s.to_dict()
    moved = {k: v for k, v in d.items() if k != "ca"} | {"ca": None}
    raw = orjson.dumps(moved)
    assert raw.endswith(b'"ca":null}')
    assert not stored_clean(raw)


def test_unknown_bytes_are_decoded_not_skipped() -> None:
    assert not stored_clean(b'{ "dirty": 0, "sku": "SKU-1"}')  # not compact: decode and look
    assert not stored_clean(b"")
