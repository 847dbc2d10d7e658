"""Periodic reconciliation inside the worker: a bounded slice of entries per timer tick."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, cast

from aiokafka.partitioner import DefaultPartitioner

from streams.adapters.codecs import dumps, loads
from streams.adapters.commercetools import CommercetoolsClient
from streams.config import Settings
from streams.domain.inventory import SkuState
from streams.observability import metrics as M
from streams.resync.compare import Difference, compare_entry, resource_updated

Publish = Callable[[bytes, bytes], Awaitable[Any]]


@dataclass
class SliceReport:
    checked: int = 0
    differences: list[Difference] = field(default_factory=list)
    published: int = 0
    wrapped: bool = False  # the slice reached the last entry; the next starts over


class Reconciler:
    """Checks ``batch`` inventory entries per :meth:`tick` (cursor = last entry id), and
    publishes a ``ResourceUpdated`` to ``ct.messages`` for each one the worker's state has
    wrong; the ingest repairs it. It catches lost notifications and order-driven stock
    changes commercetools does not message. Entries deleted from commercetools are left to
    the full resync (this side sees only entries that exist).

    Wiring, in ``create_app`` after the flows (``inventory`` = the InventoryFlow)::

        from streams.resync import Reconciler, worker_views

        reconciler = Reconciler(s)
        state_of, owns = worker_views(app, inventory.skus, inventory.sku_topic, s.partitions)

        @app.timer(s.reconcile_interval_s, name="reconcile")
        async def reconcile() -> None:
            if not app.rebalancing:
                await reconciler.tick(
                    state_of, owns,
                    lambda key, value: inventory.ct_topic.send(key=key, value=value),
                )

        app.on_before_shutdown.connect(reconciler.on_shutdown)

    Every worker pages through all entries and checks the SKUs whose partition it owns.
    """

    def __init__(self, settings: Settings, client: CommercetoolsClient | None = None) -> None:
        self.settings = settings
        self.batch = settings.reconcile_batch
        self.cursor: str | None = None
        self._client = client
        self._own_client = client is None

    @property
    def client(self) -> CommercetoolsClient:
        if self._client is None:
            self._client = CommercetoolsClient(self.settings, hooks=M.CtResponses())
        return self._client

    async def on_shutdown(self, *args: Any, **kwargs: Any) -> None:
        if self._own_client and self._client is not None:
            await self._client.close()
            self._client = None

    async def _slice(self) -> AsyncIterator[dict[str, Any]]:
        where: str | None = None
        variables: dict[str, str] | None = None
        if self.cursor is not None:
            where, variables = "id > :after", {"after": self.cursor}
        page = min(500, max(20, self.batch))
        n = 0
        entries = cast(
            "AsyncGenerator[dict[str, Any], None]",
            self.client.query_inventory(where, variables, limit=page),
        )
        async with aclosing(entries) as it:
            async for entry in it:
                yield entry
                n += 1
                if n >= self.batch:
                    return

    async def tick(
        self,
        state_of: Callable[[str], SkuState | None],
        owns: Callable[[str], bool],
        publish: Publish,
    ) -> SliceReport:
        rep = SliceReport()
        last: str | None = None
        seen = 0
        now = time.time()
        async for entry in self._slice():
            seen += 1
            last = str(entry["id"])
            sku = str(entry["sku"])
            if not owns(sku):
                continue
            rep.checked += 1
            d = compare_entry(entry, state_of(sku))
            if d is None:
                M.RECONCILE.labels("in_sync").inc()
                continue
            M.RECONCILE.labels("differs").inc()
            rep.differences.append(d)
            if d.repairable:
                value = dumps(resource_updated(entry, self.settings.ct_project_key, now))
                await publish(sku.encode(), value)
                rep.published += 1
                M.RECONCILE.labels("published").inc()
        # a short slice reached the last entry: start from the first one next time
        rep.wrapped = seen < self.batch
        self.cursor = None if rep.wrapped else last
        return rep


def worker_views(
    app: Any, table: Any, sku_topic: Any, partitions: int
) -> tuple[Callable[[str], SkuState | None], Callable[[str], bool]]:
    """``state_of(sku)`` from the worker's ``skus`` table and ``owns(sku)``: whether this
    worker holds the SKU's partition (actively, not as a standby) right now."""
    topic = sku_topic.get_topic_name() if hasattr(sku_topic, "get_topic_name") else str(sku_topic)
    all_partitions = list(range(partitions))
    partitioner = DefaultPartitioner()

    def state_of(sku: str) -> SkuState | None:
        raw = table.get(sku.encode())
        return SkuState.from_dict(loads(raw)) if raw else None

    def owns(sku: str) -> bool:
        p = partitioner(sku.encode(), all_partitions, all_partitions)
        return any(tp.topic == topic and tp.partition == p for tp in app.consumer.assignment())

    return state_of, owns
