"""Direct Fulfillment orders: intake, allocation, acknowledgement, confirmation (issue 13).

    amazon.df-orders (key: PO) ──df-intake── redact ─> <app>-df-events (key: PO)
         └─ bad record (redacted copy) ─> amazon.df-orders.dlq   │ df-events: the only
                                                                 │ writer of df_orders[PO]
    lines, one bundle per SKU partition ─> <app>-sku-events ─ SKU agent ─ decisions ─┘
                                              └─> ct.inventory-commands (reserve, release)
    every line decided ─> <app>-df-outbox ──df-sender──> SP-API DF submitAcknowledgement
    wms.dispatches of a DF order (ASN flow) ─> df-events ─> outbox ─> submitShipmentConfirmations
    timers: df-tx (transaction status), df-watch (acknowledge-by deadline, open gauge)

The rules on one order are :mod:`streams.domain.df_book`; this module decodes, calls them,
saves the record and carries out the effects. The customer's address is hashed by
:func:`streams.domain.df_orders.redact` before anything else happens to a record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, cast

import faust
from faust.types import EventT

from streams.adapters import amazon_models
from streams.adapters.codecs import MAX_RECORD_BYTES, dumps, loads
from streams.agents.clients import LazyClient, spapi_client
from streams.agents.df_sales import DfSales
from streams.agents.faustutil import DirectWriter, raw_topic
from streams.agents.ingest import Bundler
from streams.agents.reports import DeadLetters, ExceptionReporter, internal_error
from streams.agents.storeopts import table_options
from streams.config import Settings
from streams.domain import ack_policy, df_ack, df_book
from streams.domain.df_orders import df_number, parse_df_order, redact
from streams.domain.df_record import DfRecord
from streams.domain.df_record import view as df_view
from streams.domain.exceptions import Refs
from streams.domain.mapping import SkuMapping
from streams.domain.ports import DfSpApi
from streams.domain.product_index import lookup as lookup_mapping
from streams.observability import metrics as M

log = logging.getLogger(__name__)

# what each kind of outbox body is sent as: model API, definition, request wrapper key
SENDS = {
    "ack": (
        "df-orders", "SubmitAcknowledgementRequest", "orderAcknowledgements",
    ),
    "confirm": (
        "df-shipping", "SubmitShipmentConfirmationsRequest",
        "shipmentConfirmations",
    ),
    "status": (
        "df-shipping", "SubmitShipmentStatusUpdatesRequest",
        "shipmentStatusUpdates",
    ),
}  # fmt: skip
RECENT_SENDS = 10_000  # bodies this worker submitted, remembered to skip a resent copy
TX_KIND = {"ack": "df-ack", "confirm": "df-confirm", "status": "df-status"}  # metric labels
EXCEPTION_OF = {"ack": "df-ack-rejected", "confirm": "df-confirmation-failed",
                "status": "df-confirmation-failed"}  # fmt: skip


class DfOrderFlow:
    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        sku_topic: faust.TopicT,
        products: Any,
        clock: Callable[[], float] = time.time,
        spapi_factory: Callable[[], Any] | None = None,
    ) -> None:
        s = self.settings = settings
        self.app = app
        self.clock = clock
        self.sku_topic = sku_topic
        self.products = products  # GlobalTable: asin:/vpi: -> sku, sku: -> mapping json
        self.spapi = LazyClient(spapi_factory, spapi_client(s, hooks=M.SpApiResponses()))
        self.pii_key = s.df_pii_key.get_secret_value().encode()
        self.in_topic = raw_topic(app, s.topic_df_orders)
        self.events_topic = raw_topic(
            app, f"{s.app_id}-df-events", partitions=s.partitions, internal=True
        )
        self.outbox = raw_topic(
            app, f"{s.app_id}-df-outbox", partitions=s.partitions, internal=True
        )
        self.dlq = raw_topic(app, s.dlq_topic(s.topic_df_orders))
        self.dead_letters = DeadLetters(self.dlq, lambda: self.clock(), source=s.topic_df_orders)
        self.reports = ExceptionReporter(raw_topic(app, s.topic_exceptions), lambda: self.clock())
        self.df_orders = app.Table(
            "df_orders",
            partitions=s.partitions,
            key_type=bytes,
            value_type=bytes,
            options=table_options(s),
        )
        # txid -> (PO, kind, sid, submitted at): the transactions to poll
        self.direct = DirectWriter(app)
        self.pending_tx: dict[str, tuple[str, str, str, float]] = {}
        # (PO, kind, sid) -> digest this worker submitted: a copy the redelivery rule resent
        # before df-events applied the first one's "submitted" is not sent to Amazon again
        self.recent_sends: OrderedDict[tuple[bytes, str, str], str] = OrderedDict()
        self.needs_scan = True
        # called with (record, dispatch id) when Amazon accepts a shipment confirmation (the
        # invoice flow, set by create_app); the record is saved before they are called
        self.on_confirmed: list[Callable[[DfRecord, str], Awaitable[None]]] = []
        # the commercetools order for finance (AMZDF-<PO>), as the retail sales orders
        self.sales = (
            DfSales(app, s, self.df_orders, self.reports) if s.sales_orders_enabled else None
        )
        app.agent(self.in_topic, name="df-intake")(self.intake)
        app.agent(self.events_topic, name="df-events")(self.df_events)
        app.agent(self.outbox, name="df-sender")(self.sender)
        app.timer(s.tx_poll_interval_s, name="df-tx")(self.poll_transactions)
        app.timer(s.df_watch_interval_s, name="df-watch")(self.watch)
        app.on_rebalance_complete.connect(self._rescan)  # type: ignore[arg-type]
        flow = self

        async def api_df(view: Any, request: Any, number: str) -> Any:
            return await flow.api_order(view, request, number)  # a function: Faust binds it

        app.page("/api/df/{number:.+}", name="df_api_order")(api_df)

    async def api_order(self, view: Any, request: Any, number: str) -> Any:
        """``GET /api/df/<PO>``: the order as ``df_book.view`` shows it (the worker's bearer
        guard covers it as every /api path); 404 when this worker does not hold it."""
        raw = self.df_orders.get(number.encode())
        if raw is None:
            body = {"error": f"DF order {number!r} is not held by this worker"}
            return view.bytes(dumps(body), content_type="application/json", status=404)
        body = df_view(DfRecord.from_json(loads(raw)), self.clock())
        return view.bytes(dumps(body), content_type="application/json")

    async def _rescan(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        self.needs_scan = True

    # --- the SKU agent's DF decisions come here (wired by create_app) -------------------
    def decisions_record(self, po_key: bytes, ds: list[Any]) -> tuple[str, bytes, bytes]:
        number = df_number(po_key.decode()) or po_key.decode()
        value = dumps({"t": "decisions", "ds": ds})
        return self.events_topic.get_topic_name(), number.encode(), value

    async def forward_dispatch(self, key: bytes, raw: dict[str, Any], at: float) -> None:
        """A WMS dispatch of a DF order (the ASN flow routes it here)."""
        await self.events_topic.send(key=key, value=dumps({"t": "dispatch", "d": raw, "at": at}))

    def knows(self, key: bytes) -> bool:
        """True when ``key`` is a DF order taken in (read in the ASN agent's event, whose
        partition is the same: both topics are keyed by PO with our partitioner)."""
        return self.df_orders.get(key) is not None

    def resolve(self, asin: str | None, vpi: str | None) -> SkuMapping | None:
        raw = lookup_mapping(self.products.get, asin, vpi)
        return SkuMapping.model_validate_json(raw) if raw is not None else None

    # --- intake: amazon.df-orders ---------------------------------------------------------
    async def intake(self, stream: Any) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            await self._intake_one(event)
            M.BATCH_SECONDS.labels("df-intake").observe(time.perf_counter() - started)

    async def _intake_one(self, event: EventT) -> None:
        """Redact first, then validate and re-key by PO number with our own partitioner.
        Nothing of the record is logged; a bad one is dead-lettered as a redacted copy."""
        raw: bytes | None = event.value
        redacted: bytes | None = None
        try:
            if raw is None:
                raise ValueError("empty value (tombstone)")
            if len(raw) > MAX_RECORD_BYTES:
                raise ValueError(f"oversize record: {len(raw)} bytes")
            try:
                obj = loads(raw)
            except Exception:
                raise ValueError("not JSON (value withheld: it may carry an address)") from None
            obj = redact(obj, self.pii_key)
            redacted = dumps(obj)
            order = parse_df_order(obj)
            key = order.purchaseOrderNumber.encode()
            if event.key is not None and event.key != key:
                raise ValueError(
                    f"key {event.key!r} is not the PO number {order.purchaseOrderNumber}"
                )
        except ValueError as exc:
            await self._dead_letter(event, redacted, str(exc))
            return
        except Exception as exc:  # never lose a record to a bug: dead-letter it (redacted)
            log.error("df-intake: unexpected %s", type(exc).__name__)
            await self._dead_letter(event, redacted, internal_error(exc))
            return
        await self.events_topic.send(key=key, value=dumps({"t": "order", "raw": obj}))

    async def _dead_letter(self, event: EventT, redacted: bytes | None, error: str) -> None:
        M.DF_ORDERS.labels("dlq").inc()
        copy = SimpleNamespace(message=event.message, value=redacted)
        await self.dead_letters.send(copy, error)

    # --- df-events: the only writer of ``df_orders`` ------------------------------------
    async def df_events(self, stream: Any) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            try:
                await self._on_event(event.key, loads(event.value))
            except Exception as exc:  # a bug must not stop the partition
                log.error("df-events: cannot apply a %s to DF order %r: %s",
                          type(exc).__name__, event.key, str(exc)[:200])  # fmt: skip
            M.BATCH_SECONDS.labels("df-events").observe(time.perf_counter() - started)

    def _context(self) -> df_book.Context:
        s = self.settings
        return df_book.Context(
            resolve=self.resolve, now=self.clock(), ack_within_s=s.df_ack_within_s,
            selling_party=s.spapi_df_selling_party or s.spapi_selling_party,
        )  # fmt: skip

    async def _on_event(self, key: bytes, msg: dict[str, Any]) -> None:
        stored = self.df_orders.get(key)
        rec = DfRecord.from_json(loads(stored)) if stored else None
        rec, eff = df_book.apply(rec, msg, self._context())
        if rec is None:
            return
        eff = df_book.redelivered(rec, eff)  # a no-op: repeat what may not have gone out
        if eff.changed:
            self.df_orders[key] = dumps(rec.to_json())
        for outcome in filter(None, (eff.outcome, *eff.counts)):
            M.DF_ORDERS.labels(outcome).inc()
        for kind, refs, cause in eff.exceptions:
            await self.reports.send(kind, refs, cause)
        if eff.sku:
            bundler = Bundler(self.settings.partitions, self.settings.ingest_bundle_max)
            for item in eff.sku:
                bundler.add(item["sku"], item)
            name = self.sku_topic.get_topic_name()
            for p, value in bundler.bundles():
                await self.direct.send(name, None, value, p)
        for body in eff.outbox:
            await self.outbox.send(key=key, value=dumps(body))
        if eff.sales and self.sales is not None:
            await self.sales.topic.send(key=key, value=b"{}")
        for tag, txid, at in eff.watch:
            kind, sid = tag.split(":", 1)
            self.pending_tx[txid] = (rec.number, kind, sid, at)
        for txid in eff.settled:
            self.pending_tx.pop(txid, None)
        for sid in eff.confirmed:
            for hook in self.on_confirmed:
                await hook(rec, sid)

    # --- the sender: outbox -> SP-API ---------------------------------------------------
    async def sender(self, stream: Any) -> None:
        async for event in stream.events():
            try:
                await self._send(event.key, loads(event.value))
            except Exception as exc:
                log.error("df-sender: %s for DF order %r", type(exc).__name__, event.key)

    def _validate(self, kind: str, request: dict[str, Any], body: dict[str, Any]) -> list[str]:
        api, definition, _ = SENDS[kind]
        if not amazon_models.available(api):  # validate() warns once and counts it too
            M.DF_SENDS.labels(kind, "unvalidated").inc()
        problems = amazon_models.validate(api, definition, request)
        if kind == "ack":
            problems += df_ack.check_acknowledgement(body)
        return problems

    async def _send(self, key: bytes, item: dict[str, Any]) -> None:
        from streams.adapters.spapi import SpApiError

        kind, sid, digest, body = item["kind"], item["sid"], item["hash"], item["body"]
        stored = self.df_orders.get(key)
        rec = DfRecord.from_json(loads(stored)) if stored else None
        sent_here = self.recent_sends.get((key, kind, sid)) == digest
        if rec is None or sent_here or df_book.submitted(rec, kind, sid, digest):
            M.DF_SENDS.labels(kind, "duplicate").inc()
            return
        request = {SENDS[kind][2]: [body]}
        problems = self._validate(kind, request, body)
        refs = Refs(purchaseOrderNumber=f"DF-{rec.number}")
        if problems:
            M.DF_SENDS.labels(kind, "invalid").inc()
            await self.reports.send(EXCEPTION_OF[kind], refs,
                                    "not sent, invalid: " + "; ".join(problems)[:1500])  # fmt: skip
            return
        api = cast(DfSpApi, self.spapi())
        if kind == "ack":
            call = api.df_submit_acknowledgement
        elif kind == "confirm":
            call = api.df_submit_shipment_confirmations
        else:
            call = api.df_submit_shipment_status_updates
        delay = 1.0
        auth_reported = False
        while True:
            try:
                txid = await call(request)
                break
            except SpApiError as exc:
                what = ack_policy.on_refusal(exc.status, 1)
                if what == "credentials" and not auth_reported:
                    auth_reported = True
                    cause = (f"SP-API refused our credentials ({exc.status}); the DF {kind} "
                             "is kept and retried")  # fmt: skip
                    await self.reports.send(EXCEPTION_OF[kind], refs, cause)
                if what == "reject":
                    text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in exc.errors)
                    M.DF_SENDS.labels(kind, "refused").inc()
                    refused = {"t": "refused", "kind": kind, "sid": sid, "error": text}
                    await self.events_topic.send(key=key, value=dumps(refused))
                    return
                log.warning(
                    "DF %s of %s not submitted yet (%s); retrying", kind, rec.number, exc.status
                )
            except Exception as exc:
                log.warning("DF %s of %s: %s; retrying", kind, rec.number, type(exc).__name__)
            await asyncio.sleep(delay)
            delay = ack_policy.next_delay(delay)
        M.DF_SENDS.labels(kind, "submitted").inc()
        self.recent_sends[(key, kind, sid)] = digest
        self.recent_sends.move_to_end((key, kind, sid))
        while len(self.recent_sends) > RECENT_SENDS:
            self.recent_sends.popitem(last=False)
        msg = {"t": "submitted", "kind": kind, "sid": sid, "hash": digest, "txid": txid,
               "at": self.clock()}  # fmt: skip
        await self.events_topic.send(key=key, value=dumps(msg))

    # --- timers ------------------------------------------------------------------------
    async def poll_transactions(self) -> None:
        if self.app.rebalancing:
            return
        if self.needs_scan:
            self.needs_scan = False
            for _, raw in self.df_orders.items():
                for txid, entry in df_book.processing(DfRecord.from_json(loads(raw))):
                    self.pending_tx.setdefault(txid, entry)
        for txid, (number, kind, sid, at) in list(self.pending_tx.items()):
            try:
                status = await self.spapi().get_df_transaction(txid)
            except Exception as exc:
                log.warning("DF transaction %s status unknown: %s", txid, type(exc).__name__)
                continue
            state = ack_policy.transaction_outcome(
                status.get("status", "Processing"), at, self.clock(),
                self.settings.tx_processing_success_s,
            )  # fmt: skip
            if state == "Processing":
                continue
            self.pending_tx.pop(txid, None)
            tx = {"id": txid, "status": state, "errors": status.get("errors") or []}
            if state == "Failure":
                M.TX_FAILURES.labels(TX_KIND[kind]).inc()
            msg = {"t": "tx", "kind": kind, "sid": sid, "tx": tx}
            await self.events_topic.send(key=number.encode(), value=dumps(msg))

    async def watch(self) -> None:
        """Orders nearing acknowledge-by unacknowledged are reported (once, by df-events)."""
        if self.app.rebalancing:
            return
        now, warn = self.clock(), self.settings.df_deadline_warn_s
        open_ = 0
        for key, raw in self.df_orders.items():
            rec = DfRecord.from_json(loads(raw))
            if rec.acknowledged:
                continue
            open_ += 1
            if not rec.late and now >= rec.ack_by - warn:
                await self.events_topic.send(key=key, value=dumps({"t": "late"}))
        M.DF_OPEN.set(open_)
