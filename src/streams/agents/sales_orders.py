"""Sales orders for finance: every acknowledged Amazon PO becomes one commercetools order.

    amazon.po-acknowledgements ───────┐ feed (fan-out subscriber: decodes nothing it
    <app>-po-events (acked, closed) ──┴──> <app>-sales-orders      does not need; key: PO)
                                          │ sales-orders agent: reads ``pos[PO]`` (same key,
                                          │ partition count and partitioner), the only
                                          v writer of ``sales_orders[PO]``
                     commercetools: GET order-number=AMZ-<PO> ─> import / update / replace
                                          └─> ops.exceptions (finance: diverged, refused)

The acknowledgement is the trigger, ``pos`` the content: it holds the PO and every line
decision of the acknowledged revision. An order is made only once the PO is acknowledged
(:func:`streams.domain.purchase_order.is_acknowledged`: submitted for the current revision,
not failed), so the PO flow's ``acked`` notice, sent after it saved the submission, is the
trigger that finds it so; a built acknowledgement alone does not. The feed hop keeps
commercetools away from the acknowledgement topic's own subscriber (the sender to Amazon):
a commercetools outage backs up only ``<app>-sales-orders``, never the priority path.

Idempotent under redelivery and crashes without a transaction: every attempt first looks the
order up by its number and plans from what commercetools holds (the content marker on the
order says whether its lines are current), so a redelivered acknowledgement changes nothing,
a create whose answer was lost is found on the next read, and a 400 DuplicateField on create
(another worker won the race) is re-read the same way. The table only remembers what this
flow cannot ask commercetools: that Amazon closed the PO (the ``closed`` event and a late
acknowledgement may arrive in either order). The rules are :mod:`streams.domain.sales_orders`;
:class:`~streams.agents.sales_order_writer.OrderWriter` is the commercetools part, without Kafka.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import faust
from faust.types import EventT

from streams.adapters.codecs import dumps, loads
from streams.adapters.commercetools import CommercetoolsClient
from streams.agents.clients import LazyClient
from streams.agents.faustutil import bind_event, raw_topic
from streams.agents.reports import ExceptionReporter
from streams.agents.sales_order_writer import (
    _KINDS,
    FAILED,
    Abandoned,
    OrderWriter,
)
from streams.config import Settings
from streams.domain import po_messages
from streams.domain.exceptions import (
    Refs,
    exception_id,
)
from streams.domain.po_messages import Acknowledged, Closed
from streams.domain.sales_orders import (
    SalesOrderError,
    build_sales_order,
    sales_order_number,
)
from streams.observability import metrics as M
from streams.runtime.consumer import release_unacked
from streams.runtime.storeopts import table_options

if TYPE_CHECKING:
    from streams.agents.purchase_orders import PurchaseOrderFlow

log = logging.getLogger(__name__)


class SalesOrderFlow:
    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        po_flow: PurchaseOrderFlow,  # read: its ``pos`` table
        clock: Callable[[], float] = time.time,
    ) -> None:
        s = self.settings = settings
        self.app = app
        self.po_flow = po_flow
        self.clock = clock
        self.ack_name = s.topic_po_acknowledgements
        events_name = po_flow.events_topic.get_topic_name()
        self.feed_topic = app.topic(
            self.ack_name, events_name, key_serializer="raw", value_serializer="raw"
        )
        self.topic = raw_topic(
            app, f"{s.app_id}-sales-orders", partitions=s.partitions, internal=True
        )
        self.exceptions = raw_topic(app, s.topic_exceptions)
        self.reports = ExceptionReporter(
            self.exceptions, lambda: self.clock(), kinds=_KINDS, log=log
        )
        # PO number -> {"closed", "order" (id), "state", "at"}; written by this flow's agent only
        self.table = app.Table(
            "sales_orders",
            partitions=s.partitions,
            key_type=bytes,
            value_type=bytes,
            options=table_options(s),
        )
        self.ct = LazyClient(None, lambda: CommercetoolsClient(settings, hooks=M.CtResponses()))
        self._writer: OrderWriter | None = None
        self._raised: set[str] = set()  # exception ids open from this worker
        app.agent(self.feed_topic, name="sales-orders-feed")(self.feed)
        app.agent(self.topic, name="sales-orders")(self.agent)
        app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]

    @property
    def writer(self) -> OrderWriter:
        if self._writer is None:  # lazily: an event loop exists by the first event
            s = self.settings
            self._writer = OrderWriter(
                self.ct(),
                order_type_key=s.ct_sales_order_type_key,
                line_type_key=s.ct_sales_order_line_type_key,
                replace_allowed=s.sales_order_replace_on_change,
                retry_s=s.sales_order_retry_s,
                report=self._exception,
                resolved=self._resolve,
                abort=self._abort,
            )
        return self._writer

    async def _on_shutdown(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        await self.ct.close()
        self._writer = None

    # --- feed: acknowledgements and PO closures -> <app>-sales-orders -----------------------
    async def feed(self, stream: Any) -> None:
        async for event in stream.events():
            key: bytes | None = event.key
            if not key:
                continue
            if event.message.topic == self.ack_name:
                await self.topic.send(key=key, value=b'{"t":"ack"}')
                continue
            raw: bytes | None = event.value
            # po-events: finance is told once the PO flow has written that the
            # acknowledgement was submitted (the order may be made) or how a closed PO
            # ended (received or cancelled); cheap test before decoding
            if raw is None or (b'"closed"' not in raw and b'"acked"' not in raw):
                continue
            match po_messages.from_json(loads(raw)):
                case Closed():
                    await self.topic.send(key=key, value=b'{"t":"closed"}')
                case Acknowledged():
                    await self.topic.send(key=key, value=b'{"t":"ack"}')

    # --- the agent: one PO at a time, acked once its outcome is final -----------------------
    async def agent(self, stream: Any) -> None:  # faust.Stream (StreamT lacks noack_take)
        s = self.settings
        async for batch in stream.noack_take(s.batch_max, s.batch_within_s):
            events = cast(list[EventT], batch)
            done = 0
            try:
                for ev in events:
                    await self._handle_safely(ev)
                    await stream.ack(ev)
                    done += 1
            except Abandoned as exc:
                left = len(events) - done
                log.warning("%d sales-order events left for redelivery: %s", left, exc)
                self._let_go(events[done:])
            batch = events = []  # Faust waits for handed-out events to be released

    def _let_go(self, events: list[EventT]) -> None:
        """Unacked and untracked: redelivered from the committed offset (as ct_commands)."""
        release_unacked(self.app, events)

    def _abort(self) -> bool:
        return bool(self.app.rebalancing or self.app.should_stop)

    async def _handle_safely(self, ev: EventT) -> None:
        try:
            await self._handle(ev)
        except Abandoned:
            raise
        except Exception as exc:  # e.g. an unreadable pos record: it will not get better
            log.exception("sales order for %r not handled", ev.key)
            po = cast(bytes, ev.key or b"").decode(errors="replace")
            cause = f"sales order not handled: {type(exc).__name__}: {exc}"
            await self._exception(FAILED, Refs(purchaseOrderNumber=po or None), cause[:500])
            M.SALES_ORDERS.labels("failed").inc()

    async def _handle(self, ev: EventT) -> None:
        # a batch spans partitions: table reads and writes go by this event's partition
        with bind_event(ev):
            await self._handle_bound(ev)

    async def _handle_bound(self, ev: EventT) -> None:
        key = cast(bytes, ev.key)
        po_number = key.decode()
        item = loads(cast(bytes, ev.value))
        mine = loads(raw) if (raw := self.table.get(key)) else {}
        closed = bool(mine.get("closed")) or item.get("t") == "closed"
        if closed and not mine.get("closed"):
            mine["closed"] = True
            self.table[key] = dumps(mine)  # before any call: a late acknowledgement sees it
        raw_po = self.po_flow.pos.get(key)
        po_doc = loads(raw_po) if raw_po else None
        refs = Refs(purchaseOrderNumber=po_number)
        try:
            desired = (
                build_sales_order(
                    po_doc,
                    prefix=self.settings.sales_order_number_prefix,
                    order_type_key=self.settings.ct_sales_order_type_key,
                    line_type_key=self.settings.ct_sales_order_line_type_key,
                )
                if po_doc
                else None
            )
        except SalesOrderError as exc:
            await self._exception(FAILED, refs, str(exc))
            M.SALES_ORDERS.labels("failed").inc()
            return
        number = sales_order_number(po_number, self.settings.sales_order_number_prefix)
        close = (po_doc or {}).get("close") if closed else None
        outcome, order = await self.writer.sync(number, desired, closed, refs, close)
        M.SALES_ORDERS.labels(outcome).inc()
        if order is not None:
            mine.update(order=order.get("id"), state=order.get("orderState"), at=self.clock())
            self.table[key] = dumps(mine)
        if outcome not in ("error", "failed"):
            M.LAST_SUCCESS.labels("sales_orders").set(self.clock())

    # --- owned exceptions (finance) ---------------------------------------------------------
    async def _exception(self, kind: str, refs: Refs, cause: str) -> None:
        exc = await self.reports.send(kind, refs, cause)
        self._raised.add(exc.id)

    async def _resolve(self, refs: Refs) -> None:
        """The order is right now: close what this worker raised about it."""
        for kind in _KINDS:
            if exception_id(kind, refs) not in self._raised:
                continue
            cause = "the order matches the PO now"
            exc = await self.reports.send(kind, refs, cause, status="resolved")
            self._raised.discard(exc.id)
