"""Liveness and readiness for people and for orchestrators' probes.

    GET /livez    200 while the event loop turns: a heartbeat timer stamps the time every
                  second; 503 once the stamp is older than ``LIVENESS_STALL_S`` (the loop is
                  blocked or starved: restart the process)
    GET /readyz   200 when the tables' recovery is done, no rebalance runs and Kafka
                  answered a metadata request within ``KAFKA_STALE_S``; 503 otherwise, the
                  body says which check failed (and how many changelog records are left)
    GET /health   as before (200, ``{"status": "ok", "rebalancing": ...}``) plus ``ready``

Before Faust starts, the bulk restore (:mod:`streams.restore`) can take minutes; during it
:func:`serving_during_restore` answers on the same address: ``/livez`` 200, ``/readyz`` and
``/health`` 503 with the restore's progress, ``/metrics``. Nothing here needs a token (a
probe carries none); no answer holds a secret.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from streams.config import Settings

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
# a loop that has not turned for this long is stuck (Faust's own timers warn at far less)
LIVENESS_STALL_S = 30.0
KAFKA_PROBE_S = 10.0
KAFKA_PROBE_TIMEOUT_S = 5.0
# two probes missed in a row: not a single slow answer
KAFKA_STALE_S = 2 * KAFKA_PROBE_S + KAFKA_PROBE_TIMEOUT_S

T = TypeVar("T")


# --- the rules (pure) --------------------------------------------------------------------


def liveness(now: float, last_beat: float, stall_s: float = LIVENESS_STALL_S) -> tuple[int, dict]:
    age = max(0.0, now - last_beat)
    alive = age <= stall_s
    body = {"status": "alive" if alive else "stalled", "heartbeatAgeSeconds": round(age, 3)}
    return (200 if alive else 503), body


@dataclass(frozen=True)
class WorkerState:
    """What readiness is judged on, read from the running app."""

    recovered: bool  # the tables' recovery completed at least once
    in_recovery: bool  # recovering (again, after a rebalance)
    rebalancing: bool
    remaining: int | None  # changelog records the active partitions still have to read
    kafka_ok_age: float | None  # seconds since Kafka last answered (None: never yet)
    kafka_error: str | None  # the last probe's error, if it failed


def readiness(st: WorkerState, stale_s: float = KAFKA_STALE_S) -> tuple[int, dict]:
    reasons = []
    if not st.recovered or st.in_recovery:
        left = f": {st.remaining:,} changelog records left" if st.remaining else ""
        reasons.append(f"recovering tables{left}")
    if st.rebalancing:
        reasons.append("rebalancing")
    reachable = st.kafka_ok_age is not None and st.kafka_ok_age <= stale_s
    if not reachable:
        if st.kafka_ok_age is None:
            why = st.kafka_error or "not probed yet"
            reasons.append(f"Kafka not reachable ({why})")
        else:
            reasons.append(
                f"Kafka not reachable for {st.kafka_ok_age:.0f} s ({st.kafka_error or 'no answer'})"
            )
    body = {
        "status": "ready" if not reasons else "not ready",
        "reasons": reasons,
        "checks": {
            "recovery": {
                "done": st.recovered and not st.in_recovery,
                "remainingRecords": st.remaining,
            },
            "rebalancing": st.rebalancing,
            "kafka": {
                "reachable": reachable,
                "lastAnswerSecondsAgo": None
                if st.kafka_ok_age is None
                else round(st.kafka_ok_age, 1),
                "error": st.kafka_error,
            },
        },
    }
    return (200 if not reasons else 503), body


@dataclass
class RestoreProgress:
    """The bulk restore's progress, as :func:`streams.restore.restore_tables` advances it."""

    tables: list[str] = field(default_factory=list)
    table: str | None = None  # being read now
    tables_done: int = 0
    records: int = 0  # read so far from the current table's changelog
    records_total: int = 0  # to read from it (its partitions' ends at the start)
    records_done_before: int = 0  # read from the tables finished before it
    started: float = field(default_factory=time.monotonic)

    def start_table(self, table: str, total: int) -> None:
        self.table, self.records, self.records_total = table, 0, total

    def finish_table(self) -> None:
        self.records_done_before += self.records
        self.tables_done += 1
        self.table, self.records, self.records_total = None, 0, 0

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        elapsed = (now if now is not None else time.monotonic()) - self.started
        pct = 100.0 * self.records / self.records_total if self.records_total else None
        return {
            "status": "restoring",
            "phase": "bulk-restore",
            "reasons": ["bulk restore of the tables from their changelogs"],
            "tables": self.tables,
            "tablesDone": self.tables_done,
            "table": self.table,
            "tableRecords": self.records,
            "tableRecordsTotal": self.records_total,
            "tablePercent": None if pct is None else round(pct, 1),
            "recordsRestored": self.records_done_before + self.records,
            "elapsedSeconds": round(elapsed, 1),
        }


# --- the running worker -------------------------------------------------------------------


class Health:
    """Heartbeat and Kafka probe of a running worker; answers the probe endpoints."""

    def __init__(
        self,
        app: Any,
        *,
        clock: Callable[[], float] = time.monotonic,
        kafka_probe: Callable[[], Awaitable[Any]],
    ) -> None:
        self.app = app
        self.clock = clock
        self.last_beat = clock()
        self.kafka_ok_at: float | None = None
        self.kafka_error: str | None = None
        self._probe = kafka_probe

    def beat(self) -> None:
        self.last_beat = self.clock()

    async def probe_kafka(self) -> None:
        try:
            await asyncio.wait_for(self._probe(), KAFKA_PROBE_TIMEOUT_S)
        except Exception as exc:  # any failure is "not reachable"; the next probe tries again
            name, text = type(exc).__name__, str(exc)
            # aiokafka's errors already start with their class name
            self.kafka_error = text if text.startswith(name) else f"{name}: {text}".rstrip(": ")
            log.debug("kafka probe failed: %s", self.kafka_error)
        else:
            self.kafka_ok_at, self.kafka_error = self.clock(), None

    def state(self) -> WorkerState:
        app = self.app
        recovery = getattr(getattr(app, "tables", None), "recovery", None)
        recovered = bool(recovery is not None and recovery.completed.is_set())
        remaining = recovery_remaining(app)
        now = self.clock()
        return WorkerState(
            recovered=recovered,
            in_recovery=bool(getattr(app, "in_recovery", False)),
            rebalancing=bool(getattr(app, "rebalancing", False)),
            remaining=remaining,
            kafka_ok_age=None if self.kafka_ok_at is None else now - self.kafka_ok_at,
            kafka_error=self.kafka_error,
        )

    def live(self) -> tuple[int, dict]:
        return liveness(self.clock(), self.last_beat)

    def ready(self) -> tuple[int, dict]:
        return readiness(self.state())


def recovery_remaining(app: Any) -> int | None:
    """Changelog records the tables' recovery still has to apply; None before it knows."""
    recovery = getattr(getattr(app, "tables", None), "recovery", None)
    if recovery is None:
        return None
    try:
        return int(recovery.active_remaining_total())
    except Exception:  # highwaters not known yet
        return None


def register(app: Any, kafka_probe: Callable[[], Awaitable[Any]]) -> Health:
    """The heartbeat and Kafka probe tasks and the /livez, /readyz, /health pages;
    ``kafka_probe`` is one cheap request to the broker (raises when it is unreachable)."""
    from streams.adapters.codecs import dumps

    health = Health(app, kafka_probe=kafka_probe)

    # plain tasks, not Faust timers: they run from the app's start, recovery included
    @app.task
    async def heartbeat() -> None:
        while True:
            health.beat()
            await asyncio.sleep(HEARTBEAT_S)

    @app.task
    async def kafka_probe_loop() -> None:
        while True:
            await health.probe_kafka()
            await asyncio.sleep(KAFKA_PROBE_S)

    def reply(view: Any, answer: tuple[int, dict]) -> Any:
        status, body = answer
        return view.bytes(dumps(body), content_type="application/json", status=status)

    @app.page("/livez", name="health_livez")
    async def livez(view: Any, request: Any) -> Any:
        return reply(view, health.live())

    @app.page("/readyz", name="health_readyz")
    async def readyz(view: Any, request: Any) -> Any:
        return reply(view, health.ready())

    @app.page("/health", name="health_compat")
    async def compat(view: Any, request: Any) -> Any:
        # the old answer, kept: 200 whenever the web server runs
        ready = health.ready()[0] == 200
        return view.json({"status": "ok", "rebalancing": bool(app.rebalancing), "ready": ready})

    return health


# --- during the bulk restore --------------------------------------------------------------


async def serving_during_restore(
    settings: Settings, progress: RestoreProgress, work: Coroutine[Any, Any, T]
) -> T:
    """Run ``work`` (the bulk restore) while a small server on the worker's web address
    answers the probes with its progress; the server is gone when this returns, before
    Faust binds the same port. A port taken or refused only costs the answers."""
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from streams.adapters.codecs import dumps
    from streams.observability.metrics import REGISTRY

    def restoring(request: web.Request) -> web.Response:
        return web.Response(
            body=dumps(progress.to_json()), content_type="application/json", status=503
        )

    async def livez(request: web.Request) -> web.Response:
        body = {"status": "alive", "heartbeatAgeSeconds": 0.0, "phase": "bulk-restore"}
        return web.Response(body=dumps(body), content_type="application/json")

    async def readyz(request: web.Request) -> web.Response:
        return restoring(request)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0]
        )

    server = web.Application()
    server.router.add_get("/livez", livez)
    server.router.add_get("/readyz", readyz)
    server.router.add_get("/health", readyz)
    server.router.add_get("/metrics", metrics)
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.web_host, settings.web_port, reuse_address=True)
        await site.start()
    except OSError as exc:
        log.warning(
            "bulk restore: probes not served on %s:%s (%s)",
            settings.web_host,
            settings.web_port,
            exc,
        )
    try:
        return await work
    finally:
        await runner.cleanup()
