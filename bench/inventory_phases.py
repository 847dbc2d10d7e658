"""The inventory benchmark's phases after the ceiling: the naive Faust agent, the product
(drain and check), the delta latency under a steady rate."""

from __future__ import annotations

import asyncio
import bisect
import os
import random
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

from bench.harness.dataset import Dataset
from bench.harness.env import REPO, Meter, get_json, iso_now, stop_group, tail
from bench.harness.kafka import deltas_of, read_topic, topic_records
from bench.harness.metrics import metric_sum, records_by_outcome, scrape
from bench.harness.profile import start_profiler, stop_profiler
from bench.mapping_load import ingest_started
from streams.config import Settings


# --------------------------------------------------------------------------------------
# phases
# --------------------------------------------------------------------------------------
def run_naive(s: Settings, n: int, work: Path, timeout: float) -> dict[str, Any]:
    port = free_port()
    log = work / "naive.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMS_")}
    env.update(
        BENCH_BOOTSTRAP=s.kafka_bootstrap,
        BENCH_TOPIC=s.topic_ct_messages,
        BENCH_APP_ID=f"{s.app_id}-naive",
        BENCH_DATADIR=str(work / "naive-data"),
        BENCH_PORT=str(port),
    )
    t_start = time.time()
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.naive_agent"],
            cwd=REPO,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/progress"
    try:
        t_ready = None
        meter = None
        deadline = time.monotonic() + timeout
        prog: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"naive agent exited {proc.returncode}: {tail(log)}")
            try:
                prog = get_json(url)
            except OSError:
                time.sleep(0.2)
                continue
            if t_ready is None:
                t_ready = time.time()
                meter = Meter(naive=proc.pid)
            if prog["count"] >= n:
                break
            time.sleep(0.25)
        t_seen = time.time()
        usage = meter.read() if meter else {}
        if prog.get("count", 0) < n:
            raise TimeoutError(f"naive agent handled {prog.get('count')} of {n}: {tail(log)}")
        assert t_ready is not None
        first, last = prog["first"], prog["last"]
        return {
            "events": prog["count"],
            "table_writes": prog["written"],
            "start_to_ready_s": round(t_ready - t_start, 2),
            "first_to_last_s": round(last - first, 3),
            "ready_to_done_s": round(t_seen - t_ready, 3),
            "events_per_s": round(n / (last - first), 1),
            "events_per_s_from_ready": round(n / (t_seen - t_ready), 1),
            **usage,
        }
    finally:
        stop_group(proc)


@dataclass
class Product:
    worker: WorkerProcess
    pid: int
    port: int


async def run_product(
    s: Settings,
    n: int,
    ds: Dataset,
    work: Path,
    timeout: float,
    profile: bool,
    broker_pid: int | None,
) -> tuple[Product, dict[str, Any]]:
    w = WorkerProcess(s, work / "worker.log")
    t_start = time.time()
    w.start()
    assert w.proc is not None
    pid = w.proc.pid
    prod = Product(w, pid, s.web_port)
    w.wait_ready(timeout=120)
    t_ready = time.time()
    pids = {"worker": pid}
    if broker_pid:
        pids["broker"] = broker_pid
    meter = Meter(**pids)
    spy = None
    if profile:
        spy = start_profiler(pid, work / "worker-profile.txt")
    topic = s.topic_ct_messages
    t_first: float | None = None
    t_maps: float | None = None  # all K mappings handled
    gc_at_ready: float | None = None  # the worker's GC pause total when (c) starts
    m: dict[Any, float] = {}
    done = 0.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if w.proc.poll() is not None:
            raise RuntimeError(f"worker exited {w.proc.returncode}: {w.tail()}")
        try:
            m = scrape(s.web_port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        if gc_at_ready is None:
            gc_at_ready = metric_sum(m, "streams_gc_pause_seconds_total")
        done = metric_sum(m, "streams_records_total", topic=topic)
        if done > 0 and t_first is None:
            t_first = time.time()
        if t_maps is None and metric_sum(
            m, "streams_records_total", topic=s.topic_sku_mappings
        ) >= len(ds.skus):
            t_maps = time.time()
        if done >= n:
            break
        await asyncio.sleep(0.2)
    t_done = time.time()
    usage = meter.read()
    profile_summary = stop_profiler(spy, work / "worker-profile.txt") if spy else None
    if done < n:
        raise TimeoutError(f"worker handled {done:.0f} of {n} within {timeout:.0f}s: {w.tail()}")
    assert t_first is not None
    res: dict[str, Any] = {
        "events": int(done),
        "outcomes": records_by_outcome(m, topic),
        "mappings_applied": int(
            metric_sum(m, "streams_records_total", topic=s.topic_sku_mappings, outcome="applied")
        ),
        "start_to_ready_s": round(t_ready - t_start, 2),
        "ready_to_first_s": round(t_first - t_ready, 2),
        "ready_to_mappings_done_s": round(t_maps - t_ready, 2) if t_maps else None,
        "ready_to_done_s": round(t_done - t_ready, 3),
        "events_per_s": round(n / (t_done - t_ready), 1),
        "events_per_s_from_first": round(n / max(1e-9, t_done - t_first), 1),
        "under_profiler": profile,
        # the cyclic garbage collector's pauses in the worker during (c)
        "gc_pause_s": round(
            metric_sum(m, "streams_gc_pause_seconds_total") - (gc_at_ready or 0), 3
        ),
        **usage,
    }
    # drain: every SKU's availability published, then check it against the model
    t_drain0 = time.time()
    drain_deadline = time.monotonic() + max(
        120.0, 3 * len(ds.skus) / s.delta_budget_per_s + s.debounce_max_wait_s
    )
    while time.monotonic() < drain_deadline:
        m = scrape(s.web_port)
        pending = metric_sum(m, "streams_queue_length", queue="deltas")
        mapped = metric_sum(
            m, "streams_records_total", topic=s.topic_sku_mappings, outcome="applied"
        )
        if pending == 0 and mapped >= len(ds.skus) and time.time() - t_drain0 > 1.0:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)  # the last sends of the final tick
    records = await read_topic(s.kafka_bootstrap, s.topic_inventory_updates)
    deltas = deltas_of(records)
    last: dict[str, int] = {}
    per_sku: Counter[str] = Counter()
    repeats = 0
    for sku, amount, _ in deltas:
        if last.get(sku) == amount:
            repeats += 1
        last[sku] = amount
        per_sku[sku] += 1
    wrong = missing = 0
    examples: list[str] = []
    for i, sku in enumerate(ds.skus):
        want = ds.total(i)
        got = last.get(sku)
        if got is None:
            missing += 1
        elif got != want:
            wrong += 1
            if len(examples) < 5:
                examples.append(f"{sku}: published {got}, expected {want}")
    ts = [t for _, _, t in deltas]
    res["backlog_deltas"] = {
        "deltas": len(deltas),
        "skus_with_delta": len(last),
        "skus_expected": len(ds.skus),
        "missing_skus": missing,
        "wrong_final_amount": wrong,
        "repeated_same_amount": repeats,
        "max_deltas_per_sku": max(per_sku.values()) if per_sku else 0,
        "examples": examples,
        "ready_to_last_delta_s": round(max(ts) / 1000 - t_ready, 2) if ts else None,
        "first_to_last_delta_s": round((max(ts) - min(ts)) / 1000, 2) if ts else None,
    }
    counts = await topic_records(s, s.app_id)
    # the mapping load on its own clock: from the ingest stage's start (after Faust's
    # recovery, seconds after /health) to all K applied (bench.mapping_load measures it alone)
    t_ingest = ingest_started(work / "worker.log")
    res["mapping_load_s"] = round(t_maps - t_ingest, 2) if t_maps and t_ingest else None
    products = counts.get(f"{s.app_id}-products-changelog", 0)
    res["products_records_per_mapping"] = round(products / max(1, len(ds.skus)), 3)
    inputs = {s.topic_ct_messages, s.topic_sku_mappings}
    written = {k: v for k, v in counts.items() if v and k not in inputs and "-naive" not in k}
    res["records_written"] = {
        "by_topic": written,
        "total": sum(written.values()),
        "per_ct_event": round(sum(written.values()) / n, 2),
        "note": "Kafka records the product wrote (internal, changelog, output) for N ct "
        "events and K mappings; the naive agent writes one changelog record per event",
    }
    if profile_summary is not None:
        res["profile"] = profile_summary
    return prod, res


async def run_latency(
    s: Settings, ds: Dataset, rate: float, duration: float, settle: float
) -> dict[str, Any]:
    """Produce at ``rate`` for ``duration`` s; match each delta to the changes it covers."""
    bs = s.kafka_bootstrap
    n = int(rate * duration)
    rng = random.Random(4242)
    k, c = len(ds.skus), len(ds.channels)
    # every change raises one channel's stock, so a SKU's total rises strictly with each
    # change and a published amount names exactly the changes it covers
    base = {i: ds.total(i) for i in range(k)}
    plan: list[tuple[int, bytes]] = []
    totals: dict[int, list[int]] = defaultdict(list)  # sku -> total after each change
    for _ in range(n):
        si, ci = rng.randrange(k), rng.randrange(c)
        e = ds.entry(si, ci)
        plan.append(
            (si, ds.quantity_set(si, ci, max(0, e.available) + rng.randint(1, 5), iso_now()))
        )
        totals[si].append(ds.total(si))
    produced: dict[int, list[float]] = defaultdict(list)  # sku -> produce times

    out = AIOKafkaConsumer(bootstrap_servers=bs, enable_auto_commit=False)
    await out.start()
    await out._client.force_metadata_update()
    tps = [
        TopicPartition(s.topic_inventory_updates, p)
        for p in sorted(out.partitions_for_topic(s.topic_inventory_updates) or ())
    ]
    out.assign(tps)
    await out.seek_to_end(*tps)
    for tp in tps:
        await out.position(tp)
    got: list[tuple[str, int, float, float]] = []  # sku, amount, kafka ts, received
    stop = asyncio.Event()

    async def consume() -> None:
        while not stop.is_set():
            batch = await out.getmany(*tps, timeout_ms=200)
            now = time.time()
            for msgs in batch.values():
                for r in msgs:
                    v = orjson.loads(r.value)
                    if v.get("kind") == "delta":
                        got.append(
                            (v["sku"], v["availableQuantity"]["amount"], r.timestamp / 1000, now)
                        )

    consumer = asyncio.create_task(consume())
    p = AIOKafkaProducer(bootstrap_servers=bs, linger_ms=5, acks=1)
    await p.start()
    late = 0
    try:
        t0 = time.time()
        i = 0
        while i < n:
            due = min(n, int((time.time() - t0) * rate) + 1)
            if due - i > rate * 0.1:
                late += 1  # the producer fell >100 ms behind its schedule
            while i < due:
                si, raw = plan[i]
                now = time.time()
                produced[si].append(now)
                await p.send(
                    s.topic_ct_messages, key=b"ct", value=raw, timestamp_ms=int(now * 1000)
                )
                i += 1
            await asyncio.sleep(0.005)
        await p.flush()
        t_end = time.time()
        # until every touched SKU's final total is out, or the settle time is over
        want = {ds.skus[si]: ts[-1] for si, ts in totals.items()}
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            last = {}
            for sku, amount, _, _ in got:
                last[sku] = amount
            if all(last.get(sku) == a for sku, a in want.items()):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)
        t_settled = time.time()
    finally:
        stop.set()
        await consumer
        await p.stop()
        await out.stop()

    index = {sku: i for i, sku in enumerate(ds.skus)}
    window, max_wait = s.debounce_window_s, s.debounce_max_wait_s
    lat, lat_recv, overhead = [], [], []
    covered: dict[int, int] = {}  # sku -> number of changes covered so far
    unexplained = regress = 0
    for sku, amount, ts, recv in sorted(got, key=lambda x: x[2]):
        si = index[sku]
        seq = totals.get(si, [])
        if amount == base[si] and covered.get(si, 0) == 0:
            regress += 1  # a delta re-telling the pre-phase amount
            continue
        kk = bisect.bisect_left(seq, amount)
        if kk >= len(seq) or seq[kk] != amount:
            unexplained += 1
            continue
        done = covered.get(si, 0)
        if kk + 1 <= done:
            regress += 1  # repeats or goes back to an amount already covered
            continue
        first_p = produced[si][done]
        last_p = produced[si][kk]
        covered[si] = kk + 1
        lat.append(ts - first_p)
        lat_recv.append(recv - first_p)
        overhead.append(ts - min(last_p + window, first_p + max_wait))
    lost = sum(1 for si, seq in totals.items() if covered.get(si, 0) < len(seq))

    def pct(xs: list[float]) -> dict[str, float | None]:
        if not xs:
            return {"p50": None, "p99": None, "max": None}
        xs = sorted(xs)
        return {
            "p50": round(statistics.median(xs), 3),
            "p99": round(xs[min(len(xs) - 1, int(0.99 * len(xs)))], 3),
            "max": round(xs[-1], 3),
        }

    return {
        "rate_target": rate,
        "duration_s": duration,
        "produced": n,
        "produce_s": round(t_end - t0, 2),
        "producer_behind_100ms": late,
        "end_to_settled_s": round(t_settled - t_end, 2),
        "settle_limit_s": settle,
        "skus_touched": len(totals),
        "deltas": len(got),
        "debounce_window_s": window,
        "debounce_max_wait_s": max_wait,
        "debounce_tick_s": s.debounce_tick_s,
        "latency_s": pct(lat),
        "latency_minus_window_s": pct([x - window for x in lat]),
        "latency_receive_s": pct(lat_recv),
        "beyond_debounce_rule_s": pct(overhead),
        "skus_final_not_published": lost,
        "deltas_unexplained_amount": unexplained,
        "deltas_repeated_or_regressed": regress,
    }
