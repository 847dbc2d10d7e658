"""The demo's live view: what the worker wrote to Kafka, what landed in commercetools, and
the worker's own metrics, as panels for a terminal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from rich.cells import cell_len
from rich.text import Text

from streams.adapters.kafka_admin import client_kwargs
from streams.config import Settings
from streams.demo.layout import (
    GAP,
    Column,
    Line,
    Section,
    fit,
    join_fitting,
    pad,
    share,
    side_by_side,
)
from streams.demo.summary import (
    Delta,
    delta_latencies,
    histogram_quantile,
    metric_sum,
    percentiles,
)
from streams.demo.traffic import World


@dataclass
class View:
    deltas: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=8))
    acks: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=6))
    commands: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=6))
    exceptions: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=5))
    asns: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=4))
    dlq: deque[str] = field(default_factory=lambda: deque(maxlen=3))
    counts: dict[str, int] = field(default_factory=dict)
    landed: dict[str, int] = field(default_factory=dict)  # entry id -> quantity now
    metrics: dict[str, float] = field(default_factory=dict)
    published: list[Delta] = field(default_factory=list)  # every delta, for latency
    exception_kinds: dict[str, str] = field(default_factory=dict)  # exception id -> kind
    traffic_since: float | None = None  # wall clock when the traffic began
    traffic_started: float | None = None  # the same, monotonic
    traffic_ended: float | None = None  # monotonic

    def seen(self, s: Settings) -> dict[str, int]:
        """Records read, by role (the summary's names, not the topics')."""
        return {
            "availability": self.counts.get(s.topic_inventory_updates, 0),
            "acknowledgements": self.counts.get(s.topic_po_acknowledgements, 0),
            "reservations": self.counts.get(s.topic_inventory_commands, 0),
            "asns": self.counts.get(s.topic_shipment_confirmations, 0),
        }

    def exceptions_by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for kind in self.exception_kinds.values():
            out[kind] = out.get(kind, 0) + 1
        return out


async def watch(s: Settings, v: View, stop: asyncio.Event) -> None:
    """Read the worker's output topics from the start: the demo's Kafka is its own and new
    each run, so everything on them is this run's."""
    dlq = s.dlq_topic(s.topic_ct_messages)
    topics = {
        s.topic_inventory_updates: v.deltas, s.topic_po_acknowledgements: v.acks,
        s.topic_inventory_commands: v.commands, s.topic_exceptions: v.exceptions,
        s.topic_shipment_confirmations: v.asns,
    }  # fmt: skip
    c = AIOKafkaConsumer(*topics, dlq, **client_kwargs(s), auto_offset_reset="earliest",
                         enable_auto_commit=False)  # fmt: skip
    await c.start()
    try:
        while not stop.is_set():
            for tp, msgs in (await c.getmany(timeout_ms=300)).items():
                for m in msgs:
                    if m.value is None:
                        continue
                    rec = orjson.loads(m.value)
                    v.counts[tp.topic] = v.counts.get(tp.topic, 0) + 1
                    if tp.topic == dlq:
                        v.dlq.appendleft(str(rec.get("error", "?"))[:100])
                        continue
                    if tp.topic == s.topic_exceptions:
                        v.exception_kinds[str(rec.get("id"))] = str(rec.get("kind"))
                    elif tp.topic == s.topic_inventory_updates and rec.get("kind") == "delta":
                        first = rec.get("masterChangedAt")
                        if first is not None:
                            v.published.append((rec["sku"], float(first), m.timestamp / 1000))
                    topics[tp.topic].appendleft(rec)
    finally:
        await c.stop()


async def landed(ct: Any, world: World, v: View, stop: asyncio.Event) -> None:
    """Read back the entries reservations touched: proof they landed in commercetools."""
    while not stop.is_set():
        await asyncio.sleep(1.0)
        for cmd in list(v.commands):
            key = (cmd["sku"], cmd["supplyChannel"])
            for e in world.entries.values():
                if (e.sku, e.channel_id) == key:
                    with contextlib.suppress(Exception):
                        fresh = await ct.get_inventory_entry(e.id)
                        if fresh is not None:
                            v.landed[cmd["commandId"]] = fresh["quantityOnStock"]


def scrape(s: Settings) -> dict[str, float]:
    url = f"http://{s.web_host}:{s.web_port}/metrics"
    out: dict[str, float] = {}
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(("streams_", "kafka_")) and " " in line:
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    out[name] = float(value)
    return out


def latency_line(s: Settings, world: World, v: View) -> str:
    """p50 / p99 beyond the debounce rule for the deltas of this run's traffic so far."""
    if v.traffic_since is None:
        return "waiting for the worker's first availability before the traffic starts"
    _, beyond = delta_latencies(
        world.changes, v.published, s.debounce_window_s, s.debounce_max_wait_s, v.traffic_since
    )
    p = percentiles(beyond)
    if not p["n"]:
        return "beyond the debounce rule: - (no delta for the traffic yet)"
    return (
        f"beyond the debounce rule p50 {p['p50']:.2f}s / p99 {p['p99']:.2f}s "
        f"(window {s.debounce_window_s:g}s, max wait {s.debounce_max_wait_s:g}s)"
    )


HOLDS = 'streams_order_holds_total{outcome="'  # + outcome + '"'


def _le(x: float | None) -> str:
    return "-" if x is None else f"<= {x:g}s"


WIDE = 120  # from this width on, two columns of panels; below, one column (80x24 and up)


def _totals(a: dict[str, Any]) -> dict[str, int]:
    """Eaches per acknowledgement code of one acknowledgement (cases times their size)."""
    tot = {"Accepted": 0, "Backordered": 0, "Rejected": 0}
    for it in a.get("items", []):
        for e in it.get("itemAcknowledgements", []):
            q = e["acknowledgedQuantity"]
            size = (q.get("unitSize") or 1) if q.get("unitOfMeasure") == "Cases" else 1
            code = e["acknowledgementCode"]
            tot[code] = tot.get(code, 0) + q["amount"] * size
    return tot


def sections(s: Settings, world: World, v: View) -> list[Section]:
    """The four tables: what went to Amazon, the acknowledgements, the reservations and the
    owned exceptions, newest first."""
    channel_names = {cid: key for key, cid in world.channels.items()}
    deltas = Section("availability sent to Amazon (eaches)", [
        Column("SKU", is_id=True, priority=9), Column("ASIN", is_id=True, priority=2),
        Column("now", priority=8), Column("was", priority=3), Column("kind", priority=1),
    ], empty="(none yet)")  # fmt: skip
    for d in v.deltas:
        deltas.rows.append([d["sku"], d.get("buyerProductIdentifier", ""),
                            str(d["availableQuantity"]["amount"]), str(d.get("previousAmount")),
                            d.get("kind", "")])  # fmt: skip
    acks = Section("acknowledgements to Amazon (eaches)", [
        Column("PO", is_id=True, priority=9), Column("lines", priority=2),
        Column("accepted", priority=8), Column("backordered", priority=7),
        Column("rejected", priority=6),
    ], empty="(none yet)")  # fmt: skip
    for a in v.acks:
        tot = _totals(a)
        counts = [str(tot[k]) for k in ("Accepted", "Backordered", "Rejected")]
        acks.rows.append([a["purchaseOrderNumber"], str(len(a.get("items", []))), *counts])
    res = Section("reservations → commercetools (eaches)", [
        Column("PO", is_id=True, priority=9), Column("SKU", is_id=True, priority=9),
        Column("channel", is_id=True, priority=5), Column("-reserve/+release", priority=8),
        Column("ct stock now", priority=7),
    ], empty="(none yet)")  # fmt: skip
    for c in v.commands:
        res.rows.append([c["purchaseOrderNumber"], c["sku"],
                         channel_names.get(c["supplyChannel"], c["supplyChannel"]),
                         ("-" if c["action"] == "reserve" else "+") + str(c["quantity"]),
                         str(v.landed.get(c["commandId"], "…"))])  # fmt: skip
    exc = Section(f"owned exceptions ({s.topic_exceptions})", [
        Column("kind", is_id=True, priority=9), Column("owner", priority=4),
        Column("refs", is_id=True, priority=8), Column("root cause", flex=True, priority=1),
    ], empty="(none yet)")  # fmt: skip
    for e in v.exceptions:
        refs = " ".join(f"{k}={x}" for k, x in e.get("refs", {}).items() if x)
        exc.rows.append([e["kind"], e["owner"], refs, str(e.get("rootCause", ""))])
    return [deltas, acks, res, exc]


def summary(s: Settings, world: World, v: View) -> list[tuple[str, str, list[str]]]:
    """(label, text, ids listed after it) lines of the counts at the top."""
    m = v.metrics
    ct = s.topic_ct_messages
    sent = world.sent

    def rec(outcome: str) -> int:
        return int(m.get(f'streams_records_total{{outcome="{outcome}",topic="{ct}"}}', 0))

    acked = metric_sum(m, 'streams_acknowledgements_total{outcome="submitted"')
    holds = ", ".join(
        f"{metric_sum(m, HOLDS + o + chr(34))} {o}" for o in ("placed", "settled", "expired")
    )
    heard = _le(histogram_quantile(m, "streams_storefront_to_amazon_seconds", 0.99))
    asns = [f"{a.get('shipmentIdentifier')} ({a.get('shipmentConfirmationType')})" for a in v.asns]
    inv = v.counts.get(s.topic_inventory_updates, 0)
    reservations = v.counts.get(s.topic_inventory_commands, 0)
    return [
        ("ct → worker", f"{sent['changes']} changes ({sent['duplicates']} dup, {sent['bad']} "
                        f"bad) → {rec('applied')} applied, {rec('duplicate')} dup, "
                        f"{rec('stale')} stale, {rec('dlq')} dlq", []),
        ("→ Amazon", f"{inv} availability updates, " + latency_line(s, world, v), []),
        ("Amazon POs", f"{metric_sum(m, 'streams_po_polled_total')} pulled, {acked} acknowledged,"
                       f" {reservations} reservations ({sent['pos']} POs sent by the demo)", []),
        ("storefront", f"{sent.get('orders', 0)} orders ({sent.get('order_lines', 0)} lines), "
                       f"{sent.get('orders_cancelled', 0)} cancelled, "
                       f"{sent.get('orders_out_of_stock', 0)} refused out of stock", []),
        ("holds", f"{holds} · Amazon heard p99 {heard}", []),
        ("ASNs", f"{v.counts.get(s.topic_shipment_confirmations, 0)} sent of "
                 f"{sent.get('dispatches', 0)} dispatches", asns),
    ]  # fmt: skip


def _summary_lines(items: list[tuple[str, str, list[str]]], width: int) -> list[Line]:
    label_w = max(cell_len(label) for label, _, _ in items) + 1
    out: list[Line] = []
    for label, text, ids in items:
        room = width - label_w
        if ids:  # listed whole or counted, never cut
            text = fit(text, room)
            text += ": " + join_fitting(ids, room - cell_len(text) - 2)
        out.append([(pad(label, label_w), "bold"), (fit(text, room), "")])
    return out


def _section_lines(sec: Section, width: int, rows: int) -> list[Line]:
    lines = sec.lines(width, rows)
    return [[(lines[0], "bold")], [(lines[1], "dim")], *([(ln, "")] for ln in lines[2:])]


def render(
    s: Settings, world: World, v: View, width: int | None = None, height: int | None = None
) -> Text:
    """The whole view in ``width`` x ``height`` cells (default: the terminal's, less a line
    for the cursor): at most ``height`` lines, none wider than ``width``, ids whole."""
    if width is None or height is None:
        size = shutil.get_terminal_size((100, 30))
        width = width or size.columns
        height = height or max(10, size.lines - 1)
    wide = width >= WIDE
    col_w = (width - GAP) // 2 if wide else width
    traffic = "waiting" if v.traffic_started is None else (
        f"traffic {max(0.0, time.monotonic() - v.traffic_started):.0f}s")  # fmt: skip
    title: Line = [(fit(f"Amazon Vendor Central ⇄ commercetools, live · {traffic}"
                        f" · {len(world.catalogue)} SKUs · {len(v.exception_kinds)} exceptions",
                        width), "bold reverse")]  # fmt: skip
    items = summary(s, world, v)
    if wide:
        half = (len(items) + 1) // 2
        top = side_by_side(_summary_lines(items[:half], col_w),
                           _summary_lines(items[half:], col_w), col_w)  # fmt: skip
    else:
        top = _summary_lines(items, width)
    base = f"http://{s.web_host}:{s.web_port}"
    logs = os.environ.get("DEMO_DIR", ".run/demo") + "/worker.log"  # set by scripts/demo.sh
    # whole parts, most useful first, as many as fit
    parts = [f"{base}/status", f"logs {logs}", "Ctrl-C stops", f"{base}/metrics",
             f"SP-API sandbox {s.spapi_endpoint}/_sandbox/received"]  # fmt: skip
    shown = [p for n, p in enumerate(parts) if cell_len(" · ".join(parts[: n + 1])) <= width]
    hint: Line = [(fit(" · ".join(shown or parts[:1]), width), "dim")]
    dlq_topic = s.dlq_topic(s.topic_ct_messages)
    dlq_head = f"{dlq_topic} ({v.counts.get(dlq_topic, 0)}): "
    tables = sections(s, world, v)
    pairs = [tables[0:2], tables[2:4]] if wide else [[t] for t in tables]
    # fixed lines: title, summary, each row of panels' title and header, the dlq line, hint
    fixed = 1 + len(top) + 2 * len(pairs) + 1 + 1
    wants = [max(len(t.rows) for t in pair) or 1 for pair in pairs] + [max(0, len(v.dlq) - 1)]
    got = share(max(len(pairs), height - fixed), [max(1, w) for w in wants[:-1]] + wants[-1:])
    lines: list[Line] = [title, *top]
    for pair, rows in zip(pairs, got, strict=False):
        blocks = [_section_lines(t, col_w, max(1, rows)) for t in pair]
        lines += side_by_side(blocks[0], blocks[1], col_w) if wide else blocks[0]
    dlq = list(v.dlq) or ["(none yet)"]
    lines.append([(dlq_head, "bold"), (fit(dlq[0], width - cell_len(dlq_head)), "")])
    lines += [[(fit("  " + d, width), "")] for d in dlq[1 : 1 + got[-1]]]
    lines.append(hint)
    out = Text()
    for n, line in enumerate(lines[:height]):
        if n:
            out.append("\n")
        for text, style in line:
            out.append(text, style=style or None)
    return out
