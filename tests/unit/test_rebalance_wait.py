"""``streams.runtime.consumer.BoundedWaitConsumer.wait_empty``: waits like Faust's while events are
in flight, but gives up on stragglers after ``wait_empty_s`` (a message one stream skipped
without acking would otherwise hold the rebalance forever)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from streams.runtime.consumer import BoundedWaitConsumer


@dataclass
class _TP:
    topic: str = "po-events"
    partition: int = 1


@dataclass(eq=False)
class _Message:
    offset: int
    refcount: int = 1
    acked: bool = False
    tp: _TP = field(default_factory=_TP)


class _Diag:
    def set_flag(self, flag: str) -> None: ...
    def unset_flag(self, flag: str) -> None: ...


class _Consumer:
    """The attributes and methods ``wait_empty`` uses, nothing else."""

    def __init__(self, messages: list[_Message], limit: float, ack_after: float | None) -> None:
        self.wait_empty_s = limit
        self.should_stop = False
        self.diag = _Diag()
        self._unacked_messages: set[Any] = set(messages)
        self.started = time.monotonic()
        self.ack_after = ack_after
        self.final_commits = 0

    async def commit(self) -> None: ...

    async def _wait_for_ack(self, timeout: float) -> None:
        import asyncio

        await asyncio.sleep(0.05)
        if self.ack_after is not None and time.monotonic() - self.started >= self.ack_after:
            for m in self._unacked_messages:
                m.acked = True

    def _clean_unacked_messages(self) -> None:
        self._unacked_messages -= {m for m in self._unacked_messages if m.acked}

    async def commit_and_end_transactions(self) -> None:
        self.final_commits += 1


async def test_gives_up_on_a_message_nobody_acks() -> None:
    c = _Consumer([_Message(51)], limit=0.3, ack_after=None)
    started = time.monotonic()
    await BoundedWaitConsumer.wait_empty(c)  # type: ignore[arg-type]
    assert 0.3 <= time.monotonic() - started < 5
    assert not c._unacked_messages
    assert c.final_commits == 1


async def test_waits_for_events_in_flight_that_finish() -> None:
    c = _Consumer([_Message(1), _Message(2)], limit=10.0, ack_after=0.2)
    started = time.monotonic()
    await BoundedWaitConsumer.wait_empty(c)  # type: ignore[arg-type]
    assert time.monotonic() - started < 5  # did not wait for the bound
    assert not c._unacked_messages
    assert c.final_commits == 1
