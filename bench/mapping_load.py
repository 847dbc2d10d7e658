"""Mapping-load benchmark: K SKU mappings into the ``products`` table, on their own.

    python -m bench.mapping_load [--mappings 50000] [--partitions 6] [--bootstrap HOST:PORT]

1. K mappings (bench.inventory's records) are produced into a fresh ``master.sku-mappings``;
2. a ``streams worker`` starts on an empty data dir; timed from its ingest stage starting
   (its log line; Faust's recovery ends seconds after /health answers, and the ingest starts
   after it) until ``streams_records_total{topic=<mappings>}`` reaches K (polled every
   50 ms): every mapping applied, i.e. in the
   local ``products`` store with its index (resolvable by the PO and DF flows on this
   worker) and its changelog records delivered; the worker's CPU over that phase;
3. the ``products`` changelog is counted: records per mapping;
4. the worker is stopped and a second one starts on another empty data dir: the time its
   bulk restore takes for ``products`` (every worker that joins reads the whole changelog).

To compare with another version of the product, run the same command with ``PYTHONPATH``
at that version's ``src`` (the worker processes inherit it). Figures are printed and written
to ``bench/results/mapping-load-<date>.json``; no timed assertion anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.worker import WorkerProcess

from bench.harness.dataset import mapping_record
from bench.harness.env import (
    RUN_ROOT,
    Meter,
    bench_settings,
    broker,
    machine,
    proc_cpu,
    product_version,
    save_result,
)
from bench.harness.kafka import produce_all, topic_records
from bench.harness.metrics import metric_sum, scrape
from bench.harness.profile import start_profiler, stop_profiler
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings

INGEST_START = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\].*ingest: consuming", re.M)
RESTORED = re.compile(r"bulk restore: products: ([\d,]+) records in ([\d.]+) s")


def ingest_started(log: Path) -> float | None:
    """When the worker's ingest stage started consuming (its log line; it starts once
    Faust's recovery is done, seconds after /health answers), as a Unix time."""
    try:
        m = INGEST_START.search(log.read_text(errors="replace"))
    except OSError:
        return None
    return dt.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp() if m else None


async def load(
    s: Settings, k: int, work: Path, timeout: float, profile: bool = False
) -> dict[str, Any]:
    w = WorkerProcess(s, work / "worker.log").start()
    spy = None
    try:
        t_start = time.time()
        w.wait_ready(timeout=120)
        t_ready = time.time()
        assert w.proc is not None
        meter = Meter(worker=w.proc.pid)
        t_first: float | None = None
        done = 0.0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                done = metric_sum(scrape(s.web_port), "streams_records_total",
                                  topic=s.topic_sku_mappings)  # fmt: skip
            except OSError:
                done = 0.0
            if done and t_first is None:
                t_first = time.time()
                if profile:  # the load only, not the worker's start
                    spy = start_profiler(w.proc.pid, work / "worker-profile.txt")
            if done >= k:
                break
            await asyncio.sleep(0.05)
        t_done = time.time()
        usage = meter.read()
        if spy is not None:
            usage["profile"] = stop_profiler(spy, work / "worker-profile.txt")
        if done < k:
            raise TimeoutError(f"{done:.0f} of {k} mappings applied: {w.tail()}")
        # then until the worker is idle: what it still does is reading its own changelog
        # records back (Faust's changelog reading of the global table)
        cpu_done = proc_cpu(w.proc.pid)
        last, t_idle = cpu_done, time.time()
        for _ in range(240):
            await asyncio.sleep(0.5)
            now = proc_cpu(w.proc.pid)
            if now - last < 0.05:  # under 10% of a core for half a second
                break
            last, t_idle = now, time.time()
        assert t_first is not None
        t_ingest = ingest_started(w.log_path)
        return {
            "ready_to_ingest_start_s": round(t_ingest - t_ready, 2) if t_ingest else None,
            "ingest_start_to_all_applied_s": round(t_done - t_ingest, 2) if t_ingest else None,
            "start_to_ready_s": round(t_ready - t_start, 2),
            "ready_to_first_applied_s": round(t_first - t_ready, 2),
            "mapping_load_s": round(t_done - t_ready, 2),
            "first_to_last_applied_s": round(t_done - t_first, 2),
            "applied_to_idle_s": round(t_idle - t_done, 2),
            "worker_cpu_s_after_applied": round(last - cpu_done, 2),
            "worker_cpu_s_ready_to_idle": round(last - meter.cpu0["worker"], 2),
            **usage,
        }
    finally:
        w.stop()


def restore(s: Settings, work: Path) -> dict[str, Any]:
    fresh = s.model_copy(update={"data_dir": work / "fresh-data"})
    w = WorkerProcess(fresh, work / "fresh.log").start()
    t0 = time.time()
    try:
        w.wait_ready(timeout=300)
        ready = time.time() - t0
        m = RESTORED.search(w.tail(2000))
        return {
            "start_to_ready_s": round(ready, 2),
            "products_restored_records": int(m[1].replace(",", "")) if m else None,
            "products_restore_s": float(m[2]) if m else None,
        }
    finally:
        w.stop()


async def amain(a: argparse.Namespace, bootstrap: str) -> dict[str, Any]:
    stamp = dt.datetime.now(dt.UTC)
    work = RUN_ROOT / ("maps-" + stamp.strftime("%Y%m%d-%H%M%S"))
    work.mkdir(parents=True, exist_ok=True)
    a.debounce_window = 1.0
    s = bench_settings(bootstrap, work, a)
    await create_topics(s)
    maps = [(f"SKU-{i:07d}".encode(), mapping_record(i, f"SKU-{i:07d}")) for i in range(a.mappings)]
    produce_s = await produce_all(bootstrap, s.topic_sku_mappings, maps)
    res: dict[str, Any] = {
        "date": stamp.isoformat(timespec="seconds"),
        "command": "python -m bench.mapping_load " + " ".join(shlex.quote(x) for x in sys.argv[1:]),
        "pythonpath": os.environ.get("PYTHONPATH", ""),
        "machine": machine(),
        "loadavg_1m_before": round(os.getloadavg()[0], 2),
        "product_version": product_version(),
        "config": {"mappings": a.mappings, "partitions": s.partitions, "app_id": s.app_id},
        "produce_mappings_s": round(produce_s, 2),
    }
    res["load"] = await load(s, a.mappings, work, a.timeout, a.profile)
    counts = await topic_records(s, s.app_id)
    changelog = counts.get(f"{s.app_id}-products-changelog", 0)
    res["products_changelog_records"] = changelog
    res["products_records_per_mapping"] = round(changelog / a.mappings, 3)
    res["restore"] = restore(s, work)
    return res


def report(r: dict[str, Any]) -> str:
    ld, rs = r["load"], r["restore"]
    rows = [
        ("mappings", f"{r['config']['mappings']:,} ({r['config']['partitions']} partitions)"),
        ("loadavg (1 min) before / at load start",
         f"{r['loadavg_1m_before']} / {ld['loadavg_1m_at_start']}"),
        ("mapping load s (ingest start -> all applied)",
         f"{ld['ingest_start_to_all_applied_s']}"),
        ("  first -> last applied s", f"{ld['first_to_last_applied_s']}"),
        ("  /health -> all applied s (/health -> ingest start)",
         f"{ld['mapping_load_s']} ({ld['ready_to_ingest_start_s']})"),
        ("  worker cpu s /health -> idle (of it after all applied)",
         f"{ld['worker_cpu_s_ready_to_idle']} ({ld['worker_cpu_s_after_applied']})"),
        ("  all applied -> worker idle s", f"{ld['applied_to_idle_s']}"),
        ("products records per mapping", f"{r['products_records_per_mapping']}"),
        ("fresh worker: products restore s (records)",
         f"{rs['products_restore_s']} ({rs['products_restored_records']})"),
        ("fresh worker: start -> ready s", f"{rs['start_to_ready_s']}"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mappings", type=int, default=50_000)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--bootstrap", default=os.environ.get("STREAMS_KAFKA_BOOTSTRAP"))
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument(
        "--set", action="append", metavar="STREAMS_NAME=VALUE",
        help="a worker setting for this run (repeatable)",
    )
    p.add_argument("--profile", action="store_true", help="py-spy the load (first to all applied)")
    a = p.parse_args()
    with broker(a.bootstrap) as (bootstrap, _pid):
        res = asyncio.run(amain(a, bootstrap))
    print(report(res))
    print(f"written to {save_result('mapping-load', res)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
