"""``streams demo``: generated traffic through every flow, and a view of what flows.

``traffic`` stands in for the outside world, ``view`` shows what the worker did (live on a
terminal), ``summary`` turns a run into numbers (p50 / p99 beyond the debounce rule, as the
benchmarks measure it), ``run`` ties them together.
"""

from __future__ import annotations

from pathlib import Path

from streams.config import Settings


def run_demo(
    s: Settings,
    duration: float = 0,
    rate: float = 20.0,
    skus: int = 40,
    seed_only: bool = False,
    json_path: Path | None = None,
) -> int:
    """See ``streams.demo.run.run_demo``; imported here lazily (aiokafka, rich)."""
    from streams.demo.run import run_demo as run

    return run(s, duration, rate, skus, seed_only, json_path)
