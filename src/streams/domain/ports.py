"""Ports: what the domain and agents need from outside systems, as typing Protocols.

Adapters implement them for real (``streams.adapters``); tests use hand-written fakes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol


class InventoryEntryReader(Protocol):
    """Reads one commercetools InventoryEntry by id, as the API's JSON (None when gone)."""

    async def get_inventory_entry(self, entry_id: str) -> dict[str, Any] | None: ...


class OrderReader(Protocol):
    """Reads one commercetools Order by id, as the API's JSON (None when gone)."""

    async def get_order(self, order_id: str) -> dict[str, Any] | None: ...


class InventoryQuery(Protocol):
    """Reads inventory entries in bulk: of many SKUs at once, or changed within a time range
    (ISO-8601 UTC bounds, both inclusive)."""

    async def inventory_of_skus(self, skus: Sequence[str]) -> list[dict[str, Any]]: ...

    def inventory_modified_between(self, start: str, end: str) -> AsyncIterator[dict[str, Any]]: ...


class DfSpApi(Protocol):
    """The SP-API calls of the Direct Fulfillment order flow (``SpApiClient`` implements
    them): each DF POST takes the whole request body and returns Amazon's transactionId,
    checked on the DF Transaction Status API."""

    async def df_submit_acknowledgement(self, body: dict[str, Any]) -> str: ...

    async def df_submit_shipment_confirmations(self, body: dict[str, Any]) -> str: ...

    async def df_submit_shipment_status_updates(self, body: dict[str, Any]) -> str: ...

    async def get_df_transaction(self, transaction_id: str) -> dict[str, Any]: ...
