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
import datetime as dt
import os
import shlex
import shutil
import sys
import time
from collections import Counter
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer
from tests.support.worker import WorkerProcess

import bench.harness as h
from bench.harness import (
    RUN_ROOT,
    machine,
    product_version,
    topic_records,
)
from bench.po_phase import Ctx, bench_settings, create_internal_topics, run_phase, seed_and_wait
from bench.po_report import by_op, po_buckets, table, warning_kinds
from bench.po_workload import Orders, Watcher
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings
from streams.sandbox.amazon import (
    SandboxConfig,
    SandboxControl,
    running_sandbox,
)
from streams.sandbox.amazon.generator import default_catalogue


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
                spy = h.start_profiler(ctx.pid, work / "worker-profile.txt")
            if a.pos:
                res["latency"] = await run_phase(
                    ctx, "(1) latency", orders.make(a.pos, a.lines), a.interval
                )
            if spy is not None:
                with po_buckets():
                    res["latency"]["profile"] = h.stop_profiler(spy, work / "worker-profile.txt")
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
                for op, entries in by_op(received).items()
            }
            counts = await topic_records(s, s.app_id)
            res["records_written"] = {
                k.replace(s.app_id, "<app>"): v for k, v in sorted(counts.items()) if v
            }
        finally:
            if spy is not None:
                h.stop_profiler(spy, work / "worker-profile.txt")
            await watcher.stop()
            await producer.stop()
            w.stop()
            res["worker_log"] = h.log_summary(work / "worker.log")
            res["worker_log"]["warnings"] = warning_kinds(work / "worker.log")
            if not a.keep_state:
                shutil.rmtree(work / "worker-data", ignore_errors=True)
    return res


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

    with h.broker(a.bootstrap) as (bootstrap, broker_pid):
        res = asyncio.run(amain(a, bootstrap, broker_pid))
    print()
    print(table(res))
    if not a.no_save:
        print(f"\nresults: {h.save_result('purchase-orders', res)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
