"""``streams resync commercetools``: compare commercetools' inventory with the worker's state.

The worker's per-SKU state lives in its table ``skus``, whose changelog topic
``<app_id>-skus-changelog`` holds every write (key = SKU, value = ``SkuState.to_dict()`` as
JSON). The changelog is read first (latest value per key), then every inventory entry is
paged from commercetools, so a state version can only legitimately be at or behind what
commercetools shows. Entries that differ are listed; with ``apply`` each is published to
``ct.messages`` as a commercetools ``ResourceUpdated`` change notification (``ResourceDeleted``
for entries gone from commercetools), so the normal ingest path reads the entry and repairs
the state with commercetools' own version ordering: no second write path into the state.

:class:`Reconciler` does the same check for a bounded slice of entries per call, for a
timer inside the worker (see its docstring for wiring).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from streams.adapters.codecs import dumps, loads, utc_iso
from streams.adapters.commercetools import CommercetoolsClient
from streams.adapters.kafka_admin import client_kwargs
from streams.config import Settings
from streams.domain.ctmessages import INVENTORY
from streams.domain.inventory import SkuState
from streams.domain.inventory_commands import entry_channel
from streams.observability import metrics as M

Publish = Callable[[bytes, bytes], Awaitable[Any]]


@dataclass(frozen=True)
class Difference:
    sku: str
    channel: str
    entry_id: str
    ct_available: int | None  # None: the entry is gone from commercetools
    state_available: int | None  # None: the state does not know the entry
    ct_version: int | None
    state_version: int | None
    reason: str
    # the ingest path can repair it (the state is behind, or knows a wrong entry); a state
    # AHEAD of commercetools (same or newer version, other figures) needs a person
    repairable: bool = True


@dataclass
class ResyncReport:
    entries: int = 0
    skus_in_state: int = 0
    differences: list[Difference] = field(default_factory=list)
    published: int = 0

    @property
    def repairable(self) -> list[Difference]:
        return [d for d in self.differences if d.repairable]


# --- comparison (pure) -----------------------------------------------------------------------
def compare_entry(entry: dict[str, Any], state: SkuState | None) -> Difference | None:
    """How ``state`` disagrees with one entry as commercetools returned it, if it does."""
    sku = str(entry["sku"])
    ch = entry_channel(entry)
    eid = str(entry["id"])
    version = int(entry["version"])
    available = int(entry["availableQuantity"])
    on_stock = int(entry["quantityOnStock"])
    cur = state.channels.get(ch) if state is not None else None
    if cur is None:
        return Difference(sku, ch, eid, available, None, version, None, "missing in state")

    def differs(reason: str, repairable: bool = True) -> Difference:
        assert cur is not None
        return Difference(
            sku, ch, eid, available, cur.available, version, cur.version, reason, repairable
        )

    if cur.entry_id != eid:
        return differs(f"state holds entry {cur.entry_id}")
    if cur.available == available and cur.on_stock == on_stock:
        return None
    if cur.version < version:
        return differs("quantity differs")
    return differs("state not behind commercetools but shows other figures", repairable=False)


def resource_updated(entry: dict[str, Any], project_key: str, now: float) -> dict[str, Any]:
    """The change notification commercetools would send for this entry (Platform format)."""
    return {
        "notificationType": "ResourceUpdated",
        "projectKey": project_key,
        "resource": {"typeId": INVENTORY, "id": str(entry["id"])},
        "resourceUserProvidedIdentifiers": {"sku": str(entry["sku"])},
        "version": int(entry["version"]),
        "modifiedAt": utc_iso(now),
    }


def resource_deleted(d: Difference, project_key: str, now: float) -> dict[str, Any]:
    # the state's own version: the ingest applies a delete that is not older than it knows
    return {
        "notificationType": "ResourceDeleted",
        "projectKey": project_key,
        "resource": {"typeId": INVENTORY, "id": d.entry_id},
        "resourceUserProvidedIdentifiers": {"sku": d.sku},
        "version": d.state_version or 0,
        "modifiedAt": utc_iso(now),
    }


# --- the worker's state, from its changelog ----------------------------------------------
def changelog_topic(s: Settings) -> str:
    return f"{s.app_id}-skus-changelog"


async def read_states(
    s: Settings, on_progress: Callable[[int, int], None] | None = None
) -> dict[str, SkuState]:
    """Latest ``SkuState`` per SKU from the ``skus`` changelog (compacted semantics:
    the last value per key wins, a tombstone deletes). ``on_progress(done, total)``."""
    topic = changelog_topic(s)
    admin = AIOKafkaAdminClient(**client_kwargs(s))
    await admin.start()
    try:
        meta = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if not meta or meta[0].get("error_code", 0) != 0:
        return {}  # no worker has written state yet
    tps = [TopicPartition(topic, p["partition"]) for p in meta[0]["partitions"]]
    # "earliest": an automatic offset reset racing the seek below must not jump to the end
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False, auto_offset_reset="earliest", **client_kwargs(s)
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        start = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        total = sum(end[tp] - start[tp] for tp in tps)
        for tp in tps:
            consumer.seek(tp, start[tp])
        raw: dict[bytes, bytes | None] = {}
        done = 0
        todo = {tp for tp in tps if end[tp] > start[tp]}
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=500)
            for tp, msgs in batch.items():
                for m in msgs:
                    if m.offset < end[tp] and m.key is not None:
                        raw[m.key] = m.value
                        done += 1
                if msgs and msgs[-1].offset >= end[tp] - 1:
                    todo.discard(tp)
            for tp in list(todo):  # compaction can leave the last offsets empty
                if await consumer.position(tp) >= end[tp]:
                    todo.discard(tp)
            if on_progress is not None:
                on_progress(done, total)
    finally:
        await consumer.stop()
    states: dict[str, SkuState] = {}
    for value in raw.values():
        if value is not None:
            state = SkuState.from_dict(loads(value))
            states[state.sku] = state
    return states


# --- the full resync -------------------------------------------------------------------------
async def resync(
    s: Settings,
    *,
    apply: bool,
    out: Console | None = None,
    err: Console | None = None,
    client: CommercetoolsClient | None = None,
) -> ResyncReport:
    """Compare everything; print the differences; publish repairs when ``apply``."""
    out = out or Console()
    err = err or Console(stderr=True)
    report = ResyncReport()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )
    own_client = client is None
    ct = client or CommercetoolsClient(s)
    try:
        with progress:
            t_state = progress.add_task("worker state", total=None, note="")

            def state_progress(done: int, total: int) -> None:
                progress.update(t_state, completed=done, total=total, note="changelog records")

            states = await read_states(s, state_progress)
            report.skus_in_state = len(states)
            progress.update(t_state, note=f"{len(states)} SKUs")

            t_ct = progress.add_task("commercetools", total=None, note="")
            seen: set[str] = set()
            async for entry in ct.query_inventory():
                report.entries += 1
                seen.add(str(entry["id"]))
                d = compare_entry(entry, states.get(str(entry["sku"])))
                if d is not None:
                    report.differences.append(d)
                progress.update(
                    t_ct, completed=report.entries, note=f"{len(report.differences)} differ"
                )
            progress.update(t_ct, total=report.entries)

            # entries the state holds that the scan did not return: confirm they are gone
            for state in states.values():
                for ch, e in state.channels.items():
                    if e.entry_id in seen or await ct.get_inventory_entry(e.entry_id):
                        continue
                    gone = Difference(
                        sku=state.sku,
                        channel=ch,
                        entry_id=e.entry_id,
                        ct_available=None,
                        state_available=e.available,
                        ct_version=None,
                        state_version=e.version,
                        reason="missing in commercetools",
                    )
                    report.differences.append(gone)
        report.differences.sort(key=lambda d: (d.sku, d.channel, d.entry_id))
        if apply and report.repairable:
            report.published = await _publish_repairs(s, report.repairable)
    finally:
        if own_client:
            await ct.close()
    _print(out, s, report, apply)
    return report


async def _publish_repairs(s: Settings, diffs: list[Difference]) -> int:
    producer = AIOKafkaProducer(**client_kwargs(s), linger_ms=5, acks="all")
    await producer.start()
    sent = 0
    try:
        for d in diffs:
            now = time.time()
            if d.ct_version is None:
                value = resource_deleted(d, s.ct_project_key, now)
            else:
                value = resource_updated(
                    {"id": d.entry_id, "sku": d.sku, "version": d.ct_version}, s.ct_project_key, now
                )
            await producer.send(s.topic_ct_messages, key=d.sku.encode(), value=dumps(value))
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def _print(out: Console, s: Settings, report: ResyncReport, apply: bool) -> None:
    if report.differences:
        table = Table(title="commercetools vs worker state: differences")
        for name, justify in (
            ("SKU", "left"),
            ("channel", "left"),
            ("entry", "left"),
            ("ct available", "right"),
            ("state available", "right"),
            ("ct version", "right"),
            ("state version", "right"),
            ("difference", "left"),
        ):
            table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for d in report.differences:
            table.add_row(
                d.sku,
                d.channel or "(none)",
                d.entry_id,
                _num(d.ct_available),
                _num(d.state_available),
                _num(d.ct_version),
                _num(d.state_version),
                d.reason if d.repairable else f"{d.reason} (not repairable by resync)",
            )
        out.print(table)
    n, r = len(report.differences), len(report.repairable)
    out.print(
        f"{report.entries} inventory entries in commercetools, {report.skus_in_state} SKUs in "
        f"the worker state: {n} differ ({r} repairable, {n - r} need a person)"
    )
    if apply:
        out.print(f"published {report.published} change notifications to {s.topic_ct_messages}")
    elif r:
        out.print("run with --apply to publish them for the worker to re-read")


def _num(v: int | None) -> str:
    return "-" if v is None else str(v)


def run_resync(settings: Settings, *, apply: bool) -> int:
    """CLI entry: 0 = in sync (or every difference was published for repair), 1 = not."""
    report = asyncio.run(resync(settings, apply=apply))
    if not report.differences:
        return 0
    if apply and len(report.repairable) == len(report.differences):
        return 0
    return 1


# --- periodic reconciliation inside the worker ---------------------------------------------
@dataclass
class SliceReport:
    checked: int = 0
    differences: list[Difference] = field(default_factory=list)
    published: int = 0
    wrapped: bool = False  # the slice reached the last entry; the next starts over


class Reconciler:
    """Checks ``batch`` inventory entries per :meth:`tick` (cursor = last entry id), and
    publishes a ``ResourceUpdated`` to ``ct.messages`` for each one the worker's state has
    wrong; the ingest repairs it. It catches lost notifications and order-driven stock
    changes commercetools does not message. Entries deleted from commercetools are left to
    the full resync (this side sees only entries that exist).

    Wiring, in ``create_app`` after the flows (``inventory`` = the InventoryFlow)::

        from streams.resync import Reconciler, worker_views

        reconciler = Reconciler(s)
        state_of, owns = worker_views(app, inventory.skus, inventory.sku_topic, s.partitions)

        @app.timer(s.reconcile_interval_s, name="reconcile")
        async def reconcile() -> None:
            if not app.rebalancing:
                await reconciler.tick(
                    state_of, owns,
                    lambda key, value: inventory.ct_topic.send(key=key, value=value),
                )

        app.on_before_shutdown.connect(reconciler.on_shutdown)

    Every worker pages through all entries and checks the SKUs whose partition it owns.
    """

    def __init__(self, settings: Settings, client: CommercetoolsClient | None = None) -> None:
        self.settings = settings
        self.batch = settings.reconcile_batch
        self.cursor: str | None = None
        self._client = client
        self._own_client = client is None

    @property
    def client(self) -> CommercetoolsClient:
        if self._client is None:
            self._client = CommercetoolsClient(self.settings, hooks=M.CtResponses())
        return self._client

    async def on_shutdown(self, *args: Any, **kwargs: Any) -> None:
        if self._own_client and self._client is not None:
            await self._client.close()
            self._client = None

    async def _slice(self) -> AsyncIterator[dict[str, Any]]:
        where: str | None = None
        variables: dict[str, str] | None = None
        if self.cursor is not None:
            where, variables = "id > :after", {"after": self.cursor}
        page = min(500, max(20, self.batch))
        n = 0
        entries = cast(
            "AsyncGenerator[dict[str, Any], None]",
            self.client.query_inventory(where, variables, limit=page),
        )
        async with aclosing(entries) as it:
            async for entry in it:
                yield entry
                n += 1
                if n >= self.batch:
                    return

    async def tick(
        self,
        state_of: Callable[[str], SkuState | None],
        owns: Callable[[str], bool],
        publish: Publish,
    ) -> SliceReport:
        rep = SliceReport()
        last: str | None = None
        seen = 0
        now = time.time()
        async for entry in self._slice():
            seen += 1
            last = str(entry["id"])
            sku = str(entry["sku"])
            if not owns(sku):
                continue
            rep.checked += 1
            d = compare_entry(entry, state_of(sku))
            if d is None:
                M.RECONCILE.labels("in_sync").inc()
                continue
            M.RECONCILE.labels("differs").inc()
            rep.differences.append(d)
            if d.repairable:
                value = dumps(resource_updated(entry, self.settings.ct_project_key, now))
                await publish(sku.encode(), value)
                rep.published += 1
                M.RECONCILE.labels("published").inc()
        # a short slice reached the last entry: start from the first one next time
        rep.wrapped = seen < self.batch
        self.cursor = None if rep.wrapped else last
        return rep


def worker_views(
    app: Any, table: Any, sku_topic: Any, partitions: int
) -> tuple[Callable[[str], SkuState | None], Callable[[str], bool]]:
    """``state_of(sku)`` from the worker's ``skus`` table and ``owns(sku)``: whether this
    worker holds the SKU's partition (actively, not as a standby) right now."""
    topic = sku_topic.get_topic_name() if hasattr(sku_topic, "get_topic_name") else str(sku_topic)
    all_partitions = list(range(partitions))
    partitioner = DefaultPartitioner()

    def state_of(sku: str) -> SkuState | None:
        raw = table.get(sku.encode())
        return SkuState.from_dict(loads(raw)) if raw else None

    def owns(sku: str) -> bool:
        p = partitioner(sku.encode(), all_partitions, all_partitions)
        return any(tp.topic == topic and tp.partition == p for tp in app.consumer.assignment())

    return state_of, owns
