"""Scaling across workers: one worker, then a group of several, on the same topics.

    python -m bench.scaling [--messages N] [--skus K] [--partitions 6] [--workers 2]
                            [--bootstrap HOST:PORT]

One run, one broker. For each group size (1, then ``--workers``) a fresh app id and topic
set; each worker its own process with its own data directory. Once every worker of the group
answers /readyz (recovered, not rebalancing) three times in a row, the inventory benchmark's
data set (a mapping per SKU, then N ``InventoryEntryQuantitySet`` messages over K SKUs x C
channels, the same records for each group) is produced, and the group is timed from the first
record produced to its committed offsets reaching the end of ``ct.messages`` (ingest done) and
of ``<app>-sku-events`` (every event applied in its SKU partition), as the broker sees them.

``ct.messages`` has one partition (commercetools writes one key), so one worker of the group
reads it: its ingest (parse, re-key, bundle to the SKU partitions) is the single reader every
other worker waits on. The run prints that reader's rate (N / ingest seconds) beside the
group's, so where it caps the group is read off the same run. Committed offsets move with the
commit interval: the figures carry that resolution (about a second).
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
import urllib.request
from pathlib import Path
from typing import Any

from tests.reliability.group import group_lag
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

from bench.harness.dataset import fill_topics
from bench.harness.env import (
    RUN_ROOT,
    Meter,
    bench_settings,
    machine,
    product_version,
    run_and_report,
)
from bench.harness.report import rendered
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings


def readyz(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


async def run_group(a: argparse.Namespace, bootstrap: str, size: int, work: Path) -> dict[str, Any]:
    """``size`` workers of one fresh app id and topic set: once every one is ready (recovered,
    not rebalancing), the data set is produced and the group timed until all is applied."""
    base = bench_settings(bootstrap, work, a)
    await create_topics(base)
    workers = []
    for i in range(size):
        s = base.model_copy(update={"web_port": free_port(), "data_dir": work / f"g{size}-{i}"})
        workers.append(WorkerProcess(s, work / f"g{size}-{i}.log").start())
    try:
        for w in workers:
            await asyncio.to_thread(w.wait_ready, 120)
        deadline = time.monotonic() + 120
        stable = 0  # every worker ready on three checks in a row: the group has settled
        while stable < 3:
            if time.monotonic() > deadline:
                raise TimeoutError(f"group of {size} never settled")
            ok = all(await asyncio.gather(
                *(asyncio.to_thread(readyz, w.settings.web_port) for w in workers)
            ))  # fmt: skip
            stable = stable + 1 if ok else 0
            await asyncio.sleep(1.0)
        meter = Meter(**{f"w{i}": w.proc.pid for i, w in enumerate(workers) if w.proc})
        t0 = time.monotonic()
        _, data = await fill_topics(base, a.messages, a.skus, a.channels, a.seed)
        sku_events = f"{base.app_id}-sku-events"
        t_ingest: float | None = None
        while True:
            now = time.monotonic()
            if now > t0 + a.timeout:
                raise TimeoutError(f"group of {size} not done within {a.timeout:.0f}s")
            for w in workers:
                if w.proc is not None and w.proc.poll() is not None:
                    raise RuntimeError(f"worker exited {w.proc.returncode}: {w.tail()}")
            lag = await group_lag(base, [base.topic_ct_messages, sku_events])
            if t_ingest is None and not any(lag[base.topic_ct_messages].values()):
                t_ingest = now
            if t_ingest is not None and not any(lag[sku_events].values()):
                t_done = now
                break
            await asyncio.sleep(0.5)
        usage = meter.read()
    finally:
        for w in workers:
            w.stop()
        for i in range(size):
            shutil.rmtree(work / f"g{size}-{i}", ignore_errors=True)
    assert t_ingest is not None
    n = a.messages
    return {
        "workers": size,
        "produce_s": data["produce_mappings_s"] + data["produce_ct_s"],
        "start_to_ingest_done_s": round(t_ingest - t0, 2),
        "start_to_done_s": round(t_done - t0, 2),
        "events_per_s": round(n / (t_done - t0), 1),
        "ingest_events_per_s": round(n / max(1e-9, t_ingest - t0), 1),
        **usage,
    }


async def amain(a: argparse.Namespace, bootstrap: str) -> dict[str, Any]:
    stamp = dt.datetime.now(dt.UTC)
    work = RUN_ROOT / f"scaling-{stamp.strftime('%Y%m%d-%H%M%S')}"
    work.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {
        "date": stamp.isoformat(timespec="seconds"),
        "command": "python -m bench.scaling " + " ".join(shlex.quote(x) for x in sys.argv[1:]),
        "machine": machine(),
        "broker": bootstrap,
        "load_before": round(os.getloadavg()[0], 2),
        "product_version": product_version(),
        "config": {"messages": a.messages, "skus": a.skus, "channels": a.channels,
                   "partitions": a.partitions, "ct_messages_partitions": 1},
        "groups": [],
    }  # fmt: skip
    for size in (1, a.workers):
        g = await run_group(a, bootstrap, size, work)
        res["groups"].append(g)
        print(f"[bench] {size} worker(s): {g['events_per_s']:,.0f} ev/s", flush=True)
    one, many = res["groups"]
    res["speedup"] = round(many["events_per_s"] / one["events_per_s"], 3)
    shutil.rmtree(work, ignore_errors=True)
    return res


def table(res: dict[str, Any]) -> str:
    c = res["config"]
    rows = [
        ("load average before the run", str(res["load_before"])),
        ("messages / SKUs / partitions", "{messages} / {skus} / {partitions}".format(**c)),
    ]
    for g in res["groups"]:
        cpu = {k: v for k, v in g.items() if k.endswith("_cpu_cores")}
        rows.append(
            (
                f"{g['workers']} worker(s): first produced -> applied (s), ev/s",
                f"{g['start_to_done_s']}, {g['events_per_s']:,.0f}  (cpu cores {cpu})",
            )
        )
        rows.append(
            (
                f"{g['workers']} worker(s): the one ct.messages reader (s), ev/s",
                f"{g['start_to_ingest_done_s']}, {g['ingest_events_per_s']:,.0f}",
            )
        )
    rows.append((f"speedup {res['groups'][-1]['workers']} workers vs 1", f"{res['speedup']}x"))
    return rendered("scaling benchmark", res, rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.scaling",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--skus", type=int, default=50_000)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=6, help="STREAMS_PARTITIONS")
    ap.add_argument("--workers", type=int, default=2, help="the group size compared with 1")
    ap.add_argument(
        "--debounce-window",
        type=float,
        default=Settings.model_fields["debounce_window_s"].default,
    )
    ap.add_argument("--bootstrap", default=os.environ.get("STREAMS_KAFKA_BOOTSTRAP"))
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    return run_and_report("scaling", a, amain, table)


if __name__ == "__main__":
    sys.exit(main())
