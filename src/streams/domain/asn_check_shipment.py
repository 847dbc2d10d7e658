"""ASN checks on the shipment as a whole: Amazon's model, who and which PO, dates, carrier.

Rules come from the field descriptions of schemas/amazon/vendorShipments.json (docs/asn.md).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from streams.domain.asn_findings import Code, Findings
from streams.domain.asn_model import SHIPMENT_ID_REUSE_WINDOW, iso
from streams.domain.asn_view import text

_SCAC = re.compile(r"[A-Z]{2,4}")  # "two to four letter code"
FREIGHT = ("LessThanTruckLoad", "TruckLoad")  # BOL mandatory "for FTL and LTL shipments"


def model(f: Findings, raw: Any) -> None:
    """Amazon's own model, on the JSON as it is."""
    for line in f.ctx.model_check(raw):
        path, _, message = line.partition(": ")
        f.add(Code.AMAZON_MODEL, path, message)


def identity(f: Findings) -> None:
    """Who, which shipment, which PO."""
    ctx, asn = f.ctx, f.asn
    sid = asn.shipment_id
    kind = asn.confirmation_type
    prev = ctx.used_shipment_ids.get(sid) if sid else None
    po = ctx.po.purchaseOrderNumber
    if kind == "Original" and prev is not None:
        recent = ctx.now - prev.confirmedAt < SHIPMENT_ID_REUSE_WINDOW
        redelivery = ctx.dispatch_id is not None and prev.dispatchId == ctx.dispatch_id
        if recent and not redelivery:
            hint = (
                "; to correct that shipment send a Replace (isCorrection)"
                if prev.purchaseOrderNumber == po
                else ""
            )
            f.add(
                Code.SHIPMENT_ID_REUSED,
                "shipmentIdentifier",
                f"shipmentIdentifier {sid!r} was already confirmed on "
                f"{iso(prev.confirmedAt)} for PO {prev.purchaseOrderNumber}; an Original "
                f"needs an id not used in the last 365 days{hint}",
            )
    elif kind == "Replace":
        if prev is None:
            f.add(
                Code.REPLACE_WITHOUT_ORIGINAL,
                "shipmentConfirmationType",
                f"Replace of shipmentIdentifier {sid!r}, which was never confirmed",
            )
        elif prev.purchaseOrderNumber != po:
            f.add(
                Code.SHIPMENT_ID_REUSED,
                "shipmentIdentifier",
                f"Replace of shipmentIdentifier {sid!r}, which belongs to PO "
                f"{prev.purchaseOrderNumber}, not {po}",
            )
        elif asn.selling_party != prev.sellingPartyId:
            f.add(
                Code.REPLACE_SELLING_PARTY_CHANGED,
                "sellingParty/partyId",
                f"a Replace must repeat the original sellingParty {prev.sellingPartyId!r}, "
                f"got {asn.selling_party!r}",
            )
    for name, got, party in (
        ("sellingParty", asn.selling_party, ctx.po.sellingParty),
        ("shipToParty", asn.ship_to_party, ctx.po.shipToParty),
    ):
        if got is not None and got != party.partyId:
            f.add(
                Code.PARTY_MISMATCH,
                f"{name}/partyId",
                f"{name} {got!r} differs from PO {po}'s {party.partyId!r}",
            )
    for item in asn.items:
        if item.purchase_order != po:
            what = (
                "has no purchaseOrderNumber"
                if item.purchase_order is None
                else f"names PO {item.purchase_order!r}"
            )
            f.add(
                Code.PO_MISMATCH,
                f"shippedItems/{item.index}/itemDetails/purchaseOrderNumber",
                f"item {item.seq_written} {what}; this shipment is for PO {po}",
            )


def dates(f: Findings) -> None:
    times: dict[str, datetime] = {}
    for name, raw in f.asn.dates:
        t = _parse_time(raw)
        if t is None:
            f.add(
                Code.INVALID_DATE,
                name,
                f"{name} {raw!r} is not an ISO 8601 date-time with a UTC offset",
            )
        else:
            times[name] = t
    shipped = times.get("shippedDate")
    now = f.ctx.now
    if not f.asn.shipped_date_given:
        f.add(Code.MISSING_SHIPPED_DATE, "shippedDate", "shippedDate is missing")
    elif shipped is not None and shipped > now + f.ctx.future_tolerance:
        f.add(
            Code.SHIPPED_DATE_IN_FUTURE,
            "shippedDate",
            f"shippedDate {iso(shipped)} is after now ({iso(now)}); Amazon: the "
            "shipped date should not be in the future",
        )
    eta = times.get("estimatedDeliveryDate")
    if shipped is not None and eta is not None and eta < shipped:
        f.add(
            Code.DELIVERY_BEFORE_SHIPPED,
            "estimatedDeliveryDate",
            f"estimatedDeliveryDate {iso(eta)} is before shippedDate {iso(shipped)}",
        )


def transport(f: Findings) -> None:
    """Carrier, PRO, tracking, BOL, ARN."""
    ctx, asn = f.ctx, f.asn
    kind = asn.shipment_type
    path = "transportationDetails"
    if asn.scac is None:
        if ctx.carrier_details_required:
            f.add(
                Code.MISSING_SCAC,
                f"{path}/carrierScac",
                "carrierScac is missing (mandatory for US, CA, MX)",
            )
    elif not _SCAC.fullmatch(asn.scac):
        f.add(
            Code.INVALID_SCAC,
            f"{path}/carrierScac",
            f"carrierScac {asn.scac!r} is not a SCAC (2 to 4 capital letters)",
        )
    if asn.carrier_reference is None:
        if kind in FREIGHT:
            why = f"a {kind} shipment needs the carrier's PRO number"
        elif ctx.carrier_details_required:
            why = "the carrier reference (PRO/tracking) is mandatory for US, CA, MX"
        else:
            why = ""
        if why:
            f.add(Code.MISSING_CARRIER_REFERENCE, f"{path}/carrierShipmentReferenceNumber", why)
    if kind == "SmallParcel":
        if not asn.cartons:
            f.add(
                Code.MISSING_TRACKING_NUMBER,
                "cartons",
                "a SmallParcel shipment needs cartons, each with a tracking number",
            )
        for carton in asn.cartons:
            if carton.tracking is None:
                f.add(
                    Code.MISSING_TRACKING_NUMBER,
                    f"cartons/{carton.index}/trackingNumber",
                    f"{carton.name} has no trackingNumber, required for "
                    "every carton of a SmallParcel shipment",
                )
    _bill_of_lading(f, kind)
    if ctx.collect_freight and asn.amazon_reference is None:
        f.add(
            Code.MISSING_AMAZON_REFERENCE_NUMBER,
            "amazonReferenceNumber",
            "a Collect/WePay shipment needs its amazonReferenceNumber (ARN)",
        )


def _bill_of_lading(f: Findings, kind: Any) -> None:
    path = "transportationDetails/billOfLadingNumber"
    raw = f.asn.bill_of_lading
    bol = text(raw)
    if bol is None:
        if kind in FREIGHT:
            f.add(
                Code.MISSING_BILL_OF_LADING,
                path,
                f"billOfLadingNumber is missing, mandatory for a {kind} shipment",
            )
        return
    if len(bol) < 2:
        f.add(
            Code.INVALID_BILL_OF_LADING, path, f"billOfLadingNumber {raw!r} is a single character"
        )
    elif looks_like_date(bol):
        f.add(
            Code.INVALID_BILL_OF_LADING,
            path,
            f"billOfLadingNumber {raw!r} is a date/time, not a BOL number",
        )
    other = f.ctx.used_bills_of_lading.get(bol)
    if other is not None and other != f.asn.shipment_id_written:
        f.add(
            Code.BILL_OF_LADING_REUSED,
            path,
            f"billOfLadingNumber {bol!r} was already used by shipment {other!r}; "
            "it must be unique for every shipment",
        )


def _parse_time(x: Any) -> datetime | None:
    try:
        dt = datetime.fromisoformat(x) if isinstance(x, str) else None
    except ValueError:
        return None
    return dt if dt is not None and dt.tzinfo is not None else None


_DATE_FORMATS = (
    "%m/%d/%Y",
    "%m/%d/%y",
    "%d/%m/%Y",
    "%d/%m/%y",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%d.%m.%y",
    "%m-%d-%Y",
    "%d-%m-%Y",
)


def looks_like_date(s: str) -> bool:
    """True when ``s`` reads as a date or date-time, which Amazon forbids as a BOL number.

    ISO 8601 forms (also 8-digit YYYYMMDD) and the common written forms, optionally followed
    by a time of day.
    """
    s = s.strip()
    try:
        datetime.fromisoformat(s)
        return True
    except ValueError:
        pass
    day = s.split(" ", 1)[0].split("T", 1)[0]
    for fmt in _DATE_FORMATS:
        try:
            datetime.strptime(day, fmt)
            return True
        except ValueError:
            continue
    return False
