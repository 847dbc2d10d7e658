"""The crash test for longer: ``python -m tests.reliability.soak --minutes N [--seed S]``.

Starts what it needs when the environment does not name it (Kafka from
``STREAMS_KAFKA_BOOTSTRAP``, else a local broker; the commercetools emulator from
``STREAMS_CT_API_URL``, else started here), SIGKILLs the worker at random points for N
minutes, then checks the invariants. Exit status 0 when they hold. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from streams.adapters.kafka_admin import create_topics
from tests.reliability.harness import workload_settings
from tests.reliability.scenario import crash_run
from tests.support.services import EmulatorNotStarted, ct_emulator, kafka_bootstrap


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.reliability.soak", description=__doc__)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=4242)
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, state)")
    a = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="streams-soak-"))
    try:
        with kafka_bootstrap() as bootstrap, ct_emulator() as ct_api:
            s = workload_settings(bootstrap, work, ct_api, "soak")
            asyncio.run(create_topics(s))
            result = asyncio.run(
                crash_run(
                    s, work, seed=a.seed, minutes=a.minutes, progress=lambda m: print(m, flush=True)
                )
            )
    except EmulatorNotStarted as exc:
        raise SystemExit(str(exc)) from None
    print(result.summary())
    if not result.report.ok:
        print(result.report.summary(), file=sys.stderr)
    for line in result.agent_crashes[:10]:
        print(line, file=sys.stderr)
    print(f"work directory: {work}" if a.keep else "", end="")
    if not a.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0 if result.report.ok and not result.agent_crashes and result.alive else 1


if __name__ == "__main__":
    sys.exit(main())
