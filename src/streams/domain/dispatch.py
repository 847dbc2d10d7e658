"""A WMS dispatch: the value of ``wms.dispatches`` (key: purchaseOrderNumber).

Mirrors ``schemas/wms.dispatches.schema.json``. Parsing checks structure only; Amazon's ASN
rules (SSCC check digits, SCAC, PRO/tracking/BOL, quantities against the acknowledgement)
are checked on the built ASN (``streams.domain.asn``), so a breach there becomes a named
exception for the fulfilment team rather than a dead letter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    model_validator,
)

from streams.domain.gs1 import strip_sscc_ai

ShipmentType = Literal["SmallParcel", "LessThanTruckLoad", "TruckLoad"]
TransportationMode = Literal["Road", "Air", "Ocean"]

# Strict types so the model accepts exactly what the schema accepts (no "12" -> 12).
# A non-blank string, like the schema's "text" ($defs/text).
Text = Annotated[StrictStr, StringConstraints(min_length=1, pattern=r"\S")]


def _iso_text(v: object) -> object:
    # pydantic would also take a number as a Unix time; the contract says RFC 3339 text
    if not isinstance(v, str | datetime):
        raise ValueError("a date-time must be an RFC 3339 string with a UTC offset")
    return v


Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
# Scanners often deliver the GS1-128 element string "(00)" + SSCC; keep the bare 18 digits.
Sscc = Annotated[Text, AfterValidator(strip_sscc_ai)]


class _Model(BaseModel):
    # Unknown properties are ignored, as the schema allows them (producers may add fields).
    model_config = ConfigDict(frozen=True, extra="ignore")


class DispatchItem(_Model):
    sku: Text
    quantityEaches: StrictInt = Field(ge=1)


class DispatchCarton(_Model):
    sscc: Sscc
    trackingNumber: Text | None = None
    items: tuple[DispatchItem, ...] = Field(min_length=1)


class DispatchPallet(_Model):
    """A pallet: ``cartons`` are SSCCs of cartons listed on the dispatch, ``items`` loose goods."""

    sscc: Sscc
    cartons: tuple[Sscc, ...] | None = Field(None, min_length=1)
    items: tuple[DispatchItem, ...] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _not_empty(self) -> DispatchPallet:
        if self.cartons is None and self.items is None:
            raise ValueError("a pallet needs cartons or items")
        if self.cartons is not None and len(set(self.cartons)) != len(self.cartons):
            raise ValueError("a pallet lists the same carton twice")
        return self


class Dispatch(_Model):
    dispatchId: Text
    shipmentId: Text
    purchaseOrderNumber: Text
    shipFromWarehouse: Text
    shippedDate: Timestamp
    estimatedDeliveryDate: Timestamp | None = None
    shipmentType: ShipmentType
    transportationMode: TransportationMode | None = None
    carrierScac: Text | None = None
    proNumber: Text | None = None
    trackingNumbers: tuple[Text, ...] = ()
    billOfLading: Text | None = None
    amazonReferenceNumber: Text | None = None
    isCorrection: StrictBool = False
    cartons: tuple[DispatchCarton, ...] = ()
    pallets: tuple[DispatchPallet, ...] = ()

    @model_validator(mode="after")
    def _has_containers(self) -> Dispatch:
        if not self.cartons and not self.pallets:
            raise ValueError("a dispatch needs at least one carton or pallet")
        if len(set(self.trackingNumbers)) != len(self.trackingNumbers):
            raise ValueError("trackingNumbers repeats a tracking number")
        return self

    def shipped_eaches(self) -> dict[str, int]:
        """Eaches per SKU over every carton and every pallet's loose items."""
        total: dict[str, int] = {}
        for item in self.all_items():
            total[item.sku] = total.get(item.sku, 0) + item.quantityEaches
        return total

    def all_items(self) -> list[DispatchItem]:
        items = [i for c in self.cartons for i in c.items]
        items += [i for p in self.pallets for i in (p.items or ())]
        return items
