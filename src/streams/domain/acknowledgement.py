"""Build and pre-check the SP-API ``OrderAcknowledgement`` for one PO from its line decisions.

Amazon implicitly rejects any line left out of an acknowledgement, so one is built only when
every line is decided (no holds). The builder is a pure function of its inputs and emits keys
in a fixed order, so rebuilding it for a resend yields byte-identical JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from streams.domain.allocation import LineDecision
from streams.domain.purchase_orders import (
    ItemQuantity,
    Money,
    Order,
    PoLine,
    sequence_sort_key,
    split_lines,
)

ACK_CODES = ("Accepted", "Backordered", "Rejected")
REJECTION_REASONS = ("TemporarilyUnavailable", "InvalidProductIdentifier", "ObsoleteProduct")


class AcknowledgementNotReady(ValueError):
    """The PO cannot be acknowledged yet (a line undecided, on hold, or decided on stale data)."""


def _lines(order_or_lines: Order | Sequence[PoLine]) -> list[PoLine]:
    if isinstance(order_or_lines, Order):
        # Identifiers and quantities only; the SKU is not needed to acknowledge.
        return split_lines(order_or_lines, lambda _asin, _vpi: None)
    return sorted(order_or_lines, key=lambda ln: sequence_sort_key(ln.itemSequenceNumber))


def build_acknowledgement(
    order_or_lines: Order | Sequence[PoLine],
    decisions: Mapping[str, LineDecision] | Iterable[LineDecision],
    selling_party: str,
    now: datetime,
) -> dict[str, Any]:
    """The ``OrderAcknowledgement`` for every line of one PO, in itemSequenceNumber order.

    Lines cancelled by Amazon (ordered 0) are left out: an entry must have a non-zero amount.
    Raises :class:`AcknowledgementNotReady` rather than build a partial acknowledgement.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    lines = _lines(order_or_lines)
    if not lines:
        raise AcknowledgementNotReady("no lines")
    by_key = dict(decisions) if isinstance(decisions, Mapping) else {d.key: d for d in decisions}
    po_numbers = {ln.purchaseOrderNumber for ln in lines}
    if len(po_numbers) != 1:
        raise AcknowledgementNotReady(f"lines of several POs: {sorted(po_numbers)}")
    problems: list[str] = []
    items: list[dict[str, Any]] = []
    for line in lines:
        d = by_key.get(line.key)
        if d is None:
            problems.append(f"{line.key}: not decided")
        elif d.hold is not None:
            problems.append(f"{line.key}: on hold ({d.hold.reason})")
        elif d.orderedQuantity != line.orderedQuantity:
            problems.append(f"{line.key}: decided on a different orderedQuantity (PO changed)")
        elif line.cancelled:
            continue
        elif d.netCost is None or _above(d.netCost, line.netCost):
            problems.append(f"{line.key}: no acceptable netCost ({d.netCost} vs PO {line.netCost})")
        else:
            items.append(_item(line, d))
    if problems:
        raise AcknowledgementNotReady("; ".join(problems))
    if not items:
        raise AcknowledgementNotReady(f"PO {lines[0].purchaseOrderNumber}: every line is cancelled")
    return {
        "purchaseOrderNumber": lines[0].purchaseOrderNumber,
        "sellingParty": {"partyId": selling_party},
        "acknowledgementDate": _iso_z(now),
        "items": items,
    }


def encode_acknowledgement(ack: Mapping[str, Any]) -> bytes:
    """Canonical JSON bytes (the same acknowledgement always encodes identically)."""
    return json.dumps(ack, separators=(",", ":"), ensure_ascii=False).encode()


def _item(line: PoLine, d: LineDecision) -> dict[str, Any]:
    item: dict[str, Any] = {"itemSequenceNumber": line.itemSequenceNumber}
    if line.amazonProductIdentifier is not None:
        item["amazonProductIdentifier"] = line.amazonProductIdentifier
    if line.vendorProductIdentifier is not None:
        item["vendorProductIdentifier"] = line.vendorProductIdentifier
    item["orderedQuantity"] = _quantity(line.orderedQuantity)
    assert d.netCost is not None
    item["netCost"] = _money(d.netCost)
    unit = line.orderedQuantity.unitOfMeasure
    size = d.unitSize if d.unitSize is not None else line.orderedQuantity.unitSize

    def qty(amount: int) -> dict[str, Any]:
        q: dict[str, Any] = {"amount": amount, "unitOfMeasure": unit}
        if unit == "Cases" and size is not None:
            q["unitSize"] = size
        return q

    entries: list[dict[str, Any]] = []
    if d.accepted:
        entries.append({"acknowledgementCode": "Accepted", "acknowledgedQuantity": qty(d.accepted)})
    if d.backordered:
        entry: dict[str, Any] = {
            "acknowledgementCode": "Backordered",
            "acknowledgedQuantity": qty(d.backordered),
        }
        if d.scheduledShipDate is not None:
            entry["scheduledShipDate"] = _iso_z(d.scheduledShipDate)
        entries.append(entry)
    if d.rejected:
        entries.append(
            {
                "acknowledgementCode": "Rejected",
                "acknowledgedQuantity": qty(d.rejected),
                "rejectionReason": d.rejectionReason,
            }
        )
    item["itemAcknowledgements"] = entries
    return item


def _quantity(q: ItemQuantity) -> dict[str, Any]:
    out: dict[str, Any] = {"amount": q.amount}
    if q.unitOfMeasure is not None:
        out["unitOfMeasure"] = q.unitOfMeasure
    if q.unitSize is not None:
        out["unitSize"] = q.unitSize
    return out


def _money(m: Money) -> dict[str, Any]:
    # Decimal as a plain string ("10.20", never "1E+1"), as Amazon's Decimal type expects.
    out: dict[str, Any] = {"currencyCode": m.currencyCode, "amount": format(m.amount, "f")}
    if m.unitOfMeasure is not None:
        out["unitOfMeasure"] = m.unitOfMeasure
    return out


def _above(cost: Money, po_cost: Money | None) -> bool:
    if po_cost is None or po_cost.currencyCode != cost.currencyCode:
        return False
    return cost.amount > po_cost.amount


def _iso_z(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validate_acknowledgement(
    ack: Mapping[str, Any], order_or_lines: Order | Sequence[PoLine] | None = None
) -> list[str]:
    """Rules Amazon states only in descriptions/docs, which its JSON schema does not enforce.

    With the PO (``order_or_lines``) it also checks that every line is present and echoes the
    PO's identifiers, quantity and (at most) its netCost. Empty list = no problems found.
    """
    errors: list[str] = []
    items = ack.get("items")
    if not isinstance(items, list) or not items:
        return ["items: at least one item is required"]
    seen: dict[str, Mapping[str, Any]] = {}
    for i, item in enumerate(items):
        where = f"items/{i}"
        if not isinstance(item, Mapping):
            errors.append(f"{where}: not an object")
            continue
        seq = item.get("itemSequenceNumber")
        if not isinstance(seq, str) or not seq:
            errors.append(f"{where}: itemSequenceNumber missing")
        elif seq in seen:
            errors.append(f"{where}: duplicate itemSequenceNumber {seq!r}")
        else:
            seen[seq] = item
        errors.extend(_check_item(where, item))
    if order_or_lines is not None:
        errors.extend(_check_against_po(ack, seen, _lines(order_or_lines)))
    return errors


def _check_item(where: str, item: Mapping[str, Any]) -> list[str]:
    errors: list[str] = []
    cost = item.get("netCost")
    if not isinstance(cost, Mapping) or "amount" not in cost or "currencyCode" not in cost:
        errors.append(f"{where}/netCost: required (Amazon rejects the file without it)")
    else:
        amount = _decimal(cost["amount"])
        if amount is None or not isinstance(cost["amount"], str):
            errors.append(f"{where}/netCost/amount: not a decimal string: {cost['amount']!r}")
        elif amount <= 0:
            errors.append(f"{where}/netCost/amount: must be above zero, got {cost['amount']}")
    ordered = item.get("orderedQuantity") or {}
    entries = item.get("itemAcknowledgements")
    if not isinstance(entries, list) or not entries:
        return [*errors, f"{where}/itemAcknowledgements: at least one entry is required"]
    total = 0
    for j, entry in enumerate(entries):
        ew = f"{where}/itemAcknowledgements/{j}"
        if not isinstance(entry, Mapping):
            errors.append(f"{ew}: not an object")
            continue
        code = entry.get("acknowledgementCode")
        if code not in ACK_CODES:
            errors.append(f"{ew}: acknowledgementCode {code!r} not one of {ACK_CODES}")
        q = entry.get("acknowledgedQuantity") or {}
        amount = q.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            errors.append(f"{ew}/acknowledgedQuantity/amount: must be a positive integer")
        else:
            total += amount
        if q.get("unitOfMeasure") not in ("Cases", "Eaches"):
            errors.append(f"{ew}/acknowledgedQuantity/unitOfMeasure: Cases or Eaches required")
        elif ordered.get("unitOfMeasure") and q["unitOfMeasure"] != ordered["unitOfMeasure"]:
            errors.append(f"{ew}/acknowledgedQuantity: unit differs from orderedQuantity")
        if q.get("unitOfMeasure") == "Cases" and "unitSize" not in q and "unitSize" in ordered:
            errors.append(f"{ew}/acknowledgedQuantity/unitSize: required for Cases")
        reason = entry.get("rejectionReason")
        if code == "Rejected" and reason not in REJECTION_REASONS:
            errors.append(f"{ew}/rejectionReason: required with Rejected, one of the enum")
        if code != "Rejected" and reason is not None:
            errors.append(f"{ew}/rejectionReason: only allowed with Rejected")
        if code == "Backordered" and not (
            entry.get("scheduledShipDate") or entry.get("scheduledDeliveryDate")
        ):
            errors.append(f"{ew}: Backordered needs scheduledShipDate or scheduledDeliveryDate")
    ordered_amount = ordered.get("amount")
    if isinstance(ordered_amount, int) and total > ordered_amount:
        errors.append(f"{where}: acknowledged {total} > ordered {ordered_amount}")
    return errors


def _check_against_po(
    ack: Mapping[str, Any], seen: Mapping[str, Mapping[str, Any]], lines: list[PoLine]
) -> list[str]:
    errors: list[str] = []
    if lines and ack.get("purchaseOrderNumber") != lines[0].purchaseOrderNumber:
        errors.append(f"purchaseOrderNumber: not {lines[0].purchaseOrderNumber!r}")
    expected = {ln.itemSequenceNumber: ln for ln in lines if not ln.cancelled}
    for seq, line in expected.items():
        item = seen.get(seq)
        if item is None:
            errors.append(f"line {seq}: missing (Amazon would implicitly reject it)")
            continue
        for field in ("amazonProductIdentifier", "vendorProductIdentifier"):
            if item.get(field) != getattr(line, field):
                errors.append(f"line {seq}/{field}: {item.get(field)!r} is not the PO's")
        if item.get("orderedQuantity") != _quantity(line.orderedQuantity):
            errors.append(f"line {seq}/orderedQuantity: not as in the PO")
        cost = item.get("netCost") or {}
        amount = _decimal(cost.get("amount"))
        if (
            line.netCost is not None
            and amount is not None
            and cost.get("currencyCode") == line.netCost.currencyCode
            and amount > line.netCost.amount
        ):
            errors.append(f"line {seq}/netCost: {amount} above the PO's {line.netCost.amount}")
    for seq in seen.keys() - expected.keys():
        errors.append(f"line {seq}: not an open line of the PO")
    return errors


def _decimal(v: object) -> Decimal | None:
    if isinstance(v, bool) or not isinstance(v, str | int):
        return None
    try:
        d = Decimal(v)
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


# --- several acknowledgements per submitAcknowledgement request ------------------------
# The body is ``{"acknowledgements": [OrderAcknowledgement, ...]}``. Amazon's model sets no
# maximum count (no ``maxItems``) and no size in bytes, but declares 413 for a body too large,
# so both are bounded by configuration and a 413 splits a request in halves.
_BODY_HEAD = b'{"acknowledgements":['
_BODY_TAIL = b"]}"


def request_body(acknowledgements: Sequence[bytes]) -> bytes:
    """The ``SubmitAcknowledgementRequest`` body embedding each acknowledgement's canonical
    bytes unchanged (a resend carries exactly the bytes that were built and published)."""
    return _BODY_HEAD + b",".join(acknowledgements) + _BODY_TAIL


def plan_requests(
    pending: Sequence[tuple[str, bytes]], max_count: int, max_bytes: int
) -> list[list[int]]:
    """Group pending acknowledgements ``(purchaseOrderNumber, canonical bytes)`` into requests.

    Returns lists of indexes into ``pending``, in order: at most ``max_count`` per request, a
    body of at most ``max_bytes`` (one acknowledgement larger than that goes alone), and a PO
    at most once per request, so that a newer revision of a PO is submitted after the older
    one, in a later request, as it would have been one at a time.
    """
    if max_count < 1:
        raise ValueError("max_count must be >= 1")
    requests: list[list[int]] = []
    current: list[int] = []
    numbers: set[str] = set()
    size = len(_BODY_HEAD) + len(_BODY_TAIL)
    for i, (number, body) in enumerate(pending):
        grown = size + len(body) + (1 if current else 0)
        if current and (len(current) >= max_count or grown > max_bytes or number in numbers):
            requests.append(current)
            current, numbers = [], set()
            grown = len(_BODY_HEAD) + len(_BODY_TAIL) + len(body)
        current.append(i)
        numbers.add(number)
        size = grown
    if current:
        requests.append(current)
    return requests
