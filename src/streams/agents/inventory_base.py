"""What the parts of the inventory flow share: its state, and what Amazon is offered.

``InventoryFlow`` (agents/inventory.py) builds the state in its constructor; the SKU agent
(inventory_apply.py), the restart scans (inventory_scan.py) and the debounce timer
(inventory_publish.py) are its parts, each a base class of it that reads these attributes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import faust
from faust.types import TP

from streams.agents.ingest import IngestService
from streams.agents.rereads import Rereader
from streams.config import Settings
from streams.domain.availability import Defaults, offered
from streams.domain.debounce import Debouncer, SendBudget
from streams.domain.inventory import SkuState
from streams.domain.warehouse_policy import ChannelPolicy
from streams.observability.lag import LagMonitor
from streams.runtime.ports import PartitionStore
from streams.runtime.store import DirectWriter


class InventoryBase:
    # set by InventoryFlow.__init__
    app: faust.App
    settings: Settings
    clock: Callable[[], float]
    lag: LagMonitor | None
    defaults: Defaults
    debouncer: Debouncer
    direct: DirectWriter
    store: PartitionStore
    ingest: IngestService
    rereads: Rereader
    commands_topic: faust.TopicT
    decisions_topic: faust.TopicT | None
    df_decisions: Callable[[bytes, list[Any]], tuple[str, bytes, bytes]] | None
    channel_policy: Callable[[], ChannelPolicy | None]
    sku_topic_name: str
    out_topic_name: str
    partition_of: dict[str, int]
    # dirty SKU -> what the SKU agent computed Amazon is offered for the state it wrote, under
    # which warehouse policy and consumer generation (the timer's path without a decode)
    offer_of: dict[str, tuple[int, object, int]]
    needs_scan: bool
    needs_dirty_scan: bool
    snapshot_cursor: list[tuple[int, bytes | None]]
    next_snapshot: float
    send_budget: SendBudget
    _unlogged: dict[int, dict[bytes, float]]
    _scan_cursor: list[tuple[int, bytes | None]]
    _dirty_cursor: list[tuple[int, bytes | None]]
    _decisions: dict[bytes, list[Any]]
    _df_decisions: dict[bytes, list[Any]]
    _outcome: dict[str, Any]
    _hold_outcome: dict[str, Any]
    _finding: dict[str, Any]
    _entry_deletes: dict[str, Any]
    _jitter: random.Random

    def _reread_due(self, now: float) -> float:
        s = self.settings
        return now + s.ct_order_settle_delay_s + self._jitter.uniform(0, s.ct_order_reread_jitter_s)

    def _published_view(self, state: SkuState) -> int | None:
        return offered(state, self.defaults, self.channel_policy())

    def _unpublished(self, state: SkuState) -> bool:
        return self._to_publish(state) is not None

    def _to_publish(self, state: SkuState) -> int | None:
        """What Amazon is to be told for ``state``; None when it already was (or the SKU
        is not offered)."""
        want = self._published_view(state)
        return None if want is None or want == state.last_published else want

    def _remember_offer(self, sku: str, amount: int) -> None:
        """The offered amount of the state just written for ``sku``. Only the SKU agent
        changes what a state offers, and it calls this (or :meth:`_forget_offer`) at each
        write; the timer's marks change no input of it."""
        self.offer_of[sku] = (amount, self.channel_policy(), self._generation())

    def _forget_offer(self, sku: str) -> None:
        self.offer_of.pop(sku, None)

    def _known_offer(self, sku: str) -> int | None:
        """The amount :meth:`_remember_offer` recorded for ``sku``, taken out, if it still
        holds: the same warehouse policy, and no rebalance since (another worker may have
        changed the state meanwhile). None: compute it from the state."""
        known = self.offer_of.pop(sku, None)
        if known is None:
            return None
        amount, policy, generation = known
        if policy is not self.channel_policy() or generation != self._generation():
            return None
        return amount

    def _generation(self) -> int:
        return int(getattr(self.app, "consumer_generation_id", 0) or 0)

    def _logged(self, partition: int, items: list[tuple[bytes, bytes | None]]) -> None:
        """``items`` went to the changelog with their current values: any published mark
        waiting to be logged for them is in those records."""
        pending = self._unlogged.get(partition)
        if pending:
            for key, _ in items:
                pending.pop(key, None)

    def _drop_unlogged(self) -> None:
        """Forget the marks of partitions this worker no longer owns: it must not write
        their changelog any more; their new owner restores them from it (dirty, so it tells
        Amazon again, at worst the amount Amazon already has)."""
        owned = set(self._owned_partitions())
        for partition in [p for p in self._unlogged if p not in owned]:
            del self._unlogged[partition]

    def _owned_partitions(self) -> list[int]:
        topic = self.sku_topic_name
        return sorted(tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic)

    def _owned(self, partition: int) -> bool:
        tp = TP(self.sku_topic_name, partition)
        return tp in self.app.consumer.assignment()
