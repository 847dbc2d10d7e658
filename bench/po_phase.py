"""One purchase-order phase: worker and sandbox started, orders fed, counted until done."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from tests.support.worker import WorkerProcess

import bench.harness as h
from bench.harness import (
    Meter,
    metric_sum,
    scrape,
)
from bench.po_report import pct
from bench.po_workload import Watcher, mapping_record, stock_record, submitted_at
from streams.config import Settings
from streams.sandbox.amazon import (
    CatalogueItem,
    SandboxControl,
)


# --------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------
@dataclass
class Ctx:
    s: Settings
    a: argparse.Namespace
    worker: WorkerProcess
    pid: int
    broker_pid: int | None
    producer: AIOKafkaProducer
    watcher: Watcher
    control: SandboxControl
    work: Path


def phase_pids(ctx: Ctx) -> dict[str, int]:
    pids = {"worker": ctx.pid, "bench_and_sandbox": os.getpid()}
    if ctx.broker_pid:
        pids["broker"] = ctx.broker_pid
    return pids


def worker_counters(ctx: Ctx) -> dict[str, float]:
    m = scrape(ctx.s.web_port)
    return {
        "submitted": metric_sum(m, "streams_acknowledgements_total", outcome="submitted"),
        "built": metric_sum(m, "streams_acknowledgements_total", outcome="built"),
        "ack_latency_sum": metric_sum(m, "streams_po_ack_latency_seconds_sum"),
        "ack_latency_count": metric_sum(m, "streams_po_ack_latency_seconds_count"),
        "po_dlq": metric_sum(
            m, "streams_records_total", topic=ctx.s.topic_purchase_orders, outcome="dlq"
        ),
        "decisions": metric_sum(m, "streams_po_line_decisions_total"),
        "polled": metric_sum(m, "streams_po_polled_total"),
    }


async def wait_done(ctx: Ctx, pos: list[str], before: dict[str, float], timeout: float) -> bool:
    """Until every PO's acknowledgement is on Kafka and the worker counted its submission."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ctx.worker.proc is not None and ctx.worker.proc.poll() is not None:
            raise RuntimeError(f"worker exited: {ctx.worker.tail()}")
        acked = all(p in ctx.watcher.seen.ack_ts for p in pos)
        if acked:
            with contextlib.suppress(OSError):
                now = worker_counters(ctx)
                if now["submitted"] - before["submitted"] >= len(pos):
                    return True
        await asyncio.sleep(0.2)
    return False


async def run_phase(
    ctx: Ctx, name: str, orders: list[dict[str, Any]], interval: float, via_poller: bool = False
) -> dict[str, Any]:
    s = ctx.s
    pos = [o["purchaseOrderNumber"] for o in orders]
    before = worker_counters(ctx)
    meter = Meter(**phase_pids(ctx))
    sent: dict[str, float] = {}
    late = 0
    t0 = time.time()
    futs = []
    for i, order in enumerate(orders):
        due = t0 + i * interval
        if (wait := due - time.time()) > 0:
            await asyncio.sleep(wait)
        elif interval > 0 and -wait > 0.1:
            late += 1
        po = order["purchaseOrderNumber"]
        if via_poller:
            await ctx.control.add_orders([order])
            sent[po] = time.time()  # in the sandbox from now on
            continue
        raw = orjson.dumps(order)
        now = time.time()
        sent[po] = now
        fut = await ctx.producer.send(
            s.topic_purchase_orders, key=po.encode(), value=raw, timestamp_ms=int(now * 1000)
        )
        if interval > 0:
            await fut  # one at a time
        else:
            futs.append(fut)
    for f in futs:
        await f
    t_sent = time.time()
    ok = await wait_done(ctx, pos, before, ctx.a.timeout)
    t_done = time.time()
    usage = meter.read()
    # CPU of everything else on the machine (other jobs share it): busy cores minus ours
    ours = sum(v for k, v in usage.items() if k.endswith("_cpu_cores"))
    usage["other_processes_cpu_cores"] = round(
        max(0.0, usage["machine_cpu_busy"] * (os.cpu_count() or 1) - ours), 2
    )
    after = worker_counters(ctx)
    received = await ctx.control.received("submitAcknowledgement")
    sub, _ = submitted_at(received)
    phase_received = [
        e
        for e in received
        if any(
            a.get("purchaseOrderNumber") in sent
            for a in ((e.get("body") or {}).get("acknowledgements") or [])
        )
    ]
    _, statuses = submitted_at(phase_received)
    # several acknowledgements may share one submitAcknowledgement request
    per_request = [
        len((e.get("body") or {}).get("acknowledgements") or [])
        for e in phase_received
        if e["status"] == 202
    ]
    sn = ctx.watcher.seen
    acked = [p for p in pos if p in sn.ack_ts]
    subm = [p for p in pos if p in sub]
    to_ack = [sn.ack_ts[p] - sent[p] for p in acked]
    to_sub = [sub[p] - sent[p] for p in subm]
    ack_to_sub = [sub[p] - sn.ack_ts[p] for p in subm if p in sn.ack_ts]
    codes: Counter[str] = Counter()
    for p in acked:
        codes.update(sn.ack_codes[p])
    res: dict[str, Any] = {
        "pos": len(pos),
        "lines_per_po": len(orders[0]["orderDetails"]["items"]) if orders else 0,
        "mean_po_bytes": round(statistics.mean(len(orjson.dumps(o)) for o in orders), 0),
        "interval_s": interval,
        "via_poller": via_poller,
        "send_s": round(t_sent - t0, 3),
        "sender_behind_100ms": late,
        "complete": ok,
        "acked": len(acked),
        "submitted": len(subm),
        "latency_to_ack_s": pct(to_ack),
        "latency_to_ack_received_by_bench_s": pct([sn.ack_recv[p] - sent[p] for p in acked]),
        "latency_to_submitted_s": pct(to_sub),
        "ack_to_submitted_s": pct(ack_to_sub),
        "first_send_to_last_ack_s": round(max(sn.ack_ts[p] for p in acked) - t0, 3)
        if acked
        else None,
        "first_send_to_last_submitted_s": round(max(sub[p] for p in subm) - t0, 3)
        if subm
        else None,
        "ack_entries_by_code": dict(codes),
        "items_acknowledged": sum(sn.ack_items[p] for p in acked),
        "acks_published_more_than_once": sum(1 for p in acked if sn.ack_count[p] > 1),
        "submit_statuses": dict(statuses),
        "submit_requests_accepted": len(per_request),
        "acks_per_request": {
            "mean": round(statistics.mean(per_request), 2) if per_request else None,
            "max": max(per_request, default=None),
        },
        "worker_counters_delta": {k: round(after[k] - before[k], 3) for k in after},
        "wait_s": round(t_done - t_sent, 2),
        **usage,
    }
    n_ack = after["ack_latency_count"] - before["ack_latency_count"]
    if n_ack:
        res["worker_histogram_mean_s"] = round(
            (after["ack_latency_sum"] - before["ack_latency_sum"]) / n_ack, 3
        )
    if acked:
        span = max(sn.ack_ts[p] for p in acked) - t0
        res["pos_per_s_to_ack"] = round(len(acked) / span, 2) if span > 0 else None
    if res.get("pos_per_s_to_ack"):
        res["lines_per_s_to_ack"] = round(res["pos_per_s_to_ack"] * res["lines_per_po"], 1)
    if subm:
        span = max(sub[p] for p in subm) - t0
        res["pos_per_s_to_submitted"] = round(len(subm) / span, 2) if span > 0 else None
    # per PO: sent (produced / added), ack's Kafka timestamp, accepted by the sandbox
    res["per_po"] = [
        [
            p,
            round(sent[p], 3),
            round(sn.ack_ts.get(p, 0), 3) or None,
            round(sub.get(p, 0), 3) or None,
        ]
        for p in pos
    ]
    if via_poller:
        res["added_to_po_record_s"] = pct([sn.po_ts[p] - sent[p] for p in pos if p in sn.po_ts])
    print(
        f"[bench] {name}: {len(acked)}/{len(pos)} acked, {len(subm)} submitted; to ack p50 "
        f"{res['latency_to_ack_s']['p50']} p99 {res['latency_to_ack_s']['p99']} max "
        f"{res['latency_to_ack_s']['max']}; to submitted p50 "
        f"{res['latency_to_submitted_s']['p50']} p99 {res['latency_to_submitted_s']['p99']}",
        flush=True,
    )
    return res


def bench_settings(bootstrap: str, work: Path, a: argparse.Namespace) -> Settings:
    return h.sandbox_settings(
        bootstrap,
        work,
        a.partitions,
        "po",
        po_poller_enabled=a.poller_pos > 0,
        po_poll_interval_s=a.poll_interval,
    )


async def create_internal_topics(s: Settings) -> None:
    """The worker's repartition topics, created before it starts. Faust declares them itself
    at start, but its first partition assignment can come first: the worker then ignores
    them (``Ignoring missing topic``) until a rebalance, and a run waits minutes for it."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = [f"{s.app_id}-{name}" for name in ("sku-events", "po-events", "asn-events")]
        todo = [NewTopic(n, s.partitions, 1) for n in names if n not in existing]
        if todo:
            await admin.create_topics(todo)
    finally:
        await admin.close()


async def seed_and_wait(ctx: Ctx, catalogue: list[CatalogueItem]) -> dict[str, Any]:
    s, k = ctx.s, len(catalogue)
    maps = [(it.sku.encode(), mapping_record(it)) for it in catalogue]
    stock = [(b"ct", stock_record(i, it, ctx.a.stock)) for i, it in enumerate(catalogue)]
    t = time.time()
    await h.produce_all(s.kafka_bootstrap, s.topic_sku_mappings, maps)
    await h.produce_all(s.kafka_bootstrap, s.topic_ct_messages, stock)
    deadline = time.monotonic() + ctx.a.timeout
    while time.monotonic() < deadline:
        m = scrape(s.web_port)
        mapped = metric_sum(m, "streams_records_total", topic=s.topic_sku_mappings)
        stocked = metric_sum(m, "streams_records_total", topic=s.topic_ct_messages)
        pending = metric_sum(m, "streams_queue_length", queue="deltas")
        if mapped >= k and stocked >= k and pending == 0:
            break
        await asyncio.sleep(0.3)
    else:
        raise TimeoutError(f"seed not applied: {ctx.worker.tail()}")
    await asyncio.sleep(s.debounce_window_s + 1.0)  # the availability deltas of the seed go out
    return {"skus": k, "stock_per_sku": ctx.a.stock, "seed_applied_s": round(time.time() - t, 2)}
