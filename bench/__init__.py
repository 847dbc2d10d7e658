"""Benchmarks: scripts that print figures (never timed assertions in tests)."""

import os

# the benchmarks run on one local broker: the product's default replication (3) is for
# managed clusters
os.environ.setdefault("STREAMS_KAFKA_REPLICATION_FACTOR", "1")
