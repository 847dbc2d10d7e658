"""``ct.inventory-commands``: reservations and releases, and the ledger that applies each once.

A command changes one inventory entry (sku, supply channel) in commercetools by ``quantity``
eaches: ``reserve`` lowers ``quantityOnStock``, ``release`` raises it. Exactly once, without
a transaction spanning Kafka and commercetools, works like this: every entry carries a
custom field (a Set of String) naming the commands already applied to it, and a command is
applied as ONE versioned update that both changes the quantity and adds its id to that set.
The marker and the change commit together or not at all, so a redelivery (crash before the
offset commit, rebalance, a second worker) reads the entry, finds its id and does nothing;
a concurrent writer makes the versioned update fail with 409, and the plan is made again
from the fresh entry. This module is the pure part: parsing and planning that update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streams.domain.contract_types import (
    AwareDatetime,
    BeforeValidator,
    JsonInt,
    JsonStr,
    date_time_schema,
    iso_text,
)
from streams.domain.ctmessages import NO_CHANNEL, BadRecord

LEDGER_FIELD = "streamsAppliedCommands"
LEDGER_TYPE_NAME = "Streams: commands applied to this inventory entry"

Action = Literal["reserve", "release"]
_STAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
CreatedAt = Annotated[AwareDatetime, BeforeValidator(iso_text(_STAMP)), date_time_schema(_STAMP)]


class InventoryCommand(BaseModel):
    """One record of ``ct.inventory-commands``; its schema in ``schemas/`` is generated from it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    commandId: JsonStr = Field(
        min_length=1,
        max_length=256,
        description="Unique per command, e.g. reserve:PO123456#1:1; a retry of the same command "
        "must reuse it",
    )
    action: Action
    sku: JsonStr = Field(min_length=1, max_length=256)
    supplyChannel: JsonStr = Field(
        max_length=256,
        description='commercetools channel id of the entry; "" = the SKU\'s channel-less entry',
    )
    quantity: JsonInt = Field(gt=0, le=1_000_000_000, description="eaches")
    purchaseOrderNumber: JsonStr | None = Field(None, max_length=64)
    itemSequenceNumber: JsonStr | None = Field(None, max_length=64)
    createdAt: CreatedAt

    @property
    def delta(self) -> int:
        """The change to ``quantityOnStock``."""
        return -self.quantity if self.action == "reserve" else self.quantity


def parse_command(raw: bytes | None, key: bytes | None) -> InventoryCommand:
    """Decode and validate one record. Raises :class:`BadRecord` with the reason."""
    if raw is None:
        raise BadRecord("empty value (tombstone) on ct.inventory-commands")
    if len(raw) > 900_000:  # as streams.adapters.codecs.MAX_RECORD_BYTES (domain: no import)
        raise BadRecord(f"oversize record: {len(raw)} bytes")
    try:
        cmd = InventoryCommand.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise BadRecord(f"not JSON: {exc.errors()[0]['msg']}") from None
        parts = []
        for e in exc.errors()[:5]:
            loc = ".".join(str(p) for p in e["loc"]) or "(root)"
            parts.append(f"{loc}: {e['msg']}")
        raise BadRecord("invalid command: " + "; ".join(parts)) from None
    if not key:
        raise BadRecord("record has no key (the key must be the SKU)")
    if key != cmd.sku.encode():
        raise BadRecord(f"key {key.decode(errors='replace')!r} differs from value sku {cmd.sku!r}")
    return cmd


# --- the ledger on the entry ----------------------------------------------------------------
# Elements are "<entry version when applied>:<commandId>". A Set has no order on the API, so
# the version prefix is what tells the newest ids from the oldest when the set is trimmed.


def ledger_elements(entry: dict[str, Any]) -> list[str]:
    custom = entry.get("custom")
    if not isinstance(custom, dict):
        return []
    value = (custom.get("fields") or {}).get(LEDGER_FIELD)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _split(element: str) -> tuple[int, str]:
    prefix, sep, command_id = element.partition(":")
    if sep and prefix.isdigit():
        return int(prefix), command_id
    return -1, element  # not ours: oldest, and its whole text is the id


def applied_ids(entry: dict[str, Any]) -> set[str]:
    """Command ids the entry says are already applied to it."""
    return {_split(e)[1] for e in ledger_elements(entry)}


def entry_channel(entry: dict[str, Any]) -> str:
    ref = entry.get("supplyChannel")
    return str(ref.get("id") or "") if isinstance(ref, dict) else NO_CHANNEL


@dataclass(frozen=True)
class Plan:
    """The update that applies ``todo`` to an entry, read at ``version``."""

    version: int
    actions: list[dict[str, Any]]
    todo: list[InventoryCommand]
    duplicates: list[InventoryCommand] = field(default_factory=list)
    new_quantity: int | None = None


def plan_update(
    entry: dict[str, Any],
    commands: Sequence[InventoryCommand],
    *,
    type_key: str,
    keep: int,
    relative: bool = False,
) -> Plan:
    """One versioned update applying every command not yet applied to ``entry``.

    ``relative`` (the worker's default, ``STREAMS_CT_QUANTITY_RELATIVE``) uses
    ``addQuantity``/``removeQuantity`` with the net change: on a real project that stays right
    when order-driven stock changes reach the resource late (commercetools: up to 10 s)
    without a new version. Otherwise the quantity is set with ``changeQuantity``, absolute,
    computed from this read: versioned (a concurrent change makes it fail with 409 and it is
    planned again), but blind to a change that lands without a new version.
    """
    done = applied_ids(entry)
    todo: list[InventoryCommand] = []
    dups: list[InventoryCommand] = []
    for c in commands:
        if c.commandId in done:
            dups.append(c)
        else:
            done.add(c.commandId)  # a second copy within the same batch is a duplicate too
            todo.append(c)
    version = int(entry["version"])
    if not todo:
        return Plan(version, [], [], dups)
    elements = ledger_elements(entry) + [f"{version}:{c.commandId}" for c in todo]
    # newest last; the ids just added always survive (callers send at most keep // 2)
    elements = sorted(set(elements), key=lambda e: _split(e))[-keep:]
    quantity = int(entry["quantityOnStock"]) + sum(c.delta for c in todo)  # as this read shows
    if isinstance(entry.get("custom"), dict):
        # the entry has a custom type (ours, or one an operator extended with our field)
        ledger: dict[str, Any] = {
            "action": "setCustomField",
            "name": LEDGER_FIELD,
            "value": elements,
        }
    else:
        ledger = {
            "action": "setCustomType",
            "type": {"typeId": "type", "key": type_key},
            "fields": {LEDGER_FIELD: elements},
        }
    actions = [ledger]
    net = sum(c.delta for c in todo)
    if not relative:
        actions.append({"action": "changeQuantity", "quantity": quantity})
    elif net:
        kind = "addQuantity" if net > 0 else "removeQuantity"
        actions.append({"action": kind, "quantity": abs(net)})
    return Plan(version, actions, todo, dups, quantity)


def ledger_type_draft(type_key: str) -> dict[str, Any]:
    """The commercetools Type holding the ledger field on inventory entries."""
    return {
        "key": type_key,
        "name": {"en": LEDGER_TYPE_NAME},
        "description": {
            "en": "Written by the vc-ct-streams worker: ids of ct.inventory-commands already "
            "applied, so a redelivered command is not applied twice. Do not edit."
        },
        "resourceTypeIds": ["inventory-entry"],
        "fieldDefinitions": [ledger_field_definition()],
    }


def ledger_field_definition() -> dict[str, Any]:
    return {
        "name": LEDGER_FIELD,
        "label": {"en": "Applied stream commands"},
        "required": False,
        "type": {"name": "Set", "elementType": {"name": "String"}},
        "inputHint": "SingleLine",
    }


# --- entries that already carry another custom Type -------------------------------------------
# An entry holds ONE custom Type. An entry created with an operator's own Type can keep the
# ledger only if that Type has our field: the worker adds it (addFieldDefinition) to the Types
# the operator names (STREAMS_CT_LEDGER_HOST_TYPES) and refuses, with this reason, the rest.
HostDecision = Literal["ok", "add-field", "refuse"]


def ledger_host(type_: dict[str, Any], ledger_key: str, hosts: Sequence[str]) -> HostDecision:
    """What the ledger needs on an entry whose custom Type is ``type_``."""
    if any(f.get("name") == LEDGER_FIELD for f in type_.get("fieldDefinitions") or []):
        return "ok"
    key = type_.get("key")
    return "add-field" if key == ledger_key or key in hosts else "refuse"


def refusal(type_: dict[str, Any], entry_id: str | None = None) -> str:
    """Why commands cannot be applied to entries of Type ``type_`` (what to change)."""
    key = type_.get("key") or type_.get("id")
    on = f"inventory entry {entry_id}" if entry_id else "inventory entries"
    return (
        f"{on} carry custom Type {key!r}, which has no field {LEDGER_FIELD!r} (the "
        "exactly-once ledger of ct.inventory-commands) and an entry holds one Type only: set "
        f"STREAMS_CT_LEDGER_HOST_TYPES={key} so the worker adds the field to that Type "
        "(addFieldDefinition), or add it yourself (Set of String), then replay the DLQ"
    )
