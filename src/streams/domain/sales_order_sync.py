"""What an existing commercetools sales order needs to match its PO (pure): create,
update, replace (re-import an order nothing else has touched), diverged (finance edits it)
or nothing. The order itself is built by :mod:`streams.domain.sales_orders`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from streams.domain.sales_orders import (
    HASH_FIELD,
    PO_FIELD,
    SalesOrder,
    close_fields,
    closed_state,
    shipment_state,
)

PlanKind = Literal["none", "create", "update", "replace", "diverged"]
_UNTOUCHED_STATES = (None, "Pending")


@dataclass(frozen=True)
class Plan:
    kind: PlanKind
    draft: dict[str, Any] | None = None
    actions: tuple[dict[str, Any], ...] = ()
    reason: str = ""


def untouched(order: Mapping[str, Any]) -> bool:
    """Nothing but this product has acted on the order since it was imported: no shipment,
    payment, return, delivery, export (syncInfo) or workflow state."""
    shipping = order.get("shippingInfo") or {}
    return (
        order.get("orderState") == "Open"
        and order.get("shipmentState") in _UNTOUCHED_STATES
        and order.get("paymentState") in _UNTOUCHED_STATES
        and not order.get("syncInfo")
        and not order.get("returnInfo")
        and not order.get("paymentInfo")
        and not shipping.get("deliveries")
        and not order.get("state")
    )


def plan_sync(
    existing: Mapping[str, Any] | None,
    desired: SalesOrder | None,
    *,
    closed: bool,
    replace_allowed: bool = True,
    close: Mapping[str, Any] | None = None,
) -> Plan:
    """How to bring the order (``existing``, None = none yet) to what the PO implies
    (``desired``, None = not settled yet; ``closed`` = Amazon closed the PO).

    * no order: create it once something is accepted (as Cancelled when already closed);
    * the lines or total changed (a new PO revision): re-import it under the same number
      when nothing else has touched it and ``replace_allowed``, else keep it and report it
      as diverged (finance edits it; an order that fulfilment or payment has begun on is
      never deleted);
    * nothing accepted any more: Cancelled; a Cancelled order is never reopened;
    * the PO closed: ``close`` (``streams.domain.po_close``) says what shipped: Complete
      with shipment state Shipped or Partial and the shipped eaches when anything shipped,
      else Cancelled (without ``close``: Complete only when the order shows it shipped);
    * otherwise only the revision field follows.
    """
    if existing is None:
        if desired is None:
            return Plan("none", reason="not settled")
        if not desired.lines:
            return Plan("none", reason="nothing accepted")
        return Plan("create", draft=desired.draft(closed=closed, close=close))
    fields: Mapping[str, Any] = (existing.get("custom") or {}).get("fields") or {}
    if desired is not None and fields.get(PO_FIELD) not in (None, desired.purchase_order_number):
        return Plan("diverged", reason=f"order number taken by PO {fields.get(PO_FIELD)}")
    state = existing.get("orderState")
    actions: list[dict[str, Any]] = []
    reason = ""
    changed = bool(
        desired is not None and desired.lines and fields.get(HASH_FIELD) != desired.content_hash
    )
    if desired is not None and changed:
        if closed:
            pass  # closing cancels it below; re-importing a closed PO's lines is pointless
        elif state == "Cancelled":
            reason = "the order is Cancelled but a new PO revision accepts lines again"
        elif replace_allowed and untouched(existing):
            return Plan("replace", draft=desired.draft(), reason="lines changed")
        else:
            reason = (
                f"PO revision {desired.revision} changed the accepted lines, but the order was "
                "acted on since it was imported (or replacing is off): edit it by hand"
            )
    if desired is not None:
        # lines not replaced: the order keeps the hash of the lines it holds
        actions += _field_actions(existing, desired, skip_hash=changed)
    if closed and close and existing.get("custom") and state != "Cancelled":
        have = (existing.get("custom") or {}).get("fields") or {}
        for name, value in close_fields(close).items():
            if have.get(name) != value:
                actions.append({"action": "setCustomField", "name": name, "value": value})
        shipment = shipment_state(close)
        if shipment and existing.get("shipmentState") not in (shipment, "Delivered"):
            actions.append({"action": "changeShipmentState", "shipmentState": shipment})
    want = _wanted_state(existing, desired, closed, close)
    if want is not None and state != want and state not in ("Cancelled", "Complete"):
        actions.append({"action": "changeOrderState", "orderState": want})
    if reason:
        return Plan("diverged", actions=tuple(actions), reason=reason)
    return Plan("update" if actions else "none", actions=tuple(actions))


def _wanted_state(
    existing: Mapping[str, Any],
    desired: SalesOrder | None,
    closed: bool,
    close: Mapping[str, Any] | None = None,
) -> str | None:
    if closed and close:
        return closed_state(close)
    if closed:
        shipped = existing.get("shipmentState") in ("Shipped", "Delivered")
        return "Complete" if shipped else "Cancelled"
    if desired is not None and not desired.lines:
        return "Cancelled"
    return None


def _field_actions(
    existing: Mapping[str, Any], desired: SalesOrder, *, skip_hash: bool
) -> list[dict[str, Any]]:
    custom = existing.get("custom")
    if not custom:  # someone removed the custom fields: put ours back
        return [
            {
                "action": "setCustomType",
                "type": {"typeId": "type", "key": desired.order_type_key},
                "fields": dict(desired.fields),
            }
        ]
    have = custom.get("fields") or {}
    out = []
    for name, value in desired.fields.items():
        if (name == HASH_FIELD and skip_hash) or have.get(name) == value:
            continue
        out.append({"action": "setCustomField", "name": name, "value": value})
    return out
