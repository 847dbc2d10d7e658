"""Dispatch -> ASN (docs/asn.md): intake, join and check per PO, sender, transaction status.

    wms.dispatches (key: PO) ──intake──> <app>-asn-events (key: PO, our partitioner)
         └─ bad record ─> wms.dispatches.dlq          │ ASN agent: reads pos[PO] (same key,
                                                      │ partition count and partitioner), the
                                                      │ only writer of shipments[PO], asn_used
         ┌─ valid ────────────────────────────────────┤
         │                 not acknowledged / invalid ─┴─> ops.exceptions (owner: fulfilment)
         └─> amazon.shipment-confirmations (key: shipment id) ──sender──> SP-API
                     sender: the only writer of asn_sent[shipment id] ─┬─ "submitted" / "rejected"
    timer: transaction status; dispatches waiting for an acknowledgement ─┴─> <app>-asn-events

The rules (what is a redelivery, which ids are used, when an exception opens or resolves)
are in :mod:`streams.domain.asn_state` and :mod:`streams.domain.asn`; this module moves
bytes between Kafka, the tables and Amazon.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import faust
from faust.types import EventT
from pydantic import ValidationError

from streams.adapters.amazon_models import validate as amazon_validate
from streams.adapters.codecs import decode_record, dumps, loads, utc_iso
from streams.agents.asn_sender import AsnSender
from streams.agents.clients import LazyClient, spapi_client
from streams.agents.faustutil import raw_topic
from streams.agents.reports import DeadLetters, internal_error
from streams.agents.storeopts import table_options
from streams.config import Settings
from streams.domain.asn import SHIPMENT_ID_REUSE_WINDOW, PoState, UsedShipment
from streams.domain.asn_effects import (
    VERSION_HEADER,
    Effects,
    Rules,
    Used,
)
from streams.domain.asn_state import ShipmentBook, po_state_from_record
from streams.domain.dispatch import Dispatch
from streams.domain.mapping import SkuMapping
from streams.observability import metrics as M

if TYPE_CHECKING:
    from streams.agents.purchase_orders import PurchaseOrderFlow

log = logging.getLogger(__name__)


class AsnFlow:
    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        po_flow: PurchaseOrderFlow,  # read: its ``pos`` table and ``products`` global table
        clock: Callable[[], float] = time.time,
        spapi_factory: Callable[[], Any] | None = None,
    ) -> None:
        s = self.settings = settings
        self.app = app
        self.po_flow = po_flow
        self.clock = clock
        # the app's shared SP-API client (one rate budget per worker), made on first use
        self.spapi = LazyClient(spapi_factory, spapi_client(s, hooks=M.SpApiResponses()))
        self.dispatch_topic = raw_topic(app, s.topic_dispatches)
        self.events_topic = raw_topic(
            app, f"{s.app_id}-asn-events", partitions=s.partitions, internal=True
        )
        self.out_topic = raw_topic(app, s.topic_shipment_confirmations)
        self.exceptions_topic = raw_topic(app, s.topic_exceptions)
        self.dlq = raw_topic(app, s.dlq_topic(s.topic_dispatches))
        self.dead_letters = DeadLetters(self.dlq, lambda: self.clock(), source=s.topic_dispatches)
        # PO number -> ShipmentBook JSON; written by the ASN agent only
        self.shipments = _table(app, "shipments", s)
        # shipment id -> {ASN digest: outcome}; written by the sender only (its own key space)
        self.sent = _table(app, "asn_sent", s)
        # "sid:"/"bol:"/"sscc:" -> claim, across all POs (the 365-day rules); ASN agent only
        self.used = app.GlobalTable(
            "asn_used",
            partitions=s.partitions,
            key_type=bytes,
            value_type=bytes,
            options=table_options(s),
        )
        self.model_check = partial(amazon_validate, "vendorShipments", "ShipmentConfirmation")
        self.pending_tx: dict[str, tuple[str, str, float]] = {}  # txid -> (PO, sid, submitted)
        self.waiting: set[str] = set()  # POs whose dispatches wait for the acknowledgement
        self.needs_scan = True
        # called with (PO, shipment id, accepted version) when Amazon accepts a confirmation
        # (the invoice flow); the shipments table is written before they are called
        self.on_accepted: list[Callable[[str, str, dict[str, Any]], Awaitable[None]]] = []
        # the Direct Fulfillment flow (agents/df_orders.py), when it runs: set by create_app
        self.df_flow: Any = None
        app.agent(self.dispatch_topic, name="asn-intake")(self.intake)
        app.agent(self.events_topic, name="asn-events")(self.asn_events)
        self.sender = AsnSender(
            self.sent, self.events_topic, self.spapi, self.model_check, lambda: self.clock()
        )
        app.agent(self.out_topic, name="asn-sender")(self.sender.run)
        app.timer(s.tx_poll_interval_s, name="asn-status")(self.tick)
        app.on_rebalance_complete.connect(self._rescan)  # type: ignore[arg-type]

    async def _rescan(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        self.needs_scan = True

    def rules(self) -> Rules:
        s = self.settings
        return Rules(
            now=datetime.fromtimestamp(self.clock(), UTC),
            model_check=self.model_check,
            carrier_details_required=s.asn_carrier_details_required,
            collect_freight=s.asn_collect_freight,
            sscc_with_ai=s.asn_sscc_with_ai,
            future_tolerance=timedelta(seconds=s.asn_shipped_date_tolerance_s),
        )

    # --- reads of the purchase-order flow's state (never written here) ------------------
    def po_state(self, po: str) -> PoState | str:
        raw = self.po_flow.pos.get(po.encode())
        return po_state_from_record(loads(raw) if raw else None, self.settings.spapi_selling_party)

    def items(self, dispatch: Dispatch) -> Mapping[str, SkuMapping]:
        """commercetools master data of the dispatched SKUs (identifiers, case sizes)."""
        out: dict[str, SkuMapping] = {}
        for sku in dispatch.shipped_eaches():
            raw = self.po_flow.products.get(b"sku:" + sku.encode())
            if raw is not None:
                out[sku] = SkuMapping.model_validate_json(raw)
        return out

    # --- intake: wms.dispatches -> asn-events -------------------------------------------
    async def intake(self, stream: Any) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            await self._intake_one(event)
            M.BATCH_SECONDS.labels("asn-intake").observe(time.perf_counter() - started)

    async def _intake_one(self, event: EventT) -> None:
        """Validate and re-key by PO number with our own partitioner, so the ASN agent reads
        ``pos`` on the partition that holds it, whatever partitioner the WMS used."""
        raw: bytes | None = event.value
        try:
            value = decode_record(raw, "wms.dispatches")
            try:
                dispatch = Dispatch.model_validate(value)
            except ValidationError as exc:
                raise ValueError(f"not a dispatch: {_short(exc)}") from None
            key = dispatch.purchaseOrderNumber.encode()
            if event.key is not None and event.key != key:
                raise ValueError(
                    f"key {event.key!r} is not the PO number {dispatch.purchaseOrderNumber}"
                )
        except ValueError as exc:
            await self.dead_letters.send(event, str(exc))
            return
        except Exception as exc:  # never lose a record to a bug: dead-letter it
            log.exception("dispatch intake: unexpected error")
            await self.dead_letters.send(event, internal_error(exc))
            return
        record = {"t": "dispatch", "d": value, "at": self.clock()}
        await self.events_topic.send(key=key, value=dumps(record))

    # --- the ASN agent: the only writer of ``shipments`` and ``asn_used`` ---------------
    async def asn_events(self, stream: Any) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            key: bytes = event.key
            try:
                await self._on_event(key, loads(event.value))
            except Exception:  # a bug must not stop the partition; the record is logged
                log.exception(
                    "asn-events: cannot apply %r to PO %r", event.value[:300], key,
                    extra={"po": key.decode(errors="replace") if isinstance(key, bytes) else key},
                )  # fmt: skip
            M.BATCH_SECONDS.labels("asn-events").observe(time.perf_counter() - started)

    async def _on_event(self, key: bytes, item: dict[str, Any]) -> None:
        raw_book = self.shipments.get(key)
        book = ShipmentBook(key.decode(), loads(raw_book) if raw_book else None)
        index = _UsedIndex(self.used, self.clock())
        now_iso = utc_iso(self.clock())
        t = item["t"]
        if t == "dispatch" and self._is_df(key):
            await self.df_flow.forward_dispatch(key, item["d"], item["at"])
            return
        if t == "dispatch":
            dispatch = Dispatch.model_validate(item["d"])
            eff = book.on_dispatch(
                item["d"], dispatch, self.po_state(book.po), self.items(dispatch),
                index, self.rules(), item["at"],
            )  # fmt: skip
            outcome = "duplicate" if eff.outcomes == ["duplicate"] else "applied"
            M.RECORDS.labels(self.settings.topic_dispatches, outcome).inc()
        elif t == "recheck":
            eff = book.on_recheck(self.po_state(book.po), self.items, index, self.rules())
        elif t == "submitted":
            eff = book.on_submitted(
                item["sid"], item["digest"], item.get("n"), item["txid"], item["at"]
            )
        elif t == "rejected":
            eff = book.on_rejected(
                item["sid"], item["digest"], item.get("n"), item["error"], now_iso
            )
        elif t == "tx":
            eff = book.on_transaction(
                item["sid"], item["txid"], item["status"], item.get("errors") or [], now_iso
            )
        else:
            log.warning("asn-events: unknown event type %r for PO %r", t, key)
            return
        await self._apply(key, book, eff)
        if t == "tx" and "accepted" in eff.outcomes:
            version = book.effective(item["sid"])
            for listener in self.on_accepted:
                if version is not None:
                    await listener(book.po, item["sid"], version)

    def _is_df(self, key: bytes) -> bool:
        """A dispatch of a Direct Fulfillment order (known to the DF flow, not a retail PO):
        its confirmation is the DF flow's, not an ASN (retail behaviour is unchanged)."""
        return (
            self.df_flow is not None and self.po_flow.pos.get(key) is None
            and self.df_flow.knows(key)
        )  # fmt: skip

    async def _apply(self, key: bytes, book: ShipmentBook, eff: Effects) -> None:
        if eff.changed:
            self.shipments[key] = dumps(book.to_json())
        for used in eff.release:
            self._release(used)
        for used in eff.register:
            self._register(used)
        for sid, asn, n in eff.publish:
            await self._publish(sid, asn, n)
        for rec in eff.exceptions:
            await self.exceptions_topic.send(key=rec["id"].encode(), value=dumps(rec))
            M.EXCEPTIONS.labels(rec["kind"], rec["owner"], rec["status"]).inc()
        for outcome in eff.outcomes:
            M.ASNS.labels(outcome).inc()
        for seconds in eff.latency:
            M.ASN_LATENCY.observe(seconds)
        if eff.tx_failures:
            M.TX_FAILURES.labels("shipment").inc(eff.tx_failures)
        for txid in eff.done:
            self.pending_tx.pop(txid, None)
        for txid, sid, at in eff.watch:
            self.pending_tx[txid] = (book.po, sid, at)
        if book.pending():
            self.waiting.add(book.po)
        else:
            self.waiting.discard(book.po)

    async def _publish(self, sid: str, asn: dict[str, Any], n: int) -> None:
        await self.out_topic.send(
            key=sid.encode(), value=dumps(asn), headers={VERSION_HEADER: str(n).encode()}
        )

    def _register(self, used: Used) -> None:
        sid = used.sid
        value = used.shipment.model_dump_json().encode()
        if self.used.get(b"sid:" + sid.encode()) != value:
            self.used[b"sid:" + sid.encode()] = value
        claim = dumps({"sid": sid, "at": self.clock()})
        for prefix, keys in ((b"bol:", used.bills_of_lading), (b"sscc:", used.ssccs)):
            for k in keys:
                raw = self.used.get(prefix + k.encode())
                if raw is None or loads(raw)["sid"] != sid:
                    self.used[prefix + k.encode()] = claim

    def _release(self, used: Used) -> None:
        key = b"sid:" + used.sid.encode()
        raw = self.used.get(key)
        if raw is not None and UsedShipment.model_validate_json(raw).purchaseOrderNumber == (
            used.shipment.purchaseOrderNumber
        ):
            del self.used[key]
        for prefix, keys in ((b"bol:", used.bills_of_lading), (b"sscc:", used.ssccs)):
            for k in keys:
                raw = self.used.get(prefix + k.encode())
                if raw is not None and loads(raw)["sid"] == used.sid:
                    del self.used[prefix + k.encode()]

    # --- timer: transaction status, waiting dispatches (never writes tables) ------------
    async def tick(self) -> None:
        if self.app.rebalancing:
            return
        if self.needs_scan:
            self.needs_scan = False
            await self._scan()
        for po in list(self.waiting):
            if isinstance(self.po_state(po), PoState):
                self.waiting.discard(po)  # the ASN agent adds it back if it still waits
                await self.events_topic.send(key=po.encode(), value=dumps({"t": "recheck"}))
        for txid, (po, sid, submitted) in list(self.pending_tx.items()):
            try:
                status = await self.spapi().get_transaction(txid)
            except Exception as exc:
                log.warning("ASN transaction %s status unknown: %s", txid, type(exc).__name__)
                continue
            state = status.get("status", "Processing")
            now = self.clock()
            if state == "Processing" and now - submitted >= self.settings.tx_processing_success_s:
                state = "Success"  # Amazon: still Processing after 15 minutes = processed
            if state == "Processing":
                continue
            self.pending_tx.pop(txid, None)
            report = {
                "t": "tx", "sid": sid, "txid": txid, "status": state,
                "errors": status.get("errors") or [], "at": now,
            }  # fmt: skip
            await self.events_topic.send(key=po.encode(), value=dumps(report))

    async def _scan(self) -> None:
        """After start or a rebalance: rebuild the in-memory work lists from the table."""
        pending_tx: dict[str, tuple[str, str, float]] = {}
        waiting: set[str] = set()
        for key, raw in self.shipments.items():
            book = ShipmentBook(key.decode(), loads(raw))
            for txid, sid, at in book.in_flight():
                pending_tx[txid] = (book.po, sid, at)
            if book.pending():
                waiting.add(book.po)
            for sid, asn, n in book.queued():
                await self._publish(sid, asn, n)
        self.pending_tx, self.waiting = pending_tx, waiting


class _UsedIndex:
    """:class:`streams.domain.asn_state.UsedIndex` over the ``asn_used`` global table."""

    def __init__(self, table: Any, now: float) -> None:
        self.table = table
        self.oldest = now - SHIPMENT_ID_REUSE_WINDOW.total_seconds()

    def shipment(self, sid: str) -> UsedShipment | None:
        raw = self.table.get(b"sid:" + sid.encode())
        return UsedShipment.model_validate_json(raw) if raw else None

    def bill_of_lading(self, bol: str) -> str | None:
        return self._claim(b"bol:" + bol.encode())

    def sscc(self, sscc: str) -> str | None:
        return self._claim(b"sscc:" + sscc.encode())

    def _claim(self, key: bytes) -> str | None:
        raw = self.table.get(key)
        if raw is None:
            return None
        claim = loads(raw)
        return str(claim["sid"]) if claim["at"] >= self.oldest else None


def _table(app: faust.App, name: str, s: Settings) -> Any:
    return app.Table(
        name,
        partitions=s.partitions,
        key_type=bytes,
        value_type=bytes,
        options=table_options(s),
    )


def _short(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        # the error type keeps the DLQ reason class meaningful ("missing", ...)
        parts.append(f"{loc}: {e['msg']} ({e['type']})")
    return "; ".join(parts)
