"""Writes one sales order to commercetools (``AMZ-<PO>``), without Kafka: the sales-order
flow (:mod:`streams.agents.sales_orders`) and tests drive it. Every attempt reads the order
by its number and plans from what commercetools holds (:mod:`streams.domain.sales_order_sync`),
so a lost answer or a lost race is found on the next read.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from streams.adapters.commercetools import AuthError, CommercetoolsClient, CommercetoolsError
from streams.agents.channel_policy import ensure_type
from streams.domain.exceptions import Owner, Refs, Severity
from streams.domain.sales_order_sync import Plan, plan_sync
from streams.domain.sales_orders import SalesOrder, line_type_draft, order_type_draft
from streams.observability import metrics as M

log = logging.getLogger(__name__)

DIVERGED = "sales-order-diverged"
FAILED = "sales-order-failed"
_KINDS: dict[str, tuple[Owner, Severity]] = {
    DIVERGED: ("finance", "warning"),
    FAILED: ("finance", "critical"),
}
MAX_PLANS = 8  # re-reads after a conflict before an attempt counts as failed


class Abandoned(Exception):
    """The worker rebalances or stops: the event stays unacked for the partition's next owner."""


Report = Callable[[str, Refs, str], Awaitable[None]]


class OrderWriter:
    """Brings one order in commercetools to what its PO implies; no Kafka here (the flow and
    tests drive it). ``report(kind, refs, cause)`` raises an owned exception,
    ``resolved(refs)`` closes them; ``abort()`` says the worker must let go."""

    def __init__(
        self,
        client: CommercetoolsClient,
        *,
        order_type_key: str,
        line_type_key: str,
        replace_allowed: bool = True,
        retry_s: float = 600.0,
        report: Report,
        resolved: Callable[[Refs], Awaitable[None]],
        abort: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.order_type_key = order_type_key
        self.line_type_key = line_type_key
        self.replace_allowed = replace_allowed
        self.retry_s = retry_s
        self.report = report
        self.resolved = resolved
        self.abort = abort
        self.sleep = sleep
        self._types_ready = False

    async def sync(
        self,
        number: str,
        desired: SalesOrder | None,
        closed: bool,
        refs: Refs,
        close: Mapping[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any] | None]:
        """Bring order ``number`` to ``desired``; retried through outages until it is done,
        commercetools refuses it (an exception for finance), or :class:`Abandoned`."""
        started = time.monotonic()
        attempt = 0
        alerted = False
        while True:
            attempt += 1
            try:
                return await self._attempt(number, desired, closed, refs, close)
            except CommercetoolsError as exc:
                # 400 is about this order (401/403/5xx/no answer are not): tell, do not retry
                permanent = exc.status == 400 and not isinstance(exc, AuthError)
                if permanent and not exc.has_code("ReferencedResourceNotFound"):
                    await self.report(FAILED, refs, f"commercetools refused {number}: {exc}")
                    return "failed", None
                if exc.has_code("ReferencedResourceNotFound"):
                    self._types_ready = False  # our Type was deleted: create it again
                error: Exception = exc
            except Exception as exc:  # a bug or an unexpected answer: retry, never drop
                log.exception("sales order %s failed", number)
                error = exc
            M.SALES_ORDERS.labels("error").inc()
            if not alerted and time.monotonic() - started >= self.retry_s:
                alerted = True  # keep trying, but finance must know the order is missing
                await self.report(
                    FAILED, refs, f"{number} not in commercetools yet, still retrying: {error}"
                )
            if self.abort():
                raise Abandoned(f"{number}: {type(error).__name__}: {error}")
            await self.sleep(min(30.0, 0.5 * 2 ** min(attempt, 6)) * random.uniform(0.5, 1))

    async def _attempt(
        self,
        number: str,
        desired: SalesOrder | None,
        closed: bool,
        refs: Refs,
        close: Mapping[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any] | None]:
        await self._ensure_types()
        replaced = False
        for _ in range(MAX_PLANS):
            existing = await self.client.get_order_by_number(number)
            plan = plan_sync(
                existing, desired, closed=closed, replace_allowed=self.replace_allowed,
                close=close,
            )  # fmt: skip
            try:
                order = await self._apply(existing, plan)
            except CommercetoolsError as exc:
                # lost a race: DuplicateField on create, 409 on update/delete, 404 (deleted
                # meanwhile); plan again from a fresh read
                if not (exc.status in (404, 409) or exc.has_code("DuplicateField")):
                    raise
                continue
            if plan.kind == "replace":
                replaced = True
                continue  # deleted: the next plan imports it again
            if plan.kind == "diverged":
                await self.report(DIVERGED, refs, f"{number}: {plan.reason}")
                return "diverged", order
            await self.resolved(refs)
            if replaced:
                return "replaced", order
            if plan.kind == "none":
                return ("skipped" if existing is None else "unchanged"), order
            return ("created" if plan.kind == "create" else "updated"), order
        raise CommercetoolsError(409, [], f"{number}: still conflicting after {MAX_PLANS} plans")

    async def _apply(self, existing: dict[str, Any] | None, plan: Plan) -> dict[str, Any] | None:
        if plan.kind == "create":
            assert plan.draft is not None
            created: dict[str, Any] = await self.client.create_order_import(plan.draft)
            return created
        if existing is None:
            return None
        oid, version = str(existing["id"]), int(existing["version"])
        if plan.kind == "replace":
            await self.client.delete_order(oid, version)
            return None
        if plan.actions:
            return await self.client.update_order(oid, version, list(plan.actions))
        return existing

    async def _ensure_types(self) -> None:
        if not self._types_ready:
            await ensure_type(self.client, order_type_draft(self.order_type_key))
            await ensure_type(self.client, line_type_draft(self.line_type_key))
            self._types_ready = True
