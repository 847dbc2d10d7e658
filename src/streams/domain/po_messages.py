"""The internal messages of the purchase-order flow, as one typed union.

``<app>-po-events`` (key: PO number) carries what happens to a PO: a revision taken in, line
decisions from the SKU partitions, what the ack sender and the transaction poller learnt.
``<app>-sku-events`` carries a PO's lines to the partition that owns their SKU's stock.
The wire form is the JSON object ``{"t": <kind>, ...}`` the flow always used, so records
already on the topics keep being read; :func:`decode` drops a kind it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OrderTaken:
    """One revision of the SP-API Order, validated by intake."""

    raw: dict[str, Any]


@dataclass(frozen=True)
class Received:
    """What Amazon received per item (the poller, ahead of a Closed PO): seq -> quantity."""

    items: dict[str, Any]


@dataclass(frozen=True)
class Decisions:
    """Line decisions (``LineDecision`` JSON) of one PO; ``one`` marks the single form."""

    ds: tuple[dict[str, Any], ...]
    one: bool = False


@dataclass(frozen=True)
class AckSubmitted:
    """Amazon took the request carrying the acknowledgement (``digest``: of its bytes)."""

    txid: str
    at: float
    n: int = 1
    digest: str | None = None


@dataclass(frozen=True)
class AckFailed:
    """Amazon refused the acknowledgement itself (4xx on a request of it alone)."""

    error: str


@dataclass(frozen=True)
class TxChecked:
    """A transaction's outcome: ``{"id", "status", "errors", "checkedAt"}``."""

    tx: dict[str, Any]


@dataclass(frozen=True)
class Closed:
    """Sent once the record says how a Closed PO ended (for the sales-order flow)."""


@dataclass(frozen=True)
class Acknowledged:
    """Sent once the record shows the acknowledgement submitted (for the sales-order flow)."""


PoEvent = OrderTaken | Received | Decisions | AckSubmitted | AckFailed | TxChecked
Notice = Closed | Acknowledged  # read by other flows, nothing for the PO flow to apply


def to_json(msg: PoEvent | Notice) -> dict[str, Any]:
    match msg:
        case OrderTaken(raw):
            return {"t": "order", "raw": raw}
        case Received(items):
            return {"t": "received", "items": items}
        case Decisions(ds, one) if one and len(ds) == 1:
            return {"t": "decision", "d": ds[0]}
        case Decisions(ds):
            return {"t": "decisions", "ds": list(ds)}
        case AckSubmitted(txid, at, n, digest):
            out: dict[str, Any] = {"t": "ack-submitted", "txid": txid, "at": at, "n": n}
            if digest is not None:
                out["hash"] = digest
            return out
        case AckFailed(error):
            return {"t": "ack-failed", "error": error}
        case TxChecked(tx):
            return {"t": "tx", "tx": tx}
        case Closed():
            return {"t": "closed"}
        case Acknowledged():
            return {"t": "acked"}
    raise TypeError(f"not a PO message: {msg!r}")


def from_json(item: Mapping[str, Any]) -> PoEvent | Notice | None:
    """The message an object is, or None for a kind this version does not know."""
    match item.get("t"):
        case "order":
            return OrderTaken(item["raw"])
        case "received":
            return Received(dict(item["items"]))
        case "decision":
            return Decisions((item["d"],), one=True)
        case "decisions":
            return Decisions(tuple(item["ds"]))
        case "ack-submitted":
            return AckSubmitted(
                str(item["txid"]), float(item["at"]), int(item.get("n", 1)), item.get("hash")
            )
        case "ack-failed":
            return AckFailed(str(item["error"]))
        case "tx":
            return TxChecked(dict(item["tx"]))
        case "closed":
            return Closed()
        case "acked":
            return Acknowledged()
    return None


# --- <app>-sku-events: a PO's lines to their SKU's partition (the inventory flow reads) ---


@dataclass(frozen=True)
class Allocate:
    sku: str
    line: dict[str, Any]  # PoLine JSON


@dataclass(frozen=True)
class Release:
    """A Closed PO's line: give back what never shipped, ``keep`` eaches stay sold."""

    sku: str
    line: dict[str, Any]
    keep: int


def sku_message(msg: Allocate | Release) -> dict[str, Any]:
    if isinstance(msg, Release):
        return {"t": "release", "sku": msg.sku, "line": msg.line, "keep": msg.keep}
    return {"t": "alloc", "sku": msg.sku, "line": msg.line}
