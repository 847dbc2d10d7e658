"""The debounce timer's published marks: stored at once, logged to the changelog only after
``published_log_delay_s`` unless a later change of the SKU carries them (a dict store fake
that records what it logs; no Faust)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streams.agents.inventory_publish import InventoryPublisher
from streams.config import Settings
from streams.runtime.ports import MemoryPartitionStore


class LoggingStore(MemoryPartitionStore):
    def __init__(self) -> None:
        super().__init__()
        self.logged: list[tuple[int, bytes, bytes | None]] = []  # the changelog, in order

    async def put_many(
        self, partition: int, items: Sequence[tuple[bytes, bytes | None]]
    ) -> list[Any]:
        await super().put_many(partition, items)
        self.logged.extend((partition, k, v) for k, v in items)
        return []

    async def log_current(self, partition: int, keys: Sequence[bytes]) -> list[Any]:
        self.logged.extend((partition, k, self.get(partition, k)) for k in keys)
        return []


class Publisher(InventoryPublisher):
    def __init__(self, delay: float, owned: list[int]) -> None:
        self.settings = Settings(published_log_delay_s=delay)
        self.log = LoggingStore()
        self.store = self.log
        self._unlogged = {}
        self.owned = owned

    def _owned_partitions(self) -> list[int]:
        return self.owned


async def test_a_mark_is_stored_at_once_and_logged_after_the_delay() -> None:
    p = Publisher(delay=30.0, owned=[0, 1])
    await p._put_marks(1, [(b"A", b"clean-A")], now=100.0)
    assert p.store.get(1, b"A") == b"clean-A" and p.log.logged == []
    await p._log_marks(129.9)
    assert p.log.logged == []
    await p._log_marks(130.0)
    assert p.log.logged == [(1, b"A", b"clean-A")]
    await p._log_marks(200.0)
    assert p.log.logged == [(1, b"A", b"clean-A")]  # once


async def test_a_change_within_the_delay_carries_the_mark_in_its_own_record() -> None:
    p = Publisher(delay=30.0, owned=[1])
    await p._put_marks(1, [(b"A", b"clean-A"), (b"B", b"clean-B")], now=100.0)
    writes: list[tuple[bytes, bytes | None]] = [(b"A", b"dirty-A, mark included")]
    await p.store.put_many(1, writes)  # the SKU agent's write
    p._logged(1, writes)
    await p._log_marks(131.0)
    assert p.log.logged == [(1, b"A", b"dirty-A, mark included"), (1, b"B", b"clean-B")]


async def test_the_logged_value_is_the_state_as_stored_when_logged() -> None:
    p = Publisher(delay=30.0, owned=[1])
    await p._put_marks(1, [(b"A", b"mark-1")], now=100.0)
    await p._put_marks(1, [(b"A", b"mark-2")], now=110.0)  # published again: keeps its turn
    await p._log_marks(130.0)
    assert p.log.logged == [(1, b"A", b"mark-2")]


async def test_marks_of_a_partition_no_longer_owned_are_never_logged_here() -> None:
    p = Publisher(delay=30.0, owned=[0, 1])
    await p._put_marks(0, [(b"A", b"clean-A")], now=100.0)
    await p._put_marks(1, [(b"B", b"clean-B")], now=100.0)
    p.owned = [1]  # partition 0 went to another worker: it restores from the changelog
    await p._log_marks(200.0)
    assert p.log.logged == [(1, b"B", b"clean-B")]


async def test_no_delay_logs_with_the_write() -> None:
    p = Publisher(delay=0.0, owned=[1])
    await p._put_marks(1, [(b"A", b"clean-A")], now=100.0)
    assert p.log.logged == [(1, b"A", b"clean-A")] and p._unlogged == {}
