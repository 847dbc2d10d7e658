"""A local Amazon SP-API sandbox (Vendor Retail Procurement + DF inventory), on aiohttp.

Behaves like the parts of Amazon our adapter touches: LWA refresh-token exchange, access
tokens that expire, per-operation token buckets answering 429, request bodies validated
against Amazon's own models (schemas/amazon) plus the rules Amazon only *describes*
(netCost on acknowledgements), asynchronous transactions, and purchase orders from a seeded
generator. ``/_sandbox/*`` is an unauthenticated control API for tests and the demo.
Binds 127.0.0.1 only: it checks credentials, but it is still a test double.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import secrets
import signal
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from streams.adapters.amazon_models import example, validate
from streams.sandbox.amazon import df_transactions, invoices
from streams.sandbox.amazon.faults import Faults, FaultState, faults_from_json
from streams.sandbox.amazon.generator import CatalogueItem, OrderGenerator, isoformat

if TYPE_CHECKING:
    from streams.config import Settings

HOST = "127.0.0.1"
MAX_WINDOW = timedelta(days=7)
LWA_OPERATION = "lwaToken"

# operationId -> (method, path); the paths are Amazon's, from the vendored models
OPERATIONS: dict[str, tuple[str, str]] = {
    "getPurchaseOrders": ("GET", "/vendor/orders/v1/purchaseOrders"),
    "getPurchaseOrder": ("GET", "/vendor/orders/v1/purchaseOrders/{purchaseOrderNumber}"),
    "getPurchaseOrdersStatus": ("GET", "/vendor/orders/v1/purchaseOrdersStatus"),  # lifecycle.py
    "submitAcknowledgement": ("POST", "/vendor/orders/v1/acknowledgements"),
    "getTransaction": ("GET", "/vendor/transactions/v1/transactions/{transactionId}"),
    "SubmitShipmentConfirmations": ("POST", "/vendor/shipping/v1/shipmentConfirmations"),
    "submitInventoryUpdate": (
        "POST",
        "/vendor/directFulfillment/inventory/v1/warehouses/{warehouseId}/items",
    ),
    **df_transactions.OPERATIONS,  # DF transaction status: its own module
    **invoices.OPERATIONS,  # submitInvoices: its own module
}

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
        }
        values.update(overrides)
        return cls(**values)

    def rate_limit(self, operation: str) -> tuple[float, int]:
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

    def new_transaction(self, operation: str, purchase_orders: set[str]) -> _Transaction:
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        tx = _Transaction(
            transaction_id=f"{stamp}-{uuid.uuid4()}",
            operation=operation,
            created=time.monotonic(),
            errors=self.faults.transaction_failure(purchase_orders),
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


# --- helpers ---------------------------------------------------------------------------


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


# --- middleware: auth, rate limits, faults, recording ----------------------------------


@web.middleware
async def _api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route_name = request.match_info.route.name
    if route_name not in OPERATIONS:
        return await handler(request)
    operation = route_name
    state = request.app[STATE]
    request_id = str(uuid.uuid4())
    rate, _burst = state.config.rate_limit(operation)

    raw = await request.read()
    body: Any = None
    body_problem: tuple[int, dict[str, str]] | None = None
    if request.method == "POST":
        if request.content_type != "application/json":
            body_problem = (
                415,
                _error(
                    "UnsupportedMediaType",
                    "The request payload is in an unsupported format.",
                    request.content_type,
                ),
            )
        else:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                body = {"_raw": raw[:2000].decode("utf-8", "replace")}
                body_problem = (
                    400,
                    _error("InvalidInput", "The request body is not valid JSON.", str(exc)),
                )
    request[BODY] = body

    response = await _guarded(request, handler, operation, body_problem)
    response.headers["x-amzn-RequestId"] = request_id
    response.headers["x-amzn-RateLimit-Limit"] = str(float(rate))
    data = request.get(RESPONSE_JSON) or {}
    state.record(
        operation,
        {
            "operation": operation,
            "method": request.method,
            "path": request.rel_url.raw_path,  # as sent, percent-encoding intact
            "params": dict(request.match_info),
            "query": dict(request.query),
            "body": body,
            "status": response.status,
            "transactionId": (data.get("payload") or {}).get("transactionId"),
            "errors": data.get("errors"),
            "requestId": request_id,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        },
    )
    return response


async def _guarded(
    request: web.Request,
    handler: Handler,
    operation: str,
    body_problem: tuple[int, dict[str, str]] | None,
) -> web.StreamResponse:
    state = request.app[STATE]
    latency = state.faults.latency(operation)
    if latency:
        await asyncio.sleep(latency)

    token = request.headers.get("x-amz-access-token", "")
    expiry = state.tokens.get(token) if token else None
    if expiry is None:
        details = (
            "The access token you provided is revoked, malformed or invalid."
            if token
            else "The request has no x-amz-access-token header."
        )
        return _errors(
            request,
            403,
            [_error("Unauthorized", "Access to requested resource is denied.", details)],
        )
    if expiry <= time.monotonic():
        return _errors(
            request, 403, [_error("Unauthorized", "The access token you provided has expired.")]
        )

    throttled = state.faults.throttled(operation)
    if not throttled and state.config.enforce_rate_limits:
        throttled = not state.bucket(operation).take()
    if throttled:
        return _errors(
            request,
            429,
            [_error("QuotaExceeded", "You exceeded your quota for the requested resource.")],
        )

    status = state.faults.server_error(operation)
    if status is not None:
        err = (
            _error("InternalFailure", "We encountered an internal error. Please try again.")
            if status == 500
            else _error("ServiceUnavailable", "Temporary overloading or maintenance of the server.")
        )
        return _errors(request, status, [err])

    if body_problem is not None:
        return _errors(request, body_problem[0], [body_problem[1]])
    return await handler(request)


# --- LWA -------------------------------------------------------------------------------


async def lwa_token(request: web.Request) -> web.Response:
    state = request.app[STATE]
    cfg = state.config
    form = await request.post()
    grant, refresh = str(form.get("grant_type", "")), str(form.get("refresh_token", ""))
    client_id, client_secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))

    def lwa_error(status: int, error: str, description: str) -> web.Response:
        return _json(request, status, {"error": error, "error_description": description})

    if grant != "refresh_token":
        resp = lwa_error(
            400,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the server.",
        )
    elif not (refresh and client_id and client_secret):
        resp = lwa_error(400, "invalid_request", "The request is missing a required parameter.")
    elif not (
        hmac.compare_digest(client_id, cfg.client_id)
        and hmac.compare_digest(client_secret, cfg.client_secret)
    ):
        resp = lwa_error(401, "invalid_client", "Client authentication failed.")
    elif not hmac.compare_digest(refresh, cfg.refresh_token):
        resp = lwa_error(
            400, "invalid_grant", "The request has an invalid grant parameter : refresh_token"
        )
    else:
        # real access tokens start "Atza|" and run to 350+ characters
        token = "Atza|" + secrets.token_urlsafe(270)
        state.tokens[token] = time.monotonic() + cfg.token_ttl_s
        resp = _json(
            request,
            200,
            {
                "access_token": token,
                "refresh_token": refresh,
                "token_type": "bearer",
                "expires_in": cfg.token_ttl_s,
            },
        )
    body = {
        k: ("****" if k in ("client_secret", "refresh_token") else str(v)) for k, v in form.items()
    }  # never keep secrets, not even in a test double
    state.record(
        LWA_OPERATION,
        {
            "operation": LWA_OPERATION,
            "method": "POST",
            "path": request.path,
            "body": body,
            "status": resp.status,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        },
    )
    return resp


# --- purchase orders -------------------------------------------------------------------

_ENUMS = {
    "purchaseOrderState": ("New", "Acknowledged", "Closed"),
    "sortOrder": ("ASC", "DESC"),
    "poItemState": ("Cancelled",),
    "includeDetails": ("true", "false"),
    "isPOChanged": ("true", "false"),
}
_DATES = ("createdAfter", "createdBefore", "changedAfter", "changedBefore")
_FILTERS = (*_DATES, *_ENUMS, "orderingVendorCode")


def _encode_token(offset: int, filters: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"o": offset, "f": filters})).decode()


def _decode_token(token: str) -> tuple[int, dict[str, str]]:
    data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
    return int(data["o"]), {str(k): str(v) for k, v in data["f"].items()}


def _check_filters(filters: dict[str, str]) -> list[dict[str, str]]:
    errors = []
    for name, allowed in _ENUMS.items():
        if name in filters and filters[name] not in allowed:
            errors.append(
                _error(
                    "InvalidInput", f"{name} must be one of {', '.join(allowed)}.", filters[name]
                )
            )
    for name in _DATES:
        if name in filters:
            try:
                _parse_dt(filters[name])
            except ValueError:
                errors.append(
                    _error(
                        "InvalidRequest",
                        "The request is invalid.",
                        f"{name} is not an ISO-8601 date-time: {filters[name]}",
                    )
                )
    if errors:
        return errors
    for kind in ("created", "changed"):
        after, before = filters.get(f"{kind}After"), filters.get(f"{kind}Before")
        if after is None:
            continue
        start = _parse_dt(after)
        end = _parse_dt(before) if before else datetime.now(UTC)
        if end < start:
            errors.append(
                _error(
                    "InvalidInput",
                    f"{kind}Before must not be earlier than {kind}After.",
                    f"{kind}After={after}, {kind}Before={before}",
                )
            )
        elif end - start > MAX_WINDOW:
            errors.append(
                _error(
                    "InvalidInput",
                    "The date range must not exceed 7 days.",
                    f"{kind}After={after}, {kind}Before={before or 'now'}",
                )
            )
    return errors


def _changed_at(order: dict[str, Any]) -> datetime | None:
    details = order.get("orderDetails") or {}
    stamps = [
        _parse_dt(details[k])
        for k in ("purchaseOrderChangedDate", "purchaseOrderStateChangedDate")
        if k in details
    ]
    return max(stamps) if stamps else None


def _matches(order: dict[str, Any], f: dict[str, str]) -> bool:
    details = order.get("orderDetails") or {}
    created = _parse_dt(details["purchaseOrderDate"]) if "purchaseOrderDate" in details else None
    if "createdAfter" in f and (created is None or created <= _parse_dt(f["createdAfter"])):
        return False
    if "createdBefore" in f and (created is None or created >= _parse_dt(f["createdBefore"])):
        return False
    if "changedAfter" in f or "changedBefore" in f:
        changed = _changed_at(order)
        if changed is None:
            return False
        if "changedAfter" in f and changed <= _parse_dt(f["changedAfter"]):
            return False
        if "changedBefore" in f and changed >= _parse_dt(f["changedBefore"]):
            return False
    if "purchaseOrderState" in f and order.get("purchaseOrderState") != f["purchaseOrderState"]:
        return False
    if f.get("isPOChanged") == "true" and "purchaseOrderChangedDate" not in details:
        return False
    if f.get("poItemState") == "Cancelled" and not any(
        (i.get("orderedQuantity") or {}).get("amount") == 0 for i in details.get("items", [])
    ):
        return False
    party = (details.get("sellingParty") or {}).get("partyId")
    return "orderingVendorCode" not in f or party == f["orderingVendorCode"]


async def get_purchase_orders(request: web.Request) -> web.Response:
    state = request.app[STATE]
    q = request.query
    try:
        limit = int(q.get("limit", "100"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        return _errors(
            request,
            400,
            [_error("InvalidInput", "limit must be between 1 and 100.", q.get("limit", ""))],
        )
    if "nextToken" in q:
        # the token carries the original filters, so a page can't drift from its query
        try:
            offset, filters = _decode_token(q["nextToken"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return _errors(request, 400, [_error("InvalidInput", "Invalid nextToken.")])
    else:
        offset, filters = 0, {k: q[k] for k in _FILTERS if k in q}
        errors = _check_filters(filters)
        if errors:
            return _errors(request, 400, errors)

    selected = [o for o in state.orders.values() if _matches(o, filters)]
    epoch = datetime.min.replace(tzinfo=UTC)
    selected.sort(
        key=lambda o: (
            _parse_dt(o["orderDetails"]["purchaseOrderDate"])
            if "purchaseOrderDate" in (o.get("orderDetails") or {})
            else epoch,
            o["purchaseOrderNumber"],
        ),
        reverse=filters.get("sortOrder") == "DESC",
    )
    page = selected[offset : offset + limit]
    if filters.get("includeDetails") == "false":
        page = [{k: o[k] for k in ("purchaseOrderNumber", "purchaseOrderState")} for o in page]
    payload: dict[str, Any] = {}
    if offset + limit < len(selected):
        payload["pagination"] = {"nextToken": _encode_token(offset + limit, filters)}
    payload["orders"] = page
    return _json(request, 200, {"payload": payload})


async def get_purchase_order(request: web.Request) -> web.Response:
    number = request.match_info["purchaseOrderNumber"]
    if number == "null":  # Amazon's own sandbox example
        return _errors(
            request,
            400,
            [
                _error(
                    "InvalidRequest",
                    "Request is missing or has invalid parameters",
                    "purchaseOrderNumber cannot be null",
                )
            ],
        )
    order = request.app[STATE].orders.get(number)
    if order is None:
        return _errors(
            request,
            404,
            [
                _error(
                    "NotFound",
                    "The resource specified does not exist.",
                    f"purchaseOrderNumber {number}",
                )
            ],
        )
    return _json(request, 200, {"payload": order})


# --- submissions -----------------------------------------------------------------------


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


async def submit_acknowledgement(request: web.Request) -> web.Response:
    body = request[BODY]
    problems = validate("vendorOrders", "SubmitAcknowledgementRequest", body)
    if not problems:
        acks = body.get("acknowledgements") or []
        if not acks:
            problems.append("acknowledgements: at least one acknowledgement is required")
        for i, ack in enumerate(acks):
            for j, item in enumerate(ack.get("items", [])):
                # described in the model, not in its schema: Amazon rejects the file without it
                if "netCost" not in item:
                    problems.append(
                        f"acknowledgements/{i}/items/{j}/netCost: netCost is a "
                        "required field; Amazon rejects acknowledgements without it"
                    )
                elif not _decimal_above_zero(item["netCost"]):
                    problems.append(
                        f"acknowledgements/{i}/items/{j}/netCost: price information "
                        "must not be zero or negative"
                    )
    if problems:
        return _errors(request, 400, _problems_to_errors(problems))
    numbers = {a["purchaseOrderNumber"] for a in body["acknowledgements"]}
    return _accepted(request, "submitAcknowledgement", numbers)


async def submit_shipment_confirmations(request: web.Request) -> web.Response:
    body = request[BODY]
    problems = validate("vendorShipments", "SubmitShipmentConfirmationsRequest", body)
    if not problems and not body.get("shipmentConfirmations"):
        problems.append("shipmentConfirmations: at least one shipment confirmation is required")
    if problems:
        return _errors(request, 400, _problems_to_errors(problems))
    numbers: set[str] = set()
    for sc in body["shipmentConfirmations"]:
        containers = [*sc.get("cartons", []), *sc.get("pallets", [])]
        items = [*sc["shippedItems"], *(i for c in containers for i in c.get("items", []))]
        numbers.update(
            n for i in items if (n := (i.get("itemDetails") or {}).get("purchaseOrderNumber"))
        )
    return _accepted(request, "SubmitShipmentConfirmations", numbers)


async def submit_inventory_update(request: web.Request) -> web.Response:
    state = request.app[STATE]
    warehouse = request.match_info["warehouseId"]
    if state.config.warehouses and warehouse not in state.config.warehouses:
        return _errors(request, 400, [_error("InvalidInput", "Invalid warehouseId.", warehouse)])
    body = request[BODY]
    problems = validate("vendorDirectFulfillmentInventory", "SubmitInventoryUpdateRequest", body)
    if not problems:
        if "inventory" not in body:
            problems.append("inventory: inventory is required")
        for j, item in enumerate((body.get("inventory") or {}).get("items", [])):
            if not (item.get("buyerProductIdentifier") or item.get("vendorProductIdentifier")):
                problems.append(
                    f"inventory/items/{j}: either buyerProductIdentifier or "
                    "vendorProductIdentifier should be submitted"
                )
    if problems:
        return _errors(request, 400, _problems_to_errors(problems))
    return _accepted(request, "submitInventoryUpdate", set())


async def get_transaction(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tid = request.match_info["transactionId"]
    tx = state.transactions.get(tid)
    if tx is None or df_transactions.is_df(tx.operation):  # DF ones: only on the DF API
        return _errors(
            request,
            404,
            [_error("NotFound", "The resource specified does not exist.", f"transactionId {tid}")],
        )
    status: dict[str, Any] = {"transactionId": tid, "status": "Processing"}
    if time.monotonic() - tx.created >= state.config.transaction_processing_s:
        status["status"] = "Failure" if tx.errors else "Success"
        if tx.errors:
            status["errors"] = tx.errors
    return _json(request, 200, {"payload": {"transactionStatus": status}})


# --- control API (/_sandbox) -----------------------------------------------------------


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


# --- app and runners -------------------------------------------------------------------

_HANDLERS: dict[str, Handler] = {
    "getPurchaseOrders": get_purchase_orders,
    "getPurchaseOrder": get_purchase_order,
    "submitAcknowledgement": submit_acknowledgement,
    "getTransaction": get_transaction,
    "SubmitShipmentConfirmations": submit_shipment_confirmations,
    "submitInventoryUpdate": submit_inventory_update,
    **df_transactions.HANDLERS,
    **invoices.HANDLERS,
}


def create_sandbox_app(config: SandboxConfig | None = None) -> web.Application:
    app = web.Application(middlewares=[_api_middleware], client_max_size=10 * 1024**2)
    app[STATE] = SandboxState(config or SandboxConfig())
    for operation, handler in _HANDLERS.items():
        method, path = OPERATIONS[operation]
        app.router.add_route(method, path, handler, name=operation)
    app.router.add_post("/auth/o2/token", lwa_token)
    app.router.add_get("/_sandbox/received", control_received)
    app.router.add_get("/_sandbox/orders", control_list_orders)
    app.router.add_post("/_sandbox/orders", control_add_orders)
    app.router.add_get("/_sandbox/faults", control_faults)
    app.router.add_post("/_sandbox/faults", control_faults)
    app.router.add_post("/_sandbox/reset", control_reset)
    app.router.add_post("/_sandbox/expire-tokens", control_expire_tokens)
    from streams.sandbox.amazon import lifecycle  # closing POs, getPurchaseOrdersStatus

    lifecycle.install(app)
    return app


@contextlib.asynccontextmanager
async def running_sandbox(
    config: SandboxConfig | None = None, port: int = 0, host: str = HOST
) -> AsyncIterator[str]:
    """Serve the sandbox on 127.0.0.1:``port`` (0 = any free port); yields the base URL."""
    runner = web.AppRunner(create_sandbox_app(config), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        yield f"http://{host}:{bound}"
    finally:
        await runner.cleanup()


async def _serve(config: SandboxConfig, port: int, host: str = HOST) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_sandbox(config, port, host) as url:
        print(
            f"Amazon SP-API sandbox on {url}  (LWA: {url}/auth/o2/token, control: "
            f"{url}/_sandbox/received; seed {config.seed}). Ctrl-C or SIGTERM stops it.",
            flush=True,
        )
        await stop.wait()
    print("sandbox stopped", flush=True)


def main(settings: Settings, port: int | None = None, seed: int = 1) -> int:
    """``streams sandbox amazon``: serve until SIGINT/SIGTERM; accepts ``settings``' LWA creds."""
    config = SandboxConfig.from_settings(settings, seed=seed)
    try:
        port = settings.sandbox_port if port is None else port
        asyncio.run(_serve(config, port, settings.sandbox_host))
    except OSError as exc:  # typically: port already in use
        print(f"cannot serve the sandbox: {exc}", file=sys.stderr)
        return 1
    return 0
