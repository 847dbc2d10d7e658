"""commercetools subscription deliveries -> stock observations (pure parsing, no I/O).

Accepted on ``ct.messages``: the Platform format (``notificationType`` Message /
ResourceCreated / ResourceUpdated / ResourceDeleted), the same wrapped in a CloudEvents
envelope, and bare Messages (as the Messages API returns them). Inventory-entry deliveries
become :class:`StockObservation`; change notifications without a payload become
:class:`NeedsFetch` (the entry is read through a port); messages for other resources or
inventory message types that carry no stock figure are :class:`Ignored`. Anything else is a
:class:`BadRecord` with a reason that names the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from streams.domain.ct_fields import NO_CHANNEL, BadRecord
from streams.domain.ct_fields import channel as _channel
from streams.domain.ct_fields import get as _get
from streams.domain.ct_fields import opt as _opt
from streams.domain.ct_fields import quantity as _quantity
from streams.domain.ctorders import NeedsOrder, OrderEffect, parse_order_message

__all__ = ["NO_CHANNEL", "BadRecord"]  # re-exported: the flows import them from here

INVENTORY = "inventory-entry"
NOTIFICATION_TYPES = frozenset({"Message", "ResourceCreated", "ResourceUpdated", "ResourceDeleted"})
# Inventory message types that carry no new quantity: the QuantitySet/Created next to them do.
INVENTORY_NO_FIGURE = frozenset(
    {
        "InventoryEntryOutOfStock",
        "InventoryEntryReorderPoint",
        "InventoryEntrySafetyStock",
        "InventoryEntryReservationExpirationInMinutesSet",
        "InventoryEntryRestockableInDaysSet",
        "InventoryEntryExpectedDeliverySet",
        "InventoryEntryKeySet",
        "InventoryEntryCustomFieldAdded",
        "InventoryEntryCustomFieldChanged",
        "InventoryEntryCustomFieldRemoved",
        "InventoryEntryCustomTypeSet",
        "InventoryEntryCustomTypeRemoved",
        "InventoryEntryInventoryLimitsSet",
    }
)


@dataclass(frozen=True, slots=True)
class StockObservation:
    """One (sku, channel) entry's state as of ``version`` (``kind='delete'``: it is gone)."""

    sku: str
    channel: str
    entry_id: str
    version: int
    kind: Literal["set", "delete"]
    available: int = 0
    on_stock: int = 0
    msg_id: str | None = None
    seq: int | None = None
    at: str | None = None  # when commercetools made the change

    def to_wire(self) -> dict[str, Any]:
        return {
            "t": "obs",
            "sku": self.sku,
            "ch": self.channel,
            "e": self.entry_id,
            "v": self.version,
            "k": self.kind,
            "a": self.available,
            "q": self.on_stock,
            "id": self.msg_id,
            "s": self.seq,
            "at": self.at,
        }

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> StockObservation:
        return cls(
            sku=d["sku"],
            channel=d["ch"],
            entry_id=d["e"],
            version=d["v"],
            kind=d["k"],
            available=d["a"],
            on_stock=d["q"],
            msg_id=d.get("id"),
            seq=d.get("s"),
            at=d.get("at"),
        )


@dataclass(frozen=True, slots=True)
class NeedsFetch:
    """A notification without payload: read entry ``entry_id`` and observe what it shows."""

    entry_id: str
    version: int | None
    msg_id: str | None
    seq: int | None


@dataclass(frozen=True, slots=True)
class Ignored:
    reason: str


Parsed: TypeAlias = StockObservation | NeedsFetch | Ignored | OrderEffect | NeedsOrder


def unwrap(record: Any) -> tuple[dict[str, Any], str | None]:
    """The Platform payload, and the CloudEvents id when the record is a CloudEvent."""
    if not isinstance(record, dict):
        raise BadRecord(f"record must be a JSON object, got {type(record).__name__}")
    if "specversion" in record:
        data = record.get("data")
        if not isinstance(data, dict):
            raise BadRecord("CloudEvent without a data object")
        ce_id = record.get("id")
        return data, ce_id if isinstance(ce_id, str) else None
    return record, None


def parse_delivery(record: Any) -> Parsed:
    """Classify one decoded ``ct.messages`` record. Raises :class:`BadRecord`."""
    d, ce_id = unwrap(record)
    ntype = d.get("notificationType")
    if ntype is None and "type" in d and "resource" in d:
        ntype = "Message"  # a bare Message, e.g. replayed from the Messages API
    if not isinstance(ntype, str) or ntype not in NOTIFICATION_TYPES:
        raise BadRecord(f"unknown notificationType {str(ntype)[:100]!r}")
    resource = _get(d, "resource", dict, "record")
    type_id = _get(resource, "typeId", str, "resource")
    entry_id = _get(resource, "id", str, "resource")
    if ntype == "Message":
        return _message(d, type_id, entry_id, ce_id)
    if type_id == "order" and ntype == "ResourceCreated":
        return NeedsOrder(entry_id, "hold", ce_id, _opt(d, "version", int, "record"))
    if type_id != INVENTORY:
        return Ignored(f"{ntype} for {type_id}")
    version = _opt(d, "version", int, "record")
    ids = d.get("resourceUserProvidedIdentifiers") or {}
    if ntype == "ResourceDeleted":
        sku = ids.get("sku") if isinstance(ids, dict) else None
        sku = sku if isinstance(sku, str) else ""  # "": the ingest stage finds it by entry id
        channel = ids.get("supplyChannel") if isinstance(ids.get("supplyChannel"), str) else None
        if channel is None:
            # without the channel the entry cannot be placed; the stock stage resolves it
            # by entry id within the SKU's record
            channel = "?"
        return StockObservation(
            sku, channel, entry_id, version or 0, "delete", at=d.get("modifiedAt")
        )
    return NeedsFetch(entry_id, version, ce_id, None)


def _message(d: dict[str, Any], type_id: str, entry_id: str, ce_id: str | None) -> Parsed:
    pni = d.get("payloadNotIncluded")
    if type_id == "order":
        mtype = d.get("type") or (pni.get("payloadType") if isinstance(pni, dict) else None)
        if not isinstance(mtype, str):
            raise BadRecord("message.type is missing")
        order_id = _get(d["resource"], "id", str, "resource")
        effect = parse_order_message(d, mtype, order_id, _opt(d, "id", str, "message") or ce_id)
        return Ignored(f"{mtype} for order") if effect is None else effect
    if isinstance(pni, dict):  # read first: such a message lacks the payload's own fields
        mtype = d.get("type") or pni.get("payloadType")
        if type_id != INVENTORY or mtype in INVENTORY_NO_FIGURE:
            return Ignored(f"{mtype} for {type_id}")
        msg_id = _opt(d, "id", str, "message") or ce_id
        seq = _opt(d, "sequenceNumber", int, "message")
        version = _opt(d, "resourceVersion", int, "message")
        if mtype == "InventoryEntryDeleted":  # gone: placed by entry id (no sku, no channel)
            ids = d.get("resourceUserProvidedIdentifiers")
            sku = ids.get("sku") if isinstance(ids, dict) else None
            sku = sku if isinstance(sku, str) else ""
            return StockObservation(
                sku, "?", entry_id, version or 0, "delete", msg_id=msg_id, seq=seq
            )
        return NeedsFetch(entry_id, version, msg_id, seq)
    mtype = _get(d, "type", str, "message")
    if type_id != INVENTORY:
        return Ignored(f"{mtype} for {type_id}")
    msg_id = _opt(d, "id", str, "message") or ce_id
    seq = _opt(d, "sequenceNumber", int, "message")
    version = _get(d, "resourceVersion", int, "message")
    at = d.get("createdAt") if isinstance(d.get("createdAt"), str) else None
    if mtype in INVENTORY_NO_FIGURE:
        return Ignored(mtype)
    ids = d.get("resourceUserProvidedIdentifiers")
    id_sku = ids.get("sku") if isinstance(ids, dict) else None
    if mtype == "InventoryEntryCreated":
        entry = _get(d, "inventoryEntry", dict, "message")
        return StockObservation(
            sku=_get(entry, "sku", str, "inventoryEntry"),
            channel=_channel(entry, "inventoryEntry"),
            entry_id=entry_id,
            version=version,
            kind="set",
            available=_quantity(entry, "availableQuantity", "inventoryEntry"),
            on_stock=_quantity(entry, "quantityOnStock", "inventoryEntry"),
            msg_id=msg_id,
            seq=seq,
            at=at,
        )
    if mtype == "InventoryEntryQuantitySet":
        sku = _opt(d, "sku", str, "message") or id_sku
        if not sku:
            return NeedsFetch(entry_id, version, msg_id, seq)
        return StockObservation(
            sku=sku,
            channel=_channel(d, "message"),
            entry_id=entry_id,
            version=version,
            kind="set",
            available=_quantity(d, "newAvailableQuantity", "message"),
            on_stock=_quantity(d, "newQuantityOnStock", "message"),
            msg_id=msg_id,
            seq=seq,
            at=at,
        )
    if mtype == "InventoryEntryDeleted":
        return StockObservation(
            sku=_get(d, "sku", str, "message"),
            channel=_channel(d, "message"),
            entry_id=entry_id,
            version=version,
            kind="delete",
            msg_id=msg_id,
            seq=seq,
            at=at,
        )
    raise BadRecord(f"unknown inventory-entry message type {mtype!r}")


def observation_from_entry(
    entry: dict[str, Any], msg_id: str | None = None, seq: int | None = None
) -> StockObservation:
    """An InventoryEntry as read from the API (for notifications without payload)."""
    return StockObservation(
        sku=_get(entry, "sku", str, "inventoryEntry"),
        channel=_channel(entry, "inventoryEntry"),
        entry_id=_get(entry, "id", str, "inventoryEntry"),
        version=_get(entry, "version", int, "inventoryEntry"),
        kind="set",
        available=_quantity(entry, "availableQuantity", "inventoryEntry"),
        on_stock=_quantity(entry, "quantityOnStock", "inventoryEntry"),
        msg_id=msg_id,
        seq=seq,
        at=entry.get("lastModifiedAt") if isinstance(entry.get("lastModifiedAt"), str) else None,
    )
