"""Storefront orders in commercetools deliveries -> stock holds and re-reads (pure).

commercetools changes inventory for orders (inventory modes TrackOnly, ReserveOnOrder,
ReserveOnCart) without any inventory message, and the change shows on the entry up to ~10 s
late. So an order message becomes, per line item whose effective inventory mode is not
``None``:

* a :class:`HoldLine` when the order takes stock (created, imported, from a recurring order,
  a line item added by an edit): Amazon is offered that much less at once;
* a :class:`Touch` when stock may come back (line removed, edit applied, cancelled,
  deleted): nothing changes now, the entry is re-read and the master's figure wins.

Both schedule a re-read of the touched entries. Deliveries that lack what is needed (no
payload, a line known only by id, the order's own mode) become :class:`NeedsOrder`: the
order is read and :func:`resolve` finishes the job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from streams.domain.ct_fields import BadRecord
from streams.domain.ct_fields import channel as _channel
from streams.domain.ct_fields import get as _get
from streams.domain.ct_fields import opt as _opt
from streams.domain.ct_fields import quantity as _quantity

ORDER = "order"
MODES = frozenset({"None", "TrackOnly", "ReserveOnOrder", "ReserveOnCart"})
CREATED = frozenset({"OrderCreated", "OrderImported", "OrderCreatedFromRecurringOrder"})
# stock may come back: re-read, never guess (a wrong guess would offer Amazon phantom stock)
RETURNS = frozenset({"OrderLineItemRemoved", "OrderEditApplied", "OrderDeleted"})
CANCELLED = "Cancelled"

Kind = Literal["hold", "touch", "line-added", "touch-lines"]


@dataclass(frozen=True, slots=True)
class HoldLine:
    """``quantity`` eaches of ``sku`` on ``channel`` taken by an order line; ``key`` is the
    dedupe key (a redelivery never holds twice)."""

    sku: str
    channel: str
    quantity: int
    key: str


@dataclass(frozen=True, slots=True)
class Touch:
    """An entry whose stock an order may have changed: re-read it."""

    sku: str
    channel: str


@dataclass(frozen=True, slots=True)
class OrderEffect:
    order_id: str
    msg_id: str | None
    holds: tuple[HoldLine, ...] = ()
    touches: tuple[Touch, ...] = ()
    at: str | None = None  # when commercetools made the change


@dataclass(frozen=True, slots=True)
class NeedsOrder:
    """Read order ``order_id``, then :func:`resolve` with it."""

    order_id: str
    kind: Kind
    msg_id: str | None
    version: int | None = None
    line_item_ids: tuple[str, ...] = ()
    line_item: dict[str, Any] | None = field(default=None, hash=False)
    quantity: int = 0
    at: str | None = None


def effective_mode(line: dict[str, Any], order_mode: str | None) -> str:
    mode = line.get("inventoryMode") or order_mode or "None"
    if mode not in MODES:
        raise BadRecord(f"lineItem.inventoryMode {str(mode)[:40]!r} is not an InventoryMode")
    return str(mode)


def _line_sku(line: dict[str, Any]) -> str:
    variant = _get(line, "variant", dict, "lineItem")
    sku: str = _get(variant, "sku", str, "lineItem.variant")
    return sku


def _tracked_lines(order: dict[str, Any]) -> list[dict[str, Any]]:
    mode = order.get("inventoryMode")
    lines = _get(order, "lineItems", list, "order")
    out = []
    for i, line in enumerate(lines):
        if not isinstance(line, dict):
            raise BadRecord(f"order.lineItems[{i}] must be an object")
        if effective_mode(line, mode) != "None":
            out.append(line)
    return out


def holds_of_order(order: dict[str, Any]) -> tuple[HoldLine, ...]:
    """What a new order takes: one hold per tracked line item, keyed by order and line."""
    oid = _get(order, "id", str, "order")
    return tuple(
        HoldLine(
            _line_sku(line),
            _channel(line, "lineItem"),
            _quantity(line, "quantity", "lineItem"),
            f"{oid}:{_get(line, 'id', str, 'lineItem')}",
        )
        for line in _tracked_lines(order)
    )


def touches_of_order(
    order: dict[str, Any], line_item_ids: tuple[str, ...] = ()
) -> tuple[Touch, ...]:
    """The entries an order's tracked lines (or only ``line_item_ids``) draw on."""
    wanted = set(line_item_ids)
    return tuple(
        dict.fromkeys(
            Touch(_line_sku(line), _channel(line, "lineItem"))
            for line in _tracked_lines(order)
            if not wanted or line.get("id") in wanted
        )
    )


def parse_order_message(
    d: dict[str, Any], mtype: str, order_id: str, msg_id: str | None
) -> OrderEffect | NeedsOrder | None:
    """One Message for an order; None when it cannot change stock (ignore it)."""
    version = _opt(d, "resourceVersion", int, "message")
    at = d.get("createdAt") if isinstance(d.get("createdAt"), str) else None
    missing = d.get("payloadNotIncluded") is not None
    if mtype in CREATED:
        if missing:
            return NeedsOrder(order_id, "hold", msg_id, version, at=at)
        order = _get(d, "order", dict, "message")
        return OrderEffect(order_id, msg_id, holds=holds_of_order(order), at=at)
    if mtype == "OrderLineItemAdded":
        if missing:
            # which line grew, and by how much, is only in the payload; the re-read and the
            # sweep still bring the master's figure
            return NeedsOrder(order_id, "touch", msg_id, version, at=at)
        line = _get(d, "lineItem", dict, "message")
        added = _quantity(d, "addedQuantity", "message")
        return NeedsOrder(
            order_id, "line-added", msg_id, version, line_item=line, quantity=added, at=at
        )
    if mtype == "OrderLineItemRemoved":
        line_id = None if missing else _opt(d, "lineItemId", str, "message")
        ids = (line_id,) if line_id else ()
        return NeedsOrder(order_id, "touch-lines", msg_id, version, line_item_ids=ids, at=at)
    if mtype == "OrderDeleted" and not missing:
        order = _get(d, "order", dict, "message")
        return OrderEffect(order_id, msg_id, touches=touches_of_order(order), at=at)
    if mtype in RETURNS:
        return NeedsOrder(order_id, "touch", msg_id, version, at=at)
    if mtype == "OrderStateChanged":
        if missing:
            return NeedsOrder(order_id, "touch", msg_id, version, at=at)
        if _get(d, "orderState", str, "message") == CANCELLED:
            return NeedsOrder(order_id, "touch", msg_id, version, at=at)
    return None


def resolve(n: NeedsOrder, order: dict[str, Any]) -> OrderEffect:
    """Finish a :class:`NeedsOrder` with the order as read from commercetools."""
    if n.kind == "hold":
        return OrderEffect(n.order_id, n.msg_id, holds=holds_of_order(order), at=n.at)
    if n.kind == "line-added":
        assert n.line_item is not None
        line = n.line_item
        mode = effective_mode(line, order.get("inventoryMode"))
        if mode == "None" or n.quantity <= 0:
            return OrderEffect(n.order_id, n.msg_id, at=n.at)
        # a line may be added to more than once: the order version tells the additions apart
        key = f"{n.order_id}:{_get(line, 'id', str, 'lineItem')}:v{n.version}"
        hold = HoldLine(_line_sku(line), _channel(line, "lineItem"), n.quantity, key)
        return OrderEffect(n.order_id, n.msg_id, holds=(hold,), at=n.at)
    ids = n.line_item_ids if n.kind == "touch-lines" else ()
    return OrderEffect(n.order_id, n.msg_id, touches=touches_of_order(order, ids), at=n.at)
