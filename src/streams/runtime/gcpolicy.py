"""The worker's cyclic garbage collector: fewer collections, none over the start-up heap.

Nearly everything the worker allocates per event (a record's dicts, lists and tuples) is
freed by reference counting as soon as it is used; the cyclic collector only ever finds the
odd cycle. With Python's thresholds (700, 10, 10) it still ran a young collection every few
hundred allocations and a full one each time the heap grew by a quarter, over every object
Faust, aiokafka and the tables hold. Measured in the inventory benchmark's backlog (200k
events, 50k SKUs; ``streams_gc_pause_seconds_total``): about 2,700 young and 20 full
collections holding the worker 3.8 s of the 25 s phase (15%); with the young threshold at
10,000 and the start-up heap frozen, 1.1 s (see docs/benchmarks.md, sixth pass).

The cost: a cycle lives until the next collection (at most the threshold's worth of
allocations later), and an object built during start-up that becomes cyclic garbage later
is never freed (start-up builds modules, the app and its services, which live as long as
the process).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

# once the young generation is collected this rarely, the older two need not be as eager
OLDER_THRESHOLDS = (20, 100)


def tune(young_threshold: int) -> bool:
    """Collect the young generation every ``young_threshold`` net allocations of container
    objects (0: keep Python's own thresholds); True when tuned."""
    if young_threshold <= 0:
        return False
    gc.set_threshold(young_threshold, *OLDER_THRESHOLDS)
    return True


def freeze_startup_heap() -> int:
    """Collect once, then move every object that exists now out of the collector's reach
    (``gc.freeze``): full collections then scan only what was made after start-up. Returns
    how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def meter_pauses(add: Callable[[float], Any]) -> Callable[[str, dict[str, Any]], None]:
    """Report every collection's duration to ``add`` (seconds); the callback is returned
    (``gc.callbacks.remove`` takes it out). Two clock reads per collection."""
    started = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            add(time.perf_counter() - started[0])

    gc.callbacks.append(callback)
    return callback
