"""What every SP-API call goes through: LWA tokens, the per-operation rate limit, retries.

LWA refresh-token exchange (cached, renewed before expiry and once on an expired-token 403),
per-operation client-side token buckets that mirror Amazon's usage plans, follow
``x-amzn-RateLimit-Limit`` downward and keep to this worker's share of the group's plan
(:mod:`streams.domain.rate_budget`), retries with exponential backoff and jitter on
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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import orjson
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from streams import __version__
from streams.adapters.codecs import redact
from streams.adapters.spapi.errors import (
    RETRYABLE_STATUSES,
    NoBudgetShare,
    SpApiAuthError,
    SpApiError,
    SpApiHooks,
)
from streams.adapters.spapi.limiter import Bucket
from streams.domain.rate_budget import WHOLE, Plan, Share, worker_plan

if TYPE_CHECKING:
    from streams.config import Settings

log = logging.getLogger(__name__)

LWA_OPERATION = "lwaToken"


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


class TokenSource(Protocol):
    """Where a call's ``x-amz-access-token`` comes from (default: the LWA access token; a
    restricted operation passes its Restricted Data Token source)."""

    async def get(self) -> str: ...

    def invalidate(self, value: str) -> None: ...


def _is_retryable(exc: BaseException) -> bool:
    # no share of the plan: the caller's own retry waits for the next rebalance, not tenacity
    if isinstance(exc, SpApiAuthError | NoBudgetShare):
        return False
    return isinstance(exc, SpApiError) and exc.retryable


def _token_problem(errors: Iterable[dict[str, Any]]) -> bool:
    """Whether a 401/403 blames the access token (expired, revoked), so a new one may help."""
    for e in errors:
        text = f"{e.get('message', '')} {e.get('details', '')}".lower()
        if e.get("code") == "InvalidAccessToken" or "access token" in text or "data token" in text:
            return True
    return False


def loads(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


class Transport:
    """The HTTP side of :class:`~streams.adapters.spapi.SpApiClient`.

    ``plans`` maps each operation to the group's usage plan ``(rate per second, burst)``;
    ``set_share`` narrows it to this worker's part.
    """

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession | None,
        *,
        hooks: SpApiHooks | None,
        retry: RetryPolicy | None,
        plans: Mapping[str, tuple[float, int]],
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
        self._plans = {op: Plan(float(r), int(b)) for op, (r, b) in plans.items()}
        self._fallback = next(iter(self._plans.values()))
        self._shares: dict[str, Share] = {}
        self._buckets: dict[str, Bucket] = {}
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()
        self._user_agent = f"vc-ct-streams/{__version__} (Language=Python)"

    def __repr__(self) -> str:
        return f"<SpApiClient endpoint={self._endpoint!r} client_id={self._client_id!r}>"

    async def __aenter__(self) -> Any:
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
        """The ``(rate per second, burst)`` this worker keeps to for ``operation`` now."""
        plan = self._bucket(operation).plan
        return plan.rate, plan.burst

    def group_plan(self, operation: str) -> Plan:
        """The plan the whole group shares for ``operation`` (before this worker's share)."""
        return self._plans.get(operation, self._fallback)

    def share(self, operation: str) -> Share:
        return self._shares.get(operation, WHOLE)

    def set_share(self, operations: Iterable[str], share: Share) -> None:
        """Keep to ``share`` of the group's plan for ``operations`` from now on (a rebalance
        changed what this worker owns). A changed share starts with an empty bucket."""
        for op in operations:
            if self._shares.get(op, WHOLE) == share and op in self._buckets:
                continue
            self._shares[op] = share
            plan = worker_plan(self.group_plan(op), share)
            self._buckets[op] = Bucket(plan, tokens=0.0)
            log.info(
                "SP-API %s: %d of %d partitions, keeping to %.3g/s (burst %d) of %g/s (burst %d)",
                op, share.owned, share.total, plan.rate, plan.burst,
                self.group_plan(op).rate, self.group_plan(op).burst,
            )  # fmt: skip

    def _bucket(self, operation: str) -> Bucket:
        bucket = self._buckets.get(operation)
        if bucket is None:
            plan = worker_plan(self.group_plan(operation), self.share(operation))
            bucket = self._buckets[operation] = Bucket(plan)
        return bucket

    async def _admit(self, operation: str) -> None:
        """Wait for a token of this worker's bucket; :class:`NoBudgetShare` without a share
        (fails fast, so a timer checking transactions is not held up by it)."""
        while True:
            bucket = self._bucket(operation)
            if not bucket.plan.sends:
                raise NoBudgetShare(operation)
            await bucket.acquire()
            if bucket is self._buckets.get(operation):
                return  # else the share changed while waiting: a token of the new bucket

    def _adapt(self, operation: str, header: str | None) -> None:
        """Slow down to the rate Amazon reports for this operation, never speed up."""
        try:
            reported = float(header) if header else 0.0
        except ValueError:
            return
        plan = self.group_plan(operation)
        if 0 < reported < plan.rate:
            burst = max(1, min(plan.burst, math.ceil(reported)))
            self._plans[operation] = Plan(reported, burst)
            old = self._bucket(operation)
            new = worker_plan(self._plans[operation], self.share(operation))
            self._buckets[operation] = Bucket(new, tokens=old.left())
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
        return redact(text, [*secrets, *self._extra_secrets()])

    def _extra_secrets(self) -> list[str]:
        """Other tokens this client holds (Restricted Data Tokens), scrubbed like the rest."""
        return []

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
        data = loads(raw)
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
        access: TokenSource | None = None,
    ) -> dict[str, Any]:
        async for attempt in self._retrying(operation):
            with attempt:
                return await self._call_once(operation, method, path, params, body, expect, access)
        raise AssertionError("unreachable")  # pragma: no cover - tenacity reraises

    async def _call_once(
        self,
        operation: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Any,
        expect: tuple[int, ...],
        access: TokenSource | None = None,
    ) -> dict[str, Any]:
        url = self._endpoint + path
        payload = orjson.dumps(body) if body is not None else None
        renewed = False
        while True:
            await self._admit(operation)
            token = await (access.get() if access else self._access_token())
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
            data = loads(raw)
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
                (access.invalidate if access else self._invalidate)(token)
                renewed = True
                continue
            raise SpApiError(status, operation, self._scrub_errors(errors), request_id)

    async def _submit(self, operation: str, path: str, body: Any, entries: object) -> str:
        """POST a submission Amazon processes later; returns its ``transactionId``."""
        if not entries:
            raise ValueError(f"{operation}: nothing to submit")
        data = await self._call(operation, "POST", path, body=body, expect=(202, 200))
        # v1 APIs wrap it in a payload; DF 2021-12-28 ones answer it on top
        transaction_id = (data.get("payload") or data).get("transactionId")
        if not isinstance(transaction_id, str):
            raise SpApiError(
                202, operation, [{"code": "InvalidResponse", "message": "no payload.transactionId"}]
            )
        return transaction_id
