"""The typed ``df_orders`` record of one Direct Fulfillment order, and what views show of it
(``/api/df/<PO>``, ``streams df``, the reconciliation report). It holds the order redacted:
no address, only its hash."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from streams.domain.purchase_orders import PoLine


@dataclass
class DfRecord:
    """One DF order (``df_orders`` table, key: PO number), JSON-able."""

    number: str
    order: dict[str, Any]  # redacted
    lines: dict[str, dict[str, Any]]  # seq -> PoLine JSON
    received_at: float
    ack_by: float
    ship_by: float
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcome: str | None = None  # accepted | rejected | held
    ack: dict[str, Any] = field(default_factory=dict)  # hash, body, txid, at, status, errors
    shipments: dict[str, dict[str, Any]] = field(default_factory=dict)  # dispatchId -> state
    late: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number, "order": self.order, "lines": self.lines,
            "receivedAt": self.received_at, "ackBy": self.ack_by, "shipBy": self.ship_by,
            "decisions": self.decisions, "outcome": self.outcome, "ack": self.ack,
            "shipments": self.shipments, "late": self.late,
        }  # fmt: skip

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DfRecord:
        return cls(
            d["number"], d["order"], d["lines"], d["receivedAt"], d["ackBy"], d["shipBy"],
            d.get("decisions") or {}, d.get("outcome"), d.get("ack") or {},
            d.get("shipments") or {}, bool(d.get("late")),
        )  # fmt: skip

    @property
    def acknowledged(self) -> bool:
        return bool(self.ack.get("txid"))

    def po_lines(self) -> list[PoLine]:
        return [PoLine.model_validate(v) for v in self.lines.values()]

    def details(self) -> dict[str, Any]:
        return dict(self.order.get("orderDetails") or {})


def quantities(rec: DfRecord) -> list[dict[str, Any]]:
    """Per line: ordered, accepted, allocated eaches (the reconciliation report's rows)."""
    out = []
    for seq, ln in rec.lines.items():
        d = rec.decisions.get(seq) or {}
        out.append({
            "itemSequenceNumber": seq, "sku": ln.get("sku"),
            "ordered": (ln.get("orderedQuantity") or {}).get("amount"),
            "accepted": d.get("accepted"), "allocatedEaches": d.get("allocatedEaches"),
            "status": d.get("status"),
        })  # fmt: skip
    return out


def view(rec: DfRecord, now: float) -> dict[str, Any]:
    """What ``/api/df/<PO>`` and ``streams df`` show of an order: no address (the record
    holds none, only its hash, which is not shown either)."""
    ack = rec.ack
    return {
        "purchaseOrderNumber": rec.number,
        "outcome": rec.outcome or "deciding",
        "orderDate": rec.details().get("orderDate"),
        "ackBy": _iso_ts(rec.ack_by),
        "shipBy": _iso_ts(rec.ship_by),
        "late": rec.late or (not rec.acknowledged and now > rec.ack_by),
        "lines": quantities(rec),
        "acknowledgement": {
            "code": ack.get("code"),
            "status": ack.get("status") or ("built" if ack else None),
            "transactionId": ack.get("txid"),
            "errors": ack.get("errors"),
        },
        "shipments": [
            {
                "dispatchId": did,
                "status": sh.get("status"),
                "problems": sh.get("problems"),
                "confirmTransaction": sh.get("confirmTx"),
                "confirmStatus": sh.get("confirmStatus"),
                "statusTransaction": sh.get("statusTx"),
            }
            for did, sh in rec.shipments.items()
        ],
    }


def _iso_ts(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def sales_record(rec: DfRecord) -> dict[str, Any] | None:
    """The order for finance as the sales-order builder reads a PO (``po``, ``rev``,
    ``lines``, ``decisions``, acknowledged): an accepted DF order once Amazon took its
    acknowledgement; None before (or when nothing was accepted)."""
    if rec.outcome not in ("accepted", "cancelled") or not rec.acknowledged:
        return None
    if rec.outcome == "cancelled" and rec.ack.get("code") != "00":
        return None
    return {
        "po": rec.number,
        "rev": str(rec.details().get("orderDate") or ""),
        "state": "Acknowledged",
        "lines": rec.lines,
        "decisions": rec.decisions,
    }
