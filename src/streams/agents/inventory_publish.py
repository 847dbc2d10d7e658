"""The inventory flow's debounce timer: due SKUs and the hourly snapshot to
amazon.inventory-updates, and what Amazon was told written back to each SKU's state.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, cast

from streams.adapters.codecs import dumps, loads, utc_iso
from streams.agents.inventory_scan import DIRTY_SCAN_SLICE, SCAN_SLICE, InventoryScan
from streams.domain.inventory import SkuState, inventory_update
from streams.observability import metrics as M
from streams.runtime.kafka import partition_for


class InventoryPublisher(InventoryScan):
    # --- debounce timer ---------------------------------------------------------------
    async def tick(self) -> None:
        if self.app.rebalancing:
            return
        now = self.clock()
        if self.needs_dirty_scan:
            self.needs_dirty_scan = False
            self._dirty_cursor = [(p, None) for p in reversed(self._owned_partitions())]
        if self.needs_scan:  # set on start, rebalance and by the warehouse-policy flow
            self.needs_scan = False
            self._scan_cursor = [(p, None) for p in reversed(self._owned_partitions())]
        if self._dirty_cursor:  # the quick scan first: what a crash left unpublished
            self._scan_dirty(DIRTY_SCAN_SLICE)
        elif self._scan_cursor:
            self._scan_step(SCAN_SLICE)
        budget = max(1, int(self.settings.delta_budget_per_s * self.settings.debounce_tick_s))
        due = self.debouncer.pop_due(now, budget, self._catchup_wait())
        sent = await self._publish([sku.encode() for sku in due], "delta", now)
        if now >= self.next_snapshot:
            self.next_snapshot = now + self.settings.snapshot_interval_s
            self.snapshot_cursor = [(p, None) for p in reversed(self._owned_partitions())]
        if self.snapshot_cursor and sent < budget:
            take = [key for _, key, _ in self._walk(self.snapshot_cursor, budget - sent)]
            sent += await self._publish(take, "snapshot", now)
        M.PENDING.labels("deltas").set(len(self.debouncer))
        M.OLDEST_PENDING.set(self.debouncer.oldest_age(now))
        if sent:
            M.LAST_SUCCESS.labels("inventory_publish").set(now)

    def _catchup_wait(self) -> float | None:
        """The longer wait while this worker replays a backlog (see Debouncer.pop_due)."""
        behind = self.ingest.behind(self.settings.topic_ct_messages)
        if self.lag is not None:
            behind += self.lag.behind(self.sku_topic_name)
        if behind > self.settings.catchup_lag_records:
            return self.settings.catchup_max_wait_s
        return None

    async def _publish(self, keys: list[bytes], kind: str, now: float) -> int:
        """Publish SKUs and record what Amazon was told, in each SKU's own partition.

        Reads, decisions and the store write of a partition happen between two awaits, so no
        agent batch interleaves with this read-modify-write."""
        by_partition: dict[int, list[bytes]] = defaultdict(list)
        for key in keys:
            partition = self.partition_of.pop(key.decode(), None)
            if partition is None:
                partition = partition_for(key, self.settings.partitions)
            by_partition[partition].append(key)
        futures: list[Any] = []
        sent = 0
        for partition, pkeys in by_partition.items():
            if not self._owned(partition):
                continue  # moved to another worker in a rebalance: its owner publishes it
            writes: list[tuple[bytes, bytes | None]] = []
            deltas: list[tuple[bytes, bytes]] = []
            for key in pkeys:
                raw = self.store.get(partition, key)
                if raw is None:
                    continue
                state = SkuState.from_dict(loads(raw))
                amount = self._published_view(state)
                if amount is None or (kind == "delta" and amount == state.last_published):
                    continue
                update = inventory_update(state, amount, cast(Any, kind), utc_iso(now))
                deltas.append((key, dumps(update)))
                if kind == "snapshot" and amount == state.last_published:
                    continue  # nothing new to remember: no state write, no changelog record
                if kind == "delta" and state.changed_at is not None:
                    M.DELTA_LATENCY.observe(max(0.0, now - state.changed_at))
                if state.order_at is not None:
                    M.STOREFRONT_LATENCY.observe(max(0.0, now - state.order_at))
                state.last_published, state.published_at, state.changed_at = amount, now, None
                state.order_at = None
                writes.append((key, dumps(state.to_dict())))
            futures.extend(await self.store.put_many(partition, writes))
            for key, value in deltas:
                futures.append(await self.direct.send(self.out_topic_name, key, value))
            sent += len(deltas)
        if sent:
            M.DELTAS.labels(kind).inc(sent)
        return sent
