"""The crash test for longer: ``python -m tests.reliability.soak --minutes N [--seed S]``.

Starts what it needs when the environment does not name it (Kafka from
``STREAMS_KAFKA_BOOTSTRAP``, else a local broker; the commercetools emulator from
``STREAMS_CT_API_URL``, else started here), SIGKILLs the worker at random points for N
minutes, then checks the invariants. Exit status 0 when they hold. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.adapters.kafka_admin import create_topics
from tests.reliability.scenario import crash_run
from tests.support.kafka import unique_settings
from tests.support.services import free_port, kafka_bootstrap


@contextmanager
def ct_emulator() -> Iterator[str]:
    given = os.environ.get("STREAMS_CT_API_URL")
    if given:
        yield given.rstrip("/")
        return
    from streams.config import Settings
    from streams.sandbox import ctmock

    port = free_port()
    settings = Settings(ct_mock_port=port)
    if ctmock.up(settings, port=port) != 0:
        raise SystemExit("the commercetools emulator did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        ctmock.down(settings, port=port)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.reliability.soak", description=__doc__)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=4242)
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, state)")
    a = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="streams-soak-"))
    with kafka_bootstrap() as bootstrap, ct_emulator() as ct_api:
        sandbox = f"http://127.0.0.1:{free_port()}"
        s = unique_settings(
            bootstrap,
            work,
            web_port=free_port(),
            broker_session_timeout_s=6.0,
            debounce_window_s=0.2,
            debounce_max_wait_s=1.0,
            debounce_tick_s=0.1,
            po_poll_interval_s=1.0,
            tx_poll_interval_s=0.5,
            ct_api_url=ct_api,
            ct_auth_url=ct_api,
            ct_project_key=f"soak-{uuid.uuid4().hex[:10]}",
            spapi_endpoint=sandbox,
            spapi_lwa_url=f"{sandbox}/auth/o2/token",
        )
        asyncio.run(create_topics(s))
        result = asyncio.run(
            crash_run(
                s, work, seed=a.seed, minutes=a.minutes, progress=lambda m: print(m, flush=True)
            )
        )
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
