"""Retail shipment confirmations (ASNs), the DF inventory feed and the retail transaction
status: submissions Amazon processes asynchronously."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from streams.adapters.amazon_models import validate
from streams.sandbox.amazon import df_transactions
from streams.sandbox.amazon.state import (
    BODY,
    STATE,
    _accepted,
    _error,
    _errors,
    _json,
    _problems_to_errors,
)

OPERATIONS: dict[str, tuple[str, str]] = {
    "getTransaction": ("GET", "/vendor/transactions/v1/transactions/{transactionId}"),
    "SubmitShipmentConfirmations": ("POST", "/vendor/shipping/v1/shipmentConfirmations"),
    "submitInventoryUpdate": (
        "POST",
        "/vendor/directFulfillment/inventory/v1/warehouses/{warehouseId}/items",
    ),
}


async def submit_shipment_confirmations(request: web.Request) -> web.Response:
    body = request[BODY]
    problems = validate("vendorShipments", "SubmitShipmentConfirmationsRequest", body)
    if not problems and not body.get("shipmentConfirmations"):
        problems.append("shipmentConfirmations: at least one shipment confirmation is required")
    if problems:
        return _errors(request, 400, _problems_to_errors(problems))
    numbers: set[str] = set()
    for sc in body["shipmentConfirmations"]:
        containers = [*sc.get("cartons", []), *sc.get("pallets", [])]
        items = [*sc["shippedItems"], *(i for c in containers for i in c.get("items", []))]
        numbers.update(
            n for i in items if (n := (i.get("itemDetails") or {}).get("purchaseOrderNumber"))
        )
    return _accepted(request, "SubmitShipmentConfirmations", numbers)


async def submit_inventory_update(request: web.Request) -> web.Response:
    state = request.app[STATE]
    warehouse = request.match_info["warehouseId"]
    if state.config.warehouses and warehouse not in state.config.warehouses:
        return _errors(request, 400, [_error("InvalidInput", "Invalid warehouseId.", warehouse)])
    body = request[BODY]
    problems = validate("vendorDirectFulfillmentInventory", "SubmitInventoryUpdateRequest", body)
    if not problems:
        if "inventory" not in body:
            problems.append("inventory: inventory is required")
        for j, item in enumerate((body.get("inventory") or {}).get("items", [])):
            if not (item.get("buyerProductIdentifier") or item.get("vendorProductIdentifier")):
                problems.append(
                    f"inventory/items/{j}: either buyerProductIdentifier or "
                    "vendorProductIdentifier should be submitted"
                )
    if problems:
        return _errors(request, 400, _problems_to_errors(problems))
    return _accepted(request, "submitInventoryUpdate", set())


async def get_transaction(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tid = request.match_info["transactionId"]
    tx = state.transactions.get(tid)
    if tx is None or df_transactions.is_df(tx.operation):  # DF ones: only on the DF API
        return _errors(
            request,
            404,
            [_error("NotFound", "The resource specified does not exist.", f"transactionId {tid}")],
        )
    status: dict[str, Any] = {"transactionId": tid, "status": "Processing"}
    if time.monotonic() - tx.created >= state.config.transaction_processing_s:
        status["status"] = "Failure" if tx.errors else "Success"
        if tx.errors:
            status["errors"] = tx.errors
    return _json(request, 200, {"payload": {"transactionStatus": status}})


HANDLERS = {
    "getTransaction": get_transaction,
    "SubmitShipmentConfirmations": submit_shipment_confirmations,
    "submitInventoryUpdate": submit_inventory_update,
}
