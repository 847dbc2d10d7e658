"""Vendor Invoices API (``vendorInvoices`` v1, "Retail Procurement Payments"): invoices.

Application role: Amazon Fulfillment (retail procurement). Usage plan (the model's
description): 10 requests per second, burst 10. The transaction is a retail one
(:meth:`~streams.adapters.spapi.transactions.TransactionsApi.get_transaction`).
"""

from __future__ import annotations

from typing import Any

from streams.adapters.spapi.transport import Transport

SUBMIT = "submitInvoices"
PATHS = {SUBMIT: "/vendor/payments/v1/invoices"}


class VendorInvoicesApi(Transport):
    async def submit_invoices(self, invoices: list[dict[str, Any]]) -> str:
        """Send ``Invoice`` objects (invoices or credit notes); returns the transactionId."""
        return await self._submit(SUBMIT, PATHS[SUBMIT], {"invoices": invoices}, invoices)
