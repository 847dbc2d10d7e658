"""A leader-only job's state in a compacted one-partition topic: read once on start, written
after every step, so a restart or another worker taking over resumes where it stood."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.adapters.codecs import dumps, loads
from streams.adapters.kafka_admin import client_kwargs
from streams.agents.faustutil import raw_topic
from streams.config import Settings

STATE_KEY = b"cursor"


async def write_state(direct: Any, topic: str, records: list[tuple[bytes, bytes | None]]) -> None:
    """Write state records (a None value is a tombstone) to partition 0 of ``topic`` straight
    to the producer (a DirectWriter), and wait until Kafka has them all: a poller's cursor
    moves on only after that."""
    futures = [await direct.send(topic, key, value, 0) for key, value in records]
    for fut in futures:
        await fut


async def replay(
    settings: Settings, topic: str, apply: Callable[[bytes, bytes | None], None]
) -> None:
    """Every keyed record of the one-partition ``topic``, oldest first, up to its end now."""
    c = AIOKafkaConsumer(**client_kwargs(settings), enable_auto_commit=False)
    await c.start()
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        end = (await c.end_offsets([tp]))[tp]
        while await c.position(tp) < end:
            for msgs in (await c.getmany(tp, timeout_ms=1000)).values():
                for m in msgs:
                    if m.key is not None:
                        apply(m.key, m.value)
    finally:
        await c.stop()


class CursorStore:
    def __init__(self, app: faust.App, settings: Settings, name: str) -> None:
        self.settings = settings
        self.topic = raw_topic(
            app, name, partitions=1, internal=True, config={"cleanup.policy": "compact"}
        )

    async def load(self) -> dict[str, Any]:
        """The last record written, or {} for a new deployment."""
        await self.topic.maybe_declare()  # Faust creates only the topics it consumes
        found: list[dict[str, Any]] = [{}]

        def apply(key: bytes, value: bytes | None) -> None:
            if key == STATE_KEY and value:
                found[0] = loads(value)

        await replay(self.settings, self.topic.get_topic_name(), apply)
        return found[0]

    async def save(self, state: dict[str, Any]) -> None:
        await self.topic.send(key=STATE_KEY, value=dumps(state))
