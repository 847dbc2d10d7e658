"""Purchase orders (DESIGN.md flows 4-6): intake, line routing, decisions, acknowledgements.

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
The ack sender puts the acknowledgements waiting together into one ``submitAcknowledgement``
request (at most ``ack_batch_max``, ``ack_batch_max_bytes``), embedding each one's bytes as
built; one transaction is then polled per request, and reported to each of its POs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import faust
from faust.types import EventT
from pydantic import ValidationError

from streams.adapters.codecs import decode_record, dumps, loads, utc_iso
from streams.adapters.fast_schema import validate as amazon_validate
from streams.agents.clients import LazyClient, spapi_client
from streams.agents.faustutil import DirectWriter, dead_letter, raw_topic, read_partition
from streams.agents.ingest import Bundler
from streams.agents.storeopts import table_options
from streams.config import Settings
from streams.domain import ack_policy, po_book, po_messages
from streams.domain.acknowledgement import (
    plan_requests,
    validate_acknowledgement,
)
from streams.domain.exceptions import Refs, raise_exception, to_record
from streams.domain.mapping import SkuMapping
from streams.domain.po_messages import (
    AckFailed,
    AckSubmitted,
    Notice,
    OrderTaken,
    PoEvent,
    TxChecked,
    sku_message,
)
from streams.domain.purchase_order import PurchaseOrderRecord
from streams.domain.purchase_orders import Order
from streams.observability import metrics as M

log = logging.getLogger(__name__)

RECENT_ACKS = 10_000  # acknowledgements this worker submitted, remembered to skip redeliveries
MAPPING_CACHE = 50_000  # SKU mappings kept validated (keyed by their stored bytes)
# records to send once a PO document is saved: topic, key, value, partition (None: by key)
Out = list[tuple[str, bytes | None, bytes, int | None]]


@dataclass
class _PendingAck:
    event: EventT
    key: bytes
    body: bytes
    digest: str

    @property
    def number(self) -> str:
        return self.key.decode()


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
        self.pos = app.Table(
            "pos",
            partitions=s.partitions,
            key_type=bytes,
            value_type=bytes,
            options=table_options(s),
        )
        # txid -> (the POs whose acknowledgement it carried, submitted at)
        self.pending_tx: dict[str, tuple[set[str], float]] = {}
        # PO -> digest of the acknowledgement this worker submitted last (redeliveries)
        self._submitted: OrderedDict[bytes, str] = OrderedDict()
        self._mappings: dict[bytes, SkuMapping] = {}  # stored mapping JSON -> its model
        self.needs_scan = True
        # the ASN flow's ``shipments`` table (same key and partitioning), when it runs: what
        # was shipped decides what a Closed PO gives back (see streams.domain.po_close)
        self.shipments: Any = None
        app.agent(self.po_topic, name="po-intake")(self.intake)
        app.agent(self.events_topic, name="po-events")(self.po_events)
        app.agent(self.ack_topic, name="ack-sender")(self.ack_sender)
        app.timer(s.tx_poll_interval_s, name="tx-status")(self.poll_transactions)
        app.on_rebalance_complete.connect(self._rescan)  # type: ignore[arg-type]

    async def _rescan(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        self.needs_scan = True

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- master data lookups (global table) -------------------------------------------
    def resolve(self, asin: str | None, vpi: str | None) -> SkuMapping | None:
        for prefix, ident in ((b"asin:", asin), (b"vpi:", vpi)):
            if not ident:
                continue
            sku = self.products.get(prefix + ident.encode())
            if sku is None:
                continue
            raw = self.products.get(b"sku:" + sku)
            if raw is not None:
                return self._mapping(raw)
        return None

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
        _, key, value, _ = self._exception_record(kind, refs, cause, status=status)
        await self.exceptions_topic.send(key=key, value=value)

    def _exception_record(
        self, kind: str, refs: Refs, cause: str, *, status: str = "open"
    ) -> tuple[str, bytes, bytes, None]:
        exc = raise_exception(kind, refs, cause, utc_iso(self.clock()))
        rec = to_record(exc)
        rec["status"] = status
        M.EXCEPTIONS.labels(kind, exc.owner, status).inc()
        return self.settings.topic_exceptions, exc.id.encode(), dumps(rec), None

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
            await self._dead_letter(event, str(exc))
            return
        except Exception as exc:  # never lose a record to a bug: dead-letter it
            log.exception("po-intake: unexpected error")
            await self._dead_letter(event, f"internal error: {type(exc).__name__}: {exc}"[:300])
            return
        await self.events_topic.send(key=key, value=_encode(OrderTaken(obj)))

    def _shipped(self, partition: int, key: bytes) -> dict[str, int]:
        """Eaches our ASNs shipped per PO line (by ``seq_key``); none without the ASN flow."""
        if self.shipments is None:
            return {}
        from streams.report import shipped_eaches

        raw = read_partition(self.shipments, partition).get(key)
        return shipped_eaches(loads(raw)) if raw else {}

    async def _dead_letter(self, event: EventT, error: str) -> Any:
        M.RECORDS.labels(self.settings.topic_purchase_orders, "dlq").inc()
        return await dead_letter(self.dlq, event, error, self.clock())

    # --- decisions, acknowledgement state ------------------------------------------------
    async def po_events(self, stream: Any) -> None:  # faust.Stream (StreamT lacks noack_take)
        # noack_take: a record is acked once what it produced is sent and its PO saved
        s = self.settings
        async for batch in stream.noack_take(s.batch_max, s.po_batch_within_s):
            started = time.perf_counter()
            events = cast(list[EventT], batch)
            await asyncio.gather(*await self._po_batch(events))
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
            changed = decided = False
            for ev in group:
                msg = po_messages.from_json(loads(ev.value))
                po, c, d = self._apply(key, po, msg, out, partition)
                changed, decided = changed or c, decided or d
            if po is not None and decided:
                self._maybe_acknowledge(key, po, out)
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
            log.info("PO %s not ready: %s", po.number, body)
        elif body is not None:
            out.append((self.settings.topic_po_acknowledgements, key, body, None))
            M.ACKS.labels("built").inc()

    # --- the acknowledgement sender (own SP-API client, own rate budget) -----------------
    async def ack_sender(self, stream: Any) -> None:  # faust.Stream (StreamT lacks noack_take)
        s = self.settings
        # noack_take: a record is acked once Amazon took (or finally refused) its request; a
        # batch fills at most one burst of full requests, the rest waits for the next
        size = s.ack_batch_max * max(1, s.spapi_burst)
        async for batch in stream.noack_take(size, s.po_batch_within_s):
            started = time.perf_counter()
            events = cast(list[EventT], batch)
            await self._send_acks(events)
            for ev in events:
                await stream.ack(ev)
            M.BATCH_SECONDS.labels("ack-sender").observe(time.perf_counter() - started)
            batch = events = []  # Faust waits for handed-out events to be released

    async def _send_acks(self, events: list[EventT]) -> None:
        """Submit the acknowledgements of ``events``: each valid one that was not submitted
        already, several per request, in the order they were built."""
        s = self.settings
        pending: list[_PendingAck] = []
        queued: set[tuple[bytes, str]] = set()
        for ev in events:
            key, body = cast(bytes, ev.key), cast(bytes, ev.value)
            digest = hashlib.sha256(body).hexdigest()
            if (key, digest) in queued or self._submitted.get(key) == digest:
                M.ACKS.labels("duplicate").inc()
                continue  # the same bytes twice (a redelivery): submitted once
            # the PO's partition of the ``pos`` store (the topics are co-partitioned)
            raw = read_partition(self.pos, ev.message.partition).get(key)
            stored = PurchaseOrderRecord.from_json(loads(raw)).ack if raw else None
            if stored is not None and stored.hash == digest and stored.txid:
                M.ACKS.labels("duplicate").inc()
                continue  # this exact acknowledgement was submitted already
            ack = loads(body)
            problems = amazon_validate("vendorOrders", "OrderAcknowledgement", ack)
            problems += validate_acknowledgement(ack)
            if problems:
                refs = Refs(purchaseOrderNumber=ack.get("purchaseOrderNumber"))
                cause = "not sent, invalid: " + "; ".join(problems)
                await self._exception("ack-rejected", refs, cause)
                M.ACKS.labels("invalid").inc()
                continue
            queued.add((key, digest))
            pending.append(_PendingAck(ev, key, body, digest))
        plan = plan_requests(
            [(p.number, p.body) for p in pending], s.ack_batch_max, s.ack_batch_max_bytes
        )
        for indexes in plan:
            await self._submit_request([pending[i] for i in indexes])

    async def _submit_request(self, acks: list[_PendingAck]) -> None:
        """One ``submitAcknowledgement`` request, retried until Amazon takes it or refuses it.

        A refused request of several acknowledgements is sent again in halves, down to single
        ones, so the acknowledgements Amazon accepts go through and each refusal names its PO;
        a 413 (body too large) splits the same way.
        """
        from streams.adapters.spapi import SpApiAuthError, SpApiError

        delay = 1.0
        auth_reported = False
        while True:
            try:
                txid = await self.spapi().submit_acknowledgement([a.body for a in acks])
                break
            except SpApiError as exc:
                what = ack_policy.on_refusal(
                    exc.status, len(acks), auth_error=isinstance(exc, SpApiAuthError)
                )
                if what == "credentials" and not auth_reported:
                    auth_reported = True
                    for a in acks:
                        await self._exception(
                            "ack-rejected", Refs(purchaseOrderNumber=a.number),
                            f"SP-API refused our credentials ({exc.status}); the "
                            "acknowledgement is kept and retried",
                        )  # fmt: skip
                if what == "split":
                    log.info(
                        "submitAcknowledgement of %d acknowledgements refused (%s); "
                        "sending them again in halves", len(acks), exc.status,
                    )  # fmt: skip
                    M.ACKS.labels("split").inc()
                    for part in ack_policy.halves(len(acks)):
                        await self._submit_request(acks[part])
                    return
                if what == "reject":
                    a = acks[0]
                    text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in exc.errors)
                    await self._exception(
                        "ack-rejected", Refs(purchaseOrderNumber=a.number),
                        f"Amazon rejected the request: {text}",
                    )  # fmt: skip
                    await self.events_topic.send(key=a.key, value=_encode(AckFailed(text)))
                    M.ACKS.labels("rejected").inc()
                    return
                log.warning(
                    "%d acknowledgement(s) not submitted yet (%s, first PO %s); retrying",
                    len(acks), exc.status, acks[0].number,
                )  # fmt: skip
            except Exception as exc:
                log.warning(
                    "%d acknowledgement(s), first PO %s: %s; retrying",
                    len(acks), acks[0].number, type(exc).__name__,
                )  # fmt: skip
            # the acks must not be lost: keep their partitions waiting, with a capped backoff
            await asyncio.sleep(delay)
            delay = ack_policy.next_delay(delay)
        now = self.clock()
        for a in acks:
            submitted = AckSubmitted(txid, now, len(acks), a.digest)
            await self.events_topic.send(key=a.key, value=_encode(submitted))
            self._submitted[a.key] = a.digest
            self._submitted.move_to_end(a.key)
        while len(self._submitted) > RECENT_ACKS:
            self._submitted.popitem(last=False)
        M.ACKS.labels("submitted").inc(len(acks))
        M.BATCH_EVENTS.labels("ack-sender").observe(len(acks))
        M.LAST_SUCCESS.labels("ack_submit").set(now)

    # --- transaction status (timer; never writes tables: reports as po-events) ----------
    async def poll_transactions(self) -> None:
        """One ``getTransaction`` per request; its outcome goes to each PO it carried."""
        if self.app.rebalancing:
            return
        if self.needs_scan:
            self.needs_scan = False
            for _, raw in self.pos.items():
                po = PurchaseOrderRecord.from_json(loads(raw))
                if po.tx.status == "Processing" and po.tx.id and po.number:
                    at = po.ack.submitted_at
                    at = self.clock() if at is None else at
                    self.pending_tx.setdefault(po.tx.id, (set(), at))[0].add(po.number)
        for txid, (numbers, submitted) in list(self.pending_tx.items()):
            try:
                status = await self.spapi().get_transaction(txid)
            except Exception as exc:
                log.warning("transaction %s status unknown: %s", txid, type(exc).__name__)
                continue
            now = self.clock()
            state = ack_policy.transaction_outcome(
                status.get("status", "Processing"), submitted, now,
                self.settings.tx_processing_success_s,
            )  # fmt: skip
            if state == "Processing":
                continue
            errors = status.get("errors") or []
            pos = sorted(numbers)
            if state == "Failure":
                text = _errors_text(errors) or "Failure"
                others = (
                    f" (the request carried {len(pos)} acknowledgements: {', '.join(pos[:20])})"
                    if len(pos) > 1
                    else ""
                )
                for po_number in pos:
                    await self._exception(
                        "ack-transaction-failed",
                        Refs(purchaseOrderNumber=po_number, transactionId=txid),
                        f"Amazon could not process the acknowledgement: {text}{others}",
                    )
                M.TX_FAILURES.labels("acknowledgement").inc()
            self.pending_tx.pop(txid, None)
            record = {"id": txid, "status": state, "errors": errors, "checkedAt": now}
            for po_number in pos:
                await self.events_topic.send(
                    key=po_number.encode(), value=_encode(TxChecked(record))
                )


def _encode(msg: PoEvent | Notice) -> bytes:
    return dumps(po_messages.to_json(msg))


def _short(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def _errors_text(errors: list[dict[str, Any]]) -> str:
    return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
