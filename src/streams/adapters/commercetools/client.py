"""``CommercetoolsClient``: one commercetools project, composed of resource APIs
(:mod:`.inventory`, :mod:`.resources`) over one :class:`~.transport.CtTransport`.

Behaviour follows docs/commercetools.md: token cached until shortly
before ``expires_in`` and re-fetched once on a 401; 502/503/504 and connection errors retried
with jittered exponential backoff; 409 ConcurrentModification answered by re-reading and
re-deciding, never by blindly overwriting. Secrets (client secret, tokens) never reach logs,
reprs or error messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

import aiohttp

from streams.adapters import http
from streams.adapters.commercetools.inventory import MAX_LIMIT, Decide, InventoryApi, Variables
from streams.adapters.commercetools.resources import ChannelsApi, OrdersApi, TypesApi
from streams.adapters.commercetools.transport import Action, CtTransport, Json
from streams.config import Settings

if TYPE_CHECKING:
    from streams.domain.ports import InventoryEntryReader, InventoryQuery, OrderReader


class CommercetoolsClient:
    """Async client for one commercetools project; use as ``async with``.

    ``session`` may be shared (it is then not closed here); it must not set
    ``raise_for_status``. ``hooks.on_response`` sees every exchange, token requests included.
    The resource APIs are attributes (``inventory``, ``types``, ``channels``, ``orders``);
    the methods below are the stable surface the flows call.
    """

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession | None = None,
        *,
        hooks: http.Hooks | None = None,
        max_attempts: int = 5,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        max_conflict_retries: int = 10,
    ) -> None:
        retry = http.RetryPolicy(
            attempts=max(1, max_attempts),
            backoff_s=backoff_initial_s,
            max_backoff_s=backoff_max_s,
            jitter_s=backoff_initial_s,
        )
        self.http = CtTransport(settings, session, hooks=hooks, retry=retry)
        self.inventory = InventoryApi(self.http, max_conflict_retries=max_conflict_retries)
        self.types = TypesApi(self.http)
        self.channels = ChannelsApi(self.http)
        self.orders = OrdersApi(self.http)

    def __repr__(self) -> str:
        return f"CommercetoolsClient(project={self.http.project!r}, api={self.http.api!r})"

    async def __aenter__(self) -> Self:
        self.http.sessions.session  # noqa: B018 - opened here, in the caller's loop
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.close()

    @property
    def _hooks(self) -> http.Hooks | None:
        return self.http.hooks

    @property
    def _token(self) -> http.Token | None:
        return self.http.tokens.token

    # --- inventory -------------------------------------------------------------------
    async def get_inventory_entry(self, entry_id: str) -> Json | None:
        """The entry as the API's JSON, or None when it does not exist."""
        return await self.inventory.get(entry_id)

    def query_inventory(
        self,
        where: str | None = None,
        variables: Variables | None = None,
        limit: int = MAX_LIMIT,
    ) -> AsyncIterator[Json]:
        """Every entry matching ``where`` (a Query Predicate; ``:name`` placeholders bound by
        ``variables``), in ascending ``id`` order. ``limit`` is the page size (20..500)."""
        return self.inventory.query(where, variables, limit)

    async def inventory_by_sku(self, sku: str) -> list[Json]:
        """All entries of one SKU (one per supply channel, plus the channel-less one)."""
        return [e async for e in self.query_inventory("sku = :sku", {"sku": sku})]

    def inventory_by_channel(self, channel_id: str) -> AsyncIterator[Json]:
        """Every entry supplied by one channel (warehouse)."""
        return self.query_inventory("supplyChannel(id = :channelId)", {"channelId": channel_id})

    async def inventory_of_skus(self, skus: Sequence[str]) -> list[Json]:
        """All entries of many SKUs in one query (paged past 500 entries)."""
        if not skus:
            return []
        return [e async for e in self.query_inventory("sku in :skus", {"skus": list(skus)})]

    def inventory_modified_between(self, start: str, end: str) -> AsyncIterator[Json]:
        """Entries whose ``lastModifiedAt`` lies in [start, end] (ISO-8601), in id order: a
        closed window is complete whatever order the server sorts by."""
        where = "lastModifiedAt >= :modifiedFrom and lastModifiedAt <= :modifiedTo"
        return self.query_inventory(where, {"modifiedFrom": start, "modifiedTo": end})

    async def create_inventory_entry(self, draft: Json) -> Json:
        return await self.inventory.create(draft)

    async def update_inventory(
        self,
        entry_id: str,
        version: int,
        actions: Sequence[Action],
        *,
        retry_conflicts: bool = True,
        decide: Decide | None = None,
    ) -> Json:
        """Apply ``actions`` at ``version``; returns the updated entry.

        On 409 ConcurrentModification (with ``retry_conflicts``):

        * with ``decide``: re-read the entry and send ``decide(entry)`` at its version
          (None or no actions = nothing left to do, the fresh entry is returned). This is how
          absolute actions (changeQuantity) are retried: re-decided, never overwritten;
        * else, if every action is relative (add/removeQuantity): re-send them at the
          error's ``currentVersion``, or at a re-read version when the error has none;
        * else the 409 is raised: re-sending absolute actions would clobber the other writer.

        Only a 409 proves the attempt was not applied; after a timeout or 502/504 a later
        failure raises ``UpdateOutcomeUnknown`` instead of re-sending anything.
        """
        return await self.inventory.update(
            entry_id, version, actions, retry_conflicts=retry_conflicts, decide=decide
        )

    # --- custom Types (the command ledger, sales-order and policy fields) --------------
    async def get_type_by_key(self, key: str) -> Json | None:
        return await self.types.by_key(key)

    async def get_type(self, type_id: str) -> Json | None:
        return await self.types.get(type_id)

    async def create_type(self, draft: Json) -> Json:
        return await self.types.create(draft)

    async def update_type(self, type_id: str, version: int, actions: Sequence[Action]) -> Json:
        return await self.types.update(type_id, version, actions)

    async def types_for(self, resource_type_id: str) -> list[Json]:
        """Every Type that can sit on ``resource_type_id`` (a project has few Types)."""
        return await self.types.for_resource(resource_type_id)

    # --- channels --------------------------------------------------------------------
    async def channel_by_key(self, key: str) -> Json | None:
        return await self.channels.by_key(key)

    async def create_channel(self, draft: Json) -> Json:
        return await self.channels.create(draft)

    async def all_channels(self) -> list[Json]:
        """Every channel of the project (a project has tens, not thousands)."""
        return await self.channels.all()

    async def update_channel(
        self, channel_id: str, version: int, actions: Sequence[Action]
    ) -> Json:
        return await self.channels.update(channel_id, version, actions)

    # --- orders (finance feature) ----------------------------------------------------
    async def create_order_import(self, draft: Json) -> Json:
        """POST /orders/import (an OrderImportDraft); 201 on the API, 200 on the emulator."""
        return await self.orders.import_(draft)

    async def get_order(self, order_id: str) -> Json | None:
        return await self.orders.get(order_id)

    async def get_order_by_number(self, order_number: str) -> Json | None:
        return await self.orders.by_number(order_number)

    async def update_order(self, order_id: str, version: int, actions: Sequence[Action]) -> Json:
        """A versioned order update; a 409 is raised for the caller to re-read and re-decide."""
        return await self.orders.update(order_id, version, actions)

    async def delete_order(self, order_id: str, version: int) -> Json | None:
        return await self.orders.delete(order_id, version)

    async def query_orders(self, where: str, variables: dict[str, str]) -> list[Json]:
        return await self.orders.query(where, variables)


if TYPE_CHECKING:

    def _satisfies_port(client: CommercetoolsClient) -> InventoryEntryReader:
        return client  # mypy checks CommercetoolsClient against the port

    def _satisfies_order_port(client: CommercetoolsClient) -> OrderReader:
        return client

    def _satisfies_query_port(client: CommercetoolsClient) -> InventoryQuery:
        return client
