"""The bulk restore (streams.restore) on a real broker, then a real worker on its data dir.

Changelogs with overwrites and tombstones across partitions are read into the RocksDB
databases Faust opens; the stored offsets are the changelogs' ends; a second restore reads
only what came since; and a ``streams worker`` started on that data dir serves the restored
states (``/api/sku``, as ``streams sku`` shows them) and publishes a delta for a restored SKU
after one new stock change."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from bench.state_scale_fill import StateGen
from bench.state_scale_run import probe_event

from streams.adapters.kafka_admin import create_topics
from streams.agents.faustutil import partition_for
from streams.config import Settings
from streams.domain.entry_index import entry_key, held_entries
from streams.restore import OFFSET_KEY, read_offset, restore_tables, targets_of
from streams.runtime.store import DERIVED_LAYOUT, LAYOUT_KEY
from tests.support.kafka import unique_settings, wait_for
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.kafka]

SKUS = 40
GONE = {3, 17, 28}  # SKUs deleted again (tombstones)


async def changelogs(s: Settings) -> tuple[str, str]:
    """Both changelogs as Faust declares them: compacted, STREAMS_PARTITIONS partitions."""
    names = (f"{s.app_id}-skus-changelog", f"{s.app_id}-products-changelog")
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(n, s.partitions, 1, topic_configs={"cleanup.policy": "compact"})
                for n in names
            ]
        )
    finally:
        await admin.close()
    return names


async def send_all(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes | None]], n: int
) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await p.start()
    try:
        for key, value in records:
            await p.send(topic, value, key=key, partition=partition_for(key, n))
        await p.flush()
    finally:
        await p.stop()


async def ends_of(s: Settings, topic: str) -> dict[int, int]:
    c = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(s.partitions)]
        return {tp.partition: off for tp, off in (await c.end_offsets(tps)).items()}
    finally:
        await c.stop()


def local_state(s: Settings, target: Any) -> tuple[dict[bytes, bytes], dict[int, int | None]]:
    """Every key and value of a table's partitions, and each partition's stored offset."""
    data: dict[bytes, bytes] = {}
    offsets: dict[int, int | None] = {}
    for p in range(s.partitions):
        db = target.open_db(target.path_of(p))
        try:
            offsets[p] = read_offset(db)
            for k, v in db.items():
                if k not in (OFFSET_KEY, LAYOUT_KEY):
                    data[k] = v
        finally:
            db.close()
    return data, offsets


def with_entry_index(states: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """``skus`` states and the index of the entries they hold (derived, never logged)."""
    index = {entry_key(e): k for k, v in states.items() for e in held_entries(orjson.loads(v))}
    return {**states, **index}


def api_sku(s: Settings, sku: str) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{s.web_port}/api/sku/{sku}"
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status, orjson.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


async def test_bulk_restore_then_worker_serves_the_state(kafka: str, tmp_path: Path) -> None:
    s = unique_settings(
        kafka,
        tmp_path,
        web_port=free_port(),
        debounce_window_s=0.2,
        debounce_max_wait_s=1.0,
        debounce_tick_s=0.1,
    )
    await create_topics(s)
    skus_cl, prod_cl = await changelogs(s)
    gen = StateGen(SKUS, channels=2, recent_ids=2)
    old = StateGen(SKUS, channels=1, recent_ids=1)  # first versions, overwritten below
    keys = [gen.sku(i).encode() for i in range(SKUS)]
    first = [(k, orjson.dumps(old.state(i))) for i, k in enumerate(keys)]
    final = [(k, orjson.dumps(gen.state(i))) for i, k in enumerate(keys)]
    tombs: list[tuple[bytes, bytes | None]] = [(keys[i], None) for i in sorted(GONE)]
    await send_all(kafka, skus_cl, [*first, *final, *tombs], s.partitions)
    # products: the first half in the old layout (index records too), the rest in the new
    # one (a record per mapping); both must restore to the same derived index
    prods: list[tuple[bytes, bytes | None]] = []
    for i, k in enumerate(keys):
        m = gen.mapping(i)
        prods.append((b"sku:" + k, orjson.dumps(m)))
        if i < SKUS // 2:
            prods.append((b"asin:" + m["asin"].encode(), k))
    for i in sorted(GONE):
        if i < SKUS // 2:
            prods.append((b"asin:" + gen.mapping(i)["asin"].encode(), None))
        prods.append((b"sku:" + keys[i], None))
    await send_all(kafka, prod_cl, prods, s.partitions)
    assert len({partition_for(k, s.partitions) for k in keys}) == s.partitions

    from streams.app import create_app

    targets = {t.table: t for t in targets_of(create_app(s))}
    assert {"skus", "products"} <= set(targets)
    assert targets["skus"].topic == skus_cl
    t0 = time.monotonic()
    report = await restore_tables(s, targets.values())
    assert time.monotonic() - t0 < 30
    assert report.records >= 2 * SKUS + len(GONE) + len(prods)

    want_skus = {k: v for k, v in final if int(k[-7:]) not in GONE}
    data, offsets = local_state(s, targets["skus"])
    assert data == with_entry_index(want_skus)
    assert len(data) == 3 * len(want_skus)  # 2 entries a state
    ends = await ends_of(s, skus_cl)
    assert offsets == {p: end - 1 for p, end in ends.items()}
    pdata, poffsets = local_state(s, targets["products"])
    want_products = {}
    for i, k in enumerate(keys):
        if i not in GONE:
            want_products[b"sku:" + k] = orjson.dumps(gen.mapping(i))
            want_products[b"asin:" + gen.mapping(i)["asin"].encode()] = k
            want_products[b"vpi:" + gen.mapping(i)["vendorProductIdentifier"].encode()] = k
    assert pdata == want_products
    assert poffsets == {p: end - 1 for p, end in (await ends_of(s, prod_cl)).items()}

    # a data dir an older worker kept: records of the new layout applied without their
    # index (and a stale key of its own); the next restore rebuilds the index, once
    tp = targets["products"]
    db = tp.open_db(tp.path_of(0))
    try:
        assert db.get(LAYOUT_KEY) == DERIVED_LAYOUT
        del db[LAYOUT_KEY]
        dropped = [k for k in db.keys() if k.startswith((b"asin:", b"vpi:"))]
        assert dropped
        for k in dropped:
            del db[k]
        db[b"asin:STALE00001"] = b"SKU-GONE"
    finally:
        db.close()
    await restore_tables(s, targets.values())
    assert local_state(s, tp)[0] == want_products

    # written since: a second restore reads only that, from the stored offset on
    bumped = StateGen(SKUS, channels=3, recent_ids=2)
    await send_all(kafka, skus_cl, [(keys[5], orjson.dumps(bumped.state(5)))], s.partitions)
    again = await restore_tables(s, targets.values())
    assert again.records == 1
    want_skus[keys[5]] = orjson.dumps(bumped.state(5))
    data, offsets = local_state(s, targets["skus"])
    assert data == with_entry_index(want_skus)  # its third entry too
    assert offsets == {p: end - 1 for p, end in (await ends_of(s, skus_cl)).items()}

    # a real worker on that data dir: nothing left to recover, the state is served
    w = WorkerProcess(s, tmp_path / "worker.log").start()
    try:
        w.wait_ready(timeout=60)
        deadline = time.monotonic() + 30
        status, body = 0, dict[str, Any]()
        while time.monotonic() < deadline:
            status, body = api_sku(s, gen.sku(7))
            if status == 200:
                break
            await asyncio.sleep(0.3)
        assert status == 200, w.tail()
        assert body["availability"] == gen.state(7)["lp"]
        assert {c["channel"] for c in body["channels"]} == set(gen.channel_ids)
        assert api_sku(s, gen.sku(5))[1]["masterTotal"] == bumped.state(5)["lp"]
        assert api_sku(s, gen.sku(3))[0] == 404  # deleted by its tombstone
        assert "bulk restore: 0 records" in w.tail(400), "the worker's own restore: no-op"

        # one new stock change for a restored SKU: its delta is published
        sku, amount = await probe_event(s, gen, 11, 1)

        def published(rs: list[Any]) -> bool:
            return any(
                r.json()["sku"] == sku and r.json()["availableQuantity"]["amount"] == amount
                for r in rs
            )

        recs = await wait_for(kafka, s.topic_inventory_updates, published, timeout=30)
        assert published(recs), w.tail()
    finally:
        w.stop()
