"""A ``ShipmentConfirmation`` read once into a typed view, for the business checks.

The checks run on any JSON value (a hand-edited or corrupt ASN included), so the view never
raises: a field of the wrong type reads as absent (``None``, empty), and where a message or
a rule needs what was written, the raw value is kept beside the cleaned one. Amazon's own
model check still runs on the raw JSON and reports the shape errors; the view only spares
every rule from re-parsing dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DATE_FIELDS = ("shipmentConfirmationDate", "shippedDate", "estimatedDeliveryDate")


def as_list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def as_dict(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def text(x: Any) -> str | None:
    """A non-blank string, stripped; anything else is absent."""
    return (x.strip() or None) if isinstance(x, str) else None


@dataclass(frozen=True)
class Quantity:
    """An ``ItemQuantity`` as written: the values are raw, the checks judge them."""

    amount: Any
    unit: Any
    size: Any

    @classmethod
    def read(cls, raw: Any) -> Quantity:
        q = as_dict(raw)
        return cls(q.get("amount"), q.get("unitOfMeasure"), q.get("unitSize"))

    def eaches(self, case_size: int) -> int | None:
        """In eaches as the ASN states it (a missing case size: ``case_size``, the line's);
        ``None`` when it is no integer amount in Cases or Eaches."""
        amount = self.amount
        if not isinstance(amount, int) or isinstance(amount, bool):
            return None
        if self.unit == "Cases":
            size = self.size
            return amount * (size if isinstance(size, int) and size > 0 else case_size)
        return amount if self.unit == "Eaches" else None


@dataclass(frozen=True)
class ShippedItem:
    index: int
    seq: str | None  # itemSequenceNumber, cleaned
    seq_written: Any  # as written, for messages
    purchase_order: str | None  # itemDetails.purchaseOrderNumber
    asin: Any
    vendor_product: Any
    quantity: Quantity

    @property
    def product(self) -> str:
        ids = [
            f"{key} {value!r}"
            for key, value in (
                ("vendorProductIdentifier", self.vendor_product),
                ("amazonProductIdentifier", self.asin),
            )
            if value is not None
        ]
        return ", ".join(ids) or "no product identifier"


@dataclass(frozen=True)
class Content:
    """One entry of a carton's or pallet's ``items``."""

    index: int
    ref: str | None  # itemReference, cleaned
    quantity: Quantity


@dataclass(frozen=True)
class Container:
    """A carton or a pallet: what the SSCC, reference and content rules need."""

    index: int
    name: str  # "carton 001 (SSCC ...)", "pallet 1 (SSCC ...)"
    has_ids: bool  # any identifier at all
    ssccs: tuple[tuple[int, str], ...]  # (position in the identifiers, SSCC as written)
    contents: tuple[Content, ...]
    seq: str | None = None  # carton: cartonSequenceNumber, cleaned
    tracking: str | None = None  # carton: trackingNumber
    refs: tuple[Any, ...] = ()  # pallet: cartonReferenceNumbers as written
    refs_given: bool = False  # pallet: cartonReferenceNumbers present
    count: Any = None  # pallet: cartonCount as written


@dataclass(frozen=True)
class AsnView:
    shipment_id: str | None
    shipment_id_written: Any  # compared as written with the ids of other shipments
    confirmation_type: Any
    shipment_type: Any
    selling_party: str | None
    ship_to_party: str | None
    dates: tuple[tuple[str, Any], ...]  # (field, raw) for each date present and not null
    shipped_date_given: bool  # the key is there (null included)
    scac: str | None
    carrier_reference: str | None
    bill_of_lading: Any
    amazon_reference: str | None
    items: tuple[ShippedItem, ...]
    cartons: tuple[Container, ...]
    pallets: tuple[Container, ...]

    def first_items(self) -> dict[str, ShippedItem]:
        """Shipped items by sequence number, the first of any repeat."""
        out: dict[str, ShippedItem] = {}
        for item in self.items:
            if item.seq is not None:
                out.setdefault(item.seq, item)
        return out


def read_asn(value: Any) -> AsnView:
    asn = as_dict(value)
    td = as_dict(asn.get("transportationDetails"))
    return AsnView(
        shipment_id=text(asn.get("shipmentIdentifier")),
        shipment_id_written=asn.get("shipmentIdentifier"),
        confirmation_type=asn.get("shipmentConfirmationType"),
        shipment_type=asn.get("shipmentType"),
        selling_party=text(as_dict(asn.get("sellingParty")).get("partyId")),
        ship_to_party=text(as_dict(asn.get("shipToParty")).get("partyId")),
        dates=tuple((f, asn[f]) for f in DATE_FIELDS if asn.get(f) is not None),
        shipped_date_given="shippedDate" in asn,
        scac=text(td.get("carrierScac")),
        carrier_reference=text(td.get("carrierShipmentReferenceNumber")),
        bill_of_lading=td.get("billOfLadingNumber"),
        amazon_reference=text(asn.get("amazonReferenceNumber")),
        items=tuple(_item(i, raw) for i, raw in enumerate(as_list(asn.get("shippedItems")))),
        cartons=tuple(_carton(i, raw) for i, raw in enumerate(as_list(asn.get("cartons")))),
        pallets=tuple(_pallet(i, raw) for i, raw in enumerate(as_list(asn.get("pallets")))),
    )


def _item(index: int, raw: Any) -> ShippedItem:
    item = as_dict(raw)
    return ShippedItem(
        index=index,
        seq=text(item.get("itemSequenceNumber")),
        seq_written=item.get("itemSequenceNumber"),
        purchase_order=text(as_dict(item.get("itemDetails")).get("purchaseOrderNumber")),
        asin=item.get("amazonProductIdentifier"),
        vendor_product=item.get("vendorProductIdentifier"),
        quantity=Quantity.read(item.get("shippedQuantity")),
    )


def _contents(raw: Any) -> tuple[Content, ...]:
    out = []
    for k, entry in enumerate(as_list(raw)):
        e = as_dict(entry)
        out.append(
            Content(k, text(e.get("itemReference")), Quantity.read(e.get("shippedQuantity")))
        )
    return tuple(out)


def _ssccs(ids: Any) -> tuple[tuple[int, str], ...]:
    out = []
    for j, raw in enumerate(as_list(ids)):
        ident = as_dict(raw)
        number = ident.get("containerIdentificationNumber")
        if ident.get("containerIdentificationType") == "SSCC" and isinstance(number, str):
            out.append((j, number))
    return tuple(out)


def _first_sscc(ids: Any) -> str | None:
    """The number of the first SSCC identifier, for names (``None``: none, or not a string)."""
    for raw in as_list(ids):
        ident = as_dict(raw)
        if ident.get("containerIdentificationType") == "SSCC":
            number = ident.get("containerIdentificationNumber")
            return number if isinstance(number, str) else None
    return None


def _carton(index: int, raw: Any) -> Container:
    c = as_dict(raw)
    ids = c.get("cartonIdentifiers")
    sscc = _first_sscc(ids)
    name = f"carton {c.get('cartonSequenceNumber', f'#{index + 1}')}"
    return Container(
        index=index,
        name=name + (f" (SSCC {sscc})" if sscc else ""),
        has_ids=bool(as_list(ids)),
        ssccs=_ssccs(ids),
        contents=_contents(c.get("items")),
        seq=text(c.get("cartonSequenceNumber")),
        tracking=text(c.get("trackingNumber")),
    )


def _pallet(index: int, raw: Any) -> Container:
    p = as_dict(raw)
    ids = p.get("palletIdentifiers")
    sscc = _first_sscc(ids)
    details = as_dict(p.get("cartonReferenceDetails"))
    return Container(
        index=index,
        name=f"pallet {index + 1}" + (f" (SSCC {sscc})" if sscc else ""),
        has_ids=bool(as_list(ids)),
        ssccs=_ssccs(ids),
        contents=_contents(p.get("items")),
        refs=tuple(as_list(details.get("cartonReferenceNumbers"))),
        refs_given="cartonReferenceNumbers" in details,
        count=details.get("cartonCount"),
    )
