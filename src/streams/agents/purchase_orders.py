"""Purchase orders (docs/purchase-orders.md): intake, line routing, decisions, acknowledgements.

    SP-API poller ──> amazon.purchase-orders (key: PO) ──intake──> table ``pos``
                                 │ the lines to allocate, one bundle per SKU partition
                                 └──> <app>-sku-events ──SKU agent── decision ──┐
                                                         └─> ct.inventory-commands
    <app>-po-events (key: PO) <─────────────────────────────────────────────────┘
        └─ every line decided ─> amazon.po-acknowledgements ──sender──> SP-API
                                                                    └─> transaction status

Allocation runs on the partition that owns the SKU's stock, so no two POs can sell the same
units. The acknowledgement is built once per PO revision and stored; a resend is identical.

Batches: ``po-events`` and the ack sender take what arrived within ``po_batch_within_s``
(20 ms) of each other. ``po-events`` reads and writes each PO's document once per batch,
however many line decisions the batch holds, so collecting a PO's decisions costs a few
document writes, not one per line (O(lines²) bytes for a PO).
The ack sender and the transaction poller are :mod:`streams.agents.po_acks`. The rules on
one PO (revisions, decisions, when to acknowledge, what a Closed PO gives back) are
:mod:`streams.domain.po_book` on the typed record :mod:`streams.domain.purchase_order`;
this module decodes, calls them, saves the record and carries out their effects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import faust
from faust.types import EventT
from pydantic import ValidationError

from streams.adapters.codecs import decode_record, dumps, loads
from streams.agents.clients import LazyClient, spapi_client
from streams.agents.faustutil import DirectWriter, raw_topic, read_partition
from streams.agents.ingest import Bundler
from streams.agents.po_acks import AckSender
from streams.agents.reports import DeadLetters, ExceptionReporter, internal_error
from streams.agents.storeopts import table_options
from streams.config import Settings
from streams.domain import po_book, po_messages
from streams.domain.exceptions import Refs
from streams.domain.mapping import SkuMapping
from streams.domain.po_close import shipped_eaches
from streams.domain.po_messages import (
    Notice,
    OrderTaken,
    PoEvent,
    sku_message,
)
from streams.domain.product_index import lookup as lookup_mapping
from streams.domain.purchase_order import PurchaseOrderRecord
from streams.domain.purchase_orders import Order
from streams.observability import metrics as M

log = logging.getLogger(__name__)

RECENT_ACKS = 10_000  # acknowledgements this worker submitted, remembered to skip redeliveries
SENT_HERE = 50_000  # outputs this process queued itself, remembered (see _sent_here)
MAPPING_CACHE = 50_000  # SKU mappings kept validated (keyed by their stored bytes)
# records to send once a PO document is saved: topic, key, value, partition (None: by key)
Out = list[tuple[str, bytes | None, bytes, int | None]]


class PurchaseOrderFlow:
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
        # the app's shared SP-API client (one rate budget per worker), made on first use
        self.spapi = LazyClient(spapi_factory, spapi_client(s))
        self.po_topic = raw_topic(app, s.topic_purchase_orders)
        self.events_topic = raw_topic(
            app, f"{s.app_id}-po-events", partitions=s.partitions, internal=True
        )
        self.ack_topic = raw_topic(app, s.topic_po_acknowledgements)
        self.direct = DirectWriter(app)
        self.exceptions_topic = raw_topic(app, s.topic_exceptions)
        self.dlq = raw_topic(app, s.dlq_topic(s.topic_purchase_orders))
        self.dead_letters = DeadLetters(
            self.dlq, lambda: self.clock(), source=s.topic_purchase_orders
        )
        self.reports = ExceptionReporter(self.exceptions_topic, lambda: self.clock())
        self.pos = app.Table(
            "pos",
            partitions=s.partitions,
            key_type=bytes,
            value_type=bytes,
            options=table_options(s),
        )
        self.acks = AckSender(
            app, s, self.spapi, self.pos, self.events_topic, self._exception, clock
        )
        # txid -> (the POs whose acknowledgement it carried, submitted at): the sender's
        self.pending_tx = self.acks.pending_tx
        self._mappings: dict[bytes, SkuMapping] = {}  # stored mapping JSON -> its model
        # (PO, "sku:<rev>" | "ack:<hash>"): outputs this process queued itself. A no-op
        # message repeats the stored record's outputs only when they are not here: this
        # process is alive, so what it queued is delivered (or its batch failed, which
        # clears this); only a crash (a new process) or a rebalance loses them.
        self._sent_here: OrderedDict[tuple[bytes, str], None] = OrderedDict()
        # the ASN flow's ``shipments`` table (same key and partitioning), when it runs: what
        # was shipped decides what a Closed PO gives back (see streams.domain.po_close)
        self.shipments: Any = None
        app.agent(self.po_topic, name="po-intake")(self.intake)
        app.agent(self.events_topic, name="po-events")(self.po_events)
        app.agent(self.ack_topic, name="ack-sender")(self.acks.ack_sender)
        app.timer(s.tx_poll_interval_s, name="tx-status")(self.acks.poll_transactions)
        app.on_rebalance_complete.connect(self._rescan)  # type: ignore[arg-type]

    async def _rescan(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        self.acks.needs_scan = True

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- master data lookups (global table) -------------------------------------------
    def resolve(self, asin: str | None, vpi: str | None) -> SkuMapping | None:
        raw = lookup_mapping(self.products.get, asin, vpi)
        return self._mapping(raw) if raw is not None else None

    def _mapping(self, raw: bytes) -> SkuMapping:
        """The model of a stored mapping, validated once per distinct value."""
        m = self._mappings.get(raw)
        if m is None:
            if len(self._mappings) >= MAPPING_CACHE:
                self._mappings.clear()
            m = self._mappings[raw] = SkuMapping.model_validate_json(raw)
        return m

    # --- owned exceptions ---------------------------------------------------------------
    async def _exception(self, kind: str, refs: Refs, cause: str, *, status: str = "open") -> None:
        await self.reports.send(kind, refs, cause, status=status)

    def _exception_record(
        self, kind: str, refs: Refs, cause: str, *, status: str = "open"
    ) -> tuple[str, bytes, bytes, None]:
        _, key, value = self.reports.record(kind, refs, cause, status=status)
        return self.settings.topic_exceptions, key, value, None

    # --- intake: amazon.purchase-orders -------------------------------------------------
    async def intake(self, stream: Any) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            await self._intake_one(event)
            M.BATCH_SECONDS.labels("po-intake").observe(time.perf_counter() - started)

    async def _intake_one(self, event: EventT) -> None:
        """Validate and re-key by PO number with our own partitioner: the ``pos`` table is
        written by one agent only, whatever partitioner the upstream producer used."""
        raw: bytes | None = event.value
        try:
            obj = decode_record(raw, self.settings.topic_purchase_orders)
            try:
                order = Order.model_validate(obj)
            except ValidationError as exc:
                raise ValueError(f"not an SP-API Order: {_short(exc)}") from None
            if order.orderDetails is None:
                raise ValueError("Order has no orderDetails (fetched with includeDetails=false)")
            key = order.purchaseOrderNumber.encode()
            if event.key is not None and event.key != key:
                raise ValueError(
                    f"key {event.key!r} is not the PO number {order.purchaseOrderNumber}"
                )
        except ValueError as exc:
            await self.dead_letters.send(event, str(exc))
            return
        except Exception as exc:  # never lose a record to a bug: dead-letter it
            log.exception("po-intake: unexpected error")
            await self.dead_letters.send(event, internal_error(exc))
            return
        await self.events_topic.send(key=key, value=_encode(OrderTaken(obj)))

    def _shipped(self, partition: int, key: bytes) -> dict[str, int]:
        """Eaches our ASNs shipped per PO line (by ``seq_key``); none without the ASN flow."""
        if self.shipments is None:
            return {}
        raw = read_partition(self.shipments, partition).get(key)
        return shipped_eaches(loads(raw)) if raw else {}

    # --- decisions, acknowledgement state ------------------------------------------------
    async def po_events(self, stream: Any) -> None:  # faust.Stream (StreamT lacks noack_take)
        # noack_take: a record is acked once what it produced is sent and its PO saved
        s = self.settings
        async for batch in stream.noack_take(s.batch_max, s.po_batch_within_s):
            started = time.perf_counter()
            events = cast(list[EventT], batch)
            try:
                await asyncio.gather(*await self._po_batch(events))
            except BaseException:
                self._sent_here.clear()  # not delivered: a redelivery must send it again
                raise
            for ev in events:
                await stream.ack(ev)
            M.BATCH_SECONDS.labels("po-events").observe(time.perf_counter() - started)
            M.BATCH_EVENTS.labels("po-events").observe(len(events))
            batch = events = []  # Faust waits for handed-out events to be released

    async def _po_batch(self, events: list[EventT]) -> list[Any]:
        """One read and at most one write of each PO's document per batch; what the batch
        produced is sent once the document is saved (the ack sender reads it). Returns the
        delivery futures of the sends and of the documents' changelog records.

        The store is read and written directly (one RocksDB read per PO, one WriteBatch per
        partition), as the SKU agent does, not through Faust's per-key table machinery.
        """
        futures: list[Any] = []
        groups: dict[tuple[int, bytes], list[EventT]] = {}
        for ev in events:
            groups.setdefault((ev.message.partition, cast(bytes, ev.key)), []).append(ev)
        writes: dict[int, list[tuple[bytes, bytes | None]]] = {}
        out: Out = []
        for (partition, key), group in groups.items():
            raw = read_partition(self.pos, partition).get(key)
            po = PurchaseOrderRecord.from_json(loads(raw)) if raw else None
            changed = decided = redelivered = False
            for ev in group:
                msg = po_messages.from_json(loads(ev.value))
                po, c, d = self._apply(key, po, msg, out, partition)
                changed, decided, redelivered = changed or c, decided or d, redelivered or not c
            if po is not None and decided:
                self._maybe_acknowledge(key, po, out)
            elif po is not None and redelivered:
                self._resend_acknowledgement(key, po, out)
            if po is not None and changed:
                writes.setdefault(partition, []).append((key, dumps(po.to_json())))
        # documents first: the ack sender reads a PO's document when its acknowledgement comes
        for partition, items in writes.items():
            futures.extend(await self.direct.put_many(self.pos, partition, items))
        for topic, k, v, to in out:
            futures.append(await self.direct.send(topic, k, v, to))
        return futures

    def _context(self, partition: int, key: bytes) -> po_book.Context:
        return po_book.Context(
            resolve=self.resolve,
            now=self.clock(),
            backorder_lead_days=self.settings.backorder_lead_days,
            shipped=lambda: self._shipped(partition, key),
        )

    def _apply(
        self,
        key: bytes,
        po: PurchaseOrderRecord | None,
        msg: PoEvent | Notice | None,
        out: Out,
        partition: int = 0,
    ) -> tuple[PurchaseOrderRecord | None, bool, bool]:
        """Apply one po-events message: (record, changed, a line decision was taken in);
        the records it produced are queued on ``out`` (sent once the record is saved)."""
        po, eff = po_book.apply(po, msg, self._context(partition, key))
        if po is not None and eff.sku and eff.records in ("applied", "duplicate"):
            # a revision's lines (or a Closed one's releases) and notices: once per process
            if not self._remember(key, f"sku:{po.rev}:{po.state}") and eff.records == "duplicate":
                eff.sku, eff.notices = [], []
        if eff.records is not None:
            M.RECORDS.labels(self.settings.topic_purchase_orders, eff.records).inc()
        if eff.closed is not None:
            M.PO_CLOSED.labels(eff.closed).inc()
        for kind, refs, cause in eff.exceptions:
            out.append(self._exception_record(kind, refs, cause))
        events = self.events_topic.get_topic_name()
        out.extend((events, key, _encode(n), None) for n in eff.notices)
        if eff.sku:
            # one record per SKU partition carries the PO's lines there, not one per line
            bundler = Bundler(self.settings.partitions, self.settings.ingest_bundle_max)
            for m in eff.sku:
                bundler.add(m.sku, sku_message(m))
            name = self.sku_topic.get_topic_name()
            out.extend((name, None, value, p) for p, value in bundler.bundles())
        if eff.watch is not None and po is not None and po.number is not None:
            txid, at = eff.watch
            self.pending_tx.setdefault(txid, (set(), at))[0].add(po.number)
        if eff.settled is not None:
            self.pending_tx.pop(eff.settled, None)
        if eff.latency is not None:
            M.ACK_LATENCY.observe(eff.latency)
        return po, eff.changed, eff.decided

    def _maybe_acknowledge(self, key: bytes, po: PurchaseOrderRecord, out: Out) -> None:
        """Build the acknowledgement once every line is decided (and none is on hold)."""
        ctx = self._context(0, key)
        body = po_book.acknowledge(po, ctx, self.settings.spapi_selling_party)
        if isinstance(body, str):
            log.info("PO %s not ready: %s", po.number, body, extra={"po": po.number})
        elif body is not None:
            out.append((self.settings.topic_po_acknowledgements, key, body, None))
            self._remember(key, f"ack:{po.ack.hash}")
            M.ACKS.labels("built").inc()


    def _resend_acknowledgement(self, key: bytes, po: PurchaseOrderRecord, out: Out) -> None:
        """A message that changed nothing (a redelivery after a crash between saving the
        record and sending its acknowledgement): the built acknowledgement again, identical."""
        body = po_book.unsent_acknowledgement(po, self.settings.spapi_selling_party)
        if body is not None and self._remember(key, f"ack:{po.ack.hash}"):
            out.append((self.settings.topic_po_acknowledgements, key, body, None))
            M.ACKS.labels("resent").inc()

    def _remember(self, key: bytes, what: str) -> bool:
        """Note that this process queued ``what`` of PO ``key``; False when it had already."""
        k = (key, what)
        if k in self._sent_here:
            self._sent_here.move_to_end(k)
            return False
        self._sent_here[k] = None
        while len(self._sent_here) > SENT_HERE:
            self._sent_here.popitem(last=False)
        return True


def _encode(msg: PoEvent | Notice) -> bytes:
    return dumps(po_messages.to_json(msg))


def _short(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)
