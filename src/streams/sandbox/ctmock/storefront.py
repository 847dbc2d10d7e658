"""Storefront actions against the commercetools emulator (or a real project), for tests and demos.

Plain commercetools HTTP API calls over a caller's ``aiohttp.ClientSession``: a cart with an
``inventoryMode`` turned into an order, cancelling it, and a Kafka (``ConfluentCloud``)
subscription. Products must exist for cart line items; ``ensure_products`` creates a minimal
published product per SKU when it is missing. Errors raise ``StorefrontError`` with the body
commercetools returned (e.g. ``OutOfStock`` with ``lineItems``/``skus``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import aiohttp

InventoryMode = Literal["None", "TrackOnly", "ReserveOnOrder"]
Format = Literal["Platform", "CloudEvents"]

PRODUCT_TYPE_KEY = "storefront-emulator"


class StorefrontError(RuntimeError):
    """A commercetools call answered with an error status."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        super().__init__(f"commercetools answered {status}: {body}")

    @property
    def codes(self) -> list[str]:
        errors = self.body.get("errors", []) if isinstance(self.body, dict) else []
        return [str(e.get("code")) for e in errors if isinstance(e, dict)]


async def _call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    token: str,
    body: Any = None,
    params: Mapping[str, str] | None = None,
) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    async with session.request(method, url, json=body, params=params, headers=headers) as resp:
        data = await resp.json(content_type=None)
        if resp.status >= 400:
            raise StorefrontError(resp.status, data)
        return data


async def fetch_token(
    session: aiohttp.ClientSession, auth_url: str, client_id: str, client_secret: str
) -> str:
    """A client-credentials access token (the emulator accepts any client id and secret)."""
    auth = aiohttp.BasicAuth(client_id, client_secret)
    async with session.post(
        f"{auth_url.rstrip('/')}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=auth,
    ) as resp:
        data = await resp.json(content_type=None)
        if resp.status >= 400:
            raise StorefrontError(resp.status, data)
        return str(data["access_token"])


async def ensure_products(
    session: aiohttp.ClientSession,
    base_url: str,
    token: str,
    project: str,
    skus: Iterable[str],
    currency: str = "EUR",
) -> None:
    """Create a published product (price 1.00 ``currency``) for each SKU that has none."""
    root = f"{base_url.rstrip('/')}/{project}"
    wanted = sorted(set(skus))
    if not wanted:
        return
    where = "masterData(current(masterVariant(sku in ({}))))".format(
        ", ".join(f'"{s}"' for s in wanted)
    )
    found = await _call(
        session, "GET", f"{root}/products", token, params={"where": where, "limit": "500"}
    )
    have = {p["masterData"]["current"]["masterVariant"].get("sku") for p in found["results"]}
    missing = [s for s in wanted if s not in have]
    if not missing:
        return
    try:
        await _call(session, "GET", f"{root}/product-types/key={PRODUCT_TYPE_KEY}", token)
    except StorefrontError as exc:
        if exc.status != 404:
            raise
        draft = {
            "key": PRODUCT_TYPE_KEY,
            "name": PRODUCT_TYPE_KEY,
            "description": "storefront emulator",
        }
        await _call(session, "POST", f"{root}/product-types", token, draft)
    for sku in missing:
        slug = f"{sku.lower()}-{uuid.uuid4().hex[:6]}"
        await _call(
            session,
            "POST",
            f"{root}/products",
            token,
            {
                "productType": {"typeId": "product-type", "key": PRODUCT_TYPE_KEY},
                "name": {"en": sku},
                "slug": {"en": slug},
                "masterVariant": {
                    "sku": sku,
                    "prices": [{"value": {"currencyCode": currency, "centAmount": 100}}],
                },
                "publish": True,
            },
        )


async def place_order(
    session: aiohttp.ClientSession,
    base_url: str,
    token: str,
    project: str,
    sku_lines: Mapping[str, int] | Iterable[tuple[str, int]],
    mode: InventoryMode = "ReserveOnOrder",
    channel_id: str | None = None,
    *,
    currency: str = "EUR",
    order_number: str | None = None,
    ensure: bool = True,
) -> dict[str, Any]:
    """Create a cart (``inventoryMode=mode``, each line from ``channel_id``'s stock when given)
    and order it; returns the order JSON. Creates missing products first (``ensure_products``)
    unless ``ensure`` is false.
    Raises ``StorefrontError`` (``codes == ["OutOfStock"]``) when commercetools refuses it."""
    lines = list(sku_lines.items()) if isinstance(sku_lines, Mapping) else list(sku_lines)
    root = f"{base_url.rstrip('/')}/{project}"
    if ensure:
        await ensure_products(session, base_url, token, project, (s for s, _ in lines), currency)
    items: list[dict[str, Any]] = []
    for sku, quantity in lines:
        item: dict[str, Any] = {"sku": sku, "quantity": quantity}
        if channel_id is not None:
            item["supplyChannel"] = {"typeId": "channel", "id": channel_id}
        items.append(item)
    cart = await _call(
        session,
        "POST",
        f"{root}/carts",
        token,
        {"currency": currency, "inventoryMode": mode, "lineItems": items},
    )
    draft: dict[str, Any] = {
        "cart": {"typeId": "cart", "id": cart["id"]},
        "version": cart["version"],
    }
    if order_number is not None:
        draft["orderNumber"] = order_number
    order: dict[str, Any] = await _call(session, "POST", f"{root}/orders", token, draft)
    return order


async def cancel_order(
    session: aiohttp.ClientSession,
    base_url: str,
    token: str,
    project: str,
    order: Mapping[str, Any],
) -> dict[str, Any]:
    """Set ``order``'s state to ``Cancelled`` (the emulator then restocks its lines)."""
    root = f"{base_url.rstrip('/')}/{project}"
    body = {
        "version": order["version"],
        "actions": [{"action": "changeOrderState", "orderState": "Cancelled"}],
    }
    result: dict[str, Any] = await _call(
        session, "POST", f"{root}/orders/{order['id']}", token, body
    )
    return result


async def create_kafka_subscription(
    session: aiohttp.ClientSession,
    base_url: str,
    token: str,
    project: str,
    bootstrap: str,
    topic: str,
    key: str,
    fmt: Format = "Platform",
    *,
    messages: Iterable[Mapping[str, Any]] = (
        {"resourceTypeId": "order", "types": []},
        {"resourceTypeId": "inventory-entry", "types": []},
    ),
    changes: Iterable[str] = (),
    subscription_key: str | None = None,
) -> dict[str, Any]:
    """A Subscription whose ConfluentCloud destination writes to ``topic`` at ``bootstrap``
    with record key ``key``; ``changes`` names resource types for change notifications."""
    draft: dict[str, Any] = {
        "destination": {
            "type": "ConfluentCloud",
            "bootstrapServer": bootstrap,
            "apiKey": "local",
            "apiSecret": "local",
            "acks": "all",
            "topic": topic,
            "key": key,
        },
        "messages": [dict(m) for m in messages],
        "changes": [{"resourceTypeId": c} for c in changes],
        "format": {"type": "CloudEvents", "cloudEventsVersion": "1.0"}
        if fmt == "CloudEvents"
        else {"type": "Platform"},
    }
    if subscription_key is not None:
        draft["key"] = subscription_key
    root = f"{base_url.rstrip('/')}/{project}"
    result: dict[str, Any] = await _call(session, "POST", f"{root}/subscriptions", token, draft)
    return result
