"""The DF flow's rules on one DF order (pure): each ``<app>-df-events`` message applied to
the order's record, returning what to do about it (``agents/df_orders.py`` saves the record
and carries the effects out), as ``po_book`` does for retail POs.

The record is the only state of a DF order: its redacted order, its lines and decisions, the
acknowledgement (built once: its digest is the idempotency key, a redelivery never builds a
second, different one), the shipments confirmed. Messages::

    order      the redacted DF Order (intake)          decisions  line decisions (SKU agent)
    submitted  a body Amazon took (sender)             refused    a body Amazon refused
    tx         a transaction's outcome (poller)        dispatch   a WMS dispatch (ASN intake)
    late       the deadline watcher found it late
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from streams.domain import df_ack
from streams.domain.allocation import allocate
from streams.domain.df_confirm import build_confirmation, build_status_update
from streams.domain.df_orders import DfOrder, df_lines, df_po_key
from streams.domain.df_record import DfRecord
from streams.domain.dispatch import Dispatch
from streams.domain.exceptions import Refs
from streams.domain.purchase_orders import Resolver


@dataclass(frozen=True)
class Context:
    resolve: Resolver
    now: float
    selling_party: str
    ack_within_s: float  # Amazon's DF acknowledgement SLA after the order date

    @property
    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


@dataclass
class Effects:
    changed: bool = False
    outcome: str | None = None  # streams_df_orders_total{outcome}
    sku: list[dict[str, Any]] = field(default_factory=list)  # sku-events items
    outbox: list[dict[str, Any]] = field(default_factory=list)  # to the DF sender
    exceptions: list[tuple[str, Refs, str]] = field(default_factory=list)
    watch: list[tuple[str, str, float]] = field(default_factory=list)  # (kind:sid, txid, at)
    settled: list[str] = field(default_factory=list)  # txids no longer pending
    counts: list[str] = field(default_factory=list)  # further outcomes to count
    sales: bool = False  # the commercetools order for finance may need a write
    confirmed: list[str] = field(default_factory=list)  # dispatches Amazon accepted (invoices)


def apply(
    rec: DfRecord | None, msg: Mapping[str, Any], ctx: Context
) -> tuple[DfRecord | None, Effects]:
    t = msg.get("t")
    eff = Effects()
    if t == "order":
        return on_order(rec, msg["raw"], ctx)
    if rec is None:
        return None, eff
    if t == "decisions":
        for d in msg["ds"]:
            seq = d["itemSequenceNumber"]
            if rec.decisions.get(seq) != d and seq in rec.lines:
                rec.decisions[seq] = d
                eff.changed = True
                ln = rec.lines[seq]
                if rec.outcome == "cancelled" and int(d.get("allocatedEaches") or 0) > 0:
                    # decided after Amazon cancelled the order: give it back at once
                    eff.sku.append(
                        {"t": "release", "df": 1, "sku": ln["sku"], "line": ln, "keep": 0}
                    )
        if eff.changed:
            _maybe_acknowledge(rec, ctx, eff)
    elif t == "submitted":
        _on_submitted(rec, msg, eff, ctx)
    elif t == "refused":
        _on_refused(rec, msg, eff)
    elif t == "tx":
        _on_tx(rec, msg, eff)
    elif t == "dispatch":
        _on_dispatch(rec, msg["d"], ctx, eff)
    elif t == "late" and not rec.late and not rec.acknowledged:
        rec.late = eff.changed = True
        eff.counts.append("late")
        left = rec.ack_by - ctx.now
        when = f"in {left / 60:.0f} min" if left > 0 else f"{-left / 60:.0f} min ago"
        eff.exceptions.append((
            "df-deadline", _refs(rec),
            f"DF order {rec.number} not acknowledged; acknowledge-by {when} "
            f"(outcome so far: {rec.outcome or 'lines not all decided'})",
        ))  # fmt: skip
    return rec, eff


def on_order(rec: DfRecord | None, raw: dict[str, Any], ctx: Context) -> tuple[DfRecord, Effects]:
    """Take in a DF order once; its lines go to their SKU's partition to be allocated (a line
    no master data knows is rejected here at once: there is nothing to allocate)."""
    order = DfOrder.model_validate(raw)
    eff = Effects()
    if rec is not None:
        if order.orderDetails.orderStatus == "CANCELLED" and rec.outcome != "cancelled":
            return rec, _cancel(rec)
        eff.outcome = "duplicate"  # DF orders have no revisions: the same order again
        return rec, eff
    lines = df_lines(order, ctx.resolve)
    order_date = order.orderDetails.orderDate.timestamp()
    rec = DfRecord(
        number=order.purchaseOrderNumber,
        order=raw,
        lines={ln.itemSequenceNumber: ln.model_dump(mode="json") for ln in lines},
        received_at=ctx.now,
        ack_by=min(order_date + ctx.ack_within_s, order.required_ship.timestamp()),
        ship_by=order.required_ship.timestamp(),
    )
    eff.changed, eff.outcome = True, "received"
    for ln in lines:
        if ln.sku is None:
            d = allocate(ln, 0, None, now=ctx.now_dt, backorder_lead_days=0)
            rec.decisions[ln.itemSequenceNumber] = d.model_dump(mode="json")
        else:
            eff.sku.append(
                {"t": "alloc", "df": 1, "sku": ln.sku, "line": rec.lines[ln.itemSequenceNumber]}
            )
    _maybe_acknowledge(rec, ctx, eff)
    return rec, eff


def _cancel(rec: DfRecord) -> Effects:
    """Amazon cancelled the order: what its lines hold goes back (unless a confirmation went
    out: then the goods left, and a person decides); nothing more is acknowledged."""
    eff = Effects(changed=True, outcome="cancelled", sales=rec.acknowledged)
    shipped = any(sh.get("confirmTx") for sh in rec.shipments.values())
    if shipped:
        eff.exceptions.append((
            "df-confirmation-invalid", _refs(rec),
            f"Amazon cancelled DF order {rec.number} after its shipment was confirmed",
        ))  # fmt: skip
    elif rec.outcome != "rejected":  # a rejected order gave its stock back already
        for seq, d in rec.decisions.items():
            ln = rec.lines[seq]
            if int(d.get("allocatedEaches") or 0) > 0 and ln.get("sku"):
                eff.sku.append({"t": "release", "df": 1, "sku": ln["sku"], "line": ln, "keep": 0})
    rec.outcome = "cancelled"
    return eff


def _maybe_acknowledge(rec: DfRecord, ctx: Context, eff: Effects) -> None:
    if rec.ack.get("hash") or rec.outcome == "cancelled":
        return  # built once; what Amazon is told never changes
    lines = rec.po_lines()
    v = df_ack.verdict(lines, rec.decisions)
    if v is None:
        return
    if isinstance(v, str):
        if rec.outcome != "held":
            rec.outcome, eff.changed = "held", True
            eff.exceptions.append(("df-order-held", _refs(rec), f"DF order {rec.number}: {v}"))
        return
    details = rec.details()
    party = (details.get("sellingParty") or {}).get("partyId") or ctx.selling_party
    ship_from = (details.get("shipFromParty") or {}).get("partyId") or ""
    ack = df_ack.build_acknowledgement(rec.number, lines, v, party, ship_from, ctx.now_dt)
    digest = hashlib.sha256(df_ack.encode(ack)).hexdigest()
    rec.ack = {"hash": digest, "body": ack, "builtAt": ctx.now, "code": v.code}
    rec.outcome = v.outcome
    eff.changed = True
    eff.counts.append(v.outcome)
    eff.outbox.append({"kind": "ack", "sid": "ack", "hash": digest, "body": ack})
    by_seq = {ln.itemSequenceNumber: ln for ln in lines}
    for seq in v.release:  # a rejected order keeps no stock
        ln = by_seq[seq]
        eff.sku.append({"t": "release", "df": 1, "sku": ln.sku, "line": rec.lines[seq], "keep": 0})


def _on_submitted(rec: DfRecord, msg: Mapping[str, Any], eff: Effects, ctx: Context) -> None:
    kind, sid, digest = msg["kind"], msg.get("sid", "ack"), msg["hash"]
    txid, at = str(msg["txid"]), float(msg["at"])
    if kind == "ack":
        if rec.ack.get("hash") != digest or rec.ack.get("txid"):
            return
        rec.ack.update(txid=txid, at=at, status="Processing")
        eff.changed = True
        eff.counts.append("acknowledged")
        eff.sales = rec.outcome == "accepted"
        eff.watch.append(("ack:ack", txid, at))
        for did, waiting in list(rec.shipments.items()):  # dispatches that waited for it
            if waiting.get("status") == "waiting":
                _on_dispatch(rec, waiting["raw"], ctx, eff, did)
        return
    sh = rec.shipments.get(sid)
    if sh is None or sh.get(f"{kind}Hash") != digest or sh.get(f"{kind}Tx"):
        return
    sh[f"{kind}Tx"], sh["at"] = txid, at
    if kind == "confirm":
        sh["status"] = "submitted"
    eff.changed = True
    eff.watch.append((f"{kind}:{sid}", txid, at))


def _on_refused(rec: DfRecord, msg: Mapping[str, Any], eff: Effects) -> None:
    kind, sid = msg["kind"], msg.get("sid", "ack")
    error = str(msg.get("error"))[:500]
    if kind == "ack":
        rec.ack["status"], rec.ack["errors"] = "Refused", error
        eff.exceptions.append(
            ("df-ack-rejected", _refs(rec), f"Amazon refused the DF acknowledgement: {error}")
        )
    else:
        sh = rec.shipments.setdefault(sid, {})
        sh["status"] = "refused"
        eff.exceptions.append(
            (
                "df-confirmation-failed",
                _refs(rec),
                f"Amazon refused the DF {kind} of dispatch {sid}: {error}",
            )
        )
    eff.changed = True


def _on_tx(rec: DfRecord, msg: Mapping[str, Any], eff: Effects) -> None:
    kind, sid, tx = msg["kind"], msg.get("sid", "ack"), msg["tx"]
    status, errors = tx.get("status"), tx.get("errors") or []
    text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors) or str(status)
    refs = _refs(rec, tx.get("id"))
    if kind == "ack":
        if rec.ack.get("txid") != tx.get("id") or rec.ack.get("status") == status:
            return
        rec.ack["status"], rec.ack["errors"] = status, errors
        if status == "Failure":
            eff.exceptions.append(
                (
                    "df-ack-transaction-failed",
                    refs,
                    f"Amazon could not process the DF acknowledgement of {rec.number}: {text}",
                )
            )
    else:
        sh = rec.shipments.get(sid)
        if sh is None or sh.get(f"{kind}Status") == status:
            if sh is not None and kind == "confirm" and status == "Success":
                eff.confirmed.append(sid)  # redelivered: a crash may have lost the hook's call
            return
        sh[f"{kind}Status"] = status
        if kind == "confirm" and status == "Success":
            sh["status"] = "confirmed"
            eff.counts.append("confirmed")
            eff.confirmed.append(sid)
        if status == "Failure":
            sh["status"] = "failed"
            eff.exceptions.append(
                (
                    "df-confirmation-failed",
                    refs,
                    f"Amazon could not process the DF {kind} of dispatch {sid}: {text}",
                )
            )
    eff.changed = True
    if status in ("Success", "Failure"):
        eff.settled.append(str(tx.get("id")))


def _on_dispatch(
    rec: DfRecord, raw: dict[str, Any], ctx: Context, eff: Effects, did: str | None = None
) -> None:
    dispatch = Dispatch.model_validate(raw)
    did = did or dispatch.dispatchId
    sh = rec.shipments.get(did)
    if sh is not None and sh.get("status") not in ("waiting", None):
        return  # a redelivered dispatch: built (or refused) once
    refs = _refs(rec)
    if rec.outcome == "rejected":
        rec.shipments[did] = {"status": "invalid"}
        eff.changed = True
        eff.exceptions.append(
            (
                "df-confirmation-invalid",
                refs,
                f"dispatch {did}: DF order {rec.number} was rejected "
                f"(code {rec.ack.get('code')}); nothing to confirm",
            )
        )
        return
    if not rec.acknowledged:
        rec.shipments[did] = {"status": "waiting", "raw": raw}
        eff.changed = True
        return
    details = rec.details()
    sd = details.get("shipmentDetails") or {}
    party = (details.get("sellingParty") or {}).get("partyId") or ctx.selling_party
    lines = rec.po_lines()
    conf, problems = build_confirmation(
        rec.number, raw, dispatch, lines, rec.decisions, party,
        sd.get("shipMethod"), sd.get("isPriorityShipment"),
    )  # fmt: skip
    status, sp = build_status_update(rec.number, raw, dispatch, party)
    problems += sp
    if problems or conf is None:
        rec.shipments[did] = {"status": "invalid", "problems": problems}
        eff.changed = True
        eff.exceptions.append(
            (
                "df-confirmation-invalid",
                refs,
                f"dispatch {did} not confirmed, invalid: " + "; ".join(problems),
            )
        )
        return
    state: dict[str, Any] = {"status": "built"}
    for kind, body in (("confirm", conf), ("status", status)):
        if body is None:
            continue
        digest = hashlib.sha256(df_ack.encode(body)).hexdigest()
        state[f"{kind}Hash"], state[f"{kind}Body"] = digest, body
        eff.outbox.append({"kind": kind, "sid": did, "hash": digest, "body": body})
    rec.shipments[did] = state
    eff.changed = True


def resend(rec: DfRecord) -> Effects:
    """What a redelivered order repeats, in case the first delivery's sends were lost (a
    crash after the record was saved): each is idempotent downstream (the ledger decides a
    line once, commands apply once by id, the sender skips what Amazon took already)."""
    eff = Effects()
    if not rec.ack.get("hash"):
        for seq, ln in rec.lines.items():
            if seq not in rec.decisions and ln.get("sku"):
                eff.sku.append({"t": "alloc", "df": 1, "sku": ln["sku"], "line": ln})
    elif not rec.ack.get("txid") and rec.ack.get("status") != "Refused":
        body = rec.ack["body"]
        eff.outbox.append({"kind": "ack", "sid": "ack", "hash": rec.ack["hash"], "body": body})
    eff.sales = rec.acknowledged and rec.outcome in ("accepted", "cancelled")
    shipped = any(sh.get("confirmTx") for sh in rec.shipments.values())
    if rec.outcome == "rejected" or (rec.outcome == "cancelled" and not shipped):
        for seq, d in rec.decisions.items():
            ln = rec.lines[seq]
            if int(d.get("allocatedEaches") or 0) > 0 and ln.get("sku"):
                eff.sku.append({"t": "release", "df": 1, "sku": ln["sku"], "line": ln, "keep": 0})
    for sid, sh in rec.shipments.items():
        for kind in ("confirm", "status"):
            if (
                sh.get(f"{kind}Hash")
                and not sh.get(f"{kind}Tx")
                and sh.get("status") in ("built", "submitted")
            ):
                h, b = sh[f"{kind}Hash"], sh[f"{kind}Body"]
                eff.outbox.append({"kind": kind, "sid": sid, "hash": h, "body": b})
    return eff


def redelivered(rec: DfRecord, eff: Effects) -> Effects:
    """``eff``, or what :func:`resend` repeats when the message changed and produced nothing
    (a redelivery): the record is saved before its outputs are sent, so a worker killed in
    between leaves one saying "built" (acknowledgement, confirmation) or "lines sent" while
    nothing left, and the redelivered message (order, last decisions, dispatch) is a no-op."""
    produced = (
        eff.changed or eff.sku or eff.outbox or eff.exceptions or eff.watch or eff.settled
        or eff.sales or eff.confirmed
    )  # fmt: skip
    if produced and eff.outcome != "duplicate":
        return eff
    again = resend(rec)
    again.outcome, again.counts = eff.outcome, eff.counts
    again.confirmed, again.settled = eff.confirmed, eff.settled
    return again


def submitted(rec: DfRecord, kind: str, sid: str, digest: str) -> bool:
    """True when this body must not go (again): Amazon took it, or the record holds another
    body for it (never a second, different acknowledgement)."""
    if kind == "ack":
        return rec.ack.get("hash") != digest or bool(rec.ack.get("txid"))
    sh = rec.shipments.get(sid) or {}
    return sh.get(f"{kind}Hash") != digest or bool(sh.get(f"{kind}Tx"))


def processing(rec: DfRecord) -> list[tuple[str, tuple[str, str, str, float]]]:
    """The transactions of this order still to poll: (txid, (PO, kind, sid, submitted at))."""
    out = []
    if rec.ack.get("txid") and rec.ack.get("status") == "Processing":
        out.append((rec.ack["txid"], (rec.number, "ack", "ack", float(rec.ack.get("at") or 0))))
    for sid, sh in rec.shipments.items():
        for kind in ("confirm", "status"):
            tx = sh.get(f"{kind}Tx")
            if tx and sh.get(f"{kind}Status") in (None, "Processing"):
                out.append((tx, (rec.number, kind, sid, float(sh.get("at") or 0))))
    return out


def _refs(rec: DfRecord, txid: str | None = None) -> Refs:
    return Refs(purchaseOrderNumber=df_po_key(rec.number), transactionId=txid)
