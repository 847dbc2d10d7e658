"""The client's per-operation token bucket (asyncio), the twin of Amazon's usage plan."""

from __future__ import annotations

import asyncio
import time

from streams.domain.rate_budget import Plan


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
