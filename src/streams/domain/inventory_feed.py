"""Availability records -> Direct Fulfillment ``submitInventoryUpdate`` partial feeds.

Pure rules of the inventory sender (``streams.agents.inventory_sender``): which part of an
``amazon.inventory-updates`` record Amazon gets, how a batch of records is coalesced (per
warehouse, the latest amount per SKU wins) and cut into requests of at most
``max_items`` items, and what a request body looks like. No I/O, no framework.

Why 1,000 items per request by default: Amazon's model (vendorDirectFulfillmentInventoryV1)
puts no ``maxItems`` on ``InventoryUpdate.items`` and states no byte limit (its 413 answer
only says "The request size exceeded the maximum accepted size"). One item with an ASIN and
a vendor product id is about 145 bytes of JSON, so 1,000 items is a ~145 KB body: far from
any size a 413 is likely at, and the sender halves a request that gets a 413 anyway. At the
default usage plan (10 requests/s; the sender keeps to 9.5) 1,000 items per request carry
~9,500 SKUs/s, about twice the worker's default delta budget (``STREAMS_DELTA_BUDGET_PER_S``
= 5,000), so the rate limit is not what holds updates back, and a full 50k-SKU catalogue
change is 50 requests (about 5 s of Amazon's budget; bench/amazon_budget.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_ITEMS = 1000

# the fields of a topic record that are Amazon's ItemDetails; the rest is context
ITEM_FIELDS = (
    "buyerProductIdentifier",
    "vendorProductIdentifier",
    "availableQuantity",
    "isObsolete",
)


class NotAnUpdate(ValueError):
    """A record that cannot become an inventory item (not sent; reported)."""


def item_details(record: Any) -> tuple[str, dict[str, Any]]:
    """``(sku, ItemDetails)`` of one ``amazon.inventory-updates`` value.

    Raises :class:`NotAnUpdate` when the record is not one (no SKU, no quantity, no
    identifier): Amazon's model only *describes* that "either buyerProductIdentifier or
    vendorProductIdentifier should be submitted", so it is checked here.
    """
    if not isinstance(record, Mapping):
        raise NotAnUpdate("not a JSON object")
    sku = record.get("sku")
    if not isinstance(sku, str) or not sku:
        raise NotAnUpdate("no sku")
    qty = record.get("availableQuantity")
    if not isinstance(qty, Mapping):
        raise NotAnUpdate(f"{sku}: no availableQuantity")
    amount = qty.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise NotAnUpdate(f"{sku}: availableQuantity.amount must be a whole number >= 0")
    item = {k: record[k] for k in ITEM_FIELDS if record.get(k) is not None}
    if not (item.get("buyerProductIdentifier") or item.get("vendorProductIdentifier")):
        raise NotAnUpdate(f"{sku}: neither buyerProductIdentifier nor vendorProductIdentifier")
    return sku, item


@dataclass(frozen=True)
class Update:
    """One record off the topic, in arrival order (per SKU, Kafka's order is the truth)."""

    warehouse: str
    sku: str
    item: dict[str, Any]


@dataclass(frozen=True)
class InventoryRequest:
    """One ``submitInventoryUpdate`` call: a partial feed of one warehouse."""

    warehouse: str
    items: tuple[tuple[str, dict[str, Any]], ...]  # (sku, ItemDetails), SKU order

    @property
    def skus(self) -> list[str]:
        return [sku for sku, _ in self.items]

    def split(self) -> tuple[InventoryRequest, InventoryRequest]:
        """Two halves (a 413 answer: the request was too large). Needs two items or more."""
        if len(self.items) < 2:
            raise ValueError("a single item cannot be split")
        half = len(self.items) // 2
        return (
            InventoryRequest(self.warehouse, self.items[:half]),
            InventoryRequest(self.warehouse, self.items[half:]),
        )


@dataclass
class Plan:
    requests: list[InventoryRequest] = field(default_factory=list)
    superseded: int = 0  # records replaced by a later record of the same SKU in the batch


def coalesce(updates: Iterable[Update]) -> dict[str, dict[str, dict[str, Any]]]:
    """warehouse -> sku -> ItemDetails, the last update of a SKU winning."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for u in updates:
        per_sku = out.setdefault(u.warehouse, {})
        per_sku.pop(u.sku, None)  # re-insert: the dict keeps the latest arrival's position
        per_sku[u.sku] = u.item
    return out


def plan_requests(updates: Iterable[Update], max_items: int = DEFAULT_MAX_ITEMS) -> Plan:
    """The requests one batch becomes: per warehouse, SKUs coalesced (latest amount wins),
    in chunks of at most ``max_items``; warehouses and SKUs in sorted order, so the same
    batch always makes the same requests."""
    if max_items < 1:
        raise ValueError("max_items must be at least 1")
    updates = list(updates)
    merged = coalesce(updates)
    plan = Plan(superseded=len(updates) - sum(len(v) for v in merged.values()))
    for warehouse in sorted(merged):
        items = sorted(merged[warehouse].items())
        for i in range(0, len(items), max_items):
            plan.requests.append(InventoryRequest(warehouse, tuple(items[i : i + max_items])))
    return plan


def request_body(
    selling_party: str, items: Iterable[Mapping[str, Any]], is_full_update: bool = False
) -> dict[str, Any]:
    """A ``SubmitInventoryUpdateRequest`` (a partial feed unless ``is_full_update``)."""
    return {
        "inventory": {
            "sellingParty": {"partyId": selling_party},
            "isFullUpdate": is_full_update,
            "items": [dict(i) for i in items],
        }
    }
