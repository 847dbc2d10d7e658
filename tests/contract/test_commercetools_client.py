"""Contract tests of the commercetools client against real HTTP servers (no aiohttp mocking).

Two servers: the Node emulator ``@labdigital/commercetools-mock`` (or ``STREAMS_CT_API_URL``)
for the ordinary read/write path, and ``ct_strict_server.StrictServer`` for what the emulator
lacks or gets wrong (docs/commercetools-emulator.md): addQuantity, negative stock, a 409 without
``currentVersion``, an honoured ``sort``, short-lived tokens and injected faults.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from streams.adapters.commercetools import (
    AuthError,
    CommercetoolsClient,
    CommercetoolsError,
    UpdateOutcomeUnknown,
)
from streams.domain.ports import InventoryEntryReader
from tests.contract.ct_fixtures import (  # noqa: F401  (fixtures are found by name)
    SEED_ENTRIES,
    CtSeed,
    RecordingHooks,
    ct_client_fixture,
    ct_seed_fixture,
    ct_settings_fixture,
    hooks_of,
    strict_client_fixture,
    strict_fixture,
    strict_settings,
)
from tests.contract.ct_strict_server import StrictServer, example

ctmock = pytest.mark.ctmock
Json = dict[str, Any]


def _ids(entries: list[Json]) -> list[str]:
    return [e["id"] for e in entries]


# --- against the emulator ----------------------------------------------------------------
@ctmock
async def test_token_fetched_once_and_used(ct_client: CommercetoolsClient, ct_seed: CtSeed) -> None:
    entry = ct_seed.entries[0]
    for _ in range(3):
        got = await ct_client.get_inventory_entry(entry["id"])
        assert got is not None and got["id"] == entry["id"]
    hooks = hooks_of(ct_client)
    assert hooks.statuses("token") == [200]
    assert hooks.statuses("inventory.get") == [200, 200, 200]


@ctmock
async def test_client_satisfies_inventory_reader_port(
    ct_client: CommercetoolsClient, ct_seed: CtSeed
) -> None:
    reader: InventoryEntryReader = ct_client
    entry = ct_seed.entries[5]
    got = await reader.get_inventory_entry(entry["id"])
    assert got is not None
    assert (got["sku"], got["quantityOnStock"], got["supplyChannel"]["id"]) == (
        entry["sku"],
        5,
        ct_seed.channel["id"],
    )


@ctmock
async def test_missing_entry_is_none(ct_client: CommercetoolsClient) -> None:
    assert await ct_client.get_inventory_entry(str(uuid.uuid4())) is None


@ctmock
async def test_paging_over_1000_entries_of_a_channel(
    ct_client: CommercetoolsClient, ct_seed: CtSeed
) -> None:
    """The emulator ignores ``sort`` over HTTP: the client must notice and still return
    every entry exactly once, in id order."""
    got = [e async for e in ct_client.inventory_by_channel(ct_seed.channel["id"])]
    assert len(got) == SEED_ENTRIES
    assert _ids(got) == sorted(_ids(ct_seed.entries))


@ctmock
async def test_query_with_predicate_and_variables(
    ct_client: CommercetoolsClient, ct_seed: CtSeed
) -> None:
    # more than 20 values: the mock's own query-string parser would turn them into an object
    # (the emulator parses without that limit, as commercetools does)
    wanted = ct_seed.entries[100:1100:10]
    assert len(wanted) == 100
    got = [
        e
        async for e in ct_client.query_inventory(
            "supplyChannel(id = :channel) and sku in :skus",
            {"channel": ct_seed.channel["id"], "skus": [e["sku"] for e in wanted]},
            limit=7,
        )
    ]
    assert _ids(got) == sorted(_ids(wanted))

    high = [
        e
        async for e in ct_client.query_inventory(
            "supplyChannel(id = :channel) and quantityOnStock >= 1000",
            {"channel": ct_seed.channel["id"]},
            limit=30,
        )
    ]
    assert _ids(high) == sorted(_ids(ct_seed.entries[1000:]))

    by_sku = await ct_client.inventory_by_sku(ct_seed.entries[42]["sku"])
    assert _ids(by_sku) == [ct_seed.entries[42]["id"]]


@ctmock
async def test_channel_by_key(ct_client: CommercetoolsClient, ct_seed: CtSeed) -> None:
    got = await ct_client.channel_by_key(ct_seed.channel["key"])
    assert got is not None and got["id"] == ct_seed.channel["id"]
    assert "InventorySupply" in got["roles"]
    assert await ct_client.channel_by_key(f"nope-{ct_seed.run}") is None


async def _concurrent_writers(
    client: CommercetoolsClient, entry: Json, n: int, deltas: tuple[int, int]
) -> Json:
    """Two writers each add their delta ``n`` times as an absolute changeQuantity computed
    from a shared, soon stale read; ``decide`` re-reads on every 409, so none may be lost."""

    def adding(delta: int) -> Callable[[Json], list[Json]]:
        def decide(e: Json) -> list[Json]:
            return [{"action": "changeQuantity", "quantity": e["quantityOnStock"] + delta}]

        return decide

    async def writer(delta: int) -> None:
        known = entry  # both start from the same version
        decide = adding(delta)
        for _ in range(n):
            known = await client.update_inventory(
                known["id"], known["version"], decide(known), decide=decide
            )
            await asyncio.sleep(0)

    await asyncio.gather(*(writer(d) for d in deltas))
    final = await client.get_inventory_entry(entry["id"])
    assert final is not None
    return final


@ctmock
async def test_conflicting_writers_lose_no_update(
    ct_client: CommercetoolsClient, ct_seed: CtSeed
) -> None:
    """The emulator skips the version check when an update changes nothing
    (docs/commercetools-emulator.md, "What differs from commercetools"): a
    stale changeQuantity that happens to equal the current stock is answered 200, which
    would hide the conflict. Different deltas (1 and 1000) rule such a collision out."""
    entry = await ct_client.create_inventory_entry(
        {"sku": f"CT-{ct_seed.run}-race", "quantityOnStock": 100}
    )
    final = await _concurrent_writers(ct_client, entry, 10, (1, 1000))
    assert final["quantityOnStock"] == 100 + 10 * 1 + 10 * 1000
    assert 409 in hooks_of(ct_client).statuses("inventory.update")


@ctmock
async def test_stale_absolute_update_without_decide_raises(
    ct_client: CommercetoolsClient, ct_seed: CtSeed
) -> None:
    entry = await ct_client.create_inventory_entry(
        {"sku": f"CT-{ct_seed.run}-abs", "quantityOnStock": 10}
    )
    await ct_client.update_inventory(entry["id"], 1, [{"action": "changeQuantity", "quantity": 11}])
    with pytest.raises(CommercetoolsError) as err:
        await ct_client.update_inventory(
            entry["id"], 1, [{"action": "changeQuantity", "quantity": 3}]
        )
    assert err.value.status == 409 and err.value.has_code("ConcurrentModification")
    assert err.value.current_version == 2
    again = await ct_client.get_inventory_entry(entry["id"])
    assert again is not None and again["quantityOnStock"] == 11


@ctmock
async def test_orders_import_get_update(ct_client: CommercetoolsClient, ct_seed: CtSeed) -> None:
    number = f"PO-{ct_seed.run}"
    draft = {"orderNumber": number, "totalPrice": {"currencyCode": "EUR", "centAmount": 1999}}
    order = await ct_client.create_order_import(draft)
    got = await ct_client.get_order_by_number(number)
    assert got is not None and got["id"] == order["id"]
    assert await ct_client.get_order_by_number(f"{number}-missing") is None
    shipped = await ct_client.update_order(
        order["id"],
        order["version"],
        [{"action": "changeShipmentState", "shipmentState": "Shipped"}],
    )
    assert shipped["shipmentState"] == "Shipped"
    with pytest.raises(CommercetoolsError) as err:
        await ct_client.update_order(
            order["id"],
            order["version"],
            [{"action": "changeShipmentState", "shipmentState": "Ready"}],
        )
    assert err.value.status == 409


# --- against the strict server: auth -------------------------------------------------------
async def test_token_request_shape(
    strict: StrictServer, strict_client: CommercetoolsClient
) -> None:
    strict.seed_inventory(1)
    assert [e async for e in strict_client.query_inventory()]
    (req,) = strict.token_requests
    scope = f"manage_project:{strict.project_key}"
    # scope in the query (what the Node emulator reads) and in the form (usual practice)
    assert req["query"] == {"grant_type": "client_credentials", "scope": scope}
    assert req["form"] == {"grant_type": "client_credentials", "scope": scope}


async def test_token_renewed_before_expiry(strict: StrictServer) -> None:
    strict.expires_in = 1
    (entry_id,) = strict.seed_inventory(1)
    async with CommercetoolsClient(strict_settings(strict)) as client:
        assert await client.get_inventory_entry(entry_id) is not None
        await asyncio.sleep(1.1)  # past expires_in: the old token is dead on the server too
        assert await client.get_inventory_entry(entry_id) is not None
    assert len(strict.token_requests) == 2
    # renewed ahead of expiry, so the server never had to refuse a token
    assert [s for _, _, s in strict.requests(contains="/inventory/")] == [200, 200]


async def test_revoked_token_refetched_once(
    strict: StrictServer, strict_client: CommercetoolsClient
) -> None:
    (entry_id,) = strict.seed_inventory(1)
    assert await strict_client.get_inventory_entry(entry_id) is not None
    strict.revoke_tokens()
    assert await strict_client.get_inventory_entry(entry_id) is not None
    assert len(strict.token_requests) == 2
    assert hooks_of(strict_client).statuses("inventory.get") == [200, 401, 200]


async def test_second_401_is_raised(
    strict: StrictServer, strict_client: CommercetoolsClient
) -> None:
    (entry_id,) = strict.seed_inventory(1)
    strict.force_401(2)
    with pytest.raises(CommercetoolsError) as err:
        await strict_client.get_inventory_entry(entry_id)
    assert err.value.status == 401
    assert err.value.errors == example("Error/AuthErrorResponse.json")["errors"]


async def test_token_endpoint_failures_are_retried_once_not_per_request(
    strict: StrictServer,
) -> None:
    strict.token_faults.extend([503] * 10)
    hooks = RecordingHooks()
    settings = strict_settings(strict)
    async with CommercetoolsClient(
        settings, hooks=hooks, max_attempts=3, backoff_initial_s=0.01
    ) as client:
        with pytest.raises(AuthError) as err:
            await client.get_inventory_entry("x")
    assert err.value.status == 503
    assert hooks.statuses("token") == [503, 503, 503]  # not 3 x 3
    assert hooks.statuses("inventory.get") == []


async def test_secrets_stay_out_of_errors_reprs_and_logs(
    strict: StrictServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good = CommercetoolsClient(strict_settings(strict))
    async with good:
        strict.seed_inventory(1)
        assert [e async for e in good.query_inventory()]
        token = next(iter(strict.tokens))
        assert token not in repr(good)
        assert token not in repr(good._token)
    bad = CommercetoolsClient(strict_settings(strict, ct_client_secret="wrong-secret-xyz"))
    async with bad:
        with pytest.raises(CommercetoolsError) as err:
            await bad.get_inventory_entry("x")
    assert err.value.status == 401 and err.value.has_code("invalid_client")
    text = " ".join([str(err.value), repr(err.value), repr(bad), caplog.text])
    for secret in ("wrong-secret-xyz", strict.client_secret, token):
        assert secret not in text


# --- strict server: paging ---------------------------------------------------------------
async def test_keyset_paging_over_1000_entries(
    strict: StrictServer, strict_client: CommercetoolsClient
) -> None:
    ids = strict.seed_inventory(1234)
    got = [e async for e in strict_client.query_inventory(limit=500)]
    assert _ids(got) == sorted(ids)
    queries = strict.requests("GET", "/inventory?")
    assert len(queries) == 3  # 500 + 500 + 234, no offset anywhere
    assert not any("offset=" in path for _, path, _ in queries)
    assert all("streamsAfterId" in path for _, path, _ in queries[1:])


async def test_paging_when_server_ignores_sort(
    strict: StrictServer, strict_client: CommercetoolsClient
) -> None:
    strict.honour_sort = False
    ids = strict.seed_inventory(1234)
    got = [e async for e in strict_client.query_inventory(limit=100)]
    assert _ids(got) == sorted(ids)
    assert any("offset=" in path for _, path, _ in strict.requests("GET", "/inventory?"))


async def test_query_predicate_on_strict_server(
    strict: StrictServer, strict_client: CommercetoolsClient
) -> None:
    ch = await strict_client.create_channel({"key": "wh-strict", "roles": ["InventorySupply"]})
    in_channel = strict.seed_inventory(30, sku_prefix="IN", channel_id=ch["id"])
    strict.seed_inventory(30, sku_prefix="OUT")
    got = [e async for e in strict_client.inventory_by_channel(ch["id"])]
    assert _ids(got) == sorted(in_channel)
    assert await strict_client.channel_by_key("wh-strict") == ch
    assert await strict_client.channel_by_key("nope") is None


# --- strict server: updates --------------------------------------------------------------
async def test_add_quantity_and_negative_stock(strict_client: CommercetoolsClient) -> None:
    """addQuantity (the Node emulator answers 400 "Invalid action addQuantity") and
    removeQuantity below zero (the emulator clamps at 0; the real API allows negative)."""
    entry = await strict_client.create_inventory_entry(example("inventory-create.example.json"))
    assert entry["key"] == "ie-key-1" and entry["quantityOnStock"] == 4
    update = example("inventory-update.example.json")  # version 1, addQuantity 4
    entry = await strict_client.update_inventory(entry["id"], update["version"], update["actions"])
    assert (entry["quantityOnStock"], entry["availableQuantity"]) == (8, 8)
    remove = {**example("Inventory/InventoryEntryRemoveQuantityAction.json"), "quantity": 20}
    entry = await strict_client.update_inventory(entry["id"], entry["version"], [remove])
    assert entry["quantityOnStock"] == -12


async def test_conflict_without_current_version_rereads(
    strict: StrictServer, strict_client: CommercetoolsClient
) -> None:
    """The reference's 409 example has no currentVersion: the client must GET the entry."""
    strict.conflict_current_version = False
    (entry_id,) = strict.seed_inventory(1)
    strict.inventory[entry_id]["quantityOnStock"] = 10
    strict.interleave[entry_id] = [example("Inventory/InventoryEntryRemoveQuantityAction.json")]
    add = example("Inventory/InventoryEntryAddQuantityAction.json")  # +1
    entry = await strict_client.update_inventory(entry_id, 1, [add, add])
    assert (entry["quantityOnStock"], entry["version"]) == (11, 3)  # 10 - 1 + 2
    trail = [(m, s) for m, p, s in strict.log if entry_id in p]
    assert trail == [("POST", 409), ("GET", 200), ("POST", 200)]


async def test_conflict_with_current_version_resends_relative(
    strict: StrictServer, strict_client: CommercetoolsClient
) -> None:
    (entry_id,) = strict.seed_inventory(1)
    strict.interleave[entry_id] = [{"action": "changeQuantity", "quantity": 50}]
    entry = await strict_client.update_inventory(
        entry_id, 1, [{"action": "removeQuantity", "quantity": 5}]
    )
    assert entry["quantityOnStock"] == 45
    trail = [(m, s) for m, p, s in strict.log if entry_id in p]
    assert trail == [("POST", 409), ("POST", 200)]


async def test_conflict_redecides_absolute_and_may_decide_nothing(
    strict: StrictServer, strict_client: CommercetoolsClient
) -> None:
    (entry_id,) = strict.seed_inventory(1)
    strict.interleave[entry_id] = [{"action": "changeQuantity", "quantity": 7}]
    seen: list[int] = []

    def decide(e: Json) -> list[Json] | None:
        seen.append(e["quantityOnStock"])
        return None if e["quantityOnStock"] == 7 else [{"action": "changeQuantity", "quantity": 7}]

    entry = await strict_client.update_inventory(
        entry_id, 1, [{"action": "changeQuantity", "quantity": 7}], decide=decide
    )
    assert seen == [7] and (entry["quantityOnStock"], entry["version"]) == (7, 2)
    assert [m for m, p, _ in strict.log if entry_id in p] == ["POST", "GET"]


async def test_conflicting_writers_without_current_version(
    strict: StrictServer, strict_client: CommercetoolsClient
) -> None:
    strict.conflict_current_version = False
    entry = await strict_client.create_inventory_entry({"sku": "RACE", "quantityOnStock": 0})
    final = await _concurrent_writers(strict_client, entry, 10, (1, 1))
    assert final["quantityOnStock"] == 20
    assert 409 in hooks_of(strict_client).statuses("inventory.update")


# --- strict server: faults ---------------------------------------------------------------
async def test_503_backoff_then_success(
    strict: StrictServer, strict_client: CommercetoolsClient
) -> None:
    (entry_id,) = strict.seed_inventory(1)
    strict.fail_next(2, 503)
    assert await strict_client.get_inventory_entry(entry_id) is not None
    assert hooks_of(strict_client).statuses("inventory.get") == [503, 503, 200]


async def test_503_with_retry_after_waits_as_long_as_the_server_asked(
    strict: StrictServer, strict_client: CommercetoolsClient
) -> None:
    """The backoff here is ~10 ms; the server asks for 0.4 s and gets at least that."""
    (entry_id,) = strict.seed_inventory(1)
    await strict_client.get_inventory_entry(entry_id)  # token fetched before the clock runs
    strict.fail_next(1, 503, retry_after="0.4")
    started = time.monotonic()
    assert await strict_client.get_inventory_entry(entry_id) is not None
    assert time.monotonic() - started >= 0.4
    assert hooks_of(strict_client).statuses("inventory.get") == [200, 503, 200]


async def test_503_until_attempts_run_out(strict: StrictServer) -> None:
    (entry_id,) = strict.seed_inventory(1)
    strict.fail_next(10, 503)
    hooks = RecordingHooks()
    settings = strict_settings(strict)
    async with CommercetoolsClient(
        settings, hooks=hooks, max_attempts=3, backoff_initial_s=0.01
    ) as client:
        with pytest.raises(CommercetoolsError) as err:
            await client.get_inventory_entry(entry_id)
    assert err.value.status == 503 and err.value.codes == ["OverCapacity"]
    assert hooks.statuses("inventory.get") == [503, 503, 503]


async def test_lost_answer_then_conflict_is_not_resent(
    strict: StrictServer, strict_client: CommercetoolsClient
) -> None:
    """504 after the write landed: the retry at the same version gets 409, and the relative
    action must not be applied a second time."""
    (entry_id,) = strict.seed_inventory(1)
    strict.inventory[entry_id]["quantityOnStock"] = 10
    strict.fail_next(1, 504, apply=True)
    with pytest.raises(UpdateOutcomeUnknown):
        await strict_client.update_inventory(
            entry_id, 1, [{"action": "addQuantity", "quantity": 3}]
        )
    assert strict.inventory[entry_id]["quantityOnStock"] == 13


async def test_timeout_then_conflict_is_not_resent(strict: StrictServer) -> None:
    (entry_id,) = strict.seed_inventory(1)
    strict.inventory[entry_id]["quantityOnStock"] = 10
    settings = strict_settings(strict, ct_timeout_s=0.3)
    async with CommercetoolsClient(settings, backoff_initial_s=0.01) as client:
        await client.get_inventory_entry(entry_id)  # token first, outside the slow answer
        strict.fail_next(1, 200, apply=True, delay=1.0)
        with pytest.raises(UpdateOutcomeUnknown):
            await client.update_inventory(
                entry_id, 1, [{"action": "removeQuantity", "quantity": 4}], decide=lambda e: None
            )
    assert strict.inventory[entry_id]["quantityOnStock"] == 6


async def test_create_not_retried_after_lost_answer(
    strict: StrictServer, strict_client: CommercetoolsClient
) -> None:
    strict.fail_next(1, 502, apply=True)
    with pytest.raises(CommercetoolsError) as err:
        await strict_client.create_inventory_entry({"sku": "ONCE", "quantityOnStock": 1})
    assert err.value.status == 502
    assert [e["sku"] for e in strict.inventory.values()] == ["ONCE"]
