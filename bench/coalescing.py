"""Kafka records per ct event if SKU states were logged once per time window (a count, no
Kafka): what issue 15's target of <= 1.2 records per ct event would take on the inventory
benchmark's data set.

    python -m bench.coalescing [--messages N] [--skus K] [--channels C] [--rate EV_PER_S]

The SKU agent writes one ``skus`` changelog record per SKU per batch today. A write-behind
store would log a SKU once per window of ``w`` seconds instead (its events acked once that
record is delivered). On the benchmark's data set (the same generator and seed as
``bench.inventory``: uniformly random SKUs and channels) this counts, for each window, the
distinct SKUs each run of ``rate * w`` events touches: the state records such a store would
write. Added to them, as ``bench.inventory`` (c) writes them:

* one state record per mapping (the mappings are applied before the stock backlog);
* ``products``: one record per mapping;
* ``entries``: one per inventory entry first seen (0 if that index were derived locally);
* deltas: at least one per SKU touched (each is published once the backlog is applied).

The rate is the one a window is read at: (c)'s measured rate from ready by default.
"""

from __future__ import annotations

import argparse
import time

import orjson

from bench.harness.dataset import generate

WINDOWS_S = (0.0, 0.25, 0.5, 1.0, 2.0, 2.8, 5.0, 10.0, 20.0)
TARGET = 1.2


def distinct_per_window(skus: list[str], per_window: int) -> int:
    """State records if each SKU is logged once per run of ``per_window`` events (0: one
    record per event)."""
    if per_window <= 1:
        return len(skus)
    return sum(len(set(skus[i : i + per_window])) for i in range(0, len(skus), per_window))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--skus", type=int, default=50_000)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=9_254.0, help="events/s a window is read at")
    a = ap.parse_args()

    t = time.perf_counter()
    _, values, maps = generate(a.messages, a.skus, a.channels, a.seed)
    events = [orjson.loads(v) for v in values]
    skus = [e["sku"] for e in events]
    entries = len({e["resource"]["id"] for e in events})
    touched = len(set(skus))
    n, k = len(events), len(maps)
    fixed = k + k + touched  # mapping states + products + deltas (a lower bound)
    print(
        f"data set: {n:,} ct events over {a.skus:,} SKUs x {a.channels} channels, seed "
        f"{a.seed} ({time.perf_counter() - t:.1f} s); {touched:,} SKUs and {entries:,} "
        f"entries touched; windows read at {a.rate:,.0f} events/s"
    )
    print(
        f"per ct event, whatever the window: mapping states {k / n:.3f}, products "
        f"{k / n:.3f}, deltas >= {touched / n:.3f}, entries {entries / n:.3f} (or 0 derived)"
    )
    print(f"{'window s':>9} {'events':>8} {'state records':>14} {'/event':>7} "
          f"{'total /event':>13} {'entries derived':>16}")  # fmt: skip
    for w in WINDOWS_S:
        per_window = int(a.rate * w)
        states = distinct_per_window(skus, per_window)
        kept = (states + fixed + entries) / n
        derived = (states + fixed) / n
        mark = " <= target" if derived <= TARGET else ""
        print(
            f"{w:>9.2f} {per_window:>8,} {states:>14,} {states / n:>7.3f} {kept:>13.3f} "
            f"{derived:>16.3f}{mark}"
        )


if __name__ == "__main__":
    main()
