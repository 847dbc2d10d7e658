"""Inventory benchmark: ceiling, naive Faust baseline, the product, and delta latency.

    python -m bench.inventory [--messages N] [--skus K] [--channels 3] [--rate R]
                              [--duration D] [--bootstrap HOST:PORT] [--profile]
                              [--profile-latency]

One run, one broker, one pre-filled topic set:

1. generate N commercetools ``InventoryEntryQuantitySet`` messages (Platform format) over K
   SKUs x C supply channels, with increasing resource versions per inventory entry, and a
   SKU mapping for every SKU; produce them into a fresh, unique topic set;
2. (a) ceiling: raw aiokafka consume + orjson decode of the whole ``ct.messages`` topic;
3. (b) naive baseline: ``bench/naive_agent.py`` (one Faust table write per event) as a
   worker process, timed from its first to its last event;
4. (c) the product: ``streams worker`` with a fresh app id on the same topic, timed from
   /health answering to ``sum(streams_records_total{topic=<ct>})`` reaching N; then every
   SKU's last published delta is checked against the expected availability;
5. (d) latency: with the worker caught up, produce at R msg/s for D s and measure, per
   delta, produce time of the first change it covers -> its Kafka timestamp.

Figures are printed and written to ``bench/results/inventory-<date>.json``. Without
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
from typing import Any

from bench.harness.dataset import fill_topics
from bench.harness.env import (
    RUN_ROOT,
    Meter,
    bench_settings,
    broker,
    log_summary,
    machine,
    product_version,
    save_result,
)
from bench.harness.kafka import consume_ceiling, topic_records
from bench.harness.metrics import histogram_quantile, metric_sum, scrape
from bench.harness.profile import start_profiler, stop_profiler
from bench.inventory_phases import run_latency, run_naive, run_product
from bench.inventory_report import table
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings


async def amain(a: argparse.Namespace, bootstrap: str, broker_pid: int | None) -> dict[str, Any]:
    stamp = dt.datetime.now(dt.UTC)
    work = RUN_ROOT / stamp.strftime("%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    s = bench_settings(bootstrap, work, a)
    res: dict[str, Any] = {
        "date": stamp.isoformat(timespec="seconds"),
        "command": "python -m bench.inventory " + " ".join(shlex.quote(x) for x in sys.argv[1:]),
        "machine": machine(),
        "product_version": product_version(),
        "broker": bootstrap,
        "config": {
            "messages": a.messages,
            "skus": a.skus,
            "channels": a.channels,
            "partitions": s.partitions,
            "ct_messages_partitions": s.ct_messages_partitions,
            "batch_max": s.batch_max,
            "batch_within_s": s.batch_within_s,
            "debounce_window_s": s.debounce_window_s,
            "debounce_tick_s": s.debounce_tick_s,
            "delta_budget_per_s": s.delta_budget_per_s,
            "app_id": s.app_id,
            "ct_topic": s.topic_ct_messages,
            "seed": a.seed,
        },
        "workdir": str(work),
    }
    print(f"[bench] topics *.{s.app_id}, work dir {work}", flush=True)
    await create_topics(s)

    # -- data ---------------------------------------------------------------------------
    ds, res["data"] = await fill_topics(s, a.messages, a.skus, a.channels, a.seed)
    ct_s = res["data"]["produce_ct_s"]
    print(
        f"[bench] produced {a.messages} ct.messages in {ct_s:.1f}s "
        f"({a.messages / ct_s:,.0f}/s) and {a.skus} mappings",
        flush=True,
    )

    # -- (a) ceiling ----------------------------------------------------------------------
    meter = Meter()
    got, secs = await consume_ceiling(bootstrap, s.topic_ct_messages, a.messages)
    res["ceiling"] = {
        "events": got,
        "seconds": round(secs, 3),
        "events_per_s": round(got / secs, 1),
        **meter.read(),
    }
    print(f"[bench] (a) ceiling {got / secs:,.0f} ev/s", flush=True)

    # -- (b) naive --------------------------------------------------------------------------
    if not a.skip_naive:
        res["naive"] = await asyncio.to_thread(run_naive, s, a.messages, work, a.timeout)
        print(f"[bench] (b) naive {res['naive']['events_per_s']:,.0f} ev/s", flush=True)

    # -- (c) product and (d) latency ----------------------------------------------------------
    prod = None
    try:
        prod, res["product"] = await run_product(
            s, a.messages, ds, work, a.timeout, a.profile, broker_pid
        )
        pr = res["product"]
        print(f"[bench] (c) product {pr['events_per_s']:,.0f} ev/s", flush=True)
        res["ratios"] = {
            "product_vs_ceiling": round(pr["events_per_s"] / res["ceiling"]["events_per_s"], 4)
        }
        if "naive" in res:
            res["ratios"]["product_vs_naive"] = round(
                pr["events_per_s"] / res["naive"]["events_per_s"], 3
            )
        if a.duration > 0:
            before = await topic_records(s, s.app_id)
            meter = Meter(worker=prod.pid)
            spy = (
                start_profiler(prod.pid, work / "worker-profile-latency.txt")
                if a.profile_latency
                else None
            )
            res["latency"] = await run_latency(
                s, ds, a.rate, a.duration, settle=s.debounce_max_wait_s + 30
            )
            res["latency"].update(meter.read())
            res["latency"]["under_profiler"] = spy is not None
            after = await topic_records(s, s.app_id)
            inputs = {s.topic_ct_messages, s.topic_sku_mappings}
            written = {
                k: v - before.get(k, 0)
                for k, v in after.items()
                if v - before.get(k, 0) and k not in inputs and "-naive" not in k
            }
            res["latency"]["records_written"] = {
                "per_ct_event": round(sum(written.values()) / res["latency"]["produced"], 3),
                "by_topic": written,
            }
            if spy is not None:
                res["latency"]["profile"] = stop_profiler(spy, work / "worker-profile-latency.txt")
            m = scrape(s.web_port)
            handled = metric_sum(m, "streams_records_total", topic=s.topic_ct_messages)
            res["latency"]["ct_events_not_yet_handled"] = int(
                a.messages + res["latency"]["produced"] - handled
            )
            res["latency"]["worker_histogram_p50_le_s"] = histogram_quantile(
                m, "streams_inventory_delta_latency_seconds", 0.5
            )
            res["latency"]["worker_histogram_p99_le_s"] = histogram_quantile(
                m, "streams_inventory_delta_latency_seconds", 0.99
            )
            print(
                "[bench] (d) latency p50 {p50} p99 {p99} max {max}".format(
                    **res["latency"]["latency_s"]
                ),
                flush=True,
            )
    finally:
        if prod is not None:
            prod.worker.stop()
            res["worker_log"] = log_summary(work / "worker.log")
        if not a.keep_state:
            for d in ("worker-data", "naive-data"):
                shutil.rmtree(work / d, ignore_errors=True)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.inventory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--messages", type=int, default=50_000, help="ct.messages records (N)")
    ap.add_argument("--skus", type=int, default=10_000, help="distinct SKUs (K)")
    ap.add_argument("--channels", type=int, default=3, help="supply channels per SKU")
    ap.add_argument(
        "--partitions",
        type=int,
        default=Settings.model_fields["partitions"].default,
        help="STREAMS_PARTITIONS for the SKU-keyed topics and state",
    )
    ap.add_argument("--rate", type=float, default=2000.0, help="latency phase: messages/s")
    ap.add_argument(
        "--duration",
        type=float,
        default=20.0,
        help="latency phase: seconds of sustained load (0 skips it)",
    )
    ap.add_argument(
        "--debounce-window",
        type=float,
        default=Settings.model_fields["debounce_window_s"].default,
        help="STREAMS_DEBOUNCE_WINDOW_S for the worker",
    )
    ap.add_argument(
        "--bootstrap",
        default=os.environ.get("STREAMS_KAFKA_BOOTSTRAP"),
        help="Kafka to use (default: start a local one on free ports)",
    )
    ap.add_argument("--skip-naive", action="store_true", help="skip the naive baseline (b)")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the worker during (c) (slows it: the figure is marked)",
    )
    ap.add_argument(
        "--profile-latency",
        action="store_true",
        help="py-spy the worker during (d) (slows it: the figures are marked)",
    )
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per phase at most")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep-state", action="store_true", help="keep the RocksDB dirs")
    ap.add_argument(
        "--set", action="append", metavar="STREAMS_NAME=VALUE",
        help="a worker setting for this run (repeatable), e.g. STREAMS_GC_YOUNG_THRESHOLD=0",
    )
    ap.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    a = ap.parse_args(argv)

    with broker(a.bootstrap) as (bootstrap, broker_pid):
        res = asyncio.run(amain(a, bootstrap, broker_pid))
    print()
    print(table(res))
    if not a.no_save:
        print(f"\nresults: {save_result('inventory', res)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
