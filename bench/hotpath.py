"""The inventory path's own CPU per event, in one process, without Kafka or Faust.

    python -m bench.hotpath [--messages N] [--skus K] [--channels C] [--repeat R]

The inventory benchmark's figures move by ±15% from one run to the next on a small machine
(the broker, Faust's threads and the scheduler share its cores), so a change worth 3% of the
path cannot be seen there. This runs the product's own code for the two stages each ct event
goes through, on the inventory benchmark's data set (same generator, same seed):

1. ingest: ``decode_record`` + ``parse_delivery`` + ``to_wire`` + the ``Bundler`` (SKU
   partition, bundle JSON), as ``IngestService`` does per record and per batch;
2. SKU agent: each bundle decoded and ``SkuApply._apply_partition`` per partition of a
   batch (state read, decode, apply, availability, debouncer, encode), on an in-memory
   store, with the SKU mappings applied first as the ingest's ``map`` items.

Baseline, in the same run: ``orjson.loads`` + ``orjson.dumps`` of every ct record, the
least any JSON-in, JSON-out step pays. Each stage runs ``--repeat`` times on fresh state;
the best time is printed (the least disturbed by the rest of the machine), in µs per event.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import orjson

from bench.harness.dataset import generate
from streams.adapters.codecs import decode_record
from streams.agents.ingest import Bundler
from streams.agents.inventory_apply import SkuApply, items_by_partition
from streams.config import Settings
from streams.domain.availability import Defaults
from streams.domain.ctmessages import StockObservation, parse_delivery
from streams.domain.debounce import Debouncer
from streams.domain.mapping import SkuMapping
from streams.runtime import gcpolicy
from streams.runtime.ports import MemoryPartitionStore


class _Count:
    def inc(self, n: int = 1) -> None:
        pass


class _Rereads:
    def schedule(self, sku: str, at: float) -> None:
        pass


class Apply(SkuApply):
    """The SKU agent's per-partition step on an in-memory store (what the worker's
    constructor sets, nothing of Faust)."""

    def __init__(self, s: Settings) -> None:
        self.settings = s
        self.app = None  # type: ignore[assignment]
        self.clock = time.time
        self.store = MemoryPartitionStore()
        self.defaults = Defaults.of(s)
        self.debouncer = Debouncer(s.debounce_window_s, s.debounce_max_wait_s)
        self.channel_policy = lambda: None
        self.partition_of = {}
        self.offer_of = {}
        self.rereads = _Rereads()  # type: ignore[assignment]
        self._entry_writes = []
        self._outcome = defaultdict(_Count)
        self._hold_outcome = defaultdict(_Count)
        self._finding = defaultdict(_Count)


def ingest(s: Settings, records: list[bytes], batch: int) -> list[tuple[int, bytes]]:
    """The ingest stage's per-record work: the bundles it sends to the SKU topic."""
    out: list[tuple[int, bytes]] = []
    for i in range(0, len(records), batch):
        bundler = Bundler(s.partitions, s.ingest_bundle_max)
        for raw in records[i : i + batch]:
            parsed = parse_delivery(decode_record(raw, "ct.messages"))
            assert isinstance(parsed, StockObservation)
            wire = parsed.to_wire()
            wire["ts"] = 1.0
            bundler.add(parsed.sku, wire)
        out.extend(bundler.bundles())
    return out


def apply(
    s: Settings, maps: list[tuple[int, bytes]], events: list[tuple[int, bytes]]
) -> tuple[float, float, Apply]:
    """The SKU agent's per-batch work over the mapping bundles, then the event bundles:
    (seconds for the mappings, seconds for the events, the agent with its store)."""
    agent = Apply(s)
    took = []
    for bundles in (maps, events):
        t = time.perf_counter()
        for i in range(0, len(bundles), 8):  # a batch: a few bundles of several partitions
            batch = ((partition, b"", value) for partition, value in bundles[i : i + 8])
            by_partition, _ = items_by_partition(batch)
            for partition, partition_items in by_partition.items():
                agent._entry_writes = []
                writes, _ = agent._apply_partition(partition, partition_items)
                agent.store.put_local(partition, writes)
        took.append(time.perf_counter() - t)
    return took[0], took[1], agent


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=200_000)
    p.add_argument("--skus", type=int, default=50_000)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)  # bench.inventory's
    a = p.parse_args()
    s = Settings()
    gcpolicy.tune(s.gc_young_threshold)  # as the worker runs (STREAMS_GC_YOUNG_THRESHOLD)
    _, records, map_records = generate(a.messages, a.skus, a.channels, a.seed)
    mapping_bundler = Bundler(s.partitions, s.ingest_bundle_max)
    for key, value in map_records:  # as the ingest forwards them: validated, in JSON mode
        sku = key.decode()
        m = SkuMapping.model_validate(orjson.loads(value)).model_dump(mode="json")
        mapping_bundler.add(sku, {"t": "map", "sku": sku, "m": m})
    maps = mapping_bundler.bundles()
    n = a.messages

    def baseline() -> None:
        for r in records:  # nothing kept: the result's allocation is not what it measures
            orjson.dumps(orjson.loads(r))

    base_s, _ = best(baseline, a.repeat)
    ingest_s, bundles = best(lambda: ingest(s, records, s.batch_max), a.repeat)
    runs = []
    agent: Apply | None = None
    for _ in range(a.repeat):
        agent = None  # the last run's state is dropped first: a larger heap slows the next
        gc.collect()
        m_s, e_s, agent = apply(s, maps, bundles)
        runs.append((m_s, e_s))
    maps_s = min(r[0] for r in runs)
    events_s = min(r[1] for r in runs)
    assert agent is not None
    store = agent.store
    assert isinstance(store, MemoryPartitionStore)
    sizes = [len(v) for part in store.partitions.values() for v in part.values()]

    def us(sec: float, per: int) -> str:
        return f"{sec / per * 1e6:8.2f}"

    print(f"hot path: {n:,} ct events over {a.skus:,} SKUs x {a.channels} channels, best of "
          f"{a.repeat}, gc thresholds {gc.get_threshold()}")  # fmt: skip
    print(f"  baseline orjson loads+dumps per record   {us(base_s, n)} us/event")
    print(f"  ingest: parse + bundle                   {us(ingest_s, n)} us/event "
          f"({ingest_s / base_s:.1f}x baseline)")  # fmt: skip
    print(f"  SKU agent: {a.skus:,} mappings            {us(maps_s, a.skus)} us/mapping")
    print(f"  SKU agent: events                        {us(events_s, n)} us/event "
          f"({events_s / base_s:.1f}x baseline)")  # fmt: skip
    total = ingest_s + events_s
    print(f"  both stages                              {us(total, n)} us/event "
          f"= {n / total:,.0f} events/s on one core")  # fmt: skip
    print(f"  stored SKU state bytes mean / p99        {statistics.mean(sizes):.0f} / "
          f"{sorted(sizes)[int(len(sizes) * 0.99)]}")  # fmt: skip


if __name__ == "__main__":
    main()
