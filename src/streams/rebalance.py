"""A Faust consumer whose wait for in-flight events at a rebalance is bounded.

At a rebalance (and at shutdown) Faust's ``Consumer.wait_empty`` waits until every message a
stream has taken is acked by every channel it was delivered to, with no time limit. A
message delivered to two agents (a topic two agents consume, here ``<app>-po-events`` and
``amazon.po-acknowledgements``: their flow's agent and ``sales-orders-feed``) can be taken
by one and skipped by the other: a stream skips, without acking, an event fetched in an
earlier consumer generation or taken while flow control is suspended. Its reference count
then never drops to zero, and ``wait_empty`` waits for it forever: the worker stays in the
rebalance, consumes nothing and never rejoins (``wait_empty: Waiting for tasks [(1,
<ConsumerMessage ...>)]`` every ~10 s). A broker restart that expires the group membership
reproduces it (``tests/reliability/test_broker_restart.py``); so does an agent that holds its
event in an endless retry (the acknowledgement sender while SP-API refuses).

:class:`BoundedWaitConsumer` waits as Faust does, for at most ``wait_empty_s`` seconds, then
stops waiting for the stragglers. Nothing is lost: a message that was not acked leaves a gap
in its partition's acked offsets, so no commit moves past it and the partition's next owner
(this worker again, or another) reads it again; every step is idempotent (DESIGN.md 4).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
from faust.transport.consumer import CONSUMER_WAIT_EMPTY
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from mode import Service

log = logging.getLogger(__name__)


class BoundedWaitConsumer(AIOKafkaConsumer):
    wait_empty_s: float = 60.0

    @Service.transitions_to(CONSUMER_WAIT_EMPTY)
    async def wait_empty(self) -> None:
        """Faust's ``wait_empty``, but at most ``wait_empty_s`` seconds."""
        deadline = time.monotonic() + self.wait_empty_s
        while not self.should_stop and self._unacked_messages:
            if time.monotonic() >= deadline:
                stuck = sorted(
                    (m.tp.topic, m.tp.partition, m.offset, m.refcount)
                    for m in list(self._unacked_messages)
                )
                log.warning(
                    "rebalance: %d event(s) still not acked after %.0fs, not waiting for them "
                    "(not committed: read again by the partition's next owner): %s",
                    len(stuck), self.wait_empty_s, stuck[:10],
                )  # fmt: skip
                self._unacked_messages.clear()
                break
            await self.commit()
            if not self._unacked_messages:
                break
            await self._wait_for_ack(timeout=1)
            self._clean_unacked_messages()
        await self.commit_and_end_transactions()


class StreamsApp(faust.App):
    """``faust.App`` whose consumer is a :class:`BoundedWaitConsumer`."""

    wait_empty_s: float = 60.0

    def _new_transport(self) -> Any:
        t = super()._new_transport()
        consumer = type(
            "BoundedWaitConsumer", (BoundedWaitConsumer,), {"wait_empty_s": self.wait_empty_s}
        )
        t.Consumer = consumer  # type: ignore[misc]  # shadows the transport's ClassVar
        return t
