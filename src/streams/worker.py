"""``streams worker``: check the topics, then run the Faust app until stopped."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from streams.config import Settings

log = logging.getLogger(__name__)


def arm_shutdown_watchdog(
    grace_s: float, exit_now: Callable[[int], Any] = os._exit
) -> threading.Timer | None:
    """Exit the process ``grace_s`` after a stop signal if the orderly stop has not ended
    by then. A stop step that hangs (a producer flush waiting on a batch that never goes
    out, seen once in a demo run) must not keep a worker, its pod or a script waiting for
    ever; exiting here is what a SIGKILL would do, and every step is crash-safe."""
    if grace_s <= 0:
        return None

    def fire() -> None:
        log.warning(
            "stop took longer than STREAMS_SHUTDOWN_GRACE_S=%gs: exiting now (as after a "
            "SIGKILL; the next start resumes from the committed offsets)", grace_s
        )  # fmt: skip
        logging.shutdown()
        exit_now(70)

    timer = threading.Timer(grace_s, fire)
    timer.daemon = True
    timer.start()
    return timer


def run_worker(settings: Settings) -> int:
    from faust.worker import Worker

    from streams.adapters.commercetools import CommercetoolsClient
    from streams.adapters.kafka_admin import check_topics
    from streams.app import create_app
    from streams.observability import metrics as M
    from streams.observability.logging import setup_logging
    from streams.observability.metrics import CtResponses
    from streams.runtime import gcpolicy

    # log level and format as before, plus redaction of secrets and personal data
    setup_logging(settings)
    # before the app is built: start-up and recovery allocate the most
    gc_tuned = gcpolicy.tune(settings.gc_young_threshold)
    gcpolicy.meter_pauses(M.GC_PAUSE.inc)
    problems = asyncio.run(check_topics(settings))
    if problems:
        for p in problems:
            print(f"topic {p.topic}: {p.problem}", file=sys.stderr)
        print("refusing to start: fix the topics above (streams topics create)", file=sys.stderr)
        return 2
    # the commercetools client resolves notifications without payload
    reader = CommercetoolsClient(settings, hooks=CtResponses())
    app = create_app(settings, inventory_reader=reader)
    if settings.bulk_restore:  # the changelogs into RocksDB, far faster than Faust's recovery
        from streams.restore import bulk_restore

        bulk_restore(app, settings)
    from streams.observability.logging import json_logging_config

    logging_config = (
        json_logging_config(settings.log_level) if settings.log_format == "json" else None
    )
    grace = settings.shutdown_grace_s

    class BoundedWorker(Worker):  # type: ignore[misc]
        def _schedule_shutdown(self, signal: Any) -> None:
            if not self._signal_stop_time:
                arm_shutdown_watchdog(grace)
            super()._schedule_shutdown(signal)

        async def on_startup_finished(self) -> None:
            await super().on_startup_finished()
            if gc_tuned:  # what start-up built lives as long as the process
                frozen = gcpolicy.freeze_startup_heap()
                M.GC_FROZEN.set(frozen)
                log.info("gc: %d start-up objects frozen, young threshold %d", frozen,
                         settings.gc_young_threshold)  # fmt: skip

    worker = BoundedWorker(
        app,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
        logging_config=logging_config,
    )
    # Faust's terminal spinner sets the root logger to DEBUG at WARNING and above: every
    # library debug call would then build a log record (~10% CPU measured)
    worker.spinner = None
    worker.execute_from_commandline()
    return 0
