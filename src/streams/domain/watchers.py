"""Watcher rules (pure): which owned exceptions must be open now, and how a reported exception
merges into the ``exceptions`` table.

The operations timers (:mod:`streams.agents.ops`) read the tables and the metric registry,
call these rules with an injected clock, and send what they answer to ``ops.exceptions``;
the exceptions agent applies :func:`merge`. Nothing here does I/O, so every rule is tested
with a fake clock.

A watcher states the exceptions it *wants* open (:class:`Want`) and the open ones it is
entitled to judge (its kinds, in its scope: POs and SKUs on this worker's partitions, or
this worker's own flows); :func:`reconcile` turns the difference into raise and resolve
records. :class:`Outbox` keeps a timer that ticks faster than the agent applies from saying
the same thing twice.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from streams.domain.exceptions import (
    KINDS,
    Refs,
    Severity,
    exception_id,
    raise_exception,
    to_record,
)
from streams.domain.purchase_order import load as load_po

# streams_po_unacknowledged{age}: the label values name the default bands
AGE_BANDS = ("lt_6h", "6h_18h", "18h_24h", "over_24h")
FIRST_BAND_S = 6 * 3600.0
# decision holds (the purchase-order flow raises them; the watcher keeps them honest)
HOLD_KINDS = frozenset({"unit-of-measure", "invalid-quantity", "missing-price"})
# an acknowledgement that failed stops mattering once a later one went through
ACK_FAILURE_KINDS = frozenset({"ack-rejected", "ack-transaction-failed"})
PO_KINDS = frozenset({"ack-deadline", "unmapped-sku", *HOLD_KINDS, *ACK_FAILURE_KINDS})
SEVERITY_RANK: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}
OWNERS_ORDER = ("operations", "finance", "ecommerce", "fulfilment", "platform")
Direction = Literal["over", "under"]

# what each flow of streams_last_success_timestamp_seconds does, for root causes
FLOW_HINTS: dict[str, str] = {
    "ingest": "no commercetools message was read from ct.messages: the subscription stopped "
    "delivering, or the ingest agent is stuck",
    "inventory_publish": "no availability was published to amazon.inventory-updates, although "
    "the periodic snapshot alone publishes: the debounce timer is stuck or no SKU is mapped",
    "po_poll": "the purchase-order poller did not complete a getPurchaseOrders poll: SP-API "
    "unreachable, credentials refused, or this worker is not the group leader any more",
    "ack_submit": "no acknowledgement was submitted to Amazon",
    "asn_submit": "no shipment confirmation was submitted to Amazon",
    "ct_commands": "no reservation or release was applied to commercetools",
}


def iso(ts: float) -> str:
    """UTC ISO-8601 with milliseconds and Z, as every exception timestamp."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def default_severity(kind: str) -> Severity:
    return KINDS.get(kind, ("operations", "warning"))[1]


def scoped_id(kind: str, refs: Refs, scope: str | None) -> str:
    """The exception id; ``scope`` names what refs cannot (a flow, a DLQ topic, a worker)."""
    if scope is None:
        return exception_id(kind, refs)
    basis = f"{exception_id(kind, refs)}|scope={scope}"
    return f"{kind}:{hashlib.sha1(basis.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class Want:
    """An exception that should be open now, at ``severity`` (None: the kind's default)."""

    kind: str
    refs: Refs
    cause: str
    severity: Severity | None = None
    scope: str | None = None
    # keep it open if it is, but raise nothing yet (its raiser's own record may be on its way)
    keep_only: bool = False
    # why, as a stable key: a new reason raises it again with the new root cause (the text
    # itself may change every tick, e.g. "20.1 h ago")
    reason: str | None = None

    @property
    def id(self) -> str:
        return scoped_id(self.kind, self.refs, self.scope)

    @property
    def level(self) -> Severity:
        return self.severity or default_severity(self.kind)

    def record(self, now: float) -> dict[str, Any]:
        rec = to_record(raise_exception(self.kind, self.refs, self.cause, iso(now),
                                        severity=self.level))  # fmt: skip
        rec["id"] = self.id
        if self.scope is not None:
            rec["scope"] = self.scope
        if self.reason is not None:
            rec["reason"] = self.reason
        return rec

    @property
    def signature(self) -> tuple[str, str, str]:
        return ("open", self.level, self.reason or "")


def resolution(stored: Mapping[str, Any], now: float, why: str) -> dict[str, Any]:
    """The record that resolves ``stored`` (same id), saying why."""
    return {**stored, "status": "resolved", "lastSeen": iso(now), "resolution": why}


# --- the exceptions table ------------------------------------------------------------------


def merge(stored: Mapping[str, Any] | None, incoming: Mapping[str, Any]) -> dict[str, Any] | None:
    """The table's new value for one exception id, or None when nothing changes.

    Raised again while open: count + 1, last seen, root cause and severity (an escalation)
    from the new report, first seen kept. Resolved: status and when. Raised after it was
    resolved: it reopens (count + 1, first seen kept). A redelivered report changes nothing.
    """
    status = incoming.get("status", "open")
    at = str(incoming.get("lastSeen") or "")
    if status == "resolved":
        if stored is None:
            return {**incoming, "resolvedAt": at}
        if stored.get("status") == "resolved":
            return None
        out = {**stored, "status": "resolved", "resolvedAt": at}
        if incoming.get("resolution"):
            out["resolution"] = incoming["resolution"]
        return out
    if stored is None:
        out = {**incoming, "status": "open"}
        out["count"] = max(1, int(incoming.get("count") or 1))
        return out
    if stored.get("status") == "open" and (
        at <= str(stored.get("lastSeen") or "")
        and incoming.get("rootCause") == stored.get("rootCause")
        and incoming.get("severity") == stored.get("severity")
    ):
        return None  # redelivered (or older than what is stored)
    out = {**stored, **incoming}
    out.update(
        status="open",
        count=int(stored.get("count") or 1) + 1,
        firstSeen=stored.get("firstSeen") or incoming.get("firstSeen"),
        lastSeen=max(at, str(stored.get("lastSeen") or "")),
    )
    out.pop("resolution", None)
    if stored.get("status") == "resolved":
        out.pop("resolvedAt", None)
        out["reopenedAt"] = at
    return out


def expired(rec: Mapping[str, Any], now: float, retention_s: float) -> bool:
    """A resolved exception older than the retention: dropped from the table."""
    if rec.get("status") != "resolved":
        return False
    when = parse_iso(str(rec.get("resolvedAt") or rec.get("lastSeen") or ""))
    return when is not None and now - when >= retention_s


def parse_iso(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def signature(rec: Mapping[str, Any] | None) -> tuple[str, str, str] | None:
    if rec is None:
        return None
    return (str(rec.get("status")), str(rec.get("severity")), str(rec.get("reason") or ""))


@dataclass
class Outbox:
    """What this worker sent and the table does not show yet (id -> (signature, sent at)).

    A watcher ticks again before the exceptions agent has applied its last record; without
    this it would raise the same exception twice (count + 1). An entry is dropped once the
    table shows it, and resent after ``ttl_s`` if the table never does.
    """

    ttl_s: float = 600.0
    sent: dict[str, tuple[tuple[str, ...], float]] = field(default_factory=dict)

    def due(
        self, exc_id: str, want: tuple[str, ...], table: tuple[str, ...] | None, now: float
    ) -> bool:
        if table == want:
            self.sent.pop(exc_id, None)
            return False
        prev = self.sent.get(exc_id)
        if prev is not None and prev[0] == want and now - prev[1] < self.ttl_s:
            return False
        self.sent[exc_id] = (want, now)
        return True

    def prune(self, now: float) -> None:
        """Forget what was sent longer than ``ttl_s`` ago (e.g. deleted records)."""
        for exc_id in [k for k, (_, at) in self.sent.items() if now - at >= self.ttl_s]:
            del self.sent[exc_id]


def reconcile(
    wants: Iterable[Want],
    judged_open: Iterable[Mapping[str, Any]],
    lookup: Callable[[str], Mapping[str, Any] | None],
    now: float,
    outbox: Outbox,
    why_resolved: Callable[[Mapping[str, Any]], str],
) -> list[dict[str, Any]]:
    """Records to send: a raise for every wanted exception the table does not show open at
    its severity, a resolution for every open one in ``judged_open`` no longer wanted."""
    out: list[dict[str, Any]] = []
    wanted: dict[str, Want] = {w.id: w for w in wants}
    for exc_id, w in wanted.items():
        if w.keep_only:
            continue
        if outbox.due(exc_id, w.signature, signature(lookup(exc_id)), now):
            out.append(w.record(now))
    for rec in judged_open:
        exc_id = str(rec.get("id"))
        if exc_id in wanted or rec.get("status") != "open":
            continue
        resolved = ("resolved", str(rec.get("severity")), str(rec.get("reason") or ""))
        if outbox.due(exc_id, resolved, signature(rec), now):
            out.append(resolution(rec, now, why_resolved(rec)))
    return out


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


# --- inventory drift -----------------------------------------------------------------------


@dataclass(frozen=True)
class Drift:
    sku: str
    told: int
    want: int
    since: float

    @property
    def diff(self) -> int:
        return self.told - self.want

    @property
    def direction(self) -> Direction:
        return "over" if self.diff > 0 else "under"

    def want_exception(self, now: float) -> Want:
        if self.direction == "over":
            risk = f"{self.diff} more than is available: overselling risk"
        else:
            risk = f"{-self.diff} fewer than are available: lost sales"
        cause = (
            f"Amazon was last told {self.told} eaches of SKU {self.sku}, the master implies "
            f"{self.want} now ({risk}), for {now - self.since:.0f} s: the debounced delta "
            "was not published or not recorded (stuck debounce timer, send budget too small)"
        )
        return Want("inventory-drift", Refs(sku=self.sku), cause)


@dataclass
class DriftTracker:
    """Since when each SKU has drifted beyond the tolerance (in memory: a restart only delays
    detection by ``after_s``)."""

    tolerance: int
    after_s: float
    since: dict[str, float] = field(default_factory=dict)

    def observe(self, sku: str, told: int | None, want: int | None, now: float) -> Drift | None:
        """``want`` None: not offered to Amazon (unmapped), so it cannot drift."""
        if want is None or abs((told or 0) - want) <= self.tolerance:
            self.since.pop(sku, None)
            return None
        start = self.since.setdefault(sku, now)
        if now - start < self.after_s:
            return None
        return Drift(sku, told or 0, want, start)

    def keep_only(self, skus: set[str]) -> None:
        """Forget SKUs this worker no longer holds (revoked partitions)."""
        for sku in [s for s in self.since if s not in skus]:
            del self.since[sku]


def drift_totals(drifts: Iterable[Drift]) -> dict[Direction, tuple[int, int]]:
    """direction -> (SKUs, eaches)."""
    out: dict[Direction, tuple[int, int]] = {"over": (0, 0), "under": (0, 0)}
    for d in drifts:
        n, units = out[d.direction]
        out[d.direction] = (n + 1, units + abs(d.diff))
    return out


# --- stale syncs and dead letters (this worker's own metrics) ------------------------------

_THRESHOLD = re.compile(r"^\s*(\w+)\s*=\s*(\d+(?:\.\d+)?)\s*$")


def parse_thresholds(text: str) -> dict[str, float]:
    """``"ingest=21600,po_poll=900"`` -> {flow: seconds}."""
    out: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        m = _THRESHOLD.match(part)
        if not m:
            raise ValueError(f"not flow=seconds: {part!r}")
        out[m[1]] = float(m[2])
    return out


def stale_wants(
    last_success: Mapping[str, float],
    thresholds: Mapping[str, float],
    owned: Callable[[str], bool],
    now: float,
    worker: str,
) -> list[Want]:
    """sync-stale for every judged flow of this worker whose last success is too old. A flow
    never seen succeed here, or whose work this worker does not own, is not judged."""
    out = []
    for flow, limit in sorted(thresholds.items()):
        last = last_success.get(flow)
        if last is None or not owned(flow) or now - last <= limit:
            continue
        hint = FLOW_HINTS.get(flow, "the flow made no progress")
        cause = (
            f"flow {flow} last succeeded {now - last:.0f} s ago on worker {worker} "
            f"(at {iso(last)}; threshold {limit:.0f} s): {hint}"
        )
        out.append(Want("sync-stale", Refs(), cause, scope=f"{flow}@{worker}"))
    return out


@dataclass
class GrowthWindow:
    """Growth of counters (per key) within the last ``window_s``, from periodic samples.

    Seeded with zeros at ``started``: counters start at 0 with the process, so whatever was
    counted since then is growth while the process is younger than the window.
    """

    window_s: float
    started: float
    samples: deque[tuple[float, dict[str, float]]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if not self.samples:
            self.samples.append((self.started, {}))

    def observe(self, totals: Mapping[str, float], now: float) -> dict[str, float]:
        start = now - self.window_s
        # keep the newest sample at or before the window start: the baseline
        while len(self.samples) > 1 and self.samples[1][0] <= start:
            self.samples.popleft()
        base = self.samples[0][1]
        self.samples.append((now, dict(totals)))
        return {k: v - base.get(k, 0.0) for k, v in totals.items() if v - base.get(k, 0.0) > 0}


def dlq_wants(growth: Mapping[str, float], window_s: float, worker: str) -> list[Want]:
    out = []
    for topic, n in sorted(growth.items()):
        cause = (
            f"{n:.0f} record(s) from {topic} went to {topic}.dlq in the last {window_s:.0f} s "
            f"on worker {worker}: what they carried did not happen (read the dead letters "
            "for the reason, fix the producer or the data, then replay)"
        )
        out.append(Want("dlq-growth", Refs(), cause, scope=f"{topic}@{worker}"))
    return out


def scope_judged(rec: Mapping[str, Any], kind: str, worker: str) -> bool:
    """Open per-worker exceptions (sync-stale, dlq-growth) this worker decides on."""
    return rec.get("kind") == kind and str(rec.get("scope") or "").endswith(f"@{worker}")


# --- presentation helpers shared by the status page, the API and the CLI -------------------


def sort_exceptions(recs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """By owner team, critical first, then the most recently seen first."""

    def team(rec: Mapping[str, Any]) -> tuple[int, int]:
        owner = str(rec.get("owner"))
        rank = OWNERS_ORDER.index(owner) if owner in OWNERS_ORDER else len(OWNERS_ORDER)
        return rank, SEVERITY_RANK.get(str(rec.get("severity")), 9)

    newest = sorted(recs, key=lambda r: str(r.get("lastSeen") or ""), reverse=True)
    return sorted(newest, key=team)  # stable: keeps newest first within a group


def refs_text(refs: Mapping[str, Any] | None) -> str:
    names = {
        "purchaseOrderNumber": "PO",
        "itemSequenceNumber": "line",
        "sku": "SKU",
        "shipmentId": "shipment",
        "transactionId": "tx",
    }
    return " ".join(f"{names.get(k, k)} {v}" for k, v in (refs or {}).items() if v)
