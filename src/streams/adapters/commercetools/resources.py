"""The other commercetools resources the flows use: custom Types (the command ledger, the
sales-order and channel-policy fields), channels, orders."""

from __future__ import annotations

from collections.abc import Sequence

from streams.adapters.commercetools.transport import Action, CtTransport, Json, seg

PAGE = 500  # API maximum page size


async def _all_pages(http: CtTransport, path: str, operation: str) -> list[Json]:
    """Every resource at ``path`` by limit/offset (for small collections: Types, channels)."""
    out: list[Json] = []
    offset = 0
    while True:
        params = [("limit", str(PAGE)), ("offset", str(offset)), ("withTotal", "false")]
        page = await http.call("GET", path, operation=operation, params=params)
        results: list[Json] = list(page.get("results") or [])
        out += results
        if len(results) < PAGE:
            return out
        offset += len(results)


class TypesApi:
    def __init__(self, http: CtTransport) -> None:
        self._http = http

    async def by_key(self, key: str) -> Json | None:
        found: Json | None = await self._http.call(
            "GET", f"/types/key={seg(key)}", operation="type.get", allow_404=True
        )
        return found

    async def get(self, type_id: str) -> Json | None:
        found: Json | None = await self._http.call(
            "GET", f"/types/{seg(type_id)}", operation="type.get", allow_404=True
        )
        return found

    async def create(self, draft: Json) -> Json:
        created: Json = await self._http.call(
            "POST", "/types", operation="type.create", kind="create", body=draft
        )
        return created

    async def update(self, type_id: str, version: int, actions: Sequence[Action]) -> Json:
        return await self._http.update(f"/types/{seg(type_id)}", "type.update", version, actions)

    async def for_resource(self, resource_type_id: str) -> list[Json]:
        """Every Type that can sit on ``resource_type_id`` (a project has few Types)."""
        found = await _all_pages(self._http, "/types", "type.query")
        return [t for t in found if resource_type_id in (t.get("resourceTypeIds") or [])]


class ChannelsApi:
    def __init__(self, http: CtTransport) -> None:
        self._http = http

    async def by_key(self, key: str) -> Json | None:
        channel: Json | None = await self._http.call(
            "GET", f"/channels/key={seg(key)}", operation="channel.get", allow_404=True
        )
        return channel

    async def create(self, draft: Json) -> Json:
        channel: Json = await self._http.call(
            "POST", "/channels", operation="channel.create", kind="create", body=draft
        )
        return channel

    async def all(self) -> list[Json]:
        """Every channel of the project (a project has tens, not thousands)."""
        out: dict[str, Json] = {}
        for ch in await _all_pages(self._http, "/channels", "channel.query"):
            out.setdefault(str(ch["id"]), ch)  # offset pages may repeat one
        return list(out.values())

    async def update(self, channel_id: str, version: int, actions: Sequence[Action]) -> Json:
        path = f"/channels/{seg(channel_id)}"
        return await self._http.update(path, "channel.update", version, actions)


class OrdersApi:
    def __init__(self, http: CtTransport) -> None:
        self._http = http

    async def import_(self, draft: Json) -> Json:
        """POST /orders/import (an OrderImportDraft); 201 on the API, 200 on the emulator."""
        order: Json = await self._http.call(
            "POST", "/orders/import", operation="order.import", kind="create", body=draft
        )
        return order

    async def get(self, order_id: str) -> Json | None:
        order: Json | None = await self._http.call(
            "GET", f"/orders/{seg(order_id)}", operation="order.get", allow_404=True
        )
        return order

    async def by_number(self, order_number: str) -> Json | None:
        order: Json | None = await self._http.call(
            "GET",
            f"/orders/order-number={seg(order_number)}",
            operation="order.get",
            allow_404=True,
        )
        return order

    async def update(self, order_id: str, version: int, actions: Sequence[Action]) -> Json:
        """A versioned order update; a 409 is raised for the caller to re-read and re-decide."""
        return await self._http.update(f"/orders/{seg(order_id)}", "order.update", version, actions)

    async def delete(self, order_id: str, version: int) -> Json | None:
        deleted: Json | None = await self._http.call(
            "DELETE",
            f"/orders/{seg(order_id)}",
            operation="order.delete",
            kind="versioned",
            params=[("version", str(version))],
            allow_404=True,
        )
        return deleted

    async def query(self, where: str, variables: dict[str, str]) -> list[Json]:
        params = [(f"var.{k}", v) for k, v in variables.items()]
        params += [("where", where), ("limit", "500")]
        page = await self._http.call("GET", "/orders", operation="order.query", params=params)
        return list(page.get("results") or [])
