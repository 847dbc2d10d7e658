"""What the invoice book's decisions return (:class:`InvoiceEffects`) and the small rules they
share: an invoice's digest (what "the same invoice" means), its PO, Amazon's duplicate refusal."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from streams.domain.exceptions import OpsException, Refs, raise_exception, resolve, to_record

LIVE = ("queued", "submitted", "accepted")
INVALID = "invoice-invalid"
TX_FAILED = "invoice-transaction-failed"
# Amazon refuses an invoice number it holds; after an uncertain send (a crash after the
# request left, before its outcome was stored) such a refusal means the first one stands
_DUPLICATE_HINTS = ("duplicate", "already exists", "already been submitted")


def invoice_digest(invoice: Mapping[str, Any]) -> str:
    body = {k: v for k, v in invoice.items() if k not in ("date", "invoiceDate")}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def invoice_purchase_order(invoice: Mapping[str, Any]) -> str | None:
    for item in invoice.get("items") or ():
        po = (item or {}).get("purchaseOrderNumber")
        if isinstance(po, str) and po:
            return po
    return None


@dataclass
class InvoiceEffects:
    publish: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # number, body
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)  # streams_invoices_total
    watch: list[tuple[str, str, float]] = field(default_factory=list)  # txid, number, at
    done: list[str] = field(default_factory=list)  # txids no longer pending
    changed: bool = False


def _no_model(invoice: Any) -> list[str]:
    return []  # a rendered body is checked against its own model after the rules


def _is_duplicate(text: str) -> bool:
    low = text.casefold()
    return any(h in low for h in _DUPLICATE_HINTS)


def _iso(now: datetime) -> str:
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _refs(po: str, kind: str, ref: str) -> Refs:
    if ref == "po":
        return Refs(purchaseOrderNumber=po)
    if kind == TX_FAILED:  # about one invoice
        return Refs(purchaseOrderNumber=po, invoiceNumber=ref)
    return Refs(purchaseOrderNumber=po, shipmentId=ref)


def raise_in(
    exceptions: dict[str, Any],
    po: str,
    kind: str,
    ref: str,
    cause: str,
    now_iso: str,
    eff: InvoiceEffects,
    *,
    violations: list[Any] | None = None,
) -> None:
    """Open (or update) the book's exception ``kind`` about ``ref`` and emit it."""
    slot = f"{kind}|{ref}"
    prev = exceptions.get(slot)
    exc = raise_exception(
        kind, _refs(po, kind, ref), cause, now_iso,
        OpsException.model_validate(prev) if prev else None,
    )  # fmt: skip
    exceptions[slot] = to_record(exc)
    rec = to_record(exc)
    if violations is not None:
        rec["violations"] = [x.to_json() for x in violations]
    eff.exceptions.append(rec)
    eff.changed = True


def resolve_in(
    exceptions: dict[str, Any], kind: str, ref: str, now_iso: str, eff: InvoiceEffects
) -> None:
    """Resolve the book's exception ``kind`` about ``ref``, if open, and emit that."""
    prev = exceptions.pop(f"{kind}|{ref}", None)
    if prev is not None:
        eff.exceptions.append(to_record(resolve(OpsException.model_validate(prev), now_iso)))
        eff.changed = True
