"""The purchase-order benchmark's figures: percentiles, profile buckets, warnings, table."""

from __future__ import annotations

import contextlib
import json
import statistics
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bench.harness as h


def pct(xs: list[float]) -> dict[str, float | None]:
    if not xs:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    xs = sorted(xs)
    return {
        "n": len(xs),
        "p50": round(statistics.median(xs), 3),
        "p99": round(xs[min(len(xs) - 1, int(0.99 * len(xs)))], 3),
        "max": round(xs[-1], 3),
    }


PO_BUCKETS = (
    ("event loop idle (select)", ("EpollSelector.select",)),
    ("po-events: take in decisions (_on_decision)", ("PurchaseOrderFlow._on_decision",)),
    ("po-events: build the acknowledgement", ("PurchaseOrderFlow._maybe_acknowledge",)),
    ("po-events: order split + line bundles (_on_order)", ("PurchaseOrderFlow._on_order",)),
    ("po-events: PO documents read/written, sends (other)", ("PurchaseOrderFlow.po_events",)),
    ("po-intake: validate + re-key", ("PurchaseOrderFlow.intake",)),
    ("ack-sender: check + submitAcknowledgement", ("PurchaseOrderFlow.ack_sender",)),
    ("tx-status timer", ("PurchaseOrderFlow.poll_transactions",)),
    ("po poller", ("PoPoller.",)),
    ("sku agent: allocate lines (SkuState)", ("InventoryFlow._allocation",)),
    ("sku agent: other", ("InventoryFlow.sku_agent",)),
    ("debounce timer: deltas", ("InventoryFlow.tick",)),
    ("changelog buffer flush (table writes)", ("ProducerBuffer",)),
    ("aiokafka producer I/O", ("aiokafka/producer/sender", "Sender._")),
    ("Faust consume + deliver to streams", ("Fetcher._fetcher", "Conductor.", "Stream.")),
    ("web /metrics", ("generate_latest", "faust/web/")),
)


@contextlib.contextmanager
def po_buckets() -> Iterator[None]:
    saved = h.PROFILE_BUCKETS
    h.PROFILE_BUCKETS = PO_BUCKETS  # type: ignore[assignment]  # a different set of buckets
    try:
        yield
    finally:
        h.PROFILE_BUCKETS = saved


def by_op(received: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for e in received:
        out.setdefault(e["operation"], []).append(e)
    return out


def warning_kinds(path: Path) -> dict[str, int]:
    """The worker log's WARNING/ERROR lines, counted by their first words."""
    out: Counter[str] = Counter()
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {}
    for line in text.splitlines():
        for level in ("[WARNING]", "[ERROR]"):
            if level in line:
                msg = line.split(level, 1)[1].strip()
                out[f"{level[1:-1]} {' '.join(msg.split()[:6])[:80]}"] += 1
    return dict(out.most_common(15))


def table(res: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []

    def lat(d: dict[str, Any]) -> str:
        return f"{d['p50']} / {d['p99']} / {d['max']}  (n={d['n']})"

    sd = res.get("seed", {})
    rows.append(
        (
            "SKUs seeded (mappings + stock) / applied in (s)",
            f"{sd.get('skus')} / {sd.get('seed_applied_s')}",
        )
    )
    for key, title in (
        ("warmup", "warm-up"),
        ("latency", "(1) latency"),
        ("throughput", "(2) burst"),
        ("poller", "(3) via poller"),
    ):
        if key not in res:
            continue
        p = res[key]
        how = (
            f"{p['pos']} POs x {p['lines_per_po']} lines, "
            + (f"1 every {p['interval_s']}s" if p["interval_s"] else "all at once")
            + (" (added to the sandbox)" if p["via_poller"] else "")
        )
        rows.append((f"{title}: load", how + f", {p['mean_po_bytes']:.0f} B/PO"))
        src = "added" if p["via_poller"] else "produce"
        rows.append((f"{title}: {src} -> ack on Kafka p50/p99/max (s)", lat(p["latency_to_ack_s"])))
        rows.append(
            (
                f"{title}: {src} -> submitted (sandbox 202) p50/p99/max (s)",
                lat(p["latency_to_submitted_s"]),
            )
        )
        rows.append(
            (f"{title}: ack on Kafka -> submitted p50/p99/max (s)", lat(p["ack_to_submitted_s"]))
        )
        if p["via_poller"] and "added_to_po_record_s" in p:
            rows.append(
                (
                    f"{title}: added -> PO record on Kafka p50/p99/max (s)",
                    lat(p["added_to_po_record_s"]),
                )
            )
        rows.append(
            (
                f"{title}: POs/s first {src} -> last ack / last submitted",
                f"{p.get('pos_per_s_to_ack')} / {p.get('pos_per_s_to_submitted')}"
                f"  ({p['first_send_to_last_ack_s']} s / {p['first_send_to_last_submitted_s']} s;"
                f" sending took {p['send_s']} s)",
            )
        )
        rows.append(
            (
                f"{title}: acked / submitted / codes / acks >1 per PO",
                f"{p['acked']} / {p['submitted']} / {p['ack_entries_by_code']} / "
                f"{p['acks_published_more_than_once']}",
            )
        )
        per = p.get("acks_per_request") or {}
        rows.append(
            (
                f"{title}: accepted requests / acks per request mean, max",
                f"{p.get('submit_requests_accepted')} / {per.get('mean')}, {per.get('max')}",
            )
        )
        rows.append(
            (
                f"{title}: submit statuses / cpu worker, broker, other",
                f"{p['submit_statuses']} / {p.get('worker_cpu_cores')}, "
                f"{p.get('broker_cpu_cores')}, {p.get('other_processes_cpu_cores')} cores"
                + (" / UNDER PROFILER" if p.get("under_profiler") else ""),
            )
        )
        if "profile" in p:
            rows.append((f"{title}: worker profile (py-spy, % of samples)", ""))
            for name, share in p["profile"].get("buckets_pct", []):
                rows.append((f"    {name}", f"{share}"))
    if "records_written" in res:
        rows.append(("Kafka records written (run total)", ""))
        for name, count in res["records_written"].items():
            rows.append((f"    {name}", f"{count}"))
    if "sandbox_requests" in res:
        rows.append(("sandbox requests by status", json.dumps(res["sandbox_requests"])))
    if "worker_log" in res:
        wl = res["worker_log"]
        timers = h.timers_text(wl)
        rows.append(("worker log: errors / timers overlapping", f"{wl['errors']} / {timers}"))

    return h.rendered("purchase-order benchmark", res, rows)
