"""Amazon Direct Fulfillment (DF) orders: the ``Order`` of vendorDirectFulfillmentOrders
2021-12-28, its redaction, and its split into lines the SKU partitions decide.

A DF order is a customer's order that the vendor ships itself. It carries the customer's
ship-to address (``shipToParty``, an ``Address``: name, address lines, phone) and maybe a gift
message. :func:`redact` replaces every such field by a keyed hash *before* the order is
stored, logged, dead-lettered or shown anywhere: the flow never needs the address (Amazon's
shipping labels carry it to the warehouse), only to tell two orders' addresses apart.

Each line becomes a :class:`~streams.domain.purchase_orders.PoLine` in Eaches with no
backorder, so it is decided on its SKU's partition by the same ledger as retail PO lines,
against the same availability. Its PO number is :func:`df_po_key` (``DF-<PO>``), so a DF
order never shares a ledger key (or a commercetools command id) with a retail PO of the same
number.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from streams.domain.purchase_orders import (
    ItemQuantity,
    Money,
    PoLine,
    Resolver,
    sequence_sort_key,
)

DF_PREFIX = "DF-"
# Fields that name or locate a person, wherever they appear in a record: the whole
# ship-to party, any party's address, and the fields of an Address and of gift details.
PII_WHOLE = frozenset({"shipToParty", "address", "giftDetails", "buyerCustomizedInfo"})
PII_FIELDS = frozenset(
    {
        "name", "attention", "addressLine1", "addressLine2", "addressLine3", "city",
        "county", "district", "postalCode", "phone", "email", "emailAddress",
        "buyerName", "customerName", "giftMessage", "taxInfo",
    }
)  # fmt: skip
HASH_PREFIX = "hmac-sha256:"


def pii_hash(value: Any, key: bytes = b"") -> str:
    """A keyed hash of a PII value (canonical JSON): equal addresses hash equal, and without
    the key (``STREAMS_DF_PII_KEY``) a hash cannot be tested against guessed addresses."""
    data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return HASH_PREFIX + hmac.new(key, data, hashlib.sha256).hexdigest()[:32]


def _is_hash(v: Any) -> bool:
    return isinstance(v, str) and v.startswith(HASH_PREFIX)


def redact(obj: Any, key: bytes = b"") -> Any:
    """A copy of ``obj`` with every PII field replaced by its hash (already hashed values stay
    as they are, so redacting twice changes nothing). Works on any JSON value, valid order
    or not: the dead-letter copy of a bad record is redacted the same way."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            if (k in PII_WHOLE or k in PII_FIELDS) and v is not None and not _is_hash(v):
                if isinstance(v, dict) and all(_is_hash(x) for x in v.values()) and v:
                    out[k] = v  # {"hash": ...} from an upstream that redacted already
                else:
                    out[k] = pii_hash(v, key)
            else:
                out[k] = redact(v, key)
        return out
    if isinstance(obj, list):
        return [redact(v, key) for v in obj]
    return obj


def df_po_key(purchase_order_number: str) -> str:
    """The DF order's number as PO lines and commercetools commands carry it."""
    return DF_PREFIX + purchase_order_number


def df_number(po_key: str) -> str | None:
    """The DF order number of a ``DF-`` key, None for a retail PO number."""
    return po_key[len(DF_PREFIX) :] if po_key.startswith(DF_PREFIX) else None


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class DfQuantity(_Frozen):
    """DF ``ItemQuantity``: always Each (Amazon's own example writes ``EACH``)."""

    amount: StrictInt = Field(gt=0)
    unitOfMeasure: str | None = None

    @field_validator("unitOfMeasure")
    @classmethod
    def _each(cls, v: str | None) -> str | None:
        if v is not None and v.lower() not in ("each", "eaches"):
            raise ValueError(f"DF quantities are in Each, got {v!r}")
        return v


class DfParty(_Frozen):
    partyId: StrictStr = Field(min_length=1)


class DfShipmentDates(_Frozen):
    requiredShipDate: AwareDatetime
    promisedDeliveryDate: AwareDatetime | None = None


class DfShipmentDetails(_Frozen):
    shipMethod: StrictStr | None = None
    isPriorityShipment: bool | None = None
    shipmentDates: DfShipmentDates


class DfOrderItem(_Frozen):
    itemSequenceNumber: StrictStr = Field(min_length=1)
    buyerProductIdentifier: StrictStr | None = None
    vendorProductIdentifier: StrictStr | None = None
    orderedQuantity: DfQuantity
    netPrice: Money


class DfOrderDetails(_Frozen):
    customerOrderNumber: StrictStr
    orderDate: AwareDatetime
    orderStatus: StrictStr | None = None
    shipmentDetails: DfShipmentDetails
    sellingParty: DfParty
    shipFromParty: DfParty
    items: tuple[DfOrderItem, ...] = Field(min_length=1)

    @field_validator("items")
    @classmethod
    def _unique(cls, items: tuple[DfOrderItem, ...]) -> tuple[DfOrderItem, ...]:
        seen = [i.itemSequenceNumber for i in items]
        if len(set(seen)) != len(seen):
            raise ValueError("duplicate itemSequenceNumber")
        return items


class DfOrder(_Frozen):
    purchaseOrderNumber: StrictStr = Field(min_length=1, pattern=r"^[A-Za-z0-9]+$")
    orderDetails: DfOrderDetails

    @property
    def required_ship(self) -> datetime:
        return self.orderDetails.shipmentDetails.shipmentDates.requiredShipDate


def parse_df_order(obj: Any) -> DfOrder:
    """Validate a (redacted) DF ``Order``; ValueError with a short reason naming fields only
    (never their values: a reason is logged and dead-lettered)."""
    try:
        return DfOrder.model_validate(obj)
    except ValidationError as exc:
        parts = []
        for e in exc.errors()[:5]:
            loc = ".".join(str(p) for p in e["loc"]) or "(root)"
            parts.append(f"{loc}: {e['msg']}")
        raise ValueError("not a DF Order: " + "; ".join(parts)) from None


def df_lines(order: DfOrder, resolve: Resolver) -> list[PoLine]:
    """One PoLine per item (itemSequenceNumber order): Eaches, no backorder, priced at the
    item's netPrice; ``sku`` None when master data knows neither identifier."""
    d = order.orderDetails
    items = sorted(d.items, key=lambda i: sequence_sort_key(i.itemSequenceNumber))
    po = df_po_key(order.purchaseOrderNumber)
    lines = []
    for item in items:
        mapping = resolve(item.buyerProductIdentifier, item.vendorProductIdentifier)
        qty = item.orderedQuantity.amount
        lines.append(
            PoLine(
                purchaseOrderNumber=po,
                itemSequenceNumber=item.itemSequenceNumber,
                lineCount=len(items),
                revision=d.orderDate,
                amazonProductIdentifier=item.buyerProductIdentifier,
                vendorProductIdentifier=item.vendorProductIdentifier,
                sku=mapping.sku if mapping else None,
                orderedQuantity=ItemQuantity(amount=qty, unitOfMeasure="Eaches"),
                eaches=qty,
                unitSize=1,
                isBackOrderAllowed=False,
                netCost=item.netPrice,
                shipWindowEnd=order.required_ship,
            )
        )
    return lines


def redacted_view(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What a view may show of a stored order: it is stored redacted; redact again anyway."""
    return dict(redact(dict(obj)))
