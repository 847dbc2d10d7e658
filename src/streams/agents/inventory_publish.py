"""The inventory flow's debounce timer: due SKUs and the hourly snapshot to
amazon.inventory-updates, and what Amazon was told written back to each SKU's state.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any, cast

from streams.adapters.codecs import dumps, loads, utc_iso
from streams.agents.inventory_scan import (
    DIRTY_SCAN_SLICE,
    SCAN_SLICE,
    SLICE_TICK_S,
    InventoryScan,
)
from streams.domain.inventory import SkuState, stored_told, stored_update
from streams.observability import metrics as M
from streams.runtime.kafka import partition_for
from streams.runtime.store import Write, send_keyed

log = logging.getLogger(__name__)

# a SKU told Amazon in this tick: partition, key, the stored bytes and their dict, the amount
Told = tuple[int, bytes, bytes, dict[str, Any], int]


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
        tick = self.settings.debounce_tick_s
        # the scans' slices are sized per 0.25 s, so their pace per second (and their share
        # of the loop) does not depend on the tick
        scale = tick / SLICE_TICK_S
        if self._dirty_cursor:  # the quick scan first: what a crash left unpublished
            self._scan_dirty(max(1, int(DIRTY_SCAN_SLICE * scale)))
        elif self._scan_cursor:
            self._scan_step(max(1, int(SCAN_SLICE * scale)))
        budget = self.send_budget.take(now)
        due = self.debouncer.pop_due(now, budget, self._catchup_wait())
        sent = await self._publish([sku.encode() for sku in due], "delta", now)
        if now >= self.next_snapshot:
            self.next_snapshot = now + self.settings.snapshot_interval_s
            self.snapshot_cursor = [(p, None) for p in reversed(self._owned_partitions())]
        if self.snapshot_cursor and sent < budget:
            take = [key for _, key, _ in self._walk(self.snapshot_cursor, budget - sent)]
            sent += await self._publish(take, "snapshot", now)
        await self._log_marks(now)
        self.send_budget.spend(sent)
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
        """Publish SKUs and, once Kafka has the deltas, record what Amazon was told in each
        SKU's own partition.

        The mark is stored only after delivery: stored first, a crash before the delta left
        the producer would leave a SKU marked as told that Amazon never heard of (and the
        restart scan looks only at unmarked states). A change applied while the deltas were
        in flight is kept: the mark then records the amount told and leaves the SKU dirty."""
        by_partition: dict[int, list[bytes]] = defaultdict(list)
        for key in keys:
            partition = self.partition_of.pop(key.decode(), None)
            if partition is None:
                partition = partition_for(key, self.settings.partitions)
            by_partition[partition].append(key)
        records: list[Write] = []
        told: list[Told] = []
        at = utc_iso(now)
        for partition, pkeys in by_partition.items():
            if not self._owned(partition):
                continue  # moved to another worker in a rebalance: its owner publishes it
            for key in pkeys:
                raw = self.store.get(partition, key)
                if raw is None:
                    continue
                # the stored dict, not a SkuState: the delta and the mark need a few of its
                # fields, and the amount is the one the SKU agent computed when it wrote it
                d = loads(raw)
                amount = self._known_offer(key.decode())
                if amount is None:
                    amount = self._published_view(SkuState.from_dict(d))
                if amount is None or (kind == "delta" and amount == d.get("lp")):
                    continue
                records.append((key, dumps(stored_update(d, amount, cast(Any, kind), at))))
                if kind == "snapshot" and amount == d.get("lp"):
                    continue  # nothing new to remember: no state write, no changelog record
                told.append((partition, key, raw, d, amount))
        failed = False
        if records:
            M.DELTAS.labels(kind).inc(len(records))
            # one record batch per partition on the producer, not a send and a future each
            futures = await send_keyed(self.app, self.out_topic_name, records)
            results = await asyncio.gather(*futures, return_exceptions=True)
            failed = any(isinstance(r, BaseException) for r in results)
            if failed:
                log.warning("%d inventory updates not all delivered: sent again", len(records))
        await self._mark(told, kind, now, delivered=not failed)
        return len(records)

    async def _mark(self, told: list[Told], kind: str, now: float, delivered: bool) -> None:
        """Write the marks of delivered deltas (all or none: one gather); on a failed
        delivery the SKUs go back to the debouncer instead. Each partition is read and
        written between two awaits, so no agent batch interleaves with it."""
        by_partition: dict[int, list[tuple[bytes, bytes, dict[str, Any], int]]] = defaultdict(list)
        for partition, key, raw, d, amount in told:
            if delivered:
                by_partition[partition].append((key, raw, d, amount))
            else:
                self.debouncer.mark(key.decode(), now)
        for partition, items in by_partition.items():
            if not self._owned(partition):
                continue  # revoked while in flight: the new owner sees it dirty and re-sends
            writes: list[tuple[bytes, bytes | None]] = []
            for key, raw, d, amount in items:
                current = self.store.get(partition, key)
                if current is None:
                    continue
                if current != raw:  # changed in flight: record the amount told, dirty
                    state = SkuState.from_dict(loads(current))  # unless it is as told
                    state.last_published, state.published_at = amount, now
                    if self._published_view(state) == amount:
                        state.changed_at = state.order_at = None
                    writes.append((key, dumps(state.to_dict())))
                    continue
                changed_at, order_at = d.get("ca"), d.get("oa")
                if kind == "delta" and changed_at is not None:
                    M.DELTA_LATENCY.observe(max(0.0, now - changed_at))
                if order_at is not None:
                    M.STOREFRONT_LATENCY.observe(max(0.0, now - order_at))
                marked = stored_told(d, amount, now)
                if marked is None:  # stored before the dirty marker: through a SkuState
                    state = SkuState.from_dict(d)
                    state.last_published, state.published_at = amount, now
                    state.changed_at = state.order_at = None
                    marked = state.to_dict()
                writes.append((key, dumps(marked)))
            await self._put_marks(partition, writes, now)  # stores before its first await

    async def _put_marks(
        self, partition: int, writes: list[tuple[bytes, bytes | None]], now: float
    ) -> list[Any]:
        """Store what Amazon was told. Its changelog record waits up to
        ``published_log_delay_s``: a change of the SKU within that time is applied with a
        changelog record of the whole state, mark included, so the mark needs none of its
        own. Until it is logged, a restore from the changelog (another host, a rebalance)
        sees the state dirty and publishes it again: the at-least-once side, never a SKU
        Amazon was not told about. A restart on local state sees the mark."""
        delay = self.settings.published_log_delay_s
        if delay <= 0 or not writes:
            return await self.store.put_many(partition, writes)
        self.store.put_local(partition, writes)
        pending = self._unlogged.setdefault(partition, {})
        due = now + delay
        for key, _ in writes:
            pending.setdefault(key, due)  # insertion order is due order
        return []

    async def _log_marks(self, now: float) -> None:
        """Changelog records for the marks whose wait is over, with the states as stored."""
        self._drop_unlogged()
        for partition in list(self._unlogged):
            pending = self._unlogged[partition]
            keys: list[bytes] = []
            for key, due in pending.items():
                if due > now:
                    break
                keys.append(key)
            for key in keys:
                del pending[key]
            if not pending:
                del self._unlogged[partition]
            if keys:
                await self.store.log_current(partition, keys)
