"""Watcher machinery (pure): the exceptions a watcher *wants* open (:class:`Want`), and
:func:`reconcile`, which turns the difference with the ``exceptions`` table into raise and
resolve records. :class:`Outbox` keeps a timer that ticks faster than the exceptions agent
applies from saying the same thing twice. The rules that produce wants are in
:mod:`streams.domain.watchers` (purchase orders) and :mod:`streams.domain.watch_health`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from streams.domain.exceptions import (
    KINDS,
    Refs,
    Severity,
    exception_id,
    raise_exception,
    to_record,
)


def iso(ts: float) -> str:
    """UTC ISO-8601 with milliseconds and Z, as every exception timestamp."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def default_severity(kind: str) -> Severity:
    return KINDS.get(kind, ("operations", "warning"))[1]


def scoped_id(kind: str, refs: Refs, scope: str | None) -> str:
    """The exception id; ``scope`` names what refs cannot (a flow, a DLQ topic, a worker)."""
    if scope is None:
        return exception_id(kind, refs)
    basis = f"{exception_id(kind, refs)}|scope={scope}"
    return f"{kind}:{hashlib.sha1(basis.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class Want:
    """An exception that should be open now, at ``severity`` (None: the kind's default)."""

    kind: str
    refs: Refs
    cause: str
    severity: Severity | None = None
    scope: str | None = None
    # keep it open if it is, but raise nothing yet (its raiser's own record may be on its way)
    keep_only: bool = False
    # why, as a stable key: a new reason raises it again with the new root cause (the text
    # itself may change every tick, e.g. "20.1 h ago")
    reason: str | None = None

    @property
    def id(self) -> str:
        return scoped_id(self.kind, self.refs, self.scope)

    @property
    def level(self) -> Severity:
        return self.severity or default_severity(self.kind)

    def record(self, now: float) -> dict[str, Any]:
        rec = to_record(raise_exception(self.kind, self.refs, self.cause, iso(now),
                                        severity=self.level))  # fmt: skip
        rec["id"] = self.id
        if self.scope is not None:
            rec["scope"] = self.scope
        if self.reason is not None:
            rec["reason"] = self.reason
        return rec

    @property
    def signature(self) -> tuple[str, str, str]:
        return ("open", self.level, self.reason or "")


def resolution(stored: Mapping[str, Any], now: float, why: str) -> dict[str, Any]:
    """The record that resolves ``stored`` (same id), saying why."""
    return {**stored, "status": "resolved", "lastSeen": iso(now), "resolution": why}


def parse_iso(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def signature(rec: Mapping[str, Any] | None) -> tuple[str, str, str] | None:
    if rec is None:
        return None
    return (str(rec.get("status")), str(rec.get("severity")), str(rec.get("reason") or ""))


@dataclass
class Outbox:
    """What this worker sent and the table does not show yet (id -> (signature, sent at)).

    A watcher ticks again before the exceptions agent has applied its last record; without
    this it would raise the same exception twice (count + 1). An entry is dropped once the
    table shows it, and resent after ``ttl_s`` if the table never does.
    """

    ttl_s: float = 600.0
    sent: dict[str, tuple[tuple[str, ...], float]] = field(default_factory=dict)

    def due(
        self, exc_id: str, want: tuple[str, ...], table: tuple[str, ...] | None, now: float
    ) -> bool:
        if table == want:
            self.sent.pop(exc_id, None)
            return False
        prev = self.sent.get(exc_id)
        if prev is not None and prev[0] == want and now - prev[1] < self.ttl_s:
            return False
        self.sent[exc_id] = (want, now)
        return True

    def prune(self, now: float) -> None:
        """Forget what was sent longer than ``ttl_s`` ago (e.g. deleted records)."""
        for exc_id in [k for k, (_, at) in self.sent.items() if now - at >= self.ttl_s]:
            del self.sent[exc_id]


def reconcile(
    wants: Iterable[Want],
    judged_open: Iterable[Mapping[str, Any]],
    lookup: Callable[[str], Mapping[str, Any] | None],
    now: float,
    outbox: Outbox,
    why_resolved: Callable[[Mapping[str, Any]], str],
) -> list[dict[str, Any]]:
    """Records to send: a raise for every wanted exception the table does not show open at
    its severity, a resolution for every open one in ``judged_open`` no longer wanted."""
    out: list[dict[str, Any]] = []
    wanted: dict[str, Want] = {w.id: w for w in wants}
    for exc_id, w in wanted.items():
        if w.keep_only:
            continue
        if outbox.due(exc_id, w.signature, signature(lookup(exc_id)), now):
            out.append(w.record(now))
    for rec in judged_open:
        exc_id = str(rec.get("id"))
        if exc_id in wanted or rec.get("status") != "open":
            continue
        resolved = ("resolved", str(rec.get("severity")), str(rec.get("reason") or ""))
        if outbox.due(exc_id, resolved, signature(rec), now):
            out.append(resolution(rec, now, why_resolved(rec)))
    return out
