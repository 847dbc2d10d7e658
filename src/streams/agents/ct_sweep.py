"""The changed-since sweep: the safety net under the commercetools subscription.

Every ``STREAMS_CT_SWEEP_INTERVAL_S`` the group's leader reads the inventory entries
commercetools modified since its persisted cursor (minus an overlap, see domain/sweep.py)
and hands them to the SKU agent through ``<app>-sku-events``, as the re-reader does. Any
change that produced no message — a lost delivery, a subscription that was off, an
order-driven change — reaches Amazon within about interval + grace + the debounce window.
The SKU agent drops what it already has (entry versions) and counts what only the sweep
found (``streams_ct_sweep_findings_total``).

Cost: one query per window and 500 changed entries, whatever the catalogue's size.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import faust

from streams.adapters.codecs import utc_iso
from streams.agents.cursor_store import CursorStore
from streams.agents.rereads import Send, read_bundles, send_bundles
from streams.config import Settings
from streams.domain.ports import InventoryQuery
from streams.domain.sweep import windows
from streams.observability import metrics as M

log = logging.getLogger(__name__)
MAX_ENTRIES_PER_TICK = 50_000  # a long outage is caught up over several ticks


class SweepFlow:
    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        query: Callable[[], InventoryQuery | None],
        send: Send,
        clock: Callable[[], float] = time.time,
    ) -> None:
        s = self.settings = settings
        self.app = app
        self.query = query
        self.send = send
        self.clock = clock
        self.store = CursorStore(app, s, f"{s.app_id}-ct-sweep")
        self.state: dict[str, Any] | None = None
        app.timer(s.ct_sweep_interval_s, on_leader=True, name="ct-sweep")(self.sweep)

    async def sweep(self) -> int:
        """One tick: read every due window; the number of entries read."""
        query = self.query()
        if not self.settings.ct_sweep_enabled or query is None or self.app.rebalancing:
            return 0
        try:
            if self.state is None:
                self.state = await self.store.load()
            return await self._sweep(query, self.state)
        except Exception as exc:  # commercetools or Kafka away: the next tick resumes
            log.warning("changed-since sweep failed: %s: %s", type(exc).__name__, exc)
            return 0

    async def _sweep(self, query: InventoryQuery, state: dict[str, Any]) -> int:
        s = self.settings
        now = self.clock()
        read = 0
        # read up to now (a change that keeps being stamped anew is never left behind), but
        # judge only what is older than the grace, and move the cursor no further than that:
        # the next sweep reads the young ones again, once their notification had its chance
        settled_before = now - s.ct_sweep_grace_s
        for start, end in windows(
            state.get("cursor"),
            now,
            overlap=s.ct_sweep_overlap_s,
            grace=0.0,
            max_window=s.ct_sweep_max_window_s,
            initial_lookback=s.ct_sweep_initial_lookback_s,
        ):
            read_at = self.clock()
            entries = [
                e async for e in query.inventory_modified_between(utc_iso(start), utc_iso(end))
            ]
            bundles = read_bundles(entries, read_at, "sweep", young_after=settled_before)
            await asyncio.gather(*await send_bundles(self.send, bundles))
            state["cursor"] = min(end, settled_before)
            await self.store.save(state)
            M.SWEEP_ENTRIES.inc(len(entries))
            read += len(entries)
            if read >= MAX_ENTRIES_PER_TICK:
                break
        if state.get("cursor") is not None:
            M.SWEEP_LAG.set(max(0.0, self.clock() - state["cursor"]))
            M.LAST_SUCCESS.labels("ct_sweep").set(self.clock())
        return read
