"""The demo's live view: what the worker wrote to Kafka, what landed in commercetools, and
the worker's own metrics, as panels for a terminal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from streams.adapters.kafka_admin import client_kwargs
from streams.config import Settings
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


def render(s: Settings, world: World, v: View) -> Group:
    m = v.metrics
    ct = s.topic_ct_messages
    names = {c.sku: c.unitsPerCase for c in world.catalogue}
    channel_names = {cid: key for key, cid in world.channels.items()}

    def rec(outcome: str) -> int:
        return int(m.get(f'streams_records_total{{outcome="{outcome}",topic="{ct}"}}', 0))

    head = Table.grid(padding=(0, 2))
    sent = world.sent
    head.add_row(
        f"[b]commercetools →[/b] {sent['changes']} stock changes, {sent['duplicates']} duplicate "
        f"and {sent['bad']} broken deliveries",
        f"[b]worker[/b] applied {rec('applied')}, dropped {rec('duplicate')} duplicates, "
        f"{rec('stale')} stale, dead-lettered {rec('dlq')}",
    )
    acked = metric_sum(m, 'streams_acknowledgements_total{outcome="submitted"')
    head.add_row(
        f"[b]→ Amazon[/b] {v.counts.get(s.topic_inventory_updates, 0)} availability updates, "
        + latency_line(s, world, v),
        f"[b]Amazon POs[/b] {metric_sum(m, 'streams_po_polled_total')} pulled, "
        f"{acked} acknowledged, "
        f"{v.counts.get(s.topic_inventory_commands, 0)} reservations "
        f"({sent['pos']} new POs sent by the demo)",
    )
    head.add_row(
        f"[b]storefront[/b] {sent.get('orders', 0)} orders ({sent.get('order_lines', 0)} lines), "
        f"{sent.get('orders_cancelled', 0)} cancelled, "
        f"{sent.get('orders_out_of_stock', 0)} refused out of stock",
        "[b]holds[/b] "
        + ", ".join(
            f"{metric_sum(m, HOLDS + o + chr(34))} {o}" for o in ("placed", "settled", "expired")
        )
        + " · Amazon heard p99 "
        + _le(histogram_quantile(m, "streams_storefront_to_amazon_seconds", 0.99)),
    )
    asns = ", ".join(
        f"{a.get('shipmentIdentifier')} ({a.get('shipmentConfirmationType')})" for a in v.asns
    )
    head.add_row(
        f"[b]ASNs[/b] {v.counts.get(s.topic_shipment_confirmations, 0)} sent of "
        f"{sent.get('dispatches', 0)} dispatches: {asns or '-'}",
        f"[b]exceptions[/b] {len(v.exception_kinds)} raised · traffic for "
        f"{time.monotonic() - (v.traffic_started or time.monotonic()):.0f}s",
    )

    deltas = Table(title="availability sent to Amazon (eaches)", expand=True, title_justify="left")
    for col in ("SKU", "ASIN", "now", "was", "kind"):
        deltas.add_column(col)
    for d in v.deltas:
        deltas.add_row(d["sku"], d.get("buyerProductIdentifier", ""),
                       str(d["availableQuantity"]["amount"]), str(d.get("previousAmount")),
                       d.get("kind", ""))  # fmt: skip

    acks = Table(title="acknowledgements to Amazon", expand=True, title_justify="left")
    for col in ("PO", "lines", "accepted", "backordered", "rejected"):
        acks.add_column(col)
    for a in v.acks:
        tot = {"Accepted": 0, "Backordered": 0, "Rejected": 0}
        for it in a.get("items", []):
            for e in it.get("itemAcknowledgements", []):
                q = e["acknowledgedQuantity"]
                size = (q.get("unitSize") or 1) if q.get("unitOfMeasure") == "Cases" else 1
                n = q["amount"] * size
                tot[e["acknowledgementCode"]] = tot.get(e["acknowledgementCode"], 0) + n
        acks.add_row(
            a["purchaseOrderNumber"],
            str(len(a.get("items", []))),
            f"{tot['Accepted']} ea",
            f"{tot['Backordered']} ea",
            f"{tot['Rejected']} ea",
        )

    res = Table(title="reservations → commercetools", expand=True, title_justify="left")
    for col in ("PO", "SKU", "channel", "eaches (-reserve +release)", "stock in ct now"):
        res.add_column(col)
    for c in v.commands:
        res.add_row(c["purchaseOrderNumber"], c["sku"],
                    channel_names.get(c["supplyChannel"], c["supplyChannel"][:8]),
                    ("-" if c["action"] == "reserve" else "+") + str(c["quantity"]),
                    str(v.landed.get(c["commandId"], "…")))  # fmt: skip

    exc = Table(title="owned exceptions (ops.exceptions)", expand=True, title_justify="left")
    for col in ("kind", "owner", "refs", "root cause"):
        exc.add_column(col)
    for e in v.exceptions:
        refs = " ".join(f"{k}={x}" for k, x in e.get("refs", {}).items() if x)
        exc.add_row(e["kind"], e["owner"], refs, str(e.get("rootCause", ""))[:70])

    dlq = "\n".join(v.dlq) or "(none yet)"
    logs = os.environ.get("DEMO_DIR", ".run/demo") + "/worker.log"  # set by scripts/demo.sh
    hint = (f"status http://{s.web_host}:{s.web_port}/status · "
            f"metrics http://{s.web_host}:{s.web_port}/metrics · logs {logs} · "
            f"SP-API sandbox {s.spapi_endpoint}/_sandbox/received · Ctrl-C stops · "
            f"{len(names)} SKUs")  # fmt: skip
    grid = Table.grid(expand=True)
    grid.add_column(ratio=1)
    grid.add_column(ratio=1)
    grid.add_row(deltas, acks)
    grid.add_row(res, exc)
    return Group(
        Panel(head, title="Amazon Vendor Central ⇄ commercetools, live"),
        grid,
        Panel(dlq, title=f"{s.dlq_topic(ct)}: bad records, each with its reason"),
        hint,
    )
