"""Crash test: a mixed workload (stock changes through the commercetools emulator, master-data
changes, purchase orders from the SP-API sandbox) while the worker is SIGKILLed at random
points, restarted each time; at the end the invariants of DESIGN.md section 4 hold.

``STREAMS_CRASH_KILLS`` (default 10) and ``STREAMS_CRASH_SEED`` tune it; for a long run use
``python -m tests.reliability.soak --minutes N``.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from streams.adapters.kafka_admin import create_topics
from tests.reliability.scenario import crash_run
from tests.support.kafka import unique_settings
from tests.support.services import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.ctmock, pytest.mark.slow]

KILLS = int(os.environ.get("STREAMS_CRASH_KILLS", "10"))
SEED = int(os.environ.get("STREAMS_CRASH_SEED", "4242"))


async def test_invariants_hold_after_repeated_sigkill(
    kafka: str, ct_api: str, tmp_path: Path
) -> None:
    sandbox = f"http://127.0.0.1:{free_port()}"
    s = unique_settings(
        kafka,
        tmp_path,
        web_port=free_port(),
        broker_session_timeout_s=6.0,  # the broker's minimum: a killed member leaves fast
        debounce_window_s=0.2,
        debounce_max_wait_s=1.0,
        debounce_tick_s=0.1,
        po_poll_interval_s=1.0,
        tx_poll_interval_s=0.5,
        ct_api_url=ct_api,
        ct_auth_url=ct_api,
        ct_project_key=f"crash-{uuid.uuid4().hex[:10]}",
        spapi_endpoint=sandbox,
        spapi_lwa_url=f"{sandbox}/auth/o2/token",
    )
    await create_topics(s)
    result = await crash_run(s, tmp_path, seed=SEED, kills=KILLS, progress=print)
    print(result.summary())  # the figures docs/reliability.md quotes (pytest -s)
    assert result.kills == KILLS
    assert result.alive
    assert result.agent_crashes == [], "\n".join(result.agent_crashes[:5])
    assert result.report.ok, result.report.summary()
