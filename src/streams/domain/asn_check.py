"""Check a ``ShipmentConfirmation`` before it is sent: every reason Amazon would reject it or
charge back for it. Rules come from the vendorShipments.json field descriptions (NOTES.md
section 6) and the project brief.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from streams.domain.asn_model import (
    SHIPMENT_ID_REUSE_WINDOW,
    AckLine,
    ModelCheck,
    PoState,
    UsedShipment,
    iso,
    seq_key,
)
from streams.domain.gs1 import sscc_problem, strip_sscc_ai

_SCAC = re.compile(r"[A-Z]{2,4}")  # "two to four letter code"
_FREIGHT = ("LessThanTruckLoad", "TruckLoad")  # BOL mandatory "for FTL and LTL shipments"


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


def validate_shipment_confirmation(asn: Mapping[str, Any], context: AsnContext) -> list[Violation]:
    """Every reason Amazon would reject ``asn`` or charge back for it; empty = send it.

    Runs on any JSON value: the business checks read the ASN defensively, so a malformed
    ASN yields its model errors and whatever else can still be said, never an exception.
    """
    v = _Checker(asn if isinstance(asn, Mapping) else {}, context)
    v.model(asn)
    v.identity()
    v.dates()
    v.transport()
    v.items()
    v.containers()
    return v.out


def _list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def _dict(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def _str(x: Any) -> str | None:
    return (x.strip() or None) if isinstance(x, str) else None


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


class _Checker:
    def __init__(self, asn: Mapping[str, Any], ctx: AsnContext) -> None:
        self.asn = asn
        self.ctx = ctx
        self.out: list[Violation] = []
        self.shipped_before = {seq_key(k): n for k, n in ctx.shipped_before.items()}
        self.items_by_seq: dict[str, tuple[int, Mapping[str, Any]]] = {}
        for i, item in enumerate(_list(asn.get("shippedItems"))):
            seq = _str(_dict(item).get("itemSequenceNumber"))
            if seq is not None and seq not in self.items_by_seq:
                self.items_by_seq[seq] = (i, _dict(item))

    def add(self, code: Code, path: str, message: str) -> None:
        self.out.append(Violation(code, path, message))

    # --- Amazon's own model

    def model(self, asn: Any) -> None:
        for line in self.ctx.model_check(asn):
            path, _, message = line.partition(": ")
            self.add(Code.AMAZON_MODEL, path, message)

    # --- who, which shipment, which PO

    def identity(self) -> None:
        ctx, asn = self.ctx, self.asn
        sid = _str(asn.get("shipmentIdentifier"))
        kind = asn.get("shipmentConfirmationType")
        selling = _str(_dict(asn.get("sellingParty")).get("partyId"))
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
                self.add(
                    Code.SHIPMENT_ID_REUSED,
                    "shipmentIdentifier",
                    f"shipmentIdentifier {sid!r} was already confirmed on "
                    f"{iso(prev.confirmedAt)} for PO {prev.purchaseOrderNumber}; an Original "
                    f"needs an id not used in the last 365 days{hint}",
                )
        elif kind == "Replace":
            if prev is None:
                self.add(
                    Code.REPLACE_WITHOUT_ORIGINAL,
                    "shipmentConfirmationType",
                    f"Replace of shipmentIdentifier {sid!r}, which was never confirmed",
                )
            elif prev.purchaseOrderNumber != po:
                self.add(
                    Code.SHIPMENT_ID_REUSED,
                    "shipmentIdentifier",
                    f"Replace of shipmentIdentifier {sid!r}, which belongs to PO "
                    f"{prev.purchaseOrderNumber}, not {po}",
                )
            elif selling != prev.sellingPartyId:
                self.add(
                    Code.REPLACE_SELLING_PARTY_CHANGED,
                    "sellingParty/partyId",
                    f"a Replace must repeat the original sellingParty {prev.sellingPartyId!r}, "
                    f"got {selling!r}",
                )
        for name, party in (
            ("sellingParty", ctx.po.sellingParty),
            ("shipToParty", ctx.po.shipToParty),
        ):
            got = _str(_dict(asn.get(name)).get("partyId"))
            if got is not None and got != party.partyId:
                self.add(
                    Code.PARTY_MISMATCH,
                    f"{name}/partyId",
                    f"{name} {got!r} differs from PO {po}'s {party.partyId!r}",
                )
        for i, item in enumerate(_list(asn.get("shippedItems"))):
            got = _str(_dict(_dict(item).get("itemDetails")).get("purchaseOrderNumber"))
            seq = _dict(item).get("itemSequenceNumber")
            if got != po:
                what = "has no purchaseOrderNumber" if got is None else f"names PO {got!r}"
                self.add(
                    Code.PO_MISMATCH,
                    f"shippedItems/{i}/itemDetails/purchaseOrderNumber",
                    f"item {seq} {what}; this shipment is for PO {po}",
                )

    # --- dates

    def dates(self) -> None:
        times: dict[str, datetime] = {}
        for name in ("shipmentConfirmationDate", "shippedDate", "estimatedDeliveryDate"):
            raw = self.asn.get(name)
            if raw is None:
                continue
            t = _parse_time(raw)
            if t is None:
                self.add(
                    Code.INVALID_DATE,
                    name,
                    f"{name} {raw!r} is not an ISO 8601 date-time with a UTC offset",
                )
            else:
                times[name] = t
        shipped = times.get("shippedDate")
        if "shippedDate" not in self.asn:
            self.add(Code.MISSING_SHIPPED_DATE, "shippedDate", "shippedDate is missing")
        elif shipped is not None and shipped > self.ctx.now + self.ctx.future_tolerance:
            self.add(
                Code.SHIPPED_DATE_IN_FUTURE,
                "shippedDate",
                f"shippedDate {iso(shipped)} is after now ({iso(self.ctx.now)}); Amazon: the "
                "shipped date should not be in the future",
            )
        eta = times.get("estimatedDeliveryDate")
        if shipped is not None and eta is not None and eta < shipped:
            self.add(
                Code.DELIVERY_BEFORE_SHIPPED,
                "estimatedDeliveryDate",
                f"estimatedDeliveryDate {iso(eta)} is before shippedDate {iso(shipped)}",
            )

    # --- carrier, PRO, tracking, BOL, ARN

    def transport(self) -> None:
        ctx, asn = self.ctx, self.asn
        td = _dict(asn.get("transportationDetails"))
        kind = asn.get("shipmentType")
        path = "transportationDetails"
        scac = _str(td.get("carrierScac"))
        if scac is None:
            if ctx.carrier_details_required:
                self.add(
                    Code.MISSING_SCAC,
                    f"{path}/carrierScac",
                    "carrierScac is missing (mandatory for US, CA, MX)",
                )
        elif not _SCAC.fullmatch(scac):
            self.add(
                Code.INVALID_SCAC,
                f"{path}/carrierScac",
                f"carrierScac {scac!r} is not a SCAC (2 to 4 capital letters)",
            )
        if _str(td.get("carrierShipmentReferenceNumber")) is None:
            if kind in _FREIGHT:
                why = f"a {kind} shipment needs the carrier's PRO number"
            elif ctx.carrier_details_required:
                why = "the carrier reference (PRO/tracking) is mandatory for US, CA, MX"
            else:
                why = ""
            if why:
                self.add(
                    Code.MISSING_CARRIER_REFERENCE, f"{path}/carrierShipmentReferenceNumber", why
                )
        if kind == "SmallParcel":
            cartons = _list(asn.get("cartons"))
            if not cartons:
                self.add(
                    Code.MISSING_TRACKING_NUMBER,
                    "cartons",
                    "a SmallParcel shipment needs cartons, each with a tracking number",
                )
            for i, carton in enumerate(cartons):
                if _str(_dict(carton).get("trackingNumber")) is None:
                    self.add(
                        Code.MISSING_TRACKING_NUMBER,
                        f"cartons/{i}/trackingNumber",
                        f"{_carton_name(carton, i)} has no trackingNumber, required for "
                        "every carton of a SmallParcel shipment",
                    )
        self._bill_of_lading(td, kind)
        if ctx.collect_freight and _str(asn.get("amazonReferenceNumber")) is None:
            self.add(
                Code.MISSING_AMAZON_REFERENCE_NUMBER,
                "amazonReferenceNumber",
                "a Collect/WePay shipment needs its amazonReferenceNumber (ARN)",
            )

    def _bill_of_lading(self, td: Mapping[str, Any], kind: Any) -> None:
        path = "transportationDetails/billOfLadingNumber"
        raw = td.get("billOfLadingNumber")
        bol = _str(raw)
        if bol is None:
            if kind in _FREIGHT:
                self.add(
                    Code.MISSING_BILL_OF_LADING,
                    path,
                    f"billOfLadingNumber is missing, mandatory for a {kind} shipment",
                )
            return
        if len(bol) < 2:
            self.add(
                Code.INVALID_BILL_OF_LADING,
                path,
                f"billOfLadingNumber {raw!r} is a single character",
            )
        elif looks_like_date(bol):
            self.add(
                Code.INVALID_BILL_OF_LADING,
                path,
                f"billOfLadingNumber {raw!r} is a date/time, not a BOL number",
            )
        sid = self.asn.get("shipmentIdentifier")
        other = self.ctx.used_bills_of_lading.get(bol)
        if other is not None and other != sid:
            self.add(
                Code.BILL_OF_LADING_REUSED,
                path,
                f"billOfLadingNumber {bol!r} was already used by shipment {other!r}; "
                "it must be unique for every shipment",
            )

    # --- shipped items against the acknowledgement

    def items(self) -> None:
        items = _list(self.asn.get("shippedItems"))
        if not items:
            self.add(Code.NO_SHIPPED_ITEMS, "shippedItems", "the shipment has no shippedItems")
        seen: dict[str, int] = {}
        for i, raw in enumerate(items):
            item = _dict(raw)
            path = f"shippedItems/{i}"
            seq = _str(item.get("itemSequenceNumber"))
            if seq is None:
                continue  # the model check reports it
            if seq in seen:
                self.add(
                    Code.DUPLICATE_ITEM_SEQUENCE,
                    f"{path}/itemSequenceNumber",
                    f"itemSequenceNumber {seq!r} repeats shippedItems/{seen[seq]}",
                )
                continue
            seen[seq] = i
            line = self.ctx.po.line(seq)
            if line is None:
                self.add(
                    Code.ITEM_NOT_ACKNOWLEDGED,
                    path,
                    f"item {seq} ({_product(item)}) is not a line of PO "
                    f"{self.ctx.po.purchaseOrderNumber}",
                )
                continue
            name = f"item {seq} (SKU {line.sku})"
            self._identifiers(item, line, name, path)
            qty = _dict(item.get("shippedQuantity"))
            eaches = self._quantity(qty, line, name, f"{path}/shippedQuantity")
            if line.acknowledged_eaches == 0:
                self.add(
                    Code.ITEM_NOT_ACKNOWLEDGED,
                    path,
                    f"{name} ships but PO line {line.itemSequenceNumber} was not accepted "
                    "(nothing accepted or backordered)",
                )
            elif eaches is not None:
                before = self.shipped_before.get(seq_key(line.itemSequenceNumber), 0)
                if eaches + before > line.acknowledged_eaches:
                    earlier = f" (+ {before} on earlier shipments)" if before else ""
                    self.add(
                        Code.QUANTITY_EXCEEDS_ACKNOWLEDGED,
                        f"{path}/shippedQuantity",
                        f"{name} ships {line.describe(eaches)}{earlier} but only "
                        f"{line.describe(line.acknowledged_eaches)} were acknowledged",
                    )

    def _identifiers(self, item: Mapping[str, Any], line: AckLine, name: str, path: str) -> None:
        for key, expected in (
            ("amazonProductIdentifier", line.asin),
            ("vendorProductIdentifier", line.vendorProductIdentifier),
        ):
            got = item.get(key)
            if got is not None and expected is not None and got != expected:
                self.add(
                    Code.IDENTIFIER_MISMATCH,
                    f"{path}/{key}",
                    f"{name} has {key} {got!r}, the PO line has {expected!r}",
                )

    def _quantity(self, qty: Mapping[str, Any], line: AckLine, where: str, path: str) -> int | None:
        """Checks one ItemQuantity against the acknowledged unit; returns it in eaches."""
        eaches = _eaches(qty, line)
        if eaches is None:
            return None  # not an integer amount in Cases/Eaches: the model check reports it
        amount: int = qty["amount"]
        unit, size = qty["unitOfMeasure"], qty.get("unitSize")
        if amount <= 0:
            self.add(
                Code.NON_POSITIVE_QUANTITY,
                f"{path}/amount",
                f"{where} ships {amount} {unit}; a shipped quantity is positive",
            )
            return None
        ack = f"acknowledged in {line.unitOfMeasure}"
        if line.unitOfMeasure == "Cases":
            ack += f" of {line.case_size}"
        if unit == "Eaches" and line.unitOfMeasure == "Cases":
            if amount % line.case_size:
                self.add(
                    Code.PARTIAL_CASE,
                    path,
                    f"{where} holds {amount} eaches = {amount / line.case_size:g} cases of "
                    f"{line.case_size}; the line was {ack}, ship whole cases",
                )
            else:
                self.add(
                    Code.UNIT_MISMATCH,
                    f"{path}/unitOfMeasure",
                    f"{where} is in Eaches but the line was {ack}; "
                    f"send {amount // line.case_size} Cases",
                )
        elif unit == "Cases" and line.unitOfMeasure == "Eaches":
            self.add(
                Code.UNIT_MISMATCH,
                f"{path}/unitOfMeasure",
                f"{where} is in Cases but the line was {ack}",
            )
        elif unit == "Cases" and size != line.case_size:
            got = "no unitSize" if size is None else f"unitSize {size!r}"
            self.add(
                Code.UNIT_MISMATCH, f"{path}/unitSize", f"{where} has {got}, the line was {ack}"
            )
        return eaches

    # --- cartons and pallets

    def containers(self) -> None:
        asn = self.asn
        cartons = _list(asn.get("cartons"))
        pallets = _list(asn.get("pallets"))
        held: dict[str, int] = {}  # eaches per item across containers
        ssccs: dict[str, str] = {}  # SSCC -> container name
        carton_seqs: dict[str, str] = {}
        for i, raw in enumerate(cartons):
            carton = _dict(raw)
            name = _carton_name(carton, i)
            seq = _str(carton.get("cartonSequenceNumber"))
            if seq is not None:
                if seq in carton_seqs:
                    self.add(
                        Code.DUPLICATE_CARTON_SEQUENCE,
                        f"cartons/{i}/cartonSequenceNumber",
                        f"{name} repeats the cartonSequenceNumber of {carton_seqs[seq]}",
                    )
                else:
                    carton_seqs[seq] = name
            ids = carton.get("cartonIdentifiers")
            self._container_ids(ids, f"cartons/{i}/cartonIdentifiers", name, ssccs)
            self._contents(carton.get("items"), f"cartons/{i}/items", name, held)
        on_pallet: dict[str, str] = {}
        for i, raw in enumerate(pallets):
            pallet = _dict(raw)
            name = _pallet_name(pallet, i)
            ids = pallet.get("palletIdentifiers")
            self._container_ids(ids, f"pallets/{i}/palletIdentifiers", name, ssccs)
            ref_path = f"pallets/{i}/cartonReferenceDetails"
            details = _dict(pallet.get("cartonReferenceDetails"))
            refs = _list(details.get("cartonReferenceNumbers"))
            for j, ref in enumerate(refs):
                where = f"{ref_path}/cartonReferenceNumbers/{j}"
                if ref not in carton_seqs:
                    self.add(
                        Code.UNKNOWN_CARTON_REFERENCE,
                        where,
                        f"{name} references carton {ref!r}, which is not a "
                        "cartonSequenceNumber of this shipment",
                    )
                elif ref in on_pallet:
                    self.add(
                        Code.CARTON_ON_SEVERAL_PALLETS,
                        where,
                        f"{carton_seqs[ref]} is on {on_pallet[ref]} and on {name}",
                    )
                else:
                    on_pallet[ref] = name
            count = details.get("cartonCount")
            if (
                isinstance(count, int)
                and "cartonReferenceNumbers" in details
                and count != len(refs)
            ):
                self.add(
                    Code.CARTON_COUNT_MISMATCH,
                    f"{ref_path}/cartonCount",
                    f"{name} says cartonCount {count} but references {len(refs)} cartons",
                )
            self._contents(pallet.get("items"), f"pallets/{i}/items", name, held)
        if cartons or pallets:
            self._sums(held)

    def _container_ids(self, ids: Any, path: str, name: str, ssccs: dict[str, str]) -> None:
        if not _list(ids):
            self.add(Code.MISSING_CONTAINER_ID, path, f"{name} has no identifier (SSCC)")
            return
        sid = self.asn.get("shipmentIdentifier")
        for j, raw in enumerate(_list(ids)):
            ident = _dict(raw)
            number = ident.get("containerIdentificationNumber")
            if ident.get("containerIdentificationType") != "SSCC" or not isinstance(number, str):
                continue
            where = f"{path}/{j}/containerIdentificationNumber"
            sscc = strip_sscc_ai(number)
            problem = sscc_problem(sscc)
            if problem:
                self.add(Code.INVALID_SSCC, where, f"{name}: SSCC {problem}")
                continue
            if sscc in ssccs:
                self.add(Code.DUPLICATE_SSCC, where, f"{name} repeats SSCC {sscc} of {ssccs[sscc]}")
            else:
                ssccs[sscc] = name
            other = self.ctx.used_ssccs.get(sscc)
            if other is not None and other != sid:
                self.add(
                    Code.SSCC_REUSED,
                    where,
                    f"{name}: SSCC {sscc} was already used by shipment {other!r}; GS1 "
                    "forbids reusing an SSCC within one year",
                )

    def _contents(self, items: Any, path: str, name: str, held: dict[str, int]) -> None:
        for k, raw in enumerate(_list(items)):
            item = _dict(raw)
            ref = _str(item.get("itemReference"))
            if ref is None:
                continue  # the model check reports it
            if ref not in self.items_by_seq:
                self.add(
                    Code.UNKNOWN_ITEM_REFERENCE,
                    f"{path}/{k}/itemReference",
                    f"{name} holds item {ref!r}, which is not in shippedItems",
                )
                continue
            line = self.ctx.po.line(ref)
            if line is None:
                continue  # reported once, on the shipped item
            where = f"{name} (item {ref}, SKU {line.sku})"
            qty = _dict(item.get("shippedQuantity"))
            eaches = self._quantity(qty, line, where, f"{path}/{k}/shippedQuantity")
            if eaches is not None:
                held[ref] = held.get(ref, 0) + eaches

    def _sums(self, held: dict[str, int]) -> None:
        for seq, (i, item) in self.items_by_seq.items():
            line = self.ctx.po.line(seq)
            if line is None:
                continue
            total = _eaches(_dict(item.get("shippedQuantity")), line)
            inside = held.get(seq, 0)
            if total is not None and total != inside:
                self.add(
                    Code.CONTAINER_QUANTITY_MISMATCH,
                    f"shippedItems/{i}/shippedQuantity",
                    f"item {seq} (SKU {line.sku}) ships {line.describe(total)} but its "
                    f"cartons and pallets hold {line.describe(inside)}",
                )


def _eaches(qty: Mapping[str, Any], line: AckLine) -> int | None:
    """An ItemQuantity in eaches as the ASN states it (a missing case size: the line's)."""
    amount, unit, size = qty.get("amount"), qty.get("unitOfMeasure"), qty.get("unitSize")
    if not isinstance(amount, int) or isinstance(amount, bool):
        return None
    if unit == "Cases":
        return amount * (size if isinstance(size, int) and size > 0 else line.case_size)
    return amount if unit == "Eaches" else None


def _product(item: Mapping[str, Any]) -> str:
    ids = [
        f"{key} {item[key]!r}"
        for key in ("vendorProductIdentifier", "amazonProductIdentifier")
        if item.get(key) is not None
    ]
    return ", ".join(ids) or "no product identifier"


def _sscc_of(ids: Any) -> str | None:
    for raw in _list(ids):
        ident = _dict(raw)
        if ident.get("containerIdentificationType") == "SSCC":
            number = ident.get("containerIdentificationNumber")
            return number if isinstance(number, str) else None
    return None


def _carton_name(carton: Any, index: int) -> str:
    c = _dict(carton)
    seq = c.get("cartonSequenceNumber", f"#{index + 1}")
    sscc = _sscc_of(c.get("cartonIdentifiers"))
    return f"carton {seq}" + (f" (SSCC {sscc})" if sscc else "")


def _pallet_name(pallet: Any, index: int) -> str:
    sscc = _sscc_of(_dict(pallet).get("palletIdentifiers"))
    return f"pallet {index + 1}" + (f" (SSCC {sscc})" if sscc else "")
