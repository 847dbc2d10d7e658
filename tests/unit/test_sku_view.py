"""The /api/sku view shows the storefront-order holds commercetools does not show yet."""

from __future__ import annotations

from streams.config import Settings
from streams.domain.availability import Defaults
from streams.domain.inventory import EntryStock, SkuState
from streams.observability.web import sku_view


def test_sku_view_lists_open_order_holds_and_the_next_reread() -> None:
    state = SkuState("SKU-1")
    state.channels["wh"] = EntryStock("e-1", version=4, available=10, on_stock=10)
    assert state.place_hold("o-1:l-1", "wh", 3, now=1000.0, reread_at=1010.0)
    view = sku_view(state, Defaults.of(Settings()), None)
    assert view["orderHolds"] == [
        {
            "key": "o-1:l-1",
            "quantity": 3,
            "channel": "wh",
            "placedAt": "1970-01-01T00:16:40.000Z",
            "baseVersion": 4,
        }
    ]
    assert view["rereadAt"] == "1970-01-01T00:16:50.000Z"
    assert view["availability"] == 7

    state.on_read(read_at=1011.0, delay=10.0)  # the read after the settle delay ends it
    view = sku_view(state, Defaults.of(Settings()), None)
    assert view["orderHolds"] == [] and view["rereadAt"] is None
