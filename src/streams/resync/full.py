"""``streams resync commercetools``: the whole comparison, printed, repairs published."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from streams.adapters.codecs import dumps
from streams.adapters.commercetools import CommercetoolsClient
from streams.adapters.kafka_admin import client_kwargs
from streams.config import Settings
from streams.resync.changelog import read_states
from streams.resync.compare import (
    Difference,
    ResyncReport,
    compare_entry,
    resource_deleted,
    resource_updated,
)


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
