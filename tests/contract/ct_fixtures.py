"""Fixtures for the commercetools client contract tests (imported by the test module).

* ``ct_settings``: settings for the session's emulator (``tests/conftest.py``'s ``ct_api``
  starts it with ``streams.sandbox.ctmock.up`` on a free port) under a project key of this
  run; when ``STREAMS_CT_API_URL`` is set, the environment's ``STREAMS_CT_*`` settings.
* ``ct_seed``: a channel and ``SEED_ENTRIES`` inventory entries created through the client,
  under names unique to this run so a shared project is fine.
* ``strict`` / ``strict_client``: a fresh ``StrictServer`` per test, for what the emulator
  lacks (addQuantity, negative stock, 409 without currentVersion, faults, short tokens).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio

from streams.adapters.commercetools import CommercetoolsClient
from streams.config import Settings
from tests.contract.ct_strict_server import StrictServer

SEED_ENTRIES = 1100  # > 1000: the paging test runs over the seed (~0.5 s to create)
FAST_BACKOFF: dict[str, Any] = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05}


@dataclass
class RecordingHooks:
    """ClientHooks that keeps (operation, status) of every exchange."""

    calls: list[tuple[str, int]] = field(default_factory=list)

    def on_response(self, operation: str, status: int, seconds: float) -> None:
        self.calls.append((operation, status))

    def statuses(self, operation: str) -> list[int]:
        return [s for op, s in self.calls if op == operation]


@dataclass
class CtSeed:
    run: str
    channel: dict[str, Any]
    entries: list[dict[str, Any]]


@pytest.fixture(scope="session", name="ct_settings")
def ct_settings_fixture(ct_api: str) -> Settings:
    values: dict[str, Any] = {}
    if not os.environ.get("STREAMS_CT_API_URL"):
        # the emulator keeps one store per project key: a fresh key isolates this module
        project = f"contract-{uuid.uuid4().hex[:8]}"
        values = {
            "ct_api_url": ct_api,
            "ct_auth_url": ct_api,
            "ct_project_key": project,
            "ct_scopes": f"manage_project:{project}",
        }
    return Settings(**values)


@pytest_asyncio.fixture(scope="session", name="ct_seed")
async def ct_seed_fixture(ct_settings: Settings) -> CtSeed:
    run = uuid.uuid4().hex[:8]
    async with CommercetoolsClient(ct_settings) as client:
        channel = await client.create_channel(
            {"key": f"wh-{run}", "roles": ["InventorySupply"], "name": {"en": f"wh {run}"}}
        )
        ref = {"typeId": "channel", "id": channel["id"]}
        sem = asyncio.Semaphore(16)

        async def create(i: int) -> dict[str, Any]:
            async with sem:
                draft = {"sku": f"CT-{run}-{i:05d}", "quantityOnStock": i, "supplyChannel": ref}
                return await client.create_inventory_entry(draft)

        entries = await asyncio.gather(*(create(i) for i in range(SEED_ENTRIES)))
    return CtSeed(run, channel, list(entries))


@pytest_asyncio.fixture(name="ct_client")
async def ct_client_fixture(ct_settings: Settings) -> AsyncIterator[CommercetoolsClient]:
    async with CommercetoolsClient(ct_settings, hooks=RecordingHooks(), **FAST_BACKOFF) as c:
        yield c


def hooks_of(client: CommercetoolsClient) -> RecordingHooks:
    hooks = client._hooks
    assert isinstance(hooks, RecordingHooks)
    return hooks


def strict_settings(server: StrictServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "ct_api_url": server.url,
        "ct_auth_url": server.url,
        "ct_project_key": server.project_key,
        "ct_client_id": server.client_id,
        "ct_client_secret": server.client_secret,
        "ct_scopes": f"manage_project:{server.project_key}",
        "ct_timeout_s": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest_asyncio.fixture(name="strict")
async def strict_fixture() -> AsyncIterator[StrictServer]:
    server = StrictServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture(name="strict_client")
async def strict_client_fixture(strict: StrictServer) -> AsyncIterator[CommercetoolsClient]:
    client = CommercetoolsClient(strict_settings(strict), hooks=RecordingHooks(), **FAST_BACKOFF)
    async with client:
        yield client
