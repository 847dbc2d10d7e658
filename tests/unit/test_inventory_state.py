"""Per-SKU state: dedupe, ordering, deletes, and the availability rule."""

from __future__ import annotations

from streams.adapters.codecs import dumps, loads
from streams.domain.ctmessages import StockObservation
from streams.domain.inventory import RECENT_IDS, SkuState, inventory_update, message_tag
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


def test_a_redelivered_older_message_is_a_duplicate_an_unseen_one_stale() -> None:
    s = SkuState("SKU-1")
    s.apply(obs(2, 10, msg_id="m2"))
    s.apply(obs(3, 8, msg_id="m3"))
    assert s.apply(obs(2, 10, msg_id="m2")) == "duplicate"  # seen: a redelivery
    assert s.apply(obs(1, 12, msg_id="m1")) == "stale"  # never seen: a late change
    assert s.channels["A"].available == 8


def test_the_state_keeps_tags_of_the_last_messages_not_their_ids() -> None:
    s = SkuState("SKU-1")
    ids = [f"00000000-0000-4000-8000-{v:012d}" for v in range(1, RECENT_IDS + 3)]
    for v, msg_id in enumerate(ids, start=1):
        s.apply(obs(v, v, msg_id=msg_id))
    stored = loads(dumps(s.to_dict()))["ch"]["A"]["r"]
    assert stored == [message_tag(i) for i in ids[-RECENT_IDS:]]
    assert all(isinstance(t, int) for t in stored)
    again = SkuState.from_dict(loads(dumps(s.to_dict())))
    assert again.apply(obs(len(ids) - 1, 0, msg_id=ids[-2])) == "duplicate"
    assert again.apply(obs(1, 0, msg_id=ids[0])) == "stale"  # rolled out of the window
    assert again.channels["A"].available == len(ids)


def test_a_state_stored_with_message_ids_still_knows_its_redeliveries() -> None:
    s = SkuState("SKU-1")
    s.apply(obs(2, 10, msg_id="m2"))
    s.apply(obs(3, 8, msg_id="m3"))
    d = s.to_dict()
    d["ch"]["A"]["r"] = ["m2", "m3"]  # the layout before the tags
    old = SkuState.from_dict(loads(dumps(d)))
    assert old.apply(obs(2, 10, msg_id="m2")) == "duplicate"
    assert old.apply(obs(3, 8, msg_id="m3")) == "duplicate"
    assert old.channels["A"].recent_ids == ["m2", "m3"]  # not remembered twice
    assert old.apply(obs(4, 5, msg_id="m4")) == "applied"
    assert old.channels["A"].recent_ids == ["m2", "m3", message_tag("m4")]


def test_the_version_decides_even_when_a_tag_matches() -> None:
    """A matching tag (a CRC collision, or an id commercetools' fetch path reuses for a
    newer read of the entry) never drops a newer version."""
    s = SkuState("SKU-1")
    s.apply(obs(2, 10, msg_id="n1"))
    assert s.apply(obs(5, 3, msg_id="n1")) == "applied"
    assert s.channels["A"].available == 3


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
