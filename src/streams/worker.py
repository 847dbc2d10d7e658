"""``streams worker``: check the topics, then run the Faust app until stopped."""

from __future__ import annotations

import asyncio
import sys

from streams.config import Settings


def run_worker(settings: Settings) -> int:
    from faust.worker import Worker

    from streams.adapters.commercetools import CommercetoolsClient
    from streams.adapters.kafka_admin import check_topics
    from streams.app import create_app
    from streams.observability.logging import setup_logging
    from streams.observability.metrics import CtResponses

    # log level and format as before, plus redaction of secrets and personal data
    setup_logging(settings)
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
    worker = Worker(
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
