"""The ASN flow's join input: the PO as acknowledged (``PoState``) and the ids already used.

Sequence numbers compare as numbers ("1" on the PO, "001" on the ASN); quantities are in the
unit the line was acknowledged in (schemas/amazon/vendorShipments.json; docs/asn.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from streams.domain.dispatch import Text

UnitOfMeasure = Literal["Cases", "Eaches"]
# amazon_models.validate bound to ("vendorShipments", "ShipmentConfirmation"): the domain takes
# it as a port so it stays free of file I/O and jsonschema.
ModelCheck = Callable[[Any], list[str]]

SHIPMENT_ID_REUSE_WINDOW = timedelta(days=365)  # "not used over the last 365 days"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Party(_Model):
    """A ``PartyIdentification`` as the PO carried it (orders' ``taxInfo`` is one object)."""

    partyId: Text
    address: dict[str, Any] | None = None
    taxInfo: dict[str, str] | None = None

    def for_shipment(self) -> dict[str, Any]:
        """The vendorShipments shape: tax details become the ``taxRegistrationDetails`` array."""
        out: dict[str, Any] = {"partyId": self.partyId}
        if self.address:
            out["address"] = dict(self.address)
        if self.taxInfo:
            out["taxRegistrationDetails"] = [dict(self.taxInfo)]
        return out


class AckLine(_Model):
    """One PO line as acknowledged: what Amazon accepted, in the unit it was acknowledged in."""

    itemSequenceNumber: Text  # as on the PO ("1")
    sku: Text
    asin: str | None = None
    vendorProductIdentifier: str | None = None
    # in unitOfMeasure; backordered units were acknowledged too and ship later
    acceptedQuantity: int = Field(ge=0)
    backorderedQuantity: int = Field(0, ge=0)
    unitOfMeasure: UnitOfMeasure
    unitSize: int | None = Field(None, ge=1)  # eaches per case; required for Cases

    @model_validator(mode="after")
    def _case_size(self) -> AckLine:
        if self.unitOfMeasure == "Cases" and self.unitSize is None:
            raise ValueError("a line acknowledged in Cases needs its unitSize")
        return self

    @property
    def case_size(self) -> int:
        return (self.unitSize or 1) if self.unitOfMeasure == "Cases" else 1

    @property
    def acknowledged_eaches(self) -> int:
        """Eaches this PO line may ship in total: accepted plus backordered."""
        return (self.acceptedQuantity + self.backorderedQuantity) * self.case_size

    def describe(self, eaches: int) -> str:
        """``eaches`` in this line's unit, for messages: "36 eaches (3 Cases of 12)"."""
        if self.unitOfMeasure == "Cases":
            return f"{eaches} eaches ({eaches / self.case_size:g} Cases of {self.case_size})"
        return f"{eaches} eaches"


class PoState(_Model):
    purchaseOrderNumber: Text
    sellingParty: Party
    shipToParty: Party
    lines: tuple[AckLine, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_lines(self) -> PoState:
        keys = [seq_key(line.itemSequenceNumber) for line in self.lines]
        if len(set(keys)) != len(keys):
            raise ValueError("PO lines repeat an itemSequenceNumber")
        return self

    def line(self, item_sequence_number: str) -> AckLine | None:
        key = seq_key(item_sequence_number)
        return next((x for x in self.lines if seq_key(x.itemSequenceNumber) == key), None)


class UsedShipment(_Model):
    """A shipmentIdentifier already confirmed to Amazon."""

    purchaseOrderNumber: str
    sellingPartyId: str
    confirmedAt: AwareDatetime
    dispatchId: str | None = None


def seq_key(s: str) -> str:
    """Item sequence numbers compare as numbers: the PO says "1", the ASN says "001"."""
    return str(int(s)) if s.isascii() and s.isdigit() else s


def asn_seq(s: str) -> str:
    """The ASN form of a PO item sequence number: three digits ("The first item will be 001")."""
    return f"{int(s):03d}" if s.isascii() and s.isdigit() else s


def iso(dt: datetime) -> str:
    """UTC, whole seconds, "Z": the form of Amazon's examples. Truncating never moves a
    shipped date into the future."""
    if dt.tzinfo is None:
        raise ValueError("datetimes sent to Amazon must be timezone-aware")
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
