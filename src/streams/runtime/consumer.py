"""A Faust consumer whose wait for in-flight events at a rebalance is bounded.

At a rebalance (and at shutdown) Faust's ``Consumer.wait_empty`` waits until every message a
stream has taken is acked by every channel it was delivered to, with no time limit. A
message delivered to two agents (a topic two agents consume, here ``<app>-po-events`` and
``amazon.po-acknowledgements``: their flow's agent and ``sales-orders-feed``) can be taken
by one and skipped by the other: a stream skips, without acking, an event fetched in an
earlier consumer generation or taken while flow control is suspended. Its reference count
then never drops to zero, and ``wait_empty`` waits for it forever: the worker stays in the
rebalance, consumes nothing and never rejoins (``wait_empty: Waiting for tasks [(1,
<ConsumerMessage ...>)]`` every ~10 s). A broker restart that expires the group membership
reproduces it (``tests/reliability/test_broker_restart.py``); so does an agent that holds its
event in an endless retry (the acknowledgement sender while SP-API refuses).

:class:`BoundedWaitConsumer` waits as Faust does, for at most ``wait_empty_s`` seconds, then
stops waiting for the stragglers. Nothing is lost: a message that was not acked leaves a gap
in its partition's acked offsets, so no commit moves past it and the partition's next owner
(this worker again, or another) reads it again; every step is idempotent (docs/reliability.md).

:class:`ContiguousCommitConsumer` (bug 8 of docs/reliability.md) commits a partition only up to
its first record not yet processed. Faust 0.15.3 commits to the end of the first run of acked
offsets and sees a gap at its head only if it is more than one record long and the partition
was committed before: a record dropped around a rebalance (its delivery to the channels
cancelled when flow stops, a channel queue cleared, a batch cut short by a generation change)
at the committed offset, or anywhere in a partition never committed, was committed past and
lost. And a stream that takes an event while flow is suspended, or one fetched in an earlier
generation, skips it *and acks it*: the record counted as processed. Here:

- the records of a partition fetched since its last seek are tracked in order; the commit is
  the first fetched record not acked, or one past the last record fetched. Offsets between
  fetched records were never returned by the broker (compaction, retention, transaction
  markers): a legitimate jump. A record fetched but never delivered or never acked holds the
  commit until the next seek, which reads it again;
- an ack counts only if every stream the record was delivered to took it for processing, in
  the generation it was fetched in; a skip is not a processing (Faust's Cython stream
  iterator inlines the ack into ``_acked``; it skips without acking: those are taken in);
- every seek (``perform_seek`` after each rebalance) restarts the tracking at the committed
  offset, and a partition never committed (or committed at 0) is sought to its earliest
  offset explicitly (aiokafka's ``seek_to_committed`` leaves it where the fetcher was);
- a fetch that was in flight across a seek is not delivered: its partitions are sought back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, cast

import faust
from faust.sensors import Sensor
from faust.transport.consumer import CONSUMER_WAIT_EMPTY
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP, EventT, Message, StreamT
from faust.types.tuples import ConsumerMessage, ack_lock
from mode import Service
from mode.utils.futures import notify

from streams.runtime.commit import ReadOffsets, Tracked
from streams.runtime.conductor import SettledConductor
from streams.runtime.offsets import seek_all_to_committed

log = logging.getLogger(__name__)


class OneRequestSeekThread(AIOKafkaConsumerThread):
    """Faust's consumer thread, seeking to the committed offsets with one OffsetFetch for
    every partition instead of one each (runtime/offsets.py)."""

    async def seek_to_committed(self) -> Mapping[TP, int]:
        return cast(
            Mapping[TP, int],
            await self.call_thread(seek_all_to_committed, self._ensure_consumer()),
        )


class BoundedWaitConsumer(AIOKafkaConsumer):
    wait_empty_s: float = 60.0

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return OneRequestSeekThread(self, loop=self.loop, beacon=self.beacon)

    @Service.transitions_to(CONSUMER_WAIT_EMPTY)
    async def wait_empty(self) -> None:
        """Faust's ``wait_empty``, but at most ``wait_empty_s`` seconds."""
        deadline = time.monotonic() + self.wait_empty_s
        while not self.should_stop and self._unacked_messages:
            if time.monotonic() >= deadline:
                stuck = sorted(
                    (m.tp.topic, m.tp.partition, m.offset, m.refcount)
                    for m in list(self._unacked_messages)
                )
                log.warning(
                    "rebalance: %d event(s) still not acked after %.0fs, not waiting for them "
                    "(not committed: read again by the partition's next owner): %s",
                    len(stuck), self.wait_empty_s, stuck[:10],
                )  # fmt: skip
                self._unacked_messages.clear()
                break
            await self.commit()
            if not self._unacked_messages:
                break
            await self._wait_for_ack(timeout=1)
            self._clean_unacked_messages()
        await self.commit_and_end_transactions()


class TrackedMessage(ConsumerMessage):
    """A fetched record that counts the channels it was delivered to and the streams that
    took it for processing (not merely skipped it)."""

    __slots__ = ("_rc", "delivered", "taken")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._rc = 0
        self.delivered = 0
        self.taken = 0
        super().__init__(*args, **kwargs)

    # the conductor adds the number of channels to ``refcount`` once (the Cython one
    # directly, not through ``incref``): every increase is a delivery
    @property  # type: ignore[override]
    def refcount(self) -> int:
        return self._rc

    @refcount.setter
    def refcount(self, value: int) -> None:
        if value > self._rc:
            self.delivered += value - self._rc
        self._rc = value


class TakenSensor(Sensor):
    """Counts the streams that take an event for processing: ``Stream.__aiter__`` calls
    ``on_stream_event_in`` for those, not for an event it skips (and acks) because flow is
    suspended or the event is from an earlier generation."""

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: StreamT, event: EventT
    ) -> dict[Any, Any] | None:
        m = event.message
        if isinstance(m, TrackedMessage):
            with ack_lock:
                m.taken += 1
        return None


class ContiguousCommitConsumer(BoundedWaitConsumer):
    """Commits a partition only up to its first record not processed (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tracked: dict[TP, Tracked] = {}
        self._read_offset = ReadOffsets(self._tracked)
        self._epoch = 0  # bumped by every seek and assignment
        self._seek_pending = False  # assigned, ``perform_seek`` not run yet
        self.refused_acks = 0
        self.app.sensors.add(TakenSensor())

    def _to_message(self, tp: TP, record: Any) -> ConsumerMessage:
        timestamp: int | None = record.timestamp
        return TrackedMessage(
            record.topic,
            record.partition,
            record.offset,
            timestamp / 1000.0 if timestamp is not None else None,
            record.timestamp_type,
            record.headers,
            record.key,
            record.value,
            record.checksum,
            record.serialized_key_size,
            record.serialized_value_size,
            tp,
            generation_id=self.app.consumer_generation_id,
        )

    # --- what was fetched --------------------------------------------------------------

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:
        epoch = self._epoch
        records = await super()._getmany(active_partitions, timeout)
        if not records:
            return records
        if epoch != self._epoch:
            # a seek or an assignment ran while this fetch was in flight: its
            # records may be from before it. Not delivered; unless a ``perform_seek`` is due
            # (after an assignment), the partitions go back to where their tracking starts.
            if not self._seek_pending:
                assigned = self.assignment()
                for tp, recs in records.items():
                    if tp in assigned and recs:
                        await self._seek_back(tp, min(r.offset for r in recs))
            log.info(
                "rebalance: a fetch crossed a seek, not delivered (%d partition(s))", len(records)
            )
            return {}
        acking = self.app.topics.acks_enabled_for
        for tp, recs in records.items():
            if recs and acking(tp.topic):
                t = self._tracked.get(tp)
                if t is None:
                    t = self._tracked[tp] = Tracked(start=None)
                t.on_fetched([r.offset for r in recs])
        return records

    async def _seek_back(self, tp: TP, first_dropped: int) -> None:
        t = self._tracked.get(tp)
        start = t.start if t is not None and t.start is not None else first_dropped
        try:
            await self._seek(tp, start)
        except Exception as exc:  # e.g. no longer assigned: not ours to read any more
            log.warning("rebalance: seeking %s back to %d failed: %r", tp, start, exc)
            return
        self._epoch += 1
        self._tracked[tp] = Tracked(start=start)
        self._set_read_offset(tp, start if start else None)

    def _set_read_offset(self, tp: TP, offset: int | None) -> None:
        """Where a seek puts the read offset (past :class:`ReadOffsets`' filter)."""
        dict.__setitem__(self._read_offset, tp, offset)  # type: ignore[index]

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Not used: offsets between fetched records are known not to exist."""

    # --- seeks and rebalances ----------------------------------------------------------

    async def perform_seek(self) -> None:
        self._epoch += 1
        self._seek_pending = False
        committed = dict(await self.seek_to_committed())
        # aiokafka seeks only to a committed offset > 0: a partition never committed, or
        # committed at 0, stays where the fetcher was - possibly past records never processed
        # (stream partitions only: changelogs are positioned by the tables' recovery)
        acking = self.app.topics.acks_enabled_for
        unset = [tp for tp, off in committed.items() if (not off or off < 0) and acking(tp.topic)]
        if unset and self.app.conf.consumer_auto_offset_reset == "earliest":
            earliest = await self.earliest_offsets(*unset)
            for tp in unset:
                off = committed.get(tp)
                start = off if off == 0 else earliest.get(tp)
                if start is not None:
                    await self._seek(tp, start)
                    committed[tp] = start
        self._epoch += 1
        self._read_offset.update(
            {tp: off if off is not None and off >= 0 else None for tp, off in committed.items()}
        )
        self._committed_offset.update(
            {tp: off if off else None for tp, off in committed.items() if off is not None}
        )
        for tp, off in committed.items():
            if acking(tp.topic):
                self._tracked[tp] = Tracked(start=off if off is not None and off >= 0 else None)

    async def seek(self, partition: TP, offset: int) -> None:
        await super().seek(partition, offset)
        if self.app.topics.acks_enabled_for(partition.topic):
            self._epoch += 1
            self._tracked[partition] = Tracked(start=offset if offset >= 0 else None)
            self._set_read_offset(partition, offset if offset else None)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        # no epoch bump: a fetch in flight is not delivered once flow stopped (Faust), its
        # records stay fetched and not processed, and hold the commit where they are
        await super().on_partitions_revoked(revoked)  # waits for, and commits, what is in flight
        for tp in revoked:
            self._tracked.pop(tp, None)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        # a new assignment restarts every partition at its committed offset (aiokafka resets
        # the positions); ``perform_seek`` after the recovery pins the start
        self._epoch += 1
        self._seek_pending = True
        self._tracked.clear()
        acking = self.app.topics.acks_enabled_for
        self._tracked.update({tp: Tracked(start=None) for tp in assigned if acking(tp.topic)})
        await super().on_partitions_assigned(assigned, generation_id)

    # --- acks and the commit -----------------------------------------------------------

    def _refusal(self, message: Message) -> str | None:
        if message.generation_id != self.app.consumer_generation_id:
            return "fetched in an earlier generation"
        if isinstance(message, TrackedMessage) and message.taken < message.delivered:
            return "skipped by a stream"
        return None

    def ack(self, message: Message) -> bool:
        """The final ack of a record: counts only if it was processed (see the module)."""
        with ack_lock:
            if message.acked:
                return False
            message.acked = True
            if not self.app.topics.acks_enabled_for(message.topic):
                return False
            try:
                self._unacked_messages.discard(message)
                why = self._refusal(message)
                if why is not None:
                    self.refused_acks += 1
                    log.info(
                        "rebalance: %s[%d]@%d %s, not counted as processed (read again "
                        "after the seek)",
                        message.tp.topic, message.tp.partition, message.offset, why,
                    )  # fmt: skip
                    return False
                t = self._tracked.get(message.tp)
                if t is None or not t.on_ack(message.offset):
                    return False
                self._n_acked += 1
                return True
            finally:
                notify(self._waiting_for_ack)

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Any:
        for tp in [tp for tp in self._acked if tp not in self._tracked]:
            self._absorb_inlined_acks(tp)  # not ours (any more): forget them
        return (
            tp for tp in list(self._tracked) if topics is None or tp in topics or tp.topic in topics
        )

    def _absorb_inlined_acks(self, tp: TP) -> None:
        """Faust's Cython stream iterator (``StreamIterator.after``) inlines
        ``Consumer.ack``: its acks land in ``_acked`` without passing through :meth:`ack`.
        The stream took those events for processing (it skips without acking)."""
        with ack_lock:
            acked = self._acked.get(tp)
            if not acked:
                return
            t = self._tracked.get(tp)
            if t is not None:
                for offset in acked:
                    t.on_ack(offset)
            acked.clear()
            self._acked_index.pop(tp, None)

    held_warn_s: float = 30.0

    def _new_offset(self, tp: TP) -> int | None:
        self._absorb_inlined_acks(tp)
        t = self._tracked.get(tp)
        if t is None:
            return None
        point = t.commit_point()
        now = time.monotonic()
        if point != t.held[0] or not t.fetched:
            t.held = (point, now)
        elif now - t.held[1] >= self.held_warn_s and now - t.warned >= self.held_warn_s:
            t.warned = now
            log.warning(
                "rebalance: %s[%d] commit held at %s for %.0fs: record fetched, not processed "
                "(start %s, fetched %d from %s, acked %s, read offset %s, unacked in flight %s)",
                tp.topic, tp.partition, point, now - t.held[1], t.start, len(t.fetched),
                list(t.fetched)[:5], sorted(t.acked)[:5], self._read_offset.get(tp),
                sorted(m.offset for m in list(self._unacked_messages) if m.tp == tp)[:5],
            )  # fmt: skip
        return point

    def pending_heads(self) -> Mapping[TP, int | None]:
        """Per partition, the commit point (for diagnostics)."""
        return {tp: t.commit_point() for tp, t in self._tracked.items()}


class StreamsApp(faust.App):
    """``faust.App`` whose consumer is a :class:`ContiguousCommitConsumer`, subscribing
    through a :class:`~streams.runtime.conductor.SettledConductor`."""

    wait_empty_s: float = 60.0

    def _new_conductor(self) -> Any:
        return SettledConductor(app=self, beacon=None)

    def _new_transport(self) -> Any:
        t = super()._new_transport()
        consumer = type(
            "ContiguousCommitConsumer",
            (ContiguousCommitConsumer,),
            {"wait_empty_s": self.wait_empty_s},
        )
        t.Consumer = consumer  # type: ignore[misc]  # shadows the transport's ClassVar
        return t


def release_unacked(app: faust.App, events: list[EventT]) -> None:
    """Leave ``events`` unacked, and stop Faust waiting for them.

    Before a rebalance or shutdown completes, Faust waits until every message it handed to a
    stream is acked or garbage-collected; a stream keeps its last event alive, so waiting
    for events a flow abandoned would never end. Untracked but unacked, the offset is not
    committed past them: the next seek to the committed offset (after the rebalance, or at
    the next start) reads them again.
    """
    unacked = cast(BoundedWaitConsumer, app.consumer)._unacked_messages
    for ev in events:
        unacked.discard(ev.message)
