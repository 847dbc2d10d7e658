"""Sales orders for finance (pure): one commercetools order per acknowledged Amazon PO.

Finance reconciles Amazon's remittances against commercetools, so every PO we accepted
becomes an order there, in eaches, named after the PO (``AMZ-<PO>``) and carrying Amazon's
references (PO number, date, type, ship-to, selling and buying party, revision). This module
builds the ``OrderImportDraft`` from the ``pos`` record (the PO and its line decisions) and
plans what an existing order needs; the agent only reads, calls and writes.

Lines are **custom line items**, not line items by SKU. An ``OrderImportDraft`` line item
names a product variant, and commercetools resolves ``variant.sku`` against the product
catalogue: the emulator refuses an unknown SKU (400 "A product containing a variant with SKU
... not found") and so does the API for a SKU that is not (or no longer, or not yet) a
published variant. A finance record must not depend on catalogue state, so each accepted PO
line is a custom line item: ``name.en`` is the SKU exactly, ``slug`` the SKU made URL-safe,
``key`` the PO line, ``quantity`` the accepted eaches, ``money`` the price per each, and a
custom Type on the line keeps the SKU and Amazon's own figures (item sequence number, ASIN,
vendor product id, accepted and backordered quantity in Amazon's unit, unit size, netCost).

Money: Amazon prices a line per ordering unit (a case of ``unitSize`` eaches). The price per
each is rounded half-even to the currency's minor unit; the order's ``totalPrice`` (which an
import takes as given, it is not recomputed) is the exact Amazon value of the accepted units,
so the order total matches what Amazon pays even when a line's rounded each price does not.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from streams.domain.allocation import LineDecision
from streams.domain.purchase_order import is_acknowledged
from streams.domain.purchase_orders import Order, sequence_sort_key
from streams.domain.warehouse_policy import field_definition, type_draft

# order custom fields
PO_FIELD = "amazonPurchaseOrderNumber"
PO_DATE_FIELD = "amazonPurchaseOrderDate"
PO_TYPE_FIELD = "amazonPurchaseOrderType"
SHIP_TO_FIELD = "amazonShipToParty"
SELLING_FIELD = "amazonSellingParty"
BUYING_FIELD = "amazonBuyingParty"
REVISION_FIELD = "amazonPurchaseOrderRevision"
HASH_FIELD = "streamsContentHash"  # what the lines and total were built from
SHIPPED_FIELD = "amazonShippedEaches"  # eaches shipped when Amazon closed the PO
CLOSE_FIELD = "amazonCloseOutcome"  # received, partially-received or cancelled

# ISO 4217 minor units that differ from 2 (Amazon vendor marketplaces use few of them)
_MINOR_UNITS = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3,
                "JOD": 3, "TND": 3}  # fmt: skip
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_UNTOUCHED_STATES = (None, "Pending")

PlanKind = Literal["none", "create", "update", "replace", "diverged"]


class SalesOrderError(ValueError):
    """The PO cannot become an order (e.g. its lines are priced in two currencies)."""


def sales_order_number(purchase_order_number: str, prefix: str = "AMZ-") -> str:
    return f"{prefix}{purchase_order_number}"


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency.upper(), 2)


def cents(amount: Decimal, currency: str) -> int:
    """``amount`` in the currency's minor unit, rounded half-even (banker's rounding)."""
    scaled = amount.scaleb(minor_units(currency))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _slug(text: str, prefix: str) -> str:
    s = _UNSAFE.sub("-", text).strip("-")[:200]
    return s if len(s) >= 2 else f"{prefix}-{s or 'x'}"


@dataclass(frozen=True)
class SalesLine:
    item_sequence_number: str
    sku: str
    eaches: int
    accepted: int  # in Amazon's ordering unit
    backordered: int
    unit_of_measure: str
    unit_size: int
    currency: str
    net_cost: Decimal  # per ordering unit, as acknowledged
    amazon_product_identifier: str | None = None
    vendor_product_identifier: str | None = None

    @property
    def each_cents(self) -> int:
        return cents(self.net_cost / self.unit_size, self.currency)

    @property
    def value_cents(self) -> int:
        return cents(self.net_cost * self.accepted, self.currency)

    def draft(self, line_type_key: str) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "sku": self.sku,
            "amazonItemSequenceNumber": self.item_sequence_number,
            "amazonAcceptedQuantity": self.accepted,
            "amazonBackorderedQuantity": self.backordered,
            "amazonUnitOfMeasure": self.unit_of_measure,
            "amazonUnitSize": self.unit_size,
            "amazonNetCost": {
                "currencyCode": self.currency,
                "centAmount": cents(self.net_cost, self.currency),
            },
        }
        if self.amazon_product_identifier:
            fields["amazonProductIdentifier"] = self.amazon_product_identifier
        if self.vendor_product_identifier:
            fields["vendorProductIdentifier"] = self.vendor_product_identifier
        return {
            "key": _slug(f"po-line-{self.item_sequence_number}", "po-line"),
            "name": {"en": self.sku},
            "slug": _slug(self.sku, "sku"),
            "quantity": self.eaches,
            "money": {"currencyCode": self.currency, "centAmount": self.each_cents},
            "custom": {"type": {"typeId": "type", "key": line_type_key}, "fields": fields},
        }


@dataclass(frozen=True)
class SalesOrder:
    """What the order for one PO should hold. ``lines`` empty = nothing was accepted."""

    order_number: str
    purchase_order_number: str
    revision: str
    lines: tuple[SalesLine, ...]
    fields: Mapping[str, Any] = field(default_factory=dict)  # order custom fields, hash incl.
    currency: str | None = None
    order_type_key: str = ""
    line_type_key: str = ""

    @property
    def total_cents(self) -> int:
        return sum(ln.value_cents for ln in self.lines)

    @property
    def accepted_eaches(self) -> int:
        return sum(ln.eaches for ln in self.lines)

    @property
    def content_hash(self) -> str:
        return str(self.fields[HASH_FIELD])

    def draft(
        self, *, closed: bool = False, close: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The ``OrderImportDraft`` (only meaningful with lines); ``close`` is how the PO
        ended (``streams.domain.po_close``) when Amazon closed it."""
        assert self.currency is not None and self.lines
        fields = {**self.fields, **close_fields(close)} if closed else dict(self.fields)
        draft: dict[str, Any] = {
            "orderNumber": self.order_number,
            "purchaseOrderNumber": self.purchase_order_number,
            "orderState": closed_state(close) if closed else "Open",
            "totalPrice": {"currencyCode": self.currency, "centAmount": self.total_cents},
            "customLineItems": [ln.draft(self.line_type_key) for ln in self.lines],
            "custom": {"type": {"typeId": "type", "key": self.order_type_key}, "fields": fields},
        }
        shipment = shipment_state(close) if closed else None
        if shipment:
            draft["shipmentState"] = shipment
        return draft


def closed_state(close: Mapping[str, Any] | None) -> str:
    """A closed PO's order: Complete when anything shipped (Amazon received it), else
    Cancelled (rejected or cancelled)."""
    return "Complete" if close and int(close.get("shipped") or 0) > 0 else "Cancelled"


def shipment_state(close: Mapping[str, Any] | None) -> str | None:
    if not close or int(close.get("shipped") or 0) <= 0:
        return None
    return "Shipped" if close.get("outcome") == "received" else "Partial"


def close_fields(close: Mapping[str, Any] | None) -> dict[str, Any]:
    if not close:
        return {}
    return {SHIPPED_FIELD: int(close.get("shipped") or 0), CLOSE_FIELD: str(close["outcome"])}


def build_sales_order(
    po: Mapping[str, Any],
    *,
    prefix: str = "AMZ-",
    order_type_key: str,
    line_type_key: str,
) -> SalesOrder | None:
    """The order the ``pos`` record implies, or None while it is not settled: the current
    revision is not acknowledged (:func:`~streams.domain.purchase_order.is_acknowledged`),
    or a line is undecided or on hold. Raises :class:`SalesOrderError` when it can never
    become one."""
    rev = po.get("rev")
    if not rev or not is_acknowledged(po):
        return None
    decisions: Mapping[str, Any] = po.get("decisions") or {}
    number = str(po["po"])
    lines: list[SalesLine] = []
    for seq in sorted(po.get("lines") or {}, key=sequence_sort_key):
        raw = decisions.get(seq)
        if raw is None:
            return None
        d = LineDecision.model_validate(raw)
        if d.hold is not None:
            return None
        if d.allocatedEaches <= 0:
            continue  # rejected, backordered only, or cancelled by Amazon: nothing sold yet
        if d.sku is None or d.netCost is None:
            raise SalesOrderError(f"PO {number} line {seq}: accepted without a SKU or netCost")
        lines.append(
            SalesLine(
                item_sequence_number=seq,
                sku=d.sku,
                eaches=d.allocatedEaches,
                accepted=d.accepted,
                backordered=d.backordered,
                unit_of_measure=d.orderedQuantity.unitOfMeasure or "Eaches",
                unit_size=d.unitSize or 1,
                currency=d.netCost.currencyCode,
                net_cost=d.netCost.amount,
                amazon_product_identifier=d.amazonProductIdentifier,
                vendor_product_identifier=d.vendorProductIdentifier,
            )
        )
    currencies = {ln.currency for ln in lines}
    if len(currencies) > 1:
        raise SalesOrderError(f"PO {number}: lines priced in {sorted(currencies)}")
    currency = currencies.pop() if currencies else None
    fields = _order_fields(po, number, str(rev))
    so = SalesOrder(
        order_number=sales_order_number(number, prefix),
        purchase_order_number=number,
        revision=str(rev),
        lines=tuple(lines),
        currency=currency,
        order_type_key=order_type_key,
        line_type_key=line_type_key,
    )
    content = {
        "currency": currency,
        "total": so.total_cents,
        "lines": [ln.draft(line_type_key) for ln in lines],
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:32]
    return replace(so, fields={**fields, HASH_FIELD: digest})


def _order_fields(po: Mapping[str, Any], number: str, rev: str) -> dict[str, Any]:
    out: dict[str, Any] = {PO_FIELD: number, REVISION_FIELD: rev}
    raw = po.get("order")
    if not raw:
        return out
    details = Order.model_validate(raw).orderDetails
    if details is None:
        return out
    out[PO_DATE_FIELD] = _iso(details.purchaseOrderDate)
    if details.purchaseOrderType:
        out[PO_TYPE_FIELD] = details.purchaseOrderType
    for name, party in (
        (SHIP_TO_FIELD, details.shipToParty),
        (SELLING_FIELD, details.sellingParty),
        (BUYING_FIELD, details.buyingParty),
    ):
        if party is not None:
            out[name] = party.partyId
    return out


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- what an existing order needs -----------------------------------------------------------
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


# --- custom Types ---------------------------------------------------------------------------
def order_type_draft(key: str) -> dict[str, Any]:
    return type_draft(
        key,
        "Amazon purchase order",
        "order",
        [
            field_definition(PO_FIELD, "String", "Amazon PO number"),
            field_definition(PO_DATE_FIELD, "DateTime", "Amazon PO date"),
            field_definition(PO_TYPE_FIELD, "String", "Amazon PO type"),
            field_definition(SHIP_TO_FIELD, "String", "Amazon ship-to party"),
            field_definition(SELLING_FIELD, "String", "Selling party (vendor code)"),
            field_definition(BUYING_FIELD, "String", "Amazon buying party"),
            field_definition(REVISION_FIELD, "String", "Amazon PO revision acknowledged"),
            field_definition(HASH_FIELD, "String", "Content marker (stream processor)"),
            field_definition(SHIPPED_FIELD, "Number", "Eaches shipped when Amazon closed it"),
            field_definition(CLOSE_FIELD, "String", "How Amazon closed the PO"),
        ],
        "An Amazon Vendor Central purchase order as acknowledged (stream processor)",
    )


def line_type_draft(key: str) -> dict[str, Any]:
    return type_draft(
        key,
        "Amazon purchase order line",
        "custom-line-item",
        [
            field_definition("sku", "String", "SKU"),
            field_definition("amazonItemSequenceNumber", "String", "Amazon item sequence number"),
            field_definition("amazonProductIdentifier", "String", "ASIN"),
            field_definition("vendorProductIdentifier", "String", "Vendor product identifier"),
            field_definition("amazonAcceptedQuantity", "Number", "Accepted (Amazon unit)"),
            field_definition("amazonBackorderedQuantity", "Number", "Backordered (Amazon unit)"),
            field_definition("amazonUnitOfMeasure", "String", "Amazon unit of measure"),
            field_definition("amazonUnitSize", "Number", "Eaches per Amazon unit"),
            field_definition("amazonNetCost", "Money", "Amazon netCost per Amazon unit"),
        ],
        "One accepted line of an Amazon purchase order (stream processor)",
    )
