"""Watcher rules on this worker's own health (pure): inventory drift against what Amazon was
told, flows that stopped succeeding (``sync-stale``), dead-letter growth (``dlq-growth``)."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from streams.domain.exceptions import Refs
from streams.domain.watch import Want, iso

Direction = Literal["over", "under"]

# what each flow of streams_last_success_timestamp_seconds does, for root causes
FLOW_HINTS: dict[str, str] = {
    "ingest": "no commercetools message was read from ct.messages: the subscription stopped "
    "delivering, or the ingest agent is stuck",
    "inventory_publish": "no availability was published to amazon.inventory-updates, although "
    "the periodic snapshot alone publishes: the debounce timer is stuck or no SKU is mapped",
    "po_poll": "the purchase-order poller did not complete a getPurchaseOrders poll: SP-API "
    "unreachable, credentials refused, or this worker is not the group leader any more",
    "ack_submit": "no acknowledgement was submitted to Amazon",
    "asn_submit": "no shipment confirmation was submitted to Amazon",
    "ct_commands": "no reservation or release was applied to commercetools",
}


# --- inventory drift -----------------------------------------------------------------------


@dataclass(frozen=True)
class Drift:
    sku: str
    told: int
    want: int
    since: float

    @property
    def diff(self) -> int:
        return self.told - self.want

    @property
    def direction(self) -> Direction:
        return "over" if self.diff > 0 else "under"

    def want_exception(self, now: float) -> Want:
        if self.direction == "over":
            risk = f"{self.diff} more than is available: overselling risk"
        else:
            risk = f"{-self.diff} fewer than are available: lost sales"
        cause = (
            f"Amazon was last told {self.told} eaches of SKU {self.sku}, the master implies "
            f"{self.want} now ({risk}), for {now - self.since:.0f} s: the debounced delta "
            "was not published or not recorded (stuck debounce timer, send budget too small)"
        )
        return Want("inventory-drift", Refs(sku=self.sku), cause)


@dataclass
class DriftTracker:
    """Since when each SKU has drifted beyond the tolerance (in memory: a restart only delays
    detection by ``after_s``)."""

    tolerance: int
    after_s: float
    since: dict[str, float] = field(default_factory=dict)

    def observe(self, sku: str, told: int | None, want: int | None, now: float) -> Drift | None:
        """``want`` None: not offered to Amazon (unmapped), so it cannot drift."""
        if want is None or abs((told or 0) - want) <= self.tolerance:
            self.since.pop(sku, None)
            return None
        start = self.since.setdefault(sku, now)
        if now - start < self.after_s:
            return None
        return Drift(sku, told or 0, want, start)

    def keep_only(self, skus: set[str]) -> None:
        """Forget SKUs this worker no longer holds (revoked partitions)."""
        for sku in [s for s in self.since if s not in skus]:
            del self.since[sku]


def drift_totals(drifts: Iterable[Drift]) -> dict[Direction, tuple[int, int]]:
    """direction -> (SKUs, eaches)."""
    out: dict[Direction, tuple[int, int]] = {"over": (0, 0), "under": (0, 0)}
    for d in drifts:
        n, units = out[d.direction]
        out[d.direction] = (n + 1, units + abs(d.diff))
    return out


# --- stale syncs and dead letters (this worker's own metrics) ------------------------------

_THRESHOLD = re.compile(r"^\s*(\w+)\s*=\s*(\d+(?:\.\d+)?)\s*$")


def parse_thresholds(text: str) -> dict[str, float]:
    """``"ingest=21600,po_poll=900"`` -> {flow: seconds}."""
    out: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        m = _THRESHOLD.match(part)
        if not m:
            raise ValueError(f"not flow=seconds: {part!r}")
        out[m[1]] = float(m[2])
    return out


def stale_wants(
    last_success: Mapping[str, float],
    thresholds: Mapping[str, float],
    owned: Callable[[str], bool],
    now: float,
    worker: str,
) -> list[Want]:
    """sync-stale for every judged flow of this worker whose last success is too old. A flow
    never seen succeed here, or whose work this worker does not own, is not judged."""
    out = []
    for flow, limit in sorted(thresholds.items()):
        last = last_success.get(flow)
        if last is None or not owned(flow) or now - last <= limit:
            continue
        hint = FLOW_HINTS.get(flow, "the flow made no progress")
        cause = (
            f"flow {flow} last succeeded {now - last:.0f} s ago on worker {worker} "
            f"(at {iso(last)}; threshold {limit:.0f} s): {hint}"
        )
        out.append(Want("sync-stale", Refs(), cause, scope=f"{flow}@{worker}"))
    return out


@dataclass
class GrowthWindow:
    """Growth of counters (per key) within the last ``window_s``, from periodic samples.

    Seeded with zeros at ``started``: counters start at 0 with the process, so whatever was
    counted since then is growth while the process is younger than the window.
    """

    window_s: float
    started: float
    samples: deque[tuple[float, dict[str, float]]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if not self.samples:
            self.samples.append((self.started, {}))

    def observe(self, totals: Mapping[str, float], now: float) -> dict[str, float]:
        start = now - self.window_s
        # keep the newest sample at or before the window start: the baseline
        while len(self.samples) > 1 and self.samples[1][0] <= start:
            self.samples.popleft()
        base = self.samples[0][1]
        self.samples.append((now, dict(totals)))
        return {k: v - base.get(k, 0.0) for k, v in totals.items() if v - base.get(k, 0.0) > 0}


def dlq_wants(growth: Mapping[str, float], window_s: float, worker: str) -> list[Want]:
    out = []
    for topic, n in sorted(growth.items()):
        cause = (
            f"{n:.0f} record(s) from {topic} went to {topic}.dlq in the last {window_s:.0f} s "
            f"on worker {worker}: what they carried did not happen (read the dead letters "
            "for the reason, fix the producer or the data, then replay)"
        )
        out.append(Want("dlq-growth", Refs(), cause, scope=f"{topic}@{worker}"))
    return out


def scope_judged(rec: Mapping[str, Any], kind: str, worker: str) -> bool:
    """Open per-worker exceptions (sync-stale, dlq-growth) this worker decides on."""
    return rec.get("kind") == kind and str(rec.get("scope") or "").endswith(f"@{worker}")
