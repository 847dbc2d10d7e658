"""Owned exceptions: problems a team must act on, with their root cause and a runbook.

An exception's id is derived from its kind and references, so raising the same problem
again updates one record (count, last seen) instead of creating another; resolving it
publishes the same id with status ``resolved``. ``ops.exceptions`` is compacted by id.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Owner = Literal["operations", "finance", "ecommerce", "fulfilment", "platform"]
Severity = Literal["info", "warning", "critical"]
Status = Literal["open", "resolved"]

RUNBOOKS = "docs/runbooks"

# kind -> (owner, severity); the runbook page is docs/runbooks/<kind>.md
KINDS: dict[str, tuple[Owner, Severity]] = {
    "unit-of-measure": ("operations", "critical"),
    "invalid-quantity": ("operations", "warning"),
    "missing-price": ("finance", "critical"),
    "PriceMismatch": ("finance", "warning"),
    "ack-rejected": ("operations", "critical"),
    "ack-transaction-failed": ("operations", "critical"),
    "ack-deadline": ("operations", "critical"),
    "unmapped-sku": ("ecommerce", "warning"),
    "asn-invalid": ("fulfilment", "critical"),
    "asn-transaction-failed": ("fulfilment", "critical"),
    "ct-command-failed": ("operations", "critical"),
    "sync-stale": ("platform", "critical"),
    "inventory-drift": ("ecommerce", "warning"),
    "dlq-growth": ("platform", "warning"),
    # the inventory sender (Amazon not told the stock is an overselling risk: critical)
    "inventory-update-rejected": ("ecommerce", "critical"),
    "inventory-transaction-failed": ("ecommerce", "critical"),
    "inventory-send-stalled": ("platform", "critical"),
    # storefront stock reaching Amazon only at the sweep's pace is an overselling risk
    "ct-notifications-missed": ("platform", "critical"),
    # vendor invoices (docs/invoices.md): nothing billed until finance acts
    "invoice-invalid": ("finance", "critical"),
    "invoice-transaction-failed": ("finance", "critical"),
    # Direct Fulfillment orders (the DF flow): a late or lost acknowledgement cancels the
    # customer's order at Amazon
    "df-order-held": ("operations", "critical"),
    "df-ack-rejected": ("operations", "critical"),
    "df-ack-transaction-failed": ("operations", "critical"),
    "df-deadline": ("operations", "critical"),
    "df-confirmation-invalid": ("fulfilment", "critical"),
    "df-confirmation-failed": ("fulfilment", "critical"),
}


class Refs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: str | None = None
    purchaseOrderNumber: str | None = None
    itemSequenceNumber: str | None = None
    shipmentId: str | None = None
    transactionId: str | None = None
    invoiceNumber: str | None = None  # vendor invoices (docs/invoices.md)


class OpsException(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    severity: Severity
    owner: Owner
    refs: Refs
    rootCause: str
    firstSeen: str
    lastSeen: str
    count: int = Field(1, ge=1)
    status: Status = "open"
    runbook: str


def exception_id(kind: str, refs: Refs) -> str:
    basis = kind + "|" + "|".join(f"{k}={v}" for k, v in sorted(refs.model_dump().items()) if v)
    return f"{kind}:{hashlib.sha1(basis.encode()).hexdigest()[:16]}"


def raise_exception(
    kind: str,
    refs: Refs,
    root_cause: str,
    now_iso: str,
    previous: OpsException | None = None,
    *,
    owner: Owner | None = None,
    severity: Severity | None = None,
) -> OpsException:
    """A new open exception, or ``previous`` seen again (count + 1, last seen now)."""
    default_owner, default_severity = KINDS.get(kind, ("operations", "warning"))
    if previous is not None and previous.status == "open":
        return previous.model_copy(
            update={"lastSeen": now_iso, "count": previous.count + 1, "rootCause": root_cause}
        )
    return OpsException(
        id=exception_id(kind, refs),
        kind=kind,
        severity=severity or default_severity,
        owner=owner or default_owner,
        refs=refs,
        rootCause=root_cause,
        firstSeen=now_iso,
        lastSeen=now_iso,
        runbook=f"{RUNBOOKS}/{kind}.md",
    )


def resolve(previous: OpsException, now_iso: str) -> OpsException:
    return previous.model_copy(update={"status": "resolved", "lastSeen": now_iso})


def to_record(e: OpsException) -> dict[str, Any]:
    return e.model_dump(mode="json")


def complete(exc_id: str, rec: Any) -> dict[str, Any]:
    """A reported exception record (``ops.exceptions``), completed from its kind where the
    producer left fields out; ValueError when it is no exception record."""
    if not isinstance(rec, dict) or not rec.get("kind"):
        raise ValueError("not an exception record (no kind)")
    kind = str(rec["kind"])
    owner, severity = KINDS.get(kind, ("operations", "warning"))
    rec["id"] = exc_id
    rec.setdefault("owner", owner)
    rec.setdefault("severity", severity)
    rec.setdefault("status", "open")
    rec.setdefault("refs", {})
    rec.setdefault("rootCause", "")
    rec.setdefault("runbook", f"{RUNBOOKS}/{kind}.md")
    if rec["status"] not in ("open", "resolved"):
        raise ValueError(f"unknown status {rec['status']!r}")
    return rec
