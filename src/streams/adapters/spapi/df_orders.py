"""Direct Fulfillment Orders API (``vendorDirectFulfillmentOrders`` 2021-12-28).

Application role: Direct to Consumer Shipping (Restricted). ``getOrders``/``getOrder``
return the customer's ship-to address, so they are called with a Restricted Data Token
(:mod:`.tokens`). Responses of this version carry no ``payload`` wrapper. The
acknowledgement's transaction is a Direct Fulfillment one (:meth:`get_df_transaction`).
Usage plans (the model's descriptions): 10/s, burst 10, for each operation.

Operation names used for rate limits and metrics: ``getOrders``, ``getOrder`` and
``submitAcknowledgement.df`` (the retail acknowledgement has the same operationId).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from streams.adapters.spapi.orders import _iso, check_window
from streams.adapters.spapi.tokens import DF_ORDERS_PATH, TokensApi
from streams.adapters.spapi.validation import checked

API = "df-orders"
ACK = "submitAcknowledgement.df"
PATHS = {
    "getOrders": DF_ORDERS_PATH,
    "getOrder": DF_ORDERS_PATH + "/{}",
    ACK: "/vendor/directFulfillment/orders/2021-12-28/acknowledgements",
}
DF_STATUSES = ("NEW", "SHIPPED", "ACCEPTED", "CANCELLED")


@dataclass(frozen=True)
class DfOrdersPage:
    orders: list[dict[str, Any]]
    next_token: str | None


def orders_query(
    *,
    created_after: datetime | str,
    created_before: datetime | str,
    ship_from_party_id: str | None = None,
    status: str | None = None,
    limit: int = 100,
    sort_order: str | None = None,
    include_details: bool = True,
) -> dict[str, str]:
    """``getOrders`` query parameters; ValueError/DateWindowError before any request."""
    if not 1 <= limit <= 100:
        raise ValueError("getOrders: limit must be between 1 and 100")
    if status is not None and status not in DF_STATUSES:
        raise ValueError(f"getOrders: status must be one of {DF_STATUSES}")
    if sort_order is not None and sort_order not in ("ASC", "DESC"):
        raise ValueError("getOrders: sort_order must be ASC or DESC")
    check_window("created", created_after, created_before)
    params = {
        "createdAfter": _iso(created_after),
        "createdBefore": _iso(created_before),
        "limit": str(limit),
    }
    optional = {"shipFromPartyId": ship_from_party_id, "status": status, "sortOrder": sort_order}
    params.update({k: v for k, v in optional.items() if v is not None})
    if not include_details:
        params["includeDetails"] = "false"
    return params


class DfOrdersApi(TokensApi):
    async def df_get_orders_page(
        self, params: dict[str, str], next_token: str | None = None
    ) -> DfOrdersPage:
        """One page of ``getOrders`` (``params`` from :func:`orders_query`)."""
        query = {**params, "nextToken": next_token} if next_token else params
        data = await self._call(
            "getOrders", "GET", PATHS["getOrders"], params=query, access=self.df_orders_rdt()
        )
        token = (data.get("pagination") or {}).get("nextToken")
        return DfOrdersPage(list(data.get("orders") or []), token or None)

    async def df_get_orders(self, **query: Any) -> AsyncIterator[dict[str, Any]]:
        """Every matching DF ``Order``, following ``nextToken`` (arguments of
        :func:`orders_query`)."""
        params = orders_query(**query)
        token: str | None = None
        while True:
            page = await self.df_get_orders_page(params, token)
            for order in page.orders:
                yield order
            if not page.next_token:
                return
            token = page.next_token

    async def df_get_order(self, purchase_order_number: str) -> dict[str, Any]:
        path = PATHS["getOrder"].format(quote(purchase_order_number, safe=""))
        data = await self._call("getOrder", "GET", path, access=self.df_orders_rdt())
        return data

    async def df_submit_acknowledgement(self, body: dict[str, Any]) -> str:
        """Send a ``SubmitAcknowledgementRequest`` (``{"orderAcknowledgements": [...]}``),
        checked against Amazon's model first; returns the DF transactionId."""
        checked(API, "SubmitAcknowledgementRequest", body)
        return await self._submit(ACK, PATHS[ACK], body, body.get("orderAcknowledgements"))
