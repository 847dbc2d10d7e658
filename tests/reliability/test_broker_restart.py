"""Broker restart: a worker runs the mixed workload on a broker of its own; the broker is
stopped by pid mid-run (first with SIGTERM, then with SIGKILL: ``STREAMS_BROKER_OUTAGES``,
default 2) for ``STREAMS_BROKER_DOWN_S`` seconds (default 15) each and started again
on the same ports and data directory. The worker must recover by itself (same process, no
restart), drain its lag to 0, and the invariants of docs/reliability.md must hold.

The broker is dedicated (``streams.localkafka`` with its own directory and free ports): the
shared test broker is never touched.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from streams import localkafka
from streams.adapters.kafka_admin import create_topics
from streams.procutil import alive, reap
from streams.sandbox.amazon import SandboxControl, running_sandbox
from tests.reliability.group import agent_crashes, lag_total, sandbox_ack_contents, settle_group
from tests.reliability.harness import sandbox_port, workload_sandbox, workload_settings
from tests.reliability.scenario import Scenario, assigned, ready
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.ctmock, pytest.mark.slow]

DOWN_S = float(os.environ.get("STREAMS_BROKER_DOWN_S", "15"))
OUTAGES = int(os.environ.get("STREAMS_BROKER_OUTAGES", "2"))
SEED = int(os.environ.get("STREAMS_BROKER_SEED", "5151"))


async def test_worker_recovers_from_a_broker_restart(ct_api: str, tmp_path: Path) -> None:
    k = localkafka.LocalKafka(tmp_path / "kafka", free_port(), free_port(), heap="512m")
    await asyncio.to_thread(localkafka.up, k)
    try:
        await _run(k, ct_api, tmp_path)
    finally:
        await asyncio.to_thread(localkafka.down, k)


def stop_broker(k: localkafka.LocalKafka, hard: bool) -> None:
    """Stop the dedicated broker by its pid: SIGTERM and wait, or SIGKILL (a crash)."""
    if not hard:
        localkafka.down(k)
        return
    pid = localkafka.read_pid(k)
    assert pid is not None, "the dedicated broker is not running"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        reap(pid)
        time.sleep(0.1)
    k.pid_file.unlink(missing_ok=True)


async def _run(k: localkafka.LocalKafka, ct_api: str, tmp: Path) -> None:
    s = workload_settings(k.bootstrap, tmp, ct_api, "brk")
    await create_topics(s)
    config = workload_sandbox(s)
    rng = random.Random(SEED)
    started = time.monotonic()
    log = tmp / "worker.log"
    async with running_sandbox(config, port=sandbox_port(s)) as url:
        sc = Scenario(s, url, SEED)
        w = WorkerProcess(s, log)
        try:
            await sc.setup()
            w.start()
            await ready(w)
            pid = w.proc.pid if w.proc else None
            outages: list[tuple[bool, float]] = []
            for outage in range(OUTAGES):
                for _ in range(3):
                    await sc.step()
                await assigned(w)
                await asyncio.sleep(rng.uniform(0.2, 2.0))  # mid-batch / mid-send
                # first outage: SIGTERM (a controlled shutdown); then SIGKILL (a crash)
                hard = outage % 2 == 1
                await asyncio.to_thread(stop_broker, k, hard)
                t0 = time.monotonic()
                # the SP-API side keeps going: new POs wait at the sandbox for the poller,
                # which takes them in while the broker is away
                async with aiohttp.ClientSession() as http:
                    orders = [sc.order() for _ in range(3)]
                    await SandboxControl(url, http).add_orders(orders)
                sc.counts["purchase orders"] += len(orders)
                await asyncio.sleep(max(0.0, DOWN_S - (time.monotonic() - t0)))
                down_s = time.monotonic() - t0
                await asyncio.to_thread(localkafka.up, k)
                outages.append((hard, down_s))
                print(
                    f"outage {outage + 1} ({'SIGKILL' if hard else 'SIGTERM'}): broker away "
                    f"{down_s:.0f}s (+{time.monotonic() - t0 - down_s:.0f}s to restart), "
                    f"worker alive={w.proc is not None and w.proc.poll() is None}"
                )
                for _ in range(3):
                    await sc.step()
            report, lag = await settle_group(s, sc, url)
            acks = await sandbox_ack_contents(url)
            alive = w.proc is not None and w.proc.poll() is None
            same = w.proc is not None and w.proc.pid == pid
        finally:
            w.stop(timeout=15)
            await sc.close()
    crashes = agent_crashes(log)
    print(
        f"broker restart: {len(outages)} outage(s) "
        f"{[('SIGKILL' if h else 'SIGTERM', round(d)) for h, d in outages]} in "
        f"{time.monotonic() - started:.0f}s, workload {dict(sc.counts)}, lag "
        f"{lag_total(lag)}, invariants "
        f"{'hold' if report.ok else 'VIOLATED'} (checked {dict(report.checked)}), "
        f"agent crashes {len(crashes)}"
    )
    assert alive and same, f"the worker did not survive the broker restart:\n{w.tail()}"
    assert crashes == [], "\n".join(crashes[:5])
    assert lag_total(lag) == 0, lag
    assert report.ok, report.summary()
    missing = set(sc.po_numbers) - set(acks)
    assert not missing, f"POs the sandbox never got an acknowledgement for: {sorted(missing)}"
    assert all(len(c) == 1 for c in acks.values()), acks
