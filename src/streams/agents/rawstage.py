"""A stage that reads Kafka with a raw aiokafka consumer inside the Faust worker.

Why not a Faust agent: Faust pays ~90 µs of consume/deliver machinery per event, and one
agent that stops taking events (a sender retrying while Amazon is away) fills its stream
buffer and stalls the worker's single fetcher, so every other flow stops too. A stage has its
own consumer group: it reads with ``getmany``, hands a whole batch to ``process``, commits
only after ``process`` returned, and reads the batch again (seek back) when it raised.
Started after table recovery (as Faust starts its services), stopped with the app.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import faust
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import CommitFailedError, KafkaError
from mode import Service

from streams.adapters.kafka_admin import client_kwargs
from streams.config import Settings
from streams.observability import metrics as M
from streams.runtime.kafka import position

log = logging.getLogger(__name__)

Batch = dict[TopicPartition, list[ConsumerRecord]]


class Retry(Exception):
    """Raised by ``process``: read this batch again later (nothing of it is committed)."""


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells the stage what it owns: nothing as soon as a rebalance starts (before another
    worker can be given the partitions), the new assignment once it is known."""

    def __init__(self, stage: RawStage) -> None:
        self.stage = stage

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.stage.on_assignment(frozenset())

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.stage.on_assignment(frozenset(assigned))


class RawStage(Service):
    """Subclasses set ``name`` and implement ``process``."""

    name = "stage"
    with_producer = False

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        *,
        topics: tuple[str, ...],
        group_id: str,
        batch_max: int,
        within_s: float,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("loop", app.loop)
        kwargs.setdefault("beacon", app.beacon)
        super().__init__(**kwargs)
        self.app = app
        self.settings = settings
        self.topics = topics
        self.group_id = group_id
        self.batch_max = batch_max
        self.within_s = within_s
        self.clock = clock
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.lag: dict[TopicPartition, int] = {}  # records behind per partition, last batch
        self._seen_tps: set[TopicPartition] = set()
        app.task(self._attach)

    async def _attach(self) -> None:
        await self.app.add_runtime_dependency(self)

    async def process(self, batch: Batch) -> int:  # pragma: no cover - abstract
        """Handle one batch; return how many records it held. Raise to read it again."""
        raise NotImplementedError

    def after_batch(self, batch: Batch, n: int) -> None:
        """Called once a batch is handled and its offsets committed (metrics)."""

    def on_assignment(self, assigned: frozenset[TopicPartition]) -> None:
        """Called with this worker's partitions after every rebalance (empty while revoked)."""

    def owns(self, topic: str) -> bool:
        """Does this worker read a partition of ``topic`` now?"""
        c = self.consumer
        return c is not None and any(tp.topic == topic for tp in c.assignment())

    def behind(self, topic: str) -> int:
        return sum(n for tp, n in self.lag.items() if tp.topic == topic)

    # --- lifecycle ----------------------------------------------------------------------
    async def on_start(self) -> None:
        s = self.settings
        kw = client_kwargs(s)
        client_id = f"{s.app_id}-{self.name}"
        if self.with_producer:
            self.producer = AIOKafkaProducer(
                **kw,
                client_id=client_id,
                acks="all",
                linger_ms=5,
                max_batch_size=512 * 1024,
                max_request_size=4 * 1024 * 1024,
            )
            await self.producer.start()
        self.consumer = AIOKafkaConsumer(
            **kw,
            group_id=self.group_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            session_timeout_ms=int(s.broker_session_timeout_s * 1000),
            heartbeat_interval_ms=int(min(3.0, s.broker_session_timeout_s / 3) * 1000),
            # a sender may wait out an outage between two reads: not a reason to leave
            max_poll_interval_ms=3_600_000,
        )
        self.consumer.subscribe(list(self.topics), listener=_Listener(self))
        await self.consumer.start()
        log.info("%s: consuming %s as group %s", self.name, ", ".join(self.topics), self.group_id)

    async def on_stop(self) -> None:
        # the loop task is cancelled first (mode), so no batch is half-handled past this
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()
        for tp in self._seen_tps:
            M.LAG.remove(self.group_id, tp.topic, str(tp.partition))
        self._seen_tps.clear()

    @Service.task
    async def _run(self) -> None:
        assert self.consumer is not None
        consumer = self.consumer
        backoff = 0.5
        while not self.should_stop:
            batch = await consumer.getmany(
                timeout_ms=max(1, int(self.within_s * 1000)), max_records=self.batch_max
            )
            if not batch:
                self._update_lag()
                continue
            started = time.perf_counter()
            try:
                n = await self.process(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker away, a send failed: read the batch again
                if not isinstance(exc, Retry):
                    log.warning(
                        "%s: batch failed (%s: %s), reading it again",
                        self.name, type(exc).__name__, exc,
                    )  # fmt: skip
                for tp, records in batch.items():
                    if tp in consumer.assignment():
                        consumer.seek(tp, records[0].offset)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            try:
                await consumer.commit(offsets)
            except (CommitFailedError, KafkaError) as exc:
                # a rebalance took the partitions: the new owner reads them again, and every
                # stage is idempotent
                log.info("%s: commit failed (%s), records will be redelivered", self.name, exc)
            self._update_lag()
            M.BATCH_SECONDS.labels(self.name).observe(time.perf_counter() - started)
            M.BATCH_EVENTS.labels(self.name).observe(n)
            self.after_batch(batch, n)

    def _update_lag(self) -> None:
        assert self.consumer is not None
        consumer = self.consumer
        current = consumer.assignment()
        for tp in current:
            high = consumer.highwater(tp)
            if high is None:
                continue
            try:  # the next offset getmany hands out (no network call)
                pos = position(consumer, tp)
            except Exception:  # mid-rebalance: keep the last value
                continue
            if pos is None:
                continue
            lag = max(0, high - pos)
            self.lag[tp] = lag
            M.LAG.labels(self.group_id, tp.topic, str(tp.partition)).set(lag)
        for tp in self._seen_tps - set(current):  # revoked: another worker reports it
            self.lag.pop(tp, None)
            M.LAG.remove(self.group_id, tp.topic, str(tp.partition))
        self._seen_tps = set(current)
