"""The printed table every benchmark ends with: a head naming the machine, the broker and
the command to rerun it, then one aligned row per figure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def machine_line(mc: dict[str, Any]) -> str:
    line = f"machine: {mc['nproc']} CPU ({mc['cpu']}), {mc['ram_gib']} GiB RAM"
    if "python" in mc:
        line += f", Python {mc['python']}, faust {mc['faust']}, aiokafka {mc['aiokafka']}"
    if "kafka_jars" in mc:
        line += f", Kafka jars {mc['kafka_jars'] or '?'}"
    return line


def rendered(
    title: str,
    res: dict[str, Any],
    rows: Sequence[tuple[str, str]],
    *,
    broker: str | None = None,
    notes: Sequence[str] = (),
) -> str:
    """``broker`` replaces the plain ``broker: <res["broker"]>`` line; ``notes`` follow the
    rerun line (targets, say)."""
    w = max(len(k) for k, _ in rows)
    head = [
        f"{title}  {res['date']}",
        machine_line(res["machine"]),
        broker or f"broker: {res['broker']}",
        f"rerun:   {res['command']}",
        *notes,
        "",
    ]
    return "\n".join(head + [f"{k.ljust(w)}  {v}" for k, v in rows])


def timers_text(worker_log: dict[str, Any]) -> str:
    """The timers ``log_summary`` saw overlapping, with their count and longest run."""
    return (
        ", ".join(
            f"{k} x{v['count']} (max {v['max_runtime_s']}s)"
            for k, v in worker_log.get("timers_overlapping", {}).items()
        )
        or "none"
    )
