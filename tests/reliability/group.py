"""Helpers for reliability tests with several workers or an unsteady broker: the consumer
group's lag as the broker sees it (not one worker's view of its own partitions), settling a
scenario run however many workers share the group, and what the SP-API sandbox accepted."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient

from streams.config import Settings
from tests.reliability.harness import end_offsets
from tests.reliability.scenario import Scenario, final_report, received
from tests.support.invariants import Report
from tests.support.kafka import wait_for


def inputs(s: Settings) -> list[str]:
    return [s.topic_ct_messages, s.topic_sku_mappings, s.topic_purchase_orders,
            s.topic_inventory_commands, s.topic_dispatches]  # fmt: skip


def groups(s: Settings) -> list[str]:
    """The worker's consumer groups: the Faust app's, and its raw stages' (agents/rawstage.py:
    ingest, of ``ct.messages`` and ``master.sku-mappings``; the inventory sender)."""
    try:
        from streams.agents.ingest import ingest_group
    except ImportError:
        return [s.app_id]
    return [s.app_id, ingest_group(s), f"{s.app_id}-inventory-sender"]


async def group_lag(s: Settings, topics: Iterable[str]) -> dict[str, dict[int, int]]:
    """End offset - the committed offset of the worker's group that consumes it, per
    partition of ``topics`` (a partition never committed counts all its records)."""
    done: dict[tuple[str, int], int] = {}
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        for group in groups(s):
            committed = await admin.list_consumer_group_offsets(group)
            for tp, meta in committed.items():
                key = (tp.topic, tp.partition)
                done[key] = max(done.get(key, -1), meta.offset)
    finally:
        await admin.close()
    out: dict[str, dict[int, int]] = {}
    for t in topics:
        ends = await end_offsets(s.kafka_bootstrap, t)
        out[t] = {p: end - max(0, done.get((t, p), 0)) for p, end in ends.items()}
    return out


async def wait_group_drained(
    s: Settings, topics: list[str], timeout: float
) -> dict[str, dict[int, int]]:
    """Until the group's lag is 0 on every partition of ``topics``; the last lag either way."""
    deadline = time.monotonic() + timeout
    while True:
        lag = await group_lag(s, topics)
        if all(not any(v.values()) for v in lag.values()) or time.monotonic() > deadline:
            return lag
        await asyncio.sleep(2.0)


async def settle_group(
    s: Settings, sc: Scenario, url: str, *, timeout: float = 150.0
) -> tuple[Report, dict[str, dict[int, int]]]:
    """``scenario.settle`` for any number of workers: every PO acknowledged, dispatches for
    them sent, the group drained, commercetools' final state delivered, then the invariant
    checker until it passes (debounce, acknowledgement sender) or time runs out."""
    want = set(sc.po_numbers)
    t0 = time.monotonic()

    def phase(text: str) -> None:  # where the settling spends its time (CI has no logs)
        print(f"  settle +{time.monotonic() - t0:.0f}s: {text}")

    acks = await wait_for(
        s.kafka_bootstrap,
        s.topic_po_acknowledgements,
        lambda r: want <= {x.key.decode() for x in r if x.key},
        timeout=timeout,
    )
    phase(f"POs acknowledged on the topic: {len(want & {x.key.decode() for x in acks if x.key})}"
          f" of {len(want)}")  # fmt: skip
    await sc.dispatch_acknowledged()
    lag = await wait_group_drained(s, inputs(s), timeout=120)
    phase(f"dispatched; input not committed: {behind(lag) or 'none'}")
    report = await final_report(s, sc, url)
    phase(f"final report: {'ok' if report.ok else 'not ok'}")
    lag = await wait_group_drained(s, inputs(s), timeout=60)
    phase(f"drained: {behind(lag) or 'nothing behind'}")
    return report, lag


async def sandbox_ack_contents(url: str) -> dict[str, set[bytes]]:
    """PO number -> the distinct acknowledgement contents the sandbox accepted (202)."""
    out: dict[str, set[bytes]] = defaultdict(set)
    for e in await received(url, "submitAcknowledgement"):
        if e.get("status") != 202:
            continue
        for ack in (e.get("body") or {}).get("acknowledgements") or []:
            out[str(ack.get("purchaseOrderNumber"))].add(
                orjson.dumps(ack, option=orjson.OPT_SORT_KEYS)
            )
    return dict(out)


def agent_crashes(*logs: Path) -> list[str]:
    out: list[str] = []
    for log in logs:
        if log.exists():
            text = log.read_text(errors="replace")
            out += [f"{log.name}: {ln}" for ln in text.splitlines() if "Crashed reason=" in ln]
    return out


def lag_total(lag: dict[str, dict[int, int]]) -> int:
    return sum(sum(v.values()) for v in lag.values())


def behind(lag: dict[str, dict[int, int]]) -> dict[str, dict[int, int]]:
    """Only the partitions with records not committed (for a failure message)."""
    return {t: {p: n for p, n in v.items() if n} for t, v in lag.items() if any(v.values())}


# what a worker's log says about a stall: warnings, errors, rebalance and recovery steps
_TELLING = ("WARNING", "ERROR", "Crashed", "rebalance:", "Recovery", "generation", "Revoking",
            "Setting newly assigned", "stall:", "stall|")  # fmt: skip


def log_digest(*logs: Path, last: int = 60) -> str:
    """The last telling lines of each worker log, cut to a readable width: what a CI failure
    has to show, since the logs themselves are gone with the run's temporary directory."""
    out: list[str] = []
    for log in logs:
        if not log.exists():
            continue
        lines = [ln[:300] for ln in log.read_text(errors="replace").splitlines()
                 if any(t in ln for t in _TELLING)]  # fmt: skip
        out.append(f"--- {log.name} ({len(lines)} telling lines, the last {last}):")
        out += lines[-last:]
    return "\n".join(out)


def jsonable(x: Any) -> Any:
    return orjson.loads(orjson.dumps(x))
