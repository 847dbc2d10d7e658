"""The ASN flow's effects and ports, and what the rules read off a built ASN.

:class:`~streams.domain.asn_state.ShipmentBook` answers every event with :class:`Effects`
for the agent to carry out; :class:`UsedIndex` is the port to the worker's global table of
ids any PO confirmed; :class:`Rules` holds the clock, Amazon's model and the settings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson

from streams.domain.asn_findings import AsnContext, Violation
from streams.domain.asn_model import ModelCheck, PoState, UsedShipment, seq_key
from streams.domain.asn_view import read_asn, text
from streams.domain.exceptions import OpsException, Refs, raise_exception, resolve, to_record
from streams.domain.gs1 import strip_sscc_ai

ACTIVE = ("queued", "submitted", "accepted")  # Amazon holds it, or will
# Kafka header on amazon.shipment-confirmations: the version's index within its shipment, so
# the sender tells a replay of one version (same index) from a resend of the same content
# after a failure (a new version)
VERSION_HEADER = "streams.asn-version"
INVALID = "asn-invalid"
TX_FAILED = "asn-transaction-failed"


def digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def asn_digest(asn: Mapping[str, Any]) -> str:
    """Content hash without the confirmation date: the same shipment rebuilt later (a replayed
    event) hashes the same, so the sender submits it once."""
    return digest({k: v for k, v in asn.items() if k != "shipmentConfirmationDate"})


def asn_purchase_order(asn: Mapping[str, Any]) -> str | None:
    """The PO an ASN ships against (every item names it; the builder writes one PO)."""
    for item in asn.get("shippedItems") or ():
        po = ((item or {}).get("itemDetails") or {}).get("purchaseOrderNumber")
        if isinstance(po, str) and po:
            return po
    return None


class UsedIndex(Protocol):
    """Shipment ids, BOLs and SSCCs confirmed by *any* PO (the worker's global table)."""

    def shipment(self, sid: str) -> UsedShipment | None: ...
    def bill_of_lading(self, bol: str) -> str | None: ...
    def sscc(self, sscc: str) -> str | None: ...


@dataclass(frozen=True)
class Rules:
    """What the ASN rules need beyond the data: the clock, Amazon's model, settings."""

    now: datetime
    model_check: ModelCheck
    carrier_details_required: bool = True
    collect_freight: bool = False
    sscc_with_ai: bool = False
    future_tolerance: timedelta = timedelta(0)


@dataclass(frozen=True)
class Used:
    """One shipment's claim on ids: registered in (or released from) the global index."""

    sid: str
    shipment: UsedShipment
    bills_of_lading: tuple[str, ...]
    ssccs: tuple[str, ...]


@dataclass
class Effects:
    publish: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)  # sid, ASN, n
    exceptions: list[dict[str, Any]] = field(default_factory=list)  # ops.exceptions records
    outcomes: list[str] = field(default_factory=list)  # streams_asn_total
    register: list[Used] = field(default_factory=list)
    release: list[Used] = field(default_factory=list)
    watch: list[tuple[str, str, float]] = field(default_factory=list)  # (txid, sid, at)
    done: list[str] = field(default_factory=list)  # txids no longer pending
    latency: list[float] = field(default_factory=list)  # dispatch -> submitted, seconds
    tx_failures: int = 0
    changed: bool = False


def violation_record(v: Violation) -> dict[str, str]:
    return {"code": str(v.code), "field": v.field, "message": v.message}


def asn_bill_of_lading(asn: Mapping[str, Any]) -> str | None:
    return text(read_asn(asn).bill_of_lading)


def asn_ssccs(asn: Mapping[str, Any]) -> set[str]:
    """The SSCCs of every carton and pallet, without the "00" Application Identifier."""
    view = read_asn(asn)
    return {strip_sscc_ai(n) for box in (*view.cartons, *view.pallets) for _, n in box.ssccs}


def shipped_eaches(asn: Mapping[str, Any], po: PoState) -> dict[str, int]:
    """Eaches per PO line this ASN ships (what later shipments' over-shipment check counts)."""
    out: dict[str, int] = {}
    for item in asn.get("shippedItems") or ():
        seq = item["itemSequenceNumber"]
        qty = item["shippedQuantity"]
        line = po.line(seq)
        size = qty.get("unitSize") or (line.case_size if line else 1)
        n = qty["amount"] * (size if qty["unitOfMeasure"] == "Cases" else 1)
        out[seq_key(seq)] = out.get(seq_key(seq), 0) + n
    return out


def check_context(
    sid: str,
    asn: Mapping[str, Any],
    po: PoState,
    claims: Iterable[tuple[str, Used, Mapping[str, int]]],
    index: UsedIndex,
    rules: Rules,
) -> AsnContext:
    """What the check of shipment ``sid``'s ``asn`` needs: the ids this PO's shipments
    claim (``claims``: sid, its claim, eaches it shipped per line), what they shipped before,
    and from ``index`` the other POs' claims this ASN could collide with."""
    ids: dict[str, UsedShipment] = {}
    bols: dict[str, str] = {}
    ssccs: dict[str, str] = {}
    shipped: dict[str, int] = {}
    for other, used, other_shipped in claims:
        ids[other] = used.shipment
        bols.update(dict.fromkeys(used.bills_of_lading, other))
        ssccs.update(dict.fromkeys(used.ssccs, other))
        if other != sid:  # a Replace replaces its own earlier quantities
            for seq, n in other_shipped.items():
                shipped[seq_key(seq)] = shipped.get(seq_key(seq), 0) + n
    # other POs' shipments: only what this ASN could collide with
    if sid not in ids and (g := index.shipment(sid)) is not None:
        ids[sid] = g
    bol = asn_bill_of_lading(asn)
    if bol and bol not in bols and (g_sid := index.bill_of_lading(bol)) is not None:
        bols[bol] = g_sid
    for sscc in asn_ssccs(asn):
        if sscc not in ssccs and (g_sid := index.sscc(sscc)) is not None:
            ssccs[sscc] = g_sid
    return AsnContext(
        now=rules.now,
        po=po,
        model_check=rules.model_check,
        used_shipment_ids=ids,
        used_bills_of_lading=bols,
        used_ssccs=ssccs,
        shipped_before=shipped,
        carrier_details_required=rules.carrier_details_required,
        collect_freight=rules.collect_freight,
        future_tolerance=rules.future_tolerance,
    )


def claim(
    po: str,
    sid: str,
    versions: list[dict[str, Any]],
    selling_party: str,
    confirmed: Mapping[str, Any],
    dispatch_id: str | None = None,
) -> Used:
    """Shipment ``sid``'s claim on ids: its BOLs and SSCCs over ``versions``, dated by the
    ``confirmed`` version's confirmation."""
    return Used(
        sid=sid,
        shipment=UsedShipment(
            purchaseOrderNumber=po,
            sellingPartyId=selling_party,
            confirmedAt=datetime.fromisoformat(confirmed["confirmedAt"]),
            dispatchId=dispatch_id,
        ),
        bills_of_lading=tuple(sorted({v["bol"] for v in versions if v.get("bol")})),
        ssccs=tuple(sorted({s for v in versions for s in v["ssccs"]})),
    )


def new_version(
    asn: Mapping[str, Any], asn_hash: str, dispatch_id: str, po: PoState
) -> dict[str, Any]:
    """A version as the book stores it: what the 365-day and over-shipment rules count."""
    return {
        "type": asn["shipmentConfirmationType"],
        "digest": asn_hash,
        "dispatchId": dispatch_id,
        "status": "queued",
        "confirmedAt": asn["shipmentConfirmationDate"],
        "sellingPartyId": asn["sellingParty"]["partyId"],
        "shipped": shipped_eaches(asn, po),
        "ssccs": sorted(asn_ssccs(asn)),
        "bol": asn_bill_of_lading(asn),
        "asn": asn,
    }


def raise_into(
    exceptions: dict[str, Any],
    kind: str,
    refs: Refs,
    cause: str,
    now_iso: str,
    eff: Effects,
    *,
    txid: str | None = None,
    violations: list[Violation] | None = None,
) -> None:
    """Raise ``kind`` (again) in a shipment's open ``exceptions`` and report it."""
    prev = exceptions.get(kind)
    exc = raise_exception(
        kind, refs, cause, now_iso, OpsException.model_validate(prev) if prev else None
    )
    exceptions[kind] = to_record(exc)
    rec = to_record(exc)
    if txid:
        rec["transactionId"] = txid  # not a ref: the exception id must outlive retries
    if violations is not None:
        rec["violations"] = [violation_record(v) for v in violations]
    eff.exceptions.append(rec)
    eff.changed = True


def repeat_into(shipment: Mapping[str, Any], used: Used | None, eff: Effects) -> None:
    """A redelivered dispatch or outcome: what the saved book made of it, once more. The
    book is saved before its exceptions are sent and its ids claimed, so a crash in between
    leaves an invalid, waiting or failed ASN with no owned exception; the stored open ones
    are reported again (keyed by id: seen again downstream) and the claim re-registered
    (written if missing). A built ASN lost so is republished by the start-up scan."""
    for kind, stored in (shipment.get("exceptions") or {}).items():
        rec = dict(stored)
        if kind == INVALID and shipment.get("violations"):
            rec["violations"] = list(shipment["violations"])
        failed = [v for v in shipment.get("versions") or () if v.get("status") == "failed"]
        if kind == TX_FAILED and failed and failed[-1].get("txid"):
            rec["transactionId"] = failed[-1]["txid"]
        eff.exceptions.append(rec)
    if used is not None:
        eff.register.append(used)


def resolve_into(exceptions: dict[str, Any], kind: str, now_iso: str, eff: Effects) -> None:
    """Resolve ``kind`` if it is open in a shipment's ``exceptions``, and report it."""
    prev = exceptions.pop(kind, None)
    if prev is not None:
        eff.exceptions.append(to_record(resolve(OpsException.model_validate(prev), now_iso)))
        eff.changed = True
