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

from streams.adapters.amazon_models import available, validate
from streams.sandbox.amazon.df_generator import DfOrderGenerator
from streams.sandbox.amazon.faults import faults_from_json
from streams.sandbox.amazon.generator import CatalogueItem, OrderGenerator
from streams.sandbox.amazon.state import STATE, _parse_dt


def _plain(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


def _catalogue(spec: dict[str, Any], default: Any) -> Any:
    """A generate spec's ``catalogue`` (items as objects or tuples), else the sandbox's own."""
    if not spec.get("catalogue"):
        return default
    items = spec["catalogue"]
    return [CatalogueItem(**c) if isinstance(c, dict) else CatalogueItem(*c) for c in items]


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
                catalogue=_catalogue(spec, cfg.catalogue),
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
    for rdt, (_expiry, resources) in state.rdts.items():
        state.rdts[rdt] = (now, resources)
    return _plain({"expired": len(state.tokens) + len(state.rdts)})


async def control_list_df_orders(request: web.Request) -> web.Response:
    """DF orders: number, status and ship-from (no addresses: tests read them from getOrder)."""
    orders = request.app[STATE].df_orders.values()
    return _plain(
        {
            "orders": [
                {
                    "purchaseOrderNumber": o["purchaseOrderNumber"],
                    "orderStatus": o["orderDetails"].get("orderStatus"),
                    "shipFromPartyId": o["orderDetails"]["shipFromParty"]["partyId"],
                    "orderDate": o["orderDetails"]["orderDate"],
                }
                for o in orders
            ]
        }
    )


async def control_add_df_orders(request: web.Request) -> web.Response:
    """``{"orders": [Order...]}`` and/or ``{"generate": {"count", "seed", "warehouse",
    "createdAt", "catalogue"}}`` (DF orders 2021-12-28; validated when the model is there)."""
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
        for p in (validate("df-orders", "Order", o) if available("df-orders") else [])
    ]
    problems += [
        f"orders/{i}: orderDetails with orderDate, shipFromParty and items is required"
        for i, o in enumerate(orders)
        if not _df_order_shape(o)
    ]
    if problems:
        return _plain({"error": "invalid orders", "problems": problems[:50]}, 400)
    spec = data.get("generate") if isinstance(data, dict) else None
    if spec:
        cfg = state.config
        try:
            gen = DfOrderGenerator(
                seed=int(spec.get("seed", secrets.randbits(32))),
                catalogue=_catalogue(spec, cfg.catalogue),
                selling_party=str(spec.get("sellingParty", cfg.selling_party)),
                warehouses=[str(spec["warehouse"])] if spec.get("warehouse") else cfg.df_warehouses,
                region=cfg.region,
                taken=[
                    *state.df_orders,
                    *state.orders,
                    *(o["purchaseOrderNumber"] for o in orders),
                ],
            )
            at = _parse_dt(str(spec["createdAt"])) if spec.get("createdAt") else None
            orders = [*orders, *(gen.order(created=at) for _ in range(int(spec.get("count", 1))))]
        except (TypeError, ValueError) as exc:
            return _plain({"error": f"bad generate spec: {exc}"}, 400)
    for order in orders:
        state.df_orders[order["purchaseOrderNumber"]] = order
    return _plain({"added": [o["purchaseOrderNumber"] for o in orders], "orders": orders}, 201)


def _df_order_shape(order: Any) -> bool:
    d = order.get("orderDetails") if isinstance(order, dict) else None
    return (
        isinstance(order, dict)
        and isinstance(order.get("purchaseOrderNumber"), str)
        and isinstance(d, dict)
        and isinstance(d.get("orderDate"), str)
        and isinstance((d.get("shipFromParty") or {}).get("partyId"), str)
        and isinstance(d.get("items"), list)
        and all(isinstance(i, dict) and "itemSequenceNumber" in i for i in d["items"])
    )


def install(app: web.Application) -> None:
    app.router.add_get("/_sandbox/received", control_received)
    app.router.add_get("/_sandbox/orders", control_list_orders)
    app.router.add_post("/_sandbox/orders", control_add_orders)
    app.router.add_get("/_sandbox/df-orders", control_list_df_orders)
    app.router.add_post("/_sandbox/df-orders", control_add_df_orders)
    app.router.add_get("/_sandbox/faults", control_faults)
    app.router.add_post("/_sandbox/faults", control_faults)
    app.router.add_post("/_sandbox/reset", control_reset)
    app.router.add_post("/_sandbox/expire-tokens", control_expire_tokens)
