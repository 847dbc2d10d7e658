"""The commercetools order for finance of each accepted Direct Fulfillment order:
``AMZDF-<PO>``, written by the sales-order flow's :class:`OrderWriter` (as ``AMZ-<PO>`` for a
retail PO), so finance sees DF sales beside retail ones.

    df-events (ack taken, or cancelled) ──> <app>-df-sales (key: PO) ──df-sales──> commercetools

The df-events agent never calls commercetools itself: an outage backs up only this topic.
Each record re-reads the order's ``df_orders`` record (same key and partitioning) and brings
the commercetools order to it; the writer plans from what commercetools holds, so a
redelivery changes nothing. A cancelled order's order is cancelled.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from streams.adapters.codecs import loads
from streams.agents.clients import LazyClient
from streams.agents.faustutil import raw_topic
from streams.agents.reports import ExceptionReporter
from streams.agents.sales_order_writer import FAILED, OrderWriter, SalesOrderClient
from streams.config import Settings
from streams.domain.df_record import DfRecord, sales_record
from streams.domain.exceptions import Refs
from streams.domain.sales_orders import SalesOrderError, build_sales_order
from streams.observability import metrics as M

log = logging.getLogger(__name__)

PREFIX = "AMZDF-"


class DfSales:
    def __init__(
        self, app: faust.App, settings: Settings, df_orders: Any, reports: ExceptionReporter
    ) -> None:
        self.settings = settings
        self.df_orders = df_orders  # the DF flow's table: read only
        self.reports = reports
        self.topic = raw_topic(app, f"{settings.app_id}-df-sales", partitions=settings.partitions,
                               internal=True)  # fmt: skip
        self.ct = LazyClient(None, lambda: SalesOrderClient(settings, hooks=M.CtResponses()))
        self._writer: OrderWriter | None = None
        app.agent(self.topic, name="df-sales")(self.agent)

    @property
    def writer(self) -> OrderWriter:
        if self._writer is None:  # lazily: an event loop exists by the first event
            s = self.settings
            self._writer = OrderWriter(
                self.ct(), order_type_key=s.ct_sales_order_type_key,
                line_type_key=s.ct_sales_order_line_type_key,
                replace_allowed=s.sales_order_replace_on_change, retry_s=s.sales_order_retry_s,
                report=self._report, resolved=self._resolved,
            )  # fmt: skip
        return self._writer

    async def _report(self, kind: str, refs: Refs, cause: str) -> None:
        await self.reports.send(kind, refs, cause)

    async def _resolved(self, refs: Refs) -> None:
        return None  # the writer's exceptions for DF orders are resolved by hand

    async def agent(self, stream: Any) -> None:
        async for event in stream.events():
            key: bytes = event.key
            try:
                await self.sync(key)
            except Exception as exc:  # a bug must not stop the partition
                log.error("df-sales: DF order %r: %s", key, type(exc).__name__)

    async def sync(self, key: bytes) -> str | None:
        raw = self.df_orders.get(key)
        if raw is None:
            return None
        rec = DfRecord.from_json(loads(raw))
        po = sales_record(rec)
        if po is None:
            return None
        s = self.settings
        refs = Refs(purchaseOrderNumber=f"DF-{rec.number}")
        try:
            so = build_sales_order(po, prefix=PREFIX, order_type_key=s.ct_sales_order_type_key,
                                   line_type_key=s.ct_sales_order_line_type_key)  # fmt: skip
        except SalesOrderError as exc:
            await self.reports.send(FAILED, refs, str(exc))
            return "failed"
        closed = rec.outcome == "cancelled"
        outcome, _ = await self.writer.sync(PREFIX + rec.number, so, closed, refs)
        M.SALES_ORDERS.labels(outcome).inc()
        return outcome
