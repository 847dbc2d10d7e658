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

import random
import time
from collections.abc import Callable
from typing import Any, cast

import faust

from streams.agents.ingest import IngestService
from streams.agents.inventory_apply import SkuApply
from streams.agents.inventory_publish import InventoryPublisher
from streams.agents.inventory_scan import DIRTY_SCAN_SLICE, SCAN_SLICE
from streams.agents.rereads import Rereader
from streams.config import Settings
from streams.domain import entry_index, product_index
from streams.domain.availability import Defaults
from streams.domain.debounce import Debouncer, SendBudget
from streams.domain.ports import InventoryEntryReader, InventoryQuery
from streams.domain.warehouse_policy import ChannelPolicy
from streams.observability import metrics as M
from streams.observability.lag import LagMonitor
from streams.runtime.ports import PartitionStore
from streams.runtime.store import DirectWriter, TableStore, derived_global_table, derived_table
from streams.runtime.storeopts import table_options

__all__ = ["DIRTY_SCAN_SLICE", "SCAN_SLICE", "InventoryFlow"]


class InventoryFlow(SkuApply, InventoryPublisher):
    """The flow's state and wiring; its parts are the base classes: the SKU agent
    (inventory_apply.py), the debounce timer (inventory_publish.py) and the scans
    (inventory_scan.py)."""

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
        # deltas per tick: STREAMS_DELTA_BUDGET_PER_S, with a second's worth of burst
        self.send_budget = SendBudget(
            s.delta_budget_per_s, tokens=s.delta_budget_per_s * s.debounce_tick_s
        )
        # published marks stored but not yet in the changelog: partition -> key -> when to
        # log it (see InventoryPublisher._log_marks)
        self._unlogged: dict[int, dict[bytes, float]] = {}

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
        # each partition's states, with the index of the inventory entries they hold
        # derived next to them (domain/entry_index.py): a delete that names only its entry
        # is placed by it, with no changelog record per entry
        self.skus = derived_table(
            app,
            "skus",
            derive=entry_index.derive,
            partitions=s.partitions,
            key_type=bytes,  # bytes in, bytes out: the "raw" codec, no JSON round trip
            value_type=bytes,
            options=table_options(s),
        )
        self.store: PartitionStore = TableStore(app, self.skus)  # read/written by partition
        # master data by Amazon identifier, for purchase orders keyed by PO number
        # one changelog record per mapping (sku:); the asin:/vpi: -> sku index is derived
        # wherever it is applied (domain/product_index.py)
        self.products = derived_global_table(
            app,
            "products",
            derive=product_index.derive,
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
        self.offer_of: dict[str, tuple[int, object, int]] = {}
        # ct.messages and master.sku-mappings are read by a raw consumer (agents/ingest.py)
        self.ingest = IngestService(
            app,
            s,
            sku_topic=self.sku_topic_name,
            products=self.products,
            reader=reader,
            clock=clock,
        )
        # storefront orders: the SKUs' entries re-read once commercetools shows the order
        self.rereads = Rereader(s, self.inventory_query, self.send_read, clock)
        self._hold_outcome = {
            o: M.ORDER_HOLDS.labels(o) for o in ("placed", "duplicate", "settled", "expired")
        }
        self._finding = {k: M.SWEEP_FINDINGS.labels(k) for k in ("expected", "missed")}
        self._entry_deletes = {k: M.ENTRY_DELETES.labels(k) for k in ("placed", "elsewhere")}
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

    async def _on_rebalance_complete(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        self._drop_unlogged()
        self.offer_of.clear()  # stale once the partitions moved (see _known_offer)
        self.needs_dirty_scan = True
        self.needs_scan = True
