"""Amazon Selling Partner API client for the vendor operations this project uses.

LWA refresh-token exchange (cached, renewed before expiry and once on an expired-token 403),
per-operation client-side rate limiting that mirrors Amazon's token buckets and follows
``x-amzn-RateLimit-Limit`` downward, retries with exponential backoff and jitter on
429/5xx/connection errors, and :class:`SpApiError` carrying Amazon's error list.

Secrets (client secret, refresh token, access tokens) never reach logs, reprs or exception
text: requests are logged by operation and status only, and any server-supplied text is
scrubbed of them before it is stored in an exception.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import aiohttp
import orjson
from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from streams import __version__
from streams.adapters.codecs import redact

if TYPE_CHECKING:
    from streams.config import Settings

log = logging.getLogger(__name__)

MAX_WINDOW = timedelta(days=7)  # getPurchaseOrders: "The date range must not exceed 7 days"
LWA_OPERATION = "lwaToken"
RETRYABLE_STATUSES = frozenset({0, 429, 500, 502, 503, 504})  # 0: no HTTP response at all
PO_STATES = ("New", "Acknowledged", "Closed")

PATHS = {
    "getPurchaseOrders": "/vendor/orders/v1/purchaseOrders",
    "getPurchaseOrder": "/vendor/orders/v1/purchaseOrders/{}",
    "getPurchaseOrdersStatus": "/vendor/orders/v1/purchaseOrdersStatus",
    "submitAcknowledgement": "/vendor/orders/v1/acknowledgements",
    "getTransaction": "/vendor/transactions/v1/transactions/{}",
    "SubmitShipmentConfirmations": "/vendor/shipping/v1/shipmentConfirmations",
    "submitInventoryUpdate": "/vendor/directFulfillment/inventory/v1/warehouses/{}/items",
}


class SpApiError(Exception):
    """An SP-API call failed: an HTTP error, or retries ran out (``status`` 0 = no response).

    ``errors`` is Amazon's ErrorList: dicts with ``code``, ``message`` and maybe ``details``.
    """

    def __init__(
        self,
        status: int,
        operation: str,
        errors: list[dict[str, Any]] | None = None,
        request_id: str | None = None,
    ) -> None:
        self.status = status
        self.operation = operation
        self.errors: list[dict[str, Any]] = errors or []
        self.request_id = request_id
        super().__init__(self._summary())

    def _summary(self) -> str:
        parts = []
        for e in self.errors[:5]:
            text = f"{e.get('code', '?')}: {e.get('message', '')}"
            parts.append(f"{text} ({e['details']})" if e.get("details") else text)
        where = f"HTTP {self.status}" if self.status else "no response"
        return f"{self.operation} failed, {where}: " + ("; ".join(parts) or "no error details")

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE_STATUSES

    @property
    def codes(self) -> list[str]:
        return [str(e.get("code", "")) for e in self.errors]


class SpApiAuthError(SpApiError):
    """Login with Amazon refused the refresh-token exchange (bad client or refresh token)."""


class DateWindowError(ValueError):
    """A getPurchaseOrders date range Amazon would refuse (more than 7 days, or reversed)."""


class TransactionFailed(Exception):
    """Amazon processed a submission and rejected it (transaction status ``Failure``)."""

    def __init__(self, transaction_id: str, errors: list[dict[str, Any]]) -> None:
        self.transaction_id = transaction_id
        self.errors = errors
        detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors[:5])
        super().__init__(f"transaction {transaction_id} failed: {detail or 'no error details'}")


class SpApiHooks(Protocol):
    """Observer of every HTTP exchange (``status`` 0 = no response), e.g. for metrics."""

    def on_response(self, operation: str, status: int, seconds: float) -> None: ...


@dataclass
class OperationCounts:
    requests: int = 0
    errors: int = 0  # status 0 or >= 400, 429 included
    throttled: int = 0  # 429
    seconds: float = 0.0


@dataclass
class CountingHooks:
    """A ready-made :class:`SpApiHooks` that counts per operation (tests, demo, bench)."""

    counts: defaultdict[str, OperationCounts] = field(
        default_factory=lambda: defaultdict(OperationCounts)
    )
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)

    def on_response(self, operation: str, status: int, seconds: float) -> None:
        c = self.counts[operation]
        c.requests += 1
        c.seconds += seconds
        c.errors += status == 0 or status >= 400
        c.throttled += status == 429
        self.statuses[operation, status] += 1


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # including the first
    backoff_s: float = 0.5  # first wait; doubles each retry
    max_backoff_s: float = 16.0
    jitter_s: float = 0.5


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)
    renew_at: float  # monotonic


@dataclass
class _Limit:
    rate: float
    burst: int
    limiter: AsyncLimiter = field(repr=False)


def _limiter(rate: float, burst: int) -> AsyncLimiter:
    # a leaky bucket of capacity ``burst`` draining at ``rate``/s = Amazon's token bucket
    return AsyncLimiter(max_rate=burst, time_period=burst / rate)


def _as_datetime(value: datetime | str) -> datetime:
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _iso(value: datetime | str) -> str:
    return _as_datetime(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_window(kind: str, after: datetime | str | None, before: datetime | str | None) -> None:
    """Raise :class:`DateWindowError` unless ``after..before`` (before: now) is within 7 days."""
    if after is None:
        return
    start = _as_datetime(after)
    end = _as_datetime(before) if before is not None else datetime.now(UTC)
    if end < start:
        raise DateWindowError(
            f"getPurchaseOrders: {kind}Before ({_iso(end)}) is earlier than "
            f"{kind}After ({_iso(start)})"
        )
    if end - start > MAX_WINDOW:
        raise DateWindowError(
            f"getPurchaseOrders: {kind}After {_iso(start)} to {kind}Before "
            f"{_iso(end) if before is not None else 'now'} spans {end - start}; Amazon allows at "
            "most 7 days per query, so split the range into 7-day windows"
        )


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, SpApiError) and not isinstance(exc, SpApiAuthError) and exc.retryable


def _token_problem(errors: Iterable[dict[str, Any]]) -> bool:
    """Whether a 401/403 blames the access token (expired, revoked), so a new one may help."""
    for e in errors:
        text = f"{e.get('message', '')} {e.get('details', '')}".lower()
        if e.get("code") == "InvalidAccessToken" or "access token" in text:
            return True
    return False


class SpApiClient:
    """Async SP-API client; ``async with SpApiClient(settings) as api: ...``.

    Pass ``session`` to share an aiohttp session (the client then leaves it open). ``hooks``
    observes every exchange; ``retry`` bounds the retries; ``rate_limits`` overrides the
    per-operation ``(rate per second, burst)`` taken from ``settings``.
    """

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession | None = None,
        *,
        hooks: SpApiHooks | None = None,
        retry: RetryPolicy | None = None,
        rate_limits: Mapping[str, tuple[float, int]] | None = None,
    ) -> None:
        self._endpoint = settings.spapi_endpoint.rstrip("/")
        self._lwa_url = settings.spapi_lwa_url
        self._client_id = settings.spapi_client_id
        self._client_secret = settings.spapi_client_secret
        self._refresh_token = settings.spapi_refresh_token
        self.selling_party = settings.spapi_selling_party
        self._timeout = aiohttp.ClientTimeout(total=settings.spapi_timeout_s)
        self._session = session
        self._owns_session = session is None
        self._hooks = hooks
        self._retry = retry or RetryPolicy()
        rate, burst = settings.spapi_rate_per_s, settings.spapi_burst
        # Amazon's usage plans: 10/s burst 10 everywhere, except getTransaction's burst 20
        self._defaults = {op: (rate, burst) for op in PATHS}
        self._defaults["getTransaction"] = (rate, burst * 2)
        self._defaults.update(rate_limits or {})
        self._limits: dict[str, _Limit] = {}
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()
        self._user_agent = f"vc-ct-streams/{__version__} (Language=Python)"

    def __repr__(self) -> str:
        return f"<SpApiClient endpoint={self._endpoint!r} client_id={self._client_id!r}>"

    async def __aenter__(self) -> SpApiClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._owns_session = True
        return self._session

    # --- rate limits -----------------------------------------------------------------

    def rate_limit(self, operation: str) -> tuple[float, int]:
        """The ``(rate per second, burst)`` the client currently keeps to for ``operation``."""
        lim = self._limit(operation)
        return lim.rate, lim.burst

    def _limit(self, operation: str) -> _Limit:
        if operation not in self._limits:
            rate, burst = self._defaults.get(operation, next(iter(self._defaults.values())))
            self._limits[operation] = _Limit(rate, burst, _limiter(rate, burst))
        return self._limits[operation]

    def _adapt(self, operation: str, header: str | None) -> None:
        """Slow down to the rate Amazon reports for this operation, never speed up."""
        try:
            reported = float(header) if header else 0.0
        except ValueError:
            return
        current = self._limit(operation)
        if 0 < reported < current.rate:
            burst = max(1, min(current.burst, math.ceil(reported)))
            self._limits[operation] = _Limit(reported, burst, _limiter(reported, burst))
            log.info(
                "SP-API %s: rate limit lowered to %g/s (burst %d) as Amazon reports",
                operation,
                reported,
                burst,
            )

    # --- secrets ---------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        secrets = [self._client_secret.get_secret_value(), self._refresh_token.get_secret_value()]
        if self._token is not None:
            secrets.append(self._token.value)
        return redact(text, secrets)

    def _scrub_errors(self, errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {k: self._scrub(v) if isinstance(v, str) else v for k, v in e.items()} for e in errors
        ]

    # --- plumbing --------------------------------------------------------------------

    def _notify(self, operation: str, status: int, seconds: float) -> None:
        if self._hooks is None:
            return
        try:
            self._hooks.on_response(operation, status, seconds)
        except Exception:  # a broken metrics hook must not break Amazon calls
            log.exception("SP-API hook failed for %s", operation)

    def _retrying(self, operation: str) -> AsyncRetrying:
        p = self._retry

        def retryable(exc: BaseException) -> bool:
            # an LWA failure inside an API call has had its own retries already
            return _is_retryable(exc) and getattr(exc, "operation", None) == operation

        return AsyncRetrying(
            stop=stop_after_attempt(max(1, p.attempts)),
            wait=wait_exponential_jitter(
                multiplier=p.backoff_s, max=p.max_backoff_s, jitter=p.jitter_s
            ),
            retry=retry_if_exception(retryable),
            before_sleep=self._log_retry,
            reraise=True,
        )

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        if isinstance(exc, SpApiError):
            log.warning(
                "SP-API %s: %s; retry %d of %d in %.2fs",
                exc.operation,
                "no response" if exc.status == 0 else f"HTTP {exc.status}",
                state.attempt_number,
                self._retry.attempts - 1,
                wait,
            )

    async def _access_token(self) -> str:
        token = self._token
        if token is not None and time.monotonic() < token.renew_at:
            return token.value
        async with self._token_lock:  # one exchange, however many callers wait for it
            token = self._token
            if token is None or time.monotonic() >= token.renew_at:
                token = self._token = await self._exchange()
            return token.value

    def _invalidate(self, value: str) -> None:
        if self._token is not None and self._token.value == value:
            self._token = None

    async def _exchange(self) -> _Token:
        async for attempt in self._retrying(LWA_OPERATION):
            with attempt:
                return await self._exchange_once()
        raise AssertionError("unreachable")  # pragma: no cover - tenacity reraises

    async def _exchange_once(self) -> _Token:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token.get_secret_value(),
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
        }
        started = time.monotonic()
        try:
            async with self.session.post(self._lwa_url, data=form, timeout=self._timeout) as resp:
                status, raw = resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._notify(LWA_OPERATION, 0, time.monotonic() - started)
            raise self._no_response(LWA_OPERATION, exc) from None
        self._notify(LWA_OPERATION, status, time.monotonic() - started)
        data = _loads(raw)
        if status == 200 and isinstance(data.get("access_token"), str):
            ttl = float(data.get("expires_in") or 3600)
            # renew a little early: a minute for real tokens, 10% for short test tokens
            renew_at = time.monotonic() + ttl - min(60.0, ttl * 0.1)
            log.info("LWA access token obtained; valid for %ss", data.get("expires_in"))
            return _Token(data["access_token"], renew_at)
        errors = [
            {
                "code": str(data.get("error") or f"HTTP{status}"),
                "message": str(data.get("error_description") or "token exchange failed"),
            }
        ]
        cls = SpApiError if status in RETRYABLE_STATUSES else SpApiAuthError
        raise cls(status, LWA_OPERATION, self._scrub_errors(errors))

    def _no_response(self, operation: str, exc: BaseException) -> SpApiError:
        # ``from None`` at the raise sites: aiohttp exceptions can carry request headers
        message = self._scrub(str(exc)) or "no response"
        return SpApiError(0, operation, [{"code": type(exc).__name__, "message": message}])

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        expect: tuple[int, ...] = (200,),
    ) -> dict[str, Any]:
        async for attempt in self._retrying(operation):
            with attempt:
                return await self._call_once(operation, method, path, params, body, expect)
        raise AssertionError("unreachable")  # pragma: no cover - tenacity reraises

    async def _call_once(
        self,
        operation: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Any,
        expect: tuple[int, ...],
    ) -> dict[str, Any]:
        url = self._endpoint + path
        payload = orjson.dumps(body) if body is not None else None
        renewed = False
        while True:
            await self._limit(operation).limiter.acquire()
            token = await self._access_token()
            headers = {
                "x-amz-access-token": token,
                "accept": "application/json",
                "user-agent": self._user_agent,
            }
            if payload is not None:
                headers["content-type"] = "application/json"
            started = time.monotonic()
            try:
                async with self.session.request(
                    method,
                    url,
                    params=params,
                    data=payload,
                    headers=headers,
                    timeout=self._timeout,
                ) as resp:
                    status, raw = resp.status, await resp.read()
                    request_id = resp.headers.get("x-amzn-RequestId")
                    self._adapt(operation, resp.headers.get("x-amzn-RateLimit-Limit"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._notify(operation, 0, time.monotonic() - started)
                raise self._no_response(operation, exc) from None
            seconds = time.monotonic() - started
            self._notify(operation, status, seconds)
            log.debug(
                "SP-API %s %s -> %d in %.3fs (request id %s)",
                method,
                path,
                status,
                seconds,
                request_id,
            )
            data = _loads(raw)
            if status in expect:
                return data
            errors = data.get("errors")
            if not isinstance(errors, list) or not errors:
                errors = [
                    {"code": f"HTTP{status}", "message": raw[:300].decode("utf-8", "replace")}
                ]
            if status in (401, 403) and not renewed and _token_problem(errors):
                log.info(
                    "SP-API %s: access token refused (HTTP %d); renewing it", operation, status
                )
                self._invalidate(token)
                renewed = True
                continue
            raise SpApiError(status, operation, self._scrub_errors(errors), request_id)

    # --- operations ------------------------------------------------------------------

    def get_purchase_orders(
        self,
        *,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        changed_after: datetime | str | None = None,
        changed_before: datetime | str | None = None,
        purchase_order_state: str | None = None,
        include_details: bool = True,
        sort_order: str | None = None,
        is_po_changed: bool | None = None,
        po_item_state: str | None = None,
        ordering_vendor_code: str | None = None,
        limit: int = 100,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every matching ``Order``, following ``nextToken`` page by page.

        Raises :class:`DateWindowError` right away (before any request) when a created or
        changed range exceeds Amazon's 7 days; with only ``*_after`` the range ends now.
        """
        if not 1 <= limit <= 100:
            raise ValueError("getPurchaseOrders: limit must be between 1 and 100")
        if purchase_order_state is not None and purchase_order_state not in PO_STATES:
            raise ValueError(f"getPurchaseOrders: purchase_order_state must be one of {PO_STATES}")
        if sort_order is not None and sort_order not in ("ASC", "DESC"):
            raise ValueError("getPurchaseOrders: sort_order must be ASC or DESC")
        check_window("created", created_after, created_before)
        check_window("changed", changed_after, changed_before)
        params: dict[str, str] = {"limit": str(limit)}
        dates = {
            "createdAfter": created_after,
            "createdBefore": created_before,
            "changedAfter": changed_after,
            "changedBefore": changed_before,
        }
        params.update({k: _iso(v) for k, v in dates.items() if v is not None})
        if not include_details:
            params["includeDetails"] = "false"
        if is_po_changed is not None:
            params["isPOChanged"] = "true" if is_po_changed else "false"
        optional = {
            "purchaseOrderState": purchase_order_state,
            "sortOrder": sort_order,
            "poItemState": po_item_state,
            "orderingVendorCode": ordering_vendor_code,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        return self._purchase_order_pages(params)

    async def _purchase_order_pages(self, params: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        query = dict(params)
        while True:
            data = await self._call(
                "getPurchaseOrders", "GET", PATHS["getPurchaseOrders"], params=query
            )
            payload = data.get("payload") or {}
            for order in payload.get("orders") or []:
                yield order
            token = (payload.get("pagination") or {}).get("nextToken")
            if not token:
                return
            query = {**params, "nextToken": token}

    async def get_purchase_order(self, purchase_order_number: str) -> dict[str, Any]:
        path = PATHS["getPurchaseOrder"].format(quote(purchase_order_number, safe=""))
        data = await self._call("getPurchaseOrder", "GET", path)
        payload: dict[str, Any] = data.get("payload") or {}
        return payload

    async def get_purchase_order_status(self, purchase_order_number: str) -> dict[str, Any] | None:
        """Amazon's ``OrderStatus`` of one PO (``getPurchaseOrdersStatus``), or None: what
        it received per item, and what was acknowledged."""
        params = {"purchaseOrderNumber": purchase_order_number}
        data = await self._call(
            "getPurchaseOrdersStatus", "GET", PATHS["getPurchaseOrdersStatus"], params=params
        )
        for status in (data.get("payload") or {}).get("ordersStatus") or []:
            if status.get("purchaseOrderNumber") == purchase_order_number:
                return dict(status)
        return None

    async def submit_acknowledgement(
        self, acknowledgements: Sequence[Mapping[str, Any] | bytes]
    ) -> str:
        """Send one or more ``OrderAcknowledgement`` in one request; returns the transactionId.

        An acknowledgement given as bytes (its canonical JSON) is embedded in the body as is,
        so a resend carries exactly the same bytes.
        """
        entries = [orjson.Fragment(a) if isinstance(a, bytes) else a for a in acknowledgements]
        return await self._submit(
            "submitAcknowledgement",
            PATHS["submitAcknowledgement"],
            {"acknowledgements": entries},
            entries,
        )

    async def submit_shipment_confirmations(self, confirmations: list[dict[str, Any]]) -> str:
        """Send ``ShipmentConfirmation`` objects (ASNs); returns Amazon's transactionId."""
        return await self._submit(
            "SubmitShipmentConfirmations",
            PATHS["SubmitShipmentConfirmations"],
            {"shipmentConfirmations": confirmations},
            confirmations,
        )

    async def submit_inventory_update(
        self,
        warehouse_id: str,
        items: list[dict[str, Any]],
        is_full_update: bool = False,
        selling_party: str | None = None,
    ) -> str:
        """Direct Fulfillment inventory feed for one warehouse; returns the transactionId.

        A full update (``is_full_update``) marks every item not listed as unavailable.
        """
        body = {
            "inventory": {
                "sellingParty": {"partyId": selling_party or self.selling_party},
                "isFullUpdate": is_full_update,
                "items": items,
            }
        }
        path = PATHS["submitInventoryUpdate"].format(quote(warehouse_id, safe=""))
        # an empty full feed is meaningful (nothing is available); an empty partial one is not
        return await self._submit("submitInventoryUpdate", path, body, items or is_full_update)

    async def _submit(self, operation: str, path: str, body: Any, entries: object) -> str:
        if not entries:
            raise ValueError(f"{operation}: nothing to submit")
        data = await self._call(operation, "POST", path, body=body, expect=(202, 200))
        transaction_id = (data.get("payload") or {}).get("transactionId")
        if not isinstance(transaction_id, str):
            raise SpApiError(
                202, operation, [{"code": "InvalidResponse", "message": "no payload.transactionId"}]
            )
        return transaction_id

    async def get_transaction(self, transaction_id: str) -> dict[str, Any]:
        """The ``Transaction`` (``transactionId``, ``status``, maybe ``errors``)."""
        path = PATHS["getTransaction"].format(quote(transaction_id, safe=""))
        data = await self._call("getTransaction", "GET", path)
        status: dict[str, Any] = (data.get("payload") or {}).get("transactionStatus") or {}
        return status

    async def wait_for_transaction(
        self,
        transaction_id: str,
        *,
        timeout_s: float = 900.0,
        poll_s: float = 5.0,
        raise_on_failure: bool = True,
    ) -> dict[str, Any]:
        """Poll until the transaction leaves ``Processing`` or ``timeout_s`` passes.

        Returns the last status seen; Amazon documents that acknowledgements may stay
        ``Processing`` for good (still Processing after 15 minutes means success), so callers
        must treat a ``Processing`` result at the timeout as accepted.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            status = await self.get_transaction(transaction_id)
            if status.get("status") != "Processing" or time.monotonic() + poll_s > deadline:
                break
            await asyncio.sleep(poll_s)
        if raise_on_failure and status.get("status") == "Failure":
            raise TransactionFailed(transaction_id, self._scrub_errors(status.get("errors") or []))
        return status


def _loads(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
