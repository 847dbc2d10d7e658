"""Direct Fulfillment Inventory API (``vendorDirectFulfillmentInventory`` v1).

Application role: Direct to Consumer Shipping (Restricted), Amazon's role for Direct
Fulfillment. Its transactions are Direct Fulfillment ones, checked
on the DF Transaction Status API (:meth:`get_df_transaction`), not the retail one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from streams.adapters.spapi.transport import Transport

PATHS = {
    "submitInventoryUpdate": "/vendor/directFulfillment/inventory/v1/warehouses/{}/items",
}


class DfInventoryApi(Transport):
    async def submit_inventory_update(
        self,
        warehouse_id: str,
        items: list[dict[str, Any]],
        is_full_update: bool = False,
        selling_party: str | None = None,
    ) -> str:
        """Direct Fulfillment inventory feed for one warehouse; returns the transactionId.

        A full update (``is_full_update``) marks every item not listed as unavailable.
        """
        body = {
            "inventory": {
                "sellingParty": {"partyId": selling_party or self.selling_party},
                "isFullUpdate": is_full_update,
                "items": items,
            }
        }
        path = PATHS["submitInventoryUpdate"].format(quote(warehouse_id, safe=""))
        # an empty full feed is meaningful (nothing is available); an empty partial one is not
        return await self._submit("submitInventoryUpdate", path, body, items or is_full_update)
