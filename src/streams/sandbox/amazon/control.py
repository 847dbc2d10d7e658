"""A small client for the sandbox's ``/_sandbox`` control API (tests, demo, bench)."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson


class SandboxControl:
    """Inspect and steer a running SP-API sandbox at ``base_url``."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session

    async def _send(self, method: str, path: str, body: Any = None) -> Any:
        data = orjson.dumps(body) if body is not None else None
        headers = {"content-type": "application/json"} if data is not None else {}
        url = f"{self.base_url}/_sandbox/{path}"
        async with self._session.request(method, url, data=data, headers=headers) as resp:
            raw = await resp.read()
            if resp.status >= 400:
                raise RuntimeError(f"sandbox {method} {path}: HTTP {resp.status} {raw[:500]!r}")
            return orjson.loads(raw)

    async def received(self, operation: str | None = None) -> list[dict[str, Any]]:
        """Requests the sandbox saw (of one operation, or all), oldest first."""
        path = "received" + (f"?operation={operation}" if operation else "")
        data = await self._send("GET", path)
        return [e for entries in data["operations"].values() for e in entries]

    async def statuses(self, operation: str) -> list[int]:
        return [e["status"] for e in await self.received(operation)]

    async def set_faults(self, faults: dict[str, Any]) -> dict[str, Any]:
        """See ``faults.faults_from_json`` for the shape; returns the live fault plan."""
        result: dict[str, Any] = await self._send("POST", "faults", faults)
        return result

    async def add_orders(
        self, orders: list[dict[str, Any]] | None = None, **generate: Any
    ) -> list[dict[str, Any]]:
        """Serve ``orders`` and/or generated ones (``count=, seed=, catalogue=``)."""
        body: dict[str, Any] = {"orders": orders or []}
        if generate:
            body["generate"] = generate
        data = await self._send("POST", "orders", body)
        added: list[dict[str, Any]] = data["orders"]
        return added

    async def order_numbers(self) -> dict[str, str]:
        data = await self._send("GET", "orders")
        return {o["purchaseOrderNumber"]: o["purchaseOrderState"] for o in data["orders"]}

    async def close_order(
        self,
        number: str,
        how: str,
        *,
        at: str | None = None,
        received: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """Amazon closes PO ``number``: ``received`` (all, or ``received`` per item),
        ``cancelled`` (every item to 0) or ``rejected``; returns the closed Order."""
        body: dict[str, Any] = {"purchaseOrderNumber": number, "how": how}
        if at:
            body["at"] = at
        if received is not None:
            body["received"] = received
        data = await self._send("POST", "orders/close", body)
        order: dict[str, Any] = data["order"]
        return order

    async def add_df_orders(
        self, orders: list[dict[str, Any]] | None = None, **generate: Any
    ) -> list[dict[str, Any]]:
        """Serve DF ``orders`` and/or generated ones (``count=, seed=, warehouse=,
        createdAt=, catalogue=``); returns the orders added (with their addresses)."""
        body: dict[str, Any] = {"orders": orders or []}
        if generate:
            body["generate"] = generate
        data = await self._send("POST", "df-orders", body)
        added: list[dict[str, Any]] = data["orders"]
        return added

    async def df_orders(self) -> dict[str, str]:
        """DF order number -> orderStatus."""
        data = await self._send("GET", "df-orders")
        return {o["purchaseOrderNumber"]: o["orderStatus"] for o in data["orders"]}

    async def expire_tokens(self) -> int:
        return int((await self._send("POST", "expire-tokens", {}))["expired"])

    async def reset(self) -> None:
        await self._send("POST", "reset", {})
