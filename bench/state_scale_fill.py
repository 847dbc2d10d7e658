"""The state-at-scale data: SKU states written straight into the ``skus`` and ``products``
changelogs (as a long-running worker would have left them), and the raw restore ceiling."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.agents.faustutil import partition_for
from streams.config import Settings
from streams.domain.inventory import SkuState, message_tag
from streams.domain.mapping import SkuMapping

PUBLISHED_AT = 1_790_000_000.0  # when the state says Amazon was last told (any past time)


AT = "2026-11-01T00:00:00.000Z"


# --------------------------------------------------------------------------------------
# the state: one SkuState per SKU, exactly as the product stores it
# --------------------------------------------------------------------------------------
class StateGen:
    """Deterministic SKU states: SKU i, channel c -> entry, mapping, what Amazon was told."""

    def __init__(self, skus: int, channels: int, recent_ids: int) -> None:
        self.n, self.c, self.r = skus, channels, recent_ids
        self.channel_ids = [str(uuid.UUID(int=(0xC0FFEE << 100) | c)) for c in range(channels)]

    @staticmethod
    def sku(i: int) -> str:
        return f"SKU-{i:07d}"

    def entry(self, i: int, c: int) -> tuple[str, int, int, int]:
        """(entry id, version, available, on stock) of SKU i's entry in channel c."""
        version = 2 + (i * 7 + c) % 50
        available = (i * 31 + c * 17) % 500
        return (str(uuid.UUID(int=(0xE << 124) | (i << 8) | c)), version, available,
                available + (i + c) % 20)  # fmt: skip

    def mapping(self, i: int) -> dict[str, Any]:
        """``SkuMapping.model_dump(mode="json")`` of SKU i's mapping (as bench.inventory's)."""
        return {
            "sku": self.sku(i),
            "asin": f"B{i:09d}",
            "vendorProductIdentifier": f"VP-{i:08d}",
            "unitsPerCase": 6,
            "amazonUnitOfMeasure": "Eaches",
            "amazonChannels": [],
            "safetyBuffer": 0,
            "obsolete": False,
            "netCost": None,
        }

    def state(self, i: int) -> dict[str, Any]:
        """``SkuState.to_dict()`` of SKU i: stock in every channel, mapped, published."""
        ch: dict[str, Any] = {}
        total = 0
        for c, cid in enumerate(self.channel_ids):
            eid, version, available, on_stock = self.entry(i, c)
            total += available
            ch[cid] = {
                "e": eid,
                "v": version,
                "a": available,
                "q": on_stock,
                "s": version,
                "at": AT,
                # tags of the last messages applied (RECENT_IDS at most), as the product
                # keeps them
                "r": [
                    message_tag(str(uuid.UUID(int=(0xD << 124) | (i << 16) | (c << 8) | k)))
                    for k in range(self.r)
                ],
            }
        return {
            "dirty": 0,  # told to Amazon (first, as SkuState.to_dict writes it)
            "sku": self.sku(i),
            "ch": ch,
            "del": {},
            "m": self.mapping(i),
            "ln": {},
            "ho": {},
            "pe": {},
            "lc": {},
            "cs": 0,
            "lp": total,
            "pa": PUBLISHED_AT,
            "oe": None,  # no storefront orders
            "oa": None,
            "ca": None,
        }

    def check(self, i: int) -> None:
        """The record is what the product would store and reads back unchanged."""
        d = self.state(i)
        st = SkuState.from_dict(d)
        assert st.to_dict() == d, f"SkuState round trip differs for {self.sku(i)}"
        assert st.publishable()
        assert st.availability() == d["lp"], "last_published must equal the availability"
        assert SkuMapping.model_validate(d["m"]).model_dump(mode="json") == d["m"]


async def create_changelogs(s: Settings, names: list[str]) -> None:
    """The changelog topics as Faust declares them (compacted, STREAMS_PARTITIONS)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        for name in names:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(name, s.partitions, s.kafka_replication_factor,
                              topic_configs={"cleanup.policy": "compact"})]
                )  # fmt: skip
    finally:
        await admin.close()


async def fill(s: Settings, gen: StateGen, products: bool) -> dict[str, Any]:
    """Produce every SKU state (and its products records) into the changelogs."""
    skus_cl = f"{s.app_id}-skus-changelog"
    prod_cl = f"{s.app_id}-products-changelog"
    await create_changelogs(s, [skus_cl, prod_cl])
    for i in (0, 1, gen.n // 2, gen.n - 1):
        gen.check(i)
    p = AIOKafkaProducer(
        bootstrap_servers=s.kafka_bootstrap,
        linger_ms=20,
        max_batch_size=1024 * 1024,
        max_request_size=8 * 1024 * 1024,
        acks=1,
    )
    await p.start()
    out: dict[str, Any] = {"skus_changelog": skus_cl, "products_changelog": prod_cl}
    try:
        t0 = time.perf_counter()
        nbytes = 0
        pending: list[Any] = []
        per_partition = [0] * s.partitions
        for i in range(gen.n):
            key = gen.sku(i).encode()
            part = partition_for(key, s.partitions)
            per_partition[part] += 1
            value = orjson.dumps(gen.state(i))
            nbytes += len(value)
            pending.append(await p.send(skus_cl, value, key=key, partition=part))
            if products:
                m = gen.mapping(i)
                for k, v in (
                    (b"sku:" + key, orjson.dumps(m)),
                    (b"asin:" + m["asin"].encode(), key),
                    (b"vpi:" + m["vendorProductIdentifier"].encode(), key),
                ):
                    pending.append(await p.send(prod_cl, v, key=k, partition=part))
            if len(pending) >= 50_000:
                await asyncio.gather(*pending)
                pending = []
            if i and i % 200_000 == 0:
                print(f"[bench] fill: {i:,} SKUs ({time.perf_counter() - t0:.0f}s)", flush=True)
        await p.flush()
        await asyncio.gather(*pending)
        secs = time.perf_counter() - t0
    finally:
        await p.stop()
    out.update(
        {
            "skus": gen.n,
            "skus_records": gen.n,
            "products_records": 3 * gen.n if products else 0,
            "state_bytes_total": nbytes,
            "state_bytes_mean": round(nbytes / max(1, gen.n), 1),
            "skus_per_partition": per_partition,
            "produce_s": round(secs, 1),
            "records_per_s": round(gen.n * (4 if products else 1) / secs),
        }
    )
    return out


async def restore_ceiling(
    s: Settings, topics: dict[str, str], where: Path, keep: bool = False
) -> dict[str, Any]:
    """What a restore can reach without Faust's recovery path: raw aiokafka getmany of the
    changelogs ({topic: table}) into one rocksdict database per partition, one WriteBatch per
    fetched chunk, with the changelog offset where Faust keeps it. With ``keep`` the databases
    are the worker's own (``where`` = its tables dir): a worker started on them finds its
    state local and up to date."""
    import rocksdict

    c = AIOKafkaConsumer(
        bootstrap_servers=s.kafka_bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    await c.start()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    n = 0
    try:
        await c._client.force_metadata_update()
        tps = [
            TopicPartition(t, p) for t in topics for p in sorted(c.partitions_for_topic(t) or ())
        ]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await c.end_offsets(tps)
        total = sum(end.values())
        dbs: dict[TopicPartition, Any] = {}
        for tp in tps:
            opts = rocksdict.Options(raw_mode=True)
            opts.create_if_missing(True)
            os.makedirs(where, exist_ok=True)
            path = where / f"{topics[tp.topic]}-{tp.partition}.db"
            dbs[tp] = rocksdict.Rdict(str(path), options=opts)
        while n < total:
            batch = await c.getmany(*tps, timeout_ms=500, max_records=20_000)
            for tp, msgs in batch.items():
                wb = rocksdict.WriteBatch(raw_mode=True)
                for m in msgs:
                    wb.put(m.key, m.value)
                wb.put(b"__faust\0offset__", str(msgs[-1].offset).encode())
                dbs[tp].write(wb)
                n += len(msgs)
        for db in dbs.values():
            db.close()
    finally:
        await c.stop()
        if not keep:
            shutil.rmtree(where, ignore_errors=True)
    secs = time.perf_counter() - t0
    return {
        "records": n,
        "seconds": round(secs, 2),
        "records_per_s": round(n / secs),
        "bench_cpu_cores": round((time.process_time() - cpu0) / secs, 2),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }


def reused_fill(s: Settings, gen: StateGen, products: bool) -> dict[str, Any]:
    """The fill figures of topics an earlier run produced (state sizes from a sample)."""
    step = max(1, gen.n // 1000)
    sample = [len(orjson.dumps(gen.state(i))) for i in range(0, gen.n, step)]
    mean = sum(sample) / len(sample)
    return {
        "reused": True,
        "skus": gen.n,
        "skus_records": gen.n,
        "products_records": 3 * gen.n if products else 0,
        "state_bytes_total": int(mean * gen.n),
        "state_bytes_mean": round(mean, 1),
        "produce_s": None,
        "records_per_s": None,
    }


async def delete_topics(s: Settings) -> None:
    """The run's topics hold GBs on the broker's disk: drop them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        tag = s.app_id.removeprefix("bench-state-")
        names = [t for t in await admin.list_topics() if tag in t]
        if names:
            await admin.delete_topics(names)
    except Exception as exc:  # best effort
        print(f"[bench] could not delete the run's topics: {exc!r}", file=sys.stderr)
    finally:
        await admin.close()
