"""Availability -> Amazon: ``amazon.inventory-updates`` to Direct Fulfillment partial feeds.

    amazon.inventory-updates (key: SKU) ──inventory-sender──> submitInventoryUpdate
        batch: up to max_items x burst records or linger s       (isFullUpdate=false,
        coalesced per warehouse, latest amount per SKU wins       max_items per request)
        every body checked against Amazon's model first ──invalid──> ops.exceptions
        202: offsets acked, transaction watched ──Failure──> ops.exceptions
    timer inventory-tx-status: getTransactionStatus (the DF Transaction Status API) for the
        accepted requests

At least once, idempotent: a batch's records are acked (so their offsets can be committed)
only once every request carrying them was accepted or finally refused. A crash or a
rebalance before that sends the same records again, and sending an amount again is harmless:
Amazon is told the latest amount per SKU, and Kafka's order per SKU (one key, one partition)
is kept, because batches go out one after the other.

Retries: the SP-API client retries 429/5xx/no response itself (backoff with jitter); on top
of that a batch that still fails is retried here without end (capped backoff), holding the
partitions' offsets, until it goes through or the worker lets the partitions go. After
``STREAMS_INVENTORY_STALLED_AFTER_S`` of that an ``inventory-send-stalled`` exception opens;
it resolves when a request is accepted again. A request Amazon refuses (4xx other than
401/403/408/429) is not retried: an ``inventory-update-rejected`` exception names its SKUs
and Amazon's errors, and the next delta or the periodic snapshot sends those SKUs again.

The rules (what of a record is Amazon's, coalescing, request size) are in
:mod:`streams.domain.inventory_feed`; this module moves bytes between Kafka and Amazon.

Transaction status: ``submitInventoryUpdate`` is a Direct Fulfillment operation, so its
transactions are checked with the Direct Fulfillment Transaction Status API
(``getTransactionStatus``, ``STREAMS_SPAPI_DF_TRANSACTIONS_VERSION``), which has its own
usage plan and needs the Direct Fulfillment role (Direct to Consumer Shipping); the retail
``getTransaction`` does not know them. The transactions being watched live in memory: after
a restart those not settled yet are not checked again (their amounts go to Amazon again
with the next snapshot anyway).

Rate budget: the group's workers share Amazon's plan for both operations by their share of
``amazon.inventory-updates``' partitions (:mod:`streams.domain.rate_budget`), set on every
rebalance; a worker that owns none sends nothing (a batch in hand is left, unacked, to the
partitions' next owner) and checks no transactions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import faust
from aiokafka import TopicPartition

from streams.adapters.amazon_body_check import BodyCheck
from streams.adapters.codecs import loads
from streams.agents.clients import LazyClient, spapi_client
from streams.agents.faustutil import raw_topic
from streams.agents.inventory_tx import Submitted, TxWatch, errors_text
from streams.agents.rawstage import Batch, RawStage, Retry
from streams.agents.reports import ExceptionReporter
from streams.config import Settings
from streams.domain.exceptions import Owner, Refs, Severity
from streams.domain.inventory_feed import (
    InventoryRequest,
    NotAnUpdate,
    Update,
    item_details,
    plan_requests,
    request_body,
)
from streams.domain.rate_budget import Share
from streams.observability import metrics as M

log = logging.getLogger(__name__)

OPERATION = "submitInventoryUpdate"
TX_OPERATION = "getTransactionStatus"  # DF Transaction Status API
BUDGETED = (OPERATION, TX_OPERATION)  # the operations whose plan this flow's partitions split
REJECTED = "inventory-update-rejected"
TX_FAILED = "inventory-transaction-failed"
STALLED = "inventory-send-stalled"
# owned exceptions of this flow (kind -> owner, severity); Amazon not told the stock is an
# overselling risk, hence critical
KINDS: dict[str, tuple[Owner, Severity]] = {
    REJECTED: ("ecommerce", "critical"),
    TX_FAILED: ("ecommerce", "critical"),
    STALLED: ("platform", "critical"),
}
# 4xx answers that say nothing about the request itself: retried like an outage
_NOT_ABOUT_THE_REQUEST = frozenset({401, 403, 408, 429})
# Amazon's (and the sandbox's) token bucket judges a request when it *arrives*; the client's
# limiter admits it earlier, and event-loop, connection and network delays differ from one
# request to the next. Arrivals squeezed together by up to J seconds stay within the bucket
# as long as  client burst + client rate x J <= Amazon's burst  (and client rate <= Amazon's
# rate). At the full rate and burst J is 0 and 429s appear under load (the bench saw 4 in 500
# requests); keeping 95% of the rate and half the burst absorbs about 0.5 s of squeeze, at
# the cost of half a second more on a large drain.
RATE_HEADROOM = 0.95
BURST_SHARE = 0.5


class Abandoned(Exception):
    """The worker rebalances or stops: the batch stays unacked for the partitions' next owner."""


class _Hooks:
    """SP-API responses as ``streams_spapi_responses_total`` (429s visible on dashboards)."""

    def on_response(self, operation: str, status: int, seconds: float) -> None:
        M.SPAPI_RESPONSES.labels(operation, str(status)).inc()


class InventorySenderFlow:
    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        spapi_factory: Callable[[], Any] | None = None,
    ) -> None:
        s = self.settings = settings
        self.app = app
        self.clock = clock
        # the inventory path's own SP-API client unless the app shares one: its own rate
        # budget, with headroom on rate and burst, and 429 counting
        rate = s.spapi_rate_per_s * RATE_HEADROOM
        burst = max(1, int(s.spapi_burst * BURST_SHARE))
        limits = {OPERATION: (rate, burst), TX_OPERATION: (rate, burst)}  # Amazon: 10/s, 10
        self.spapi = LazyClient(spapi_factory, spapi_client(s, hooks=_Hooks(), rate_limits=limits))
        self.topic = raw_topic(app, s.topic_inventory_updates)
        self.exceptions_topic = raw_topic(app, s.topic_exceptions)
        self.reports = ExceptionReporter(self.exceptions_topic, clock, kinds=KINDS, log=log)
        self.model_check = BodyCheck()
        self.tx = TxWatch(s, lambda: self.spapi(), clock, self._exception, failed_kind=TX_FAILED)
        self.share = Share(1, 1)  # of amazon.inventory-updates' partitions (set on rebalance)
        self.stalled_since: float | None = None
        self.stalled_raised = False
        # a raw consumer of its own: while Amazon is away this stage waits, holding only its
        # own offsets; as a Faust agent its full stream buffer would stall the whole worker
        self.stage = SenderStage(self) if hasattr(app, "loop") else None
        app.timer(s.tx_poll_interval_s, name="inventory-tx-status")(self.tick)

    # --- one batch (from SenderStage) --------------------------------------------------
    async def _batch(self, events: list[Any]) -> None:
        s = self.settings
        updates: list[Update] = []
        invalid: list[str] = []
        for ev in events:
            try:
                sku, item = item_details(loads(ev.value) if ev.value is not None else None)
            except (NotAnUpdate, ValueError, TypeError) as exc:
                invalid.append(f"{_where(ev)}: {exc}")
                continue
            updates.append(Update(s.spapi_df_warehouse, sku, item))
        if invalid:
            M.INVENTORY_ITEMS.labels("invalid").inc(len(invalid))
            await self._exception(
                REJECTED,
                Refs(),
                f"{len(invalid)} amazon.inventory-updates records are no inventory item and "
                "were not sent: " + "; ".join(invalid[:10]),
            )
        plan = plan_requests(updates, s.inventory_max_items)
        if plan.superseded:
            M.INVENTORY_ITEMS.labels("superseded").inc(plan.superseded)
        results = await asyncio.gather(
            *(self._send(r) for r in plan.requests), return_exceptions=True
        )
        for r in results:  # Abandoned first: the whole batch stays for redelivery
            if isinstance(r, Abandoned):
                raise r
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def _send(self, req: InventoryRequest) -> None:
        """One request until accepted or finally refused (a 413 sends it in halves)."""
        from streams.adapters.spapi import NoBudgetShare, SpApiAuthError, SpApiError

        s = self.settings
        party = s.spapi_df_selling_party or s.spapi_selling_party  # the DF vendor code
        body = request_body(party, (item for _, item in req.items))
        problems = self.model_check(body)
        if problems:  # item_details checks each record first; this guards the whole body
            M.INVENTORY_REQUESTS.labels("invalid").inc()
            M.INVENTORY_ITEMS.labels("invalid").inc(len(req.items))
            await self._exception(
                REJECTED,
                Refs(),
                f"not sent to warehouse {req.warehouse}, invalid against Amazon's model "
                f"({len(req.items)} items, SKUs {_skus(req)}): " + "; ".join(problems[:10]),
            )
            return
        delay = 1.0
        while True:
            try:
                txid = await self.spapi().submit_inventory_update(
                    req.warehouse,
                    body["inventory"]["items"],
                    is_full_update=False,
                    selling_party=party,
                )
                break
            except NoBudgetShare:
                # a rebalance took this worker's partitions: their next owner sends the batch
                raise Abandoned("rebalance: no share of Amazon's plan") from None
            except SpApiError as exc:
                if exc.status == 413 and len(req.items) > 1:
                    M.INVENTORY_REQUESTS.labels("split").inc()
                    log.warning(
                        "inventory update of %d items too large (413): sending it in halves",
                        len(req.items),
                    )
                    first, second = req.split()
                    await self._send(first)
                    await self._send(second)
                    return
                auth = isinstance(exc, SpApiAuthError)
                if (
                    400 <= exc.status < 500
                    and exc.status not in _NOT_ABOUT_THE_REQUEST
                    and not auth
                ):
                    M.INVENTORY_REQUESTS.labels("rejected").inc()
                    M.INVENTORY_ITEMS.labels("rejected").inc(len(req.items))
                    await self._exception(
                        REJECTED,
                        Refs(),
                        f"Amazon refused an inventory update for warehouse {req.warehouse} "
                        f"(HTTP {exc.status}, {len(req.items)} items, SKUs {_skus(req)}): "
                        + (errors_text(exc.errors) or "no error details"),
                    )
                    return
                M.INVENTORY_REQUESTS.labels("error").inc()
                log.warning("inventory update (%d items) not sent yet: %s", len(req.items), exc)
            except Exception as exc:
                M.INVENTORY_REQUESTS.labels("error").inc()
                log.warning(
                    "inventory update (%d items) not sent yet: %s",
                    len(req.items),
                    type(exc).__name__,
                )
            await self._stalling(req)
            # nothing is lost by waiting: the offsets stay where they are
            await self._sleep(delay)
            delay = min(delay * 2, 60.0)
        now = self.clock()
        M.INVENTORY_REQUESTS.labels("submitted").inc()
        M.INVENTORY_ITEMS.labels("sent").inc(len(req.items))
        M.INVENTORY_REQUEST_ITEMS.observe(len(req.items))
        M.LAST_SUCCESS.labels("inventory_send").set(now)
        self.tx.watch(txid, req.warehouse, len(req.items), req.skus)
        await self._recovered()

    async def _sleep(self, seconds: float) -> None:
        """Wait before a retry, giving up as soon as the partitions may move."""
        deadline = time.monotonic() + seconds
        while True:
            if self.app.should_stop or (self.stage is not None and self.stage.should_stop):
                raise Abandoned("shutdown")
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(0.25, left))

    async def _stalling(self, req: InventoryRequest) -> None:
        now = self.clock()
        if self.stalled_since is None:
            self.stalled_since = now
        s = self.settings
        if not self.stalled_raised and now - self.stalled_since >= s.inventory_stalled_after_s:
            self.stalled_raised = True
            await self._exception(
                STALLED,
                Refs(),
                f"inventory updates for warehouse {req.warehouse} have failed for "
                f"{now - self.stalled_since:.0f} s (SP-API unreachable, throttled or refusing "
                "our credentials); they are kept and retried",
            )

    async def _recovered(self) -> None:
        self.stalled_since = None
        if self.stalled_raised:
            self.stalled_raised = False
            await self._exception(
                STALLED, Refs(), "inventory updates are accepted again", status="resolved"
            )

    # --- timer: transaction status (inventory_tx.TxWatch) ---------------------------
    @property
    def pending_tx(self) -> dict[str, Submitted]:
        return self.tx.pending

    async def tick(self) -> None:
        if self.tx.pending and self.share.owned:  # owning no partitions: no share of the
            await self.tx.tick()  # DF status budget either

    # --- rate budget --------------------------------------------------------------------
    def assigned(self, owned: int, total: int) -> None:
        """A rebalance gave this worker ``owned`` of the topic's ``total`` partitions."""
        self.share = Share(owned, max(1, total, owned))
        client = self.spapi()
        set_share = getattr(client, "set_share", None)
        if set_share is None:  # a test's fake client may have no budget
            return
        set_share(BUDGETED, self.share)
        for op in BUDGETED:
            M.SPAPI_BUDGET.labels(op).set(client.rate_limit(op)[0])

    async def _exception(self, kind: str, refs: Refs, cause: str, status: str = "open") -> None:
        await self.reports.send(kind, refs, cause, status=status)


def _where(rec: Any) -> str:
    return f"{rec.topic}[{rec.partition}]@{rec.offset}"


class SenderStage(RawStage):
    """``amazon.inventory-updates`` read by a raw consumer (group ``<app>-inventory-sender``):
    a batch is committed once every request carrying it was accepted or finally refused."""

    name = "inventory_sender"

    def __init__(self, flow: InventorySenderFlow) -> None:
        s = flow.settings
        super().__init__(
            flow.app,
            s,
            topics=(s.topic_inventory_updates,),
            group_id=f"{s.app_id}-inventory-sender",
            # a batch fills at most one burst of full requests
            batch_max=s.inventory_max_items * max(1, s.spapi_burst),
            within_s=s.inventory_linger_s,
            clock=flow.clock,
        )
        self.flow = flow

    def on_assignment(self, assigned: frozenset[TopicPartition]) -> None:
        topic = self.flow.settings.topic_inventory_updates
        known = self.consumer.partitions_for_topic(topic) if self.consumer else None
        total = len(known) if known else self.flow.settings.partitions
        self.flow.assigned(sum(tp.topic == topic for tp in assigned), total)

    async def process(self, batch: Batch) -> int:
        records = [r for recs in batch.values() for r in recs]  # per-partition order kept
        try:
            await self.flow._batch(records)
        except Abandoned as exc:
            log.info("inventory sender: %d records to read again (%s)", len(records), exc)
            raise Retry(str(exc)) from None
        except Exception:
            # a bug must neither stop the stage nor hold its commits for good: the SKUs go to
            # Amazon again with their next change or the snapshot
            log.exception("inventory sender: batch of %d records failed", len(records))
        return len(records)


def _skus(req: InventoryRequest, n: int = 10) -> str:
    skus = req.skus
    return ", ".join(skus[:n]) + (f" and {len(skus) - n} more" if len(skus) > n else "")
