"""Debounce: a changed SKU is published once it has been quiet for ``window`` seconds, or
``max_wait`` seconds after its first unpublished change, whichever comes first.

Pure and clock-free: callers pass ``now``. Due SKUs come out oldest first, at most
``limit`` per call, so a burst drains within a send budget instead of all at once.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass


@dataclass(slots=True)
class _Dirty:
    first: float
    last: float
    by: float | None = None  # due at the latest (a storefront sale: see mark's ``within``)


class Debouncer:
    def __init__(self, window: float, max_wait: float) -> None:
        self.window = window
        self.max_wait = max(max_wait, window)
        self._dirty: dict[str, _Dirty] = {}

    def __len__(self) -> int:
        return len(self._dirty)

    def __contains__(self, sku: object) -> bool:
        return sku in self._dirty

    def mark(self, sku: str, now: float, within: float | None = None) -> None:
        """A change of ``sku`` at ``now``; ``within``: publish it no later than this many
        seconds from now however busy the SKU stays (a storefront sale must reach Amazon
        before Amazon sells the unit again)."""
        d = self._dirty.get(sku)
        if d is None:
            d = self._dirty[sku] = _Dirty(now, now)
        else:
            d.last = now
        if within is not None:
            by = now + within
            d.by = by if d.by is None else min(d.by, by)

    def due_at(self, sku: str) -> float | None:
        d = self._dirty.get(sku)
        if d is None:
            return None
        due = min(d.last + self.window, d.first + self.max_wait)
        return due if d.by is None else min(due, d.by)

    def pop_due(self, now: float, limit: int, catchup_max_wait: float | None = None) -> list[str]:
        """Remove and return up to ``limit`` due SKUs, the longest-waiting first.

        ``catchup_max_wait``: while a backlog is replayed, gaps between a SKU's changes are
        processing delays, not quiet time; then only this longer wait makes a SKU due, so a
        catch-up sends each SKU once or twice instead of after every replayed change.
        """
        if limit <= 0 or not self._dirty:
            return []
        w, mw = self.window, self.max_wait
        if catchup_max_wait is not None:
            w = mw = max(catchup_max_wait, mw)
        # a catch-up keeps the storefront's deadline: a replayed sale is still a sale
        due = (
            (min(d.last + w, d.first + mw, d.by if d.by is not None else mw + d.first), sku)
            for sku, d in self._dirty.items()
            if d.last + w <= now or d.first + mw <= now or (d.by is not None and d.by <= now)
        )
        out = [sku for _, sku in heapq.nsmallest(limit, due)]
        for sku in out:
            del self._dirty[sku]
        return out

    def discard(self, sku: str) -> None:
        self._dirty.pop(sku, None)

    def oldest_age(self, now: float) -> float:
        """Seconds the longest-waiting dirty SKU has waited (0 when none)."""
        if not self._dirty:
            return 0.0
        return max(0.0, now - min(d.first for d in self._dirty.values()))
