"""How the worker's state of an entry disagrees with commercetools, and the change
notification that makes the ingest path re-read it (pure: no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.adapters.codecs import utc_iso
from streams.domain.ctmessages import INVENTORY
from streams.domain.inventory import SkuState
from streams.domain.inventory_commands import entry_channel


@dataclass(frozen=True)
class Difference:
    sku: str
    channel: str
    entry_id: str
    ct_available: int | None  # None: the entry is gone from commercetools
    state_available: int | None  # None: the state does not know the entry
    ct_version: int | None
    state_version: int | None
    reason: str
    # the ingest path can repair it (the state is behind, or knows a wrong entry); a state
    # AHEAD of commercetools (same or newer version, other figures) needs a person
    repairable: bool = True


@dataclass
class ResyncReport:
    entries: int = 0
    skus_in_state: int = 0
    differences: list[Difference] = field(default_factory=list)
    published: int = 0

    @property
    def repairable(self) -> list[Difference]:
        return [d for d in self.differences if d.repairable]


def compare_entry(entry: dict[str, Any], state: SkuState | None) -> Difference | None:
    """How ``state`` disagrees with one entry as commercetools returned it, if it does."""
    sku = str(entry["sku"])
    ch = entry_channel(entry)
    eid = str(entry["id"])
    version = int(entry["version"])
    available = int(entry["availableQuantity"])
    on_stock = int(entry["quantityOnStock"])
    cur = state.channels.get(ch) if state is not None else None
    if cur is None:
        return Difference(sku, ch, eid, available, None, version, None, "missing in state")

    def differs(reason: str, repairable: bool = True) -> Difference:
        assert cur is not None
        return Difference(
            sku, ch, eid, available, cur.available, version, cur.version, reason, repairable
        )

    if cur.entry_id != eid:
        return differs(f"state holds entry {cur.entry_id}")
    if cur.available == available and cur.on_stock == on_stock:
        return None
    if cur.version < version:
        return differs("quantity differs")
    return differs("state not behind commercetools but shows other figures", repairable=False)


def resource_updated(entry: dict[str, Any], project_key: str, now: float) -> dict[str, Any]:
    """The change notification commercetools would send for this entry (Platform format)."""
    return {
        "notificationType": "ResourceUpdated",
        "projectKey": project_key,
        "resource": {"typeId": INVENTORY, "id": str(entry["id"])},
        "resourceUserProvidedIdentifiers": {"sku": str(entry["sku"])},
        "version": int(entry["version"]),
        "modifiedAt": utc_iso(now),
    }


def resource_deleted(d: Difference, project_key: str, now: float) -> dict[str, Any]:
    # the state's own version: the ingest applies a delete that is not older than it knows
    return {
        "notificationType": "ResourceDeleted",
        "projectKey": project_key,
        "resource": {"typeId": INVENTORY, "id": d.entry_id},
        "resourceUserProvidedIdentifiers": {"sku": d.sku},
        "version": d.state_version or 0,
        "modifiedAt": utc_iso(now),
    }
