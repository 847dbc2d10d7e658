"""``python -m streams.demo.check RUN.json...``: are these demo runs healthy? (CI's smoke test.)

Each file is a summary written by ``streams demo --json``. Every run must pass
``summary.problems`` with the same p99 bound, so a second run that replays the first's
world, or drowns in its backlog, fails where the first passed. Exit 1 on any problem.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from streams.demo.summary import problems


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m streams.demo.check")
    p.add_argument("summaries", nargs="+", type=Path)
    p.add_argument(
        "--p99-bound", type=float, default=10.0, help="p99 beyond the debounce rule, seconds"
    )
    a = p.parse_args(argv)
    bad = 0
    for path in a.summaries:
        summary = orjson.loads(path.read_bytes())
        found = problems(summary, a.p99_bound)
        beyond = summary["availability"]["beyond_debounce_rule_s"]
        po = summary["purchase_orders"]
        print(
            f"{path}: beyond the debounce rule p50 {beyond['p50']} p99 {beyond['p99']} s "
            f"(n={beyond['n']}), {po['acknowledged']} POs acknowledged, exceptions "
            f"{summary['exceptions'] or 'none'}: " + ("; ".join(found) if found else "healthy")
        )
        bad += bool(found)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
