"""Provisional holds for storefront orders on one SKU (pure; part of the SKU's state).

A storefront order lowers what Amazon is offered at once, before commercetools shows the
order on the inventory entry (up to ~10 s later, and with no message). The hold ends on the
first read of the entry made at least ``delay`` after the hold was placed — by then
commercetools shows the order, so the master's figure takes over:

* the entry's version moved past the one known when the hold was placed: **settled**;
* it did not (the order failed, took no stock, or was already shown): **expired**.

A hold no read ever ends (commercetools away for long) expires after ``ttl``. Ended keys are
remembered for a while so that a redelivered order message never holds twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

SEEN_KEEP = 256  # ended hold keys kept per SKU
SEEN_FOR_S = 24 * 3600.0


@dataclass(slots=True)
class Hold:
    quantity: int
    channel: str
    placed: float  # this worker's clock when the hold was placed
    base: int  # the entry version known then (-1: no entry known)

    def to_list(self) -> list[Any]:
        return [self.quantity, self.channel, self.placed, self.base]

    @classmethod
    def from_list(cls, v: list[Any]) -> Hold:
        return cls(int(v[0]), str(v[1]), float(v[2]), int(v[3]))


@dataclass(slots=True)
class Ended:
    settled: int = 0
    expired: int = 0


@dataclass(slots=True)
class OrderHolds:
    open: dict[str, Hold] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)  # key -> when it ended

    def __bool__(self) -> bool:
        return bool(self.open)

    def place(self, key: str, channel: str, quantity: int, now: float, base: int) -> bool:
        """Hold ``quantity`` on ``channel`` once per key; False for a redelivery."""
        if key in self.open or key in self.ended or quantity <= 0:
            return False
        self.open[key] = Hold(quantity, channel, now, base)
        return True

    def held(self, channels: Iterable[str] | None = None) -> int:
        """Eaches held on ``channels`` (all when None)."""
        if channels is None:
            return sum(h.quantity for h in self.open.values())
        wanted = set(channels)
        return sum(h.quantity for h in self.open.values() if h.channel in wanted)

    def held_on(self, channel: str) -> int:
        return sum(h.quantity for h in self.open.values() if h.channel == channel)

    def on_read(
        self,
        read_at: float,
        delay: float,
        version_of: Callable[[str], int | None],
        channels: Iterable[str] | None = None,
    ) -> Ended:
        """A read of the SKU's entries started at ``read_at`` (``channels``: the ones read;
        None: all of them). Ends every hold on those channels placed ``delay`` or more
        before the read. ``version_of(channel)`` is the entry version the state now has."""
        read = None if channels is None else set(channels)
        out = Ended()
        for key, h in list(self.open.items()):
            if h.placed + delay > read_at or (read is not None and h.channel not in read):
                continue
            v = version_of(h.channel)
            if v is not None and v > h.base:
                out.settled += 1
            else:
                out.expired += 1
            self._end(key, read_at)
        return out

    def expire(self, now: float, ttl: float) -> int:
        """Holds no read has ended within ``ttl``."""
        n = 0
        for key, h in list(self.open.items()):
            if h.placed + ttl <= now:
                self._end(key, now)
                n += 1
        return n

    def next_due(self, delay: float) -> float | None:
        """When the earliest open hold can be ended by a read."""
        return min((h.placed + delay for h in self.open.values()), default=None)

    def _end(self, key: str, now: float) -> None:
        del self.open[key]
        self.ended[key] = now
        if len(self.ended) > SEEN_KEEP:
            for k in sorted(self.ended, key=self.ended.__getitem__)[: len(self.ended) - SEEN_KEEP]:
                del self.ended[k]
        for k, t in list(self.ended.items()):
            if t + SEEN_FOR_S < now:
                del self.ended[k]

    # --- wire ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"o": {k: h.to_list() for k, h in self.open.items()}, "e": self.ended}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> OrderHolds:
        if not d:
            return cls()
        return cls({k: Hold.from_list(v) for k, v in d.get("o", {}).items()}, dict(d.get("e", {})))
