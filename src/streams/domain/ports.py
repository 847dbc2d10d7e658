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
