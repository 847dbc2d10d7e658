"""Presentation helpers shared by the status page, the API and the CLI: the order in which
exceptions are listed and how their refs read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SEVERITY_RANK: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}
OWNERS_ORDER = ("operations", "finance", "ecommerce", "fulfilment", "platform")


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
        "invoiceNumber": "invoice",
    }
    return " ".join(f"{names.get(k, k)} {v}" for k, v in (refs or {}).items() if v)
