"""One rule for what Amazon is offered: the inventory flow publishes by
:func:`streams.domain.availability.offered`, and ``/api/sku`` (``web.sku_view``) reports
the same figures under the warehouse policy. The view once recomputed eligibility, the
master total and the buffer without the policy, so it could disagree with what was sent."""

from __future__ import annotations

from decimal import Decimal

from streams.domain.availability import Defaults, buffer_of, eligible_channels, offered
from streams.domain.ctmessages import StockObservation
from streams.domain.inventory import SkuState
from streams.domain.mapping import Money, SkuMapping
from streams.domain.warehouse_policy import ChannelPolicy, ChannelRule
from streams.observability.web import sku_view

MAPPING = SkuMapping(
    sku="SKU-1", asin="B000000001", netCost=Money(amount=Decimal("1.00"), currencyCode="USD")
)
DEFAULTS = Defaults(channels=(), buffer=5)
# A serves Amazon beyond a safety stock of 2; B does not serve Amazon at all
POLICY = ChannelPolicy(
    {
        "A": ChannelRule("A", "key-A", True, 1, 2),
        "B": ChannelRule("B", "key-B", False, None, None),
    }
)


def state(mapping: SkuMapping | None = MAPPING) -> SkuState:
    s = SkuState("SKU-1", mapping=mapping)
    for ch, qty in (("A", 10), ("B", 7)):
        s.apply(StockObservation("SKU-1", ch, f"e-{ch}", 1, "set", available=qty, on_stock=qty,
                                 msg_id=f"m-{ch}"))  # fmt: skip
    return s


def test_offered_applies_the_policy_and_only_mapped_skus_are_offered() -> None:
    s = state()
    # A: 10 - safety 2; B not eligible; no SKU buffer: the channels state their safety stock
    assert offered(s, DEFAULTS, POLICY) == 8
    assert eligible_channels(s, DEFAULTS, POLICY) == {"A"}
    assert buffer_of(s, DEFAULTS, POLICY) == 0
    assert offered(s, DEFAULTS, None) == 10 + 7 - 5  # configuration only
    assert offered(state(mapping=None), DEFAULTS, POLICY) is None


def test_the_sku_view_agrees_with_what_the_inventory_flow_sends() -> None:
    s = state()
    s.last_published = offered(s, DEFAULTS, POLICY)
    view = sku_view(s, DEFAULTS, POLICY)
    assert view["availability"] == s.last_published == 8
    assert view["drift"] == 0
    assert view["publishable"] is True
    assert {c["channel"]: c["amazonEligible"] for c in view["channels"]} == {"A": True, "B": False}
    assert view["masterTotal"] == 8  # A beyond its safety stock; B serves no Amazon order
    assert view["safetyBuffer"] == 0


def test_the_sku_view_of_an_unmapped_sku_is_not_publishable_and_shows_no_drift() -> None:
    view = sku_view(state(mapping=None), DEFAULTS, POLICY)
    assert view["publishable"] is False
    assert view["drift"] is None
