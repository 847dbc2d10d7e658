"""Amazon retail purchase orders: the SP-API ``Order`` and its split into self-contained lines.

The models parse an ``Order`` exactly as ``getPurchaseOrders`` returns it: unknown fields are
ignored (Amazon adds fields), the fields we act on are type-checked strictly. Each line then
becomes a :class:`PoLine` that carries everything allocation and acknowledgement need, so it
can be re-keyed by SKU and decided on another partition without looking the PO up again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    computed_field,
    field_validator,
    model_serializer,
    model_validator,
)

from streams.domain.mapping import SkuMapping
from streams.domain.units import Eaches, ItemQuantity, UnitOfMeasure, to_eaches

__all__ = [
    "DateTimeInterval",
    "ItemQuantity",
    "Money",
    "Order",
    "OrderDetails",
    "OrderItem",
    "PartyIdentification",
    "PoLine",
    "Resolver",
    "UnitOfMeasure",
    "line_key",
    "parse_datetime_interval",
    "sequence_sort_key",
    "split_lines",
]

# Amazon's Decimal (a string); the model states this pattern only in a description.
_DECIMAL = re.compile(r"^-?(0|([1-9]\d*))(\.\d+)?([eE][+-]?\d+)?$")
_DT = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})"
# The model says "start--end"; Amazon's docs page says "start-end". Accept both.
_INTERVAL = re.compile(rf"^\s*({_DT})\s*--?\s*({_DT})\s*$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Money(_Frozen):
    """SP-API ``Money``; ``unitOfMeasure`` is set only for items priced by weight."""

    currencyCode: StrictStr = Field(min_length=3, max_length=3)
    amount: Decimal
    unitOfMeasure: Literal["POUNDS", "OUNCES", "GRAMS", "KILOGRAMS"] | None = None

    @field_validator("amount", mode="before")
    @classmethod
    def _decimal_string(cls, v: object) -> object:
        # Floats are refused: a binary float cannot carry a price exactly.
        if isinstance(v, str) and _DECIMAL.match(v):
            return Decimal(v)
        if isinstance(v, Decimal) and v.is_finite():
            return v
        if isinstance(v, int) and not isinstance(v, bool):
            return Decimal(v)
        raise ValueError(f"amount must be a decimal string, got {v!r}")


class PartyIdentification(_Frozen):
    partyId: StrictStr = Field(min_length=1)


class DateTimeInterval(_Frozen):
    """SP-API ``DateTimeInterval``: a string ``start--end`` (or ``start-end``), both ISO-8601."""

    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, v: Any) -> Any:
        if isinstance(v, str):
            m = _INTERVAL.match(v)
            if not m:
                raise ValueError(f"not a date-time interval 'start--end': {v!r}")
            try:
                return {"start": datetime.fromisoformat(m[1]), "end": datetime.fromisoformat(m[2])}
            except ValueError as exc:
                raise ValueError(f"bad date-time in interval {v!r}: {exc}") from None
        return v

    @model_validator(mode="after")
    def _ordered(self) -> DateTimeInterval:
        if self.end < self.start:
            raise ValueError(f"interval ends before it starts: {self.start} > {self.end}")
        return self

    @model_serializer
    def _to_string(self) -> str:
        return f"{_iso(self.start)}--{_iso(self.end)}"


def parse_datetime_interval(text: str) -> DateTimeInterval:
    return DateTimeInterval.model_validate(text)


class OrderItem(_Frozen):
    itemSequenceNumber: StrictStr = Field(min_length=1)
    amazonProductIdentifier: StrictStr | None = None
    vendorProductIdentifier: StrictStr | None = None
    orderedQuantity: ItemQuantity
    isBackOrderAllowed: StrictBool
    netCost: Money | None = None
    listPrice: Money | None = None


class OrderDetails(_Frozen):
    purchaseOrderDate: AwareDatetime
    purchaseOrderChangedDate: AwareDatetime | None = None
    purchaseOrderStateChangedDate: AwareDatetime
    purchaseOrderType: (
        Literal["RegularOrder", "ConsignedOrder", "NewProductIntroduction", "RushOrder"] | None
    ) = None
    sellingParty: PartyIdentification | None = None
    shipToParty: PartyIdentification | None = None
    billToParty: PartyIdentification | None = None
    buyingParty: PartyIdentification | None = None
    shipWindow: DateTimeInterval | None = None
    deliveryWindow: DateTimeInterval | None = None
    items: tuple[OrderItem, ...] = Field(min_length=1)

    @field_validator("items")
    @classmethod
    def _unique_sequence_numbers(cls, items: tuple[OrderItem, ...]) -> tuple[OrderItem, ...]:
        # "PO#itemSequenceNumber" is the idempotency key: duplicates would merge two lines.
        seen: set[str] = set()
        for item in items:
            if item.itemSequenceNumber in seen:
                raise ValueError(f"duplicate itemSequenceNumber {item.itemSequenceNumber!r}")
            seen.add(item.itemSequenceNumber)
        return items


class Order(_Frozen):
    purchaseOrderNumber: StrictStr = Field(min_length=1)
    purchaseOrderState: Literal["New", "Acknowledged", "Closed"]
    orderDetails: OrderDetails | None = None  # absent when fetched with includeDetails=false


def line_key(purchase_order_number: str, item_sequence_number: str) -> str:
    """Idempotency key of one PO line (allocation ledger, decisions)."""
    return f"{purchase_order_number}#{item_sequence_number}"


def sequence_sort_key(item_sequence_number: str) -> tuple[int, int, str]:
    """Numeric order for "1", "2", "10", "00003"; anything else after, lexically."""
    s = item_sequence_number
    if s.isascii() and s.isdigit():
        return (0, int(s), s)
    return (1, 0, s)


class PoLine(_Frozen):
    """One PO line, self-contained: what allocation decides and acknowledgement echoes.

    ``eaches`` is the ordered quantity in commercetools eaches, or None with ``hold`` saying
    why it cannot be converted. A line ordered with amount 0 (Amazon cancelled the item) has
    ``eaches == 0`` and no hold. ``lineCount`` lets a collector keyed by PO know when every
    line is decided. ``revision`` (changed date, else PO date) orders versions of a line.
    """

    purchaseOrderNumber: str
    itemSequenceNumber: str
    lineCount: int = Field(ge=1)
    revision: AwareDatetime
    amazonProductIdentifier: str | None = None
    vendorProductIdentifier: str | None = None
    sku: str | None = None
    orderedQuantity: ItemQuantity
    eaches: int | None = None
    unitSize: int | None = None
    hold: str | None = None
    isBackOrderAllowed: bool
    netCost: Money | None = None
    shipWindowEnd: AwareDatetime | None = None
    deliveryWindowEnd: AwareDatetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def key(self) -> str:
        return line_key(self.purchaseOrderNumber, self.itemSequenceNumber)

    @property
    def cancelled(self) -> bool:
        return self.orderedQuantity.amount == 0


Resolver = Callable[[str | None, str | None], SkuMapping | None]


def split_lines(order: Order, resolve: Resolver) -> list[PoLine]:
    """One :class:`PoLine` per item, in itemSequenceNumber order.

    ``resolve(asin, vendorProductIdentifier)`` finds the SKU's master data (None = unknown).
    """
    details = order.orderDetails
    if details is None:
        po = order.purchaseOrderNumber
        raise ValueError(f"PO {po} has no orderDetails (fetched with includeDetails=false?)")
    po = order.purchaseOrderNumber
    items = sorted(details.items, key=lambda i: sequence_sort_key(i.itemSequenceNumber))
    lines: list[PoLine] = []
    for item in items:
        mapping = resolve(item.amazonProductIdentifier, item.vendorProductIdentifier)
        sku = mapping.sku if mapping else None
        eaches: int | None = None
        unit_size: int | None = None
        hold: str | None = None
        if item.orderedQuantity.amount == 0:
            eaches = 0  # cancelled by Amazon: nothing to convert, nothing to allocate
        else:
            conv = to_eaches(
                item.orderedQuantity,
                mapping.unitsPerCase if mapping else None,
                context=f"PO {po} line {item.itemSequenceNumber}",
                sku=sku,
            )
            if isinstance(conv, Eaches):
                eaches, unit_size = conv.eaches, conv.unit_size
            else:
                hold = conv.reason
        lines.append(
            PoLine(
                purchaseOrderNumber=po,
                itemSequenceNumber=item.itemSequenceNumber,
                lineCount=len(items),
                revision=details.purchaseOrderChangedDate or details.purchaseOrderDate,
                amazonProductIdentifier=item.amazonProductIdentifier,
                vendorProductIdentifier=item.vendorProductIdentifier,
                sku=sku,
                orderedQuantity=item.orderedQuantity,
                eaches=eaches,
                unitSize=unit_size,
                hold=hold,
                isBackOrderAllowed=item.isBackOrderAllowed,
                netCost=item.netCost,
                shipWindowEnd=details.shipWindow.end if details.shipWindow else None,
                deliveryWindowEnd=details.deliveryWindow.end if details.deliveryWindow else None,
            )
        )
    return lines


def _iso(dt: datetime) -> str:
    """ISO-8601 with ``Z`` for UTC, as Amazon writes it."""
    s = dt.isoformat()
    return s[:-6] + "Z" if s.endswith("+00:00") else s
