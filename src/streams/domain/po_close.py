"""What a ``Closed`` purchase order means for stock and for finance (pure).

Amazon's ``purchaseOrderState`` Closed covers three different ends: rejected by the vendor,
cancelled by Amazon, **or fully received by Amazon**. Releasing every line's reservation on
Closed would put stock that left on a truck back on the storefront, and cancel an order
finance must keep. So a close is read line by line against what was shipped (the ASNs this
product sent, and Amazon's received quantity when it is known):

* eaches shipped stay consumed: the release of a line keeps them (``keep``);
* only what was accepted and never shipped goes back to stock;
* the PO as a whole is ``received`` (everything accepted shipped), ``partially-received``
  (some shipped) or ``cancelled`` (nothing shipped: rejected or cancelled).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Outcome = Literal["received", "partially-received", "cancelled"]


def seq_key(seq: str) -> str:
    """Item sequence numbers as the ASN records them ("00003" and "3" are one line)."""
    return str(int(seq)) if seq.isascii() and seq.isdigit() else seq


def shipped_eaches(book: Mapping[str, Any] | None) -> dict[str, int]:
    """Eaches shipped per PO line (:func:`seq_key`) by the ASN flow's ``shipments`` record of
    the PO: each shipment's effective confirmation (the last one Amazon holds or will hold; a
    Replace replaces its shipment's earlier quantities)."""
    out: Counter[str] = Counter()
    for sh in ((book or {}).get("shipments") or {}).values():
        versions = sh.get("versions") or []
        active = [v for v in versions if v.get("status") in ("queued", "submitted", "accepted")]
        if active:
            for seq, n in (active[-1].get("shipped") or {}).items():
                out[seq_key(seq)] += int(n)
    return dict(out)


@dataclass(frozen=True)
class ClosedLine:
    seq: str
    sku: str | None
    accepted: int  # eaches acknowledged to Amazon (what was reserved)
    shipped: int  # eaches shipped (kept out of stock when the PO closes)

    @property
    def released(self) -> int:
        """Eaches that go back to stock: accepted and never shipped."""
        return max(0, self.accepted - self.shipped)


@dataclass(frozen=True)
class ClosePlan:
    lines: tuple[ClosedLine, ...]

    @property
    def accepted(self) -> int:
        return sum(ln.accepted for ln in self.lines)

    @property
    def shipped(self) -> int:
        return sum(min(ln.shipped, ln.accepted) for ln in self.lines)

    @property
    def outcome(self) -> Outcome:
        if self.shipped <= 0:
            return "cancelled"
        if all(ln.shipped >= ln.accepted for ln in self.lines):
            return "received"
        return "partially-received"

    def keep(self, seq: str) -> int:
        for ln in self.lines:
            if ln.seq == seq:
                return ln.shipped
        return 0

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "accepted": self.accepted,
            "shipped": self.shipped,
            "lines": {
                ln.seq: {"accepted": ln.accepted, "shipped": ln.shipped, "released": ln.released}
                for ln in self.lines
            },
        }


def plan_close(
    lines: Mapping[str, Mapping[str, Any]],
    decisions: Mapping[str, Mapping[str, Any]],
    shipped: Mapping[str, int],
    received: Mapping[str, int] | None = None,
) -> ClosePlan:
    """The close of one PO: ``lines`` and ``decisions`` as the ``pos`` document holds them
    (by item sequence number), ``shipped`` the eaches our ASNs shipped per line and
    ``received`` the eaches Amazon reports received per line (``getPurchaseOrdersStatus``),
    both keyed by :func:`seq_key`. Shipped counts the larger of the two: an ASN can be sent
    outside this product, and Amazon may not have booked a delivery yet."""
    received = received or {}
    out = []
    for seq, line in lines.items():
        d = decisions.get(seq) or {}
        accepted = int(d.get("allocatedEaches") or 0)
        k = seq_key(seq)
        n = max(int(shipped.get(k, 0)), int(received.get(k, 0)))
        out.append(ClosedLine(seq, line.get("sku"), accepted, max(0, n)))
    return ClosePlan(tuple(out))


def received_eaches(
    lines: Mapping[str, Mapping[str, Any]], received: Mapping[str, Mapping[str, Any]]
) -> dict[str, int]:
    """Amazon's ``receivedQuantity`` per item (its ``ItemQuantity``) in eaches, keyed by
    :func:`seq_key`; cases count with the line's case size (as it was allocated)."""
    by_key = {seq_key(seq): line for seq, line in lines.items()}
    out: dict[str, int] = {}
    for seq, qty in received.items():
        k = seq_key(seq)
        line = by_key.get(k) or {}
        amount = int(qty.get("amount") or 0)
        if qty.get("unitOfMeasure") == "Cases":
            size = line.get("unitSize") or qty.get("unitSize")
            amount *= int(size or (line.get("orderedQuantity") or {}).get("unitSize") or 1)
        out[k] = max(0, amount)
    return out
