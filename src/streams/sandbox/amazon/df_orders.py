"""The sandbox's Direct Fulfillment Orders API (2021-12-28): getOrders, getOrder,
submitAcknowledgement.

Shapes are Amazon's 2021-12-28 ones: ``getOrders`` answers an ``OrderList`` and ``getOrder``
an ``Order`` without a ``payload`` wrapper, ``submitAcknowledgement`` a ``TransactionId``
(``{"transactionId"}``), checked on the DF Transaction Status API. Both reads return the
ship-to address, so they need a Restricted Data Token (:mod:`.tokens`). Bodies are validated
against Amazon's model when ``STREAMS_AMAZON_MODELS_DIR`` has it; the structure the sandbox
needs to answer (PO numbers, line numbers) is checked either way, and an acknowledgement of an
unknown order or line ends in a Failure transaction, as Amazon reports it.

The route name of the DF acknowledgement is ``submitAcknowledgement.df`` (the retail
operation has the same operationId); rate limits, faults and ``/_sandbox/received`` use it.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from aiohttp import web

from streams.adapters.amazon_models import available, validate
from streams.sandbox.amazon.retail_orders import MAX_WINDOW
from streams.sandbox.amazon.state import (
    BODY,
    STATE,
    _error,
    _errors,
    _json,
    _parse_dt,
    _problems_to_errors,
)

API = "df-orders"
BASE = "/vendor/directFulfillment/orders/2021-12-28"
ACK = "submitAcknowledgement.df"
OPERATIONS = {
    "getOrders": ("GET", BASE + "/purchaseOrders"),
    "getOrder": ("GET", BASE + "/purchaseOrders/{purchaseOrderNumber}"),
    ACK: ("POST", BASE + "/acknowledgements"),
}
STATUSES = ("NEW", "SHIPPED", "ACCEPTED", "CANCELLED")
ACCEPTED_CODE = "00"  # Amazon's DF code: "Shipping 100 percent of ordered product"
_FILTERS = ("createdAfter", "createdBefore", "status", "shipFromPartyId", "sortOrder",
            "includeDetails")  # fmt: skip


def _bad(request: web.Request, message: str, details: str = "") -> web.Response:
    return _errors(request, 400, [_error("InvalidInput", message, details)])


def _token(offset: int, filters: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"o": offset, "f": filters})).decode()


def _untoken(token: str) -> tuple[int, dict[str, str]]:
    data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
    return int(data["o"]), {str(k): str(v) for k, v in data["f"].items()}


def _filter_problem(f: dict[str, str]) -> str:
    if "createdAfter" not in f or "createdBefore" not in f:
        return "createdAfter and createdBefore are required."
    try:
        after, before = _parse_dt(f["createdAfter"]), _parse_dt(f["createdBefore"])
    except ValueError:
        return "createdAfter and createdBefore must be ISO-8601 date-times."
    if before < after:
        return "createdBefore must not be earlier than createdAfter."
    if before - after > MAX_WINDOW:
        return "The date range must not exceed 7 days."
    if f.get("status") not in (None, *STATUSES):
        return f"status must be one of {', '.join(STATUSES)}."
    if f.get("sortOrder") not in (None, "ASC", "DESC"):
        return "sortOrder must be ASC or DESC."
    if f.get("includeDetails") not in (None, "true", "false"):
        return "includeDetails must be true or false."
    return ""


def _matches(order: dict[str, Any], f: dict[str, str]) -> bool:
    d = order["orderDetails"]
    created = _parse_dt(d["orderDate"])
    if not _parse_dt(f["createdAfter"]) <= created < _parse_dt(f["createdBefore"]):
        return False
    if "status" in f and d.get("orderStatus") != f["status"]:
        return False
    return f.get("shipFromPartyId") in (None, d["shipFromParty"]["partyId"])


async def get_orders(request: web.Request) -> web.Response:
    state = request.app[STATE]
    q = request.query
    try:
        limit = int(q.get("limit", "50"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        return _bad(request, "limit must be between 1 and 100.", q.get("limit", ""))
    if "nextToken" in q:  # the token carries the query, so a page can't drift from it
        try:
            offset, filters = _untoken(q["nextToken"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return _bad(request, "Invalid nextToken.")
    else:
        offset, filters = 0, {k: q[k] for k in _FILTERS if k in q}
        problem = _filter_problem(filters)
        if problem:
            return _bad(request, problem)
    selected = [o for o in state.df_orders.values() if _matches(o, filters)]
    selected.sort(
        key=lambda o: (_parse_dt(o["orderDetails"]["orderDate"]), o["purchaseOrderNumber"]),
        reverse=filters.get("sortOrder") == "DESC",
    )
    page = selected[offset : offset + limit]
    if filters.get("includeDetails") == "false":
        page = [{"purchaseOrderNumber": o["purchaseOrderNumber"]} for o in page]
    body: dict[str, Any] = {}
    if offset + limit < len(selected):
        body["pagination"] = {"nextToken": _token(offset + limit, filters)}
    body["orders"] = page
    return _json(request, 200, body)


async def get_order(request: web.Request) -> web.Response:
    number = request.match_info["purchaseOrderNumber"]
    order = request.app[STATE].df_orders.get(number)
    if order is None:
        return _errors(
            request,
            404,
            [_error("NotFound", "The resource specified does not exist.", number)],
        )
    return _json(request, 200, order)


def _structure(body: Any) -> list[str]:
    """What the sandbox needs to answer an acknowledgement, model or not."""
    acks = body.get("orderAcknowledgements") if isinstance(body, dict) else None
    if not isinstance(acks, list) or not acks:
        return ["orderAcknowledgements: at least one acknowledgement is required"]
    problems = []
    for i, ack in enumerate(acks):
        if not isinstance(ack, dict) or not isinstance(ack.get("purchaseOrderNumber"), str):
            problems.append(f"orderAcknowledgements/{i}/purchaseOrderNumber: required")
            continue
        items = ack.get("itemAcknowledgements")
        if not isinstance(items, list) or not items:
            problems.append(f"orderAcknowledgements/{i}/itemAcknowledgements: required")
            continue
        for j, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("itemSequenceNumber"), str):
                problems.append(
                    f"orderAcknowledgements/{i}/itemAcknowledgements/{j}/itemSequenceNumber: "
                    "required"
                )
    return problems


def _seq(value: Any) -> str:
    """A line number as one form: the orders API has ``"00001"``, shipping's ``1``."""
    text = str(value).strip()
    return str(int(text)) if text.isdigit() else text


def unknown_lines(
    orders: dict[str, dict[str, Any]], number: str, lines: list[Any]
) -> dict[str, str] | None:
    """An Amazon error when ``number`` or one of its ``lines`` is not an order's, else None."""
    order = orders.get(number)
    if order is None:
        return _error("INVALID_ORDER_ID", "Invalid order ID.", number)
    known = {_seq(i["itemSequenceNumber"]) for i in order["orderDetails"]["items"]}
    missing = sorted({_seq(n) for n in lines} - known)
    if missing:
        return _error("INVALID_ITEM_SEQUENCE", "Invalid item sequence number.",
                      f"{number}: {','.join(missing)}")  # fmt: skip
    return None


async def submit_acknowledgement(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = request[BODY]
    problems = validate(API, "SubmitAcknowledgementRequest", body) if available(API) else []
    problems = problems or _structure(body)
    if problems:
        return _errors(request, 400, _problems_to_errors(problems))
    acks = body["orderAcknowledgements"]
    errors = [
        e
        for a in acks
        if (
            e := unknown_lines(
                state.df_orders,
                a["purchaseOrderNumber"],
                [i["itemSequenceNumber"] for i in a["itemAcknowledgements"]],
            )
        )
    ]
    numbers = {a["purchaseOrderNumber"] for a in acks}
    tx = state.new_transaction(ACK, numbers, errors or None)
    if tx.errors is None:
        for a in acks:
            details = state.df_orders[a["purchaseOrderNumber"]]["orderDetails"]
            if details.get("orderStatus") == "NEW":
                code = (a.get("acknowledgementStatus") or {}).get("code")
                details["orderStatus"] = "ACCEPTED" if code == ACCEPTED_CODE else "CANCELLED"
    return _json(request, 202, {"transactionId": tx.transaction_id})


HANDLERS = {"getOrders": get_orders, "getOrder": get_order, ACK: submit_acknowledgement}
