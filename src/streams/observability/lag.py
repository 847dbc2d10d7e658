"""Consumer lag per topic partition (kafka-lag-exporter names) and queue lengths, from the
worker's own consumer: no extra connection, and it sees exactly the partitions it owns."""

from __future__ import annotations

import logging
from typing import Any

import faust

from streams.config import Settings
from streams.observability import metrics as M

log = logging.getLogger(__name__)


def partition_lag(highwater: int | None, committed: int | None, read: int | None) -> int:
    """Records not yet processed: the end offset minus the next offset to process."""
    if highwater is None:
        return 0
    done = committed if committed is not None else (read + 1 if read is not None else 0)
    return max(0, highwater - done)


class LagMonitor:
    def __init__(self, app: faust.App, settings: Settings, interval_s: float = 5.0) -> None:
        self.app = app
        self.settings = settings
        self.queues = {
            settings.topic_po_acknowledgements: "acks",
            settings.topic_inventory_commands: "ct_commands",
            settings.topic_shipment_confirmations: "asns",
        }
        self._seen: set[tuple[str, int]] = set()
        self.by_topic: dict[str, int] = {}  # records behind per topic, from the last tick
        app.timer(interval_s, name="lag-monitor")(self.tick)

    def behind(self, *topics: str) -> int:
        return sum(self.by_topic.get(t, 0) for t in topics)

    async def tick(self) -> None:
        consumer: Any = self.app.consumer
        if self.app.rebalancing:
            return
        # only stream partitions: changelogs are read during recovery, not consumed as work
        tps = [tp for tp in consumer.assignment() if not tp.topic.endswith("-changelog")]
        if not tps:
            return
        try:
            highwaters = await consumer.highwaters(*tps)
        except Exception as exc:  # broker away: keep the last values rather than zeros
            log.debug("lag: highwaters unavailable: %s", exc)
            return
        # Faust keeps the last committed and last read offset per partition (internal maps)
        committed = getattr(consumer, "_committed_offset", {})
        read = getattr(consumer, "_read_offset", {})
        queues = dict.fromkeys(self.queues.values(), 0)
        by_topic: dict[str, int] = {}
        current: set[tuple[str, int]] = set()
        for tp in tps:
            lag = partition_lag(highwaters.get(tp), committed.get(tp), read.get(tp))
            M.LAG.labels(self.settings.app_id, tp.topic, str(tp.partition)).set(lag)
            current.add((tp.topic, tp.partition))
            by_topic[tp.topic] = by_topic.get(tp.topic, 0) + lag
            if tp.topic in self.queues:
                queues[self.queues[tp.topic]] += lag
        for topic, partition in self._seen - current:  # revoked: this worker no longer owns it
            M.LAG.remove(self.settings.app_id, topic, str(partition))
        self._seen = current
        self.by_topic = by_topic
        for queue, n in queues.items():
            M.PENDING.labels(queue).set(n)
