"""Retail purchase orders (``vendorOrders`` v1): getPurchaseOrders, getPurchaseOrder,
submitAcknowledgement."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from streams.adapters.amazon_models import validate
from streams.sandbox.amazon.state import (
    BODY,
    STATE,
    _accepted,
    _decimal_above_zero,
    _error,
    _errors,
    _json,
    _parse_dt,
    _problems_to_errors,
)

MAX_WINDOW = timedelta(days=7)
OPERATIONS: dict[str, tuple[str, str]] = {
    "getPurchaseOrders": ("GET", "/vendor/orders/v1/purchaseOrders"),
    "getPurchaseOrder": ("GET", "/vendor/orders/v1/purchaseOrders/{purchaseOrderNumber}"),
    "submitAcknowledgement": ("POST", "/vendor/orders/v1/acknowledgements"),
}


_ENUMS = {
    "purchaseOrderState": ("New", "Acknowledged", "Closed"),
    "sortOrder": ("ASC", "DESC"),
    "poItemState": ("Cancelled",),
    "includeDetails": ("true", "false"),
    "isPOChanged": ("true", "false"),
}
_DATES = ("createdAfter", "createdBefore", "changedAfter", "changedBefore")
_FILTERS = (*_DATES, *_ENUMS, "orderingVendorCode")


def _encode_token(offset: int, filters: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"o": offset, "f": filters})).decode()


def _decode_token(token: str) -> tuple[int, dict[str, str]]:
    data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
    return int(data["o"]), {str(k): str(v) for k, v in data["f"].items()}


def _check_filters(filters: dict[str, str]) -> list[dict[str, str]]:
    errors = []
    for name, allowed in _ENUMS.items():
        if name in filters and filters[name] not in allowed:
            errors.append(
                _error(
                    "InvalidInput", f"{name} must be one of {', '.join(allowed)}.", filters[name]
                )
            )
    for name in _DATES:
        if name in filters:
            try:
                _parse_dt(filters[name])
            except ValueError:
                errors.append(
                    _error(
                        "InvalidRequest",
                        "The request is invalid.",
                        f"{name} is not an ISO-8601 date-time: {filters[name]}",
                    )
                )
    if errors:
        return errors
    for kind in ("created", "changed"):
        after, before = filters.get(f"{kind}After"), filters.get(f"{kind}Before")
        if after is None:
            continue
        start = _parse_dt(after)
        end = _parse_dt(before) if before else datetime.now(UTC)
        if end < start:
            errors.append(
                _error(
                    "InvalidInput",
                    f"{kind}Before must not be earlier than {kind}After.",
                    f"{kind}After={after}, {kind}Before={before}",
                )
            )
        elif end - start > MAX_WINDOW:
            errors.append(
                _error(
                    "InvalidInput",
                    "The date range must not exceed 7 days.",
                    f"{kind}After={after}, {kind}Before={before or 'now'}",
                )
            )
    return errors


def _changed_at(order: dict[str, Any]) -> datetime | None:
    details = order.get("orderDetails") or {}
    stamps = [
        _parse_dt(details[k])
        for k in ("purchaseOrderChangedDate", "purchaseOrderStateChangedDate")
        if k in details
    ]
    return max(stamps) if stamps else None


def _matches(order: dict[str, Any], f: dict[str, str]) -> bool:
    details = order.get("orderDetails") or {}
    created = _parse_dt(details["purchaseOrderDate"]) if "purchaseOrderDate" in details else None
    if "createdAfter" in f and (created is None or created <= _parse_dt(f["createdAfter"])):
        return False
    if "createdBefore" in f and (created is None or created >= _parse_dt(f["createdBefore"])):
        return False
    if "changedAfter" in f or "changedBefore" in f:
        changed = _changed_at(order)
        if changed is None:
            return False
        if "changedAfter" in f and changed <= _parse_dt(f["changedAfter"]):
            return False
        if "changedBefore" in f and changed >= _parse_dt(f["changedBefore"]):
            return False
    if "purchaseOrderState" in f and order.get("purchaseOrderState") != f["purchaseOrderState"]:
        return False
    if f.get("isPOChanged") == "true" and "purchaseOrderChangedDate" not in details:
        return False
    if f.get("poItemState") == "Cancelled" and not any(
        (i.get("orderedQuantity") or {}).get("amount") == 0 for i in details.get("items", [])
    ):
        return False
    party = (details.get("sellingParty") or {}).get("partyId")
    return "orderingVendorCode" not in f or party == f["orderingVendorCode"]


async def get_purchase_orders(request: web.Request) -> web.Response:
    state = request.app[STATE]
    q = request.query
    try:
        limit = int(q.get("limit", "100"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        return _errors(
            request,
            400,
            [_error("InvalidInput", "limit must be between 1 and 100.", q.get("limit", ""))],
        )
    if "nextToken" in q:
        # the token carries the original filters, so a page can't drift from its query
        try:
            offset, filters = _decode_token(q["nextToken"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return _errors(request, 400, [_error("InvalidInput", "Invalid nextToken.")])
    else:
        offset, filters = 0, {k: q[k] for k in _FILTERS if k in q}
        errors = _check_filters(filters)
        if errors:
            return _errors(request, 400, errors)

    selected = [o for o in state.orders.values() if _matches(o, filters)]
    epoch = datetime.min.replace(tzinfo=UTC)
    selected.sort(
        key=lambda o: (
            _parse_dt(o["orderDetails"]["purchaseOrderDate"])
            if "purchaseOrderDate" in (o.get("orderDetails") or {})
            else epoch,
            o["purchaseOrderNumber"],
        ),
        reverse=filters.get("sortOrder") == "DESC",
    )
    page = selected[offset : offset + limit]
    if filters.get("includeDetails") == "false":
        page = [{k: o[k] for k in ("purchaseOrderNumber", "purchaseOrderState")} for o in page]
    payload: dict[str, Any] = {}
    if offset + limit < len(selected):
        payload["pagination"] = {"nextToken": _encode_token(offset + limit, filters)}
    payload["orders"] = page
    return _json(request, 200, {"payload": payload})


async def get_purchase_order(request: web.Request) -> web.Response:
    number = request.match_info["purchaseOrderNumber"]
    if number == "null":  # Amazon's own sandbox example
        return _errors(
            request,
            400,
            [
                _error(
                    "InvalidRequest",
                    "Request is missing or has invalid parameters",
                    "purchaseOrderNumber cannot be null",
                )
            ],
        )
    order = request.app[STATE].orders.get(number)
    if order is None:
        return _errors(
            request,
            404,
            [
                _error(
                    "NotFound",
                    "The resource specified does not exist.",
                    f"purchaseOrderNumber {number}",
                )
            ],
        )
    return _json(request, 200, {"payload": order})


async def submit_acknowledgement(request: web.Request) -> web.Response:
    body = request[BODY]
    problems = validate("vendorOrders", "SubmitAcknowledgementRequest", body)
    if not problems:
        acks = body.get("acknowledgements") or []
        if not acks:
            problems.append("acknowledgements: at least one acknowledgement is required")
        for i, ack in enumerate(acks):
            for j, item in enumerate(ack.get("items", [])):
                # described in the model, not in its schema: Amazon rejects the file without it
                if "netCost" not in item:
                    problems.append(
                        f"acknowledgements/{i}/items/{j}/netCost: netCost is a "
                        "required field; Amazon rejects acknowledgements without it"
                    )
                elif not _decimal_above_zero(item["netCost"]):
                    problems.append(
                        f"acknowledgements/{i}/items/{j}/netCost: price information "
                        "must not be zero or negative"
                    )
    if problems:
        return _errors(request, 400, _problems_to_errors(problems))
    numbers = {a["purchaseOrderNumber"] for a in body["acknowledgements"]}
    return _accepted(request, "submitAcknowledgement", numbers)


HANDLERS = {
    "getPurchaseOrders": get_purchase_orders,
    "getPurchaseOrder": get_purchase_order,
    "submitAcknowledgement": submit_acknowledgement,
}
