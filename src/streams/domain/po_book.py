"""The purchase-order flow's rules on one PO (pure): each po-events message applied to the
:class:`~streams.domain.purchase_order.PurchaseOrderRecord`, returning what to do about it.

``agents/purchase_orders.py`` reads the record, calls :func:`apply` per message and
:func:`acknowledge` once per batch, saves the record and carries the effects out (records to
the SKU partitions and po-events, exceptions, metrics, the transactions to poll), as the ASN
flow does with ``ShipmentBook``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from streams.domain.acknowledgement import (
    AcknowledgementNotReady,
    build_acknowledgement,
    encode_acknowledgement,
)
from streams.domain.allocation import LineDecision, allocate
from streams.domain.exceptions import Refs
from streams.domain.po_close import plan_close, received_eaches
from streams.domain.po_messages import (
    AckFailed,
    Acknowledged,
    AckSubmitted,
    Allocate,
    Closed,
    Decisions,
    Notice,
    OrderTaken,
    PoEvent,
    Received,
    Release,
    TxChecked,
)
from streams.domain.purchase_order import PurchaseOrderRecord
from streams.domain.purchase_orders import Order, PoLine, Resolver, split_lines


@dataclass(frozen=True)
class Context:
    """What the rules need beyond the record: master data, the clock, settings."""

    resolve: Resolver
    now: float
    backorder_lead_days: int
    # eaches our ASNs shipped per PO line (``seq_key``): asked only for a Closed PO
    shipped: Callable[[], dict[str, int]] = dict

    @property
    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


@dataclass
class Effects:
    changed: bool = False  # the record must be saved
    decided: bool = False  # a line decision was taken in: maybe acknowledge
    records: str | None = None  # streams_records_total{outcome} of a revision
    sku: list[Allocate | Release] = field(default_factory=list)  # to the SKU partitions
    notices: list[Notice] = field(default_factory=list)  # to po-events, once saved
    exceptions: list[tuple[str, Refs, str]] = field(default_factory=list)  # kind, refs, cause
    closed: str | None = None  # streams_po_closed_total{outcome}
    watch: tuple[str, float] | None = None  # (txid, submitted at): poll it
    settled: str | None = None  # txid no longer pending
    latency: float | None = None  # received -> acknowledgement submitted, seconds

    def add(self, other: Effects) -> None:
        self.changed = self.changed or other.changed
        self.decided = self.decided or other.decided
        self.sku += other.sku
        self.notices += other.notices
        self.exceptions += other.exceptions


def apply(
    po: PurchaseOrderRecord | None, msg: PoEvent | Notice | None, ctx: Context
) -> tuple[PurchaseOrderRecord | None, Effects]:
    """One po-events message on the PO's record (None: not taken in yet)."""
    if isinstance(msg, OrderTaken):
        return on_order(po, msg.raw, ctx)
    eff = Effects()
    if po is None:
        return None, eff  # about a PO never taken in (e.g. state lost)
    match msg:
        case Received(items):  # what Amazon received (the poller, ahead of a Closed PO)
            po.received = received_eaches(po.lines, items)
            eff.changed = True
        case Decisions(ds):  # one or several decisions of one PO
            for d in ds:
                on_decision(po, d, eff)
        case AckSubmitted(txid, at, _, digest):
            if po.on_ack_submitted(txid, at, digest):
                eff.changed = True
                eff.watch = (txid, at)
                received = po.received_at if po.received_at is not None else at
                eff.latency = max(0.0, at - received)
                eff.notices.append(Acknowledged())  # the sales-order flow may now make its order
        case AckFailed(error):
            po.on_ack_failed(error)
            eff.changed = True
        case TxChecked(tx):
            po.on_tx(tx)
            eff.changed = True
            if tx.get("status") in ("Success", "Failure"):
                eff.settled = po.tx.id or ""
    return po, eff


def on_order(
    po: PurchaseOrderRecord | None, raw: Any, ctx: Context
) -> tuple[PurchaseOrderRecord, Effects]:
    """Take in one revision of a PO. Its lines go to their SKU's partition to be allocated
    (or, for a Closed PO, released but for what shipped); a line with no known product is
    decided here at once (there is nothing to allocate anywhere)."""
    order = Order.model_validate(raw)
    assert order.orderDetails is not None
    po = po or PurchaseOrderRecord(received_at=ctx.now)
    lines = split_lines(order, ctx.resolve)
    revision = lines[0].revision.isoformat() if lines else ""
    state = order.purchaseOrderState
    eff = Effects()
    change = po.revision_change(revision, state)
    if change in ("duplicate", "stale"):
        eff.records = change
        if change == "duplicate" and state != "Closed":
            eff.sku = _undecided_again(po)
        elif change == "duplicate":
            eff.sku, eff.notices = _releases_again(po), [Closed()]
        return po, eff
    eff.records, eff.changed = "applied", True
    if change == "state":
        po.state = state  # only Amazon's state moved (e.g. New -> Acknowledged)
        return po, eff
    dumped = [ln.model_dump(mode="json") for ln in lines]
    po.number = order.purchaseOrderNumber
    po.rev, po.state, po.order = revision, state, raw
    po.lines = {ln.itemSequenceNumber: d for ln, d in zip(lines, dumped, strict=True)}
    po.po_date = order.orderDetails.purchaseOrderDate.timestamp()
    close = None
    if state == "Closed":
        # received, partially received or cancelled: only what never shipped goes back
        close = plan_close(po.lines, po.decisions, ctx.shipped(), po.received)
        po.close = {"rev": revision, **close.to_json()}
        eff.closed = close.outcome
        eff.notices.append(Closed())  # the sales-order flow: the record says how it ended
    for line, payload in zip(lines, dumped, strict=True):
        if close is not None:
            if line.sku:
                eff.sku.append(Release(line.sku, payload, close.keep(line.itemSequenceNumber)))
        elif line.sku is None:
            d = allocate(line, 0, None, now=ctx.now_dt, backorder_lead_days=ctx.backorder_lead_days)
            on_decision(po, d.model_dump(mode="json"), eff)
        else:
            eff.sku.append(Allocate(line.sku, payload))
    return po, eff


def _undecided_again(po: PurchaseOrderRecord) -> list[Allocate | Release]:
    """A redelivered revision: its lines still undecided go to their SKU again. The record
    is saved before the lines are sent, so a crash in between loses them otherwise; the
    SKU partition answers a line it decided already with its stored decision."""
    out: list[Allocate | Release] = []
    for seq in po.undecided():
        line = po.lines[seq]
        if line.get("sku"):
            out.append(Allocate(line["sku"], line))
    return out


def _releases_again(po: PurchaseOrderRecord) -> list[Allocate | Release]:
    """A redelivered Closed revision: its lines' releases again, with the ``keep`` of the
    stored close plan (a crash after the record was saved loses them otherwise; the SKU
    partition repeats a release it made, it does not give the stock back twice)."""
    plan = (po.close or {}).get("lines") or {}
    return [
        Release(line["sku"], line, int((plan.get(seq) or {}).get("shipped") or 0))
        for seq, line in po.lines.items()
        if line.get("sku")
    ]


def on_decision(po: PurchaseOrderRecord, d: dict[str, Any], eff: Effects) -> None:
    """One line decision (``LineDecision`` JSON) taken in, with the exceptions its findings
    and hold raise. Models are built once, when every line is decided, not once per
    decision (a 100-line PO would otherwise cost 100 x 100 validations).

    A redelivered decision (the one stored) changes nothing but raises its exceptions
    again: the record is saved before they are sent, so a crash in between would leave a
    held PO with no owned exception. Exceptions are keyed by kind and refs: seen again."""
    if not po.on_decision(d):
        if po.decisions.get(d["itemSequenceNumber"]) == d:
            _decision_exceptions(d, eff)
        return
    eff.changed = eff.decided = True
    _decision_exceptions(d, eff)


def _decision_exceptions(d: dict[str, Any], eff: Effects) -> None:
    refs = Refs(
        purchaseOrderNumber=d.get("purchaseOrderNumber"),
        itemSequenceNumber=d["itemSequenceNumber"],
        sku=d.get("sku"),
    )
    hold = d.get("hold")
    for f in (*(d.get("findings") or ()), *((hold,) if hold else ())):
        eff.exceptions.append((f["kind"], refs, f["reason"]))


def acknowledge(po: PurchaseOrderRecord, ctx: Context, default_party: str) -> bytes | str | None:
    """The acknowledgement's bytes once every line is decided and none is on hold (built
    once per revision: a resend is identical); why not (str) when the decisions cannot be
    acknowledged as they are; None while it is not due."""
    if not po.ready_to_acknowledge():
        return None
    try:
        body = _build(po, default_party, ctx.now_dt)
    except AcknowledgementNotReady as exc:
        return str(exc)
    po.on_built(hashlib.sha256(body).hexdigest(), ctx.now)
    return body


def unsent_acknowledgement(po: PurchaseOrderRecord, default_party: str) -> bytes | None:
    """The acknowledgement built for the current revision, rebuilt byte for byte, while
    nothing says it was submitted; None otherwise.

    The record (with the acknowledgement's hash) is saved before the acknowledgement is
    sent, so a crash in between leaves a built acknowledgement that never reached the
    sender; the redelivered messages change nothing, so they would not build it again. The
    agent sends this on such a redelivery; the sender drops bytes it has submitted."""
    ack = po.ack
    if not po.built_for_current() or ack.txid or ack.error or ack.built_at is None:
        return None
    try:
        body = _build(po, default_party, datetime.fromtimestamp(ack.built_at, UTC))
    except AcknowledgementNotReady:
        return None
    # the same decisions and time give the same bytes; anything else is not ours to send
    return body if hashlib.sha256(body).hexdigest() == ack.hash else None


def _build(po: PurchaseOrderRecord, default_party: str, at: datetime) -> bytes:
    lines = [PoLine.model_validate(v) for v in po.lines.values()]
    decided = {ln.key: LineDecision.model_validate(po.decisions[ln.itemSequenceNumber])
               for ln in lines}  # fmt: skip
    return encode_acknowledgement(
        build_acknowledgement(lines, decided, po.selling_party(default_party), at)
    )
