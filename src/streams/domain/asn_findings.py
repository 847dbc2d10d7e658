"""What an ASN check reports (:class:`Violation`, by :class:`Code`) and what it needs beyond
the ASN itself (:class:`AsnContext`); :class:`Findings` collects one check's violations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from streams.domain.asn_model import ModelCheck, PoState, UsedShipment, seq_key
from streams.domain.asn_view import AsnView, ShippedItem


class Code(StrEnum):
    AMAZON_MODEL = "AMAZON_MODEL"
    SHIPMENT_ID_REUSED = "SHIPMENT_ID_REUSED"
    REPLACE_WITHOUT_ORIGINAL = "REPLACE_WITHOUT_ORIGINAL"
    REPLACE_SELLING_PARTY_CHANGED = "REPLACE_SELLING_PARTY_CHANGED"
    PARTY_MISMATCH = "PARTY_MISMATCH"
    PO_MISMATCH = "PO_MISMATCH"
    INVALID_DATE = "INVALID_DATE"
    MISSING_SHIPPED_DATE = "MISSING_SHIPPED_DATE"
    SHIPPED_DATE_IN_FUTURE = "SHIPPED_DATE_IN_FUTURE"
    DELIVERY_BEFORE_SHIPPED = "DELIVERY_BEFORE_SHIPPED"
    MISSING_SCAC = "MISSING_SCAC"
    INVALID_SCAC = "INVALID_SCAC"
    MISSING_CARRIER_REFERENCE = "MISSING_CARRIER_REFERENCE"
    MISSING_TRACKING_NUMBER = "MISSING_TRACKING_NUMBER"
    MISSING_BILL_OF_LADING = "MISSING_BILL_OF_LADING"
    INVALID_BILL_OF_LADING = "INVALID_BILL_OF_LADING"
    BILL_OF_LADING_REUSED = "BILL_OF_LADING_REUSED"
    MISSING_AMAZON_REFERENCE_NUMBER = "MISSING_AMAZON_REFERENCE_NUMBER"
    NO_SHIPPED_ITEMS = "NO_SHIPPED_ITEMS"
    DUPLICATE_ITEM_SEQUENCE = "DUPLICATE_ITEM_SEQUENCE"
    ITEM_NOT_ACKNOWLEDGED = "ITEM_NOT_ACKNOWLEDGED"
    IDENTIFIER_MISMATCH = "IDENTIFIER_MISMATCH"
    NON_POSITIVE_QUANTITY = "NON_POSITIVE_QUANTITY"
    UNIT_MISMATCH = "UNIT_MISMATCH"
    PARTIAL_CASE = "PARTIAL_CASE"
    QUANTITY_EXCEEDS_ACKNOWLEDGED = "QUANTITY_EXCEEDS_ACKNOWLEDGED"
    MISSING_CONTAINER_ID = "MISSING_CONTAINER_ID"
    INVALID_SSCC = "INVALID_SSCC"
    DUPLICATE_SSCC = "DUPLICATE_SSCC"
    SSCC_REUSED = "SSCC_REUSED"
    DUPLICATE_CARTON_SEQUENCE = "DUPLICATE_CARTON_SEQUENCE"
    UNKNOWN_ITEM_REFERENCE = "UNKNOWN_ITEM_REFERENCE"
    UNKNOWN_CARTON_REFERENCE = "UNKNOWN_CARTON_REFERENCE"
    CARTON_ON_SEVERAL_PALLETS = "CARTON_ON_SEVERAL_PALLETS"
    CARTON_COUNT_MISMATCH = "CARTON_COUNT_MISMATCH"
    CONTAINER_QUANTITY_MISMATCH = "CONTAINER_QUANTITY_MISMATCH"


@dataclass(frozen=True)
class Violation:
    code: Code
    field: str  # slash path into the ASN, as amazon_models.validate writes it
    message: str


@dataclass(frozen=True, kw_only=True)
class AsnContext:
    """What the check needs beyond the ASN itself; lookups are the ASN agent's tables."""

    now: datetime
    po: PoState
    model_check: ModelCheck
    dispatch_id: str | None = None  # a redelivered dispatch may repeat its own Original
    used_shipment_ids: Mapping[str, UsedShipment] = field(default_factory=dict)
    used_bills_of_lading: Mapping[str, str] = field(default_factory=dict)  # BOL -> shipment id
    used_ssccs: Mapping[str, str] = field(default_factory=dict)  # SSCC -> shipment id
    # eaches per PO line (itemSequenceNumber) confirmed by this PO's other shipments
    shipped_before: Mapping[str, int] = field(default_factory=dict)
    # SCAC and PRO are "mandatory for US, CA, MX shipment confirmations"
    carrier_details_required: bool = True
    collect_freight: bool = False  # Collect/WePay: amazonReferenceNumber is mandatory
    future_tolerance: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("AsnContext.now must be timezone-aware")


class Findings:
    """One check's violations, with the view and the lookups every rule shares."""

    def __init__(self, asn: AsnView, ctx: AsnContext) -> None:
        self.asn = asn
        self.ctx = ctx
        self.out: list[Violation] = []
        self.shipped_before = {seq_key(k): n for k, n in ctx.shipped_before.items()}
        self.items_by_seq: dict[str, ShippedItem] = asn.first_items()

    def add(self, code: Code, path: str, message: str) -> None:
        self.out.append(Violation(code, path, message))
