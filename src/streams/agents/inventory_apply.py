"""The SKU agent of the inventory flow: the only writer of ``skus``.

Each batch of sku-events is applied partition by partition: one state write per SKU (with
its entry index, never logged), the PO line decisions and reservations it implies, and the
SKUs that become due for the debounce timer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from faust.types import EventT

from streams.adapters.codecs import dumps, loads
from streams.agents.ingest import BUNDLE
from streams.agents.inventory_base import InventoryBase
from streams.domain.ctmessages import StockObservation
from streams.domain.debounce import change_time
from streams.domain.entry_index import entry_key, index_writes
from streams.domain.inventory import SkuState
from streams.domain.mapping import SkuMapping
from streams.domain.purchase_orders import PoLine
from streams.observability import metrics as M
from streams.runtime.acks import DeliveryAcks

log = logging.getLogger("streams.agents.inventory")


Item = tuple[bytes, dict[str, Any]]  # a SKU key and one change to apply to its state
Write = tuple[bytes, bytes | None]


def items_by_partition(
    records: Iterable[tuple[int, bytes, bytes]],
) -> tuple[dict[int, list[Item]], int]:
    """sku-events records (partition, key, value) as each partition's items in order, the
    ingest's bundles unpacked; and how many items."""
    by_partition: dict[int, list[Item]] = defaultdict(list)
    n = 0
    for partition, key, value in records:
        items = by_partition[partition]
        item = loads(value)
        if item.get("t") == BUNDLE:  # many re-keyed records from the ingest stage
            for it in item["items"]:
                items.append((it["sku"].encode(), it))
            n += len(item["items"])
        else:
            items.append((key, item))
            n += 1
    return by_partition, n


class SkuApply(InventoryBase):
    async def sku_agent(self, stream: Any) -> None:  # faust.Stream
        s = self.settings
        # a batch's events are acked once its records are delivered, while the next batch
        # is applied: no produce round trip between two batches
        acks = DeliveryAcks(stream, s.sku_batches_in_flight)
        async for batch in stream.noack_take(s.batch_max, s.sku_batch_within_s):
            started = time.perf_counter()
            events = cast(list[EventT], batch)
            by_partition, n = items_by_partition(
                (ev.message.partition, cast(bytes, ev.key), cast(bytes, ev.value)) for ev in events
            )
            futures: list[Any] = []
            self._decisions, self._df_decisions = {}, {}
            for partition, partition_items in by_partition.items():
                writes, index, sends = self._apply_partition(partition, partition_items)
                futures.extend(await self.store.put_many(partition, writes, local=index))
                self._logged(partition, writes)
                for topic, key, value in sends:
                    futures.append(await self.direct.send(topic, key, value))
                # let the debounce timer in between partitions (each partition's
                # read-modify-write is done): a batch of thousands does not delay a tick
                await asyncio.sleep(0)
            if self._decisions and self.decisions_topic is not None:
                # one record per PO for all its lines decided in this batch (a 100-line PO
                # is one po-events record, not 100)
                name = self.decisions_topic.get_topic_name()
                for po, decisions in self._decisions.items():
                    value = dumps({"t": "decisions", "ds": decisions})
                    futures.append(await self.direct.send(name, po, value))
                self._decisions = {}
            if self._df_decisions and self.df_decisions is not None:
                for po, decisions in self._df_decisions.items():
                    futures.append(await self.direct.send(*self.df_decisions(po, decisions)))
            self._df_decisions = {}
            await acks.add(events, futures)
            M.BATCH_SECONDS.labels("skus").observe(time.perf_counter() - started)
            M.BATCH_EVENTS.labels("skus").observe(n)
            M.PENDING.labels("deltas").set(len(self.debouncer))
            batch = events = []  # Faust waits for handed-out events to be released

    def _by_sku(self, partition: int, items: Sequence[Item]) -> dict[bytes, list[dict[str, Any]]]:
        """One partition's items by SKU, in order. A delete that names only its entry (the
        ingest sends it to every partition, key empty) joins the SKU whose state here holds
        that entry, or is dropped: the partition holding it applies it."""
        by_sku: dict[bytes, list[dict[str, Any]]] = defaultdict(list)
        if all(key for key, _ in items):
            for key, item in items:
                by_sku[key].append(item)
            return by_sku
        named: dict[str, bytes] = {}  # entries the batch's earlier items name (not stored yet)
        for key, item in items:
            if not key:
                entry = item["e"]
                key = named.get(entry) or self.store.get(partition, entry_key(entry)) or b""
                self._entry_deletes["placed" if key else "elsewhere"].inc()
                if not key:
                    continue
                item = {**item, "sku": key.decode()}
            elif item.get("t") == "obs":
                named[item["e"]] = key
            by_sku[key].append(item)
        return by_sku

    def _apply_partition(
        self, partition: int, items: Sequence[Item]
    ) -> tuple[list[Write], list[Write], list[tuple[str, bytes, bytes]]]:
        """Apply one partition's items: one state write per SKU, the entry index changes
        (written with the states, never logged), and what to send.

        Reads and the store write happen without an await in between, so the debounce
        timer never sees (or writes) a state half-way through a batch."""
        sends: list[tuple[str, bytes, bytes]] = []
        writes: list[Write] = []
        index: list[Write] = []
        by_sku = self._by_sku(partition, items)
        store = self.store
        now = self.clock()
        outcomes: dict[str, int] = defaultdict(int)
        unmapped = 0
        for key, sku_items in by_sku.items():
            raw = store.get(partition, key)
            state = SkuState.from_dict(loads(raw)) if raw else SkuState(key.decode())
            held = {e.entry_id.encode() for e in state.channels.values()}
            changed = sold = False
            # the latest source time of a change, for the debounce (None: a change without
            # one, e.g. a mapping or a PO line, happened now)
            at: float | None = 0.0
            for item in sku_items:
                t = item["t"]
                if t == "obs":
                    obs = StockObservation.from_wire(item)
                    if item.get("src") == "sweep":
                        # before applying: was a change on this entry expected (an order)?
                        expected = bool(state.orders.held_on(obs.channel) or state.reread_at)
                    outcome = state.apply(obs)
                    # a ct.messages record, not the re-reader's or the sweep's, nor a delete
                    # the ingest counted (placed here by its entry)
                    if "src" not in item:
                        outcomes[outcome] += 1
                    if outcome == "applied" and item.get("src") == "sweep" and not item.get("y"):
                        self._finding["expected" if expected else "missed"].inc()
                    if outcome == "applied":
                        changed = True
                        ts = item.get("ts") or now
                        state.changed_at = min(state.changed_at or ts, ts)
                        at = None if at is None else max(at, ts)
                        if state.mapping is None:
                            unmapped += 1
                elif t == "map":
                    m = item["m"]
                    state.mapping = SkuMapping.model_validate(m) if m else None
                    changed, at = True, None
                elif t == "pub":  # written by earlier versions; now the timer writes
                    changed, at = True, None
                    state.last_published = item["amount"]
                    state.published_at = item["at"]
                elif t in ("alloc", "release"):
                    changed, at = True, None
                    sends.extend(self._allocation(state, item))
                elif t == "applied":
                    if state.confirm(item["cmd"], item["v"]):
                        changed, at = True, None
                else:
                    placed = self._storefront(state, item, now)
                    sold = sold or (placed and t == "hold")
                    changed = placed or changed
                    if placed and t == "hold" and at is not None:
                        at = max(at, item.get("ts") or now)
                    elif placed:
                        at = None
            if state.orders:
                expired = state.orders.expire(now, self.settings.ct_order_hold_ttl_s)
                if expired:
                    self._hold_outcome["expired"].inc(expired)
                    changed, at = True, None
            if state.reread_at is not None:
                self.rereads.schedule(state.sku, state.reread_at)
            if changed:
                # changed_at set <=> Amazon may not have been told: the restart scan reads
                # only such states (see _scan_dirty)
                want = self._to_publish(state)
                if want is not None:
                    if state.changed_at is None:
                        state.changed_at = now
                    sale = self.settings.debounce_sale_wait_s if sold else None
                    when = change_time(at, now, self.settings.debounce_window_s)
                    self.debouncer.mark(state.sku, when, sale)
                    self.partition_of[state.sku] = partition
                    self._remember_offer(state.sku, want)
                else:
                    state.changed_at = state.order_at = None
                    self.debouncer.discard(state.sku)
                    self._forget_offer(state.sku)
                writes.append((key, dumps(state.to_dict())))
                now_held = {e.entry_id.encode() for e in state.channels.values()}
                if now_held != held:
                    index.extend(index_writes(key, held, now_held))
        for name, k in outcomes.items():
            self._outcome[name].inc(k)
        if unmapped:
            M.UNMAPPED.inc(unmapped)
        return writes, index, sends

    def _storefront(self, state: SkuState, item: dict[str, Any], now: float) -> bool:
        """A storefront order's hold or re-read request, or the end of a read; True when the
        state changed."""
        t = item["t"]
        if t == "hold":
            placed = state.place_hold(
                item["k"], item["ch"], item["q"], now, self._reread_due(now), at=item.get("ts")
            )
            self._hold_outcome["placed" if placed else "duplicate"].inc()
            if placed:
                ts = item.get("ts") or now
                state.changed_at = min(state.changed_at or ts, ts)
            return placed
        if t == "touch":
            before = state.reread_at
            state.request_reread(self._reread_due(now))
            return state.reread_at != before
        if t == "read":
            before = state.reread_at
            delay = self.settings.ct_order_settle_delay_s
            ended = state.on_read(item["ra"], delay, item["chs"], bool(item.get("none")))
            if ended.settled:
                self._hold_outcome["settled"].inc(ended.settled)
            if ended.expired:
                self._hold_outcome["expired"].inc(ended.expired)
            return bool(ended.settled or ended.expired) or state.reread_at != before
        log.warning("sku-events: unknown item type %r", t)
        return False

    def _allocation(self, state: SkuState, item: dict[str, Any]) -> list[tuple[str, bytes, bytes]]:
        """Decide or release one PO line on the partition that owns the SKU's stock."""
        s = self.settings
        line = PoLine.model_validate(item["line"])
        now = datetime.fromtimestamp(self.clock(), UTC)
        out: list[tuple[str, bytes, bytes]] = []
        sku = state.sku.encode()
        if item["t"] == "release":
            commands = state.release_line(
                line.key, line.purchaseOrderNumber, line.itemSequenceNumber, now,
                self.channel_policy(), keep=int(item.get("keep") or 0),
            )  # fmt: skip
        else:
            result, commands = state.allocate(
                line, now,
                backorder_lead_days=s.backorder_lead_days,
                price_tolerance=Decimal(str(s.price_tolerance)),
                default_channels=s.default_amazon_channels,
                default_buffer=s.default_safety_buffer,
                policy=self.channel_policy(),
            )  # fmt: skip
            if not result.replayed:
                M.ALLOCATIONS.labels(result.decision.status).inc()
            decided = self._decisions
            if item.get("df"):  # a Direct Fulfillment line: its decision goes to the DF flow
                decided = self._df_decisions
            if self.decisions_topic is not None or item.get("df"):  # sent once applied
                po = line.purchaseOrderNumber.encode()
                decided.setdefault(po, []).append(result.decision.model_dump(mode="json"))
        name = self.commands_topic.get_topic_name()
        out.extend((name, sku, dumps(c)) for c in commands)
        return out
