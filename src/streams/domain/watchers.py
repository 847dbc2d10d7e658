"""Watcher rules for purchase orders (pure): the acknowledgement deadline, held lines and
unmapped products, and which open PO exceptions this worker may judge.

The operations timers (:mod:`streams.agents.ops`) read the tables and the metric registry,
call these rules with an injected clock, and send what they answer to ``ops.exceptions``;
the exceptions agent applies :func:`merge`. Nothing here does I/O, so every rule is tested
with a fake clock. The machinery (:class:`Want`, :func:`reconcile`, :class:`Outbox`) is in
:mod:`streams.domain.watch`, the health rules in :mod:`streams.domain.watch_health`, the
table merge in :mod:`streams.domain.exception_table`, display helpers in
:mod:`streams.domain.exception_display`; their names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from streams.domain.exception_display import OWNERS_ORDER, SEVERITY_RANK, refs_text, sort_exceptions
from streams.domain.exception_table import expired, merge
from streams.domain.exceptions import Refs, Severity
from streams.domain.watch import (
    Outbox,
    Want,
    default_severity,
    hours,
    iso,
    parse_iso,
    reconcile,
    resolution,
    scoped_id,
    signature,
)
from streams.domain.watch_health import (
    FLOW_HINTS,
    Direction,
    Drift,
    DriftTracker,
    GrowthWindow,
    dlq_wants,
    drift_totals,
    parse_thresholds,
    scope_judged,
    stale_wants,
)

__all__ = [
    "FLOW_HINTS",
    "OWNERS_ORDER",
    "SEVERITY_RANK",
    "Direction",
    "Drift",
    "DriftTracker",
    "GrowthWindow",
    "Outbox",
    "Want",
    "default_severity",
    "dlq_wants",
    "drift_totals",
    "expired",
    "merge",
    "parse_thresholds",
    "reconcile",
    "refs_text",
    "resolution",
    "scope_judged",
    "scoped_id",
    "signature",
    "sort_exceptions",
    "stale_wants",
]
from streams.domain.purchase_order import load as load_po

# streams_po_unacknowledged{age}: the label values name the default bands
AGE_BANDS = ("lt_6h", "6h_18h", "18h_24h", "over_24h")
FIRST_BAND_S = 6 * 3600.0
# decision holds (the purchase-order flow raises them; the watcher keeps them honest)
HOLD_KINDS = frozenset({"unit-of-measure", "invalid-quantity", "missing-price"})
# an acknowledgement that failed stops mattering once a later one went through
ACK_FAILURE_KINDS = frozenset({"ack-rejected", "ack-transaction-failed"})
PO_KINDS = frozenset({"ack-deadline", "unmapped-sku", *HOLD_KINDS, *ACK_FAILURE_KINDS})


# --- purchase orders: acknowledgement deadline, held lines ----------------------------------


def _ack(po: Mapping[str, Any]) -> dict[str, Any]:
    return dict(po.get("ack") or {})


def _tx(po: Mapping[str, Any]) -> dict[str, Any]:
    return dict(po.get("tx") or {})


def ack_failed(po: Mapping[str, Any]) -> bool:
    return load_po(po).ack_failed()


def acknowledged(po: Mapping[str, Any]) -> bool:
    """No acknowledgement is owed: the current revision is acknowledged
    (:func:`streams.domain.purchase_order.is_acknowledged`) or Amazon closed the PO."""
    rec = load_po(po)
    return rec.closed or rec.is_acknowledged()


def ack_status(po: Mapping[str, Any]) -> str:
    """One word for people: closed, acknowledged, submitted, failed, rejected, built, held,
    pending (lines not all decided yet). About the current revision: what was submitted for
    an earlier one does not count (as in ``is_acknowledged``)."""
    rec = load_po(po)
    ack, tx = rec.ack, rec.tx
    if rec.closed:
        return "closed"
    if rec.submitted_for_current():
        if rec.ack_failed():
            return "failed"
        if tx.id == ack.txid and tx.status == "Success":
            return "acknowledged"
        return "submitted"
    if rec.state == "Acknowledged":
        return "acknowledged"
    current = ack.rev == rec.rev
    if current and ack.error:
        return "rejected"
    if rec.built_for_current():
        return "built"
    if held_lines(po):
        return "held"
    return "pending"


def held_lines(po: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Line -> its decision, for lines whose latest decision is a hold."""
    lines = po.get("lines") or {}
    return {
        seq: d for seq, d in (po.get("decisions") or {}).items() if d.get("hold") and seq in lines
    }


def age_band(age_s: float, warning_s: float, deadline_s: float) -> str:
    if age_s >= deadline_s:
        return "over_24h"
    if age_s >= warning_s:
        return "18h_24h"
    if age_s >= min(FIRST_BAND_S, warning_s):
        return "6h_18h"
    return "lt_6h"


def why_unacknowledged(po: Mapping[str, Any]) -> tuple[str, str]:
    """Why a PO has no acknowledgement of its current revision: (a stable key, the root
    cause in plain words)."""
    rec = load_po(po)
    ack, tx = rec.ack, rec.tx
    current = ack.rev == rec.rev
    if current and rec.ack_failed():
        errors = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in tx.errors or [])
        return "failed", f"Amazon's transaction {tx.id} for the acknowledgement failed" + (
            f" ({errors})" if errors else ""
        )
    if current and ack.error:
        return "rejected", f"Amazon rejected the acknowledgement: {ack.error}"
    held = held_lines(po)
    if held:
        parts = [
            f"line {seq} is on hold ({d['hold'].get('kind')}): {d['hold'].get('reason')}"
            for seq, d in sorted(held.items())
        ]
        return "held", "; ".join(parts) + " - the acknowledgement waits for every line"
    undecided = rec.undecided()
    if undecided:
        return "undecided", (
            f"{len(undecided)} of {len(rec.lines)} line(s) have no allocation decision yet "
            "(the stock stage has not answered: lag on the SKU partitions?)"
        )
    if ack.rev is not None and not current:
        return "revised", (
            f"Amazon changed the PO (revision {rec.rev}); what was acknowledged for revision "
            f"{ack.rev} does not cover it, and the new acknowledgement waits for the lines to "
            "be decided again"
        )
    if ack.hash:
        return "unsent", (
            f"the acknowledgement was built at {iso(float(ack.built_at or 0))} but is not "
            "submitted yet (SP-API unreachable or throttled: see the ack sender's log)"
        )
    return "unprocessed", "the purchase order has not been processed yet"


def ack_deadline_want(
    po: Mapping[str, Any], now: float, warning_s: float, deadline_s: float
) -> Want | None:
    """ack-deadline: warning from ``warning_s`` after the PO date, critical past
    ``deadline_s``; nothing once acknowledged."""
    number = po.get("po")
    po_date = po.get("poDate")
    if not number or po_date is None or acknowledged(po):
        return None
    age = now - float(po_date)
    if age < warning_s:
        return None
    deadline = float(po_date) + deadline_s
    if age >= deadline_s:
        when = f"the deadline passed {hours(age - deadline_s)} ago ({iso(deadline)})"
        severity: Severity = "critical"
    else:
        when = f"the deadline is in {hours(deadline - now)} ({iso(deadline)})"
        severity = "warning"
    reason, why = why_unacknowledged(po)
    cause = (
        f"PO {number} dated {iso(float(po_date))} ({hours(age)} ago) is not acknowledged and "
        f"{when}: {why}"
    )
    refs = Refs(purchaseOrderNumber=str(number))
    return Want("ack-deadline", refs, cause, severity, reason=reason)


def hold_wants(po: Mapping[str, Any], now: float, grace_s: float = 0.0) -> list[Want]:
    """The hold exceptions of a PO's held lines, with the refs the PO flow raised them with.

    The PO flow raises each hold as it decides; for ``grace_s`` after the decision the
    watcher only keeps it open, so that it does not raise the same hold a second time
    before the PO flow's record has reached the table.
    """
    if po.get("state") == "Closed":
        return []
    out = []
    for seq, d in held_lines(po).items():
        hold = d["hold"]
        refs = Refs(
            purchaseOrderNumber=str(d.get("purchaseOrderNumber") or po.get("po")),
            itemSequenceNumber=seq,
            sku=d.get("sku"),
        )
        decided = parse_iso(str(d.get("decidedAt") or ""))
        fresh = decided is not None and now - decided < grace_s
        out.append(Want(str(hold.get("kind")), refs, str(hold.get("reason")), keep_only=fresh))
    return out


def unmapped_wants(
    po: Mapping[str, Any], known: Callable[[str | None, str | None], bool]
) -> list[Want]:
    """unmapped-sku (ecommerce) for lines rejected because no mapping names the product
    Amazon ordered, while still none does (``known(asin, vendorProductIdentifier)``)."""
    if po.get("state") == "Closed":
        return []
    lines = po.get("lines") or {}
    out = []
    for seq, d in (po.get("decisions") or {}).items():
        line = lines.get(seq)
        if line is None or d.get("rejectionReason") != "InvalidProductIdentifier":
            continue
        asin, vpi = line.get("amazonProductIdentifier"), line.get("vendorProductIdentifier")
        if known(asin, vpi):
            continue
        ident = " / ".join(
            x for x in (f"ASIN {asin}" if asin else "", f"vendor id {vpi}" if vpi else "") if x
        )
        cause = (
            f"Amazon ordered {ident or 'a product without identifiers'} on PO {po.get('po')} "
            f"line {seq}, but no SKU mapping names it, so the line was rejected "
            "(InvalidProductIdentifier): add the mapping to the master data if we sell it"
        )
        out.append(Want("unmapped-sku", Refs(purchaseOrderNumber=str(po.get("po")),
                                             itemSequenceNumber=seq), cause))  # fmt: skip
    return out


def po_judged(rec: Mapping[str, Any], local_pos: Mapping[str, Any]) -> bool:
    """An open exception the PO watcher decides on: its kinds, about a PO on this worker."""
    kind = rec.get("kind")
    if kind not in PO_KINDS:
        return False
    po = str((rec.get("refs") or {}).get("purchaseOrderNumber"))
    if po not in local_pos:
        return False
    # an acknowledgement failure resolves only once a later acknowledgement went through
    return kind not in ACK_FAILURE_KINDS or (
        acknowledged(local_pos[po]) and ack_status(local_pos[po]) != "submitted"
    )


def po_resolution(rec: Mapping[str, Any], local_pos: Mapping[str, Any]) -> str:
    po = local_pos.get(str((rec.get("refs") or {}).get("purchaseOrderNumber")), {})
    status = ack_status(po)
    if status == "closed":
        return "the PO was closed"
    if rec.get("kind") == "unmapped-sku":
        return "a SKU mapping names the product now (later orders can be accepted)"
    if rec.get("kind") in HOLD_KINDS:
        seq = (rec.get("refs") or {}).get("itemSequenceNumber")
        d = (po.get("decisions") or {}).get(seq) or {}
        return f"line {seq} was decided: {d.get('status', 'no longer held')}"
    return f"the PO is {status}" + (
        f" (transaction {_ack(po).get('txid')})" if _ack(po).get("txid") else ""
    )
