"""A WMS dispatch: the value of ``wms.dispatches`` (key: purchaseOrderNumber).

``schemas/wms.dispatches.schema.json`` is generated from these models. Parsing checks
structure only; Amazon's ASN rules (SSCC check digits, SCAC, PRO/tracking/BOL, quantities
against the acknowledgement) are checked on the built ASN (``streams.domain.asn``), so a
breach there becomes a named exception for the fulfilment team rather than a dead letter.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import JsonDict

from streams.domain.contract_types import (
    AwareDatetime,
    BeforeValidator,
    JsonBool,
    JsonInt,
    Text,
    date_time_schema,
    iso_text,
)
from streams.domain.gs1 import strip_sscc_ai

ShipmentType = Literal["SmallParcel", "LessThanTruckLoad", "TruckLoad"]
TransportationMode = Literal["Road", "Air", "Ocean"]

# Strict types (contract_types) so the model accepts exactly what the schema accepts (no
# "12" -> 12): schemas/wms.dispatches.schema.json is generated from this module
# (streams.schemas_gen), descriptions included.
_STAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
Timestamp = Annotated[AwareDatetime, BeforeValidator(iso_text(_STAMP)), date_time_schema(_STAMP)]
# Scanners often deliver the GS1-128 element string "(00)" + SSCC; keep the bare 18 digits.
Sscc = Annotated[
    Text,
    AfterValidator(strip_sscc_ai),
    Field(
        description="SSCC-18 of the container label: 18 digits ending in the GS1 check digit. "
        'A leading "(00)" or "00" Application Identifier (20 digits) is tolerated and removed.'
    ),
]


def _either(a: str, b: str, extra: JsonDict) -> JsonDict:
    # the model validators' "needs a or b", for the generated schema
    return {
        "anyOf": [
            {"required": [a], "properties": {a: extra}},
            {"required": [b], "properties": {b: extra}},
        ]
    }


class _Model(BaseModel):
    # Unknown properties are ignored, as the schema allows them (producers may add fields).
    model_config = ConfigDict(frozen=True, extra="ignore")


class DispatchItem(_Model):
    sku: Text = Field(description="commercetools SKU.")
    quantityEaches: JsonInt = Field(ge=1)


class DispatchCarton(_Model):
    sscc: Sscc
    trackingNumber: Text | None = Field(
        None,
        description="Parcel tracking number; required on every carton of a SmallParcel shipment.",
    )
    items: tuple[DispatchItem, ...] = Field(min_length=1)


class DispatchPallet(_Model):
    """A pallet: ``cartons`` are SSCCs of cartons listed on the dispatch, ``items`` loose goods."""

    model_config = ConfigDict(json_schema_extra=_either("cartons", "items", {"type": "array"}))

    sscc: Sscc
    cartons: tuple[Sscc, ...] | None = Field(
        None,
        min_length=1,
        description="SSCCs of the cartons (listed under cartons) stacked on this pallet.",
        json_schema_extra={"uniqueItems": True},
    )
    items: tuple[DispatchItem, ...] | None = Field(
        None,
        min_length=1,
        description="Goods on the pallet outside any listed carton (a pallet of items).",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> DispatchPallet:
        if self.cartons is None and self.items is None:
            raise ValueError("a pallet needs cartons or items")
        if self.cartons is not None and len(set(self.cartons)) != len(self.cartons):
            raise ValueError("a pallet lists the same carton twice")
        return self


class Dispatch(_Model):
    model_config = ConfigDict(json_schema_extra=_either("cartons", "pallets", {"minItems": 1}))

    dispatchId: Text = Field(
        description="WMS id of this dispatch message; unique per message, so a redelivery of "
        "the same message is recognised."
    )
    shipmentId: Text = Field(
        description="Becomes ShipmentConfirmation.shipmentIdentifier. Amazon: unique, not used "
        "over the last 365 days. A correction repeats it with isCorrection true."
    )
    purchaseOrderNumber: Text = Field(
        description="The Amazon purchase order this shipment fulfils (Amazon: 8-character "
        "alphanumeric)."
    )
    shipFromWarehouse: Text = Field(
        description="Key of the commercetools supply channel (warehouse) the goods left from."
    )
    shippedDate: Timestamp = Field(
        description="Departure from the warehouse. Amazon: must not be in the future."
    )
    estimatedDeliveryDate: Timestamp | None = Field(
        None,
        description="Estimated arrival at the Amazon warehouse, from average transit time.",
    )
    shipmentType: ShipmentType
    transportationMode: TransportationMode | None = None
    carrierScac: Text | None = Field(
        None,
        description="Standard Carrier Alpha Code, 2 to 4 letters (mandatory for US, CA, MX).",
    )
    proNumber: Text | None = Field(
        None, description="Carrier's PRO number; required for LessThanTruckLoad and TruckLoad."
    )
    trackingNumbers: tuple[Text, ...] = Field(
        (),
        description="Shipment-level (master) tracking numbers; the first one is the carrier "
        "reference when there is no PRO number. Small parcel cartons carry their own "
        "trackingNumber.",
        json_schema_extra={"uniqueItems": True},
    )
    billOfLading: Text | None = Field(
        None,
        description="Bill of lading number; required for LessThanTruckLoad and TruckLoad, "
        "unique per shipment, not a date.",
    )
    amazonReferenceNumber: Text | None = Field(
        None, description="Amazon Reference Number (ARN) of a Collect/WePay shipment."
    )
    isCorrection: JsonBool = Field(
        False,
        description="True when this dispatch corrects an already confirmed shipment with the "
        "same shipmentId (sent as a Replace confirmation).",
    )
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
