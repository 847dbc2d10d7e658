"""The sandbox's Direct Fulfillment Shipping API (2021-12-28): submitShipmentConfirmations
and submitShipmentStatusUpdates; the API's other operations (labels, packing slips,
customer invoices, container labels) answer 501, as the product does not use them.

Both submissions answer a ``TransactionReference`` (``{"transactionId"}``, no payload
wrapper), checked on the DF Transaction Status API. An order or line the sandbox does not
know ends in a Failure transaction; a confirmed order becomes ``SHIPPED``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from streams.adapters.amazon_models import available, validate
from streams.sandbox.amazon.df_orders import unknown_lines
from streams.sandbox.amazon.state import (
    BODY,
    STATE,
    _error,
    _errors,
    _json,
    _problems_to_errors,
)

API = "df-shipping"
BASE = "/vendor/directFulfillment/shipping/2021-12-28"
CONFIRM = "submitShipmentConfirmations"
STATUS = "submitShipmentStatusUpdates"
NOT_SERVED = {
    "getShippingLabels": ("GET", BASE + "/shippingLabels"),
    "submitShippingLabelRequest": ("POST", BASE + "/shippingLabels"),
    "getShippingLabel": ("GET", BASE + "/shippingLabels/{purchaseOrderNumber}"),
    "createShippingLabels": ("POST", BASE + "/shippingLabels/{purchaseOrderNumber}"),
    "getCustomerInvoices": ("GET", BASE + "/customerInvoices"),
    "getCustomerInvoice": ("GET", BASE + "/customerInvoices/{purchaseOrderNumber}"),
    "getPackingSlips": ("GET", BASE + "/packingSlips"),
    "getPackingSlip": ("GET", BASE + "/packingSlips/{purchaseOrderNumber}"),
    "createContainerLabel": ("POST", BASE + "/containerLabel"),
}
OPERATIONS = {
    CONFIRM: ("POST", BASE + "/shipmentConfirmations"),
    STATUS: ("POST", BASE + "/shipmentStatusUpdates"),
    **NOT_SERVED,
}
# request definition and list field per submission
_REQUESTS = {
    CONFIRM: ("SubmitShipmentConfirmationsRequest", "shipmentConfirmations"),
    STATUS: ("SubmitShipmentStatusUpdatesRequest", "shipmentStatusUpdates"),
}


def _structure(field: str, body: Any) -> list[str]:
    entries = body.get(field) if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries:
        return [f"{field}: at least one entry is required"]
    problems = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("purchaseOrderNumber"), str):
            problems.append(f"{field}/{i}/purchaseOrderNumber: required")
        elif field == "shipmentConfirmations" and not all(
            isinstance(it, dict) and isinstance(it.get("itemSequenceNumber"), int | str)
            for it in e.get("items") or [None]
        ):
            problems.append(f"{field}/{i}/items: each item needs an itemSequenceNumber")
    return problems


async def _submit(request: web.Request, operation: str) -> web.Response:
    state = request.app[STATE]
    body = request[BODY]
    definition, field = _REQUESTS[operation]
    problems = validate(API, definition, body) if available(API) else []
    problems = problems or _structure(field, body)
    if problems:
        return _errors(request, 400, _problems_to_errors(problems))
    entries = body[field]
    errors = [
        e
        for entry in entries
        if (
            e := unknown_lines(
                state.df_orders,
                entry["purchaseOrderNumber"],
                [i["itemSequenceNumber"] for i in entry.get("items") or []],
            )
        )
    ]
    numbers = {e["purchaseOrderNumber"] for e in entries}
    tx = state.new_transaction(operation, numbers, errors or None)
    if tx.errors is None and operation == CONFIRM:
        for number in numbers:
            state.df_orders[number]["orderDetails"]["orderStatus"] = "SHIPPED"
    return _json(request, 202, {"transactionId": tx.transaction_id})


async def submit_shipment_confirmations(request: web.Request) -> web.Response:
    return await _submit(request, CONFIRM)


async def submit_shipment_status_updates(request: web.Request) -> web.Response:
    return await _submit(request, STATUS)


async def not_served(request: web.Request) -> web.Response:
    operation = request.match_info.route.name or "operation"
    return _errors(
        request,
        501,
        [_error("NotImplemented", f"{operation} is not served by this sandbox.")],
    )


HANDLERS = {
    CONFIRM: submit_shipment_confirmations,
    STATUS: submit_shipment_status_updates,
    **{op: not_served for op in NOT_SERVED},
}
