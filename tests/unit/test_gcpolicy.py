"""The worker's garbage-collector policy (runtime/gcpolicy.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from streams.config import Settings
from streams.runtime import gcpolicy


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


def test_zero_keeps_pythons_thresholds() -> None:
    before = gc.get_threshold()
    assert gcpolicy.tune(0) is False
    assert gc.get_threshold() == before


def test_a_threshold_sets_the_young_generation_and_eases_the_older_ones() -> None:
    assert gcpolicy.tune(12_345) is True
    assert gc.get_threshold() == (12_345, *gcpolicy.OLDER_THRESHOLDS)


def test_the_start_up_heap_is_frozen_and_later_objects_are_not() -> None:
    gc.unfreeze()
    startup = [[i] for i in range(1000)]  # containers the collector tracks
    frozen = gcpolicy.freeze_startup_heap()
    assert frozen == gc.get_freeze_count() >= len(startup)
    later = [[i] for i in range(1000)]
    reachable = {id(o) for o in gc.get_objects()}  # what collections still scan
    assert id(startup) not in reachable and id(startup[0]) not in reachable
    assert id(later) in reachable and id(later[0]) in reachable


def test_the_default_tunes_the_worker() -> None:
    assert Settings().gc_young_threshold == 10_000


def test_every_collection_is_timed() -> None:
    pauses: list[float] = []
    callback = gcpolicy.meter_pauses(pauses.append)
    try:
        gc.collect()
        gc.collect(0)
    finally:
        gc.callbacks.remove(callback)
    assert len(pauses) >= 2 and all(p >= 0 for p in pauses)
    n = len(pauses)
    gc.collect()
    assert len(pauses) == n  # removed: no longer called
