"""The sandbox's memory and the helpers every route module shares.

``SandboxConfig`` (what a test or the demo asks for), ``SandboxState`` (orders, tokens,
transactions, rate buckets, recorded requests; one per app, under ``STATE``) and the small
response helpers that keep Amazon's error shape in one place.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from streams.adapters.amazon_models import example, validate
from streams.sandbox.amazon.df_generator import DfOrderGenerator
from streams.sandbox.amazon.faults import Faults, FaultState
from streams.sandbox.amazon.generator import CatalogueItem, OrderGenerator, isoformat

if TYPE_CHECKING:
    from streams.config import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class SandboxConfig:
    seed: int = 1
    order_count: int = 120  # generated purchase orders served at start (and after reset)
    catalogue: Sequence[CatalogueItem | tuple[str, str, str, int]] | None = None
    selling_party: str = "VENDOR1"
    region: str = "na"
    now: datetime | None = None  # anchors generated dates; None = wall clock at start
    include_amazon_examples: bool = True  # also serve the model's sandbox example orders
    # LWA credentials the token endpoint accepts
    client_id: str = "amzn1.application-oa2-client.local"
    client_secret: str = field(default="local-secret", repr=False)
    refresh_token: str = field(default="Atzr|local-refresh-token", repr=False)
    token_ttl_s: int = 3600
    # token buckets: Amazon's usage plans are 10/s burst 10, getTransaction burst 20 (twice
    # the burst here too); ``rate_limits`` overrides (rate per second, burst) per operation
    rate_per_s: float = 10.0
    burst: int = 10
    rate_limits: dict[str, tuple[float, int]] = field(default_factory=dict)
    enforce_rate_limits: bool = True
    transaction_processing_s: float = 2.0  # Processing this long, then Success/Failure
    warehouses: tuple[str, ...] = ()  # DF warehouses accepted; empty = any
    # Direct Fulfillment orders generated at start (and after reset), from these warehouses
    df_order_count: int = 20
    df_warehouses: tuple[str, ...] = ("WH1",)
    rdt_ttl_s: int = 3600  # Restricted Data Tokens (Amazon: an hour)
    faults: Faults = field(default_factory=Faults)
    max_received: int = 5000  # remembered requests per operation

    @classmethod
    def from_settings(cls, settings: Settings, *, seed: int = 1, **overrides: Any) -> SandboxConfig:
        """A sandbox that accepts exactly the credentials in ``settings``."""
        values: dict[str, Any] = {
            "seed": seed,
            "selling_party": settings.spapi_selling_party,
            "region": settings.spapi_region,
            "client_id": settings.spapi_client_id,
            "client_secret": settings.spapi_client_secret.get_secret_value(),
            "refresh_token": settings.spapi_refresh_token.get_secret_value(),
            "df_warehouses": settings.df_warehouses,
        }
        values.update(overrides)
        return cls(**values)

    def rate_limit(self, operation: str) -> tuple[float, int]:
        if operation == "createRestrictedDataToken":  # Amazon's plan: 1/s, burst 10
            return self.rate_limits.get(operation, (min(1.0, self.rate_per_s), self.burst))
        burst = self.burst * 2 if operation == "getTransaction" else self.burst
        return self.rate_limits.get(operation, (self.rate_per_s, burst))


class TokenBucket:
    """Amazon's documented limiter: ``burst`` tokens, refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class _Transaction:
    transaction_id: str
    operation: str
    created: float  # monotonic
    errors: list[dict[str, str]] | None  # set: ends in Failure


def _error(code: str, message: str, details: str = "") -> dict[str, str]:
    return {"code": code, "message": message, "details": details}


class SandboxState:
    """Everything the sandbox remembers; one per app."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.now = (config.now or datetime.now(UTC)).astimezone(UTC)
        self.tokens: dict[str, float] = {}  # access token -> monotonic expiry
        # Restricted Data Token -> (monotonic expiry, the (method, path) resources it opens)
        self.rdts: dict[str, tuple[float, frozenset[tuple[str, str]]]] = {}
        self.reset()

    def reset(self) -> None:
        cfg = self.config
        self.orders: dict[str, dict[str, Any]] = {}
        if cfg.include_amazon_examples:
            for order in amazon_example_orders():
                self.orders.setdefault(order["purchaseOrderNumber"], order)
        self.generator = OrderGenerator(
            seed=cfg.seed,
            catalogue=cfg.catalogue,
            selling_party=cfg.selling_party,
            now=self.now,
            region=cfg.region,
            taken=self.orders,
        )
        for order in self.generator.orders(cfg.order_count):
            self.orders[order["purchaseOrderNumber"]] = order
        self.df_orders: dict[str, dict[str, Any]] = {}
        df_gen = DfOrderGenerator(
            seed=cfg.seed,
            catalogue=cfg.catalogue,
            selling_party=cfg.selling_party,
            warehouses=cfg.df_warehouses,
            now=self.now,
            region=cfg.region,
            taken=self.orders,
        )
        for order in df_gen.orders(cfg.df_order_count):
            self.df_orders[order["purchaseOrderNumber"]] = order
        self.transactions: dict[str, _Transaction] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self.received: dict[str, deque[dict[str, Any]]] = {}
        self.faults = FaultState(cfg.faults, seed=cfg.seed)

    def bucket(self, operation: str) -> TokenBucket:
        if operation not in self.buckets:
            self.buckets[operation] = TokenBucket(*self.config.rate_limit(operation))
        return self.buckets[operation]

    def record(self, operation: str, entry: dict[str, Any]) -> None:
        if operation not in self.received:
            self.received[operation] = deque(maxlen=self.config.max_received)
        self.received[operation].append(entry)

    def new_transaction(
        self,
        operation: str,
        purchase_orders: set[str],
        errors: list[dict[str, str]] | None = None,
    ) -> _Transaction:
        """A transaction that ends in Failure with ``errors`` (what Amazon finds wrong only
        while processing) or with the fault plan's, else in Success."""
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        tx = _Transaction(
            transaction_id=f"{stamp}-{uuid.uuid4()}",
            operation=operation,
            created=time.monotonic(),
            errors=errors or self.faults.transaction_failure(purchase_orders),
        )
        self.transactions[tx.transaction_id] = tx
        return tx


STATE: web.AppKey[SandboxState] = web.AppKey("spapi_sandbox_state", SandboxState)
BODY: web.RequestKey[Any] = web.RequestKey("spapi_body")  # parsed JSON request body
RESPONSE_JSON: web.RequestKey[dict[str, Any]] = web.RequestKey("spapi_response_json")


def amazon_example_orders() -> list[dict[str, Any]]:
    """Full orders from the model's ``x-amzn-api-sandbox`` examples that pass its own schema."""
    out: list[dict[str, Any]] = []
    for op in ("getPurchaseOrders", "getPurchaseOrder"):
        for ex in example("vendorOrders", op, "200"):
            payload = ex.get("response", {}).get("payload") or {}
            for order in payload.get("orders", [payload]):
                if "orderDetails" in order and not validate("vendorOrders", "Order", order):
                    out.append(orjson.loads(orjson.dumps(order)))  # a private deep copy
    return out


def _json(request: web.Request, status: int, data: dict[str, Any]) -> web.Response:
    request[RESPONSE_JSON] = data  # the recorder reads it back
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


def _errors(request: web.Request, status: int, errors: list[dict[str, str]]) -> web.Response:
    return _json(request, status, {"errors": errors})


def _problems_to_errors(problems: list[str], code: str = "InvalidInput") -> list[dict[str, str]]:
    """``path: message`` lines (amazon_models.validate) to Amazon Error objects."""
    out = []
    for p in problems[:20]:
        path, _, message = p.partition(": ")
        out.append(_error(code, message or path, path if message else ""))
    return out


@lru_cache(maxsize=4096)
def _parse_dt(value: str) -> datetime:
    ts = datetime.fromisoformat(value)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _decimal_above_zero(money: Any) -> bool:
    try:
        return Decimal(str(money["amount"])) > 0
    except (KeyError, TypeError, InvalidOperation):
        return False


def _accepted(request: web.Request, operation: str, purchase_orders: set[str]) -> web.Response:
    state = request.app[STATE]
    tx = state.new_transaction(operation, purchase_orders)
    if operation == "submitAcknowledgement" and tx.errors is None:
        stamp = isoformat(datetime.now(UTC))
        for number in purchase_orders:
            order = state.orders.get(number)
            if order and order.get("purchaseOrderState") == "New":
                order["purchaseOrderState"] = "Acknowledged"
                order.setdefault("orderDetails", {})["purchaseOrderStateChangedDate"] = stamp
    return _json(request, 202, {"payload": {"transactionId": tx.transaction_id}})


# route names of the SP-API operations (behind auth, rate limits, faults and recording)
API_ROUTES: web.AppKey[set[str]] = web.AppKey("spapi_sandbox_api_routes", set)


def add_operations(
    app: web.Application,
    operations: dict[str, tuple[str, str]],
    handlers: dict[str, Handler],
) -> None:
    """Serve ``handlers`` (operationId -> handler) at ``operations`` (operationId -> method,
    path) as SP-API operations."""
    for operation, handler in handlers.items():
        method, path = operations[operation]
        app.router.add_route(method, path, handler, name=operation)
        app.setdefault(API_ROUTES, set()).add(operation)
