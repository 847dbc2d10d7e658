"""Acks that follow delivery, so an agent need not wait for the broker between batches.

An agent that awaits its batch's changelog and output records before it acks, and only then
takes the next batch, idles for a produce round trip per batch: with one event loop per
worker that is most of the time it is not computing. Here a batch's events are acked when
its records are delivered, while the agent already applies the next one. The guarantee is
the same: Faust commits an offset only once its event is acked (and commits only the run of
acked offsets below the first unacked one), so nothing is committed before Kafka has what it
led to. Records of one partition keep their order (the producer sends one batch per
partition at a time).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)


class DeliveryFailed(RuntimeError):
    """A batch's records were not delivered: its events stay unacked (never committed)."""


class DeliveryAcks:
    """Acks each batch's events once its delivery futures resolve; at most ``in_flight``
    batches wait at a time (:meth:`add` waits for the oldest beyond that).

    The acks run in a callback, not in the agent's loop: Faust's rebalance and stop wait for
    every handed-out event to be acked while the agent itself may sit waiting for events
    that will not come until they are."""

    def __init__(self, stream: Any, in_flight: int = 4) -> None:
        self.stream = stream
        self.in_flight = max(1, in_flight)
        self._waiting: set[asyncio.Future[Any]] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # acks running (kept: tasks are weak)
        self.error: BaseException | None = None

    def __len__(self) -> int:
        return len(self._waiting)

    async def add(self, events: Sequence[Any], futures: Sequence[Any]) -> None:
        """Ack ``events`` once every one of ``futures`` is delivered. Raises
        :class:`DeliveryFailed` when an earlier batch was not: the agent stops as it would
        had it awaited that delivery itself."""
        self.check()
        held = list(events)  # the agent rebinds its own list; these stay alive until acked
        done: asyncio.Future[Any] = asyncio.gather(*futures)
        self._waiting.add(done)
        done.add_done_callback(lambda f: self._delivered(f, held))
        while len(self._waiting) > self.in_flight:
            await asyncio.wait(set(self._waiting), return_when=asyncio.FIRST_COMPLETED)
        self.check()

    def check(self) -> None:
        if self.error is not None:
            raise DeliveryFailed(f"records of a batch not delivered: {self.error!r}") from (
                self.error
            )

    def _delivered(self, done: asyncio.Future[Any], events: list[Any]) -> None:
        self._waiting.discard(done)
        exc: BaseException | None = (
            asyncio.CancelledError() if done.cancelled() else done.exception()
        )
        if exc is not None:
            # the events stay unacked: their offsets are never committed, so a restart (or
            # the next owner) applies them again
            if self.error is None:
                log.error("records of a batch of %d events not delivered: %r", len(events), exc)
            self.error = exc
            return
        task = asyncio.ensure_future(self._ack(events))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ack(self, events: list[Any]) -> None:
        for ev in events:
            await self.stream.ack(ev)
