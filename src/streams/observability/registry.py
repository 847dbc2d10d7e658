"""The one Prometheus registry every metric of the product is registered in."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    ProcessCollector,
    disable_created_metrics,
)

# *_created series double the exposition for no use on dashboards
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)
# prometheus_client's own: process_* (CPU, memory, open files, start time) and python_gc_*
ProcessCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)
# (the library registers them on its default registry, which the worker does not serve)
