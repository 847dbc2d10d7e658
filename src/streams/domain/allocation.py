"""Decide one PO line against stock: Accepted / Backordered / Rejected, or Hold for a person.

Runs on the partition that owns the line's SKU (flow 5), so ``available_eaches`` is the
SKU's live availability and no other line can take the same units concurrently. Quantities
in a decision are in the PO's own ordering unit (whole cases when Amazon ordered Cases);
``allocatedEaches`` is what commercetools must reserve.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, computed_field

from streams.domain import mapping as master
from streams.domain.purchase_orders import ItemQuantity, Money, PoLine, line_key
from streams.domain.units import Eaches, to_eaches, to_units

RejectionReason = Literal["TemporarilyUnavailable", "InvalidProductIdentifier", "ObsoleteProduct"]
Status = Literal["Accepted", "Backordered", "Rejected", "Partial", "Hold", "Cancelled"]
FindingKind = Literal["PriceMismatch", "unit-of-measure", "invalid-quantity", "missing-price"]
Owner = Literal["finance", "operations"]

DEFAULT_PRICE_TOLERANCE = Decimal("0.01")  # 1 % relative difference before finance is told


class Finding(BaseModel):
    """Something a team must look at; the agent turns it into an ``ops.exceptions`` record."""

    model_config = ConfigDict(frozen=True)

    kind: FindingKind
    owner: Owner
    reason: str


class LineDecision(BaseModel):
    """The outcome for one PO line, self-contained so the acknowledgement needs nothing else.

    ``accepted + backordered + rejected`` equals the ordered amount unless the line is on
    ``hold`` (nothing decided, nothing allocated, the PO must not be acknowledged yet) or was
    cancelled by Amazon (ordered 0).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    purchaseOrderNumber: str
    itemSequenceNumber: str
    lineCount: int
    revision: AwareDatetime
    sku: str | None
    amazonProductIdentifier: str | None = None
    vendorProductIdentifier: str | None = None
    orderedQuantity: ItemQuantity
    isBackOrderAllowed: bool
    unitSize: int | None = None  # eaches per ordering unit actually used
    accepted: int = Field(default=0, ge=0)
    backordered: int = Field(default=0, ge=0)
    rejected: int = Field(default=0, ge=0)
    rejectionReason: RejectionReason | None = None
    scheduledShipDate: AwareDatetime | None = None
    allocatedEaches: int = Field(default=0, ge=0)
    netCost: Money | None = None  # the price to acknowledge
    hold: Finding | None = None
    findings: tuple[Finding, ...] = ()
    decidedAt: AwareDatetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def key(self) -> str:
        return line_key(self.purchaseOrderNumber, self.itemSequenceNumber)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> Status:
        if self.hold is not None:
            return "Hold"
        total = self.orderedQuantity.amount
        if total == 0:
            return "Cancelled"
        if self.accepted == total:
            return "Accepted"
        if self.backordered == total:
            return "Backordered"
        if self.rejected == total:
            return "Rejected"
        return "Partial"


def allocate(
    line: PoLine,
    available_eaches: int,
    mapping: master.SkuMapping | None,
    *,
    now: datetime,
    backorder_lead_days: int,
    price_tolerance: Decimal = DEFAULT_PRICE_TOLERANCE,
) -> LineDecision:
    """Decide ``line`` against ``available_eaches`` of its SKU (``mapping`` None = unknown)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if backorder_lead_days < 0:
        raise ValueError("backorder_lead_days must be >= 0")
    base = LineDecision(
        purchaseOrderNumber=line.purchaseOrderNumber,
        itemSequenceNumber=line.itemSequenceNumber,
        lineCount=line.lineCount,
        revision=line.revision,
        sku=mapping.sku if mapping else line.sku,
        amazonProductIdentifier=line.amazonProductIdentifier,
        vendorProductIdentifier=line.vendorProductIdentifier,
        orderedQuantity=line.orderedQuantity,
        isBackOrderAllowed=line.isBackOrderAllowed,
        decidedAt=now,
    )
    qty = line.orderedQuantity
    where = f"PO {line.purchaseOrderNumber} line {line.itemSequenceNumber}"

    def held(kind: FindingKind, owner: Owner, reason: str) -> LineDecision:
        return base.model_copy(update={"hold": Finding(kind=kind, owner=owner, reason=reason)})

    if qty.amount == 0:
        return base  # Amazon cancelled the item: nothing to allocate or acknowledge
    # Even a rejection must echo a positive quantity in a known unit, so these come first.
    if qty.amount < 0 or qty.unitOfMeasure is None:
        return held("invalid-quantity", "operations", f"{where}: unusable orderedQuantity {qty}")
    cost, findings = check_price(
        line.netCost, mapping.netCost if mapping else None, price_tolerance, context=where
    )
    if cost is None:
        reason = f"{where}: no positive netCost on the PO line or in master data"
        return held("missing-price", "finance", reason).model_copy(update={"findings": findings})
    base = base.model_copy(update={"netCost": cost, "findings": findings})

    def reject_all(reason: RejectionReason) -> LineDecision:
        return base.model_copy(update={"rejected": qty.amount, "rejectionReason": reason})

    if mapping is None:
        return reject_all("InvalidProductIdentifier")
    if mapping.obsolete:
        return reject_all("ObsoleteProduct")
    conv = to_eaches(qty, mapping.unitsPerCase, context=where, sku=mapping.sku)
    if not isinstance(conv, Eaches):
        return held("unit-of-measure", "operations", conv.reason)

    accepted = min(qty.amount, to_units(available_eaches, conv.unit_size))
    rest = qty.amount - accepted
    update: dict[str, Any] = {
        "unitSize": conv.unit_size,
        "accepted": accepted,
        "allocatedEaches": accepted * conv.unit_size,
    }
    if rest and line.isBackOrderAllowed:
        when = _scheduled(line, now, backorder_lead_days)
        update |= {"backordered": rest, "scheduledShipDate": when}
    elif rest:
        update |= {"rejected": rest, "rejectionReason": "TemporarilyUnavailable"}
    return base.model_copy(update=update)


def _scheduled(line: PoLine, now: datetime, lead_days: int) -> datetime:
    # Never promise earlier than we can restock, nor earlier than the window Amazon asked for.
    when = now.astimezone(UTC) + timedelta(days=lead_days)
    if line.shipWindowEnd is not None:
        when = max(when, line.shipWindowEnd.astimezone(UTC))
    return when.replace(microsecond=0)


def check_price(
    po_cost: Money | None,
    expected: master.Money | None,
    tolerance: Decimal = DEFAULT_PRICE_TOLERANCE,
    *,
    context: str = "",
) -> tuple[Money | None, tuple[Finding, ...]]:
    """The netCost to acknowledge (None = none usable) and any findings for finance.

    Amazon: the acknowledged cost must not be above the PO's, and never zero or negative.
    """
    prefix = f"{context}: " if context else ""

    def finding(reason: str) -> tuple[Finding, ...]:
        return (Finding(kind="PriceMismatch", owner="finance", reason=prefix + reason),)

    exp_ok = expected is not None and expected.amount > 0
    if po_cost is None or po_cost.amount <= 0:
        got = "no netCost" if po_cost is None else f"netCost {po_cost.amount}"
        if expected is not None and exp_ok:
            fallback = Money(currencyCode=expected.currencyCode, amount=expected.amount)
            return fallback, finding(f"PO line has {got}; acknowledged at master netCost")
        return None, finding(f"PO line has {got} and master data has no positive netCost")
    if expected is None or not exp_ok:
        return po_cost, ()
    if po_cost.unitOfMeasure is not None:
        return po_cost, ()  # priced per weight unit: not comparable with a per-each cost
    if po_cost.currencyCode != expected.currencyCode:
        return po_cost, finding(
            f"PO netCost is in {po_cost.currencyCode}, master netCost in {expected.currencyCode}"
        )
    findings: tuple[Finding, ...] = ()
    if abs(po_cost.amount - expected.amount) > tolerance * expected.amount:
        findings = finding(f"PO netCost {po_cost.amount} vs master netCost {expected.amount}")
    if expected.amount < po_cost.amount:
        return po_cost.model_copy(update={"amount": expected.amount}), findings
    return po_cost, findings


def available_for_amazon(
    stock_by_channel: Mapping[str, int],
    mapping: master.SkuMapping | None,
    *,
    open_allocations: int,
    default_channels: tuple[str, ...] = (),
    channel_keys: Mapping[str, str] | None = None,
) -> int:
    """max(0, sum over Amazon-eligible channels - safety buffer - open Amazon allocations).

    ``stock_by_channel`` maps supply-channel id to available eaches; ``channel_keys`` maps an
    id to its key so eligibility may name either. No master data = nothing for Amazon.
    """
    if mapping is None:
        return 0
    keys = channel_keys or {}
    master_sum = sum(
        qty
        for channel, qty in stock_by_channel.items()
        if mapping.eligible(channel, keys.get(channel), default_channels)
    )
    return max(0, master_sum - mapping.safetyBuffer - open_allocations)


class LedgerResult(NamedTuple):
    decision: LineDecision
    delta_eaches: int  # reserve (+) or release (-) this many eaches in commercetools now
    replayed: bool  # True: the stored decision, nothing new to do (redelivery)


class AllocationLedger:
    """Idempotent record of line decisions keyed by "PO#itemSequenceNumber".

    ``store`` is any mutable mapping of JSON-able values (a dict, or a Faust table), so a
    redelivered line gets its stored decision back instead of a second allocation.
    """

    def __init__(self, store: MutableMapping[str, Any] | None = None) -> None:
        self._store: MutableMapping[str, Any] = {} if store is None else store

    def get(self, key: str) -> LineDecision | None:
        entry = self._store.get(key)
        return None if entry is None else LineDecision.model_validate(entry["decision"])

    def is_released(self, key: str) -> bool:
        entry = self._store.get(key)
        return bool(entry and entry["released"])

    def decide(
        self,
        line: PoLine,
        available_eaches: int,
        mapping: master.SkuMapping | None,
        *,
        now: datetime,
        backorder_lead_days: int,
        price_tolerance: Decimal = DEFAULT_PRICE_TOLERANCE,
    ) -> LedgerResult:
        """Decide ``line`` once; a changed version of it (newer PO revision) is re-decided.

        ``available_eaches`` is the SKU's availability *including* this line's own current
        allocation as an open allocation; it is added back when the line is re-decided.
        """
        prev = self.get(line.key)
        if prev is not None:
            stale = line.revision < prev.revision
            same = (
                line.orderedQuantity == prev.orderedQuantity
                and line.isBackOrderAllowed == prev.isBackOrderAllowed
            )
            # Released lines (closed PO) never allocate again; a hold is retried every time.
            if self.is_released(line.key) or stale or (same and prev.hold is None):
                return LedgerResult(prev, 0, True)
        own = prev.allocatedEaches if prev else 0
        decision = allocate(
            line,
            max(0, available_eaches) + own,
            mapping,
            now=now,
            backorder_lead_days=backorder_lead_days,
            price_tolerance=price_tolerance,
        )
        if prev is not None and _fully_rejected(prev) and decision.hold is None:
            # Amazon: a line first acknowledged as Rejected cannot become Accepted/Backordered.
            decision = _keep_rejected(decision, prev)
        self._put(decision, released=False)
        return LedgerResult(decision, decision.allocatedEaches - own, False)

    def release(self, key: str) -> int:
        """Release a line's allocation (closed/cancelled PO); eaches to release, 0 if none."""
        entry = self._store.get(key)
        if entry is None or entry["released"]:
            return 0
        decision = LineDecision.model_validate(entry["decision"])
        self._put(decision, released=True)
        return decision.allocatedEaches

    def release_po(self, purchase_order_number: str) -> dict[str, int]:
        """Release every stored line of one PO (only lines held in this store's partition)."""
        prefix = f"{purchase_order_number}#"
        keys = [k for k in list(self._store.keys()) if k.startswith(prefix)]
        return {k: self.release(k) for k in keys}

    def open_allocations(self, sku: str) -> int:
        """Eaches allocated to not-released lines of ``sku`` (a scan; fine for tests/small sets)."""
        return sum(d.allocatedEaches for d in self._decisions() if d.sku == sku)

    def _decisions(self) -> Iterator[LineDecision]:
        for entry in list(self._store.values()):
            if not entry["released"]:
                yield LineDecision.model_validate(entry["decision"])

    def _put(self, decision: LineDecision, *, released: bool) -> None:
        # Assign a fresh value (never mutate in place) so a Faust table records the change.
        self._store[decision.key] = {
            "decision": decision.model_dump(mode="json"),
            "released": released,
        }


def _fully_rejected(d: LineDecision) -> bool:
    return d.hold is None and d.rejected > 0 and d.accepted == 0 and d.backordered == 0


def _keep_rejected(new: LineDecision, prev: LineDecision) -> LineDecision:
    if new.orderedQuantity.amount == 0:
        return new
    return new.model_copy(
        update={
            "accepted": 0,
            "backordered": 0,
            "scheduledShipDate": None,
            "allocatedEaches": 0,
            "rejected": new.orderedQuantity.amount,
            "rejectionReason": prev.rejectionReason,
        }
    )
