"""Metrics every flow shares: records and dead letters, batches, queues, lag, last
success, owned exceptions; and the build info.
"""

from __future__ import annotations

import platform

from prometheus_client import Counter, Gauge, Histogram

from streams.observability.registry import REGISTRY

BUILD_INFO = Gauge(
    "streams_build_info",
    "Always 1; the labels say what runs (package version, Python and Faust versions)",
    ["version", "python", "faust"],
    registry=REGISTRY,
)
GC_FROZEN = Gauge(
    "streams_gc_frozen_objects",
    "Objects of the start-up heap frozen out of the cyclic garbage collector's reach "
    "(0: Python's own collector settings, STREAMS_GC_YOUNG_THRESHOLD=0)",
    registry=REGISTRY,
)
GC_PAUSE = Counter(
    "streams_gc_pause_seconds_total",
    "Time the cyclic garbage collector held the worker (every generation's collections)",
    registry=REGISTRY,
)
RECORDS = Counter(
    "streams_records_total",
    "Records handled per input topic and outcome "
    "(applied, duplicate, stale, ignored, fetched, dlq; by_entry: a delete that names only "
    "its inventory entry, sent to every SKU partition, see streams_entry_deletes_total)",
    ["topic", "outcome"],
    registry=REGISTRY,
)
DLQ = Counter(
    "streams_dlq_records_total",
    "Records sent to a dead-letter topic, by source topic and reason class",
    ["topic", "reason"],
    registry=REGISTRY,
)
PENDING = Gauge(
    "streams_queue_length",
    "Work waiting inside the worker, by queue (deltas, acks, ct_commands)",
    ["queue"],
    registry=REGISTRY,
)
BATCH_SECONDS = Histogram(
    "streams_agent_batch_duration_seconds",
    "Time an agent spends on one batch of events",
    ["agent"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
BATCH_EVENTS = Histogram(
    "streams_agent_batch_events",
    "Events per batch an agent processes",
    ["agent"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
    registry=REGISTRY,
)
LAST_SUCCESS = Gauge(
    "streams_last_success_timestamp_seconds",
    "Unix time of the last successful step per flow",
    ["flow"],
    registry=REGISTRY,
)
LAG = Gauge(
    "kafka_consumergroup_group_lag",
    "Consumer lag in records per topic partition (kafka-lag-exporter naming)",
    ["group", "topic", "partition"],
    registry=REGISTRY,
)
EXCEPTIONS = Counter(
    "streams_exceptions_total",
    "Owned exceptions raised or resolved, by kind, owner team and status",
    ["kind", "owner", "status"],
    registry=REGISTRY,
)
EXCEPTIONS_OPEN = Gauge(
    "streams_exceptions_open",
    "Open owned exceptions in the exceptions table, by kind, owner and severity (every "
    "worker holds the whole table: aggregate with max, not sum)",
    ["kind", "owner", "severity"],
    registry=REGISTRY,
)


def set_build_info() -> None:
    """``streams_build_info`` for this process (called once when the app is built)."""
    from importlib.metadata import PackageNotFoundError, version

    def of(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "unknown"

    from streams import __version__

    BUILD_INFO.clear()
    BUILD_INFO.labels(__version__, platform.python_version(), of("faust-streaming")).set(1)
