"""Debounce: a changed SKU is published once it has been quiet for ``window`` seconds, or
``max_wait`` seconds after its first unpublished change, whichever comes first.

Pure and clock-free: callers pass the change times and ``now``. Due SKUs come out oldest
first, at most ``limit`` per call, so a burst drains within a send budget instead of all at
once. The due set is kept in heaps (entries go stale when a SKU changes again and are
skipped), so a tick costs what it takes out, not a scan of every dirty SKU.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

# a heap is rebuilt from the live entries when it holds this many times more than there
# are dirty SKUs (plus a floor): stale entries cost memory until their time comes
_COMPACT_FACTOR = 3
_COMPACT_FLOOR = 4096


@dataclass(slots=True)
class _Dirty:
    first: float
    last: float
    by: float | None = None  # due at the latest (a storefront sale: see mark's ``within``)
    due: float = 0.0  # min(last + window, first + max_wait, by): the key of its _due entry


def change_time(at: float | None, now: float, window: float) -> float:
    """When a change happened, for the debounce: its source timestamp ``at`` (the record's
    time in Kafka), so the pipeline's own delay counts towards the quiet window instead of
    adding to it; never later than ``now`` (clock skew), and never more than ``window``
    before ``now``, so a replayed backlog is not all due at once (the catch-up wait of
    :meth:`Debouncer.pop_due` counts from there)."""
    if at is None:
        return now
    return min(now, max(at, now - window))


@dataclass(slots=True)
class SendBudget:
    """How many due SKUs a tick may publish: a token bucket refilled at ``rate`` per
    second, holding at most ``burst_s`` seconds' worth. Over any T seconds at most
    ``rate * (T + burst_s)`` go out; after a stall (a long agent batch, a starved CPU) the
    SKUs that became due meanwhile go out at once instead of draining at what the rate
    leaves over the steady due rate."""

    rate: float
    burst_s: float = 1.0
    tokens: float = 0.0
    at: float | None = None

    def take(self, now: float) -> int:
        """Tokens available at ``now`` (at least 1); spend what is used with :meth:`spend`."""
        if self.at is not None:
            refill = self.rate * max(0.0, now - self.at)
            self.tokens = min(self.rate * self.burst_s, self.tokens + refill)
        self.at = now
        return max(1, int(self.tokens))

    def spend(self, n: int) -> None:
        self.tokens = max(0.0, self.tokens - n)


class Debouncer:
    def __init__(self, window: float, max_wait: float) -> None:
        self.window = window
        self.max_wait = max(max_wait, window)
        self._dirty: dict[str, _Dirty] = {}
        self._due: list[tuple[float, str]] = []  # (d.due, sku)
        self._first: list[tuple[float, str]] = []  # (d.first, sku): catch-up, oldest age
        self._by: list[tuple[float, str]] = []  # (d.by, sku): a sale's deadline in a catch-up

    def __len__(self) -> int:
        return len(self._dirty)

    def __contains__(self, sku: object) -> bool:
        return sku in self._dirty

    def mark(self, sku: str, now: float, within: float | None = None) -> None:
        """A change of ``sku`` at ``now`` (the change's time: see :func:`change_time`);
        ``within``: publish it no later than this many seconds from then however busy the
        SKU stays (a storefront sale must reach Amazon before Amazon sells the unit again)."""
        d = self._dirty.get(sku)
        new = d is None
        if d is None:
            d = self._dirty[sku] = _Dirty(now, now)
            heapq.heappush(self._first, (now, sku))
        else:
            if now < d.first:  # change times from several sources need not be in order
                d.first = now
                heapq.heappush(self._first, (now, sku))
            d.last = max(d.last, now)
        if within is not None:
            by = now + within
            if d.by is None or by < d.by:
                d.by = by
                heapq.heappush(self._by, (by, sku))
        due = min(d.last + self.window, d.first + self.max_wait)
        if d.by is not None:
            due = min(due, d.by)
        if new or due != d.due:
            d.due = due
            heapq.heappush(self._due, (due, sku))
        entries = len(self._due) + len(self._first) + len(self._by)
        if entries > _COMPACT_FACTOR * 3 * len(self._dirty) + _COMPACT_FLOOR:
            self._compact()

    def due_at(self, sku: str) -> float | None:
        d = self._dirty.get(sku)
        return None if d is None else d.due

    def pop_due(self, now: float, limit: int, catchup_max_wait: float | None = None) -> list[str]:
        """Remove and return up to ``limit`` due SKUs, the longest-waiting first.

        ``catchup_max_wait``: while a backlog is replayed, gaps between a SKU's changes are
        processing delays, not quiet time; then only this longer wait makes a SKU due, so a
        catch-up sends each SKU once or twice instead of after every replayed change.
        """
        if limit <= 0 or not self._dirty:
            return []
        out: list[str] = []
        if catchup_max_wait is None:
            heap = self._due
            while heap and len(out) < limit and heap[0][0] <= now:
                due, sku = heapq.heappop(heap)
                d = self._dirty.get(sku)
                if d is not None and d.due == due:
                    out.append(sku)
                    del self._dirty[sku]
            return out
        # a catch-up keeps the storefront's deadline: a replayed sale is still a sale
        wait = max(catchup_max_wait, self.max_wait)
        first, by = self._first, self._by
        while len(out) < limit:
            self._skip_stale(first, "first")
            self._skip_stale(by, "by")
            f_due = first[0][0] + wait if first else None
            b_due = by[0][0] if by else None
            if b_due is not None and b_due <= now and (f_due is None or b_due <= f_due):
                sku = heapq.heappop(by)[1]
            elif f_due is not None and f_due <= now:
                sku = heapq.heappop(first)[1]
            else:
                break
            out.append(sku)
            del self._dirty[sku]
        return out

    def discard(self, sku: str) -> None:
        self._dirty.pop(sku, None)

    def oldest_age(self, now: float) -> float:
        """Seconds the longest-waiting dirty SKU has waited (0 when none)."""
        self._skip_stale(self._first, "first")
        if not self._first:
            return 0.0
        return max(0.0, now - self._first[0][0])

    # --- heap upkeep ---------------------------------------------------------------------
    def _skip_stale(self, heap: list[tuple[float, str]], field: str) -> None:
        while heap:
            key, sku = heap[0]
            d = self._dirty.get(sku)
            if d is not None and getattr(d, field) == key:
                return
            heapq.heappop(heap)

    def _compact(self) -> None:
        """Rebuild the heaps from the dirty SKUs (amortised: runs once per many pushes)."""
        items = self._dirty.items()
        self._due = [(d.due, sku) for sku, d in items]
        self._first = [(d.first, sku) for sku, d in items]
        self._by = [(d.by, sku) for sku, d in items if d.by is not None]
        for heap in (self._due, self._first, self._by):
            heapq.heapify(heap)
