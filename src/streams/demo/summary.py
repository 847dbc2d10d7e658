"""What a demo run showed, as numbers: the pure part of ``streams demo``'s summary.

Latency is computed the way ``bench/inventory.py`` does it, per published delta: its Kafka
time minus the first change it covers (change -> published), and the time *beyond the
debounce rule*, ``min(last change covered + window, first change + max wait)``: the
debounce window is a wait the product is asked to make, not latency it adds.
A mean would let one replayed backlog swamp the picture; p50 / p99 do not.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# (sku, masterChangedAt, Kafka time of the delta), both Unix seconds
Delta = tuple[str, float, float]


def percentiles(xs: Iterable[float]) -> dict[str, float | int | None]:
    """n, p50, p99 and max, as bench/ reports them (p99: the value at rank floor(0.99 n))."""
    v = sorted(xs)
    if not v:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    return {
        "n": len(v),
        "p50": round(statistics.median(v), 3),
        "p99": round(v[min(len(v) - 1, int(0.99 * len(v)))], 3),
        "max": round(v[-1], 3),
    }


def delta_latencies(
    changes: Mapping[str, Sequence[float]],
    deltas: Iterable[Delta],
    window: float,
    max_wait: float,
    since: float = 0.0,
) -> tuple[list[float], list[float]]:
    """(change -> published, beyond the debounce rule) per delta whose first change is at or
    after ``since``. ``changes``: per SKU the Kafka times of the stock changes the demo
    produced, sorted. A delta covers the changes from its ``masterChangedAt`` up to the
    next delta's ``masterChangedAt`` (the first change it did not cover) and at most its own
    time; without one of the demo's changes in that span (a PO allocation moved the amount)
    its last change is its first."""
    by_sku: dict[str, list[tuple[float, float]]] = {}
    for sku, first, ts in deltas:
        by_sku.setdefault(sku, []).append((first, ts))
    latency: list[float] = []
    beyond: list[float] = []
    for sku, ds in by_sku.items():
        ds.sort(key=lambda d: d[1])
        times = changes.get(sku, ())
        for i, (first, ts) in enumerate(ds):
            if first < since:
                continue  # reflects changes from before the traffic began (seeded stock)
            end = bisect.bisect_right(times, ts)
            if i + 1 < len(ds):
                end = min(end, bisect.bisect_left(times, ds[i + 1][0]))
            start = bisect.bisect_left(times, first)
            last = times[end - 1] if end > start else first
            latency.append(ts - first)
            beyond.append(ts - min(last + window, first + max_wait))
    return latency, beyond


def metric_sum(m: Mapping[str, float], prefix: str) -> int:
    """Sum of every scraped sample whose name-and-labels text starts with ``prefix``."""
    return int(sum(v for k, v in m.items() if k.startswith(prefix)))


def histogram_quantile(m: Mapping[str, float], name: str, q: float) -> float | None:
    """The ``q`` quantile of a scraped histogram, as the upper bound of its bucket (what the
    worker's buckets can say); None without observations."""
    buckets = sorted(
        (float(k.split('le="', 1)[1].split('"', 1)[0]), v)
        for k, v in m.items()
        if k.startswith(f"{name}_bucket{{") and 'le="' in k
    )
    if not buckets or buckets[-1][1] <= 0:
        return None
    want = q * buckets[-1][1]
    return next(le for le, count in buckets if count >= want)


def summarize(
    *,
    duration_s: float,
    ready_s: float | None,
    sent: Mapping[str, int],
    seen: Mapping[str, int],
    exceptions: Mapping[str, int],
    dead_letters: int,
    metrics: Mapping[str, float],
    ct_topic: str,
    changes: Mapping[str, Sequence[float]],
    deltas: Iterable[Delta],
    since: float,
    window: float,
    max_wait: float,
) -> dict[str, Any]:
    """The run's summary (the ``--json`` document). ``seen``: records the demo read, by
    role (availability, acknowledgements, reservations, asns); ``exceptions``: distinct
    owned exceptions by kind; ``metrics``: the worker's last scrape."""
    latency, beyond = delta_latencies(changes, deltas, window, max_wait, since)

    def rec(outcome: str) -> int:
        return int(
            metrics.get(f'streams_records_total{{outcome="{outcome}",topic="{ct_topic}"}}', 0)
        )

    return {
        "duration_s": round(duration_s, 1),
        "worker_ready_s": None if ready_s is None else round(ready_s, 1),
        "sent": dict(sent),
        "worker": {o: rec(o) for o in ("applied", "duplicate", "stale", "dlq")},
        "availability": {
            "published": seen.get("availability", 0),
            "debounce_window_s": window,
            "debounce_max_wait_s": max_wait,
            "change_to_published_s": percentiles(latency),
            "beyond_debounce_rule_s": percentiles(beyond),
        },
        "purchase_orders": {
            "pulled": metric_sum(metrics, "streams_po_polled_total"),
            "acknowledged": metric_sum(
                metrics, 'streams_acknowledgements_total{outcome="submitted"'
            ),
            "acknowledgement_records": seen.get("acknowledgements", 0),
            "reservations": seen.get("reservations", 0),
        },
        "storefront": {
            "orders": sent.get("orders", 0),
            "lines": sent.get("order_lines", 0),
            "cancelled": sent.get("orders_cancelled", 0),
            "refused_out_of_stock": sent.get("orders_out_of_stock", 0),
            "holds": {
                o: metric_sum(metrics, f'streams_order_holds_total{{outcome="{o}"')
                for o in ("placed", "settled", "expired")
            },
            # the worker's own histogram: order delivered -> availability published
            "to_amazon_p50_s": histogram_quantile(
                metrics, "streams_storefront_to_amazon_seconds", 0.5
            ),
            "to_amazon_p99_s": histogram_quantile(
                metrics, "streams_storefront_to_amazon_seconds", 0.99
            ),
        },
        "asns": {"sent": seen.get("asns", 0), "dispatches": sent.get("dispatches", 0)},
        # Direct Fulfillment customer orders and vendor invoices (when the run enables them)
        "direct_fulfillment": {
            "pulled": metric_sum(metrics, "streams_df_orders_pulled_total"),
            **{
                o: metric_sum(metrics, f'streams_df_orders_total{{outcome="{o}"')
                for o in ("received", "accepted", "rejected", "acknowledged", "confirmed")
            },
        },
        "invoices": {
            o: metric_sum(metrics, f'streams_invoices_total{{outcome="{o}"')
            for o in ("built", "submitted", "accepted", "invalid", "failed")
        },
        "exceptions": dict(sorted(exceptions.items())),
        "dead_letters": dead_letters,
    }


def problems(summary: Mapping[str, Any], p99_bound_s: float) -> list[str]:
    """What makes a run look broken: commercetools refusing the worker's reservations, no
    PO acknowledged, no availability published for the demo's own changes, or p99 beyond
    the debounce rule above ``p99_bound_s``."""
    out: list[str] = []
    failed = summary["exceptions"].get("ct-command-failed", 0)
    if failed:
        out.append(f"{failed} ct-command-failed exception(s)")
    if summary["purchase_orders"]["acknowledged"] == 0:
        out.append("no purchase order acknowledged")
    df = summary.get("direct_fulfillment") or {}
    if df.get("received") and not df.get("acknowledged"):
        out.append(f"{df['received']} DF orders taken in, none acknowledged")
    beyond = summary["availability"]["beyond_debounce_rule_s"]
    if not beyond["n"]:
        out.append("no availability published for the demo's stock changes")
    elif beyond["p99"] > p99_bound_s:
        out.append(f"p99 beyond the debounce rule {beyond['p99']}s > {p99_bound_s:g}s")
    return out


def _pct(d: Mapping[str, Any]) -> str:
    if not d["n"]:
        return "-"
    return f"p50 {d['p50']:.2f}s / p99 {d['p99']:.2f}s / max {d['max']:.2f}s (n={d['n']})"


def plain_text(summary: Mapping[str, Any]) -> str:
    """The summary for a log or a pipe: plain lines, no colour, no terminal tricks."""
    s, w, a = summary["sent"], summary["worker"], summary["availability"]
    po, asn = summary["purchase_orders"], summary["asns"]
    ready = summary["worker_ready_s"]
    exc = ", ".join(f"{k} {n}" for k, n in summary["exceptions"].items()) or "none"
    return "\n".join([
        f"demo summary: {summary['duration_s']:g}s of traffic"
        + (f", worker ready after {ready:g}s" if ready is not None else ", worker never ready"),
        f"  commercetools -> {s.get('changes', 0)} stock changes, {s.get('duplicates', 0)} "
        f"duplicate and {s.get('bad', 0)} broken deliveries",
        f"  worker: applied {w['applied']}, dropped {w['duplicate']} duplicates, "
        f"{w['stale']} stale, dead-lettered {w['dlq']}",
        f"  -> Amazon: {a['published']} availability updates; change -> published "
        f"{_pct(a['change_to_published_s'])}",
        f"     beyond the debounce rule (window {a['debounce_window_s']:g}s, max wait "
        f"{a['debounce_max_wait_s']:g}s): {_pct(a['beyond_debounce_rule_s'])}",
        storefront_line(summary.get("storefront")),
        f"  Amazon POs: {po['pulled']} pulled, {po['acknowledged']} acknowledged, "
        f"{po['reservations']} reservations ({s.get('pos', 0)} new POs sent by the demo)",
        f"  ASNs: {asn['sent']} sent of {asn['dispatches']} dispatches",
        df_invoice_line(summary),
        f"  owned exceptions: {exc}; dead letters: {summary['dead_letters']}",
    ])  # fmt: skip


def df_invoice_line(summary: Mapping[str, Any]) -> str:
    df = summary.get("direct_fulfillment") or {}
    inv = summary.get("invoices") or {}
    return (
        f"  DF orders: {df.get('pulled', 0)} pulled, {df.get('received', 0)} taken in, "
        f"{df.get('acknowledged', 0)} acknowledged, {df.get('confirmed', 0)} confirmed; "
        f"invoices: {inv.get('submitted', 0)} submitted, {inv.get('accepted', 0)} accepted, "
        f"{inv.get('invalid', 0)} invalid"
    )


def storefront_line(sf: Mapping[str, Any] | None) -> str:
    if not sf:
        return "  storefront: -"
    h = sf["holds"]

    def le(x: float | None) -> str:
        return "-" if x is None else f"<= {x:g}s"

    return (
        f"  storefront: {sf['orders']} orders ({sf['lines']} lines, {sf['cancelled']} cancelled, "
        f"{sf['refused_out_of_stock']} refused out of stock); holds {h['placed']} placed, "
        f"{h['settled']} settled, {h['expired']} expired; Amazon heard p50 "
        f"{le(sf['to_amazon_p50_s'])} / p99 {le(sf['to_amazon_p99_s'])}"
    )
