"""The whole benchmark suite in one command, on one broker:

    python -m bench [--bootstrap HOST:PORT] [--quick] [--only NAME ...]

Runs, one after the other, each printing its own table and writing its JSON to
``bench/results/``: the inventory path against its ceiling and the naive agent, with the
latency at 2k and 5k events/s; purchase orders to acknowledgement; state at scale (1M SKUs:
cold start, restart, RSS); the Amazon budget (a full-catalogue change through the SP-API
sandbox); storefront orders to Amazon (commercetools emulator, re-reads and sweep); one
worker against a group of two on the same data. Without
``--bootstrap`` a local Apache Kafka is started from the project's jars on free ports and
stopped by pid at the end. ``--quick`` uses smaller sizes (minutes instead
of most of an hour). The exit code is the number of benchmarks that failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.harness import broker

FULL: dict[str, list[list[str]]] = {
    "inventory": [
        ["--messages", "200000", "--skus", "50000", "--channels", "3", "--rate", "2000",
         "--duration", "20"],
        ["--messages", "50000", "--skus", "10000", "--skip-naive", "--rate", "5000",
         "--duration", "20"],
    ],
    "purchase_orders": [[]],
    "state_scale": [["--skus", "1000000"]],
    "amazon_budget": [["--skus", "50000"]],
    "spapi_group": [["--workers", "3", "--skus", "20000"]],
    "storefront": [["--skus", "50000"]],
    "scaling": [["--messages", "200000", "--skus", "50000", "--partitions", "6", "--workers", "2"]],
}  # fmt: skip
QUICK: dict[str, list[list[str]]] = {
    "inventory": [["--messages", "20000", "--skus", "5000", "--rate", "1000", "--duration", "10"]],
    "purchase_orders": [["--pos", "10", "--interval", "1", "--burst-pos", "50",
                         "--poller-pos", "5"]],
    "state_scale": [["--skus", "50000"]],
    "amazon_budget": [["--skus", "5000"]],
    "spapi_group": [["--workers", "3", "--skus", "5000"]],
    "storefront": [["--skus", "2000", "--duration", "20", "--sweep-duration", "30"]],
    "scaling": [["--messages", "20000", "--skus", "5000"]],
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", help="a running broker (default: start a local one)")
    ap.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    ap.add_argument("--only", nargs="*", choices=sorted(FULL), help="run only these")
    a = ap.parse_args(argv)
    plan = QUICK if a.quick else FULL
    names = a.only or list(plan)

    failed = 0
    with broker(a.bootstrap) as (bootstrap, _):
        for name in names:
            for args in plan[name]:
                cmd = [sys.executable, "-m", f"bench.{name}", *args, "--bootstrap", bootstrap]
                print(f"\n[bench] === {' '.join(cmd[1:])}", flush=True)
                started = time.monotonic()
                rc = subprocess.call(cmd)
                took = time.monotonic() - started
                print(f"[bench] === bench.{name} exited {rc} after {took:.0f} s", flush=True)
                failed += rc != 0
    return failed


if __name__ == "__main__":
    sys.exit(main())
