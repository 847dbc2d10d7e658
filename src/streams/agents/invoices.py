"""Invoice flow wiring: accepted shipment confirmations -> invoices -> SP-API ``submitInvoices``.

Thin: the rules are :mod:`streams.domain.invoice` (builder), ``invoice_check`` (the check
before sending) and ``invoice_book`` (the per-PO record and its decisions). This module moves
bytes between Kafka, the tables and Amazon::

    ASN agent: transaction Success ──> <app>-invoice-events (key: PO) ──invoice-events──┐
    invoice-status timer: getTransaction, start-up scan ──────────────┘                 │
      reads pos[PO] (PO flow) and shipments[PO] (ASN flow); writes invoices[PO]          │
        invalid ──> ops.exceptions (invoice-invalid, owner finance), nothing sent        │
        valid   ──> amazon.invoices (key: invoice number) ──invoice-sender──> Amazon ────┘
                    (writes invoice_sent[number]; "submitted"/"rejected" into the events)

The event topic has the PO key, partition count and partitioner of the PO and ASN flows'
topics, so ``pos[PO]`` and ``shipments[PO]`` are on the partition being processed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import faust

from streams.adapters.amazon_models import validate as amazon_validate
from streams.adapters.codecs import dumps, loads
from streams.agents.clients import LazyClient, spapi_client
from streams.agents.faustutil import raw_topic
from streams.agents.invoice_sender import InvoiceSender
from streams.agents.storeopts import table_options
from streams.config import Settings
from streams.domain import df_invoice
from streams.domain.asn_state import ShipmentBook
from streams.domain.df_orders import df_number
from streams.domain.invoice import InvoiceRules, PoTerms, terms_from_record
from streams.domain.invoice_book import InvoiceBook, InvoiceEffects
from streams.observability import metrics as M

if TYPE_CHECKING:
    from streams.agents.asn import AsnFlow
    from streams.agents.purchase_orders import PurchaseOrderFlow
    from streams.domain.df_record import DfRecord

log = logging.getLogger(__name__)


class InvoiceFlow:
    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        po_flow: PurchaseOrderFlow,  # read: its ``pos`` table
        asn_flow: AsnFlow,  # read: its ``shipments`` table; tells us of accepted ASNs
        clock: Callable[[], float] = time.time,
        spapi_factory: Callable[[], Any] | None = None,
    ) -> None:
        s = self.settings = settings
        self.app = app
        self.po_flow = po_flow
        self.asn_flow = asn_flow
        self.clock = clock
        self.spapi = LazyClient(spapi_factory, spapi_client(s, hooks=M.SpApiResponses()))
        self.events_topic = raw_topic(
            app, f"{s.app_id}-invoice-events", partitions=s.partitions, internal=True
        )
        self.out_topic = raw_topic(app, s.topic_invoices)
        self.exceptions_topic = raw_topic(app, s.topic_exceptions)
        # PO number -> InvoiceBook JSON; written by the invoice agent only
        self.invoices = _table(app, "invoices", s)
        # invoice number -> {digest, state, outcome}; written by the sender only
        self.sent = _table(app, "invoice_sent", s)
        self.model_check = partial(amazon_validate, "vendorInvoices", "Invoice")
        # Direct Fulfillment invoices (books under DF-<PO>): create_app hooks
        # df_shipment_confirmed to the DF flow when both run
        self.df_model_check = partial(amazon_validate, "df-payments", "InvoiceDetail")
        self.pending_tx: dict[str, tuple[str, str, float]] = {}  # txid -> (PO, number, at)
        self.waiting: set[str] = set()  # POs with shipments not invoiced yet (per-po mode)
        self.needs_scan = True
        asn_flow.on_accepted.append(self.shipment_accepted)
        app.agent(self.events_topic, name="invoice-events")(self.invoice_events)
        self.sender = InvoiceSender(
            self.sent, self.events_topic, self.spapi, self.model_check,
            lambda: self.clock(), self._flush, self.df_model_check,
        )  # fmt: skip
        app.agent(self.out_topic, name="invoice-sender")(self.sender.run)
        app.timer(s.tx_poll_interval_s, name="invoice-status")(self.tick)
        app.on_rebalance_complete.connect(self._rescan)  # type: ignore[arg-type]

    async def _flush(self) -> None:
        await self.app.producer.flush()

    async def _rescan(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        self.needs_scan = True

    def rules(self, terms: PoTerms | str) -> InvoiceRules:
        s = self.settings
        party = terms.selling_party if isinstance(terms, PoTerms) else s.spapi_selling_party
        return InvoiceRules(
            remit_to=s.invoice_remit_to or {"partyId": party},
            ship_from=s.invoice_ship_from,
            tax_type=s.invoice_tax_type,
            tax_rate=s.invoice_tax_rate,
            price_tolerance=s.invoice_price_tolerance,
            price_overrides=s.invoice_price_overrides,
            number_pattern=s.invoice_number_pattern,
            mode=s.invoice_mode,
        )

    def df_rules(self, terms: PoTerms | str, ship_from: str | None) -> InvoiceRules:
        """The retail rules, with the DF order's warehouse as ship-from, rendered as DF."""
        s = self.settings
        party = terms.selling_party if isinstance(terms, PoTerms) else s.spapi_selling_party
        base = self.rules(terms)
        return InvoiceRules(
            remit_to=s.invoice_remit_to or {"partyId": party},
            ship_from={"partyId": ship_from or s.spapi_df_warehouse},
            tax_type=base.tax_type, tax_rate=base.tax_rate,
            price_tolerance=base.price_tolerance, price_overrides=base.price_overrides,
            number_pattern=base.number_pattern, mode=base.mode,
            render=df_invoice.to_df_invoice,
        )  # fmt: skip

    def terms(self, po: str) -> PoTerms | str:
        raw = self.po_flow.pos.get(po.encode())
        return terms_from_record(loads(raw) if raw else None, self.settings.spapi_selling_party)

    # --- from the ASN flow ---------------------------------------------------------------
    async def shipment_accepted(self, po: str, sid: str, version: dict[str, Any]) -> None:
        await self.events_topic.send(key=po.encode(), value=dumps(_shipment_event(sid, version)))

    async def df_shipment_confirmed(self, rec: DfRecord, sid: str) -> None:
        """Amazon accepted a DF shipment confirmation (the DF flow's hook)."""
        event = df_invoice.shipment_event(rec, sid)
        key = df_invoice.book_key(rec.number).encode()
        await self.events_topic.send(key=key, value=dumps(event))

    # --- the invoice agent: the only writer of ``invoices`` -----------------------------
    async def invoice_events(self, stream: Any) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            key: bytes = event.key
            try:
                await self._on_event(key, loads(event.value))
            except Exception:  # a bug must not stop the partition; the record is logged
                log.exception("invoice-events: cannot apply %r to PO %r", event.value[:300], key)
            M.BATCH_SECONDS.labels("invoice-events").observe(time.perf_counter() - started)

    async def _on_event(self, key: bytes, item: dict[str, Any]) -> None:
        raw = self.invoices.get(key)
        book = InvoiceBook(key.decode(), loads(raw) if raw else None)
        now = datetime.fromtimestamp(self.clock(), UTC)
        t = item["t"]
        if df_number(book.po) is not None:  # a DF order's book: its terms came with it
            if item.get("df"):
                book.data["df"] = item["df"]
            df = book.data.get("df")
            s = self.settings
            seller = s.spapi_df_selling_party or s.spapi_selling_party
            terms = df_invoice.terms_from_df(df, seller, s.invoice_df_bill_to)
            rules = self.df_rules(terms, (df or {}).get("shipFrom"))
            check = self.df_model_check
        elif t in ("shipment", "recheck"):
            terms = self.terms(book.po)
            rules, check = self.rules(terms), self.model_check
        if t == "shipment":
            eff = book.on_shipment(item["sid"], item["digest"], item["shipped"], terms,
                                   rules, check, now)  # fmt: skip
        elif t == "recheck":
            eff = book.on_recheck(terms, rules, check, now)
        elif t == "submitted":
            eff = book.on_submitted(item["number"], item["digest"], item["txid"], item["at"],
                                    bool(item.get("resent")))  # fmt: skip
        elif t == "rejected":
            eff = book.on_rejected(item["number"], item["digest"], item["error"], now)
        elif t == "tx":
            eff = book.on_transaction(item["number"], item["txid"], item["status"],
                                      item.get("errors") or [], now)  # fmt: skip
        else:
            log.warning("invoice-events: unknown event type %r for PO %r", t, key)
            return
        await self._apply(key, book, eff)

    async def _apply(self, key: bytes, book: InvoiceBook, eff: InvoiceEffects) -> None:
        if eff.changed:
            self.invoices[key] = dumps(book.to_json())
        for number, body in eff.publish:
            await self.out_topic.send(key=number.encode(), value=dumps(body))
        for rec in eff.exceptions:
            await self.exceptions_topic.send(key=rec["id"].encode(), value=dumps(rec))
            M.EXCEPTIONS.labels(rec["kind"], rec["owner"], rec["status"]).inc()
        for outcome in eff.outcomes:
            M.INVOICES.labels(outcome).inc()
            if outcome == "failed":
                M.TX_FAILURES.labels("invoice").inc()
        for txid in eff.done:
            self.pending_tx.pop(txid, None)
        for txid, number, at in eff.watch:
            self.pending_tx[txid] = (book.po, number, at)
        if book.waiting():
            self.waiting.add(book.po)
        else:
            self.waiting.discard(book.po)

    # --- timer: transaction status, the start-up scan (never writes tables) -------------
    async def tick(self) -> None:
        if self.app.rebalancing:
            return
        if self.needs_scan:
            self.needs_scan = False
            await self._scan()
        for po in list(self.waiting):
            terms = self.terms(po)
            if isinstance(terms, PoTerms) and terms.closed:  # invoice what a Closed PO shipped
                self.waiting.discard(po)
                await self.events_topic.send(key=po.encode(), value=dumps({"t": "recheck"}))
        for txid, (po, number, submitted) in list(self.pending_tx.items()):
            try:
                api = self.spapi()
                get = api.get_df_transaction if df_number(po) else api.get_transaction
                status = await get(txid)
            except Exception as exc:
                log.warning("invoice transaction %s status unknown: %s", txid, type(exc).__name__)
                continue
            state = status.get("status", "Processing")
            now = self.clock()
            if state == "Processing" and now - submitted >= self.settings.tx_processing_success_s:
                state = "Success"  # Amazon: still Processing after 15 minutes = processed
            if state == "Processing":
                continue
            self.pending_tx.pop(txid, None)
            report = {"t": "tx", "number": number, "txid": txid, "status": state,
                      "errors": status.get("errors") or [], "at": now}  # fmt: skip
            await self.events_topic.send(key=po.encode(), value=dumps(report))

    async def _scan(self) -> None:
        """After start or a rebalance: republish queued invoices (a crash may have lost
        them; the sender drops what it sent), watch submitted ones, judge invalid ones
        again, and pick up accepted shipments whose event a crash lost."""
        pending: dict[str, tuple[str, str, float]] = {}
        books: dict[bytes, InvoiceBook] = {}
        for key, raw in self.invoices.items():
            book = books[key] = InvoiceBook(key.decode(), loads(raw))
            for number, body in book.queued():
                await self.out_topic.send(key=number.encode(), value=dumps(body))
            for txid, number, at in book.in_flight():
                pending[txid] = (book.po, number, at)
            if book.to_retry():
                await self.events_topic.send(key=key, value=dumps({"t": "recheck"}))
            if book.waiting():
                self.waiting.add(book.po)
        self.pending_tx = pending
        for key, raw in self.asn_flow.shipments.items():
            shipments = ShipmentBook(key.decode(), loads(raw))
            known = books.get(key)
            for sid in shipments.shipments:
                version = shipments.effective(sid)
                if version is None or version["status"] != "accepted":
                    continue
                seen = known.shipments.get(sid) if known else None
                if seen is None or (seen["digest"] != version["digest"]
                                    and "replacedBy" not in seen):  # fmt: skip
                    await self.events_topic.send(
                        key=key, value=dumps(_shipment_event(sid, version))
                    )


def _shipment_event(sid: str, version: dict[str, Any]) -> dict[str, Any]:
    return {"t": "shipment", "sid": sid, "digest": version["digest"],
            "shipped": version.get("shipped") or {}}  # fmt: skip


def _table(app: faust.App, name: str, s: Settings) -> Any:
    return app.Table(
        name,
        partitions=s.partitions,
        key_type=bytes,
        value_type=bytes,
        options=table_options(s),
    )
