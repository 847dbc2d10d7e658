"""Per-SKU state: dedupe, ordering, deletes, and the availability rule."""

from __future__ import annotations

from streams.domain.ctmessages import StockObservation
from streams.domain.inventory import SkuState, inventory_update
from streams.domain.mapping import SkuMapping


def obs(
    version: int,
    available: int,
    *,
    channel: str = "A",
    entry: str | None = None,
    msg_id: str | None = None,
    kind: str = "set",
) -> StockObservation:
    return StockObservation(
        "SKU-1",
        channel,
        entry or f"e-{channel}",
        version,
        kind,  # type: ignore[arg-type]
        available=available,
        on_stock=available,
        msg_id=msg_id or f"{channel}-{version}-{kind}",
    )


def test_newer_versions_apply_and_older_ones_are_stale() -> None:
    s = SkuState("SKU-1")
    assert s.apply(obs(2, 10)) == "applied"
    assert s.apply(obs(1, 99)) == "stale"
    assert s.apply(obs(4, 7)) == "applied"
    assert s.apply(obs(3, 50)) == "stale"  # out of order: 3 arrived after 4
    assert s.channels["A"].available == 7


def test_redelivery_by_id_or_by_version_is_a_duplicate() -> None:
    s = SkuState("SKU-1")
    s.apply(obs(2, 10, msg_id="m1"))
    assert s.apply(obs(2, 10, msg_id="m1")) == "duplicate"
    assert s.apply(obs(2, 10, msg_id="other-id-same-version")) == "duplicate"


def test_delete_removes_the_entry_and_blocks_late_updates() -> None:
    s = SkuState("SKU-1")
    s.apply(obs(3, 10))
    assert s.apply(obs(4, 0, kind="delete")) == "applied"
    assert "A" not in s.channels
    assert s.apply(obs(3, 10, msg_id="late")) == "stale"
    assert s.apply(obs(4, 0, kind="delete")) == "duplicate"


def test_delete_without_channel_finds_the_entry_by_id() -> None:
    s = SkuState("SKU-1")
    s.apply(obs(3, 10, channel="B"))
    assert s.apply(obs(5, 0, channel="?", entry="e-B", kind="delete")) == "applied"
    assert s.channels == {}


def test_recreated_entry_for_the_same_channel_replaces_the_old_one() -> None:
    s = SkuState("SKU-1")
    s.apply(obs(7, 10, entry="old"))
    assert s.apply(obs(1, 4, entry="new")) == "applied"
    assert s.channels["A"].entry_id == "new"


def test_availability_sums_eligible_channels_minus_buffer_and_allocations() -> None:
    s = SkuState("SKU-1")
    for ch, qty in (("A", 10), ("B", 5), ("C", 100)):
        s.apply(obs(1, qty, channel=ch))
    s.mapping = SkuMapping(
        sku="SKU-1", asin="B000000001", amazonChannels=("A", "B"), safetyBuffer=3
    )
    assert s.availability() == 12
    s.pending = {"reserve:PO1#1:1": [20, "A", None]}
    assert s.availability() == 0  # never negative
    s.pending = {}
    s.mapping = s.mapping.model_copy(update={"obsolete": True})
    assert s.availability() == 0


def test_default_channels_and_buffer_apply_when_the_mapping_is_silent() -> None:
    s = SkuState("SKU-1")
    s.apply(obs(1, 10, channel="A"))
    s.apply(obs(1, 5, channel="B"))
    s.mapping = SkuMapping(sku="SKU-1", asin="B000000001")
    assert s.availability() == 15
    assert s.availability(default_channels=("B",), default_buffer=1) == 4


def test_negative_stock_counts_as_zero() -> None:
    s = SkuState("SKU-1")
    s.apply(obs(1, -4, channel="A"))
    s.apply(obs(1, 6, channel="B"))
    assert s.master_total() == 6


def test_only_mapped_skus_are_publishable() -> None:
    s = SkuState("SKU-1")
    assert not s.publishable()
    s.mapping = SkuMapping(sku="SKU-1")
    assert not s.publishable()
    s.mapping = SkuMapping(sku="SKU-1", vendorProductIdentifier="4006381333931")
    assert s.publishable()


def test_state_round_trips_through_the_wire_format() -> None:
    s = SkuState(
        "SKU-1",
        mapping=SkuMapping(sku="SKU-1", asin="B000000001"),
        pending={"reserve:PO1#1:1": [2, "A", None]},
        last_published=5,
        published_at=1.5,
        changed_at=1.0,
    )
    s.apply(obs(2, 10, msg_id="x"))
    s.apply(obs(3, 0, channel="B", kind="delete"))
    assert SkuState.from_dict(s.to_dict()) == s


def test_inventory_update_is_a_df_item_with_context() -> None:
    from streams.adapters.amazon_models import validate

    s = SkuState(
        "SKU-1",
        mapping=SkuMapping(sku="SKU-1", asin="B000000001", vendorProductIdentifier="4006381333931"),
    )
    rec = inventory_update(s, 7, "delta", "2026-01-01T00:00:00.000Z")
    item = {
        k: rec[k]
        for k in (
            "buyerProductIdentifier",
            "vendorProductIdentifier",
            "availableQuantity",
            "isObsolete",
        )
    }
    assert validate("vendorDirectFulfillmentInventory", "ItemDetails", item) == []
    assert rec["availableQuantity"] == {"amount": 7, "unitOfMeasure": "Each"}
