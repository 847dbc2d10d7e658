"""Operations (docs/operations.md): owned exceptions, watchers,
the status page and the JSON API.

    every flow ──raise / resolve──┐
                                  ├─> ops.exceptions (key: exception id) ──ops-exceptions──>
    timer ops-watchers ───────────┘        global table ``exceptions`` (the only writer)
      reads: pos (ack deadline, held lines), skus (drift), this worker's metrics (stale
      syncs, dead letters), and ``exceptions`` (what is open)

The table is global: every worker holds every exception, so the status page and
``/api/exceptions`` answer completely on any worker. The watchers judge only what this
worker can see first-hand (POs and SKUs of its active partitions, its own metrics), so two
workers never contradict each other. Rules are in :mod:`streams.domain.watchers`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import faust

from streams.adapters.codecs import dumps, loads
from streams.agents.faustutil import raw_topic
from streams.agents.ingest import IngestService
from streams.config import Settings
from streams.domain.availability import Defaults, offered
from streams.domain.exceptions import RUNBOOKS, complete
from streams.domain.inventory import SkuState, stored_clean
from streams.domain.sweep import missed_want
from streams.domain.warehouse_policy import ChannelPolicy
from streams.domain.watchers import (
    AGE_BANDS,
    DriftTracker,
    GrowthWindow,
    Outbox,
    Want,
    ack_deadline_want,
    acknowledged,
    age_band,
    dlq_wants,
    drift_totals,
    expired,
    hold_wants,
    merge,
    parse_thresholds,
    po_judged,
    po_resolution,
    reconcile,
    resolution,
    scope_judged,
    stale_wants,
    unmapped_wants,
)
from streams.observability import metrics as M
from streams.observability.status import gauge_open, samples
from streams.runtime.store import is_record_key
from streams.runtime.storeopts import table_options

log = logging.getLogger(__name__)

# one exception per drifting SKU up to this many per worker (largest first); the gauges
# count them all
DRIFT_EXCEPTIONS_MAX = 100
_YIELD_EVERY = 200  # table scans give the event loop back this often


class OpsFlow:
    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        *,
        skus: Any | None = None,
        products: Any | None = None,
        ingest: IngestService | None = None,
        policy: Callable[[], ChannelPolicy | None] = lambda: None,
        pos: Any | None = None,
        shipments: Any | None = None,
    ) -> None:
        """Other flows' state is read only, and handed in by ``create_app`` (None: that flow
        does not run here): ``skus``, ``products`` and ``ingest`` of the inventory flow,
        ``policy`` its warehouse policy now, ``pos`` of the purchase-order flow and
        ``shipments`` of the ASN flow."""
        s = self.settings = settings
        self.app = app
        self.clock = clock
        self.skus = skus
        self.products = products
        self.ingest = ingest
        self.policy = policy
        self.pos = pos
        self.shipments = shipments
        self.defaults = Defaults.of(s)
        self.worker = f"{socket.gethostname()}:{s.web_port}"
        self.topic = raw_topic(app, s.topic_exceptions)
        # exception id -> merged record (JSON); written by the ops-exceptions agent only
        self.exceptions = app.GlobalTable(
            "exceptions",
            partitions=s.partitions,
            key_type=bytes,
            value_type=bytes,
            options=table_options(s),
        )
        self.thresholds = parse_thresholds(s.sync_stale_s)
        self.outbox = Outbox(ttl_s=max(600.0, 10 * s.ops_watch_interval_s))
        self.drift = DriftTracker(s.drift_tolerance_units, s.drift_after_s)
        self.dlq_growth = GrowthWindow(s.dlq_growth_window_s, clock())
        self.sweep_missed = GrowthWindow(s.ct_sweep_missed_window_s, clock())
        self.breached: set[str] = set()  # ack-deadline ids counted as breaches
        # the PO flow raises holds itself: the watcher re-raises only missing ones, later
        self.hold_grace_s = max(60.0, 4 * s.ops_watch_interval_s)
        app.agent(self.topic, name="ops-exceptions")(self.exceptions_agent)
        app.timer(s.ops_watch_interval_s, name="ops-watchers")(self.watch)

    def offered(self, state: SkuState) -> int | None:
        """What the inventory flow tells Amazon for this SKU now (None: not offered): the
        same rule under the same warehouse policy."""
        return offered(state, self.defaults, self.policy())

    def all_exceptions(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for key, raw in self.exceptions.items():
            try:
                out[key.decode()] = loads(raw)
            except (ValueError, UnicodeDecodeError):
                continue
        return out

    def runbook_url(self, rec: Mapping[str, Any]) -> str:
        path = str(rec.get("runbook") or f"{RUNBOOKS}/{rec.get('kind')}.md")
        return self.settings.runbook_base_url + path

    # --- the only writer of ``exceptions`` ---------------------------------------------------
    async def exceptions_agent(self, stream: Any) -> None:
        topic = self.settings.topic_exceptions
        async for event in stream.events():
            key: bytes | None = event.key
            if not key:
                M.RECORDS.labels(topic, "ignored").inc()
                continue
            if event.value is None:  # tombstone: a resolved exception past its retention
                if self.exceptions.get(key) is not None:
                    del self.exceptions[key]
                M.RECORDS.labels(topic, "applied").inc()
                continue
            try:
                incoming = complete(key.decode("utf-8", "replace"), loads(event.value))
                raw = self.exceptions.get(key)
                merged = merge(loads(raw) if raw else None, incoming)
            except (ValueError, TypeError) as exc:  # a bad record must not stop the partition
                log.warning("ops.exceptions: ignored record %r: %s", key[:80], exc)
                M.RECORDS.labels(topic, "ignored").inc()
                continue
            if merged is None:
                M.RECORDS.labels(topic, "duplicate").inc()
                continue
            self.exceptions[key] = dumps(merged)
            M.RECORDS.labels(topic, "applied").inc()

    # --- the watchers (a timer: reads tables, never writes them) ---------------------------
    async def watch(self) -> None:
        if self.app.rebalancing:
            return
        now = self.clock()
        try:
            table = self.all_exceptions()
        except Exception:  # a revoked partition mid-scan: next tick
            log.exception("ops watchers: cannot read the exceptions table")
            return
        open_ = [r for r in table.values() if r.get("status") == "open"]
        out: list[dict[str, Any]] = []
        for name, watcher in (
            ("purchase orders", self._watch_pos),
            ("inventory drift", self._watch_skus),
            ("stale syncs", self._watch_flows),
            ("dead letters", self._watch_dlq),
            ("missed notifications", self._watch_sweep),
        ):
            try:
                out += await watcher(now, open_, table)
            except Exception:  # one broken watcher must not silence the others
                log.exception("ops watcher %s failed", name)
        try:
            for rec in out:
                await self._send(rec)
            await self._purge(now, table)
        except Exception:  # Kafka away: what was not sent is found again next tick
            log.exception("ops watchers: cannot send to %s", self.settings.topic_exceptions)
            self.outbox.sent.clear()
        self.outbox.prune(now)
        gauge_open(table)

    async def _send(self, rec: dict[str, Any]) -> None:
        await self.topic.send(key=str(rec["id"]).encode(), value=dumps(rec))
        M.EXCEPTIONS.labels(rec["kind"], rec["owner"], rec["status"]).inc()

    async def resolve_by_hand(self, rec: Mapping[str, Any], note: str) -> None:
        why = f"resolved by hand: {note}" if note else "resolved by hand"
        await self._send(resolution(rec, self.clock(), why))

    async def _purge(self, now: float, table: Mapping[str, Mapping[str, Any]]) -> None:
        for exc_id, rec in table.items():
            if expired(rec, now, self.settings.exceptions_retention_s) and self.outbox.due(
                exc_id, ("deleted",), None, now
            ):
                await self.topic.send(key=exc_id.encode(), value=None)

    async def _watch_pos(
        self, now: float, open_: list[dict[str, Any]], table: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        pos = self.pos
        if pos is None:
            return []
        s = self.settings
        local: dict[str, dict[str, Any]] = {}
        wants: list[Want] = []
        bands = dict.fromkeys(AGE_BANDS, 0)
        oldest = 0.0
        async for key, raw in _scan(pos):
            po = loads(raw)
            number = str(po.get("po") or key.decode())
            local[number] = po
            if not acknowledged(po) and po.get("poDate") is not None:
                age = max(0.0, now - float(po["poDate"]))
                bands[age_band(age, s.ack_warning_s, s.ack_deadline_s)] += 1
                oldest = max(oldest, age)
            want = ack_deadline_want(po, now, s.ack_warning_s, s.ack_deadline_s)
            if want is not None:
                wants.append(want)
            wants += hold_wants(po, now, self.hold_grace_s)
            wants += unmapped_wants(po, self._known_product)
        for band, n in bands.items():
            M.PO_UNACKNOWLEDGED.labels(band).set(n)
        M.PO_UNACKNOWLEDGED_OLDEST.set(oldest)
        judged = [r for r in open_ if po_judged(r, local)]
        out = reconcile(
            wants, judged, table.get, now, self.outbox, lambda r: po_resolution(r, local)
        )
        for rec in out:  # a breach: the PO's deadline exception turns critical (once)
            if rec["kind"] == "ack-deadline" and rec["status"] == "open":
                before = table.get(rec["id"]) or {}
                counted = rec["id"] in self.breached or (
                    before.get("status") == "open" and before.get("severity") == "critical"
                )
                if rec["severity"] == "critical" and not counted:
                    M.ACK_DEADLINE_BREACHES.inc()
                    self.breached.add(rec["id"])
        # forget breaches the table shows resolved (or gone): memory stays small
        self.breached = {i for i in self.breached if (table.get(i) or {}).get("status") == "open"
                         or i not in table}  # fmt: skip
        return out

    async def _watch_skus(
        self, now: float, open_: list[dict[str, Any]], table: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        skus = self.skus
        if skus is None:
            return []
        local: set[str] = set()
        drifts = []
        async for key, raw in _scan(skus):
            if stored_clean(raw):
                # published since its last change: what Amazon was told is its availability
                # (a policy change is caught by the inventory flow's full scan); no decode,
                # which at a million SKUs is most of this watcher's cost
                clean = key.decode()
                local.add(clean)
                self.drift.since.pop(clean, None)
                continue
            state = SkuState.from_dict(loads(raw))
            local.add(state.sku)
            want = self.offered(state)
            d = self.drift.observe(state.sku, state.last_published, want, now)
            if d is not None:
                drifts.append(d)
        self.drift.keep_only(local)
        for direction, (n, units) in drift_totals(drifts).items():
            M.DRIFT_SKUS.labels(direction).set(n)
            M.DRIFT_UNITS.labels(direction).set(units)
        drifts.sort(key=lambda d: -abs(d.diff))
        wants = [d.want_exception(now) for d in drifts[:DRIFT_EXCEPTIONS_MAX]]
        # still beyond the tolerance (in its grace period, or past the cap): left as it is
        drifting = set(self.drift.since)
        judged = [
            r
            for r in open_
            if r.get("kind") == "inventory-drift"
            and (sku := (r.get("refs") or {}).get("sku")) in local
            and sku not in drifting
        ]
        return reconcile(
            wants,
            judged,
            table.get,
            now,
            self.outbox,
            lambda r: "what Amazon was told matches the master again",
        )

    async def _watch_flows(
        self, now: float, open_: list[dict[str, Any]], table: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        last = {labels["flow"]: value for labels, value in samples(M.LAST_SUCCESS)}
        wants = stale_wants(last, self.thresholds, self._owns_flow, now, self.worker)
        judged = [r for r in open_ if scope_judged(r, "sync-stale", self.worker)]
        return reconcile(
            wants, judged, table.get, now, self.outbox, lambda r: "the flow succeeded again"
        )

    async def _watch_dlq(
        self, now: float, open_: list[dict[str, Any]], table: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        totals: dict[str, float] = defaultdict(float)
        for labels, value in samples(M.DLQ):
            totals[labels["topic"]] += value
        growth = self.dlq_growth.observe(totals, now)
        window = self.settings.dlq_growth_window_s
        wants = dlq_wants(growth, window, self.worker)
        judged = [r for r in open_ if scope_judged(r, "dlq-growth", self.worker)]
        return reconcile(
            wants,
            judged,
            table.get,
            now,
            self.outbox,
            lambda r: f"no dead letter for {window:.0f} s",
        )

    async def _watch_sweep(
        self, now: float, open_: list[dict[str, Any]], table: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Changes only the changed-since sweep found: the subscription is losing messages."""
        s = self.settings
        missed = sum(v for labels, v in samples(M.SWEEP_FINDINGS) if labels["kind"] == "missed")
        growth = self.sweep_missed.observe({"missed": missed}, now).get("missed", 0.0)
        want = missed_want(
            growth, s.ct_sweep_missed_window_s, s.ct_sweep_missed_threshold, self.worker
        )
        kind = "ct-notifications-missed"
        judged = [r for r in open_ if scope_judged(r, kind, self.worker)]
        window = s.ct_sweep_missed_window_s
        return reconcile(
            [want] if want else [],
            judged,
            table.get,
            now,
            self.outbox,
            lambda r: f"fewer than {s.ct_sweep_missed_threshold} missed changes in {window:.0f} s",
        )

    def _known_product(self, asin: str | None, vpi: str | None) -> bool:
        """Does a SKU mapping name this Amazon product now (the global ``products`` index)?"""
        products = self.products
        if products is None:
            return False
        return any(
            products.get(prefix + ident.encode()) is not None
            for prefix, ident in ((b"asin:", asin), (b"vpi:", vpi))
            if ident
        )

    def _owns_flow(self, flow: str) -> bool:
        """Does this worker do the flow's work (own a partition of its input)? A worker that
        lost its partitions keeps an old timestamp that says nothing."""
        s = self.settings
        if flow == "po_poll":
            return bool(self.app.is_leader())  # the poller runs on the leader only
        ingest = self.ingest
        if flow == "ingest" and ingest is not None:  # its own consumer group (agents/ingest.py)
            return bool(ingest.owns(s.topic_ct_messages))
        inputs = {
            "ingest": s.topic_ct_messages,
            "inventory_publish": f"{s.app_id}-sku-events",
            "ack_submit": s.topic_po_acknowledgements,
            "asn_submit": s.topic_shipment_confirmations,
            "ct_commands": s.topic_inventory_commands,
        }
        topic = inputs.get(flow)
        if topic is None:
            return True
        return any(tp.topic == topic for tp in self.app.consumer.assignment())


async def _scan(table: Any) -> AsyncIterator[tuple[bytes, bytes]]:
    """The table's records in its local active partitions (not the keys it derives
    locally), yielding the loop now and then."""
    for i, (key, raw) in enumerate(table.items()):
        if i % _YIELD_EVERY == _YIELD_EVERY - 1:
            await asyncio.sleep(0)
        if is_record_key(key):
            yield key, raw
