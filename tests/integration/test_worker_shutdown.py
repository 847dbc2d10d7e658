"""A real worker process, stopped with SIGTERM, exits within ``STREAMS_SHUTDOWN_GRACE_S``
(the watchdog is wired into the worker's stop signal), and with the default grace its
orderly stop ends by itself (exit 0)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from streams.adapters.kafka_admin import create_topics
from tests.support.e2e import e2e_settings
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.kafka]


async def stop_and_time(w: WorkerProcess) -> tuple[int, float]:
    assert w.proc is not None
    started = time.monotonic()
    os.killpg(w.proc.pid, signal.SIGTERM)
    code = w.proc.wait(60)
    return code, time.monotonic() - started


async def test_a_stop_longer_than_the_grace_ends_in_an_exit(kafka: str, tmp_path: Path) -> None:
    # a grace shorter than any orderly stop (leave the groups, close RocksDB): the watchdog
    s = e2e_settings(kafka, tmp_path, shutdown_grace_s=0.01)
    await create_topics(s)
    w = WorkerProcess(s, tmp_path / "worker.log").start()
    w.wait_ready(90)
    code, took = await stop_and_time(w)
    assert code == 70, w.tail()
    assert took < 10
    assert "STREAMS_SHUTDOWN_GRACE_S" in w.tail(200)


async def test_an_orderly_stop_within_the_grace_exits_cleanly(kafka: str, tmp_path: Path) -> None:
    s = e2e_settings(kafka, tmp_path)
    await create_topics(s)
    w = WorkerProcess(s, tmp_path / "worker.log").start()
    w.wait_ready(90)
    code, took = await stop_and_time(w)
    assert code == 0, w.tail()
    assert took < s.shutdown_grace_s
