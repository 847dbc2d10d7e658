"""One Amazon usage plan, several workers: the group's total SP-API rate and its drain.

    python -m bench.spapi_group [--workers 3] [--skus 20000] [--max-items 100]
                                [--rate 10] [--burst 10] [--bootstrap HOST:PORT]

W ``streams worker`` processes in one consumer group (one app id, 6 partitions) and the
SP-API sandbox served from this process with its token buckets at ``--rate``/``--burst``
(Amazon's default plan: 10 and 10) for every operation. K availability records go to
``amazon.inventory-updates``; the workers' inventory senders split the plan of
``submitInventoryUpdate`` and of the DF ``getTransactionStatus`` by their share of the
partitions (``streams.domain.rate_budget``). The run waits until every record is handled
and every accepted request's transaction was checked.

Figures: each worker's share (its budget gauge) and the requests it sent; 429s per
operation (the target is 0); the most requests the sandbox saw in any 1 s window per
operation against what the plan allows in 1 s (rate + burst); drain time (first produce to
last accepted request) against the plan's lower bound ``(requests - burst) / rate``; every
SKU's last accepted amount against the last one produced. Printed and written to
``bench/results/spapi-group-<date>.json``. Without ``--bootstrap`` (or
``STREAMS_KAFKA_BOOTSTRAP``) a local Apache Kafka is started on free ports and stopped by
pid at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shlex
import shutil
import sys
import time
from bisect import bisect_right
from collections import Counter
from datetime import datetime
from typing import Any

import aiohttp
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

import bench.harness as h
from bench.amazon_budget import WAREHOUSE, bench_settings, final_amount, records
from bench.harness import (
    RUN_ROOT,
    machine,
    metric_sum,
    produce_all,
    product_version,
    scrape,
)
from bench.harness.env import run_and_report
from streams.adapters.kafka_admin import create_topics
from streams.sandbox.amazon import SandboxConfig, SandboxControl, running_sandbox
from streams.sandbox.amazon.generator import default_catalogue

OPS = ("submitInventoryUpdate", "getTransactionStatus")
BUDGET = "streams_spapi_budget_requests_per_second"


def max_in_window(stamps: list[float], window: float = 1.0) -> int:
    """The most requests that arrived within any ``window`` seconds."""
    stamps = sorted(stamps)
    return max((bisect_right(stamps, t + window - 1e-9) - i for i, t in enumerate(stamps)),
               default=0)  # fmt: skip


def arrivals(entries: list[dict[str, Any]]) -> list[float]:
    return [datetime.fromisoformat(e["at"]).timestamp() for e in entries]


async def wait_for(cond: Any, timeout: float, what: str) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await cond():
            return True
        await asyncio.sleep(0.25)
    print(f"[bench] gave up waiting for {what}", flush=True)
    return False


async def amain(a: argparse.Namespace, bootstrap: str) -> dict[str, Any]:
    stamp = dt.datetime.now(dt.UTC)
    work = RUN_ROOT / f"spapi-group-{stamp.strftime('%Y%m%d-%H%M%S')}"
    work.mkdir(parents=True, exist_ok=True)
    s = bench_settings(bootstrap, work, a)
    res: dict[str, Any] = {
        "date": stamp.isoformat(timespec="seconds"),
        "command": "python -m bench.spapi_group " + " ".join(shlex.quote(x) for x in sys.argv[1:]),
        "machine": machine(),
        "product_version": product_version(),
        "broker": bootstrap,
        "config": {
            "workers": a.workers,
            "skus": a.skus,
            "max_items_per_request": s.inventory_max_items,
            "partitions": s.partitions,
            "plan_rate_per_s": a.rate,
            "plan_burst": a.burst,
            "app_id": s.app_id,
        },
    }
    await create_topics(s)
    catalogue = default_catalogue(a.skus, seed=1)
    data = records(catalogue, 1)
    config = SandboxConfig.from_settings(
        s,
        order_count=0,
        include_amazon_examples=False,
        rate_per_s=a.rate,
        burst=a.burst,
        warehouses=(WAREHOUSE,),
        transaction_processing_s=0.5,
        max_received=1_000_000,
    )
    workers = [
        WorkerProcess(
            s.model_copy(update={"data_dir": work / f"data-{i}", "web_port": free_port()}),
            work / f"worker-{i}.log",
        )
        for i in range(a.workers)
    ]

    def budgets(op: str) -> list[float]:
        return [metric_sum(scrape(w.settings.web_port), BUDGET, operation=op) for w in workers]

    async with (
        running_sandbox(config, port=s.sandbox_port) as url,
        aiohttp.ClientSession() as http,
    ):
        control = SandboxControl(url, http)
        try:
            for w in workers:
                w.start()
            for w in workers:
                await asyncio.to_thread(w.wait_ready, 120)

            async def shared() -> bool:
                try:
                    return all(b > 0 for b in budgets(OPS[0]))
                except OSError:
                    return False

            await wait_for(shared, 90, "every worker to own partitions")
            res["shares_req_per_s"] = {op: budgets(op) for op in OPS}
            t0 = time.time()
            await produce_all(bootstrap, s.topic_inventory_updates, data)

            async def handled() -> bool:
                total = sum(
                    metric_sum(scrape(w.settings.web_port), "streams_amazon_inventory_items_total")
                    for w in workers
                )
                return total >= len(data)

            done = await wait_for(handled, a.timeout, "every record handled")
            t_handled = time.time()

            async def checked() -> bool:
                sent = await control.received(OPS[0])
                tx = await control.received(OPS[1])
                ok = {e["params"].get("transactionId") for e in tx if e["status"] == 200}
                return all(e["transactionId"] in ok for e in sent if e["status"] == 202)

            tx_done = await wait_for(checked, a.timeout, "every DF transaction checked")
            t_checked = time.time()
            per_worker = []
            for i, w in enumerate(workers):
                m = scrape(w.settings.web_port)
                per_worker.append({
                    "worker": i,
                    **{f"{op}_by_status": {
                        st: metric_sum(m, "streams_spapi_responses_total", operation=op, status=st)
                        for st in ("202", "200", "429")
                    } for op in OPS},
                })  # fmt: skip
            res["per_worker"] = per_worker
        finally:
            for w in workers:
                w.stop()
        run: dict[str, Any] = {"complete": done, "transactions_checked": tx_done}
        for op in OPS:
            entries = await control.received(op)
            statuses = Counter(e["status"] for e in entries)
            stamps = arrivals(entries)
            run[op] = {
                "requests": len(entries),
                "by_status": {str(k): v for k, v in sorted(statuses.items())},
                "throttled_429": statuses.get(429, 0),
                "max_in_any_1s": max_in_window(stamps),
                "plan_allows_in_1s": int(a.rate + a.burst),
                "mean_per_s": round(len(stamps) / (max(stamps) - min(stamps)), 2)
                if len(stamps) > 1
                else None,
            }
        accepted = [e for e in await control.received(OPS[0]) if e["status"] == 202]
        times = arrivals(accepted)
        told: dict[tuple[str, str], int] = {}
        for e in accepted:
            for item in e["body"]["inventory"]["items"]:
                told[item["buyerProductIdentifier"], item["vendorProductIdentifier"]] = item[
                    "availableQuantity"
                ]["amount"]
        ids = [(it.asin, it.vendorProductIdentifier) for it in catalogue]
        n = len(accepted)
        run.update(
            {
                "first_produce_to_last_accepted_s": round(max(times) - t0, 3) if times else None,
                "first_produce_to_all_handled_s": round(t_handled - t0, 3),
                "first_produce_to_all_checked_s": round(t_checked - t0, 3),
                "plan_lower_bound_s": round(max(0.0, (n - a.burst) / a.rate), 3),
                "final_amount_wrong": sum(
                    1 for i, k in enumerate(ids) if told.get(k) != final_amount(i)
                ),
            }
        )
        res["run"] = run
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return res


def table(res: dict[str, Any]) -> str:
    c, r = res["config"], res["run"]
    rows = [
        ("workers / partitions", f"{c['workers']} / {c['partitions']}"),
        ("plan (sandbox = Amazon default)", f"{c['plan_rate_per_s']}/s, burst {c['plan_burst']}"),
        ("SKUs / max items per request", f"{c['skus']} / {c['max_items_per_request']}"),
    ]
    for op in OPS:
        o = r[op]
        got = res["shares_req_per_s"][op]
        shares = ", ".join(f"{x:.2f}" for x in got)
        rows += [
            (f"{op}: worker shares (req/s)", f"{shares} (sum {sum(got):.2f})"),
            (f"{op}: requests by status", json.dumps(o["by_status"])),
            (f"{op}: 429s (target 0)", str(o["throttled_429"])),
            (f"{op}: max in any 1 s / plan allows",
             f"{o['max_in_any_1s']} / {o['plan_allows_in_1s']}"),
            (f"{op}: mean req/s at the sandbox", str(o["mean_per_s"])),
        ]  # fmt: skip
    rows += [
        ("requests per worker (202)", ", ".join(
            str(int(w[f"{OPS[0]}_by_status"]["202"])) for w in res["per_worker"])),
        ("first produce -> last accepted request", f"{r['first_produce_to_last_accepted_s']} s "
         f"(plan's lower bound {r['plan_lower_bound_s']} s)"),
        ("first produce -> every transaction checked", f"{r['first_produce_to_all_checked_s']} s"),
        ("final amounts wrong", str(r["final_amount_wrong"])),
        ("complete / transactions checked", f"{r['complete']} / {r['transactions_checked']}"),
    ]  # fmt: skip

    return h.rendered("SP-API group budget benchmark", res, rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.spapi_group",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--skus", type=int, default=20_000)
    ap.add_argument("--max-items", type=int, default=100, help="STREAMS_INVENTORY_MAX_ITEMS")
    ap.add_argument("--linger", type=float, default=0.5, help="STREAMS_INVENTORY_LINGER_S")
    ap.add_argument("--rate", type=float, default=10.0, help="the plan: requests/s")
    ap.add_argument("--burst", type=int, default=10, help="the plan: burst")
    ap.add_argument("--partitions", type=int, default=6, help="STREAMS_PARTITIONS")
    ap.add_argument("--bootstrap", default=os.environ.get("STREAMS_KAFKA_BOOTSTRAP"))
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs, state)")
    ap.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    a = ap.parse_args(argv)
    return run_and_report("spapi-group", a, amain, table)


if __name__ == "__main__":
    sys.exit(main())
