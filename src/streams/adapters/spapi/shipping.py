"""Vendor Shipments API (``vendorShipments`` v1): shipment confirmations (ASNs).

Application role: Amazon Fulfillment (retail procurement).
"""

from __future__ import annotations

from typing import Any

from streams.adapters.spapi.transport import Transport

PATHS = {"SubmitShipmentConfirmations": "/vendor/shipping/v1/shipmentConfirmations"}


class VendorShipmentsApi(Transport):
    async def submit_shipment_confirmations(self, confirmations: list[dict[str, Any]]) -> str:
        """Send ``ShipmentConfirmation`` objects (ASNs); returns Amazon's transactionId (a
        retail transaction: :meth:`get_transaction`)."""
        return await self._submit(
            "SubmitShipmentConfirmations",
            PATHS["SubmitShipmentConfirmations"],
            {"shipmentConfirmations": confirmations},
            confirmations,
        )
