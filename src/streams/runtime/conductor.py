"""Faust's topic conductor, subscribing only once every topic it names has partitions.

Just before the consumer subscribes, Faust creates the internal topics it lacks (table
changelogs, the flows' own event topics, the assignor's leader topic). The broker answers the
create before its metadata shows the topic, so the consumer could subscribe to a topic with
no partitions yet ("Topic ... not found in cluster metadata"). Its next metadata refresh (5 s,
``consumer_metadata_max_age_ms``) then finds the partitions and the group rebalances a
second time, pausing every flow a few seconds after the first start of a new deployment, or
of an upgrade that adds a topic (seen in 5 of 12 demo runs). :class:`SettledConductor` waits
until the broker's metadata shows partitions for every topic, up to ``settle_timeout_s``, and
then subscribes (at the timeout it subscribes anyway and says so).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Any, Protocol, TypeVar

from aiokafka.errors import KafkaError
from faust.transport.conductor import Conductor

log = logging.getLogger(__name__)
T = TypeVar("T")


class Metadata(Protocol):
    def partitions_for_topic(self, topic: str) -> Any: ...


async def wait_for_partitions(
    fetch: Callable[[], Awaitable[Metadata]],
    topics: Collection[str],
    timeout_s: float,
    *,
    interval_s: float = 0.1,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> list[str]:
    """Fetch metadata until every topic in ``topics`` has partitions, or ``timeout_s`` has
    passed; the topics still without partitions (sorted), [] when all have them."""
    deadline = clock() + timeout_s
    while True:
        meta = await fetch()
        missing = sorted(t for t in topics if not meta.partitions_for_topic(t))
        if not missing or clock() >= deadline:
            return missing
        await sleep(interval_s)


class _NoMetadata:
    def partitions_for_topic(self, topic: str) -> Any:
        return None


def tolerant(fetch: Callable[[], Awaitable[Metadata]]) -> Callable[[], Awaitable[Metadata]]:
    """``fetch``, answering "no partitions yet" when the broker cannot be asked: a broker
    that is briefly unreachable at start delays the subscription, it does not crash it."""

    async def fetched() -> Metadata:
        try:
            return await fetch()
        except KafkaError as exc:
            log.info("metadata before subscribing: %r; asking again", exc)
            return _NoMetadata()

    return fetched


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: an error after the caller left is not logged as lost


async def uncancelled(aw: Awaitable[T]) -> T:
    """``aw``, run to its end even when the caller is cancelled (the caller still is)."""
    task = asyncio.ensure_future(aw)
    task.add_done_callback(_retrieve)
    return await asyncio.shield(task)


class SettledConductor(Conductor):  # type: ignore[misc]
    settle_timeout_s: float = 10.0

    async def _update_indices(self) -> Iterable[str]:
        # Faust's declares here wait on the future the transport keeps per topic name, which
        # a table starting at the same time owns. A stop during start-up (it ends the wait for
        # the tables, then cancels this task) would cancel that future, and the table's start
        # would crash on it (InvalidStateError, exit 1): so this task's cancellation stops here
        index = await uncancelled(super()._update_indices())  # declares the internal topics
        topics = list(index)
        producer = await self.app.maybe_start_producer()
        client = producer._ensure_producer().client  # the aiokafka client Faust created with
        started = time.monotonic()
        missing = await wait_for_partitions(
            tolerant(client.fetch_all_metadata), topics, self.settle_timeout_s
        )
        waited = time.monotonic() - started
        if missing:
            log.warning(
                "subscribing although %d topic(s) have no partitions in the broker's metadata "
                "after %.1f s (the group rebalances again once they do): %s",
                len(missing), waited, ", ".join(missing),
            )  # fmt: skip
        else:  # once per subscription: at start, and after a topic is added or removed
            log.info("subscribing to %d topics, all with partitions in the broker's metadata "
                     "(waited %.2f s)", len(topics), waited)  # fmt: skip
        return index
