"""The wait before the consumer subscribes (until every topic has partitions, or the timeout),
and its declares kept from cancelling the ones a starting table shares with them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from mode.utils.futures import StampedeWrapper

from streams.runtime.conductor import tolerant, uncancelled, wait_for_partitions


class FakeMetadata:
    def __init__(self, partitions: dict[str, int]) -> None:
        self.partitions = partitions

    def partitions_for_topic(self, topic: str) -> Any:
        n = self.partitions.get(topic, 0)
        return set(range(n)) or None


class FakeBroker:
    """Shows ``late`` after ``appears_after`` fetches; ``clock`` moves with each sleep."""

    def __init__(self, appears_after: int) -> None:
        self.appears_after = appears_after
        self.fetches = 0
        self.now = 0.0

    async def fetch(self) -> FakeMetadata:
        self.fetches += 1
        shown = {"known": 6}
        if self.fetches > self.appears_after:
            shown["late"] = 6
        return FakeMetadata(shown)

    def clock(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.now += s


async def test_topics_already_shown_cost_one_fetch() -> None:
    b = FakeBroker(appears_after=0)
    missing = await wait_for_partitions(
        b.fetch, ["known", "late"], 10, clock=b.clock, sleep=b.sleep
    )
    assert (missing, b.fetches, b.now) == ([], 1, 0.0)


async def test_a_topic_created_a_moment_ago_is_waited_for() -> None:
    b = FakeBroker(appears_after=3)
    missing = await wait_for_partitions(
        b.fetch, ["known", "late"], 10, interval_s=0.1, clock=b.clock, sleep=b.sleep
    )
    assert missing == []
    assert b.fetches == 4
    assert abs(b.now - 0.3) < 1e-9


async def test_at_the_timeout_the_topics_still_missing_are_named() -> None:
    b = FakeBroker(appears_after=10**6)
    missing = await wait_for_partitions(
        b.fetch, ["known", "late", "other"], 2.0, interval_s=0.5, clock=b.clock, sleep=b.sleep
    )
    assert missing == ["late", "other"]
    assert b.now == 2.0  # fetched at 0, 0.5, 1.0, 1.5, 2.0: then gave up
    assert b.fetches == 5


async def test_a_broker_that_cannot_be_asked_delays_the_subscription_it_does_not_crash_it() -> None:
    b = FakeBroker(appears_after=0)
    calls = 0

    async def flaky() -> FakeMetadata:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise KafkaConnectionError("no broker")
        return await b.fetch()

    missing = await wait_for_partitions(
        tolerant(flaky), ["known", "late"], 10, interval_s=0.1, clock=b.clock, sleep=b.sleep
    )
    assert missing == []
    assert calls == 3


async def _cancel_a_waiter(shielded: bool) -> Any:
    """A table's start owns the topic's declare (the stampede Faust's transport keeps per
    topic name); the conductor waits on it and is cancelled by a stop. The owner's result."""
    release = asyncio.Event()

    async def create() -> str:
        await release.wait()
        return "created"

    declare = StampedeWrapper(create)
    owner = asyncio.ensure_future(declare())
    await asyncio.sleep(0.01)
    waiter = asyncio.ensure_future(uncancelled(declare()) if shielded else declare())
    await asyncio.sleep(0.01)
    waiter.cancel()
    await asyncio.sleep(0.01)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    return await owner


async def test_a_cancelled_waiter_crashes_the_declare_it_shares_unless_uncancelled() -> None:
    with pytest.raises(asyncio.InvalidStateError):  # Faust's own path: the start crashes
        await _cancel_a_waiter(shielded=False)
    assert await _cancel_a_waiter(shielded=True) == "created"


async def test_uncancelled_returns_the_result_and_keeps_errors_for_its_caller() -> None:
    async def ok() -> int:
        return 7

    async def broken() -> int:
        raise KeyError("x")

    assert await uncancelled(ok()) == 7
    with pytest.raises(KeyError):
        await uncancelled(broken())
