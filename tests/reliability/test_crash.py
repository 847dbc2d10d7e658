"""Crash test: a mixed workload (stock changes through the commercetools emulator, master-data
changes, purchase orders from the SP-API sandbox) while the worker is SIGKILLed at random
points, restarted each time; at the end the invariants of docs/reliability.md hold.

``STREAMS_CRASH_KILLS`` (default 10) and ``STREAMS_CRASH_SEED`` tune it; for a long run use
``python -m tests.reliability.soak --minutes N``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streams.adapters.kafka_admin import create_topics
from tests.reliability.harness import workload_settings
from tests.reliability.scenario import crash_run

pytestmark = [pytest.mark.kafka, pytest.mark.ctmock, pytest.mark.slow]

KILLS = int(os.environ.get("STREAMS_CRASH_KILLS", "10"))
SEED = int(os.environ.get("STREAMS_CRASH_SEED", "4242"))


async def test_invariants_hold_after_repeated_sigkill(
    kafka: str, ct_api: str, tmp_path: Path
) -> None:
    s = workload_settings(kafka, tmp_path, ct_api, "crash")
    await create_topics(s)
    result = await crash_run(s, tmp_path, seed=SEED, kills=KILLS, progress=print)
    print(result.summary())  # the figures docs/reliability.md quotes (pytest -s)
    assert result.kills == KILLS
    assert result.alive
    assert result.agent_crashes == [], "\n".join(result.agent_crashes[:5])
    assert result.report.ok, result.report.summary()
