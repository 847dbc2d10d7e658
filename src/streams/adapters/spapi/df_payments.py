"""Direct Fulfillment Payments API (``vendorDirectFulfillmentPayments`` v1): invoices.

Application role: Direct to Consumer Shipping (Restricted). ``submitInvoice`` answers a
``TransactionReference`` inside a ``payload`` (a v1 API); the transaction is a Direct
Fulfillment one (:meth:`get_df_transaction`). Usage plan (the model's description): 10
requests per second, burst 10, the client's default.
"""

from __future__ import annotations

from typing import Any

from streams.adapters.spapi.transport import Transport
from streams.adapters.spapi.validation import checked

API = "df-payments"
SUBMIT = "submitInvoice"
PATHS = {SUBMIT: "/vendor/directFulfillment/payments/v1/invoices"}


class DfPaymentsApi(Transport):
    async def df_submit_invoice(self, body: dict[str, Any]) -> str:
        """Send a ``SubmitInvoiceRequest`` (``{"invoices": [InvoiceDetail, ...]}``), checked
        against Amazon's model first; returns the DF transactionId."""
        checked(API, "SubmitInvoiceRequest", body)
        return await self._submit(SUBMIT, PATHS[SUBMIT], body, body.get("invoices"))
