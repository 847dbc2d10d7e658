"""The debounce timer's published marks: stored at once, logged to the changelog only after
``published_log_delay_s`` unless a later change of the SKU carries them (a dict store fake
that records what it logs; no Faust)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import orjson

from streams.agents.inventory_publish import InventoryPublisher
from streams.config import Settings
from streams.domain.inventory import SkuState
from streams.domain.inventory_wire import EntryStock
from streams.domain.mapping import SkuMapping
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


# --- the mark is written only once Kafka has the delta ---------------------------------


class FakeProducer:
    """``send`` hands out futures the test resolves, as aiokafka's do after delivery."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.futures: list[asyncio.Future[Any]] = []

    async def send(self, topic: str, key: bytes, value: bytes, *_: Any) -> asyncio.Future[Any]:
        self.sent.append((topic, key))
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(fut)
        return fut


class FakeDebouncer:
    def __init__(self) -> None:
        self.marked: list[str] = []

    def mark(self, sku: str, now: float, within: float | None = None) -> None:
        self.marked.append(sku)


class Sender(Publisher):
    def __init__(self) -> None:
        super().__init__(delay=0.0, owned=[0])
        self.settings = Settings(published_log_delay_s=0.0, partitions=1)
        self.partition_of = {}
        self.offer_of = {}
        self.policy: object = None
        self.channel_policy = lambda: self.policy  # type: ignore[assignment,return-value]
        self.out_topic_name = "updates"
        self.producer = FakeProducer()
        self.app = SimpleNamespace(producer=self.producer, consumer_generation_id=1)
        self.debouncer = FakeDebouncer()

    def _owned(self, partition: int) -> bool:
        return partition in self.owned

    def _published_view(self, state: SkuState) -> int | None:
        return sum(e.available for e in state.channels.values())


def sku_state(available: int, last: int | None = None) -> bytes:
    state = SkuState(
        sku="A",
        mapping=SkuMapping(sku="A", asin="B000000001"),
        last_published=last,
        changed_at=90.0,
    )
    state.channels["ch"] = EntryStock(
        entry_id="e1", version=1, available=available, on_stock=available
    )
    return orjson.dumps(state.to_dict())


def stored(p: Sender) -> SkuState:
    raw = p.store.get(0, b"A")
    assert raw is not None
    return SkuState.from_dict(orjson.loads(raw))


async def test_the_published_mark_is_written_only_after_kafka_has_the_delta() -> None:
    p = Sender()
    await p.store.put_many(0, [(b"A", sku_state(7))])
    task = asyncio.create_task(p._publish([b"A"], "delta", now=100.0))
    await asyncio.sleep(0)
    assert p.producer.sent == [("updates", b"A")]
    # a SIGKILL now must leave the SKU dirty (the restart scan re-sends it), never "told"
    assert stored(p).last_published is None and stored(p).changed_at == 90.0
    p.producer.futures[0].set_result(None)
    assert await task == 1
    assert stored(p).last_published == 7 and stored(p).changed_at is None


async def test_an_undelivered_delta_leaves_the_sku_dirty_and_due_again() -> None:
    p = Sender()
    await p.store.put_many(0, [(b"A", sku_state(7))])
    task = asyncio.create_task(p._publish([b"A"], "delta", now=100.0))
    await asyncio.sleep(0)
    p.producer.futures[0].set_exception(RuntimeError("broker away"))
    await task
    assert stored(p).last_published is None and stored(p).changed_at == 90.0
    assert p.debouncer.marked == ["A"]


async def test_a_change_applied_while_the_delta_was_in_flight_is_kept() -> None:
    p = Sender()
    await p.store.put_many(0, [(b"A", sku_state(7))])
    task = asyncio.create_task(p._publish([b"A"], "delta", now=100.0))
    await asyncio.sleep(0)
    await p.store.put_many(0, [(b"A", sku_state(3))])  # the SKU agent, meanwhile
    p.producer.futures[0].set_result(None)
    await task
    s = stored(p)
    assert s.channels["ch"].available == 3  # not overwritten by the state read before
    assert s.last_published == 7 and s.changed_at == 90.0  # told 7, 3 still to tell


# --- the amount the SKU agent computed for the state it wrote ---------------------------


async def published_amount(p: Sender) -> int:
    task = asyncio.create_task(p._publish([b"A"], "delta", now=100.0))
    await asyncio.sleep(0)
    p.producer.futures[-1].set_result(None)
    await task
    return stored(p).last_published or 0


async def test_the_timer_publishes_the_amount_the_sku_agent_computed_for_the_state() -> None:
    p = Sender()
    await p.store.put_many(0, [(b"A", sku_state(7))])
    p._remember_offer("A", 5)  # what the agent's rule gave (here unlike the fake view's 7)
    assert await published_amount(p) == 5
    assert p.offer_of == {}  # taken: the next publish of A computes it again
    await p.store.put_many(0, [(b"A", sku_state(8, last=5))])
    assert await published_amount(p) == 8


async def test_an_amount_computed_under_another_policy_is_computed_again() -> None:
    p = Sender()
    await p.store.put_many(0, [(b"A", sku_state(7))])
    p._remember_offer("A", 5)
    p.policy = object()  # the warehouse policy changed since the agent wrote the state
    assert await published_amount(p) == 7


async def test_an_amount_from_before_a_rebalance_is_computed_again() -> None:
    p = Sender()
    await p.store.put_many(0, [(b"A", sku_state(7))])
    p._remember_offer("A", 5)
    p.app.consumer_generation_id = 2  # the partition may have been another worker's since
    assert await published_amount(p) == 7
