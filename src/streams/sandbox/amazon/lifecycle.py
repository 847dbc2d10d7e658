"""The end of a purchase order in the sandbox: Amazon closes it, received or cancelled.

Amazon's ``Closed`` means "rejected by vendor, cancelled by Amazon or fully received by
Amazon", and the ``Order`` alone does not say which. The control call
``POST /_sandbox/orders/close`` ends a PO one of those ways:

* ``received``: state Closed (only the state and its date change, as Amazon does), and the
  items are booked as received (all of each item, or ``received`` ``{seq: amount}``);
* ``cancelled``: Amazon cancelled what was left: every item's quantity becomes 0
  (``poItemState=Cancelled`` finds it), the PO changes and closes;
* ``rejected``: state Closed only, nothing received.

``getPurchaseOrdersStatus`` (Amazon's operation, same path and shape) reports each item's
``receivingStatus`` and ``acknowledgementStatus`` from that.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from streams.sandbox.amazon.state import STATE, _error, _errors, _json, _parse_dt

OPERATION = "getPurchaseOrdersStatus"
OPERATIONS = {OPERATION: ("GET", "/vendor/orders/v1/purchaseOrdersStatus")}
# PO number -> {item sequence number: received amount (the item's unit)}
RECEIPTS: web.AppKey[dict[str, dict[str, int]]] = web.AppKey("spapi_sandbox_receipts", dict)
HOW = ("received", "cancelled", "rejected")


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def close_order(
    order: dict[str, Any], how: str, at: datetime, received: dict[str, int] | None = None
) -> tuple[dict[str, Any], dict[str, int]]:
    """``order`` closed ``how`` at ``at``: the new Order and what was received per item."""
    if how not in HOW:
        raise ValueError(f"how must be one of {', '.join(HOW)}")
    out = orjson.loads(orjson.dumps(order))
    details = out["orderDetails"]
    out["purchaseOrderState"] = "Closed"
    details["purchaseOrderStateChangedDate"] = _iso(at)
    got: dict[str, int] = {}
    if how == "cancelled":
        details["purchaseOrderChangedDate"] = _iso(at)
        for item in details["items"]:
            item["orderedQuantity"] = {**item["orderedQuantity"], "amount": 0}
    elif how == "received":
        for item in details["items"]:
            seq = item["itemSequenceNumber"]
            amount = int(item["orderedQuantity"]["amount"])
            got[seq] = amount if received is None else int(received.get(seq, 0))
    return out, got


def order_status(order: dict[str, Any], receipts: dict[str, int]) -> dict[str, Any]:
    """Amazon's ``OrderStatus`` of ``order``."""
    details = order["orderDetails"]
    items = []
    complete = bool(receipts)
    for item in details["items"]:
        seq = item["itemSequenceNumber"]
        qty = item["orderedQuantity"]
        got = receipts.get(seq, 0)
        ordered = int(qty["amount"])
        if got <= 0:
            receive = "NOT_RECEIVED"
        elif got < ordered:
            receive = "PARTIALLY_RECEIVED"
        else:
            receive = "RECEIVED"
        complete = complete and got >= ordered
        unit = {k: qty[k] for k in ("unitOfMeasure", "unitSize") if k in qty}
        status: dict[str, Any] = {
            "itemSequenceNumber": seq,
            "orderedQuantity": {"orderedQuantity": qty},
            "receivingStatus": {
                "receiveStatus": receive,
                "receivedQuantity": {"amount": got, **unit},
            },
        }
        for key, name in (("amazonProductIdentifier", "buyerProductIdentifier"),
                          ("vendorProductIdentifier", "vendorProductIdentifier"),
                          ("netCost", "netCost")):  # fmt: skip
            if key in item:
                status[name] = item[key]
        items.append(status)
    updated = max(
        _parse_dt(details[k])
        for k in ("purchaseOrderDate", "purchaseOrderStateChangedDate", "purchaseOrderChangedDate")
        if k in details
    )
    return {
        "purchaseOrderNumber": order["purchaseOrderNumber"],
        "purchaseOrderStatus": "CLOSED" if complete else "OPEN",
        "purchaseOrderDate": details["purchaseOrderDate"],
        "lastUpdatedDate": _iso(updated),
        "sellingParty": details.get("sellingParty") or {"partyId": "VENDOR1"},
        "shipToParty": details.get("shipToParty") or {"partyId": "ABE2"},
        "itemStatus": items,
    }


async def get_purchase_orders_status(request: web.Request) -> web.Response:
    """Filters: ``purchaseOrderNumber``, ``updatedAfter``/``updatedBefore``,
    ``purchaseOrderStatus``; one page (the sandbox serves few POs)."""
    state, receipts = request.app[STATE], request.app[RECEIPTS]
    q = request.query
    number = q.get("purchaseOrderNumber")
    try:
        after = _parse_dt(q["updatedAfter"]) if "updatedAfter" in q else None
        before = _parse_dt(q["updatedBefore"]) if "updatedBefore" in q else None
    except ValueError:
        return _errors(request, 400, [_error("InvalidInput", "Invalid date-time.")])
    out = []
    for o in state.orders.values():
        if number is not None and o["purchaseOrderNumber"] != number:
            continue
        st = order_status(o, receipts.get(o["purchaseOrderNumber"], {}))
        updated = _parse_dt(st["lastUpdatedDate"])
        if (after and updated <= after) or (before and updated >= before):
            continue
        if q.get("purchaseOrderStatus") not in (None, st["purchaseOrderStatus"]):
            continue
        out.append(st)
    return _json(request, 200, {"payload": {"ordersStatus": out}})


async def control_close(request: web.Request) -> web.Response:
    """``{"purchaseOrderNumber", "how": received|cancelled|rejected, "at"?, "received"?}``."""
    state, receipts = request.app[STATE], request.app[RECEIPTS]
    try:
        data = orjson.loads(await request.read())
        number = str(data["purchaseOrderNumber"])
        at = _parse_dt(data["at"]) if data.get("at") else datetime.now(UTC)
        order = state.orders[number]
        closed, got = close_order(order, str(data.get("how")), at, data.get("received"))
    except KeyError as exc:
        return web.json_response({"error": f"unknown or missing: {exc}"}, status=404)
    except (ValueError, TypeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    state.orders[number] = closed
    if got:
        receipts[number] = got
    return web.json_response({"order": closed, "received": got})


HANDLERS = {OPERATION: get_purchase_orders_status}


def install(app: web.Application) -> None:
    """The receipts and the close control on ``app`` (the server serves ``HANDLERS``)."""
    app[RECEIPTS] = {}
    app.router.add_post("/_sandbox/orders/close", control_close)
