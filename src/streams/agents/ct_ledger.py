"""The command ledger's custom Type in commercetools: created once, our field added to the
Types inventory entries may carry (or those refused), checked on every entry a command
touches. No Kafka here; :class:`~streams.agents.ct_command_applier.CommandApplier` uses it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from streams.adapters.commercetools import CommercetoolsClient, CommercetoolsError
from streams.domain.inventory_commands import (
    LEDGER_FIELD,
    ledger_field_definition,
    ledger_host,
    ledger_type_draft,
    refusal,
)

log = logging.getLogger(__name__)


class LedgerRefused(Exception):
    """The entry's custom Type cannot hold the ledger and may not be changed (see reason)."""


class LedgerTypes:
    def __init__(
        self, client: CommercetoolsClient, *, type_key: str, host_types: Sequence[str] = ()
    ) -> None:
        self.client = client
        self.type_key = type_key
        self.host_types = tuple(host_types)
        self._types: dict[str, dict[str, Any]] = {}  # Type id -> Type, as last read or updated
        self._ready = False
        self._ready_lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Our Type was deleted: create it again before the next command."""
        self._ready = False

    async def ensure(self) -> None:
        """Create the ledger Type once (idempotent; also adds our field to an existing one)."""
        if self._ready:
            return
        async with self._ready_lock:
            if self._ready:
                return
            found = await self.client.get_type_by_key(self.type_key)
            if found is None:
                try:
                    await self.client.create_type(ledger_type_draft(self.type_key))
                except CommercetoolsError as exc:
                    # another worker created it first (DuplicateField) - fine, read it back
                    if exc.status != 400:
                        raise
                    if await self.client.get_type_by_key(self.type_key) is None:
                        raise
            elif not any(f.get("name") == LEDGER_FIELD for f in found.get("fieldDefinitions", [])):
                await self._add_ledger_field(found)
            await self._check_hosts()
            self._ready = True

    async def _add_ledger_field(self, type_: dict[str, Any]) -> dict[str, Any]:
        action = {"action": "addFieldDefinition", "fieldDefinition": ledger_field_definition()}
        try:
            updated = await self.client.update_type(
                str(type_["id"]), int(type_["version"]), [action]
            )
        except CommercetoolsError as exc:
            # added meanwhile (another worker: 400 DuplicateField, or 409): read it back
            if exc.status not in (400, 409):
                raise
            fresh = await self.client.get_type(str(type_["id"]))
            if fresh is None or ledger_host(fresh, self.type_key, ()) != "ok":
                raise
            updated = fresh
        log.info("added the ledger field %s to custom Type %s", LEDGER_FIELD, type_.get("key"))
        self._types[str(updated["id"])] = updated
        return updated

    async def _check_hosts(self) -> None:
        """At start-up: every Type inventory entries may carry either holds the ledger field,
        gets it (a Type named in ``host_types``), or is reported: its entries' commands
        would be refused."""
        for t in await self.client.types_for("inventory-entry"):
            decision = ledger_host(t, self.type_key, self.host_types)
            if decision == "add-field":
                t = await self._add_ledger_field(t)
            elif decision == "refuse":
                log.error("%s", refusal(t))
            self._types[str(t["id"])] = t
        for key in self.host_types:
            if await self.client.get_type_by_key(key) is None:
                log.error("STREAMS_CT_LEDGER_HOST_TYPES names Type %r, which does not exist", key)

    async def check(self, entry: dict[str, Any]) -> None:
        """Make sure the entry's custom Type (if any) holds the ledger field, or refuse."""
        custom = entry.get("custom")
        ref = custom.get("type") if isinstance(custom, dict) else None
        if not isinstance(ref, dict) or not ref.get("id"):
            return  # no Type yet: the plan sets ours
        type_id = str(ref["id"])
        t = self._types.get(type_id)
        if t is None:
            t = await self.client.get_type(type_id)
            if t is None:
                return  # deleted meanwhile: the update says what is wrong
            self._types[type_id] = t
        decision = ledger_host(t, self.type_key, self.host_types)
        if decision == "add-field":
            await self._add_ledger_field(t)
        elif decision == "refuse":
            self._types.pop(type_id, None)  # read again next time: someone may add the field
            raise LedgerRefused(refusal(t, str(entry.get("id"))))
