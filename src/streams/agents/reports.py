"""What every flow reports the same way: owned exceptions to ``ops.exceptions`` and bad input
to its ``<topic>.dlq``. One copy here instead of a ``_exception`` / ``_dead_letter`` per flow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from streams.adapters.codecs import dumps, utc_iso
from streams.agents.faustutil import dead_letter
from streams.domain.exceptions import (
    OpsException,
    Owner,
    Refs,
    Severity,
    raise_exception,
    to_record,
)
from streams.observability import metrics as M


def internal_error(exc: BaseException) -> str:
    """The dead-letter reason for a bug: a record is never lost to one."""
    return f"internal error: {type(exc).__name__}: {exc}"[:300]


class ExceptionReporter:
    """A flow's owned exceptions: built with the flow's clock (and its owner/severity per kind
    when it overrides the defaults), counted in ``streams_exceptions_total``, optionally
    logged, sent keyed by exception id."""

    def __init__(
        self,
        topic: Any,
        clock: Callable[[], float],
        *,
        kinds: Mapping[str, tuple[Owner, Severity]] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.topic = topic
        self.clock = clock
        self.kinds = kinds or {}
        self.log = log

    def record(
        self, kind: str, refs: Refs, cause: str, *, status: str = "open"
    ) -> tuple[OpsException, bytes, bytes]:
        """The exception, its key and the record to send (for a flow that batches sends)."""
        owner, severity = self.kinds.get(kind, (None, None))
        exc = raise_exception(
            kind, refs, cause, utc_iso(self.clock()), owner=owner, severity=severity
        )
        rec = to_record(exc)
        rec["status"] = status
        M.EXCEPTIONS.labels(kind, exc.owner, status).inc()
        if self.log is not None and status == "open":
            self.log.warning("%s: %s", kind, cause[:500])
        return exc, exc.id.encode(), dumps(rec)

    async def send(self, kind: str, refs: Refs, cause: str, *, status: str = "open") -> Any:
        exc, key, value = self.record(kind, refs, cause, status=status)
        await self.topic.send(key=key, value=value)
        return exc


class DeadLetters:
    """A flow's dead-letter topic: the raw record with the reason (``faustutil.dead_letter``),
    counted as a ``dlq`` outcome of ``source`` in ``streams_records_total`` when given."""

    def __init__(
        self,
        dlq: Any,
        clock: Callable[[], float],
        *,
        source: str | None = None,
        declare: bool = False,
    ) -> None:
        self.dlq = dlq
        self.clock = clock
        self.source = source
        self._declare = declare  # create the topic on first use when it is missing

    async def send(self, event: Any, error: str) -> Any:
        """Returns the send's result (a future a batching flow may wait on)."""
        if self._declare:
            await self.dlq.maybe_declare()
            self._declare = False
        if self.source is not None:
            M.RECORDS.labels(self.source, "dlq").inc()
        return await dead_letter(self.dlq, event, error, self.clock())
