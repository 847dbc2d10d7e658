"""Sales orders for finance (pure): one commercetools order per acknowledged Amazon PO.

Finance reconciles Amazon's remittances against commercetools, so every PO we accepted
becomes an order there, in eaches, named after the PO (``AMZ-<PO>``) and carrying Amazon's
references (PO number, date, type, ship-to, selling and buying party, revision). This module
builds the ``OrderImportDraft`` from the ``pos`` record (the PO and its line decisions);
:mod:`streams.domain.sales_order_sync` plans what an existing order needs; the agent only
reads, calls and writes.

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
from typing import Any

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
