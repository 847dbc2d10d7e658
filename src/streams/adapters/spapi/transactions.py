"""The two Transaction Status APIs, one per family of submissions.

* retail, Vendor Transaction Status (``vendorTransactionStatus`` v1, ``getTransaction``):
  acknowledgements and shipment confirmations; role Amazon Fulfillment (or Inventory and
  Order Tracking, NA and EU);
* Direct Fulfillment (``vendorDirectFulfillmentTransactions``, ``getTransactionStatus``):
  every Direct Fulfillment POST (inventory updates today; DF orders and shipping use it
  too); role Direct to Consumer Shipping (Restricted); a usage plan of its own (10/s,
  burst 10). Version ``v1`` answers ``{"payload": {"transactionStatus": ...}}``, version
  ``2021-12-28`` answers ``{"transactionStatus": ...}`` without the payload wrapper.

Amazon answers a transaction id only on the API its submission belongs to.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

from streams.adapters.spapi.errors import TransactionFailed
from streams.adapters.spapi.transport import Transport

RETAIL = "getTransaction"
DF = "getTransactionStatus"
DF_VERSIONS = ("v1", "2021-12-28")
PATHS = {
    RETAIL: "/vendor/transactions/v1/transactions/{}",
    DF: "/vendor/directFulfillment/transactions/{version}/transactions/{}",
}


def df_transaction_path(version: str, transaction_id: str) -> str:
    if version not in DF_VERSIONS:
        raise ValueError(f"DF transactions API version must be one of {DF_VERSIONS}")
    return PATHS[DF].format(quote(transaction_id, safe=""), version=version)


class TransactionsApi(Transport):
    df_transactions_version = "v1"

    async def get_transaction(self, transaction_id: str) -> dict[str, Any]:
        """A retail ``Transaction`` (``transactionId``, ``status``, maybe ``errors``)."""
        path = PATHS[RETAIL].format(quote(transaction_id, safe=""))
        data = await self._call(RETAIL, "GET", path)
        status: dict[str, Any] = (data.get("payload") or {}).get("transactionStatus") or {}
        return status

    async def get_df_transaction(self, transaction_id: str) -> dict[str, Any]:
        """A Direct Fulfillment ``Transaction`` (same fields as the retail one)."""
        version = self.df_transactions_version
        data = await self._call(DF, "GET", df_transaction_path(version, transaction_id))
        outer = data.get("payload") if version == "v1" else data
        status: dict[str, Any] = (outer or {}).get("transactionStatus") or {}
        return status

    async def wait_for_transaction(
        self,
        transaction_id: str,
        *,
        direct_fulfillment: bool = False,
        timeout_s: float = 900.0,
        poll_s: float = 5.0,
        raise_on_failure: bool = True,
    ) -> dict[str, Any]:
        """Poll until the transaction leaves ``Processing`` or ``timeout_s`` passes, on the DF
        API when ``direct_fulfillment`` (the submission was a Direct Fulfillment one).

        Returns the last status seen; Amazon documents that acknowledgements may stay
        ``Processing`` for good (still Processing after 15 minutes means success), so callers
        must treat a ``Processing`` result at the timeout as accepted.
        """
        check = self.get_df_transaction if direct_fulfillment else self.get_transaction
        deadline = time.monotonic() + timeout_s
        while True:
            status = await check(transaction_id)
            if status.get("status") != "Processing" or time.monotonic() + poll_s > deadline:
                break
            await asyncio.sleep(poll_s)
        if raise_on_failure and status.get("status") == "Failure":
            raise TransactionFailed(transaction_id, self._scrub_errors(status.get("errors") or []))
        return status
