"""State at scale: worker start-up with 1M SKUs, from local RocksDB state and from the changelog.

    python -m bench.state_scale [--skus 1000000] [--channels 3] [--restarts 1]
                                [--bootstrap HOST:PORT] [--profile] [--no-products]

One run, one broker, one fresh app id and topic set:

1. fill: K valid ``SkuState`` records (``SkuState.to_dict``, with a mapping each, published:
   ``last_published`` = availability) produced straight into ``<app>-skus-changelog``, each
   in the partition the product writes it to (``partition_for(sku)``), and, unless
   ``--no-products``, the three ``products`` global-table records per SKU the mappings agent
   writes (``sku:``, ``asin:``, ``vpi:``) into ``<app>-products-changelog``;
2. (cold) ``streams worker`` with an empty data dir: it rebuilds the tables from the
   changelogs;
3. (restart) the same worker stopped (SIGTERM) and started again on the same data dir,
   ``--restarts`` times: it resumes from its local RocksDB state.

Before each start one probe is produced to ``ct.messages``: an ``InventoryEntryQuantitySet``
for a SKU of the state (a new resource version, +7 available). **Ready** is when the delta for
that SKU with the new amount is on ``amazon.inventory-updates`` (its Kafka timestamp), counted
from the process start. A worker can only publish it once its web server runs, the tables are
recovered (Faust logs "Recovery complete"), it is not rebalancing, the probe went through
ingest and the SKU agent, and the debounce timer ran (its window included). Each of those
times is reported too, with the worker's peak RSS (``VmHWM``) over the phase, its CPU, the
longest /health stall (a blocked event loop) and the machine's load.

Figures are printed and written to ``bench/results/state-scale-<date>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from tests.support.worker import WorkerProcess

import bench.inventory as inv
from bench.inventory import (
    RUN_ROOT,
    Meter,
    machine,
    metric_sum,
    scrape,
    start_profiler,
    stop_profiler,
)
from streams.adapters.kafka_admin import create_topics
from streams.agents.faustutil import partition_for
from streams.config import Settings
from streams.domain.inventory import SkuState
from streams.domain.mapping import SkuMapping

REPO = inv.REPO
PUBLISHED_AT = 1_790_000_000.0  # when the state says Amazon was last told (any past time)
AT = "2026-11-01T00:00:00.000Z"

# Where a worker sample goes during start-up, first match wins.
PROFILE_BUCKETS = (
    ("event loop idle (select)", ("EpollSelector.select",)),
    ("_scan after rebalance (every SKU decoded)", ("InventoryFlow._scan",)),
    ("hourly snapshot (key list)", ("InventoryFlow.tick",)),
    ("table recovery (changelog -> RocksDB)", ("Recovery.", "apply_changelog_batch")),
    ("Faust consume + deliver", ("Fetcher._fetcher", "Conductor.", "Stream.")),
    ("RocksDB open", ("_open_for_partition", "RocksDBOptions.open")),
    ("web", ("faust/web/",)),
)


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
                # message ids kept per entry against redeliveries (RECENT_IDS at most)
                "r": [
                    str(uuid.UUID(int=(0xD << 124) | (i << 16) | (c << 8) | k))
                    for k in range(self.r)
                ],
            }
        return {
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


# --------------------------------------------------------------------------------------
# one worker start, measured
# --------------------------------------------------------------------------------------
class RssSampler(threading.Thread):
    """VmRSS of ``pid`` every ``every`` s; VmHWM (the kernel's peak RSS) at the end."""

    def __init__(self, pid: int, t0: float, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.t0, self.every = pid, t0, every
        self.samples: list[tuple[float, int]] = []  # (s since start, RSS MiB)
        self.hwm_mib = 0
        self.stop_ev = threading.Event()

    def status(self) -> dict[str, int]:
        out = {}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0]) // 1024
        return out

    def run(self) -> None:
        while not self.stop_ev.is_set():
            st = self.status()
            if "VmRSS" in st:
                self.samples.append((round(time.time() - self.t0, 2), st["VmRSS"]))
                self.hwm_mib = max(self.hwm_mib, st.get("VmHWM", 0))
            self.stop_ev.wait(self.every)

    def finish(self) -> dict[str, Any]:
        st = self.status()  # read before the process ends
        self.stop_ev.set()
        self.join(5)
        self.hwm_mib = max(self.hwm_mib, st.get("VmHWM", 0))
        peak_at = max(self.samples, key=lambda x: x[1]) if self.samples else (None, None)
        # a compact series: one sample per second at most
        series: list[tuple[float, int]] = []
        for t, r in self.samples:
            if not series or t - series[-1][0] >= 1.0:
                series.append((t, r))
        return {
            "peak_rss_mib": self.hwm_mib,
            "peak_sampled_at_s": peak_at[0],
            "rss_at_end_mib": st.get("VmRSS"),
            "rss_anon_at_end_mib": st.get("RssAnon"),
            "rss_file_at_end_mib": st.get("RssFile"),
            "rss_series_mib": series,
        }


LOG_TS = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] \[\d+\] \[(\w+)\] (.*)$")
MILESTONES = {
    "restoring": "Restoring state from changelog topics",
    "done_reading": "Done reading from changelog topics",
    "recovery_complete": "Recovery complete",
    "worker_ready": "Worker ready",
}


def log_milestones(path: Path, since_byte: int, t0: float) -> dict[str, Any]:
    """Seconds from the process start to Faust's recovery log lines (last occurrence)."""
    out: dict[str, Any] = {}
    overlap = re.compile(r"Timer (\S+) is overlapping \(interval=[\d.]+ runtime=([\d.]+)")
    timers: dict[str, float] = {}
    with path.open("rb") as fh:
        fh.seek(since_byte)
        for raw in fh:
            line = raw.decode(errors="replace").rstrip("\n")
            m = LOG_TS.match(line)
            if not m:
                continue
            ts = dt.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            for name, text in MILESTONES.items():
                if text in m[3]:
                    out[name] = round(ts - t0, 2)
            if o := overlap.search(m[3]):
                timers[o[1]] = max(timers.get(o[1], 0.0), round(float(o[2]), 2))
    out["timers_overlapping_max_runtime_s"] = timers
    return out


def health(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return json.loads(r.read()) if r.status == 200 else None
    except (OSError, ValueError):
        return None


async def probe_event(s: Settings, gen: StateGen, i: int, step: int) -> tuple[str, int]:
    """Produce one new stock change for SKU i; returns (sku, the amount Amazon must be told)."""
    ds = inv.Dataset([gen.sku(i)], gen.channel_ids)
    for c in range(gen.c):
        eid, version, available, on_stock = gen.entry(i, c)
        ds.entries[(0, c)] = inv.Entry(eid, version + step - 1, available, on_stock)
    e = ds.entry(0, 0)
    raw = ds.quantity_set(0, 0, e.available + 7 * step, inv.iso_now())
    p = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks=1)
    await p.start()
    try:
        await p.send_and_wait(s.topic_ct_messages, raw, key=b"ct")
    finally:
        await p.stop()
    return gen.sku(i), ds.total(0)


class DeltaWatch:
    """Deltas on amazon.inventory-updates from now on: sku -> [(amount, kafka ts s)]."""

    def __init__(self, s: Settings) -> None:
        self.s = s
        self.seen: dict[str, list[tuple[int, float]]] = {}
        self.count = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        c = self.c = AIOKafkaConsumer(
            bootstrap_servers=self.s.kafka_bootstrap, enable_auto_commit=False
        )
        await c.start()
        await c._client.force_metadata_update()
        topic = self.s.topic_inventory_updates
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        c.assign(tps)
        await c.seek_to_end(*tps)
        for tp in tps:
            await c.position(tp)
        self._task = asyncio.create_task(self._run(tps))

    async def _run(self, tps: list[TopicPartition]) -> None:
        while not self._stop.is_set():
            try:
                batch = await self.c.getmany(*tps, timeout_ms=100)
            except KafkaError as exc:  # a slow broker (the fill, a busy machine): try again
                print(f"[bench] delta watch: {exc!r}", file=sys.stderr, flush=True)
                await asyncio.sleep(0.5)
                continue
            for msgs in batch.values():
                for r in msgs:
                    v = orjson.loads(r.value)
                    self.count += 1
                    self.seen.setdefault(v["sku"], []).append(
                        (v["availableQuantity"]["amount"], r.timestamp / 1000)
                    )

    def when(self, sku: str, amount: int) -> float | None:
        for a, ts in self.seen.get(sku, ()):
            if a == amount:
                return ts
        return None

    async def stop(self) -> None:
        self._stop.set()
        if self._task:
            await self._task
        with contextlib.suppress(KafkaError, asyncio.CancelledError):
            await self.c.stop()


async def run_phase(
    name: str,
    s: Settings,
    gen: StateGen,
    probe_sku: int,
    step: int,
    work: Path,
    a: argparse.Namespace,
    broker_pid: int | None,
    pythonpath: str | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Start the worker, measure it to ready and ``--settle`` s beyond, stop it. Past
    ``timeout`` the phase ends with ``ready_s`` None and the recovery progress so far."""
    log = work / "worker.log"
    since = log.stat().st_size if log.exists() else 0
    data = Path(s.data_dir)
    res: dict[str, Any] = {
        "phase": name,
        "data_dir_mib_before": round(du(data) / 2**20, 1),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }
    watch = DeltaWatch(s)
    await watch.start()
    sku, amount = await probe_event(s, gen, probe_sku, step)
    res["probe"] = {"sku": sku, "amount": amount}
    w = WorkerProcess(s, log)
    saved = os.environ.get("PYTHONPATH")
    if pythonpath is not None:
        os.environ["PYTHONPATH"] = pythonpath  # the worker runs this product code
        res["pythonpath"] = pythonpath
        res["product"] = streams_source(Path(pythonpath.split(os.pathsep)[0]))
    t0 = time.time()
    try:
        w.start()
    finally:
        if pythonpath is not None:
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved
    assert w.proc is not None
    pid = w.proc.pid
    pids = {"worker": pid, **({"broker": broker_pid} if broker_pid else {})}
    meter = Meter(**pids)
    rss = RssSampler(pid, t0)
    rss.start()
    spy = start_profiler(pid, work / f"profile-{name}.txt") if a.profile else None
    t_web = t_ready_health = t_applied = t_delta = None
    last_ok: float | None = None
    stall = 0.0
    deadline = time.monotonic() + (timeout or a.timeout)
    settle_until: float | None = None
    ct = s.topic_ct_messages
    try:
        while time.monotonic() < deadline:
            if w.proc.poll() is not None:
                raise RuntimeError(f"worker exited {w.proc.returncode}: {w.tail()}")
            h = await asyncio.to_thread(health, s.web_port)
            now = time.time()
            if h is not None:
                if last_ok is not None:
                    stall = max(stall, now - last_ok)
                last_ok = now
                t_web = t_web or now
                if t_ready_health is None and not h.get("rebalancing"):
                    ms = log_milestones(log, since, t0)
                    if "recovery_complete" in ms:
                        t_ready_health = now
                if t_applied is None:
                    with contextlib.suppress(OSError):
                        m = await asyncio.to_thread(scrape, s.web_port)
                        if metric_sum(m, "streams_records_total", topic=ct, outcome="applied"):
                            t_applied = time.time()
            if t_delta is None:
                t_delta = watch.when(sku, amount)
                if t_delta is not None:
                    settle_until = time.monotonic() + a.settle
            if settle_until is not None and time.monotonic() >= settle_until:
                break
            await asyncio.sleep(0.1)
        usage = meter.read()
        mem = rss.finish()
    finally:
        if spy is not None:
            res["profile"] = stop_profiler_buckets(spy, work / f"profile-{name}.txt")
        t_stop = time.time()
        w.stop(timeout=120)
        res["stop_s"] = round(time.time() - t_stop, 2)
        await watch.stop()
    if t_delta is None:
        if timeout is None:
            raise TimeoutError(f"{name}: no probe delta within {a.timeout:.0f}s: {w.tail()}")
        res.update(recovery_progress(log, since, t0))
        t_delta = t0 - s.debounce_window_s  # nothing published: the figures below are None

    def since0(t: float | None) -> float | None:
        return round(t - t0, 2) if t is not None else None

    done = "timed_out_after_s" not in res
    res.update(
        {
            "ready_s": since0(t_delta) if done else None,
            "ready_minus_debounce_window_s": round(t_delta - t0 - s.debounce_window_s, 2)
            if done
            else None,
            "web_up_s": since0(t_web),
            "recovered_and_not_rebalancing_s": since0(t_ready_health),
            "probe_applied_s": since0(t_applied),
            "probe_delta_s": since0(t_delta) if done else None,
            "faust_log_s": log_milestones(log, since, t0),
            "longest_health_stall_s": round(stall, 2),
            "deltas_seen": watch.count,
            "settle_s": a.settle,
            **mem,
            **usage,
            "data_dir_mib_after": round(du(data) / 2**20, 1),
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        }
    )
    return res


REMAINING = re.compile(r"total remaining=(\d+)")


def recovery_progress(path: Path, since_byte: int, t0: float) -> dict[str, Any]:
    """When a phase timed out: Faust's "total remaining" over time, and the rate it gives."""
    points: list[tuple[float, int]] = []
    with path.open("rb") as fh:
        fh.seek(since_byte)
        for raw in fh:
            line = raw.decode(errors="replace")
            m, r = LOG_TS.match(line), REMAINING.search(line)
            if m and r:
                ts = dt.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                points.append((round(ts - t0, 1), int(r[1])))
    out: dict[str, Any] = {"timed_out_after_s": round(time.time() - t0, 1)}
    if len(points) >= 2:
        (ta, ra), (tb, rb) = points[0], points[-1]
        rate = (ra - rb) / max(1e-9, tb - ta)
        out.update(
            {
                "recovery_remaining_first": points[0],
                "recovery_remaining_last": points[-1],
                "recovery_records_per_s": round(rate),
                "recovery_estimated_total_s": round(tb + rb / rate) if rate > 0 else None,
            }
        )
    return out


def du(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total


def stop_profiler_buckets(spy: Any, out: Path) -> dict[str, Any]:
    summary = stop_profiler(spy, out)
    summary.pop("buckets_pct", None)  # bench.inventory's buckets are the inventory flow's
    summary["buckets_pct"] = buckets(out)
    return summary


def buckets(path: Path) -> list[tuple[str, float]]:
    counts: dict[str, int] = {}
    total = 0
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not stack or not n.isdigit():
                continue
            c = int(n)
            total += c
            frames = stack.split(";")
            if frames[0].startswith("thread (") and "MainThread" not in frames[0]:
                name = "other threads (Faust consumer thread, RocksDB)"
            else:
                name = next(
                    (b for b, marks in PROFILE_BUCKETS if any(m in stack for m in marks)),
                    "other (event loop, agents, timers)",
                )
            counts[name] = counts.get(name, 0) + c
    return [(k, round(100 * v / max(1, total), 1)) for k, v in
            sorted(counts.items(), key=lambda x: -x[1])]  # fmt: skip


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------
def streams_source(src: Path | None = None) -> dict[str, Any]:
    """Which product code runs (PYTHONPATH may point at another worktree): its commit, the
    files under src/ that differ from it, and the diff when it is not this checkout."""
    if src is None:
        import streams

        src = Path(streams.__file__).resolve().parents[1]
    src = src.resolve()
    root = src.parent

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                  text=True, timeout=10).stdout  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = [ln[3:] for ln in git("status", "--porcelain", "--", "src").splitlines()]
    return {
        "src": str(src),
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "src_changes": dirty,
        "diff_src": git("diff", "--", "src")[:20000] if root != REPO else "",
    }


def table(res: dict[str, Any]) -> str:
    mc, cfg, fl, pv = res["machine"], res["config"], res["fill"], res["product"]
    rows: list[tuple[str, str]] = [
        (
            "SKUs / channels / recent ids per entry / partitions",
            f"{cfg['skus']:,} / {cfg['channels']} / {cfg['recent_ids']} / {cfg['partitions']}",
        ),
        (
            "state record (bytes, mean) / total (MiB)",
            f"{fl['state_bytes_mean']:.0f} / {fl['state_bytes_total'] / 2**20:,.0f}",
        ),
        (
            "changelog records: skus / products",
            f"{fl['skus_records']:,} / {fl['products_records']:,}",
        ),
        (
            "fill: produced in (s)",
            f"{fl['produce_s']} ({fl['records_per_s']:,}/s)"
            if fl.get("records_per_s")
            else "reused the topics of an earlier run",
        ),
    ]
    if rc := res.get("restore_ceiling"):
        rows.append(
            (
                "restore ceiling: raw aiokafka -> rocksdict WriteBatch",
                f"{rc['records']:,} records in {rc['seconds']} s ({rc['records_per_s']:,}/s)",
            )
        )  # fmt: skip
    for ph in res["phases"]:
        n = ph["phase"]
        fm = ph["faust_log_s"]
        rows += [
            (f"[{n}] READY: probe delta on Kafka (s from start)", f"{ph['ready_s']}"),
            (f"[{n}]   the same minus the {cfg['debounce_window_s']} s debounce window",
             f"{ph['ready_minus_debounce_window_s']}"),
            (f"[{n}]   web up / recovery complete (log) / not rebalancing (s)",
             f"{ph['web_up_s']} / {fm.get('recovery_complete')} / "
             f"{ph['recovered_and_not_rebalancing_s']}"),
            (f"[{n}]   probe applied (metric) / longest /health stall (s)",
             f"{ph['probe_applied_s']} / {ph['longest_health_stall_s']}"),
            (f"[{n}] PEAK RSS (VmHWM) / at end (MiB)",
             f"{ph['peak_rss_mib']} / {ph['rss_at_end_mib']} (anon {ph['rss_anon_at_end_mib']})"),
            (f"[{n}] worker CPU (cores) / machine busy / load before",
             f"{ph.get('worker_cpu_cores', 0):.2f} / {ph['machine_cpu_busy']:.2f} / "
             f"{ph['loadavg_before'][0]}"),
            (f"[{n}] data dir before / after (MiB)",
             f"{ph['data_dir_mib_before']} / {ph['data_dir_mib_after']}"),
            (f"[{n}] timers overlapping (max runtime s)",
             ", ".join(f"{k} {v}" for k, v in fm["timers_overlapping_max_runtime_s"].items())
             or "none"),
        ]  # fmt: skip
        if "profile" in ph:
            rows.append((f"[{n}] profile (py-spy, % of samples)", ""))
            rows += [(f"    {k}", f"{v}") for k, v in ph["profile"].get("buckets_pct", [])]
    w = max(len(k) for k, _ in rows)
    head = [
        f"state at scale benchmark  {res['date']}",
        f"machine: {mc['nproc']} CPU ({mc['cpu']}), {mc['ram_gib']} GiB RAM, Python "
        f"{mc['python']}, faust {mc['faust']}, aiokafka {mc['aiokafka']}, "
        f"Kafka jars {mc['kafka_jars'] or '?'}",
        f"broker: {res['broker']}   product: {pv['src']} @ {pv['commit']}"
        f"{' + ' + ','.join(pv['src_changes']) if pv['src_changes'] else ''}",
        f"rerun:   {res['command']}",
        "targets: ready <= 15 s from local state, <= 120 s from the changelog, RSS <= 512 MiB",
        "",
    ]
    return "\n".join(head + [f"{k.ljust(w)}  {v}" for k, v in rows])


async def amain(a: argparse.Namespace, bootstrap: str, broker_pid: int | None) -> dict[str, Any]:
    stamp = dt.datetime.now(dt.UTC)
    work = RUN_ROOT / f"state-{stamp.strftime('%Y%m%d-%H%M%S')}"
    work.mkdir(parents=True, exist_ok=True)
    s = inv.bench_settings(bootstrap, work, a)
    off: dict[
        str, Any
    ] = {  # no commercetools and no SP-API here: the flows that only talk to them stay off
        f: False
        for f in ("channel_policy_enabled", "sales_orders_enabled", "inventory_sender_enabled")
        if f in Settings.model_fields
    }
    tag = a.reuse_tag or s.app_id.removeprefix("bench-")
    names = {
        f: f"{Settings.model_fields[f].default}.bench-{tag}"
        for f in Settings.model_fields
        if f.startswith("topic_")
    }
    s = s.model_copy(update={"app_id": f"bench-state-{tag}", **names, **off})
    variants = [parse_variant(v) for v in a.variant] or [("default", None, {})]
    gen = StateGen(a.skus, a.channels, a.recent_ids)
    res: dict[str, Any] = {
        "date": stamp.isoformat(timespec="seconds"),
        "command": "python -m bench.state_scale " + " ".join(shlex.quote(x) for x in sys.argv[1:]),
        "machine": machine(),
        "product": streams_source(),
        "broker": bootstrap,
        "env": {k: v for k, v in os.environ.items() if k.startswith("STREAMS_")},
        "config": {
            "skus": a.skus,
            "channels": a.channels,
            "recent_ids": a.recent_ids,
            "products": not a.no_products,
            "partitions": s.partitions,
            "debounce_window_s": s.debounce_window_s,
            "debounce_tick_s": s.debounce_tick_s,
            "app_id": s.app_id,
            "restarts": a.restarts,
            "reused_topics_of": a.reuse_tag,
            "seed_local": a.seed_local,
            "variants": [{"name": n, "pythonpath": pp, "settings": up} for n, pp, up in variants],
            "settle_s": a.settle,
        },
        "workdir": str(work),
        "phases": [],
    }
    print(f"[bench] app id {s.app_id}, work dir {work}", flush=True)
    changelogs = {f"{s.app_id}-skus-changelog": "skus"}
    if not a.no_products:
        changelogs[f"{s.app_id}-products-changelog"] = "products"
    if a.reuse_tag:  # the topics of an earlier run kept with --keep-topics
        res["fill"] = reused_fill(s, gen, not a.no_products)
    else:
        await create_topics(s)
        res["fill"] = await fill(s, gen, not a.no_products)
        # ct.messages has history in production; here a first record for SKU 0: the record at
        # offset 0 of a fresh consumer group was never handled in our runs (lag stayed 1)
        await probe_event(s, gen, 0, 1)
        print(f"[bench] filled {a.skus:,} SKUs in {res['fill']['produce_s']}s", flush=True)
    tables = Path(s.data_dir) / "v1" / "tables"
    if a.seed_local:  # the worker's local state written directly (no cold start first)
        rc = res["restore_ceiling"] = await restore_ceiling(s, changelogs, tables, keep=True)
    elif not a.skip_ceiling:
        rc = res["restore_ceiling"] = await restore_ceiling(s, changelogs, work / "ceiling")
    if "restore_ceiling" in res:
        print(f"[bench] restore ceiling {rc['records_per_s']:,}/s ({rc['seconds']}s)", flush=True)
    # probe SKUs: new ones in every run (a reused topic set has the earlier runs' probes)
    base = random.Random().randrange(10, max(11, a.skus - 1000))
    plan: list[tuple[str, str | None, dict[str, Any], float | None]] = []
    restarts = [
        (f"restart{k + 1}-{n}" if a.variant else f"restart{k + 1}", pp, up, None)
        for k in range(a.restarts)
        for n, pp, up in variants
    ]
    cold = [
        ("cold" if not a.variant else f"cold-{n}", pp, up, a.cold_timeout)
        for n, pp, up in variants[:1]
    ]
    if a.seed_local:
        plan = restarts + ([] if a.skip_cold else cold)
    else:
        plan = ([] if a.skip_cold else cold) + restarts
    try:
        for step, (name, pp, up, limit) in enumerate(plan, start=1):
            if name.startswith("cold"):
                shutil.rmtree(Path(s.data_dir), ignore_errors=True)
            sv = s.model_copy(update=up) if up else s
            ph = await run_phase(
                name, sv, gen, base + step, 1, work, a, broker_pid, pythonpath=pp, timeout=limit
            )
            res["phases"].append(ph)
            print(
                f"[bench] {name}: ready {ph['ready_s']}s, peak RSS {ph['peak_rss_mib']} MiB",
                flush=True,
            )
    finally:
        if not a.keep_state:
            shutil.rmtree(Path(s.data_dir), ignore_errors=True)
        if not a.keep_topics:
            await delete_topics(s)
    return res


def parse_variant(text: str) -> tuple[str, str | None, dict[str, Any]]:
    """``NAME=PYTHONPATH[:setting=value...]``: the product code a worker runs and its settings."""
    name, _, rest = text.partition("=")
    path, *pairs = rest.split(":")
    updates: dict[str, Any] = {}
    for pair in pairs:
        k, _, v = pair.partition("=")
        if k not in Settings.model_fields:
            raise SystemExit(f"--variant {name}: no setting {k!r} in this Settings")
        updates[k] = type(Settings.model_fields[k].default)(v)
    return name, path or None, updates


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.state_scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--skus", type=int, default=1_000_000, help="SKU states (K)")
    ap.add_argument("--channels", type=int, default=3, help="supply channels per SKU")
    ap.add_argument(
        "--recent-ids",
        type=int,
        default=8,
        help="message ids kept per entry (the product keeps 8 once an entry had 8 updates)",
    )
    ap.add_argument("--no-products", action="store_true", help="no products global table")
    ap.add_argument(
        "--partitions",
        type=int,
        default=Settings.model_fields["partitions"].default,
        help="STREAMS_PARTITIONS",
    )
    ap.add_argument(
        "--debounce-window",
        type=float,
        default=Settings.model_fields["debounce_window_s"].default,
        help="STREAMS_DEBOUNCE_WINDOW_S for the worker (part of the probe's way out)",
    )
    ap.add_argument("--restarts", type=int, default=1, help="restarts from local state")
    ap.add_argument(
        "--seed-local",
        action="store_true",
        help="write the worker's local state directly (raw restore) and run the restarts "
        "first, the cold start last",
    )
    ap.add_argument("--skip-cold", action="store_true", help="no cold start from the changelog")
    ap.add_argument(
        "--cold-timeout",
        type=float,
        default=None,
        help="end the cold start after this many s and report its recovery rate instead",
    )
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME=PYTHONPATH[:setting=value...]: run every restart once per variant (the "
        "first variant also runs the cold start); e.g. base=/tmp/wt/src",
    )
    ap.add_argument(
        "--reuse-tag",
        help="use the topics of an earlier run kept with --keep-topics (its app id's tag)",
    )
    ap.add_argument("--settle", type=float, default=20.0, help="s measured after ready")
    ap.add_argument(
        "--bootstrap",
        default=os.environ.get("STREAMS_KAFKA_BOOTSTRAP"),
        help="Kafka to use (default: start a local one on free ports)",
    )
    ap.add_argument("--profile", action="store_true", help="py-spy the worker in every phase")
    ap.add_argument(
        "--skip-ceiling", action="store_true", help="skip the raw aiokafka -> rocksdict restore"
    )
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per phase at most")
    ap.add_argument("--keep-state", action="store_true", help="keep the RocksDB dir")
    ap.add_argument("--keep-topics", action="store_true", help="keep the run's topics")
    ap.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    a = ap.parse_args(argv)

    with inv.broker(a.bootstrap) as (bootstrap, broker_pid):
        res = asyncio.run(amain(a, bootstrap, broker_pid))
    print()
    print(table(res))
    if not a.no_save:
        print(f"\nresults: {inv.save_result('state-scale', res)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
