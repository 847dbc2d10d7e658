"""``streams.runtime.consumer.ContiguousCommitConsumer`` (bug 8 of docs/reliability.md): a
partition is committed only up to its first record fetched and not processed; offsets
between fetched records (compaction, retention, transaction markers) are a legitimate jump;
an ack counts only if the record was processed (not skipped by a stream, not from an earlier
generation); every seek restarts the tracking, and a fetch in flight across a seek is sought
back. Hand-written fakes, no Kafka."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP

from streams.runtime.commit import ReadOffsets, Tracked
from streams.runtime.consumer import ContiguousCommitConsumer, TakenSensor, TrackedMessage

T = TP("amazon.purchase-orders", 0)


def msg(offset: int, tp: TP = T, generation: int = 1) -> TrackedMessage:
    return TrackedMessage(
        tp.topic, tp.partition, offset, None, 0, None, b"k", b"v", None, 1, 1, tp,
        generation_id=generation,
    )  # fmt: skip


def deliver(m: TrackedMessage, channels: int = 1, taken: int | None = None) -> None:
    """What the conductor (refcount += channels) and the streams (the sensor) do."""
    m.refcount += channels
    sensor = TakenSensor()
    for _ in range(channels if taken is None else taken):
        sensor.on_stream_event_in(m.tp, m.offset, None, SimpleNamespace(message=m))  # type: ignore[arg-type]


def final_ack(c: Any, m: TrackedMessage, channels: int = 1) -> bool:
    """Every channel's stream acks; the last one reaches the consumer."""
    out = False
    for _ in range(channels):
        out = m.ack(c)
    return out


@dataclass
class _Thread:
    """The consumer thread: fetches what it is given, records seeks."""

    batches: list[dict[TP, list[Any]]] = field(default_factory=list)
    committed: dict[TP, int | None] = field(default_factory=dict)
    earliest: dict[TP, int] = field(default_factory=dict)
    seeks: list[tuple[TP, int]] = field(default_factory=list)
    during_fetch: Any = None

    async def getmany(self, active: Any, timeout: float) -> dict[TP, list[Any]]:
        if self.during_fetch is not None:
            await self.during_fetch()
            self.during_fetch = None
        return self.batches.pop(0) if self.batches else {}

    async def seek_to_committed(self) -> dict[TP, int | None]:
        for tp, off in self.committed.items():
            if off:  # aiokafka: only a committed offset > 0
                self.seeks.append((tp, off))
        return dict(self.committed)

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.earliest.get(tp, 0) for tp in tps}

    def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


def consumer(generation: int = 1, reset: str = "earliest") -> Any:
    """A ContiguousCommitConsumer without Faust's service machinery: only what the offset
    logic touches."""
    c: Any = object.__new__(ContiguousCommitConsumer)
    c.app = SimpleNamespace(
        consumer_generation_id=generation,
        topics=SimpleNamespace(acks_enabled_for=lambda topic: "changelog" not in topic),
        conf=SimpleNamespace(consumer_auto_offset_reset=reset),
    )
    c._thread = _Thread()
    c._tracked = {}
    c._epoch = 0
    c._seek_pending = False
    c.assignment = lambda: {T, TP("t", 0), TP("t", 1), TP("t", 2)}
    c.refused_acks = 0
    c._n_acked = 0
    c._unacked_messages = set()
    c._waiting_for_ack = None
    c._read_offset = defaultdict(lambda: None)
    c._committed_offset = defaultdict(lambda: None)
    c._acked = defaultdict(list)
    c._acked_index = defaultdict(set)
    return c


def records(*offsets: int, tp: TP = T) -> dict[TP, list[Any]]:
    return {tp: [SimpleNamespace(offset=o) for o in offsets]}


async def fetch(c: Any, *offsets: int) -> list[TrackedMessage]:
    c._thread.batches.append(records(*offsets))
    got = await c._getmany({T}, 1.0)
    return [msg(r.offset, generation=c.app.consumer_generation_id) for r in got.get(T, [])]


# --- Faust 0.15.3's own commit: the two holes the patch closes ----------------------------


def faust_new_offset(committed: int | None, acked: list[int]) -> int | None:
    c = SimpleNamespace(
        _acked={T: list(acked)},
        _acked_index={T: set(acked)},
        _gap=defaultdict(lambda: None),
        _committed_offset={T: committed},
    )
    c._gap = {T: []}
    return FaustConsumer._new_offset(c, T)  # type: ignore[arg-type]


def test_faust_commits_past_a_one_record_gap_at_the_committed_offset() -> None:
    # committed 5 = "read 5 next"; 5 never acked, 6 and 7 acked: Faust commits 8
    assert faust_new_offset(5, [6, 7]) == 8


def test_faust_commits_past_offset_0_of_a_partition_never_committed() -> None:
    assert faust_new_offset(None, [1, 2, 3]) == 4


# --- the tracking ---------------------------------------------------------------------------


def test_commit_stops_at_the_first_record_not_processed() -> None:
    t = Tracked(start=5)
    t.on_fetched([5, 6, 7])
    assert t.on_ack(6) and t.on_ack(7)
    assert t.commit_point() == 5  # Faust: 8
    assert t.on_ack(5)
    assert t.commit_point() == 8


def test_a_partition_never_committed_keeps_offset_0() -> None:
    t = Tracked(start=None)
    t.on_fetched([0, 1, 2, 3])
    for o in (1, 2, 3):
        t.on_ack(o)
    assert t.commit_point() == 0  # Faust: 4
    t.on_ack(0)
    assert t.commit_point() == 4


def test_offsets_the_broker_never_returned_are_jumped() -> None:
    # sought to 10; 10-12 and 14 compacted away (or retention, or transaction markers)
    t = Tracked(start=10)
    t.on_fetched([13, 15])
    t.on_fetched([16])
    assert t.commit_point() == 13  # nothing processed yet: the jump to the first record only
    for o in (13, 15, 16):
        t.on_ack(o)
    assert t.commit_point() == 17


def test_a_hole_in_the_middle_holds_the_commit() -> None:
    t = Tracked(start=10)
    t.on_fetched([10, 11, 12, 13, 14])
    for o in (10, 11, 13, 14):
        t.on_ack(o)
    assert t.commit_point() == 12
    t.on_ack(12)
    assert t.commit_point() == 15


def test_nothing_fetched_nothing_committed() -> None:
    assert Tracked(start=7).commit_point() is None


def test_an_ack_before_the_record_is_read_again_counts() -> None:
    # processed from a fetch before the last seek (same generation): Faust drops the copy
    # read again after the seek (below its read offset), so the first ack is the one
    t = Tracked(start=10)
    t.on_fetched([10, 11])
    assert t.on_ack(12)
    assert not t.on_ack(9)  # before the start: committed already
    assert t.commit_point() == 10
    t.on_ack(10)
    t.on_ack(11)
    t.on_fetched([12, 13])
    assert t.commit_point() == 13


# --- acks ---------------------------------------------------------------------------------


async def test_processed_records_commit() -> None:
    c = consumer()
    c._tracked[T] = Tracked(start=0)
    ms = await fetch(c, 0, 1, 2)
    for m in ms:
        deliver(m)
        assert final_ack(c, m)
    assert c._new_offset(T) == 3
    assert list(c._filter_tps_with_pending_acks()) == [T]


async def test_a_record_one_stream_skipped_is_not_processed() -> None:
    # delivered to two agents (po-events and sales-orders-feed); one skipped it during a
    # rebalance (flow suspended) and acked it: not counted, the commit stays before it
    c = consumer()
    c._tracked[T] = Tracked(start=5)
    m5, m6 = await fetch(c, 5, 6)
    deliver(m5, channels=2, taken=1)
    deliver(m6, channels=2)
    c._unacked_messages.add(m5)
    assert not final_ack(c, m5, channels=2)
    assert final_ack(c, m6, channels=2)
    assert c.refused_acks == 1
    assert m5 not in c._unacked_messages  # no rebalance waits for it
    assert c._new_offset(T) == 5


async def test_a_record_from_an_earlier_generation_is_not_processed() -> None:
    c = consumer(generation=2)
    c._tracked[T] = Tracked(start=0)
    await fetch(c, 0)
    old = msg(0, generation=1)
    deliver(old)
    assert not final_ack(c, old)
    assert c._new_offset(T) == 0


# --- seeks ----------------------------------------------------------------------------------


async def test_perform_seek_pins_the_start_and_seeks_partitions_never_committed() -> None:
    a, b, d = TP("t", 0), TP("t", 1), TP("t", 2)
    c = consumer()
    c._thread.committed = {a: 7, b: None, d: 0}
    c._thread.earliest = {b: 3}
    await c.perform_seek()
    assert set(c._thread.seeks) == {(a, 7), (b, 3), (d, 0)}
    assert {tp: t.start for tp, t in c._tracked.items()} == {a: 7, b: 3, d: 0}
    assert c._read_offset[a] == 7 and c._committed_offset[a] == 7


async def test_perform_seek_leaves_changelogs_to_the_tables_recovery() -> None:
    log = TP("t-app-pos-changelog", 0)
    c = consumer()
    c._thread.committed = {log: None}
    await c.perform_seek()
    assert c._thread.seeks == []
    assert log not in c._tracked


async def test_latest_reset_leaves_partitions_never_committed_to_faust() -> None:
    b = TP("t", 1)
    c = consumer(reset="latest")
    c._thread.committed = {b: None}
    await c.perform_seek()
    assert c._thread.seeks == []
    assert c._tracked[b].start is None


async def test_a_fetch_across_a_seek_is_not_delivered_and_sought_back() -> None:
    c = consumer()
    c._tracked[T] = Tracked(start=4)

    async def rebalance() -> None:
        c._thread.committed = {T: 4}
        await c.perform_seek()

    c._thread.during_fetch = rebalance
    c._thread.batches.append(records(9, 10))  # fetched from where the fetcher was
    assert await c._getmany({T}, 1.0) == {}
    assert c._thread.seeks[-1] == (T, 4)
    assert c._tracked[T].start == 4 and c._tracked[T].next is None
    assert c._new_offset(T) is None


async def test_a_fetch_across_an_assignment_waits_for_perform_seek() -> None:
    c = consumer()
    c._seek_pending = True  # assigned: the recovery's perform_seek positions the partitions
    c._epoch = 1
    c._thread.batches.append(records(9, 10))
    c._thread.during_fetch = None

    async def bump() -> None:
        c._epoch += 1

    c._thread.during_fetch = bump
    assert await c._getmany({T}, 1.0) == {}
    assert c._thread.seeks == []


async def test_a_fetch_across_a_seek_without_a_known_start_goes_back_to_its_first_record() -> None:
    c = consumer()

    async def bump() -> None:
        c._epoch += 1

    c._thread.during_fetch = bump
    c._thread.batches.append(records(9, 10))
    assert await c._getmany({T}, 1.0) == {}
    assert c._thread.seeks == [(T, 9)]


async def test_revocation_forgets_and_assignment_restarts() -> None:
    c = consumer()
    c._tracked[T] = Tracked(start=0)
    await fetch(c, 0, 1)
    c._tracked = {T: c._tracked[T]}

    async def nothing(*a: Any, **k: Any) -> None: ...

    # Faust's own handlers, stubbed: only the tracking is under test
    FaustConsumer_on_revoked = FaustConsumer.on_partitions_revoked
    try:
        FaustConsumer.on_partitions_revoked = nothing  # type: ignore[method-assign]
        await ContiguousCommitConsumer.on_partitions_revoked(c, {T})
    finally:
        FaustConsumer.on_partitions_revoked = FaustConsumer_on_revoked  # type: ignore[method-assign]
    assert T not in c._tracked


def test_a_fetch_from_before_the_seek_cannot_move_the_read_offset() -> None:
    # Faust's fetch loop sets the read offset after each record it delivers and drops any
    # record at or below it: the rest of a batch fetched before the seek, delivered after
    # it, would make it drop the records read again (among them those the rebalance
    # cleared from the agents' queues, never processed)
    c = consumer()
    c._tracked[T] = Tracked(start=4)
    c._read_offset = ReadOffsets(c._tracked)
    dict.__setitem__(c._read_offset, T, 4)
    c._read_offset[T] = 9  # the old batch's record 9
    assert c._read_offset[T] == 4
    c._tracked[T].on_fetched([4, 5, 6])
    c._read_offset[T] = 5  # read again since the seek
    assert c._read_offset[T] == 5
    other = TP("t-app-pos-changelog", 0)  # not tracked: Faust's behaviour
    c._read_offset[other] = 7
    assert c._read_offset[other] == 7


async def test_acks_inlined_by_the_cython_stream_iterator_count() -> None:
    # faust._cython.streams.StreamIterator.after appends to _acked / _acked_index itself
    c = consumer()
    c._tracked[T] = Tracked(start=0)
    await fetch(c, 0, 1, 2)
    c._acked[T].extend([0, 2])
    c._acked_index[T].update([0, 2])
    assert c._new_offset(T) == 1
    assert not c._acked[T] and T not in c._acked_index
    c._acked[T].append(1)
    assert c._new_offset(T) == 3
    gone = TP("t", 2)
    c._acked[gone].append(5)  # a partition no longer tracked: dropped
    assert list(c._filter_tps_with_pending_acks()) == [T]
    assert not c._acked[gone]
