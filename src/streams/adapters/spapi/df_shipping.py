"""Direct Fulfillment Shipping API (``vendorDirectFulfillmentShipping`` 2021-12-28):
shipment confirmations and shipment status updates.

Application role: Direct to Consumer Shipping (Restricted). Both answer a
``TransactionReference`` (no payload wrapper); the transaction is a Direct Fulfillment one
(:meth:`get_df_transaction`). Usage plans (the model's descriptions): 10/s, burst 10.
Shipping labels, packing slips, customer invoices and container labels are not used.
"""

from __future__ import annotations

from typing import Any

from streams.adapters.spapi.transport import Transport
from streams.adapters.spapi.validation import checked

API = "df-shipping"
BASE = "/vendor/directFulfillment/shipping/2021-12-28"
CONFIRM = "submitShipmentConfirmations"
STATUS = "submitShipmentStatusUpdates"
PATHS = {CONFIRM: BASE + "/shipmentConfirmations", STATUS: BASE + "/shipmentStatusUpdates"}


class DfShippingApi(Transport):
    async def df_submit_shipment_confirmations(self, body: dict[str, Any]) -> str:
        """Send a ``SubmitShipmentConfirmationsRequest`` (``{"shipmentConfirmations": [...]}``),
        checked against Amazon's model first; returns the DF transactionId."""
        checked(API, "SubmitShipmentConfirmationsRequest", body)
        return await self._submit(CONFIRM, PATHS[CONFIRM], body, body.get("shipmentConfirmations"))

    async def df_submit_shipment_status_updates(self, body: dict[str, Any]) -> str:
        """Send a ``SubmitShipmentStatusUpdatesRequest`` (``{"shipmentStatusUpdates": [...]}``),
        checked against Amazon's model first; returns the DF transactionId."""
        checked(API, "SubmitShipmentStatusUpdatesRequest", body)
        return await self._submit(STATUS, PATHS[STATUS], body, body.get("shipmentStatusUpdates"))
