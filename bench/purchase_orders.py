"""Purchase-order benchmark: PO -> acknowledgement published -> submitted to Amazon.

    python -m bench.purchase_orders [--pos N] [--lines L] [--skus K] [--bootstrap HOST:PORT]
                                    [--burst-pos M] [--burst-lines 10] [--poller-pos P]

One run, one broker, one fresh topic set, one ``streams worker`` process, and the SP-API
sandbox served over HTTP from this process (``running_sandbox``):

1. seed K SKU mappings (``master.sku-mappings``, with the generator's ASINs, case sizes and
   net costs) and K inventory entries with ample stock (``ct.messages``), and wait until the
   worker has applied them all;
2. (1) latency: N purchase orders of L lines (seeded ``OrderGenerator`` headers and lines over
   the catalogue, state ``New``) are produced straight to ``amazon.purchase-orders``, one every
   ``--interval`` s. Per PO: produce time -> Kafka timestamp of its record on
   ``amazon.po-acknowledgements`` and -> the sandbox's receipt of its accepted (202)
   ``submitAcknowledgement``;
3. (2) throughput: a burst of M POs of ``--burst-lines`` lines, produced as fast as aiokafka
   goes; POs/s from the first produce to the last acknowledgement (and to the last submission);
4. (3) through the poller (``--poller-pos`` > 0): P POs of L lines added to the sandbox
   (``SandboxControl.add_orders``) one every ``--interval`` s, pulled by the worker's poller
   (``STREAMS_PO_POLL_INTERVAL_S``, default here 0.5 s); added -> acknowledgement -> submission.

Figures are printed and written to ``bench/results/purchase-orders-<date>.json``. Without
``--bootstrap`` (or ``STREAMS_KAFKA_BOOTSTRAP``) a local Apache Kafka is started from the
jars on free ports and stopped by pid at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import shlex
import shutil
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

import bench.inventory as inv
from bench.inventory import (
    REPO,
    RESULTS,
    RUN_ROOT,
    Meter,
    machine,
    metric_sum,
    pid_listening,
    product_version,
    scrape,
    topic_records,
)
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings
from streams.sandbox.amazon import (
    CatalogueItem,
    OrderGenerator,
    SandboxConfig,
    SandboxControl,
    running_sandbox,
)
from streams.sandbox.amazon.generator import default_catalogue, unit_cost

CHANNEL = "wh-1"


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------
class Orders:
    """Seeded purchase orders of exactly ``lines`` lines over the catalogue, state New.

    Headers (parties, dates, ship window) and lines (quantities in Cases of the catalogue's
    case size or in Eaches, net cost and list price) come from the sandbox's
    ``OrderGenerator``; the bench only fixes the line count (distinct SKUs per PO) and the
    state, so every PO asks for an acknowledgement of every line.
    """

    def __init__(self, catalogue: list[CatalogueItem], seed: int) -> None:
        self.catalogue = catalogue
        self.seed = seed
        self.gen = OrderGenerator(
            seed=seed, catalogue=catalogue, spread=timedelta(minutes=5), cancel_rate=0.0
        )

    def make(self, count: int, lines: int) -> list[dict[str, Any]]:
        # a fresh ``now`` per batch: the poller's window (created before now) must see them
        self.gen.now = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
        out = []
        for _ in range(count):
            order = self.gen.order()
            # the generator's own rng and line builder (private: it draws 1..max_lines lines)
            products = self.gen._rng.sample(self.catalogue, lines)
            order["purchaseOrderState"] = "New"
            details = order["orderDetails"]
            details["purchaseOrderStateChangedDate"] = details["purchaseOrderDate"]
            details.pop("purchaseOrderChangedDate", None)
            details["items"] = [
                self.gen._line(i + 1, item, False) for i, item in enumerate(products)
            ]
            out.append(order)
        return out


def mapping_record(item: CatalogueItem) -> bytes:
    return orjson.dumps(
        {
            "sku": item.sku,
            "asin": item.asin,
            "vendorProductIdentifier": item.vendorProductIdentifier,
            "unitsPerCase": item.unitsPerCase,
            "netCost": {"amount": str(unit_cost(item.sku)), "currencyCode": "USD"},
        }
    )


def stock_record(i: int, item: CatalogueItem, qty: int) -> bytes:
    entry = str(uuid.UUID(int=random.Random(f"entry-{i}").getrandbits(128), version=4))
    at = inv.iso_now()
    return orjson.dumps(
        {
            "notificationType": "Message",
            "projectKey": inv.PROJECT,
            "id": f"{entry}-1",
            "version": 1,
            "sequenceNumber": 1,
            "resource": {"typeId": "inventory-entry", "id": entry},
            "resourceVersion": 1,
            "type": "InventoryEntryCreated",
            "inventoryEntry": {
                "id": entry,
                "version": 1,
                "sku": item.sku,
                "quantityOnStock": qty,
                "availableQuantity": qty,
                "supplyChannel": {"typeId": "channel", "id": CHANNEL},
            },
            "createdAt": at,
            "lastModifiedAt": at,
        }
    )


def pct(xs: list[float]) -> dict[str, float | None]:
    if not xs:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    xs = sorted(xs)
    return {
        "n": len(xs),
        "p50": round(statistics.median(xs), 3),
        "p99": round(xs[min(len(xs) - 1, int(0.99 * len(xs)))], 3),
        "max": round(xs[-1], 3),
    }


# --------------------------------------------------------------------------------------
# what comes out: acknowledgements and POs on Kafka, submissions at the sandbox
# --------------------------------------------------------------------------------------
@dataclass
class Seen:
    ack_ts: dict[str, float] = field(default_factory=dict)  # PO -> first ack's Kafka ts
    ack_recv: dict[str, float] = field(default_factory=dict)  # PO -> received by the bench
    ack_count: Counter[str] = field(default_factory=Counter)  # PO -> acks published
    ack_codes: dict[str, Counter[str]] = field(default_factory=dict)  # PO -> entry codes
    ack_items: dict[str, int] = field(default_factory=dict)  # PO -> items acknowledged
    po_ts: dict[str, float] = field(default_factory=dict)  # PO -> first record on the PO topic


class Watcher:
    """Follows amazon.po-acknowledgements and amazon.purchase-orders from their end."""

    def __init__(self, s: Settings) -> None:
        self.s = s
        self.seen = Seen()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.c = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )

    async def start(self) -> None:
        c = self.c
        await c.start()
        await c._client.force_metadata_update()
        tps = [
            TopicPartition(t, p)
            for t in (self.s.topic_po_acknowledgements, self.s.topic_purchase_orders)
            for p in sorted(c.partitions_for_topic(t) or ())
        ]
        c.assign(tps)
        await c.seek_to_end(*tps)
        for tp in tps:
            await c.position(tp)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        ack_topic = self.s.topic_po_acknowledgements
        sn = self.seen
        while not self._stop.is_set():
            batch = await self.c.getmany(timeout_ms=100)
            now = time.time()
            for tp, msgs in batch.items():
                for m in msgs:
                    po = m.key.decode() if m.key else ""
                    ts = m.timestamp / 1000
                    if tp.topic != ack_topic:
                        sn.po_ts.setdefault(po, ts)
                        continue
                    sn.ack_count[po] += 1
                    if po in sn.ack_ts:
                        continue
                    sn.ack_ts[po] = ts
                    sn.ack_recv[po] = now
                    ack = orjson.loads(m.value)
                    items = ack.get("items", [])
                    sn.ack_items[po] = len(items)
                    sn.ack_codes[po] = Counter(
                        e["acknowledgementCode"] for it in items for e in it["itemAcknowledgements"]
                    )

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        await self.c.stop()


def submitted_at(received: list[dict[str, Any]]) -> tuple[dict[str, float], Counter[str]]:
    """PO -> time the sandbox accepted its acknowledgement (202); statuses per PO too."""
    first: dict[str, float] = {}
    statuses: Counter[str] = Counter()
    for e in received:
        acks = (e.get("body") or {}).get("acknowledgements") or []
        for a in acks:
            po = a.get("purchaseOrderNumber")
            statuses[str(e["status"])] += 1
            if e["status"] == 202 and po not in first:
                first[po] = datetime.fromisoformat(e["at"]).timestamp()
    return first, statuses


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
    tag = uuid.uuid4().hex[:8]
    sandbox_port = free_port()
    dead_port = free_port()  # nothing listens: there is no commercetools in this bench
    base = f"http://127.0.0.1:{sandbox_port}"
    fields: dict[str, Any] = {
        "kafka_bootstrap": bootstrap,
        "app_id": f"bench-po-{tag}",
        "data_dir": work / "worker-data",
        "web_port": free_port(),
        "partitions": a.partitions,
        "broker_session_timeout_s": 10.0,
        "sandbox_port": sandbox_port,
        "spapi_endpoint": base,
        "spapi_lwa_url": f"{base}/auth/o2/token",
        "po_poller_enabled": a.poller_pos > 0,
        "po_poll_interval_s": a.poll_interval,
        "sales_orders_enabled": False,
        "channel_policy_enabled": False,
        "ct_api_url": f"http://127.0.0.1:{dead_port}",
        "ct_auth_url": f"http://127.0.0.1:{dead_port}",
    }
    for name in Settings.model_fields:
        if name.startswith("topic_"):  # every topic of the run names the app id
            fields[name] = f"{Settings.model_fields[name].default}.{fields['app_id']}"
    return Settings(**fields)


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
    await inv.produce_all(s.kafka_bootstrap, s.topic_sku_mappings, maps)
    await inv.produce_all(s.kafka_bootstrap, s.topic_ct_messages, stock)
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


PO_BUCKETS = (
    ("event loop idle (select)", ("EpollSelector.select",)),
    ("po-events: take in decisions (_on_decision)", ("PurchaseOrderFlow._on_decision",)),
    ("po-events: build the acknowledgement", ("PurchaseOrderFlow._maybe_acknowledge",)),
    ("po-events: order split + line bundles (_on_order)", ("PurchaseOrderFlow._on_order",)),
    ("po-events: PO documents read/written, sends (other)", ("PurchaseOrderFlow.po_events",)),
    ("po-intake: validate + re-key", ("PurchaseOrderFlow.intake",)),
    ("ack-sender: check + submitAcknowledgement", ("PurchaseOrderFlow.ack_sender",)),
    ("tx-status timer", ("PurchaseOrderFlow.poll_transactions",)),
    ("po poller", ("PoPoller.",)),
    ("sku agent: allocate lines (SkuState)", ("InventoryFlow._allocation",)),
    ("sku agent: other", ("InventoryFlow.sku_agent",)),
    ("debounce timer: deltas", ("InventoryFlow.tick",)),
    ("changelog buffer flush (table writes)", ("ProducerBuffer",)),
    ("aiokafka producer I/O", ("aiokafka/producer/sender", "Sender._")),
    ("Faust consume + deliver to streams", ("Fetcher._fetcher", "Conductor.", "Stream.")),
    ("web /metrics", ("generate_latest", "faust/web/")),
)


@contextlib.contextmanager
def po_buckets() -> Iterator[None]:
    saved = inv.PROFILE_BUCKETS
    inv.PROFILE_BUCKETS = PO_BUCKETS  # type: ignore[assignment]  # a different set of buckets
    try:
        yield
    finally:
        inv.PROFILE_BUCKETS = saved


async def amain(a: argparse.Namespace, bootstrap: str, broker_pid: int | None) -> dict[str, Any]:
    stamp = dt.datetime.now(dt.UTC)
    work = RUN_ROOT / f"po-{stamp.strftime('%Y%m%d-%H%M%S')}"
    work.mkdir(parents=True, exist_ok=True)
    s = bench_settings(bootstrap, work, a)
    res: dict[str, Any] = {
        "date": stamp.isoformat(timespec="seconds"),
        "command": "python -m bench.purchase_orders "
        + " ".join(shlex.quote(x) for x in sys.argv[1:]),
        "machine": machine(),
        "product_version": product_version(),
        "broker": bootstrap,
        "config": {
            "pos": a.pos,
            "lines": a.lines,
            "skus": a.skus,
            "interval_s": a.interval,
            "burst_pos": a.burst_pos,
            "burst_lines": a.burst_lines,
            "poller_pos": a.poller_pos,
            "poll_interval_s": a.poll_interval if a.poller_pos > 0 else None,
            "warmup_pos": a.warmup,
            "partitions": s.partitions,
            "app_id": s.app_id,
            "spapi_rate_per_s": s.spapi_rate_per_s,
            "spapi_burst": s.spapi_burst,
            "tx_poll_interval_s": s.tx_poll_interval_s,
            "debounce_window_s": s.debounce_window_s,
            "seed": a.seed,
            "commercetools": "none: sales orders and channel policy off; reservation "
            "commands are written and the command flow retries against a closed port",
        },
        "workdir": str(work),
    }
    if a.lines > a.skus or a.burst_lines > a.skus:
        raise SystemExit("--lines and --burst-lines must not exceed --skus (distinct SKUs per PO)")
    print(f"[bench] topics *.{s.app_id}, work dir {work}", flush=True)
    await create_topics(s)
    await create_internal_topics(s)
    catalogue = default_catalogue(a.skus, seed=a.seed)
    orders = Orders(catalogue, a.seed)
    config = SandboxConfig.from_settings(
        s, seed=a.seed, order_count=0, include_amazon_examples=False, catalogue=catalogue
    )
    w = WorkerProcess(s, work / "worker.log")
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024, linger_ms=0
    )
    async with (
        running_sandbox(config, port=s.sandbox_port) as url,
        aiohttp.ClientSession() as http,
    ):
        control = SandboxControl(url, http)
        t_start = time.time()
        w.start()
        assert w.proc is not None
        watcher = Watcher(s)
        await producer.start()
        spy = None
        try:
            w.wait_ready(timeout=120)
            res["worker_start_to_ready_s"] = round(time.time() - t_start, 2)
            await watcher.start()
            ctx = Ctx(s, a, w, w.proc.pid, broker_pid, producer, watcher, control, work)
            res["seed"] = await seed_and_wait(ctx, catalogue)
            print(f"[bench] seeded {a.skus} mappings + stock: {res['seed']}", flush=True)
            if a.warmup:
                res["warmup"] = await run_phase(
                    ctx, "warm-up", orders.make(a.warmup, a.lines), a.interval
                )
            if a.profile:
                spy = inv.start_profiler(ctx.pid, work / "worker-profile.txt")
            if a.pos:
                res["latency"] = await run_phase(
                    ctx, "(1) latency", orders.make(a.pos, a.lines), a.interval
                )
            if spy is not None:
                with po_buckets():
                    res["latency"]["profile"] = inv.stop_profiler(spy, work / "worker-profile.txt")
                res["latency"]["under_profiler"] = True
                spy = None
            if a.burst_pos:
                await asyncio.sleep(2.0)
                res["throughput"] = await run_phase(
                    ctx, "(2) throughput", orders.make(a.burst_pos, a.burst_lines), 0.0
                )
            if a.poller_pos:
                await asyncio.sleep(2.0)
                res["poller"] = await run_phase(
                    ctx,
                    "(3) via the poller",
                    orders.make(a.poller_pos, a.lines),
                    a.interval,
                    via_poller=True,
                )
            received = await control.received()
            res["sandbox_requests"] = {
                op: dict(Counter(str(e["status"]) for e in entries))
                for op, entries in _by_op(received).items()
            }
            counts = await topic_records(s, s.app_id)
            res["records_written"] = {
                k.replace(s.app_id, "<app>"): v for k, v in sorted(counts.items()) if v
            }
        finally:
            if spy is not None:
                inv.stop_profiler(spy, work / "worker-profile.txt")
            await watcher.stop()
            await producer.stop()
            w.stop()
            res["worker_log"] = inv.log_summary(work / "worker.log")
            res["worker_log"]["warnings"] = warning_kinds(work / "worker.log")
            if not a.keep_state:
                shutil.rmtree(work / "worker-data", ignore_errors=True)
    return res


def _by_op(received: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for e in received:
        out.setdefault(e["operation"], []).append(e)
    return out


def warning_kinds(path: Path) -> dict[str, int]:
    """The worker log's WARNING/ERROR lines, counted by their first words."""
    out: Counter[str] = Counter()
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {}
    for line in text.splitlines():
        for level in ("[WARNING]", "[ERROR]"):
            if level in line:
                msg = line.split(level, 1)[1].strip()
                out[f"{level[1:-1]} {' '.join(msg.split()[:6])[:80]}"] += 1
    return dict(out.most_common(15))


def table(res: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []

    def lat(d: dict[str, Any]) -> str:
        return f"{d['p50']} / {d['p99']} / {d['max']}  (n={d['n']})"

    sd = res.get("seed", {})
    rows.append(
        (
            "SKUs seeded (mappings + stock) / applied in (s)",
            f"{sd.get('skus')} / {sd.get('seed_applied_s')}",
        )
    )
    for key, title in (
        ("warmup", "warm-up"),
        ("latency", "(1) latency"),
        ("throughput", "(2) burst"),
        ("poller", "(3) via poller"),
    ):
        if key not in res:
            continue
        p = res[key]
        how = (
            f"{p['pos']} POs x {p['lines_per_po']} lines, "
            + (f"1 every {p['interval_s']}s" if p["interval_s"] else "all at once")
            + (" (added to the sandbox)" if p["via_poller"] else "")
        )
        rows.append((f"{title}: load", how + f", {p['mean_po_bytes']:.0f} B/PO"))
        src = "added" if p["via_poller"] else "produce"
        rows.append((f"{title}: {src} -> ack on Kafka p50/p99/max (s)", lat(p["latency_to_ack_s"])))
        rows.append(
            (
                f"{title}: {src} -> submitted (sandbox 202) p50/p99/max (s)",
                lat(p["latency_to_submitted_s"]),
            )
        )
        rows.append(
            (f"{title}: ack on Kafka -> submitted p50/p99/max (s)", lat(p["ack_to_submitted_s"]))
        )
        if p["via_poller"] and "added_to_po_record_s" in p:
            rows.append(
                (
                    f"{title}: added -> PO record on Kafka p50/p99/max (s)",
                    lat(p["added_to_po_record_s"]),
                )
            )
        rows.append(
            (
                f"{title}: POs/s first {src} -> last ack / last submitted",
                f"{p.get('pos_per_s_to_ack')} / {p.get('pos_per_s_to_submitted')}"
                f"  ({p['first_send_to_last_ack_s']} s / {p['first_send_to_last_submitted_s']} s;"
                f" sending took {p['send_s']} s)",
            )
        )
        rows.append(
            (
                f"{title}: acked / submitted / codes / acks >1 per PO",
                f"{p['acked']} / {p['submitted']} / {p['ack_entries_by_code']} / "
                f"{p['acks_published_more_than_once']}",
            )
        )
        per = p.get("acks_per_request") or {}
        rows.append(
            (
                f"{title}: accepted requests / acks per request mean, max",
                f"{p.get('submit_requests_accepted')} / {per.get('mean')}, {per.get('max')}",
            )
        )
        rows.append(
            (
                f"{title}: submit statuses / cpu worker, broker, other",
                f"{p['submit_statuses']} / {p.get('worker_cpu_cores')}, "
                f"{p.get('broker_cpu_cores')}, {p.get('other_processes_cpu_cores')} cores"
                + (" / UNDER PROFILER" if p.get("under_profiler") else ""),
            )
        )
        if "profile" in p:
            rows.append((f"{title}: worker profile (py-spy, % of samples)", ""))
            for name, share in p["profile"].get("buckets_pct", []):
                rows.append((f"    {name}", f"{share}"))
    if "records_written" in res:
        rows.append(("Kafka records written (run total)", ""))
        for name, count in res["records_written"].items():
            rows.append((f"    {name}", f"{count}"))
    if "sandbox_requests" in res:
        rows.append(("sandbox requests by status", json.dumps(res["sandbox_requests"])))
    if "worker_log" in res:
        wl = res["worker_log"]
        timers = ", ".join(
            f"{k} x{v['count']} (max {v['max_runtime_s']}s)"
            for k, v in wl["timers_overlapping"].items()
        )
        rows.append(
            ("worker log: errors / timers overlapping", f"{wl['errors']} / {timers or 'none'}")
        )
    w = max(len(k) for k, _ in rows)
    mc = res["machine"]
    head = [
        f"purchase-order benchmark  {res['date']}",
        f"machine: {mc['nproc']} CPU ({mc['cpu']}), {mc['ram_gib']} GiB RAM, Python "
        f"{mc['python']}, faust {mc['faust']}, aiokafka {mc['aiokafka']}, "
        f"Kafka jars {mc['kafka_jars'] or '?'}",
        f"broker: {res['broker']}",
        f"rerun:   {res['command']}",
        "",
    ]
    return "\n".join(head + [f"{k.ljust(w)}  {v}" for k, v in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.purchase_orders",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--pos", type=int, default=50, help="(1) latency: POs (N)")
    ap.add_argument("--lines", type=int, default=100, help="(1) and (3): lines per PO (L)")
    ap.add_argument("--skus", type=int, default=1000, help="catalogue: SKUs mapped and stocked (K)")
    ap.add_argument("--interval", type=float, default=0.5, help="(1) and (3): seconds between POs")
    ap.add_argument("--burst-pos", type=int, default=200, help="(2) throughput: POs (0 skips)")
    ap.add_argument("--burst-lines", type=int, default=10, help="(2) throughput: lines per PO")
    ap.add_argument(
        "--poller-pos", type=int, default=20, help="(3) POs through the poller (0: poller off)"
    )
    ap.add_argument("--poll-interval", type=float, default=0.5, help="STREAMS_PO_POLL_INTERVAL_S")
    ap.add_argument("--warmup", type=int, default=3, help="POs before (1), not counted")
    ap.add_argument("--stock", type=int, default=10_000_000, help="available eaches per SKU")
    ap.add_argument(
        "--partitions",
        type=int,
        default=Settings.model_fields["partitions"].default,
        help="STREAMS_PARTITIONS",
    )
    ap.add_argument(
        "--bootstrap",
        default=os.environ.get("STREAMS_KAFKA_BOOTSTRAP"),
        help="Kafka to use (default: start a local one on free ports)",
    )
    ap.add_argument("--profile", action="store_true", help="py-spy the worker during (1)")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per phase at most")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep-state", action="store_true", help="keep the worker's RocksDB dir")
    ap.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    a = ap.parse_args(argv)

    kafka = None
    bootstrap = a.bootstrap
    if not bootstrap:
        from streams import localkafka

        home = RUN_ROOT / f"kafka-{uuid.uuid4().hex[:6]}"
        kafka = localkafka.LocalKafka(home, free_port(), free_port(), heap="1g")
        print(f"[bench] starting a local Kafka on {kafka.bootstrap}", flush=True)
        localkafka.up(kafka)
        bootstrap = kafka.bootstrap
    broker_pid = (
        pid_listening(int(bootstrap.rsplit(":", 1)[1]))
        if "127.0.0.1" in bootstrap or "localhost" in bootstrap
        else None
    )
    try:
        res = asyncio.run(amain(a, bootstrap, broker_pid))
    finally:
        if kafka is not None:
            from streams import localkafka

            localkafka.down(kafka)
            shutil.rmtree(kafka.home, ignore_errors=True)
    print()
    print(table(res))
    if not a.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        name = f"purchase-orders-{dt.datetime.now(dt.UTC).strftime('%Y%m%d-%H%M%S')}.json"
        out = RESULTS / name
        out.write_text(json.dumps(res, indent=1) + "\n")
        print(f"\nresults: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
