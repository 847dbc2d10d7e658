"""Amazon budget benchmark: a full-catalogue availability change through the SP-API limit.

    python -m bench.amazon_budget [--skus 50000] [--repeat 1] [--max-items 1000]
                                  [--rate 10] [--burst 10] [--bootstrap HOST:PORT]

One run, one broker, one fresh topic set, one ``streams worker`` process, and the SP-API
sandbox served over HTTP from this process (``running_sandbox``) with its token bucket at
``--rate`` requests/s and ``--burst`` (Amazon's default usage plan: 10 and 10):

1. K availability records (one per SKU of the sandbox's ``default_catalogue(K)``, the
   ``amazon.inventory-updates`` shape the debounce publishes) are produced to
   ``amazon.inventory-updates`` as fast as aiokafka goes; with ``--repeat R`` every SKU gets
   R records with rising amounts, the last one the amount Amazon must end up with;
2. the worker's inventory sender turns them into ``submitInventoryUpdate`` partial feeds;
   the run waits until the worker has sent or coalesced every record and then reads what
   the sandbox received.

Figures: time to drain (first produce -> last accepted request at the sandbox), 429s (the
target is 0), requests per SKU, items per request, the lower bound the rate limit sets
(``(requests - burst) / rate``), every SKU's last accepted amount checked against the last
one produced, every request body checked against Amazon's model, and the worker's CPU.
Printed and written to ``bench/results/amazon-budget-<date>.json``. Without ``--bootstrap``
(or ``STREAMS_KAFKA_BOOTSTRAP``) a local Apache Kafka is started from the jars on free ports
and stopped by pid at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shlex
import shutil
import statistics
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from tests.support.worker import WorkerProcess

import bench.harness as h
from bench.harness import (
    RUN_ROOT,
    Meter,
    iso_now,
    log_summary,
    machine,
    metric_sum,
    produce_all,
    product_version,
    scrape,
)
from bench.po_report import warning_kinds
from streams.adapters.amazon_models import validate
from streams.adapters.kafka_admin import create_topics
from streams.agents.inventory_sender import BURST_SHARE, RATE_HEADROOM
from streams.config import Settings
from streams.sandbox.amazon import SandboxConfig, SandboxControl, running_sandbox
from streams.sandbox.amazon.generator import CatalogueItem, default_catalogue

OP = "submitInventoryUpdate"
WAREHOUSE = "WH-BENCH"
SENDER_BUCKETS = (
    ("event loop idle (select)", ("EpollSelector.select",)),
    ("sender: Amazon model check of the body", ("amazon_models.py",)),
    ("sender: SP-API request (aiohttp, orjson)", ("SpApiClient.",)),
    ("sender: decode + coalesce", ("InventorySenderFlow._batch",)),
    ("sender: other", ("InventorySenderFlow.",)),
    ("aiokafka producer I/O", ("aiokafka/producer/sender", "Sender._")),
    ("Faust consume + deliver to streams", ("Fetcher._fetcher", "Conductor.", "Stream.")),
    ("web /metrics", ("generate_latest", "faust/web/")),
)


def records(catalogue: list[CatalogueItem], repeat: int) -> list[tuple[bytes, bytes]]:
    """R records per SKU (rising amounts), SKU after SKU per round, as the debounce emits."""
    at = iso_now()
    out: list[tuple[bytes, bytes]] = []
    for r in range(repeat):
        for i, item in enumerate(catalogue):
            amount = final_amount(i) - (repeat - 1 - r)
            out.append(
                (
                    item.sku.encode(),
                    orjson.dumps(
                        {
                            "sku": item.sku,
                            "availableQuantity": {"amount": amount, "unitOfMeasure": "Each"},
                            "isObsolete": False,
                            "buyerProductIdentifier": item.asin,
                            "vendorProductIdentifier": item.vendorProductIdentifier,
                            "previousAmount": None,
                            "kind": "delta",
                            "publishedAt": at,
                            "masterChangedAt": None,
                        }
                    ),
                )
            )
    return out


def final_amount(i: int) -> int:
    return 100 + i % 997


def bench_settings(bootstrap: str, work: Path, a: argparse.Namespace) -> Settings:
    return h.sandbox_settings(
        bootstrap,
        work,
        a.partitions,
        "amz",
        spapi_rate_per_s=a.rate,
        spapi_burst=a.burst,
        spapi_df_warehouse=WAREHOUSE,
        inventory_max_items=a.max_items,
        inventory_linger_s=a.linger,
        po_poller_enabled=False,
    )


def handled(s: Settings) -> float:
    """Records the worker's sender has finished with (sent, superseded, rejected, invalid)."""
    return metric_sum(scrape(s.web_port), "streams_amazon_inventory_items_total")


async def amain(a: argparse.Namespace, bootstrap: str, broker_pid: int | None) -> dict[str, Any]:
    stamp = dt.datetime.now(dt.UTC)
    work = RUN_ROOT / f"amz-{stamp.strftime('%Y%m%d-%H%M%S')}"
    work.mkdir(parents=True, exist_ok=True)
    s = bench_settings(bootstrap, work, a)
    res: dict[str, Any] = {
        "date": stamp.isoformat(timespec="seconds"),
        "command": "python -m bench.amazon_budget "
        + " ".join(shlex.quote(x) for x in sys.argv[1:]),
        "machine": machine(),
        "product_version": product_version(),
        "broker": bootstrap,
        "config": {
            "skus": a.skus,
            "records_per_sku": a.repeat,
            "max_items_per_request": s.inventory_max_items,
            "linger_s": s.inventory_linger_s,
            "sandbox_rate_per_s": a.rate,
            "sandbox_burst": a.burst,
            "client_rate_per_s": s.spapi_rate_per_s,
            "client_burst": s.spapi_burst,
            "sender_rate_per_s": round(s.spapi_rate_per_s * RATE_HEADROOM, 3),
            "sender_burst": max(1, int(s.spapi_burst * BURST_SHARE)),
            "partitions": s.partitions,
            "app_id": s.app_id,
        },
        "workdir": str(work),
    }
    print(f"[bench] topics *.{s.app_id}, work dir {work}", flush=True)
    await create_topics(s)
    catalogue = default_catalogue(a.skus, seed=a.seed)
    data = records(catalogue, a.repeat)
    n_records = len(data)
    config = SandboxConfig.from_settings(
        s,
        order_count=0,
        include_amazon_examples=False,
        rate_per_s=a.rate,
        burst=a.burst,
        warehouses=(WAREHOUSE,),
        max_received=1_000_000,
    )
    w = WorkerProcess(s, work / "worker.log")
    async with (
        running_sandbox(config, port=s.sandbox_port) as url,
        aiohttp.ClientSession() as http,
    ):
        control = SandboxControl(url, http)
        w.start()
        assert w.proc is not None
        try:
            w.wait_ready(timeout=120)
            await asyncio.sleep(3.0)  # partitions assigned, LWA token not fetched yet
            meter = Meter(worker=w.proc.pid, bench_and_sandbox=os.getpid(),
                          **({"broker": broker_pid} if broker_pid else {}))  # fmt: skip
            spy = h.start_profiler(w.proc.pid, work / "worker-profile.txt") if a.profile else None
            t0 = time.time()
            produce_s = await produce_all(bootstrap, s.topic_inventory_updates, data)
            print(f"[bench] produced {n_records} records in {produce_s:.2f} s", flush=True)
            deadline = time.monotonic() + a.timeout
            done = False
            while time.monotonic() < deadline:
                if w.proc.poll() is not None:
                    raise RuntimeError(f"worker exited: {w.tail()}")
                if handled(s) >= n_records:
                    done = True
                    break
                await asyncio.sleep(0.2)
            t_handled = time.time()
            usage = meter.read()
            if spy is not None:
                saved = h.PROFILE_BUCKETS
                h.PROFILE_BUCKETS = SENDER_BUCKETS  # type: ignore[assignment]
                try:
                    res["profile"] = h.stop_profiler(spy, work / "worker-profile.txt")
                finally:
                    h.PROFILE_BUCKETS = saved
            ours = sum(v for k, v in usage.items() if k.endswith("_cpu_cores"))
            usage["other_processes_cpu_cores"] = round(
                max(0.0, usage["machine_cpu_busy"] * (os.cpu_count() or 1) - ours), 2
            )
            await asyncio.sleep(2 * s.tx_poll_interval_s)  # the transaction checks finish
            res["run"] = {
                "complete": done,
                "records": n_records,
                "produce_s": round(produce_s, 3),
                "first_produce_to_all_handled_s": round(t_handled - t0, 3),
                **usage,
            }
            m = scrape(s.web_port)
            res["worker_counters"] = {
                "items": {
                    o: metric_sum(m, "streams_amazon_inventory_items_total", outcome=o)
                    for o in ("sent", "superseded", "rejected", "invalid")
                },
                "requests": {
                    o: metric_sum(m, "streams_amazon_inventory_requests_total", outcome=o)
                    for o in ("submitted", "rejected", "split", "error", "invalid")
                },
                "client_429s": metric_sum(
                    m, "streams_spapi_responses_total", operation=OP, status="429"
                ),
                "transaction_failures": metric_sum(
                    m, "streams_transaction_failures_total", kind="inventory"
                ),
            }
            w.stop()
            # the sandbox shares this event loop: the worker is stopped before the checks
            # below hold the loop, so none of its requests meets a stalled sandbox
            res["run"].update(await outcome(control, s, catalogue, t0))
        finally:
            w.stop()
            res["worker_log"] = log_summary(work / "worker.log")
            res["worker_log"]["warnings"] = warning_kinds(work / "worker.log")
            if not a.keep_state:
                shutil.rmtree(work / "worker-data", ignore_errors=True)
    return res


async def outcome(
    control: SandboxControl, s: Settings, catalogue: list[CatalogueItem], t0: float
) -> dict[str, Any]:
    """What the sandbox received: requests, 429s, sizes, final amounts, model validity."""
    received = await control.received(OP)
    statuses = Counter(e["status"] for e in received)
    accepted = [e for e in received if e["status"] == 202]
    sizes = [len(e["body"]["inventory"]["items"]) for e in accepted]
    # (ASIN, vendor product id): the generator's 13-digit vendor ids alone repeat at 200k
    told: dict[tuple[str, str], int] = {}
    invalid = 0
    for e in accepted:
        if validate("vendorDirectFulfillmentInventory", "SubmitInventoryUpdateRequest", e["body"]):
            invalid += 1
        for item in e["body"]["inventory"]["items"]:
            ident = (item["buyerProductIdentifier"], item["vendorProductIdentifier"])
            told[ident] = item["availableQuantity"]["amount"]
    ids = [(it.asin, it.vendorProductIdentifier) for it in catalogue]
    wrong = sum(1 for i, ident in enumerate(ids) if told.get(ident) != final_amount(i))
    missing = sum(1 for ident in ids if ident not in told)
    times = [datetime.fromisoformat(e["at"]).timestamp() for e in accepted]
    k = len(catalogue)
    n = len(accepted)
    first = min(times) - t0 if times else None
    last = max(times) - t0 if times else None
    bound = max(0.0, (n - s.spapi_burst) / s.spapi_rate_per_s) if n else None
    rate, burst = s.spapi_rate_per_s * RATE_HEADROOM, max(1, int(s.spapi_burst * BURST_SHARE))
    pace = max(0.0, (n - burst) / rate) if n else None
    tx = await control.received("getTransactionStatus")  # DF Transaction Status API
    return {
        "requests_accepted": n,
        "requests_by_status": {str(k_): v for k_, v in sorted(statuses.items())},
        "throttled_429": statuses.get(429, 0),
        "requests_per_sku": round(n / k, 5) if k else None,
        "items_per_request": {
            "mean": round(statistics.mean(sizes), 1) if sizes else None,
            "min": min(sizes, default=None),
            "max": max(sizes, default=None),
        },
        "items_sent": sum(sizes),
        "first_produce_to_first_accepted_s": round(first, 3) if first is not None else None,
        "first_produce_to_last_accepted_s": round(last, 3) if last is not None else None,
        "drain_s_first_to_last_accepted": round(last - first, 3)
        if first is not None and last is not None
        else None,
        "rate_limit_lower_bound_s": round(bound, 3) if bound is not None else None,
        "sender_pace_lower_bound_s": round(pace, 3) if pace is not None else None,
        "accepted_per_s": round(n / (last - first), 2)
        if first is not None and last is not None and last > first
        else None,
        "skus_per_s": round(k / last, 1) if last else None,
        "final_amount_wrong": wrong,
        "final_amount_missing": missing,
        "bodies_invalid_against_model": invalid,
        "mean_body_bytes": round(statistics.mean(len(orjson.dumps(e["body"])) for e in accepted))
        if accepted
        else None,
        "transaction_checks": dict(Counter(str(e["status"]) for e in tx)),
        # per accepted request: seconds after the first produce, items
        "accepted_timeline": sorted(
            (round(ts - t0, 3), sz) for ts, sz in zip(times, sizes, strict=True)
        ),
    }


def table(res: dict[str, Any]) -> str:
    r, c = res.get("run", {}), res["config"]
    ipr = r.get("items_per_request", {})
    wl = res.get("worker_log", {})
    cpu = " / ".join(
        str(r.get(f"{k}_cpu_cores")) for k in ("worker", "bench_and_sandbox", "broker")
    )
    rows = [
        (
            "catalogue change",
            f"{c['skus']} SKUs x {c['records_per_sku']} record(s) = {r.get('records')} "
            "records on amazon.inventory-updates",
        ),
        (
            "sandbox limit / client limit",
            f"{c['sandbox_rate_per_s']}/s burst {c['sandbox_burst']} / "
            f"{c['client_rate_per_s']}/s x 0.95, burst {c['client_burst']} x 0.5 (headroom)",
        ),
        ("max items per request / linger", f"{c['max_items_per_request']} / {c['linger_s']} s"),
        ("produce (aiokafka, batched)", f"{r.get('produce_s')} s"),
        (
            "first produce -> first / last accepted request",
            f"{r.get('first_produce_to_first_accepted_s')} s / "
            f"{r.get('first_produce_to_last_accepted_s')} s",
        ),
        (
            "drain (first -> last accepted request)",
            f"{r.get('drain_s_first_to_last_accepted')} s "
            f"(lower bound at Amazon's limit {r.get('rate_limit_lower_bound_s')} s, at the "
            f"sender's pace {r.get('sender_pace_lower_bound_s')} s)",
        ),
        ("SKUs/s (first produce -> last accepted)", f"{r.get('skus_per_s')}"),
        (
            "requests accepted / by status",
            f"{r.get('requests_accepted')} / {r.get('requests_by_status')}",
        ),
        ("429s (target 0)", f"{r.get('throttled_429')}"),
        ("requests per SKU", f"{r.get('requests_per_sku')}"),
        (
            "items per request mean / min / max",
            f"{ipr.get('mean')} / {ipr.get('min')} / {ipr.get('max')}",
        ),
        ("mean request body", f"{r.get('mean_body_bytes')} B"),
        (
            "final amounts wrong / missing",
            f"{r.get('final_amount_wrong')} / {r.get('final_amount_missing')}",
        ),
        ("bodies invalid against Amazon's model", f"{r.get('bodies_invalid_against_model')}"),
        ("getTransactionStatus (DF) checks by status", f"{r.get('transaction_checks')}"),
        (
            "cpu worker / bench+sandbox / broker / other",
            f"{cpu} / {r.get('other_processes_cpu_cores')} cores",
        ),
        ("worker counters", json.dumps(res.get("worker_counters", {}))),
        (
            "worker log errors / warnings",
            f"{wl.get('errors')} / {json.dumps(wl.get('warnings', {}))}",
        ),
    ]
    if "profile" in res:
        rows.append(("worker profile (py-spy, % of samples, UNDER PROFILER)", ""))
        rows += [(f"    {name}", f"{share}") for name, share in res["profile"]["buckets_pct"]]

    return h.rendered("Amazon budget benchmark", res, rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.amazon_budget",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--skus", type=int, default=50_000, help="catalogue size (K)")
    ap.add_argument("--repeat", type=int, default=1, help="records per SKU (R), rising amounts")
    ap.add_argument(
        "--max-items",
        type=int,
        default=Settings.model_fields["inventory_max_items"].default,
        help="STREAMS_INVENTORY_MAX_ITEMS",
    )
    ap.add_argument(
        "--linger",
        type=float,
        default=Settings.model_fields["inventory_linger_s"].default,
        help="STREAMS_INVENTORY_LINGER_S",
    )
    ap.add_argument("--rate", type=float, default=10.0, help="requests/s (sandbox and client)")
    ap.add_argument("--burst", type=int, default=10, help="burst (sandbox and client)")
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
    ap.add_argument("--profile", action="store_true", help="py-spy the worker while it drains")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds to drain at most")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep-state", action="store_true", help="keep the worker's RocksDB dir")
    ap.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    a = ap.parse_args(argv)
    if a.skus < 1 or a.repeat < 1:
        raise SystemExit("--skus and --repeat must be at least 1")

    with h.broker(a.bootstrap) as (bootstrap, broker_pid):
        res = asyncio.run(amain(a, bootstrap, broker_pid))
    print()
    print(table(res))
    if not a.no_save:
        print(f"\nresults: {h.save_result('amazon-budget', res)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
