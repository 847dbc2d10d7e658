"""Parsing commercetools deliveries: both formats, every inventory shape, bad records."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.domain.ctmessages import (
    BadRecord,
    Ignored,
    NeedsFetch,
    StockObservation,
    observation_from_entry,
    parse_delivery,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "commercetools"


def example(name: str) -> Any:
    return orjson.loads((EXAMPLES / name).read_bytes())


def quantity_set(**over: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "notificationType": "Message",
        "projectKey": "demo",
        "id": "m-1",
        "version": 1,
        "sequenceNumber": 3,
        "resource": {"typeId": "inventory-entry", "id": "e-1"},
        "resourceVersion": 3,
        "resourceUserProvidedIdentifiers": {"sku": "SKU-1"},
        "type": "InventoryEntryQuantitySet",
        "oldQuantityOnStock": 5,
        "newQuantityOnStock": 9,
        "oldAvailableQuantity": 5,
        "newAvailableQuantity": 8,
        "supplyChannel": {"typeId": "channel", "id": "ch-1"},
        "createdAt": "2026-01-01T00:00:00.000Z",
        "lastModifiedAt": "2026-01-01T00:00:00.000Z",
    }
    msg.update(over)
    return msg


def test_reference_examples_of_other_resources_are_ignored_not_dead_lettered() -> None:
    # verbatim payloads from the commercetools reference
    for name in (
        "Subscription/message-payload.example.json",
        "Subscription/cloudevents-payload.example.json",
        "Subscription/resource-created-payload.example.json",
        "Subscription/resource-updated-payload.example.json",
        "Subscription/resource-deleted-payload.example.json",
        "message.example.json",
    ):
        assert isinstance(parse_delivery(example(name)), Ignored), name


def test_reference_change_notifications_for_inventory_need_a_fetch() -> None:
    for name in ("resource-created", "resource-updated"):
        payload = example(f"Subscription/{name}-payload.example.json")
        payload["resource"]["typeId"] = "inventory-entry"
        parsed = parse_delivery(payload)
        assert parsed == NeedsFetch(
            "<product_id>" if name == "resource-created" else "<product-id>",
            payload["version"],
            None,
            None,
        )


def test_reference_deleted_notification_without_sku_is_placed_by_entry_id() -> None:
    payload = example("Subscription/resource-deleted-payload.example.json")
    payload["resource"]["typeId"] = "inventory-entry"
    obs = parse_delivery(payload)  # the ingest stage finds the SKU by entry id
    assert isinstance(obs, StockObservation) and obs.kind == "delete"
    assert obs.sku == "" and obs.entry_id == payload["resource"]["id"]
    payload["resourceUserProvidedIdentifiers"] = {"sku": "SKU-9"}
    obs = parse_delivery(payload)
    assert isinstance(obs, StockObservation) and obs.kind == "delete" and obs.sku == "SKU-9"


def test_quantity_set_platform_and_cloudevents_agree() -> None:
    msg = quantity_set()
    platform = parse_delivery(msg)
    ce = example("Subscription/cloudevents-payload.example.json")
    ce["type"] = "com.commercetools.inventory-entry.message.InventoryEntryQuantitySet"
    ce["data"] = msg
    assert parse_delivery(ce) == platform
    assert platform == StockObservation(
        "SKU-1",
        "ch-1",
        "e-1",
        3,
        "set",
        available=8,
        on_stock=9,
        msg_id="m-1",
        seq=3,
        at="2026-01-01T00:00:00.000Z",
    )


def test_quantity_set_without_sku_anywhere_needs_a_fetch() -> None:
    msg = quantity_set(resourceUserProvidedIdentifiers={})
    assert parse_delivery(msg) == NeedsFetch("e-1", 3, "m-1", 3)


def test_created_uses_the_full_entry_and_deleted_the_sku() -> None:
    entry = example("inventory.example.json")
    created = quantity_set(type="InventoryEntryCreated", inventoryEntry=entry)
    obs = parse_delivery(created)
    assert isinstance(obs, StockObservation)
    assert (obs.sku, obs.available, obs.on_stock) == (
        entry["sku"],
        entry["availableQuantity"],
        entry["quantityOnStock"],
    )
    deleted = {
        k: v
        for k, v in quantity_set(type="InventoryEntryDeleted", sku="SKU-1").items()
        if not k.startswith(("new", "old"))
    }
    obs = parse_delivery(deleted)
    assert isinstance(obs, StockObservation) and obs.kind == "delete" and obs.channel == "ch-1"


def test_payload_not_included_needs_a_fetch() -> None:
    msg = quantity_set(payloadNotIncluded=example("Subscription/payload-not-included.example.json"))
    assert isinstance(parse_delivery(msg), NeedsFetch)


def test_payload_not_included_is_read_before_the_fields_it_leaves_out() -> None:
    """Such a message names its type in ``payloadNotIncluded.payloadType`` and carries none
    of the payload's fields: it is no bad record."""
    bare = {
        "notificationType": "Message",
        "id": "m-1",
        "resource": {"typeId": "inventory-entry", "id": "e-7"},
        "resourceVersion": 4,
        "sequenceNumber": 2,
        "payloadNotIncluded": {
            "reason": "Payload too large.",
            "payloadType": "InventoryEntryQuantitySet",
        },
    }
    assert parse_delivery(bare) == NeedsFetch("e-7", 4, "m-1", 2)
    no_version = {k: v for k, v in bare.items() if k != "resourceVersion"}
    assert parse_delivery(no_version) == NeedsFetch("e-7", None, "m-1", 2)
    deleted = {
        **bare,
        "payloadNotIncluded": {"reason": "x", "payloadType": "InventoryEntryDeleted"},
    }
    obs = parse_delivery(deleted)  # gone: placed by entry id (it cannot be read back)
    assert isinstance(obs, StockObservation)
    assert (obs.kind, obs.sku, obs.channel, obs.entry_id, obs.version) == (
        "delete",
        "",
        "?",
        "e-7",
        4,
    )
    quiet = {
        **bare,
        "payloadNotIncluded": {"reason": "x", "payloadType": "InventoryEntryOutOfStock"},
    }
    assert isinstance(parse_delivery(quiet), Ignored)


def test_entry_read_from_the_api_is_an_observation() -> None:
    entry = example("inventory.example.json")
    obs = observation_from_entry(entry, "m-9", 4)
    assert obs.entry_id == entry["id"] and obs.version == entry["version"]
    assert obs.kind == "set" and obs.msg_id == "m-9"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda m: m.update(notificationType="Nope"), "unknown notificationType"),
        (lambda m: m.update(type="InventoryEntryTeleported"), "unknown inventory-entry message"),
        (lambda m: m.pop("resource"), "resource is missing"),
        (lambda m: m.update(newAvailableQuantity="8"), "newAvailableQuantity must be an integer"),
        (lambda m: m.update(newAvailableQuantity=True), "must be an integer"),
        (lambda m: m.update(newAvailableQuantity=10**15), "out of range"),
        (lambda m: m.pop("resourceVersion"), "resourceVersion is missing"),
        (lambda m: m.update(supplyChannel="ch-1"), "supplyChannel must be an object"),
    ],
)
def test_bad_records_name_the_problem(mutate: Any, reason: str) -> None:
    msg = copy.deepcopy(quantity_set())
    mutate(msg)
    with pytest.raises(BadRecord, match=reason):
        parse_delivery(msg)


@pytest.mark.parametrize("record", [[], "text", 3, None, {"specversion": "1.0", "data": 1}])
def test_non_objects_are_bad(record: Any) -> None:
    with pytest.raises(BadRecord):
        parse_delivery(record)
