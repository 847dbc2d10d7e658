"""The inventory flow's scans of stored SKU states, a slice per debounce tick.

After recovery or a rebalance the quick restart scan makes due what a crash left unpublished;
the full scan (also after a warehouse-policy change) makes due every SKU whose availability
differs from what Amazon was told.
"""

from __future__ import annotations

from streams.adapters.codecs import loads
from streams.agents.inventory_base import InventoryBase
from streams.domain.inventory import SkuState, stored_clean

SCAN_SLICE = 2000  # states decoded per 0.25 s of debounce tick by the full scan
DIRTY_SCAN_SLICE = 25_000  # states byte-tested per 0.25 s of tick by the restart scan
SLICE_TICK_S = 0.25  # the tick the slices are sized for (a shorter tick takes less each)


class InventoryScan(InventoryBase):
    def _scan_dirty(self, limit: int) -> None:
        """After recovery or a rebalance: SKUs changed since Amazon was last told become due.
        Only dirty states are decoded (``stored_clean`` skips the rest by their first
        bytes), and the walk goes in slices per tick, so a million clean SKUs never block the
        loop."""
        now = self.clock()
        for partition, _, raw in self._walk(self._dirty_cursor, limit):
            if stored_clean(raw):
                continue
            state = SkuState.from_dict(loads(raw))
            if state.reread_at is not None:  # holds or a re-read a restart must not forget
                self.rereads.schedule(state.sku, state.reread_at)
            if self._unpublished(state):
                self.debouncer.mark(state.sku, now)
                self.partition_of[state.sku] = partition

    def _scan_step(self, limit: int) -> None:
        """A slice of the full scan: every owned SKU whose availability now differs from what
        Amazon was told (a changed warehouse policy or configuration) becomes due."""
        now = self.clock()
        for partition, _, raw in self._walk(self._scan_cursor, limit):
            state = SkuState.from_dict(loads(raw))
            if self._unpublished(state):
                self.debouncer.mark(state.sku, now)
                self.partition_of[state.sku] = partition

    def _walk(
        self, cursor: list[tuple[int, bytes | None]], limit: int
    ) -> list[tuple[int, bytes, bytes]]:
        """Up to ``limit`` stored states from where ``cursor`` stands, advancing it. Each call
        reads from a fresh iterator, so a partition revoked in between is never read."""
        owned = set(self._owned_partitions())
        out: list[tuple[int, bytes, bytes]] = []
        while cursor and len(out) < limit:
            partition, start = cursor[-1]
            if partition not in owned:
                cursor.pop()
                continue
            last = start
            for key, raw in self.store.items(partition, from_key=start):
                if key == start:
                    continue
                last = key
                out.append((partition, key, raw))
                if len(out) >= limit:
                    break
            if len(out) < limit or last is start:  # the partition is done
                cursor.pop()
            else:
                cursor[-1] = (partition, last)
        return out
