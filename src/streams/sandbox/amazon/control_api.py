"""The sandbox's control API (``/_sandbox/*``, unauthenticated): what was received, orders,
faults, reset, token expiry. Tests and the demo steer the sandbox with it
(:class:`~streams.sandbox.amazon.control.SandboxControl` is its client)."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from typing import Any

import orjson
from aiohttp import web

from streams.adapters.amazon_models import validate
from streams.sandbox.amazon.faults import faults_from_json
from streams.sandbox.amazon.generator import CatalogueItem, OrderGenerator
from streams.sandbox.amazon.state import STATE


def _plain(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    return orjson.loads(raw) if raw.strip() else {}


async def control_received(request: web.Request) -> web.Response:
    state = request.app[STATE]
    wanted = request.query.get("operation")
    ops = {op: list(d) for op, d in state.received.items() if wanted in (None, op)}
    counts = {op: dict(Counter(str(e["status"]) for e in entries)) for op, entries in ops.items()}
    return _plain({"operations": ops, "counts": counts})


async def control_list_orders(request: web.Request) -> web.Response:
    orders = request.app[STATE].orders.values()
    return _plain(
        {
            "orders": [
                {
                    "purchaseOrderNumber": o["purchaseOrderNumber"],
                    "purchaseOrderState": o.get("purchaseOrderState"),
                }
                for o in orders
            ]
        }
    )


async def control_add_orders(request: web.Request) -> web.Response:
    """``{"orders": [Order...]}`` and/or ``{"generate": {"count", "seed", "catalogue"}}``."""
    state = request.app[STATE]
    try:
        data = await _json_body(request)
    except orjson.JSONDecodeError as exc:
        return _plain({"error": f"invalid JSON: {exc}"}, 400)
    orders = data.get("orders", []) if isinstance(data, dict) else data
    if not isinstance(orders, list):
        return _plain({"error": "orders must be a list of Order objects"}, 400)
    problems = [
        f"orders/{i}/{p}"
        for i, o in enumerate(orders)
        for p in validate("vendorOrders", "Order", o)
    ]
    if problems:
        return _plain({"error": "invalid orders", "problems": problems[:50]}, 400)
    spec = data.get("generate") if isinstance(data, dict) else None
    if spec:
        cfg = state.config
        try:
            gen = OrderGenerator(
                seed=int(spec.get("seed", secrets.randbits(32))),
                catalogue=[
                    CatalogueItem(**c) if isinstance(c, dict) else CatalogueItem(*c)
                    for c in spec["catalogue"]
                ]
                if spec.get("catalogue")
                else cfg.catalogue,
                selling_party=str(spec.get("sellingParty", cfg.selling_party)),
                region=cfg.region,
                taken=[*state.orders, *(o["purchaseOrderNumber"] for o in orders)],
            )
            orders = [*orders, *gen.orders(int(spec.get("count", 1)))]
        except (TypeError, ValueError) as exc:
            return _plain({"error": f"bad generate spec: {exc}"}, 400)
    for order in orders:
        state.orders[order["purchaseOrderNumber"]] = order
    return _plain({"added": [o["purchaseOrderNumber"] for o in orders], "orders": orders}, 201)


async def control_faults(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.method == "POST":
        try:
            data = await _json_body(request)
            state.faults.apply(faults_from_json(data), clear=bool(data.get("clear")))
        except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
            return _plain({"error": str(exc)}, 400)
    return _plain(state.faults.to_json())


async def control_reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()  # access tokens survive, so connected clients keep working
    return _plain({"reset": True})


async def control_expire_tokens(request: web.Request) -> web.Response:
    state = request.app[STATE]
    now = time.monotonic()
    for token in state.tokens:
        state.tokens[token] = now
    return _plain({"expired": len(state.tokens)})


def install(app: web.Application) -> None:
    app.router.add_get("/_sandbox/received", control_received)
    app.router.add_get("/_sandbox/orders", control_list_orders)
    app.router.add_post("/_sandbox/orders", control_add_orders)
    app.router.add_get("/_sandbox/faults", control_faults)
    app.router.add_post("/_sandbox/faults", control_faults)
    app.router.add_post("/_sandbox/reset", control_reset)
    app.router.add_post("/_sandbox/expire-tokens", control_expire_tokens)
