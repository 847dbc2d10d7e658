"""The periodic full snapshot on a real worker and real Kafka: every owned SKU is
re-published as ``kind: snapshot`` once per interval, read in slices across the table's
partitions (more SKUs than one tick's budget, so the walk resumes where it stopped)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.adapters.kafka_admin import create_topics
from tests.integration.test_inventory_day import created, mapping
from tests.support.kafka import produce, read_all, unique_settings, wait_for
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.kafka]

SKUS = 60


def by_kind(records: list[object], kind: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for r in records:
        v = r.json()  # type: ignore[attr-defined]
        if v["kind"] == kind:
            out.setdefault(v["sku"], []).append(v["availableQuantity"]["amount"])
    return out


async def test_snapshot_walks_every_sku_in_slices(kafka: str, tmp_path: Path) -> None:
    s = unique_settings(
        kafka,
        tmp_path,
        web_port=free_port(),
        debounce_window_s=0.2,
        debounce_max_wait_s=1.0,
        debounce_tick_s=0.1,
        delta_budget_per_s=100.0,  # 10 per tick: the snapshot needs several ticks
        snapshot_interval_s=8.0,
    )
    await create_topics(s)
    skus = [f"SNAP-{i:03d}" for i in range(SKUS)]
    await produce(
        s.kafka_bootstrap,
        s.topic_sku_mappings,
        [(k.encode(), mapping(k, f"B{i:09d}")) for i, k in enumerate(skus)],
    )
    await produce(
        s.kafka_bootstrap,
        s.topic_ct_messages,
        [(b"ct", created(f"e{i}", k, "wh-1", i + 1)) for i, k in enumerate(skus)],
    )
    out = s.topic_inventory_updates
    w = WorkerProcess(s, tmp_path / "worker.log").start()
    try:
        w.wait_ready()
        recs = await wait_for(
            s.kafka_bootstrap, out, lambda r: len(by_kind(r, "snapshot")) == SKUS, timeout=90
        )
        want = {k: i + 1 for i, k in enumerate(skus)}
        assert {k: v[-1] for k, v in by_kind(recs, "delta").items()} == want, w.tail()
        snaps = by_kind(recs, "snapshot")
        assert {k: v[0] for k, v in snaps.items()} == want
        assert all(len(v) == 1 for v in snaps.values()), "one snapshot per SKU per interval"
    finally:
        w.stop()
    assert len(await read_all(s.kafka_bootstrap, s.dlq_topic(s.topic_ct_messages))) == 0
