"""Ports: what the domain and agents need from outside systems, as typing Protocols.

Adapters implement them for real (``streams.adapters``); tests use hand-written fakes.
"""

from __future__ import annotations

from typing import Any, Protocol


class InventoryEntryReader(Protocol):
    """Reads one commercetools InventoryEntry by id, as the API's JSON (None when gone)."""

    async def get_inventory_entry(self, entry_id: str) -> dict[str, Any] | None: ...
