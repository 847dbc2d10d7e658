"""The warehouse policy (pure): eligibility, priority, per-channel safety stock, fallback."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from streams.domain.ctmessages import StockObservation
from streams.domain.inventory import SkuState
from streams.domain.mapping import Money, SkuMapping
from streams.domain.purchase_orders import ItemQuantity, PoLine
from streams.domain.warehouse_policy import (
    ChannelPolicy,
    ChannelRule,
    channel_policy_type_draft,
    is_eligible,
    missing_fields,
    plan_reservation,
    policy_from_channels,
    release_order,
    reservation_order,
    sku_buffer,
)

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
MAPPING = SkuMapping(
    sku="SKU-1", asin="B000000001", netCost=Money(amount=Decimal("1.00"), currencyCode="USD")
)


def policy(*rules: ChannelRule) -> ChannelPolicy:
    return ChannelPolicy({r.id: r for r in rules})


def rule(cid: str, eligible: bool | None = True, prio: float | None = None,
         safety: int | None = None) -> ChannelRule:  # fmt: skip
    return ChannelRule(cid, f"key-{cid}", eligible, prio, safety)


def state(stock: dict[str, int], mapping: SkuMapping | None = MAPPING) -> SkuState:
    s = SkuState("SKU-1", mapping=mapping)
    for ch, qty in stock.items():
        s.apply(StockObservation("SKU-1", ch, f"e-{ch}", 1, "set", available=qty, on_stock=qty,
                                 msg_id=f"m-{ch}"))  # fmt: skip
    return s


def line(eaches: int, seq: str = "1", po: str = "PO1") -> PoLine:
    return PoLine(
        purchaseOrderNumber=po,
        itemSequenceNumber=seq,
        lineCount=1,
        revision=NOW,
        amazonProductIdentifier="B000000001",
        sku="SKU-1",
        orderedQuantity=ItemQuantity(amount=eaches, unitOfMeasure="Eaches"),
        eaches=eaches,
        unitSize=1,
        isBackOrderAllowed=False,
    )


def allocate(s: SkuState, eaches: int, p: ChannelPolicy | None, **kw: Any) -> list[Any]:
    result, commands = s.allocate(
        line(eaches, **kw), NOW, backorder_lead_days=7, price_tolerance=Decimal("0.01"), policy=p
    )
    assert result.decision.allocatedEaches == sum(c["quantity"] for c in commands)
    return [(c["supplyChannel"], c["quantity"]) for c in commands]


# --- eligibility ------------------------------------------------------------------------------
def test_the_channel_flag_decides_and_configuration_covers_channels_without_one() -> None:
    p = policy(rule("A", True), rule("B", False), rule("C", None))
    assert is_eligible("A", MAPPING, ("B",), p)  # the flag beats the default list
    assert not is_eligible("B", MAPPING, ("B",), p)
    assert not is_eligible("C", MAPPING, ("B",), p)  # no flag: the default list, without C
    assert is_eligible("C", MAPPING, (), p)  # no flag, no list: every channel
    assert not is_eligible("unknown-id", MAPPING, ("B",), p)


def test_a_sku_mapping_narrows_eligible_channels_by_id_or_key_but_never_widens() -> None:
    p = policy(rule("A", True), rule("B", True), rule("C", False))
    narrow = MAPPING.model_copy(update={"amazonChannels": ("key-A", "C")})
    assert is_eligible("A", narrow, (), p)  # named by key
    assert not is_eligible("B", narrow, (), p)
    assert not is_eligible("C", narrow, (), p)  # the warehouse is off for Amazon


def test_without_a_policy_eligibility_is_exactly_the_configuration() -> None:
    m = MAPPING.model_copy(update={"amazonChannels": ("A",)})
    for ch in ("A", "B"):
        assert is_eligible(ch, m, ("B",), None) == m.eligible(ch, None, ("B",))
    assert is_eligible("B", None, ("A",), None)  # unmapped SKU: every channel, as before


def test_settings_may_name_a_channel_by_its_key() -> None:
    p = policy(rule("A", None), rule("B", None))
    assert is_eligible("A", MAPPING, ("key-A",), p)
    assert not is_eligible("B", MAPPING, ("key-A",), p)


# --- priority and safety stock ----------------------------------------------------------------
def test_reservation_order_is_priority_then_most_free_then_id() -> None:
    p = policy(rule("A", prio=2), rule("B", prio=1), rule("C"), rule("D"))
    free = {"A": 100, "B": 1, "C": 5, "D": 50}
    assert reservation_order(free, p) == ["B", "A", "D", "C"]
    assert reservation_order(free, None) == ["A", "D", "C", "B"]  # most free first


def test_reservation_takes_priority_first_and_only_beyond_safety_stock() -> None:
    p = policy(rule("A", prio=2, safety=5), rule("B", prio=1, safety=10))
    assert plan_reservation({"A": 50, "B": 30}, 25, p) == [("B", 20), ("A", 5)]
    assert plan_reservation({"A": 50, "B": 30}, 10, p) == [("B", 10)]
    # more than the channels offer (an inconsistent state): safety stock before nothing
    assert plan_reservation({"A": 6, "B": 12}, 5, p) == [("B", 4), ("A", 1)]


def test_release_gives_back_the_least_preferred_channel_first() -> None:
    p = policy(rule("A", prio=2), rule("B", prio=1))
    assert release_order({"A": 5, "B": 20}, p) == ["A", "B"]
    assert release_order({"A": 5, "B": 20}, None) == ["B", "A"]  # largest hold first


def test_availability_is_one_figure_beyond_per_channel_safety_stock() -> None:
    s = state({"A": 50, "B": 30, "C": 100, "D": 3})
    p = policy(
        rule("A", prio=2, safety=5),
        rule("B", prio=1, safety=10),
        rule("C", False),
        rule("D", safety=10),  # less than its safety stock: offers nothing, never negative
    )
    assert s.availability(policy=p) == 45 + 20
    assert s.master_total(policy=p) == 65
    assert s.availability() == 183  # no policy: every channel, nothing held back


def test_allocation_follows_the_policy_and_availability_reflects_it() -> None:
    s = state({"A": 50, "B": 30, "C": 100})
    p = policy(rule("A", prio=2, safety=5), rule("B", prio=1, safety=10), rule("C", False))
    assert allocate(s, 25, p) == [("B", 20), ("A", 5)]
    assert s.availability(policy=p) == 40
    # the policy changes: C serves first, B no longer serves Amazon
    p2 = policy(rule("A", prio=2, safety=5), rule("B", False), rule("C", prio=0))
    assert allocate(s, 30, p2, po="PO2") == [("C", 30)]
    # A 45 + C 100 beyond safety stock, less what is pending on them (5 + 30); the 20
    # pending on B move stock Amazon is no longer offered
    assert s.availability(policy=p2) == 110
    # PO1 closes: its release on B (not eligible) must not inflate the figure
    s.release_line("PO1#1", "PO1", "1", NOW, p2)
    assert s.availability(policy=p2) == 115


def test_without_a_policy_open_allocations_count_as_before() -> None:
    s = state({"A": 10, "B": 5})
    s.mapping = MAPPING.model_copy(update={"amazonChannels": ("A", "B"), "safetyBuffer": 3})
    s.pending = {"reserve:PO1#1:1": [4, "A", None], "release:PO0#1:2": [-2, "B", None]}
    assert s.availability() == 15 - 3 - 2 == 10


def test_a_line_beyond_what_the_policy_offers_is_not_accepted() -> None:
    s = state({"A": 12, "B": 100})
    p = policy(rule("A", prio=1, safety=10), rule("B", False))
    result, commands = s.allocate(
        line(5), NOW, backorder_lead_days=7, price_tolerance=Decimal("0.01"), policy=p
    )
    assert result.decision.accepted == 2 and result.decision.rejected == 3
    assert [(c["supplyChannel"], c["quantity"]) for c in commands] == [("A", 2)]


def test_a_redelivered_line_gets_the_same_commands_even_after_a_policy_change() -> None:
    s = state({"A": 50, "B": 30})
    p = policy(rule("A", prio=1), rule("B", prio=2))
    first = allocate(s, 10, p)
    assert allocate(s, 10, policy(rule("A", prio=2), rule("B", prio=1))) == first


def test_release_of_a_closed_line_uses_the_policy_order() -> None:
    s = state({"A": 5, "B": 30})
    p = policy(rule("A", prio=1), rule("B", prio=2))
    assert allocate(s, 20, p) == [("A", 5), ("B", 15)]
    cmds = s.release_line("PO1#1", "PO1", "1", NOW, p)
    assert [(c["supplyChannel"], c["quantity"], c["action"]) for c in cmds] == [
        ("B", 15, "release"),
        ("A", 5, "release"),
    ]


# --- buffers: per channel vs per SKU -----------------------------------------------------------
def test_the_default_buffer_is_a_fallback_for_channels_that_state_no_safety_stock() -> None:
    p_none = policy(rule("A"), rule("B"))
    p_some = policy(rule("A", safety=3), rule("B"))
    assert sku_buffer(MAPPING, 7, None, ["A", "B"]) == 7
    assert sku_buffer(MAPPING, 7, p_none, ["A", "B"]) == 7
    assert sku_buffer(MAPPING, 7, p_some, ["A", "B"]) == 0
    assert sku_buffer(MAPPING, 7, p_some, ["B"]) == 7  # A does not serve this SKU
    own = MAPPING.model_copy(update={"safetyBuffer": 4})
    assert sku_buffer(own, 7, p_some, ["A", "B"]) == 4  # the SKU's own buffer always applies
    s = state({"A": 10, "B": 10}, own)
    assert s.availability(default_buffer=7, policy=p_some) == (10 - 3) + 10 - 4


# --- reading channels --------------------------------------------------------------------------
def channel(cid: str, key: str | None, **fields: Any) -> dict[str, Any]:
    ch: dict[str, Any] = {"id": cid, "key": key, "roles": ["InventorySupply"]}
    if fields:
        ch["custom"] = {"type": {"typeId": "type", "id": "t"}, "fields": fields}
    return ch


def test_policy_is_read_from_channel_custom_fields_and_bad_values_are_reported() -> None:
    p = policy_from_channels(
        [
            channel("id-a", "wh-a", amazonEligible=True, amazonPriority=1, amazonSafetyStock=4.2),
            channel(
                "id-b", "wh-b", amazonEligible="yes", amazonPriority=True, amazonSafetyStock=-1
            ),
            channel("id-c", "wh-c"),
            {"key": "no-id"},
        ],
        fetched_at=12.5,
    )
    assert p.rules["id-a"] == ChannelRule("id-a", "wh-a", True, 1.0, 5)  # a part each: kept
    assert p.rules["id-b"] == ChannelRule("id-b", "wh-b", None, None, None)
    assert p.rules["id-c"] == ChannelRule("id-c", "wh-c")
    assert len(p.problems) == 3 and all("wh-b" in x for x in p.problems)
    assert p.key_of("id-a") == "wh-a" and p.id_of("wh-c") == "id-c"
    back = ChannelPolicy.from_dict(p.to_dict())
    assert back == p and back.revision == p.revision


def test_revision_changes_with_a_rule_not_with_the_time_it_was_read() -> None:
    a = policy_from_channels([channel("1", "k", amazonEligible=True)], 1.0)
    b = policy_from_channels([channel("1", "k", amazonEligible=True)], 2.0)
    c = policy_from_channels([channel("1", "k", amazonEligible=False)], 2.0)
    assert a.revision == b.revision != c.revision


@pytest.mark.parametrize("have", [[], ["amazonEligible"], ["amazonEligible", "amazonPriority"]])
def test_an_existing_type_gets_only_the_fields_it_lacks(have: list[str]) -> None:
    draft = channel_policy_type_draft("streams-channel-policy")
    assert draft["resourceTypeIds"] == ["channel"]
    existing = {"fieldDefinitions": [{"name": n} for n in have]}
    added = [f["name"] for f in missing_fields(existing, draft)]
    assert added == [n for n in ("amazonEligible", "amazonPriority", "amazonSafetyStock")
                     if n not in have]  # fmt: skip
