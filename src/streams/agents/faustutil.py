"""Helpers the agents share. The Faust and aiokafka internals they used to reach live in
:mod:`streams.runtime`; the names below are re-exported from there so existing imports keep
working (new code imports ``streams.runtime.*`` directly)."""

from __future__ import annotations

import logging
from typing import Any

from streams.runtime.events import PartitionEvent, bind_event, raw_topic
from streams.runtime.kafka import partition_for
from streams.runtime.store import DirectWriter, read_partition

__all__ = [
    "DirectWriter",
    "PartitionEvent",
    "bind_event",
    "dead_letter",
    "partition_for",
    "raw_topic",
    "read_partition",
]

log = logging.getLogger(__name__)


async def dead_letter(dlq: Any, event: Any, error: str, failed_at: float) -> Any:
    """Send ``event``'s raw record to the ``dlq`` topic with the reason and where it came from,
    count it (``streams_dlq_records_total``) and log it; returns the send's result."""
    from streams.adapters.codecs import dlq_record, dumps, reason_class
    from streams.observability import metrics as M

    msg = event.message
    value = dlq_record(
        event.value if isinstance(event.value, bytes) else None, error,
        topic=msg.topic, partition=msg.partition, offset=msg.offset,
        timestamp=msg.timestamp, failed_at=failed_at,
    )  # fmt: skip
    M.DLQ.labels(msg.topic, reason_class(error)).inc()
    log.info(
        "dead-lettered %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, error,
        extra={"topic": msg.topic, "partition": msg.partition, "offset": msg.offset},
    )  # fmt: skip
    return await dlq.send(
        key=msg.key,
        value=dumps(value),
        headers={"dlq.error": error[:500].encode(), "dlq.topic": msg.topic.encode()},
    )
