"""Inventory entry id -> SKU, for deliveries that name only the entry.

commercetools' ``ResourceDeleted`` notification carries ``resourceUserProvidedIdentifiers``
only when the resource has user-provided identifiers, and a ``PayloadNotIncluded``
``InventoryEntryDeleted`` message carries no SKU at all; the entry is gone, so it cannot be
read back either. The SKU agent keeps the ``entries`` GlobalTable (an entry belongs to one
SKU, so one partition writes it: one record when an entry first appears, a tombstone when
it is deleted) and the ingest stage places such a delete by it.
"""

from __future__ import annotations

from typing import Any

from streams.domain.ctmessages import BadRecord


def entry_sku(entries: Any, entry_id: str) -> str:
    """The SKU of inventory entry ``entry_id``; :class:`BadRecord` when it is not known."""
    raw = entries.get(entry_id.encode()) if entries is not None else None
    if not raw:
        raise BadRecord(
            f"delete of inventory-entry {entry_id} names no sku and the entry is not in the "
            "entry index (never seen by this product, or last changed before it was kept); "
            "the periodic reconciliation removes it from the state"
        )
    return bytes(raw).decode()
