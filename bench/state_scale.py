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
import datetime as dt
import os
import random
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import bench.harness as h
from bench.harness import (
    RUN_ROOT,
    machine,
)
from bench.state_scale_fill import StateGen, delete_topics, fill, restore_ceiling, reused_fill
from bench.state_scale_report import streams_source, table
from bench.state_scale_run import probe_event, run_phase
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings

REPO = h.REPO


async def amain(a: argparse.Namespace, bootstrap: str, broker_pid: int | None) -> dict[str, Any]:
    stamp = dt.datetime.now(dt.UTC)
    work = RUN_ROOT / f"state-{stamp.strftime('%Y%m%d-%H%M%S')}"
    work.mkdir(parents=True, exist_ok=True)
    s = h.bench_settings(bootstrap, work, a)
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

    with h.broker(a.bootstrap) as (bootstrap, broker_pid):
        res = asyncio.run(amain(a, bootstrap, broker_pid))
    print()
    print(table(res))
    if not a.no_save:
        print(f"\nresults: {h.save_result('state-scale', res)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
