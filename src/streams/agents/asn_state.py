"""The ASN flow's per-PO record (table ``shipments``) and the decisions taken on it.

Pure: no Faust, no I/O. The ASN agent loads a PO's :class:`ShipmentBook`, calls one ``on_*``
method per event and carries out the returned :class:`Effects` (table writes, ASNs to
publish, exceptions, metrics), so every rule about idempotency and about which ids are
"used" lives here and in :mod:`streams.domain.asn`, not in the agent.

Record shape, per shipment id::

    {"latest": dispatchId, "status": pending|invalid|queued|submitted|accepted|failed|rejected,
     "seen": {dispatchId: {"d": dispatch digest, "p": PO-state digest, "sent": bool}},
     "pending": raw dispatch while the PO is not acknowledged, "violations": [...],
     "exceptions": {kind: open OpsException}, "versions": [version, ...]}

A *version* is one confirmation sent (or being sent): type, content digest, dispatch id,
status, shipped eaches per item, SSCCs, BOL, selling party, transaction id. A shipment's
*effective* version is its last one Amazon holds or will hold (queued, submitted, accepted):
what the 365-day and over-shipment rules count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from streams.domain.asn import (
    AckLine,
    AsnContext,
    ModelCheck,
    Party,
    PoState,
    UsedShipment,
    Violation,
    build_shipment_confirmation,
    seq_key,
    validate_shipment_confirmation,
)
from streams.domain.dispatch import Dispatch
from streams.domain.exceptions import OpsException, Refs, raise_exception, resolve, to_record
from streams.domain.gs1 import strip_sscc_ai
from streams.domain.mapping import SkuMapping
from streams.domain.purchase_order import load as load_po

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


# ---------------------------------------------------------------- the join input


def po_state_from_record(po: Mapping[str, Any] | None, selling_party: str) -> PoState | str:
    """The PO as acknowledged, from the purchase-order flow's ``pos`` record, or why not yet.

    "Acknowledged" = an acknowledgement of the PO's current revision was submitted and its
    transaction has not failed: Amazon answers only Processing/Failure for acknowledgements,
    so waiting for Success could wait 15 minutes for nothing.
    """
    if po is None:
        return "the PO is unknown here (not received from Amazon yet)"
    number = po.get("po", "?")
    if po.get("state") == "Closed":
        return f"PO {number} is Closed at Amazon"
    rec = load_po(po)
    if not rec.is_acknowledged():
        if rec.submitted_for_current() and rec.ack_failed():
            return f"the acknowledgement of PO {number} failed at Amazon (transaction {rec.tx.id})"
        return f"PO {number} is not acknowledged yet (no acknowledgement submitted to Amazon)"
    details = (po.get("order") or {}).get("orderDetails") or {}
    decisions: Mapping[str, Any] = po.get("decisions") or {}
    lines: list[AckLine] = []
    try:
        for seq, line in (po.get("lines") or {}).items():
            d = decisions.get(seq)
            if d is None:
                return f"PO {number} line {seq} has no decision yet"
            sku = d.get("sku") or line.get("sku")
            if not sku:
                continue  # unknown product, rejected: nothing may ship against it
            qty = line.get("orderedQuantity") or {}
            unit = qty.get("unitOfMeasure") or "Eaches"
            size = d.get("unitSize") or qty.get("unitSize")
            lines.append(
                AckLine(
                    itemSequenceNumber=seq,
                    sku=sku,
                    asin=line.get("amazonProductIdentifier"),
                    vendorProductIdentifier=line.get("vendorProductIdentifier"),
                    acceptedQuantity=d.get("accepted", 0),
                    backorderedQuantity=d.get("backordered", 0),
                    unitOfMeasure=unit,
                    unitSize=size if unit == "Cases" else None,
                )
            )
        if not details.get("shipToParty"):
            return f"PO {number} names no shipToParty"
        return PoState(
            purchaseOrderNumber=number,
            sellingParty=Party.model_validate(
                details.get("sellingParty") or {"partyId": selling_party}
            ),
            shipToParty=Party.model_validate(details["shipToParty"]),
            lines=tuple(lines),
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
            for e in exc.errors()[:3]
        )
        return f"PO {number} cannot be joined: {problems}"


# ---------------------------------------------------------------- ports and effects


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


# ---------------------------------------------------------------- the book


class ShipmentBook:
    """One PO's shipments, as stored in ``shipments[PO]``."""

    def __init__(self, po: str, data: Mapping[str, Any] | None = None) -> None:
        self.po = po
        self.data: dict[str, Any] = dict(data or {"po": po, "shipments": {}})
        self.shipments: dict[str, dict[str, Any]] = self.data.setdefault("shipments", {})

    def to_json(self) -> dict[str, Any]:
        return self.data

    # --- reads

    def effective(self, sid: str) -> dict[str, Any] | None:
        versions = (self.shipments.get(sid) or {}).get("versions") or []
        return next((v for v in reversed(versions) if v["status"] in ACTIVE), None)

    def used(self, sid: str) -> Used | None:
        eff = self.effective(sid)
        if eff is None:
            return None
        active = [v for v in self.shipments[sid]["versions"] if v["status"] in ACTIVE]
        return Used(
            sid=sid,
            shipment=UsedShipment(
                purchaseOrderNumber=self.po,
                sellingPartyId=eff["sellingPartyId"],
                confirmedAt=datetime.fromisoformat(active[0]["confirmedAt"]),  # 365 days from it
                dispatchId=eff["dispatchId"],
            ),
            bills_of_lading=tuple(sorted({v["bol"] for v in active if v.get("bol")})),
            ssccs=tuple(sorted({s for v in active for s in v["ssccs"]})),
        )

    def pending(self) -> list[str]:
        return [sid for sid, sh in self.shipments.items() if sh.get("status") == "pending"]

    def in_flight(self) -> list[tuple[str, str, float]]:
        """(txid, sid, submitted at) of transactions Amazon has not finished."""
        return [
            (v["txid"], sid, v.get("submittedAt", 0.0))
            for sid, sh in self.shipments.items()
            for v in sh.get("versions", [])
            if v["status"] == "submitted" and v.get("txid")
        ]

    def queued(self) -> list[tuple[str, dict[str, Any], int]]:
        """(sid, ASN, version) handed to the sender but not reported submitted: republished
        after a restart, in case the crash lost them (the sender drops what it already sent)."""
        return [
            (sid, v["asn"], n)
            for sid, sh in self.shipments.items()
            for n, v in enumerate(sh.get("versions", []))
            if v["status"] == "queued" and "asn" in v
        ]

    # --- events

    def on_dispatch(
        self,
        raw: Mapping[str, Any],
        dispatch: Dispatch,
        po: PoState | str,
        items: Mapping[str, SkuMapping],
        index: UsedIndex,
        rules: Rules,
        received_at: float,
    ) -> Effects:
        eff = Effects()
        sid = dispatch.shipmentId
        sh = self._shipment(sid)
        d_digest = digest(raw)
        p_digest = digest(po.model_dump(mode="json")) if isinstance(po, PoState) else po
        seen = sh["seen"].get(dispatch.dispatchId)
        if seen is not None and seen["d"] == d_digest:
            superseded = sh.get("latest") != dispatch.dispatchId
            if superseded or seen["sent"] or seen["p"] == p_digest:
                eff.outcomes.append("duplicate")  # a redelivery: nothing new to say
                return eff
        sh["latest"] = dispatch.dispatchId
        sh["seen"][dispatch.dispatchId] = {"d": d_digest, "p": p_digest, "sent": False}
        sh["receivedAt"] = received_at
        eff.changed = True
        self._evaluate(sid, raw, dispatch, po, items, index, rules, eff)
        return eff

    def on_recheck(
        self,
        po: PoState | str,
        items_for: Callable[[Dispatch], Mapping[str, SkuMapping]],
        index: UsedIndex,
        rules: Rules,
    ) -> Effects:
        """Re-evaluate dispatches that waited for the PO's acknowledgement."""
        eff = Effects()
        if not isinstance(po, PoState):
            return eff  # still waiting
        p_digest = digest(po.model_dump(mode="json"))
        for sid in self.pending():
            sh = self.shipments[sid]
            raw = sh["pending"]
            dispatch = Dispatch.model_validate(raw)
            sh["seen"][dispatch.dispatchId]["p"] = p_digest
            eff.changed = True
            self._evaluate(sid, raw, dispatch, po, items_for(dispatch), index, rules, eff)
        return eff

    def on_submitted(self, sid: str, asn_hash: str, n: int | None, txid: str, at: float) -> Effects:
        eff = Effects()
        v = self._version(sid, asn_hash, n)
        if v is None or v["status"] != "queued":
            return eff  # reported again (the sender re-reports duplicates), or unknown
        v.update({"status": "submitted", "txid": txid, "submittedAt": at})
        v.pop("asn", None)  # the topic keeps the ASN; the record keeps what the rules need
        self._sync_status(sid)
        eff.changed = True
        eff.outcomes.append("submitted")
        eff.watch.append((txid, sid, at))
        received = self.shipments[sid].get("receivedAt")
        if received is not None:
            eff.latency.append(max(0.0, at - received))
        return eff

    def on_rejected(
        self, sid: str, asn_hash: str, n: int | None, error: str, now_iso: str
    ) -> Effects:
        """The API refused the request (4xx), or the sender's last-line model check did."""
        eff = Effects()
        v = self._version(sid, asn_hash, n)
        if v is None or v["status"] not in ("queued", "submitted"):
            return eff
        v.update({"status": "rejected", "error": error})
        v.pop("asn", None)
        self._ended(sid, v, eff)
        eff.outcomes.append("rejected")
        cause = (
            f"{v['type']} shipment confirmation for shipment {sid} (dispatch "
            f"{v['dispatchId']}) was rejected by Amazon: {error}"
        )
        self._raise(sid, TX_FAILED, cause, now_iso, eff)
        return eff

    def on_transaction(
        self, sid: str, txid: str, status: str, errors: list[dict[str, Any]], now_iso: str
    ) -> Effects:
        eff = Effects()
        versions = (self.shipments.get(sid) or {}).get("versions", [])
        v = next((x for x in versions if x.get("txid") == txid), None)
        eff.done.append(txid)
        if v is None or v["status"] != "submitted" or status == "Processing":
            return eff
        eff.changed = True
        if status == "Failure":
            text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors) or "Failure"
            v.update({"status": "failed", "errors": errors})
            self._ended(sid, v, eff)
            eff.outcomes.append("failed")
            eff.tx_failures += 1
            cause = (
                f"Amazon could not process the {v['type']} shipment confirmation for shipment "
                f"{sid} (dispatch {v['dispatchId']}, transaction {txid}): {text}"
            )
            self._raise(sid, TX_FAILED, cause, now_iso, eff, txid=txid)
            return eff
        v["status"] = "accepted"
        self._sync_status(sid)
        eff.outcomes.append("accepted")
        self._resolve(sid, TX_FAILED, now_iso, eff)
        return eff

    # --- internals

    def _shipment(self, sid: str) -> dict[str, Any]:
        sh = self.shipments.setdefault(sid, {})
        for key, empty in (("seen", {}), ("exceptions", {}), ("versions", [])):
            sh.setdefault(key, empty)
        return sh

    def _version(self, sid: str, asn_hash: str, n: int | None) -> dict[str, Any] | None:
        versions = (self.shipments.get(sid) or {}).get("versions", [])
        if n is not None:
            ok = 0 <= n < len(versions) and versions[n]["digest"] == asn_hash
            return versions[n] if ok else None
        return next((v for v in reversed(versions) if v["digest"] == asn_hash), None)

    def _sync_status(self, sid: str) -> None:
        """The shipment's status: its latest dispatch's, else its latest version's."""
        sh = self.shipments[sid]
        if "pending" in sh:
            sh["status"] = "pending"
        elif sh.get("violations"):
            sh["status"] = "invalid"
        elif sh["versions"]:
            sh["status"] = sh["versions"][-1]["status"]

    def _ended(self, sid: str, v: dict[str, Any], eff: Effects) -> None:
        """A version failed: the shipment's claim on ids follows what remains."""
        eff.changed = True
        if v.get("txid"):
            eff.done.append(v["txid"])
        self._sync_status(sid)
        if self.effective(sid) is None:
            # nothing of this shipment reached Amazon: its id, BOLs and SSCCs are free again
            ended = self.shipments[sid]["versions"]
            eff.release.append(
                Used(
                    sid=sid,
                    shipment=UsedShipment(
                        purchaseOrderNumber=self.po,
                        sellingPartyId=v["sellingPartyId"],
                        confirmedAt=datetime.fromisoformat(v["confirmedAt"]),
                    ),
                    bills_of_lading=tuple(sorted({x["bol"] for x in ended if x.get("bol")})),
                    ssccs=tuple(sorted({s for x in ended for s in x["ssccs"]})),
                )
            )

    def _context(
        self, sid: str, asn: Mapping[str, Any], po: PoState, index: UsedIndex, rules: Rules
    ) -> AsnContext:
        ids: dict[str, UsedShipment] = {}
        bols: dict[str, str] = {}
        ssccs: dict[str, str] = {}
        shipped: dict[str, int] = {}
        for other in self.shipments:
            used = self.used(other)
            if used is None:
                continue
            ids[other] = used.shipment
            bols.update(dict.fromkeys(used.bills_of_lading, other))
            ssccs.update(dict.fromkeys(used.ssccs, other))
            if other != sid:  # a Replace replaces its own earlier quantities
                eff = self.effective(other)
                assert eff is not None
                for seq, n in eff["shipped"].items():
                    shipped[seq_key(seq)] = shipped.get(seq_key(seq), 0) + n
        # other POs' shipments: only what this ASN could collide with
        if sid not in ids and (g := index.shipment(sid)) is not None:
            ids[sid] = g
        bol = _bol(asn)
        if bol and bol not in bols and (g_sid := index.bill_of_lading(bol)) is not None:
            bols[bol] = g_sid
        for sscc in _ssccs(asn):
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

    def _evaluate(
        self,
        sid: str,
        raw: Mapping[str, Any],
        dispatch: Dispatch,
        po: PoState | str,
        items: Mapping[str, SkuMapping],
        index: UsedIndex,
        rules: Rules,
        eff: Effects,
    ) -> None:
        sh = self.shipments[sid]
        now_iso = rules.now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        where = f"shipment {sid} (dispatch {dispatch.dispatchId})"
        if isinstance(po, str):
            sh.update({"status": "pending", "pending": dict(raw), "violations": []})
            eff.outcomes.append("pending")
            cause = f"ASN for {where} not sent yet: {po}; it is sent once the PO is acknowledged"
            self._raise(sid, INVALID, cause, now_iso, eff)
            return
        sh.pop("pending", None)
        asn = build_shipment_confirmation(
            dispatch, po, items, rules.now, sscc_with_ai=rules.sscc_with_ai
        )
        violations = validate_shipment_confirmation(asn, self._context(sid, asn, po, index, rules))
        if violations:
            sh.update({"status": "invalid", "violations": [_violation(v) for v in violations]})
            eff.outcomes.append("invalid")
            cause = f"ASN for {where} not sent: {len(violations)} violation(s): " + "; ".join(
                f"[{v.code}] {v.field}: {v.message}" for v in violations
            )
            self._raise(sid, INVALID, cause, now_iso, eff, violations=violations)
            return
        h = asn_digest(asn)
        current = self.effective(sid)
        sh["seen"][dispatch.dispatchId]["sent"] = True
        sh["violations"] = []
        self._resolve(sid, INVALID, now_iso, eff)
        if current is not None and current["digest"] == h:
            self._sync_status(sid)
            eff.outcomes.append("duplicate")  # Amazon already holds exactly this
            return
        sh["versions"].append(
            {
                "type": asn["shipmentConfirmationType"],
                "digest": h,
                "dispatchId": dispatch.dispatchId,
                "status": "queued",
                "confirmedAt": asn["shipmentConfirmationDate"],
                "sellingPartyId": asn["sellingParty"]["partyId"],
                "shipped": _shipped_eaches(asn, po),
                "ssccs": sorted(_ssccs(asn)),
                "bol": _bol(asn),
                "asn": asn,
            }
        )
        self._sync_status(sid)
        eff.publish.append((sid, asn, len(sh["versions"]) - 1))
        eff.outcomes.append("built")
        used = self.used(sid)
        assert used is not None
        eff.register.append(used)

    def _raise(
        self,
        sid: str,
        kind: str,
        cause: str,
        now_iso: str,
        eff: Effects,
        *,
        txid: str | None = None,
        violations: list[Violation] | None = None,
    ) -> None:
        exceptions = self.shipments[sid]["exceptions"]
        prev = exceptions.get(kind)
        refs = Refs(purchaseOrderNumber=self.po, shipmentId=sid)
        exc = raise_exception(
            kind, refs, cause, now_iso, OpsException.model_validate(prev) if prev else None
        )
        exceptions[kind] = to_record(exc)
        rec = to_record(exc)
        if txid:
            rec["transactionId"] = txid  # not a ref: the exception id must outlive retries
        if violations is not None:
            rec["violations"] = [_violation(v) for v in violations]
        eff.exceptions.append(rec)
        eff.changed = True

    def _resolve(self, sid: str, kind: str, now_iso: str, eff: Effects) -> None:
        prev = self.shipments[sid]["exceptions"].pop(kind, None)
        if prev is not None:
            eff.exceptions.append(to_record(resolve(OpsException.model_validate(prev), now_iso)))
            eff.changed = True


def _violation(v: Violation) -> dict[str, str]:
    return {"code": str(v.code), "field": v.field, "message": v.message}


def _bol(asn: Mapping[str, Any]) -> str | None:
    bol = (asn.get("transportationDetails") or {}).get("billOfLadingNumber")
    return bol.strip() if isinstance(bol, str) and bol.strip() else None


def _ssccs(asn: Mapping[str, Any]) -> set[str]:
    out: set[str] = set()
    containers = [
        *((c or {}).get("cartonIdentifiers") for c in asn.get("cartons") or ()),
        *((p or {}).get("palletIdentifiers") for p in asn.get("pallets") or ()),
    ]
    for ids in containers:
        for ident in ids or ():
            number = (ident or {}).get("containerIdentificationNumber")
            if (ident or {}).get("containerIdentificationType") == "SSCC" and isinstance(
                number, str
            ):
                out.add(strip_sscc_ai(number))
    return out


def _shipped_eaches(asn: Mapping[str, Any], po: PoState) -> dict[str, int]:
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
