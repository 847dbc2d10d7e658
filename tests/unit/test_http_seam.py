"""The HTTP seam's pure parts: the token cache under concurrency, the retry loop, backoff
with Retry-After, outcome classes. The clients on it are tested against real servers
(tests/contract/test_commercetools_client.py, test_spapi_client.py)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from streams.adapters import http
from streams.adapters.spapi.errors import SpApiError


class Flaky(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        self.retry_after = retry_after


async def test_one_fetch_for_many_concurrent_callers_and_renewal_after_the_margin() -> None:
    fetched: list[int] = []

    async def fetch() -> http.Token:
        fetched.append(1)
        await asyncio.sleep(0.01)  # callers pile up behind the lock meanwhile
        return http.Token(f"t{len(fetched)}", time.monotonic() + 60)

    cache = http.TokenCache(fetch)
    tokens = await asyncio.gather(*(cache.get() for _ in range(20)))
    assert len(fetched) == 1 and {t.value for t in tokens} == {"t1"}
    cache.token = http.Token("old", time.monotonic() - 1)  # past its renewal time
    assert (await cache.get()).value == "t2"


async def test_invalidate_drops_only_the_refused_token() -> None:
    async def fetch() -> http.Token:
        return http.Token("new", time.monotonic() + 60)

    cache = http.TokenCache(fetch)
    await cache.get()
    cache.invalidate("an-older-one")  # another caller renewed meanwhile: keep it
    assert cache.token is not None and cache.token.value == "new"
    cache.invalidate("new")
    assert cache.token is None and cache.secrets() == []


def test_token_value_is_not_in_its_repr() -> None:
    assert "s3cret" not in repr(http.Token("s3cret", 1.0))


def test_renewal_margin_is_a_fraction_of_the_lifetime_capped() -> None:
    now = time.monotonic()
    assert http.renew_at(100, max_margin_s=300, fraction=0.2) - now == pytest.approx(80, abs=1)
    assert http.renew_at(86400, max_margin_s=300, fraction=0.2) - now == pytest.approx(
        86100, abs=1
    )


def test_backoff_doubles_is_capped_and_retry_after_is_a_floor() -> None:
    p = http.RetryPolicy(backoff_s=0.1, max_backoff_s=1.0, jitter_s=0.0, max_retry_after_s=5.0)
    assert [p.wait(n) for n in (1, 2, 3, 5)] == [0.1, 0.2, 0.4, 1.0]
    assert p.wait(1, retry_after=2.0) == 2.0
    assert p.wait(5, retry_after=0.5) == 1.0  # the backoff is longer already
    assert p.wait(1, retry_after=3600) == 5.0  # a server cannot stall the client for an hour
    jittery = http.RetryPolicy(backoff_s=0.1, max_backoff_s=10, jitter_s=0.05)
    assert all(0.1 <= jittery.wait(1) <= 0.15 for _ in range(50))


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert http.parse_retry_after("3") == 3.0
    assert http.parse_retry_after(" 0.5 ") == 0.5
    assert http.parse_retry_after(None) is None and http.parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (http.parse_retry_after(later) or 0) <= 30
    assert http.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


async def test_retries_until_success_waiting_what_the_server_asked() -> None:
    answers: list[BaseException | str] = [Flaky(), Flaky(retry_after=0.7), "done"]
    waits: list[float] = []
    told: list[tuple[int, float]] = []

    async def once() -> str:
        a = answers.pop(0)
        if isinstance(a, BaseException):
            raise a
        return a

    async def sleep(s: float) -> None:
        waits.append(s)

    policy = http.RetryPolicy(attempts=5, backoff_s=0.01, max_backoff_s=0.05, jitter_s=0.0)
    result = await http.with_retries(
        once,
        policy=policy,
        retryable=lambda e: isinstance(e, Flaky),
        on_retry=lambda n, e, w: told.append((n, w)),
        sleep=sleep,
    )
    assert result == "done" and waits == [0.01, 0.7] and told == [(1, 0.01), (2, 0.7)]


async def test_gives_up_after_the_attempts_and_at_once_on_what_is_not_retryable() -> None:
    calls: list[int] = []

    async def always(exc: Exception) -> None:
        calls.append(1)
        raise exc

    async def no_sleep(s: float) -> None:
        pass

    policy = http.RetryPolicy(attempts=3)
    with pytest.raises(Flaky):
        await http.with_retries(
            lambda: always(Flaky()), policy=policy, retryable=lambda e: True, sleep=no_sleep
        )
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(ValueError):
        await http.with_retries(
            lambda: always(ValueError()),
            policy=policy,
            retryable=lambda e: isinstance(e, Flaky),
            sleep=no_sleep,
        )
    assert len(calls) == 1


def test_client_errors_carry_retry_after_for_the_loop() -> None:
    exc = SpApiError(429, "getPurchaseOrders")
    assert http.retry_after_of(exc) is None
    exc.retry_after = 2.0
    assert http.retry_after_of(exc) == 2.0


def test_outcome_classes() -> None:
    assert [http.outcome(s) for s in (0, 200, 204, 404, 429, 503)] == [
        "no-answer", "ok", "ok", "client-error", "throttled", "server-error",
    ]  # fmt: skip


class Boom:
    def on_response(self, operation: str, status: int, seconds: float) -> None:
        raise RuntimeError("metrics bug")


def test_a_broken_hook_does_not_fail_the_call() -> None:
    http.notify(Boom(), "op", 200, 0.1)  # logged, not raised
