"""Inventory flow (docs/architecture.md): ct.messages -> per-SKU state -> debounced deltas.

    ct.messages ──ingest──┐  (agents/ingest.py: raw consumer, bundles per SKU partition)
                          ├─> <app>-sku-events ──sku agent──> table ``skus``
    master.sku-mappings ──┘   PO lines, confirmations ─┘          │
                                      debounce timer <──dirty─────┘
                                            └──> amazon.inventory-updates

State is written only between two awaits, by the SKU agent (one RocksDB WriteBatch and one
changelog record per SKU per batch, in the partition that owns the SKU) and by the debounce
timer (what Amazon was told), so neither sees the other's half-written state.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import faust
from faust.types import TP, EventT

from streams.adapters.codecs import dumps, loads, utc_iso
from streams.agents.ingest import BUNDLE, IngestService
from streams.agents.rereads import Rereader
from streams.config import Settings
from streams.domain.availability import Defaults, offered
from streams.domain.ctmessages import (
    StockObservation,
)
from streams.domain.debounce import Debouncer
from streams.domain.inventory import SkuState, inventory_update, stored_clean
from streams.domain.mapping import SkuMapping
from streams.domain.ports import InventoryEntryReader, InventoryQuery
from streams.domain.purchase_orders import PoLine
from streams.domain.warehouse_policy import ChannelPolicy
from streams.observability import metrics as M
from streams.observability.lag import LagMonitor
from streams.runtime.kafka import partition_for
from streams.runtime.ports import PartitionStore
from streams.runtime.store import DirectWriter, TableStore
from streams.runtime.storeopts import table_options

log = logging.getLogger(__name__)

SCAN_SLICE = 2000  # states decoded per debounce tick by the full scan
DIRTY_SCAN_SLICE = 25_000  # states byte-tested per tick by the restart scan

FETCH_ATTEMPTS = 5


class InventoryFlow:
    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        reader: InventoryEntryReader | None,
        clock: Callable[[], float] = time.time,
        lag: LagMonitor | None = None,
    ) -> None:
        s = self.settings = settings
        self.app = app
        self.reader = reader
        self.clock = clock
        self.lag = lag  # how far behind the SKU topic is (a catch-up waits longer)
        self.defaults = Defaults.of(s)
        self.debouncer = Debouncer(s.debounce_window_s, s.debounce_max_wait_s)
        self.direct = DirectWriter(app)
        ct = s.topic_ct_messages
        self._outcome = {
            o: M.RECORDS.labels(ct, o)
            for o in ("applied", "duplicate", "stale", "ignored", "fetched", "dlq")
        }
        # where the hourly snapshot and the full scan stand: (partition, last key) to visit
        self.snapshot_cursor: list[tuple[int, bytes | None]] = []
        self.needs_scan = True  # a full scan, in slices (_scan_step)
        self.needs_dirty_scan = True  # the quick scan of states changed but not published
        self._scan_cursor: list[tuple[int, bytes | None]] = []
        self._dirty_cursor: list[tuple[int, bytes | None]] = []
        self.next_snapshot = clock() + s.snapshot_interval_s

        self.ct_topic = app.topic(s.topic_ct_messages, value_serializer="raw", key_serializer="raw")
        self.sku_topic = app.topic(
            f"{s.app_id}-sku-events",
            partitions=s.partitions,
            internal=True,
            value_serializer="raw",
            key_serializer="raw",
        )
        self.out_topic = app.topic(
            s.topic_inventory_updates, value_serializer="raw", key_serializer="raw"
        )
        self.skus = app.Table(
            "skus",
            partitions=s.partitions,
            key_type=bytes,  # bytes in, bytes out: the "raw" codec, no JSON round trip
            value_type=bytes,
            options=table_options(s),
        )
        self.store: PartitionStore = TableStore(app, self.skus)  # read/written by partition
        # master data by Amazon identifier, for purchase orders keyed by PO number
        self.products = app.GlobalTable(
            "products",
            partitions=s.partitions,
            key_type=bytes,
            value_type=bytes,
            options=table_options(s),
        )
        # inventory entry id -> SKU, written by the SKU agent only (an entry belongs to one
        # SKU, so to one partition): a ResourceDeleted that names no SKU is placed by it
        self.entries = app.GlobalTable(
            "entries",
            partitions=s.partitions,
            key_type=bytes,
            value_type=bytes,
            options=table_options(s),
        )
        self.commands_topic = app.topic(
            s.topic_inventory_commands, value_serializer="raw", key_serializer="raw"
        )
        self.decisions_topic: faust.TopicT | None = None  # set by the purchase-order flow
        self._decisions: dict[bytes, list[Any]] = {}  # PO -> line decisions of the batch
        # Direct Fulfillment lines ("DF-<PO>" -> decisions), sent to the DF flow's events
        self.df_decisions: Callable[[bytes, list[Any]], tuple[str, bytes, bytes]] | None = None
        self._df_decisions: dict[bytes, list[Any]] = {}
        # the warehouse policy now (set by the channel-policy flow); None = configuration only
        self.channel_policy: Callable[[], ChannelPolicy | None] = lambda: None
        self.sku_topic_name = self.sku_topic.get_topic_name()
        self.out_topic_name = self.out_topic.get_topic_name()
        self.partition_of: dict[str, int] = {}  # dirty SKU -> its partition (for the timer)
        self._entry_writes: list[tuple[bytes, bytes | None]] = []  # of the partition in hand
        # ct.messages and master.sku-mappings are read by a raw consumer (agents/ingest.py)
        self.ingest = IngestService(
            app,
            s,
            sku_topic=self.sku_topic_name,
            products=self.products,
            reader=reader,
            clock=clock,
            entries=self.entries,
        )
        # storefront orders: the SKUs' entries re-read once commercetools shows the order
        self.rereads = Rereader(s, self.inventory_query, self.send_read, clock)
        self._hold_outcome = {
            o: M.ORDER_HOLDS.labels(o) for o in ("placed", "duplicate", "settled", "expired")
        }
        self._finding = {k: M.SWEEP_FINDINGS.labels(k) for k in ("expected", "missed")}
        self._jitter = random.Random()
        app.agent(self.sku_topic, name="skus")(self.sku_agent)
        app.timer(s.debounce_tick_s, name="debounce")(self.tick)
        app.timer(s.ct_reread_tick_s, name="rereads")(self._reread_tick)
        app.on_rebalance_complete.connect(self._on_rebalance_complete)  # type: ignore[arg-type]

    def inventory_query(self) -> InventoryQuery | None:
        r = self.reader
        ok = r is not None and hasattr(r, "inventory_of_skus")
        return cast(InventoryQuery, r) if ok else None

    async def send_read(self, key: bytes, value: bytes) -> Any:
        return await self.direct.send(self.sku_topic_name, key, value)

    async def _reread_tick(self) -> None:
        if self.app.rebalancing:
            return
        await self.rereads.tick()

    def _reread_due(self, now: float) -> float:
        s = self.settings
        return now + s.ct_order_settle_delay_s + self._jitter.uniform(0, s.ct_order_reread_jitter_s)

    async def _on_rebalance_complete(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        self.needs_dirty_scan = True
        self.needs_scan = True

    # --- the SKU agent: the only writer of ``skus`` -----------------------------------------
    async def sku_agent(self, stream: Any) -> None:  # faust.Stream
        s = self.settings
        async for batch in stream.noack_take(s.batch_max, s.sku_batch_within_s):
            started = time.perf_counter()
            events = cast(list[EventT], batch)
            by_partition: dict[int, list[tuple[bytes, dict[str, Any]]]] = defaultdict(list)
            n = 0
            for ev in events:
                items = by_partition[ev.message.partition]
                item = loads(cast(bytes, ev.value))
                if item.get("t") == BUNDLE:  # many re-keyed records from the ingest stage
                    for it in item["items"]:
                        items.append((it["sku"].encode(), it))
                    n += len(item["items"])
                else:
                    items.append((cast(bytes, ev.key), item))
                    n += 1
            futures: list[Any] = []
            self._decisions, self._df_decisions = {}, {}
            for partition, partition_items in by_partition.items():
                self._entry_writes = []
                writes, sends = self._apply_partition(partition, partition_items)
                futures.extend(await self.store.put_many(partition, writes))
                if self._entry_writes:
                    entry_writes = self._entry_writes
                    futures.extend(
                        await self.direct.put_many(self.entries, partition, entry_writes)
                    )
                for topic, key, value in sends:
                    futures.append(await self.direct.send(topic, key, value))
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
            await asyncio.gather(*futures)
            for ev in events:
                await stream.ack(ev)
            M.BATCH_SECONDS.labels("skus").observe(time.perf_counter() - started)
            M.BATCH_EVENTS.labels("skus").observe(n)
            M.PENDING.labels("deltas").set(len(self.debouncer))
            batch = events = []  # Faust waits for handed-out events to be released

    def _apply_partition(
        self, partition: int, items: Sequence[tuple[bytes, dict[str, Any]]]
    ) -> tuple[list[tuple[bytes, bytes | None]], list[tuple[str, bytes, bytes]]]:
        """Apply one partition's items: one state write per SKU, and what to send.

        Reads and the store write happen without an await in between, so the debounce
        timer never sees (or writes) a state half-way through a batch."""
        sends: list[tuple[str, bytes, bytes]] = []
        writes: list[tuple[bytes, bytes | None]] = []
        by_sku: dict[bytes, list[dict[str, Any]]] = defaultdict(list)
        for key, item in items:
            by_sku[key].append(item)
        store = self.store
        now = self.clock()
        outcomes: dict[str, int] = defaultdict(int)
        unmapped = 0
        for key, sku_items in by_sku.items():
            raw = store.get(partition, key)
            state = SkuState.from_dict(loads(raw)) if raw else SkuState(key.decode())
            changed = sold = False
            for item in sku_items:
                t = item["t"]
                if t == "obs":
                    obs = StockObservation.from_wire(item)
                    if item.get("src") == "sweep":
                        # before applying: was a change on this entry expected (an order)?
                        expected = bool(state.orders.held_on(obs.channel) or state.reread_at)
                    prev = state.channels.get(obs.channel)
                    outcome = state.apply(obs)
                    if "src" not in item:  # a ct.messages record (not the re-reader's or sweep's)
                        outcomes[outcome] += 1
                    if outcome == "applied" and item.get("src") == "sweep" and not item.get("y"):
                        self._finding["expected" if expected else "missed"].inc()
                    if outcome == "applied" and (
                        obs.kind == "delete" or prev is None or prev.entry_id != obs.entry_id
                    ):  # the entry index: one write per entry (and its delete), not per change
                        value = None if obs.kind == "delete" else key
                        self._entry_writes.append((obs.entry_id.encode(), value))
                    if outcome == "applied":
                        changed = True
                        ts = item.get("ts") or now
                        state.changed_at = min(state.changed_at or ts, ts)
                        if state.mapping is None:
                            unmapped += 1
                elif t == "map":
                    m = item["m"]
                    state.mapping = SkuMapping.model_validate(m) if m else None
                    changed = True
                elif t == "pub":  # written by earlier versions; now the timer writes
                    changed = True
                    state.last_published = item["amount"]
                    state.published_at = item["at"]
                elif t in ("alloc", "release"):
                    changed = True
                    sends.extend(self._allocation(state, item))
                elif t == "applied":
                    changed = state.confirm(item["cmd"], item["v"]) or changed
                else:
                    placed = self._storefront(state, item, now)
                    sold = sold or (placed and t == "hold")
                    changed = placed or changed
            if state.orders:
                expired = state.orders.expire(now, self.settings.ct_order_hold_ttl_s)
                if expired:
                    self._hold_outcome["expired"].inc(expired)
                    changed = True
            if state.reread_at is not None:
                self.rereads.schedule(state.sku, state.reread_at)
            if changed:
                # changed_at set <=> Amazon may not have been told: the restart scan reads
                # only such states (see _scan_dirty)
                if self._unpublished(state):
                    if state.changed_at is None:
                        state.changed_at = now
                    sale = self.settings.debounce_sale_wait_s if sold else None
                    self.debouncer.mark(state.sku, now, sale)
                    self.partition_of[state.sku] = partition
                else:
                    state.changed_at = state.order_at = None
                    self.debouncer.discard(state.sku)
                writes.append((key, dumps(state.to_dict())))
        for name, k in outcomes.items():
            self._outcome[name].inc(k)
        if unmapped:
            M.UNMAPPED.inc(unmapped)
        return writes, sends

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

    def _published_view(self, state: SkuState) -> int | None:
        return offered(state, self.defaults, self.channel_policy())

    def _unpublished(self, state: SkuState) -> bool:
        want = self._published_view(state)
        if want is None:
            return False
        return want != state.last_published

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

    def _owned_partitions(self) -> list[int]:
        topic = self.sku_topic_name
        return sorted(tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic)

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

    def _owned(self, partition: int) -> bool:
        tp = TP(self.sku_topic_name, partition)
        return tp in self.app.consumer.assignment()

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
