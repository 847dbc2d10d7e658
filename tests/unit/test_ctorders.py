"""Storefront order deliveries -> holds, re-reads and order look-ups (domain/ctorders.py)."""

from __future__ import annotations

import pytest

from streams.domain.ctmessages import BadRecord, Ignored, parse_delivery
from streams.domain.ctorders import HoldLine, NeedsOrder, OrderEffect, Touch, resolve
from tests.support import storefront as sf


def test_order_created_holds_each_tracked_line_once_per_line_item() -> None:
    o = sf.order(
        [sf.line_item("SKU-1", 2, "wh-1", line_id="l1"), sf.line_item("SKU-2", 1, line_id="l2")]
    )
    got = parse_delivery(sf.order_created(o))
    assert isinstance(got, OrderEffect)
    assert got.holds == (
        HoldLine("SKU-1", "wh-1", 2, f"{o['id']}:l1"),
        HoldLine("SKU-2", "", 1, f"{o['id']}:l2"),
    )
    assert got.touches == ()


@pytest.mark.parametrize("mtype", ["OrderImported", "OrderCreatedFromRecurringOrder"])
def test_imported_and_recurring_orders_hold_like_created(mtype: str) -> None:
    o = sf.order([sf.line_item("SKU-1", 3, "wh-1")], mode="TrackOnly")
    got = parse_delivery(sf.order_created(o, mtype))
    assert isinstance(got, OrderEffect) and [h.quantity for h in got.holds] == [3]


def test_inventory_mode_none_holds_nothing_and_a_line_mode_overrides_the_order() -> None:
    o = sf.order(
        [
            sf.line_item("SKU-1", 1),  # the order's None
            sf.line_item("SKU-2", 4, mode="TrackOnly"),  # its own mode wins
        ],
        mode=None,  # absent = None, commercetools' default
    )
    got = parse_delivery(sf.order_created(o))
    assert isinstance(got, OrderEffect)
    assert [h.sku for h in got.holds] == ["SKU-2"]
    o2 = sf.order([sf.line_item("SKU-3", 1, mode="None")], mode="ReserveOnOrder")
    got2 = parse_delivery(sf.order_created(o2))
    assert isinstance(got2, OrderEffect) and got2.holds == ()


def test_cloudevents_order_message_is_the_same_as_platform() -> None:
    o = sf.order([sf.line_item("SKU-1", 2, "wh-1")])
    platform = sf.order_created(o)
    a, b = parse_delivery(platform), parse_delivery(sf.cloudevent(platform))
    assert isinstance(a, OrderEffect) and isinstance(b, OrderEffect)
    assert a.holds == b.holds and b.msg_id == platform["id"]


def test_payload_not_included_reads_the_order() -> None:
    o = sf.order([sf.line_item("SKU-1", 2, "wh-1")])
    d = sf.message(
        "OrderCreated",
        o["id"],
        payloadNotIncluded={"reason": "too big", "payloadType": "OrderCreated"},
    )
    got = parse_delivery(d)
    assert isinstance(got, NeedsOrder) and got.kind == "hold" and got.order_id == o["id"]
    done = resolve(got, o)
    assert [h.key for h in done.holds] == [f"{o['id']}:{o['lineItems'][0]['id']}"]


def test_order_resource_created_change_notification_reads_the_order() -> None:
    d = {
        "notificationType": "ResourceCreated",
        "projectKey": "demo-project",
        "resource": {"typeId": "order", "id": "o-1"},
        "version": 1,
        "modifiedAt": "2026-12-06T10:00:00.000Z",
    }
    got = parse_delivery(d)
    assert isinstance(got, NeedsOrder) and got.kind == "hold"


def test_cancellation_reads_the_order_and_touches_its_lines_without_a_hold() -> None:
    o = sf.order([sf.line_item("SKU-1", 2, "wh-1"), sf.line_item("SKU-2", 1, mode="None")])
    got = parse_delivery(sf.state_changed(o["id"], "Cancelled"))
    assert isinstance(got, NeedsOrder) and got.kind == "touch"
    done = resolve(got, o)
    assert done.holds == () and done.touches == (Touch("SKU-1", "wh-1"),)
    # other state changes change no stock
    assert isinstance(parse_delivery(sf.state_changed(o["id"], "Confirmed")), Ignored)


def test_line_item_added_holds_what_was_added_keyed_by_order_version() -> None:
    o = sf.order([sf.line_item("SKU-1", 2, "wh-1", line_id="l1")], mode="ReserveOnOrder")
    li = o["lineItems"][0]
    d = sf.message("OrderLineItemAdded", o["id"], seq=3, version=5, lineItem=li, addedQuantity=3)
    got = parse_delivery(d)
    assert isinstance(got, NeedsOrder) and got.kind == "line-added"
    done = resolve(got, o)
    assert done.holds == (HoldLine("SKU-1", "wh-1", 3, f"{o['id']}:l1:v5"),)
    # the same line added to again later is another hold
    d2 = sf.message("OrderLineItemAdded", o["id"], seq=4, version=6, lineItem=li, addedQuantity=1)
    n2 = parse_delivery(d2)
    assert isinstance(n2, NeedsOrder)
    assert resolve(n2, o).holds[0].key.endswith(":v6")


def test_line_item_removed_touches_that_line_only() -> None:
    o = sf.order(
        [sf.line_item("SKU-1", 2, "wh-1", line_id="l1"), sf.line_item("SKU-2", 2, line_id="l2")]
    )
    d = sf.message(
        "OrderLineItemRemoved", o["id"], lineItemId="l2", removedQuantity=1, newQuantity=1
    )
    got = parse_delivery(d)
    assert isinstance(got, NeedsOrder)
    assert resolve(got, o).touches == (Touch("SKU-2", ""),)


def test_order_deleted_and_edit_applied_touch_every_tracked_line() -> None:
    o = sf.order([sf.line_item("SKU-1", 2, "wh-1")])
    deleted = parse_delivery(sf.message("OrderDeleted", o["id"], order=o))
    assert isinstance(deleted, OrderEffect) and deleted.touches == (Touch("SKU-1", "wh-1"),)
    edit = parse_delivery(sf.message("OrderEditApplied", o["id"], edit={}, result={}))
    assert isinstance(edit, NeedsOrder)
    assert resolve(edit, o).touches == (Touch("SKU-1", "wh-1"),)


def test_other_order_messages_are_ignored() -> None:
    got = parse_delivery(sf.message("OrderShipmentStateChanged", "o-1", shipmentState="Shipped"))
    assert isinstance(got, Ignored)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda o: o["lineItems"][0].pop("quantity"), "lineItem.quantity is missing"),
        (lambda o: o["lineItems"][0]["variant"].pop("sku"), "lineItem.variant.sku is missing"),
        (lambda o: o["lineItems"][0].update(quantity="2"), "lineItem.quantity must be an integer"),
        (lambda o: o.update(inventoryMode="Sometimes"), "is not an InventoryMode"),
        (lambda o: o.update(lineItems={}), "order.lineItems must be an array"),
    ],
)
def test_bad_orders_are_bad_records_with_the_field_named(mutate, reason) -> None:  # type: ignore[no-untyped-def]
    o = sf.order([sf.line_item("SKU-1", 2, "wh-1")])
    mutate(o)
    with pytest.raises(BadRecord, match=reason):
        parse_delivery(sf.order_created(o))
