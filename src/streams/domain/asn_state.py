"""The ASN flow's per-PO record (table ``shipments``) and the decisions taken on it.

Pure: the ASN agent loads a PO's :class:`ShipmentBook`, calls one ``on_*`` method per event
and carries out the returned :class:`Effects` (table writes, ASNs, exceptions, metrics), so
every rule about idempotency and "used" ids lives here and in :mod:`streams.domain.asn`.

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

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from streams.domain.asn_build import build_shipment_confirmation
from streams.domain.asn_check import validate_shipment_confirmation
from streams.domain.asn_effects import (
    ACTIVE,
    INVALID,
    TX_FAILED,
    Effects,
    Rules,
    Used,
    UsedIndex,
    asn_digest,
    check_context,
    claim,
    digest,
    new_version,
    raise_into,
    repeat_into,
    resolve_into,
    violation_record,
)
from streams.domain.asn_findings import AsnContext, Violation
from streams.domain.asn_model import AckLine, Party, PoState
from streams.domain.dispatch import Dispatch
from streams.domain.exceptions import Refs
from streams.domain.mapping import SkuMapping
from streams.domain.purchase_order import load as load_po

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
        # 365 days from the first confirmation Amazon holds
        return claim(self.po, sid, active, eff["sellingPartyId"], active[0], eff["dispatchId"])

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
                eff.outcomes.append("duplicate")  # a redelivery: nothing new to say,
                return self._repeat(sid, eff)  # but what a crash may have lost
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
            return self._repeat(sid, eff) if v is not None else eff  # redelivered
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
            return self._repeat(sid, eff) if v is not None and status != "Processing" else eff
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

    def _repeat(self, sid: str, eff: Effects) -> Effects:
        repeat_into(self.shipments[sid], self.used(sid), eff)  # see asn_effects.repeat_into
        return eff

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
            eff.release.append(claim(self.po, sid, ended, v["sellingPartyId"], v))

    def _context(
        self, sid: str, asn: Mapping[str, Any], po: PoState, index: UsedIndex, rules: Rules
    ) -> AsnContext:
        claims = [
            (other, used, (self.effective(other) or {}).get("shipped", {}))
            for other in self.shipments
            if (used := self.used(other)) is not None
        ]
        return check_context(sid, asn, po, claims, index, rules)

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
            sh.update(
                {"status": "invalid", "violations": [violation_record(v) for v in violations]}
            )
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
        sh["versions"].append(new_version(asn, h, dispatch.dispatchId, po))
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
        refs = Refs(purchaseOrderNumber=self.po, shipmentId=sid)
        exceptions = self.shipments[sid]["exceptions"]
        raise_into(exceptions, kind, refs, cause, now_iso, eff, txid=txid, violations=violations)

    def _resolve(self, sid: str, kind: str, now_iso: str, eff: Effects) -> None:
        resolve_into(self.shipments[sid]["exceptions"], kind, now_iso, eff)
