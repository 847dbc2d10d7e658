"""The sandbox's DF Transaction Status API (``vendorDirectFulfillmentTransactions``).

Amazon answers a transaction id only on the API its submission belongs to: Direct
Fulfillment POSTs (inventory, DF acknowledgements and shipping here) on this one, in its ``v1`` and
``2021-12-28`` versions; acknowledgements and ASNs on the retail ``getTransaction``. Asking
the wrong API is a 404 here, so a client that mixes them up fails its tests.

Response shapes follow Amazon's models: ``v1`` wraps the status in ``payload``
(``GetTransactionResponse``), ``2021-12-28`` does not (``TransactionStatus``); errors are
``{"errors": [...]}`` in both.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from streams.sandbox.amazon.state import STATE, _error, _errors, _json

V1 = "getTransactionStatus"
V2021 = "getTransactionStatus.v2021_12_28"
# route name (the sandbox's rate-limit and recording key) -> (method, path)
OPERATIONS: dict[str, tuple[str, str]] = {
    V1: ("GET", "/vendor/directFulfillment/transactions/v1/transactions/{transactionId}"),
    V2021: (
        "GET",
        "/vendor/directFulfillment/transactions/2021-12-28/transactions/{transactionId}",
    ),
}
# submissions whose transactions are Direct Fulfillment ones
DF_SUBMISSIONS = frozenset(
    {
        "submitInventoryUpdate",
        "submitAcknowledgement.df",  # df_orders.ACK
        "submitShipmentConfirmations",  # df_shipping
        "submitShipmentStatusUpdates",
        "submitInvoice",  # df_payments
    }
)


def is_df(operation: str) -> bool:
    return operation in DF_SUBMISSIONS


def status_of(created: float, errors: list[dict[str, str]] | None, processing_s: float,
              transaction_id: str) -> dict[str, Any]:  # fmt: skip
    """A ``Transaction``: Processing for ``processing_s``, then Success or Failure."""
    status: dict[str, Any] = {"transactionId": transaction_id, "status": "Processing"}
    if time.monotonic() - created >= processing_s:
        status["status"] = "Failure" if errors else "Success"
        if errors:
            status["errors"] = errors
    return status


async def get_transaction_status(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tid = request.match_info["transactionId"]
    tx = state.transactions.get(tid)
    if tx is None or not is_df(tx.operation):
        missing = _error(
            "NotFound", "The resource specified does not exist.", f"transactionId {tid}"
        )
        return _errors(request, 404, [missing])
    status = status_of(tx.created, tx.errors, state.config.transaction_processing_s, tid)
    v1 = request.match_info.route.name == V1
    body = {"payload": {"transactionStatus": status}} if v1 else {"transactionStatus": status}
    return _json(request, 200, body)


HANDLERS = {V1: get_transaction_status, V2021: get_transaction_status}
