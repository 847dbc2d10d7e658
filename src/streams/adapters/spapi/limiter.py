"""The client's per-operation token buckets (asyncio), the twins of Amazon's usage plans."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable, Mapping

from streams.adapters.spapi.errors import NoBudgetShare
from streams.domain.rate_budget import WHOLE, Plan, Share, worker_plan

log = logging.getLogger(__name__)


class Bucket:
    """The client's twin of Amazon's token bucket for one operation; callers wait in turn."""

    def __init__(self, plan: Plan, tokens: float | None = None) -> None:
        self.plan = plan
        self.tokens = float(plan.burst) if tokens is None else min(float(plan.burst), tokens)
        self.stamp = time.monotonic()
        self._turn = asyncio.Lock()  # FIFO: the longest waiter takes the next token

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(float(self.plan.burst), self.tokens + (now - self.stamp) * self.plan.rate)
        self.stamp = now

    async def acquire(self) -> None:
        async with self._turn:
            while True:
                self._refill()
                if self.tokens >= 1.0:
                    self.tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self.tokens) / self.plan.rate)

    def left(self) -> float:
        self._refill()
        return self.tokens


class Budget:
    """Every operation's bucket: the group's usage plan per operation, narrowed to this
    worker's share (:mod:`streams.domain.rate_budget`), lowered when Amazon reports less."""

    def __init__(self, plans: Mapping[str, tuple[float, int]]) -> None:
        self._plans = {op: Plan(float(r), int(b)) for op, (r, b) in plans.items()}
        self._fallback = next(iter(self._plans.values()))
        self._shares: dict[str, Share] = {}
        self._buckets: dict[str, Bucket] = {}

    def rate_limit(self, operation: str) -> tuple[float, int]:
        plan = self.bucket(operation).plan
        return plan.rate, plan.burst

    def group_plan(self, operation: str) -> Plan:
        return self._plans.get(operation, self._fallback)

    def share(self, operation: str) -> Share:
        return self._shares.get(operation, WHOLE)

    def set_share(self, operations: Iterable[str], share: Share) -> None:
        """A changed share starts with an empty bucket."""
        for op in operations:
            if self._shares.get(op, WHOLE) == share and op in self._buckets:
                continue
            self._shares[op] = share
            plan = worker_plan(self.group_plan(op), share)
            self._buckets[op] = Bucket(plan, tokens=0.0)
            log.info(
                "SP-API %s: %d of %d partitions, keeping to %.3g/s (burst %d) of %g/s (burst %d)",
                op, share.owned, share.total, plan.rate, plan.burst,
                self.group_plan(op).rate, self.group_plan(op).burst,
            )  # fmt: skip

    def bucket(self, operation: str) -> Bucket:
        bucket = self._buckets.get(operation)
        if bucket is None:
            plan = worker_plan(self.group_plan(operation), self.share(operation))
            bucket = self._buckets[operation] = Bucket(plan)
        return bucket

    async def admit(self, operation: str) -> None:
        """Wait for a token of this worker's bucket; :class:`NoBudgetShare` without a share
        (fails fast, so a timer checking transactions is not held up by it)."""
        while True:
            bucket = self.bucket(operation)
            if not bucket.plan.sends:
                raise NoBudgetShare(operation)
            await bucket.acquire()
            if bucket is self._buckets.get(operation):
                return  # else the share changed while waiting: a token of the new bucket

    def adapt(self, operation: str, header: str | None) -> None:
        """Slow down to the rate Amazon reports for this operation, never speed up."""
        try:
            reported = float(header) if header else 0.0
        except ValueError:
            return
        plan = self.group_plan(operation)
        if 0 < reported < plan.rate:
            burst = max(1, min(plan.burst, math.ceil(reported)))
            self._plans[operation] = Plan(reported, burst)
            old = self.bucket(operation)
            new = worker_plan(self._plans[operation], self.share(operation))
            self._buckets[operation] = Bucket(new, tokens=old.left())
            log.info(
                "SP-API %s: rate limit lowered to %g/s (burst %d) as Amazon reports",
                operation,
                reported,
                burst,
            )
