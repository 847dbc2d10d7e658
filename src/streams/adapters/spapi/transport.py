"""What every SP-API call goes through: LWA tokens, the per-operation rate limit, retries.

The SP-API side of the HTTP seam (:mod:`streams.adapters.http`): LWA refresh-token exchange
(cached, renewed before expiry and once on an expired-token 403), per-operation client-side
token buckets that mirror Amazon's usage plans (:mod:`.limiter`), retries with exponential
backoff and jitter on 429/5xx/connection errors, and :class:`SpApiError` carrying Amazon's
error list.

Secrets (client secret, refresh token, access tokens) never reach logs, reprs or exception
text: requests are logged by operation and status only, and any server-supplied text is
scrubbed of them before it is stored in an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import aiohttp
import orjson

from streams import __version__
from streams.adapters import http
from streams.adapters.codecs import redact
from streams.adapters.http import RetryPolicy
from streams.adapters.spapi.errors import (
    RETRYABLE_STATUSES,
    NoBudgetShare,
    SpApiAuthError,
    SpApiError,
    SpApiHooks,
)
from streams.adapters.spapi.limiter import Budget
from streams.domain.rate_budget import Plan, Share

if TYPE_CHECKING:
    from streams.config import Settings

log = logging.getLogger(__name__)

LWA_OPERATION = "lwaToken"
T = TypeVar("T")
__all__ = ["LWA_OPERATION", "RetryPolicy", "Transport", "loads"]


class TokenSource(Protocol):
    """Where a call's ``x-amz-access-token`` comes from (default: the LWA access token; a
    restricted operation passes its Restricted Data Token source)."""

    async def get(self) -> str: ...

    def invalidate(self, value: str) -> None: ...


def _is_retryable(exc: BaseException) -> bool:
    # no share of the plan: the caller's own retry waits for the next rebalance, not this loop
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
        self._sessions = http.SessionOwner(
            session, aiohttp.ClientTimeout(total=settings.spapi_timeout_s)
        )
        self._hooks = hooks
        self._retry = retry or RetryPolicy()
        self._budget = Budget(plans)
        self._tokens = http.TokenCache(self._exchange)
        self._user_agent = f"vc-ct-streams/{__version__} (Language=Python)"

    def __repr__(self) -> str:
        return f"<SpApiClient endpoint={self._endpoint!r} client_id={self._client_id!r}>"

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._sessions.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        return self._sessions.session

    @property
    def _token(self) -> http.Token | None:
        return self._tokens.token

    # --- rate limits (see limiter.Budget) --------------------------------------------

    def rate_limit(self, operation: str) -> tuple[float, int]:
        """The ``(rate per second, burst)`` this worker keeps to for ``operation`` now."""
        return self._budget.rate_limit(operation)

    def group_plan(self, operation: str) -> Plan:
        """The plan the whole group shares for ``operation`` (before this worker's share)."""
        return self._budget.group_plan(operation)

    def share(self, operation: str) -> Share:
        return self._budget.share(operation)

    def set_share(self, operations: Iterable[str], share: Share) -> None:
        """Keep to ``share`` of the group's plan for ``operations`` from now on (a rebalance
        changed what this worker owns). A changed share starts with an empty bucket."""
        self._budget.set_share(operations, share)

    # --- secrets ---------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        secrets = [self._client_secret.get_secret_value(), self._refresh_token.get_secret_value()]
        return redact(text, secrets + self._tokens.secrets() + self._extra_secrets())

    def _extra_secrets(self) -> list[str]:
        """Other tokens this client holds (Restricted Data Tokens), scrubbed like the rest."""
        return []

    def _scrub_errors(self, errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {k: self._scrub(v) if isinstance(v, str) else v for k, v in e.items()} for e in errors
        ]

    # --- plumbing --------------------------------------------------------------------

    async def _retrying(self, operation: str, once: Callable[[], Awaitable[T]]) -> T:
        p = self._retry

        def retryable(exc: BaseException) -> bool:
            # an LWA failure inside an API call has had its own retries already
            return _is_retryable(exc) and getattr(exc, "operation", None) == operation

        def on_retry(attempt: int, exc: BaseException, wait: float) -> None:
            if isinstance(exc, SpApiError):
                log.warning(
                    "SP-API %s: %s; retry %d of %d in %.2fs",
                    exc.operation,
                    "no response" if exc.status == 0 else f"HTTP {exc.status}",
                    attempt,
                    p.attempts - 1,
                    wait,
                )

        return await http.with_retries(once, policy=p, retryable=retryable, on_retry=on_retry)

    async def _send(self, operation: str, method: str, url: str, **kwargs: Any) -> http.Response:
        try:
            return await http.exchange(
                self.session, method, url, operation=operation, hooks=self._hooks,
                timeout=self._sessions.timeout, **kwargs,
            )  # fmt: skip
        except (aiohttp.ClientError, TimeoutError) as exc:
            # ``from None``: aiohttp exceptions can carry request headers
            raise self._no_response(operation, exc) from None

    async def _exchange(self) -> http.Token:
        return await self._retrying(LWA_OPERATION, self._exchange_once)

    async def _exchange_once(self) -> http.Token:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token.get_secret_value(),
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
        }
        answer = await self._send(LWA_OPERATION, "POST", self._lwa_url, data=form)
        status, data = answer.status, loads(answer.body)
        if status == 200 and isinstance(data.get("access_token"), str):
            ttl = float(data.get("expires_in") or 3600)
            # renew a little early: a minute for real tokens, 10% for short test tokens
            renew_at = http.renew_at(ttl, max_margin_s=60.0, fraction=0.1)
            log.info("LWA access token obtained; valid for %ss", data.get("expires_in"))
            return http.Token(data["access_token"], renew_at)
        errors = [
            {
                "code": str(data.get("error") or f"HTTP{status}"),
                "message": str(data.get("error_description") or "token exchange failed"),
            }
        ]
        cls = SpApiError if status in RETRYABLE_STATUSES else SpApiAuthError
        exc = cls(status, LWA_OPERATION, self._scrub_errors(errors))
        exc.retry_after = answer.retry_after
        raise exc

    def _no_response(self, operation: str, exc: BaseException) -> SpApiError:
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
        async def once() -> dict[str, Any]:
            return await self._call_once(operation, method, path, params, body, expect, access)

        return await self._retrying(operation, once)

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
            await self._budget.admit(operation)
            token = await access.get() if access else (await self._tokens.get()).value
            headers = {
                "x-amz-access-token": token,
                "accept": "application/json",
                "user-agent": self._user_agent,
            }
            if payload is not None:
                headers["content-type"] = "application/json"
            answer = await self._send(
                operation, method, url, params=params, data=payload, headers=headers
            )
            status, raw = answer.status, answer.body
            request_id = answer.headers.get("x-amzn-RequestId")
            self._budget.adapt(operation, answer.headers.get("x-amzn-RateLimit-Limit"))
            log.debug("SP-API %s %s -> %d (request id %s)", method, path, status, request_id)
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
                (access.invalidate if access else self._tokens.invalidate)(token)
                renewed = True
                continue
            exc = SpApiError(status, operation, self._scrub_errors(errors), request_id)
            exc.retry_after = answer.retry_after
            raise exc

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
