"""A SKU's Amazon allocations: PO line decisions, what each line holds per channel, and the
reserve/release commands for commercetools until its stock shows them (pure).

``SkuLedger`` is a base of ``SkuState`` (domain/inventory.py), whose fields it uses.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from streams.domain.allocation import AllocationLedger, LedgerResult
from streams.domain.inventory_wire import EntryStock
from streams.domain.mapping import SkuMapping
from streams.domain.order_holds import OrderHolds
from streams.domain.purchase_orders import PoLine
from streams.domain.warehouse_policy import (
    ChannelPolicy,
    is_eligible,
    plan_reservation,
    release_order,
)


class SkuLedger:
    if not TYPE_CHECKING:  # (mypy would refuse the writes to SkuState's slots here)
        __slots__ = ()  # SkuState is a slots dataclass: no __dict__ from a base either

    # SkuState's fields and availability rule
    sku: str
    channels: dict[str, EntryStock]
    mapping: SkuMapping | None
    lines: dict[str, Any]
    holds: dict[str, dict[str, int]]
    pending: dict[str, list[Any]]
    line_commands: dict[str, list[dict[str, Any]]]
    command_seq: int
    orders: OrderHolds
    availability: Callable[..., int]

    @property
    def allocated(self) -> int:
        """Eaches allocated to Amazon not yet shown by commercetools (reserve +, release -)."""
        return sum(int(p[0]) for p in self.pending.values())

    def allocate(
        self,
        line: PoLine,
        now: datetime,
        *,
        backorder_lead_days: int,
        price_tolerance: Decimal,
        default_channels: tuple[str, ...] = (),
        default_buffer: int = 0,
        policy: ChannelPolicy | None = None,
    ) -> tuple[LedgerResult, list[dict[str, Any]]]:
        """Decide one PO line against this SKU once; returns the decision and the commands
        for commercetools (a redelivered line gets the same decision and the same commands,
        which commercetools applies once by command id). ``policy`` is the warehouse policy
        (channel eligibility, priority, safety stock); None = configuration only."""
        ledger = AllocationLedger(self.lines)
        available = self.availability(default_channels, default_buffer, policy)
        result = ledger.decide(
            line,
            available,
            self.mapping,
            now=now,
            backorder_lead_days=backorder_lead_days,
            price_tolerance=price_tolerance,
        )
        if result.replayed:
            return result, list(self.line_commands.get(line.key, []))
        commands = self._move(line, result.delta_eaches, now, default_channels, policy)
        return result, commands

    def release_line(
        self,
        line_key: str,
        po: str,
        seq: str,
        now: datetime,
        policy: ChannelPolicy | None = None,
        keep: int = 0,
    ) -> list[dict[str, Any]]:
        """Give back what a closed or cancelled PO line holds, but ``keep`` eaches (shipped:
        they left the warehouse, see streams.domain.po_close)."""
        released = AllocationLedger(self.lines).release(line_key)
        if not released and not self.holds.get(line_key):
            return []
        give = sum(self.holds.get(line_key, {}).values()) - keep
        if give <= 0:  # all shipped, or given back already: repeat only a release (redelivery)
            return [c for c in self.line_commands.get(line_key, []) if c["action"] == "release"]
        return self._move_key(line_key, po, seq, -give, now, (), policy)

    def _move(
        self,
        line: PoLine,
        delta: int,
        now: datetime,
        default_channels: tuple[str, ...],
        policy: ChannelPolicy | None = None,
    ) -> list[dict[str, Any]]:
        return self._move_key(
            line.key, line.purchaseOrderNumber, line.itemSequenceNumber, delta, now,
            default_channels, policy,
        )  # fmt: skip

    def _move_key(
        self,
        key: str,
        po: str,
        seq: str,
        delta: int,
        now: datetime,
        default_channels: tuple[str, ...],
        policy: ChannelPolicy | None = None,
    ) -> list[dict[str, Any]]:
        if delta == 0:
            return list(self.line_commands.get(key, []))
        held = self.holds.setdefault(key, {})
        moves: list[tuple[str, int]] = []
        if delta > 0:
            # the warehouse policy's order (priority, then most free), each channel only
            # beyond its safety stock; without a policy: most free first, as few entries as
            # possible (see warehouse_policy.plan_reservation)
            free = {
                ch: e.available + self._pending_on(ch) - self.orders.held_on(ch)
                for ch, e in self.channels.items()
                if is_eligible(ch, self.mapping, default_channels, policy)
            }
            moves = plan_reservation(free, delta, policy)
        else:
            give = -delta
            for ch in release_order(held, policy):
                take = min(give, held[ch])
                if take:
                    moves.append((ch, -take))
                    give -= take
                if not give:
                    break
        commands = []
        for ch, q in moves:
            self.command_seq += 1
            action = "reserve" if q > 0 else "release"
            cmd_id = f"{action}:{key}:{self.command_seq}"
            held[ch] = held.get(ch, 0) + q
            if not held[ch]:
                del held[ch]
            self.pending[cmd_id] = [q, ch, None]
            commands.append(
                {
                    "commandId": cmd_id,
                    "action": action,
                    "sku": self.sku,
                    "supplyChannel": ch,
                    "quantity": abs(q),
                    "purchaseOrderNumber": po,
                    "itemSequenceNumber": seq,
                    "createdAt": now.isoformat().replace("+00:00", "Z"),
                }
            )
        if not held:
            self.holds.pop(key, None)
        self.line_commands[key] = commands
        return commands

    def _pending_on(self, channel: str) -> int:
        return -sum(int(p[0]) for p in self.pending.values() if p[1] == channel)

    def confirm(self, command_id: str, version: int) -> bool:
        """commercetools applied a command; it stops counting once the stock shows it."""
        p = self.pending.get(command_id)
        if p is None:
            return False
        p[2] = version
        self.settle()
        return True

    def settle(self) -> None:
        for cmd, (_, ch, v) in list(self.pending.items()):
            entry = self.channels.get(ch)
            if v is not None and entry is not None and entry.version >= v:
                del self.pending[cmd]
