"""The stall watch (runtime/stall.py): a rebalance whose recovery applies nothing, or a
commit that does not return, for ``exit_s`` ends the process with 70 after logging the
waiting tasks at ``dump_s``; progress, a finished state or Kafka away resets the count."""

from __future__ import annotations

import asyncio
import logging

import pytest

from streams.runtime.stall import EXIT_CODE, Sample, StallWatch, next_stall

IDLE = Sample(rebalancing=False, recovery_remaining=None, commit=None, kafka_ok=True)


def rebalancing(remaining: int | None) -> Sample:
    return Sample(rebalancing=True, recovery_remaining=remaining, commit=None, kafka_ok=True)


def committing(fut: object) -> Sample:
    return Sample(rebalancing=False, recovery_remaining=None, commit=fut, kafka_ok=True)


def test_a_rebalance_without_recovery_progress_is_one_stall_from_its_start() -> None:
    st = next_stall(None, rebalancing(40), 10.0)
    assert st is not None and (st.what, st.since) == ("rebalance", 10.0)
    assert next_stall(st, rebalancing(40), 50.0) is st


def test_recovery_progress_starts_the_count_again() -> None:
    st = next_stall(None, rebalancing(40), 10.0)
    moved = next_stall(st, rebalancing(12), 50.0)
    assert moved is not None and moved.since == 50.0


def test_the_same_commit_is_a_stall_and_a_new_one_is_not() -> None:
    fut = object()
    st = next_stall(None, committing(fut), 1.0)
    assert next_stall(st, committing(fut), 99.0) is st
    other = next_stall(st, committing(object()), 100.0)
    assert other is not None and other.since == 100.0


def test_nothing_is_counted_when_idle_or_while_kafka_is_away() -> None:
    st = next_stall(None, rebalancing(3), 1.0)
    assert next_stall(st, IDLE, 2.0) is None
    away = Sample(rebalancing=True, recovery_remaining=3, commit=None, kafka_ok=False)
    assert next_stall(st, away, 2.0) is None


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


async def test_the_watch_dumps_once_at_half_and_exits_70_at_the_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def stuck_flush() -> None:
        await asyncio.Event().wait()

    waiting = asyncio.create_task(stuck_flush(), name="stuck-flush")
    await asyncio.sleep(0)
    clock, exits = Clock(), []
    watch = StallWatch(
        lambda: rebalancing(7), dump_s=30, exit_s=60, clock=clock, exit_now=exits.append
    )
    caplog.set_level(logging.WARNING, logger="streams.runtime.stall")
    for t in (0, 20, 31, 45):
        clock.t = t
        watch.look()
    assert exits == []
    dumps = [r.getMessage() for r in caplog.records if "the waiting tasks" in r.getMessage()]
    assert len(dumps) == 1
    assert "stall| task stuck-flush:" in dumps[0] and "stall|   " in dumps[0]
    waiting.cancel()
    clock.t = 60
    watch.look()
    assert exits == [EXIT_CODE]
    assert "exiting with code 70" in caplog.records[-1].getMessage()


def test_a_worker_that_moves_on_is_never_stopped() -> None:
    clock, exits = Clock(), []
    remaining = iter(range(100, 0, -1))
    watch = StallWatch(
        lambda: rebalancing(next(remaining)), dump_s=5, exit_s=10, clock=clock,
        exit_now=exits.append,
    )  # fmt: skip
    for t in range(0, 60, 5):
        clock.t = t
        watch.look()
    assert exits == []
