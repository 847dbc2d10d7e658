"""Re-reads of inventory entries after storefront orders, and the feed both the re-reader and
the changed-since sweep use to hand what they read to the SKU agent.

commercetools shows an order on its inventory entries up to ~10 s late and sends no message
for it. The SKU agent holds the order's stock at once and asks for a re-read of the SKU at
``reread_at`` (kept in the SKU's state, so a restart asks again). This service keeps those
requests in memory, reads due SKUs in batches (one query for up to ``ct_reread_batch``
SKUs), and sends what it read to ``<app>-sku-events``: one bundle per SKU, keyed by SKU, with
an observation per entry and a closing ``read`` item that ends the holds the read must
reflect. The SKU agent applies it like any change notification (version rules, dedupe),
so a read that races a message is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

from streams.adapters.codecs import dumps
from streams.config import Settings
from streams.domain.ctmessages import BadRecord, observation_from_entry
from streams.domain.ports import InventoryQuery
from streams.observability import metrics as M

log = logging.getLogger(__name__)

Send = Callable[[bytes, bytes], Awaitable[Any]]
RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # after failed reads, growing


def read_bundles(
    entries: Iterable[dict[str, Any]],
    read_at: float,
    src: str,
    skus: Iterable[str] | None = None,
    young_after: float | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """SKU -> the items that carry a read to the SKU agent: one observation per entry, then
    a ``read`` item. ``skus``: every entry of these SKUs was read (a full read: holds on
    channels without an entry end too); None: only the channels of ``entries`` were read."""
    out: dict[str, list[dict[str, Any]]] = {sku: [] for sku in skus or ()}
    channels: dict[str, list[str]] = {}
    for entry in entries:
        try:
            obs = observation_from_entry(entry)
        except BadRecord as exc:  # commercetools' own data: log it, never stop the feed
            log.warning("%s: unusable inventory entry %s: %s", src, entry.get("id"), exc)
            continue
        wire = obs.to_wire()
        wire["ts"], wire["src"] = read_at, src
        if young_after is not None and _stamped_after(entry, young_after):
            wire["y"] = True  # changed too recently to say its notification was lost
        out.setdefault(obs.sku, []).append(wire)
        channels.setdefault(obs.sku, []).append(obs.channel)
    full = set(skus or ())
    for sku, items in out.items():
        items.append(
            {
                "t": "read",
                "sku": sku,
                "ra": read_at,
                "src": src,
                "chs": None if sku in full else channels.get(sku, []),
                "none": sku not in channels,  # the read found no entry of the SKU
            }
        )
    return out


def _stamped_after(entry: dict[str, Any], t: float) -> bool:
    at = entry.get("lastModifiedAt")
    if not isinstance(at, str):
        return True  # unknown: do not judge it
    try:
        return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() > t
    except ValueError:
        return True


async def send_bundles(send: Send, bundles: dict[str, list[dict[str, Any]]]) -> list[Any]:
    """One record per SKU (its partition, by key), in the SKU agent's bundle format."""
    return [
        await send(sku.encode(), dumps({"t": "bundle", "items": items}))
        for sku, items in bundles.items()
    ]


class Rereader:
    def __init__(
        self,
        settings: Settings,
        query: Callable[[], InventoryQuery | None],
        send: Send,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.query = query
        self.send = send
        self.clock = clock
        self.due: dict[str, float] = {}
        self._failures = 0
        self._not_before = 0.0

    def __len__(self) -> int:
        return len(self.due)

    def schedule(self, sku: str, at: float) -> None:
        cur = self.due.get(sku)
        if cur is None or at < cur:
            self.due[sku] = at

    def pop_due(self, now: float, limit: int) -> list[str]:
        ready = sorted((at, sku) for sku, at in self.due.items() if at <= now)[:limit]
        for _, sku in ready:
            del self.due[sku]
        return [sku for _, sku in ready]

    async def tick(self) -> int:
        """Read the SKUs that are due (in batches) and hand them on; the number read."""
        now = self.clock()
        query = self.query()
        if query is None or now < self._not_before:
            return 0
        total = 0
        while True:
            skus = self.pop_due(now, self.settings.ct_reread_batch)
            if not skus:
                break
            read_at = self.clock()  # a lower bound of when commercetools answered
            try:
                entries = await query.inventory_of_skus(skus)
            except Exception as exc:  # commercetools away: ask again later, growing the wait
                for sku in skus:
                    self.schedule(sku, now)
                delay = RETRY_S[min(self._failures, len(RETRY_S) - 1)]
                self._failures += 1
                self._not_before = self.clock() + delay
                M.REREADS.labels("error").inc(len(skus))
                log.warning("re-reading %d SKUs failed (%s)", len(skus), type(exc).__name__)
                break
            self._failures = 0
            bundles = read_bundles(entries, read_at, "reread", skus)
            await asyncio.gather(*await send_bundles(self.send, bundles))
            M.REREADS.labels("ok").inc(len(skus))
            total += len(skus)
        M.PENDING.labels("rereads").set(len(self.due))
        return total
