"""Per-SKU state and the availability rule (pure).

One record per SKU holds the stock of each of its (sku, channel) inventory entries, the
master mapping, open Amazon allocations and what Amazon was last told. Keeping them in one
record makes every decision about a SKU local to the partition that owns it, and costs one
state write per SKU per batch however many events arrived.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

from streams.domain.ctmessages import StockObservation
from streams.domain.inventory_ledger import SkuLedger
from streams.domain.inventory_wire import (
    CLEAN_PREFIX,
    DIRTY_PREFIX,
    LEGACY_CLEAN_TAIL,
    EntryStock,
    stored_clean,
)
from streams.domain.mapping import SkuMapping
from streams.domain.order_holds import Ended, OrderHolds
from streams.domain.warehouse_policy import ChannelPolicy, is_eligible, offered, sku_buffer

__all__ = [
    "CLEAN_PREFIX",
    "DIRTY_PREFIX",
    "LEGACY_CLEAN_TAIL",
    "RECENT_IDS",
    "EntryStock",
    "Outcome",
    "SkuState",
    "inventory_update",
    "message_tag",
    "stored_clean",
    "stored_told",
    "stored_update",
]

RECENT_IDS = 8  # message tags kept per entry to tell redeliveries from late changes
Outcome = Literal["applied", "duplicate", "stale"]


@dataclass(slots=True)
class SkuState(SkuLedger):
    sku: str
    channels: dict[str, EntryStock] = field(default_factory=dict)
    # entry id -> version at deletion: a late update of a deleted entry must not revive it
    deleted: dict[str, int] = field(default_factory=dict)
    mapping: SkuMapping | None = None
    # Amazon allocations: the ledger of line decisions, what each line holds per channel,
    # and commands not yet reflected in commercetools: id -> [signed eaches, channel,
    # entry version that reflects it (None until the command is applied)]
    lines: dict[str, Any] = field(default_factory=dict)
    holds: dict[str, dict[str, int]] = field(default_factory=dict)
    pending: dict[str, list[Any]] = field(default_factory=dict)
    line_commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    command_seq: int = 0
    last_published: int | None = None
    published_at: float | None = None
    changed_at: float | None = None  # when the master last changed (for latency/drift)
    # storefront orders not yet shown by commercetools (see domain/order_holds.py), when the
    # SKU's entries are next to be re-read, and when a storefront order first changed what
    # Amazon should be told (for the storefront -> Amazon latency)
    orders: OrderHolds = field(default_factory=OrderHolds)
    reread_at: float | None = None
    order_at: float | None = None

    # --- stock ------------------------------------------------------------------------
    def apply(self, obs: StockObservation) -> Outcome:
        """Apply one observation; duplicates and stale ones change nothing."""
        if obs.kind == "delete":
            return self._delete(obs)
        if self.deleted.get(obs.entry_id, -1) >= obs.version:
            return "stale"
        cur = self.channels.get(obs.channel)
        if cur is not None and cur.entry_id == obs.entry_id:
            # the version decides; the remembered message ids only tell a redelivery
            # ("duplicate") from an older change arriving late ("stale")
            if obs.version < cur.version:
                return "duplicate" if _seen(cur, obs.msg_id) else "stale"
            if obs.version == cur.version:
                # same resource version: a redelivery, or a second message for the same
                # change; the state is already right
                if not _seen(cur, obs.msg_id):
                    _remember(cur, obs.msg_id)
                return "duplicate"
        entry = EntryStock(
            obs.entry_id,
            obs.version,
            obs.available,
            obs.on_stock,
            obs.seq,
            obs.at,
            list(cur.recent_ids) if cur is not None and cur.entry_id == obs.entry_id else [],
        )
        _remember(entry, obs.msg_id)
        self.channels[obs.channel] = entry
        if self.pending:
            self.settle()
        return "applied"

    def _delete(self, obs: StockObservation) -> Outcome:
        if self.deleted.get(obs.entry_id, -1) >= obs.version:
            return "duplicate"
        channel = obs.channel
        if channel not in self.channels or self.channels[channel].entry_id != obs.entry_id:
            channel = next(
                (c for c, e in self.channels.items() if e.entry_id == obs.entry_id), channel
            )
        cur = self.channels.get(channel)
        self.deleted[obs.entry_id] = obs.version
        if len(self.deleted) > 16:  # keep the newest few tombstones only
            for k in list(self.deleted)[:-16]:
                del self.deleted[k]
        if cur is None or cur.entry_id != obs.entry_id or cur.version > obs.version:
            return "stale"
        del self.channels[channel]
        return "applied"

    # --- allocations: see domain/inventory_ledger.py ----------------------------------

    # --- storefront orders ----------------------------------------------------------------
    def place_hold(
        self,
        key: str,
        channel: str,
        quantity: int,
        now: float,
        reread_at: float,
        at: float | None = None,
    ) -> bool:
        """Hold what a storefront order line took until commercetools shows it (once per
        key); the SKU's entries are re-read at ``reread_at``. ``at``: when the order was
        delivered (for the storefront -> Amazon latency)."""
        entry = self.channels.get(channel)
        placed = self.orders.place(key, channel, quantity, now, entry.version if entry else -1)
        if placed:
            self.request_reread(reread_at)
            t = now if at is None else at
            self.order_at = t if self.order_at is None else min(self.order_at, t)
        return placed

    def request_reread(self, at: float) -> None:
        self.reread_at = at if self.reread_at is None else min(self.reread_at, at)

    def on_read(
        self, read_at: float, delay: float, channels: list[str] | None = None, empty: bool = False
    ) -> Ended:
        """The SKU's entries (``channels``; None: all of them) were read from commercetools,
        the read starting at ``read_at``, and what it showed is applied: holds that read
        must reflect end, and a full read satisfies the re-read it was made for.

        ``empty``: a full read found no entry. While this state knows entries that no delete
        removed, that says nothing of them (a query that failed to match, not a deletion:
        deletes come as messages): no hold ends on it."""
        blind = empty and bool(self.channels)
        ended = self.orders.on_read(
            read_at,
            delay,
            lambda ch: self.channels[ch].version if ch in self.channels else None,
            [] if blind else channels,
        )
        if channels is None and self.reread_at is not None and self.reread_at <= read_at:
            self.reread_at = None
        if self.orders:
            due = self.orders.next_due(delay)
            if due is not None:  # after a blind read, not at once again: a delay later
                self.request_reread(max(due, read_at + delay) if blind else due)
        return ended

    # --- availability -------------------------------------------------------------------
    def master_total(
        self, default_channels: tuple[str, ...] = (), policy: ChannelPolicy | None = None
    ) -> int:
        """Units the eligible channels show as available (commercetools' availableQuantity),
        each beyond its safety stock under the warehouse policy."""
        return sum(
            offered(ch, e.available, policy)
            for ch, e in self.channels.items()
            if is_eligible(ch, self.mapping, default_channels, policy)
        )

    def availability(
        self,
        default_channels: tuple[str, ...] = (),
        default_buffer: int = 0,
        policy: ChannelPolicy | None = None,
    ) -> int:
        """Eaches Amazon may be offered: eligible stock beyond per-channel safety stock -
        the SKU's buffer - open allocations on eligible channels. One figure per SKU.

        An allocation pending on a channel that no longer serves Amazon (the policy or the
        mapping changed) moves stock Amazon is not offered: it must not count, or a release
        there would inflate the figure until commercetools shows it."""
        m = self.mapping
        if m is not None and m.obsolete:
            return 0
        eligible = {ch for ch in self.channels if is_eligible(ch, m, default_channels, policy)}
        total = sum(offered(ch, self.channels[ch].available, policy) for ch in eligible)
        buffer = sku_buffer(m, default_buffer, policy, eligible)
        held = sum(int(p[0]) for p in self.pending.values() if p[1] in eligible)
        held += self.orders.held(eligible)
        return max(0, total - buffer - held)

    def publishable(self) -> bool:
        """Only mapped SKUs are sent to Amazon (Amazon knows them by ASIN / vendor id)."""
        m = self.mapping
        return m is not None and bool(m.asin or m.vendorProductIdentifier)

    # --- wire ---------------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        """Something a restart must not forget: a change not yet published to Amazon, an
        open storefront hold, or a re-read of the entries due."""
        return self.changed_at is not None or bool(self.orders.open) or self.reread_at is not None

    def to_dict(self) -> dict[str, Any]:
        d = {
            "dirty": int(self.dirty),  # first: see stored_clean
            "sku": self.sku,
            "ch": {c: e.to_dict() for c, e in self.channels.items()},
            "del": self.deleted,
            "m": self.mapping.model_dump(mode="json") if self.mapping else None,
            "ln": self.lines,
            "ho": self.holds,
            "pe": self.pending,
            "lc": self.line_commands,
            "cs": self.command_seq,
            "lp": self.last_published,
            "pa": self.published_at,
            "oe": self.orders.ended or None,
            "oa": self.order_at,
            "ca": self.changed_at,
        }
        # written only when there are some: most states have neither
        if self.orders.open or self.reread_at is not None:
            d["oh"] = {k: h.to_list() for k, h in self.orders.open.items()}
            d["rr"] = self.reread_at
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SkuState:
        return cls(
            sku=d["sku"],
            channels={c: EntryStock.from_dict(e) for c, e in d.get("ch", {}).items()},
            deleted=dict(d.get("del", {})),
            mapping=SkuMapping.model_validate(d["m"]) if d.get("m") else None,
            lines=d.get("ln", {}),
            holds=d.get("ho", {}),
            pending=d.get("pe", {}),
            line_commands=d.get("lc", {}),
            command_seq=d.get("cs", 0),
            last_published=d.get("lp"),
            published_at=d.get("pa"),
            changed_at=d.get("ca"),
            orders=OrderHolds.from_dict({"o": d.get("oh") or {}, "e": d.get("oe") or {}}),
            reread_at=d.get("rr"),
            order_at=d.get("oa"),
        )


def message_tag(msg_id: str) -> int:
    """A message id as a state remembers it: its CRC-32, 10 bytes of JSON instead of a
    38-byte UUID string (8 per entry made up half of a long-lived SKU's stored state). A
    collision can only label a late message "duplicate" instead of "stale": the version
    decides what is applied."""
    return zlib.crc32(msg_id.encode())


def _seen(entry: EntryStock, msg_id: str | None) -> bool:
    if msg_id is None:
        return False
    # states stored before the tags hold the ids themselves
    return message_tag(msg_id) in entry.recent_ids or msg_id in entry.recent_ids


def _remember(entry: EntryStock, msg_id: str | None) -> None:
    if msg_id is None:
        return
    entry.recent_ids.append(message_tag(msg_id))
    if len(entry.recent_ids) > RECENT_IDS:
        del entry.recent_ids[0]


def inventory_update(
    state: SkuState, amount: int, kind: Literal["delta", "snapshot"], published_at: str
) -> dict[str, Any]:
    """The ``amazon.inventory-updates`` value for ``state``: :func:`stored_update` of its
    stored form, which is what the debounce timer sends."""
    assert state.mapping is not None, "only mapped SKUs are published"
    return stored_update(state.to_dict(), amount, kind, published_at)


def stored_update(
    d: dict[str, Any], amount: int, kind: Literal["delta", "snapshot"], published_at: str
) -> dict[str, Any]:
    """The ``amazon.inventory-updates`` value: a DF inventory ``ItemDetails`` plus context,
    from the stored state ``d`` (``SkuState.to_dict``'s layout), read without decoding it
    into a SkuState (the debounce timer's path)."""
    m = d.get("m")
    assert m, "only mapped SKUs are published"
    item: dict[str, Any] = {
        "availableQuantity": {"amount": amount, "unitOfMeasure": "Each"},
        "isObsolete": bool(m.get("obsolete")),
    }
    if m.get("asin"):
        item["buyerProductIdentifier"] = m["asin"]
    if m.get("vendorProductIdentifier"):
        item["vendorProductIdentifier"] = m["vendorProductIdentifier"]
    return {
        "sku": d["sku"],
        **item,
        "previousAmount": d.get("lp"),
        "kind": kind,
        "publishedAt": published_at,
        "masterChangedAt": d.get("ca"),
    }


def stored_told(d: dict[str, Any], amount: int, now: float) -> dict[str, Any] | None:
    """The stored state ``d`` once Amazon was told ``amount`` at ``now`` and nothing is left
    to publish: what the timer's mark does to a SkuState (last published, when, no pending
    change or storefront latency), done on the stored layout. None for a state stored
    before the dirty marker: decode that one."""
    if next(iter(d), None) != "dirty":
        return None
    d["lp"], d["pa"], d["ca"], d["oa"] = amount, now, None, None
    # SkuState.dirty with no change left: an open storefront hold or a re-read due
    d["dirty"] = int(bool(d.get("oh")) or d.get("rr") is not None)
    return d
