"""The commercetools emulator behaves like commercetools for storefront orders.

Drives emulators started here from this tree (``streams.sandbox.ctmock.up`` on free ports, never
the shared one) over real HTTP, and reads subscription deliveries from the real Kafka broker.
Payloads start from commercetools' official examples in ``tests/fixtures/commercetools/``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams import localkafka
from streams.config import Settings
from streams.sandbox import ctmock
from streams.sandbox.ctmock.storefront import (
    InventoryMode,
    StorefrontError,
    cancel_order,
    create_kafka_subscription,
    ensure_products,
    fetch_token,
    place_order,
)
from tests.contract.ct_strict_server import example
from tests.support.kafka import Record, read_all, wait_for
from tests.support.services import free_port

pytestmark = [pytest.mark.ctmock]

STOCK_DELAY_MS = 1500
DROP_EVERY = 3
QUANTITY_SET = [{"resourceTypeId": "inventory-entry", "types": ["InventoryEntryQuantitySet"]}]


@contextmanager
def emulator(env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    settings = Settings(ct_mock_port=port)
    if ctmock.up(settings, port=port, env=env) != 0:
        pytest.fail("the commercetools emulator did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        ctmock.down(settings, port=port)


@dataclass
class Project:
    """One fresh project (the emulator keeps a store per project key) and a token."""

    session: aiohttp.ClientSession
    base: str
    key: str
    token: str

    async def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        url = f"{self.base}/{self.key}/{path}"
        query = [
            (k, str(x)) for k, v in params.items() for x in (v if isinstance(v, list) else [v])
        ]
        async with self.session.request(method, url, json=body, params=query, headers=headers) as r:
            data = await r.json(content_type=None)
            if r.status >= 400:
                raise StorefrontError(r.status, data)
            return data

    async def channel(self, key: str) -> dict[str, Any]:
        draft = example("Channel/ChannelDraft.json") | {"key": key}
        result: dict[str, Any] = await self.call("POST", "channels", draft)
        return result

    async def entry(self, sku: str, quantity: int, channel: str | None = None) -> dict[str, Any]:
        draft = example("inventory-create.example.json") | {
            "key": f"ie-{sku}-{channel or 'none'}",
            "sku": sku,
            "quantityOnStock": quantity,
        }
        if channel:
            draft["supplyChannel"] = {"typeId": "channel", "id": channel}
        result: dict[str, Any] = await self.call("POST", "inventory", draft)
        return result

    async def get_entry(self, entry_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", f"inventory/{entry_id}")
        return result

    async def messages(self, **params: Any) -> list[dict[str, Any]]:
        page = await self.call("GET", "messages", limit=500, sort="sequenceNumber asc", **params)
        results: list[dict[str, Any]] = page["results"]
        return results

    async def order(
        self, lines: dict[str, int], mode: InventoryMode, channel: str | None = None
    ) -> dict[str, Any]:
        return await place_order(
            self.session, self.base, self.token, self.key, lines, mode, channel
        )


@pytest_asyncio.fixture(scope="module")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture(scope="module")
def plain_url() -> Iterator[str]:
    with emulator() as url:
        yield url


@pytest.fixture(scope="module")
def faulty_url() -> Iterator[str]:
    env = {
        "CT_MOCK_ORDER_STOCK_DELAY_MS": str(STOCK_DELAY_MS),
        "CT_MOCK_DELIVERY_DROP_EVERY": str(DROP_EVERY),
    }
    with emulator(env) as url:
        yield url


async def _project(session: aiohttp.ClientSession, base: str) -> Project:
    token = await fetch_token(session, base, "local-client", "local-secret")
    return Project(session, base, f"sf-{uuid.uuid4().hex[:8]}", token)


@pytest_asyncio.fixture
async def ct(session: aiohttp.ClientSession, plain_url: str) -> Project:
    return await _project(session, plain_url)


@pytest_asyncio.fixture
async def ct_faulty(session: aiohttp.ClientSession, faulty_url: str) -> Project:
    return await _project(session, faulty_url)


async def _topic(bootstrap: str) -> str:
    name = f"ctmock-sub-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    return name


def _types(records: list[Record], field: str = "type") -> list[str]:
    return [str(r.json().get(field)) for r in records]


# --- orders and inventory ---------------------------------------------------------------


async def test_reserve_on_order_deducts_without_quantity_set(ct: Project) -> None:
    wh = await ct.channel("wh-1")
    entry = await ct.entry("SKU-R", 5, wh["id"])

    order = await ct.order({"SKU-R": 2}, "ReserveOnOrder", wh["id"])

    assert order["inventoryMode"] == "ReserveOnOrder"
    assert order["lineItems"][0]["supplyChannel"] == {"typeId": "channel", "id": wh["id"]}
    after = await ct.get_entry(entry["id"])
    assert (after["quantityOnStock"], after["availableQuantity"]) == (3, 3)
    assert after["version"] == entry["version"] + 1
    assert after["lastModifiedAt"] > entry["lastModifiedAt"]
    types = [m["type"] for m in await ct.messages()]
    assert "InventoryEntryQuantitySet" not in types
    assert types.count("OrderCreated") == 1


async def test_reserve_on_order_short_refuses_whole_order(ct: Project) -> None:
    wh = await ct.channel("wh-1")
    short = await ct.entry("SKU-S", 1, wh["id"])
    plenty = await ct.entry("SKU-P", 10, wh["id"])

    with pytest.raises(StorefrontError) as err:
        await ct.order({"SKU-P": 1, "SKU-S": 2}, "ReserveOnOrder", wh["id"])

    assert err.value.status == 400
    body = err.value.body
    assert body["statusCode"] == 400
    [error] = body["errors"]
    assert error["code"] == "OutOfStock"
    assert error["skus"] == ["SKU-S"]
    assert len(error["lineItems"]) == 1
    for before in (short, plenty):  # nothing changed, not even the entry with stock
        assert (await ct.get_entry(before["id"]))["version"] == before["version"]
    orders = await ct.call("GET", "orders")
    assert orders["total"] == 0


async def test_track_only_goes_negative_but_needs_an_entry(ct: Project) -> None:
    entry = await ct.entry("SKU-T", 1)  # channel-less entry

    order = await ct.order({"SKU-T": 3}, "TrackOnly")

    assert order["orderState"] == "Open"
    after = await ct.get_entry(entry["id"])
    assert (after["quantityOnStock"], after["availableQuantity"]) == (-2, -2)
    with pytest.raises(StorefrontError) as err:
        await ct.order({"SKU-NOENTRY": 1}, "TrackOnly")
    assert err.value.codes == ["OutOfStock"]
    assert err.value.body["errors"][0]["skus"] == ["SKU-NOENTRY"]


async def test_line_item_channel_picks_that_entry(ct: Project) -> None:
    wh1, wh2 = await ct.channel("wh-1"), await ct.channel("wh-2")
    e1, e2 = await ct.entry("SKU-C", 5, wh1["id"]), await ct.entry("SKU-C", 5, wh2["id"])
    bare = await ct.entry("SKU-C", 5)

    await ct.order({"SKU-C": 2}, "ReserveOnOrder", wh2["id"])

    quantities = [(await ct.get_entry(e["id"]))["availableQuantity"] for e in (e1, e2, bare)]
    assert quantities == [5, 3, 5]


async def test_mode_none_leaves_stock_alone(ct: Project) -> None:
    entry = await ct.entry("SKU-N", 1)

    order = await ct.order({"SKU-N": 5}, "None")

    assert order["inventoryMode"] == "None"
    assert await ct.get_entry(entry["id"]) == entry


async def test_line_item_mode_overrides_the_cart_mode(ct: Project) -> None:
    tracked = await ct.entry("SKU-L1", 0)
    ignored = await ct.entry("SKU-L2", 0)
    await ensure_products(ct.session, ct.base, ct.token, ct.key, ["SKU-L1", "SKU-L2"])
    cart = await ct.call(
        "POST",
        "carts",
        {
            "currency": "EUR",
            "inventoryMode": "None",
            "lineItems": [
                {"sku": "SKU-L1", "quantity": 2, "inventoryMode": "TrackOnly"},
                {"sku": "SKU-L2", "quantity": 2},
            ],
        },
    )
    assert cart["inventoryMode"] == "None"
    assert cart["lineItems"][0]["inventoryMode"] == "TrackOnly"

    # the older draft form {id, version} is accepted too
    await ct.call("POST", "orders", {"id": cart["id"], "version": cart["version"]})

    assert (await ct.get_entry(tracked["id"]))["quantityOnStock"] == -2
    assert (await ct.get_entry(ignored["id"]))["quantityOnStock"] == 0


async def test_cancellation_gives_the_stock_back(ct: Project) -> None:
    entry = await ct.entry("SKU-X", 4)
    order = await ct.order({"SKU-X": 3}, "ReserveOnOrder")
    assert (await ct.get_entry(entry["id"]))["availableQuantity"] == 1

    cancelled = await cancel_order(ct.session, ct.base, ct.token, ct.key, order)

    assert cancelled["orderState"] == "Cancelled"
    after = await ct.get_entry(entry["id"])
    assert (after["quantityOnStock"], after["availableQuantity"]) == (4, 4)
    changed = [m for m in await ct.messages() if m["type"] == "OrderStateChanged"]
    assert [(m["oldOrderState"], m["orderState"]) for m in changed] == [("Open", "Cancelled")]
    # cancelling again gives nothing back twice
    await cancel_order(ct.session, ct.base, ct.token, ct.key, cancelled)
    assert (await ct.get_entry(entry["id"]))["availableQuantity"] == 4


async def test_order_import_applies_its_inventory_mode(ct: Project) -> None:
    entry = await ct.entry("SKU-I", 1)
    await ensure_products(ct.session, ct.base, ct.token, ct.key, ["SKU-I"])
    line = {
        "name": {"en": "SKU-I"},
        "variant": {"sku": "SKU-I"},
        "price": {"value": {"currencyCode": "EUR", "centAmount": 100}},
        "quantity": 2,
    }
    draft = {
        "orderNumber": "imp-1",
        "totalPrice": {"currencyCode": "EUR", "centAmount": 200},
        "lineItems": [line],
        "inventoryMode": "ReserveOnOrder",
    }
    with pytest.raises(StorefrontError) as err:
        await ct.call("POST", "orders/import", draft)
    assert err.value.codes == ["OutOfStock"]

    order = await ct.call("POST", "orders/import", draft | {"inventoryMode": "TrackOnly"})

    assert (await ct.get_entry(entry["id"]))["availableQuantity"] == -1
    [imported] = [m for m in await ct.messages() if m["type"] == "OrderImported"]
    assert imported["order"]["id"] == order["id"]
    assert imported["resourceUserProvidedIdentifiers"] == {"orderNumber": "imp-1"}


async def test_order_stock_becomes_visible_after_the_delay(ct_faulty: Project) -> None:
    ct = ct_faulty
    entry = await ct.entry("SKU-D", 3)

    await ct.order({"SKU-D": 2}, "ReserveOnOrder")

    seen = await ct.get_entry(entry["id"])
    assert seen["availableQuantity"] == 3  # not visible yet
    # the OutOfStock check already counts the invisible deduction
    with pytest.raises(StorefrontError) as err:
        await ct.order({"SKU-D": 2}, "ReserveOnOrder")
    assert err.value.codes == ["OutOfStock"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen = await ct.get_entry(entry["id"])
        if seen["availableQuantity"] != 3:
            break
        await asyncio.sleep(0.1)
    assert (seen["availableQuantity"], seen["version"]) == (1, entry["version"] + 1)


# --- inventory actions, messages, queries -----------------------------------------------


async def test_quantity_actions_and_their_messages(ct: Project) -> None:
    wh = await ct.channel("wh-1")
    entry = await ct.entry("SKU-Q", 4, wh["id"])
    assert entry["key"] == f"ie-SKU-Q-{wh['id']}"
    actions = [
        example("Inventory/InventoryEntryAddQuantityAction.json") | {"quantity": 3},
        example("Inventory/InventoryEntryRemoveQuantityAction.json") | {"quantity": 10},
        {"action": "changeQuantity", "quantity": 6},
    ]

    updated = await ct.call("POST", f"inventory/{entry['id']}", {"version": 1, "actions": actions})

    assert (updated["quantityOnStock"], updated["availableQuantity"], updated["version"]) == (
        6,
        6,
        4,
    )
    await ct.call("DELETE", f"inventory/{entry['id']}", version=updated["version"])
    msgs = await ct.messages(where=f'resource(id="{entry["id"]}")')
    assert [m["type"] for m in msgs] == ["InventoryEntryCreated"] + [
        "InventoryEntryQuantitySet"
    ] * 3 + ["InventoryEntryDeleted"]
    assert [m["sequenceNumber"] for m in msgs] == [1, 2, 3, 4, 5]
    assert [m["resourceVersion"] for m in msgs[:4]] == [1, 2, 3, 4]
    sets = [
        (m["oldQuantityOnStock"], m["newQuantityOnStock"], m["newAvailableQuantity"])
        for m in msgs[1:4]
    ]
    assert sets == [(4, 7, 7), (7, -3, -3), (-3, 6, 6)]
    example_message = example("message.example.json")
    for m in msgs:
        assert set(example_message) - {"paymentId", "interfaceCode"} <= set(m)
        assert m["version"] == 1
        assert m["resource"] == {"typeId": "inventory-entry", "id": entry["id"]}
        assert m["resourceUserProvidedIdentifiers"]["sku"] == "SKU-Q"
    assert msgs[0]["inventoryEntry"]["id"] == entry["id"]
    assert msgs[1]["supplyChannel"] == {"typeId": "channel", "id": wh["id"]}
    assert msgs[4]["sku"] == "SKU-Q"
    one = await ct.call("GET", f"messages/{msgs[2]['id']}")
    assert one == msgs[2]


async def test_order_messages_number_per_order(ct: Project) -> None:
    await ct.entry("SKU-M", 10)
    first = await ct.order({"SKU-M": 1}, "TrackOnly")
    second = await ct.order({"SKU-M": 1}, "TrackOnly")
    await cancel_order(ct.session, ct.base, ct.token, ct.key, first)
    await ct.call("DELETE", f"orders/{second['id']}", version=second["version"])

    msgs = await ct.messages(where='resource(typeId="order")')
    by_order = {
        o["id"]: [(m["type"], m["sequenceNumber"]) for m in msgs if m["resource"]["id"] == o["id"]]
        for o in (first, second)
    }
    assert by_order[first["id"]] == [("OrderCreated", 1), ("OrderStateChanged", 2)]
    assert by_order[second["id"]] == [("OrderCreated", 1), ("OrderDeleted", 2)]
    created = await ct.messages(where='type="OrderCreated"')
    assert {m["order"]["id"] for m in created} == {first["id"], second["id"]}
    assert created[0]["resourceUserProvidedIdentifiers"] == {"orderNumber": first["orderNumber"]}
    stored = await ct.call("GET", f"orders/{first['id']}")
    assert stored["lastMessageSequenceNumber"] == 2


async def test_sorted_changed_since_queries(ct: Project) -> None:
    entries = []
    for n in range(5):  # distinct lastModifiedAt milliseconds
        entries.append(await ct.entry(f"SKU-{n}", n))
        await asyncio.sleep(0.005)
    cutoff = entries[1]["lastModifiedAt"]
    await asyncio.sleep(0.01)
    touched = entries[0]
    touched = await ct.call(
        "POST",
        f"inventory/{touched['id']}",
        {"version": 1, "actions": [{"action": "addQuantity", "quantity": 1}]},
    )

    page = await ct.call(
        "GET",
        "inventory",
        where=f'lastModifiedAt > "{cutoff}"',
        sort=["lastModifiedAt asc", "id asc"],
    )
    skus = [r["sku"] for r in page["results"]]
    assert skus == ["SKU-2", "SKU-3", "SKU-4", "SKU-0"]
    at_or_after = await ct.call(
        "GET",
        "inventory",
        where=f'lastModifiedAt >= "{cutoff}" and (sku = "SKU-1" or sku = "SKU-0")',
        sort="lastModifiedAt desc",
    )
    assert [r["sku"] for r in at_or_after["results"]] == ["SKU-0", "SKU-1"]
    by_id = await ct.call("GET", "inventory", sort="id asc", limit=2, offset=1)
    ids = sorted(e["id"] for e in entries)
    assert [r["id"] for r in by_id["results"]] == ids[1:3]
    desc = await ct.call("GET", "inventory", sort="id desc")
    assert [r["id"] for r in desc["results"]] == ids[::-1]


# --- subscription delivery to Kafka ------------------------------------------------------


def _destination(bootstrap: str, topic: str, key: str) -> dict[str, Any]:
    return example("Subscription/SubscriptionConfluentCloudDestination.json") | {
        "bootstrapServer": bootstrap,
        "topic": topic,
        "key": key,
        "acks": "all",
    }


async def test_platform_delivery_with_the_fixed_key(ct: Project, kafka: str) -> None:
    topic = await _topic(kafka)
    sub = await ct.call(
        "POST",
        "subscriptions",
        {
            "key": "storefront",
            "destination": _destination(kafka, topic, "vc-ct"),
            "messages": [
                {"resourceTypeId": "order", "types": ["OrderCreated"]},
                {"resourceTypeId": "inventory-entry", "types": []},
            ],
            "changes": [{"resourceTypeId": "inventory-entry"}],
        },
    )
    entry = await ct.entry("SKU-K", 5)
    await ct.call(
        "POST",
        f"inventory/{entry['id']}",
        {"version": 1, "actions": [{"action": "removeQuantity", "quantity": 1}]},
    )
    order = await ct.order({"SKU-K": 2}, "ReserveOnOrder")
    await cancel_order(
        ct.session, ct.base, ct.token, ct.key, order
    )  # OrderStateChanged: not subscribed

    def done(records: list[Record]) -> bool:
        return _types(records).count("OrderCreated") == 1 and len(records) >= 8

    records = await wait_for(kafka, topic, done, timeout=30)
    assert {r.key for r in records} == {b"vc-ct"}
    assert len({r.partition for r in records}) == 1  # one key, one partition, one order
    bodies = [r.json() for r in records]
    test_note = bodies[0]
    assert test_note["notificationType"] == "ResourceCreated"
    assert test_note["resource"] == {"typeId": "subscription", "id": sub["id"]}
    rest = [(b["notificationType"], b.get("type")) for b in bodies[1:]]
    assert rest == [
        ("Message", "InventoryEntryCreated"),
        ("ResourceCreated", None),
        ("Message", "InventoryEntryQuantitySet"),
        ("ResourceUpdated", None),
        ("Message", "OrderCreated"),
        ("ResourceUpdated", None),  # the order's deduction: a change, no QuantitySet
        ("ResourceUpdated", None),  # the cancellation's restock
    ]
    message = bodies[3]
    assert set(example("Subscription/message-payload.example.json")) - {"lastName"} <= set(message)
    assert message["projectKey"] == ct.key
    assert (message["oldQuantityOnStock"], message["newQuantityOnStock"]) == (5, 4)
    change = bodies[4]
    assert set(example("Subscription/resource-updated-payload.example.json")) <= set(change)
    assert (change["oldVersion"], change["version"]) == (1, 2)
    assert change["resourceUserProvidedIdentifiers"] == {"key": "ie-SKU-K-none", "sku": "SKU-K"}
    assert bodies[5]["order"]["id"] == order["id"]
    deduction = bodies[6]
    assert (deduction["resource"]["id"], deduction["version"]) == (entry["id"], 3)


async def test_cloudevents_delivery(ct: Project, kafka: str) -> None:
    topic = await _topic(kafka)
    await create_kafka_subscription(
        ct.session, ct.base, ct.token, ct.key, kafka, topic, "ce-key", "CloudEvents"
    )
    entry = await ct.entry("SKU-E", 2)
    order = await ct.order({"SKU-E": 1}, "TrackOnly")

    records = await wait_for(
        kafka, topic, lambda rs: "com.commercetools.order.message.OrderCreated" in _types(rs)
    )
    assert {r.key for r in records} == {b"ce-key"}
    events = {e["type"]: e for e in (r.json() for r in records)}
    created = events["com.commercetools.order.message.OrderCreated"]
    assert set(example("Subscription/cloudevents-payload.example.json")) <= set(created)
    assert created["specversion"] == "1.0"
    assert created["source"] == f"/{ct.key}/orders"
    assert created["subject"] == order["id"]
    assert created["sequence"] == "1" and created["sequencetype"] == "Integer"
    assert created["dataref"] == f"/{ct.key}/messages/{created['id']}"
    assert created["data"]["notificationType"] == "Message"
    assert created["data"]["id"] == created["id"]
    inventory = events["com.commercetools.inventory-entry.message.InventoryEntryCreated"]
    assert inventory["source"] == f"/{ct.key}/inventory"
    assert inventory["subject"] == entry["id"]
    assert "com.commercetools.subscription.change.ResourceCreated" in events


async def test_drop_every_nth_delivery(ct_faulty: Project, kafka: str) -> None:
    ct = ct_faulty
    topic = await _topic(kafka)
    await create_kafka_subscription(
        ct.session,
        ct.base,
        ct.token,
        ct.key,
        kafka,
        topic,
        "k",
        "Platform",
        messages=QUANTITY_SET,
    )
    entry = await ct.entry("SKU-DROP", 0)
    version = entry["version"]
    for _ in range(6):
        entry = await ct.call(
            "POST",
            f"inventory/{entry['id']}",
            {"version": version, "actions": [{"action": "addQuantity", "quantity": 1}]},
        )
        version = entry["version"]

    records = await wait_for(kafka, topic, lambda rs: len(rs) >= 5, timeout=20)
    await asyncio.sleep(1.0)  # anything more would have arrived by now
    records = await read_all(kafka, topic)
    quantities = [r.json()["newQuantityOnStock"] for r in records[1:]]
    assert quantities == [1, 2, 4, 5]  # the 3rd and 6th were dropped
    # the messages themselves are all there to fetch
    assert len(await ct.messages(where='type="InventoryEntryQuantitySet"')) == 6


async def test_unreachable_broker_refuses_the_subscription(ct: Project) -> None:
    dead = f"127.0.0.1:{free_port()}"
    with pytest.raises(StorefrontError) as err:
        await create_kafka_subscription(ct.session, ct.base, ct.token, ct.key, dead, "t", "k")
    assert err.value.codes == ["InvalidInput"]
    assert (await ct.call("GET", "subscriptions"))["total"] == 0
    # and the emulator keeps serving
    assert (await ct.entry("SKU-ALIVE", 1))["sku"] == "SKU-ALIVE"


@pytest.mark.slow
async def test_delivery_waits_out_a_broker_outage(ct: Project, tmp_path: Path) -> None:
    """A dedicated broker (never the shared one) is stopped by pid while notifications are
    made; they arrive, in order, once it is back on the same ports and data directory."""
    k = localkafka.LocalKafka(tmp_path / "kafka", free_port(), free_port(), heap="512m")
    await asyncio.to_thread(localkafka.up, k)
    try:
        topic = await _topic(k.bootstrap)
        await create_kafka_subscription(
            ct.session,
            ct.base,
            ct.token,
            ct.key,
            k.bootstrap,
            topic,
            "k",
            "Platform",
            messages=QUANTITY_SET,
        )
        entry = await ct.entry("SKU-OUT", 0)
        await asyncio.to_thread(localkafka.down, k)
        for _ in range(5):  # the emulator keeps answering while it cannot deliver
            entry = await ct.call(
                "POST",
                f"inventory/{entry['id']}",
                {
                    "version": entry["version"],
                    "actions": [{"action": "addQuantity", "quantity": 1}],
                },
            )
        await asyncio.sleep(2.0)  # a few failed attempts
        await asyncio.to_thread(localkafka.up, k)

        records = await wait_for(k.bootstrap, topic, lambda rs: len(rs) >= 6, timeout=60)
        quantities = [r.json()["newQuantityOnStock"] for r in records[1:]]
        assert quantities == [1, 2, 3, 4, 5]
    finally:
        await asyncio.to_thread(localkafka.down, k)


async def test_reserve_on_cart_holds_available_until_ordered(ct: Project) -> None:
    held = await ct.entry("SKU-H", 5)
    await ensure_products(ct.session, ct.base, ct.token, ct.key, ["SKU-H"])
    draft = {
        "currency": "EUR",
        "inventoryMode": "ReserveOnCart",
        "lineItems": [{"sku": "SKU-H", "quantity": 2}],
    }

    cart = await ct.call("POST", "carts", draft)

    seen = await ct.get_entry(held["id"])
    assert (seen["quantityOnStock"], seen["availableQuantity"]) == (5, 3)
    with pytest.raises(StorefrontError) as err:  # more than is left to reserve
        await ct.call("POST", "carts", draft | {"lineItems": [{"sku": "SKU-H", "quantity": 4}]})
    assert err.value.codes == ["OutOfStock"]
    other = await ct.call("POST", "carts", draft)
    await ct.call("DELETE", f"carts/{other['id']}", version=other["version"])  # releases
    assert (await ct.get_entry(held["id"]))["availableQuantity"] == 3

    order = await ct.call(
        "POST", "orders", {"cart": {"typeId": "cart", "id": cart["id"]}, "version": cart["version"]}
    )

    seen = await ct.get_entry(held["id"])
    assert (seen["quantityOnStock"], seen["availableQuantity"]) == (3, 3)
    await cancel_order(ct.session, ct.base, ct.token, ct.key, order)
    seen = await ct.get_entry(held["id"])
    assert (seen["quantityOnStock"], seen["availableQuantity"]) == (5, 5)
