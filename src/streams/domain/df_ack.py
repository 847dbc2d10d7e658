"""The Direct Fulfillment acknowledgement: one ``OrderAcknowledgementItem`` per DF order,
built from its line decisions (``submitAcknowledgement`` of vendorDirectFulfillmentOrders
2021-12-28).

A DF acknowledgement carries ONE status for the whole order: Amazon's DF acknowledgement
codes are order-level ("00" ships the order in full; every other code cancels it), and DF has
no backorder or partial acceptance. So an order is accepted only when every line was fully
accepted; otherwise it is rejected as a whole with the code of its first failing line, and
the lines that did get stock give it back. The codes are those of Amazon's DF orders use
case guide (the model leaves them to it); see docs/direct-fulfillment.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson

from streams.domain.purchase_orders import PoLine

# Amazon's DF acknowledgement codes used here (DF orders use case guide)
ACCEPTED = ("00", "Shipping 100 percent of ordered product")
INVALID_SKU = ("02", "Canceled due to missing/invalid SKU")
OUT_OF_STOCK = ("03", "Canceled out of stock")
DISCONTINUED = ("20", "Canceled due to discontinued item")
_BY_REASON = {
    "InvalidProductIdentifier": INVALID_SKU,
    "ObsoleteProduct": DISCONTINUED,
    "TemporarilyUnavailable": OUT_OF_STOCK,
}

Outcome = Literal["accepted", "rejected"]


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    code: str
    description: str
    # line sequence numbers that hold stock a rejection must give back
    release: tuple[str, ...] = ()


def verdict(
    lines: Sequence[PoLine], decisions: Mapping[str, Mapping[str, Any]]
) -> Verdict | str | None:
    """The order's outcome once every line is decided (None: not yet; str: a line is on
    hold, with why: nothing can be acknowledged until a person acts)."""
    if any(ln.itemSequenceNumber not in decisions for ln in lines):
        return None
    failing: tuple[str, str] | None = None
    holding: list[str] = []
    for ln in lines:
        d = decisions[ln.itemSequenceNumber]
        hold = d.get("hold")
        if hold:
            return f"line {ln.itemSequenceNumber} on hold: {hold.get('reason')}"
        if int(d.get("allocatedEaches") or 0) > 0:
            holding.append(ln.itemSequenceNumber)
        if int(d.get("accepted") or 0) < ln.orderedQuantity.amount and failing is None:
            failing = _BY_REASON.get(str(d.get("rejectionReason")), OUT_OF_STOCK)
    if failing is None:
        return Verdict("accepted", *ACCEPTED)
    return Verdict("rejected", *failing, release=tuple(holding))


def vendor_order_number(purchase_order_number: str) -> str:
    """Our order number for a DF order: the commercetools order finance sees."""
    return f"AMZDF-{purchase_order_number}"


def build_acknowledgement(
    number: str,
    lines: Sequence[PoLine],
    v: Verdict,
    selling_party: str,
    ship_from: str,
    at: datetime,
) -> dict[str, Any]:
    """The ``OrderAcknowledgementItem`` of one order (every item echoed with its ordered
    quantity: the code says what happens to all of them)."""
    items = []
    for ln in lines:
        item: dict[str, Any] = {"itemSequenceNumber": ln.itemSequenceNumber}
        if ln.amazonProductIdentifier:
            item["buyerProductIdentifier"] = ln.amazonProductIdentifier
        if ln.vendorProductIdentifier:
            item["vendorProductIdentifier"] = ln.vendorProductIdentifier
        item["acknowledgedQuantity"] = {
            "amount": ln.orderedQuantity.amount,
            "unitOfMeasure": "Each",
        }
        items.append(item)
    return {
        "purchaseOrderNumber": number,
        "vendorOrderNumber": vendor_order_number(number),
        "acknowledgementDate": _iso(at),
        "acknowledgementStatus": {"code": v.code, "description": v.description},
        "sellingParty": {"partyId": selling_party},
        "shipFromParty": {"partyId": ship_from},
        "itemAcknowledgements": items,
    }


def request_body(acks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``SubmitAcknowledgementRequest`` carrying ``acks``."""
    return {"orderAcknowledgements": list(acks)}


def check_acknowledgement(ack: Mapping[str, Any]) -> list[str]:
    """The rules Amazon's model states only in words (the model check comes on top)."""
    problems = []
    if not ack.get("itemAcknowledgements"):
        problems.append("itemAcknowledgements: an acknowledgement names every item")
    for item in ack.get("itemAcknowledgements") or []:
        q = (item.get("acknowledgedQuantity") or {}).get("amount")
        if not isinstance(q, int) or q <= 0:
            problems.append(
                f"item {item.get('itemSequenceNumber')}: acknowledgedQuantity must not be zero"
            )
    code = (ack.get("acknowledgementStatus") or {}).get("code")
    if not (isinstance(code, str) and len(code) == 2 and code.isdigit()):
        problems.append(f"acknowledgementStatus.code {code!r} is not a two-digit code")
    return problems


def encode(obj: Any) -> bytes:
    """Canonical bytes (sorted keys): the same acknowledgement always has the same digest."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def _iso(dt: datetime) -> str:
    s = dt.replace(microsecond=0).isoformat()
    return s[:-6] + "Z" if s.endswith("+00:00") else s
