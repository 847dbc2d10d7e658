"""The HTTP seam every outside-system client stands on (commercetools, SP-API).

One implementation of what both clients need, each configuring it:

* :class:`TokenCache`: a bearer token cached until a margin before its expiry, fetched once
  however many callers wait for it, and dropped only if it is still the one a 401/403 named;
* :func:`with_retries` and :class:`RetryPolicy`: the retry loop, exponential backoff with
  jitter, a server's ``Retry-After`` taken as the least wait;
* :func:`exchange`: one request, timed, its outcome classified, reported to the client's
  :class:`Hooks` (a broken hook never fails the call).

Errors stay the clients' own (``CommercetoolsError``, ``SpApiError``): the seam only asks
whether one is retryable and how long its server asked to wait.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol, TypeVar

import aiohttp

log = logging.getLogger(__name__)

T = TypeVar("T")
Outcome = Literal["ok", "client-error", "throttled", "server-error", "no-answer"]


class Hooks(Protocol):
    """Observer of every HTTP exchange (metrics); ``status`` 0 = no answer arrived."""

    def on_response(self, operation: str, status: int, seconds: float) -> None: ...


def outcome(status: int) -> Outcome:
    """How an exchange ended, for logs and retry decisions."""
    if status == 0:
        return "no-answer"
    if status == 429:
        return "throttled"
    if status >= 500:
        return "server-error"
    if status >= 400:
        return "client-error"
    return "ok"


# --- tokens --------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)  # never in a repr, a log line or an exception
    renew_at: float  # time.monotonic() from which a new one is fetched


def renew_at(expires_in: float, *, max_margin_s: float, fraction: float) -> float:
    """When to renew a token valid ``expires_in`` seconds from now: ``fraction`` of its
    lifetime early, at most ``max_margin_s``, so no request leaves with a token that
    expires in flight."""
    return time.monotonic() + expires_in - min(max_margin_s, expires_in * fraction)


class TokenCache:
    """One cached token; ``fetch`` is called by one caller at a time, the others wait."""

    def __init__(self, fetch: Callable[[], Awaitable[Token]]) -> None:
        self._fetch = fetch
        self._lock = asyncio.Lock()
        self.token: Token | None = None

    def _fresh(self) -> Token | None:
        tok = self.token
        return tok if tok is not None and time.monotonic() < tok.renew_at else None

    async def get(self) -> Token:
        tok = self._fresh()
        if tok is not None:
            return tok
        async with self._lock:  # one fetch for all concurrent callers
            tok = self._fresh()
            if tok is None:
                tok = self.token = await self._fetch()
            return tok

    def invalidate(self, value: str) -> None:
        # only the token that was refused: a concurrent caller may have renewed it already
        if self.token is not None and self.token.value == value:
            self.token = None

    def secrets(self) -> list[str]:
        """The current token's value, for scrubbing text (empty without one)."""
        return [self.token.value] if self.token is not None else []


# --- retries -------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # including the first
    backoff_s: float = 0.5  # first wait; doubles each retry
    max_backoff_s: float = 16.0
    jitter_s: float = 0.5
    max_retry_after_s: float = 60.0  # a server's Retry-After is honoured up to this

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed ``attempt`` (1-based): exponential with jitter,
        capped, but never less than what the server asked for (within its own cap)."""
        try:
            backoff = self.backoff_s * 2 ** (attempt - 1) + random.uniform(0, self.jitter_s)
        except OverflowError:
            backoff = self.max_backoff_s
        wait = max(0.0, min(backoff, self.max_backoff_s))
        if retry_after is not None and retry_after > 0:
            wait = max(wait, min(retry_after, self.max_retry_after_s))
        return wait


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_after_of(exc: BaseException) -> float | None:
    """What the server asked a client error to wait (its ``retry_after``, if any)."""
    value = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, int | float) else None


OnRetry = Callable[[int, BaseException, float], None]


async def with_retries(
    once: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    retryable: Callable[[BaseException], bool],
    on_retry: OnRetry | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run ``once`` until it returns, raises what ``retryable`` refuses, or attempts run out
    (the last exception is raised). ``on_retry(attempt, exc, wait)`` is told before each
    wait."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await once()
        except Exception as exc:
            if attempt >= max(1, policy.attempts) or not retryable(exc):
                raise
            wait = policy.wait(attempt, retry_after_of(exc))
            if on_retry is not None:
                on_retry(attempt, exc, wait)
        await sleep(wait)


# --- one exchange --------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: Mapping[str, str]

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("Retry-After"))


def notify(hooks: Hooks | None, operation: str, status: int, seconds: float) -> None:
    if hooks is None:
        return
    try:
        hooks.on_response(operation, status, seconds)
    except Exception:  # a broken metrics hook must not break the call
        log.exception("HTTP hook failed for %s", operation)


async def exchange(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    operation: str,
    hooks: Hooks | None,
    timeout: aiohttp.ClientTimeout,
    params: Sequence[tuple[str, str]] | Mapping[str, str] | None = None,
    data: Any = None,
    headers: Mapping[str, str] | None = None,
    auth: aiohttp.BasicAuth | None = None,
) -> Response:
    """One request, read to the end; ``hooks`` see it timed (status 0 when it raised)."""
    started = time.perf_counter()
    status = 0
    try:
        async with session.request(
            method,
            url,
            params=(list(params) if isinstance(params, Sequence) else params) or None,
            data=data,
            headers=dict(headers or {}),
            auth=auth,
            timeout=timeout,
        ) as resp:
            status = resp.status
            body = await resp.read()
            answer = Response(status, body, resp.headers)
    finally:
        seconds = time.perf_counter() - started
        log.debug("%s %s -> %s in %.3fs", operation, method, outcome(status), seconds)
        notify(hooks, operation, status, seconds)
    return answer


class SessionOwner:
    """The aiohttp session a client uses: its own (closed by :meth:`close`), or one lent
    by the caller (left open)."""

    def __init__(self, session: aiohttp.ClientSession | None, timeout: aiohttp.ClientTimeout):
        self._session = session
        self._owned = session is None
        self.timeout = timeout

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
            self._owned = True
        return self._session

    async def close(self) -> None:
        if self._owned and self._session is not None:
            await self._session.close()
            self._session = None
