"""Inventory flow (DESIGN.md flows 1-3): ct.messages -> per-SKU state -> debounced deltas.

    ct.messages ──ingest──┐
                          ├─> <app>-sku-events (key: SKU) ──sku agent──> table ``skus``
    master.sku-mappings ──┘                                    │
                                     debounce timer <──dirty───┘
                                           └──> amazon.inventory-updates
                                           └──> "published" marker back into sku-events

Every table write happens in the SKU agent, in the context of an event of the partition that
owns the SKU, so the changelog always matches the partition. The timer never writes state:
it publishes and sends a marker that the SKU agent records.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import faust
from faust.types import TP, EventT
from pydantic import ValidationError

from streams.adapters.codecs import decode_record, dlq_record, dumps, loads, reason_class, utc_iso
from streams.agents.faustutil import (
    DirectWriter,
    PartitionEvent,
    bind_event,
    partition_for,
)
from streams.config import Settings
from streams.domain.ctmessages import (
    BadRecord,
    Ignored,
    NeedsFetch,
    StockObservation,
    observation_from_entry,
    parse_delivery,
)
from streams.domain.debounce import Debouncer
from streams.domain.inventory import SkuState, inventory_update
from streams.domain.mapping import SkuMapping
from streams.domain.ports import InventoryEntryReader
from streams.domain.purchase_orders import PoLine
from streams.domain.warehouse_policy import ChannelPolicy
from streams.observability import metrics as M

log = logging.getLogger(__name__)

FETCH_ATTEMPTS = 5


class InventoryFlow:
    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        reader: InventoryEntryReader | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        s = self.settings = settings
        self.app = app
        self.reader = reader
        self.clock = clock
        self.debouncer = Debouncer(s.debounce_window_s, s.debounce_max_wait_s)
        self.direct = DirectWriter(app)
        ct = s.topic_ct_messages
        self._outcome = {
            o: M.RECORDS.labels(ct, o)
            for o in ("applied", "duplicate", "stale", "ignored", "fetched", "dlq")
        }
        self.snapshot_queue: list[bytes] = []
        self.needs_scan = True
        self.next_snapshot = clock() + s.snapshot_interval_s

        self.ct_topic = app.topic(s.topic_ct_messages, value_serializer="raw", key_serializer="raw")
        self.map_topic = app.topic(
            s.topic_sku_mappings, value_serializer="raw", key_serializer="raw"
        )
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
        self.dlq_ct = app.topic(
            s.dlq_topic(s.topic_ct_messages), value_serializer="raw", key_serializer="raw"
        )
        self.dlq_map = app.topic(
            s.dlq_topic(s.topic_sku_mappings), value_serializer="raw", key_serializer="raw"
        )
        self.skus = app.Table(
            "skus",
            partitions=s.partitions,
            key_type=bytes,  # bytes in, bytes out: the "raw" codec, no JSON round trip
            value_type=bytes,
            options={"driver": "rocksdict"},
        )
        # master data by Amazon identifier, for purchase orders keyed by PO number
        self.products = app.GlobalTable(
            "products",
            partitions=s.partitions,
            key_type=bytes,
            value_type=bytes,
            options={"driver": "rocksdict"},
        )
        self.commands_topic = app.topic(
            s.topic_inventory_commands, value_serializer="raw", key_serializer="raw"
        )
        self.decisions_topic: faust.TopicT | None = None  # set by the purchase-order flow
        # the warehouse policy now (set by the channel-policy flow); None = configuration only
        self.channel_policy: Callable[[], ChannelPolicy | None] = lambda: None
        self.sku_topic_name = self.sku_topic.get_topic_name()
        self.out_topic_name = self.out_topic.get_topic_name()
        self.partition_of: dict[str, int] = {}  # dirty SKU -> its partition (for the timer)
        app.agent(self.ct_topic, name="ingest")(self.ingest)
        app.agent(self.map_topic, name="mappings")(self.mappings)
        app.agent(self.sku_topic, name="skus")(self.sku_agent)
        app.timer(s.debounce_tick_s, name="debounce")(self.tick)
        app.on_rebalance_complete.connect(self._on_rebalance_complete)  # type: ignore[arg-type]

    async def _on_rebalance_complete(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        self.needs_scan = True

    # --- ingest: ct.messages -> sku-events ----------------------------------------------
    async def ingest(self, stream: Any) -> None:  # faust.Stream (StreamT lacks noack_take)
        # noack_take: events are acked only once what they produced is delivered, so a
        # crash or a shutdown mid-batch never commits a record that was not re-keyed
        s = self.settings
        async for batch in stream.noack_take(s.batch_max, s.batch_within_s):
            started = time.perf_counter()
            events = cast(list[EventT], batch)
            sends = [await self._ingest_one(event) for event in events]
            await asyncio.gather(*(f for f in sends if f is not None))
            for event in events:
                await stream.ack(event)
            M.BATCH_SECONDS.labels("ingest").observe(time.perf_counter() - started)
            M.BATCH_EVENTS.labels("ingest").observe(len(events))
            M.LAST_SUCCESS.labels("ingest").set(self.clock())
            batch = events = []  # Faust waits for handed-out events to be released

    async def _ingest_one(self, event: EventT) -> Any:
        """Re-key one delivery by SKU; returns the send's future (None: nothing to send)."""
        msg = event.message
        raw: bytes | None = event.value
        try:
            try:
                record = decode_record(raw, "ct.messages")
            except ValueError as exc:
                raise BadRecord(str(exc)) from None
            parsed = parse_delivery(record)
            if isinstance(parsed, NeedsFetch):
                fetched = await self._fetch(parsed)
                if fetched is None:
                    self._outcome["ignored"].inc()
                    return None
                parsed = fetched
                self._outcome["fetched"].inc()
        except BadRecord as exc:
            await self._dead_letter(self.dlq_ct, self.settings.topic_ct_messages, event, str(exc))
            return None
        except Exception as exc:  # a bug must neither stop the partition nor lose the record
            log.exception("ingest: unexpected error on %s@%d", msg.topic, msg.offset)
            reason = f"internal error: {type(exc).__name__}: {str(exc)[:200]}"
            await self._dead_letter(self.dlq_ct, self.settings.topic_ct_messages, event, reason)
            return None
        if isinstance(parsed, Ignored):
            self._outcome["ignored"].inc()
            return None
        wire = parsed.to_wire()
        wire["ts"] = msg.timestamp
        return await self.direct.send(self.sku_topic_name, parsed.sku.encode(), dumps(wire))

    async def _fetch(self, n: NeedsFetch) -> StockObservation | None:
        if self.reader is None:
            raise BadRecord(
                f"notification for inventory-entry {n.entry_id} has no payload and no "
                "commercetools client is configured to fetch it"
            )
        entry: dict[str, Any] | None = None
        for attempt in range(FETCH_ATTEMPTS):
            try:
                entry = await self.reader.get_inventory_entry(n.entry_id)
                break
            except Exception as exc:
                M.FETCHES.labels("error").inc()
                log.warning(
                    "fetching inventory entry %s failed (%s), attempt %d",
                    n.entry_id, type(exc).__name__, attempt + 1,
                )  # fmt: skip
                if attempt + 1 == FETCH_ATTEMPTS:
                    # the DLQ keeps it for replay; the periodic reconciliation repairs the SKU
                    raise BadRecord(
                        f"could not fetch inventory-entry {n.entry_id}: {type(exc).__name__}"
                    ) from None
                await asyncio.sleep(0.2 * 2**attempt)
        if entry is None:
            # deleted since: its InventoryEntryDeleted / ResourceDeleted tells the rest
            M.FETCHES.labels("gone").inc()
            return None
        M.FETCHES.labels("ok").inc()
        return observation_from_entry(entry, n.msg_id, n.seq)

    async def _dead_letter(self, dlq: faust.TopicT, topic: str, event: EventT, error: str) -> None:
        msg = event.message
        value = dlq_record(
            event.value if isinstance(event.value, bytes) else None,
            error,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            timestamp=msg.timestamp,
            failed_at=self.clock(),
        )
        await dlq.send(
            key=msg.key,
            value=dumps(value),
            headers={"dlq.error": error[:500].encode(), "dlq.topic": msg.topic.encode()},
        )
        M.RECORDS.labels(topic, "dlq").inc()
        M.DLQ.labels(topic, reason_class(error)).inc()
        log.info("dead-lettered %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, error)

    # --- mappings: master.sku-mappings -> sku-events --------------------------------------
    async def mappings(self, stream: faust.StreamT) -> None:
        topic = self.settings.topic_sku_mappings
        async for event in stream.events():
            key: bytes | None = event.key
            raw: bytes | None = event.value
            try:
                if not key:
                    raise BadRecord("record has no key (the key must be the SKU)")
                sku = key.decode("utf-8")
                mapping: dict[str, Any] | None = None
                if raw is not None:  # None = tombstone: the mapping is deleted
                    try:
                        obj = decode_record(raw, topic)
                        m = SkuMapping.model_validate(obj)
                    except ValidationError as exc:
                        raise BadRecord(f"invalid mapping: {_pydantic_reason(exc)}") from None
                    except ValueError as exc:
                        raise BadRecord(str(exc)) from None
                    if m.sku != sku:
                        raise BadRecord(f"key {sku!r} differs from value sku {m.sku!r}")
                    mapping = m.model_dump(mode="json")
                value = dumps({"t": "map", "m": mapping})
            except (BadRecord, UnicodeDecodeError) as exc:
                await self._dead_letter(self.dlq_map, topic, event, str(exc))
                continue
            except Exception as exc:  # never lose a record to a bug: dead-letter it
                log.exception("mappings: unexpected error")
                reason = f"internal error: {type(exc).__name__}: {str(exc)[:200]}"
                await self._dead_letter(self.dlq_map, topic, event, reason)
                continue
            self._index(key, mapping)
            await self.sku_topic.send(key=key, value=value)
            M.RECORDS.labels(topic, "applied").inc()

    def _index(self, sku: bytes, mapping: dict[str, Any] | None) -> None:
        """Keep ``products`` = sku -> mapping and asin/vendor id -> sku, dropping stale keys."""
        old_raw = self.products.get(b"sku:" + sku)
        old = loads(old_raw) if old_raw else {}
        new = mapping or {}
        for field, prefix in (("asin", b"asin:"), ("vendorProductIdentifier", b"vpi:")):
            if old.get(field) and old.get(field) != new.get(field):
                k = prefix + old[field].encode()
                if self.products.get(k) == sku:
                    del self.products[k]
            if new.get(field):
                self.products[prefix + new[field].encode()] = sku
        if mapping is None:
            if old_raw is not None:
                del self.products[b"sku:" + sku]
        else:
            self.products[b"sku:" + sku] = dumps(mapping)

    # --- the SKU agent: the only writer of ``skus`` -----------------------------------------
    async def sku_agent(self, stream: Any) -> None:  # faust.Stream
        s = self.settings
        async for batch in stream.noack_take(s.batch_max, s.batch_within_s):
            started = time.perf_counter()
            events = cast(list[EventT], batch)
            by_partition: dict[int, list[EventT]] = defaultdict(list)
            for ev in events:
                by_partition[ev.message.partition].append(ev)
            futures: list[Any] = []
            for partition_events in by_partition.values():
                writes, sends = self._apply_partition(partition_events)
                anchor = partition_events[-1]
                for key, value in writes:
                    futures.append(await self.direct.put(self.skus, key, value, anchor))
                for topic, key, value in sends:
                    futures.append(await self.direct.send(topic, key, value))
            await asyncio.gather(*futures)
            for ev in events:
                await stream.ack(ev)
            M.BATCH_SECONDS.labels("skus").observe(time.perf_counter() - started)
            M.BATCH_EVENTS.labels("skus").observe(len(events))
            M.PENDING.labels("deltas").set(len(self.debouncer))
            batch = events = []  # Faust waits for handed-out events to be released

    def _apply_partition(
        self, events: Sequence[EventT]
    ) -> tuple[list[tuple[bytes, bytes]], list[tuple[str, bytes, bytes]]]:
        """Apply one partition's events: one state write per SKU, and what to send."""
        sends: list[tuple[str, bytes, bytes]] = []
        writes: list[tuple[bytes, bytes]] = []
        by_sku: dict[bytes, list[dict[str, Any]]] = defaultdict(list)
        for ev in events:
            by_sku[cast(bytes, ev.key)].append(loads(cast(bytes, ev.value)))
        partition = events[-1].message.partition
        now = self.clock()
        with bind_event(events[-1]):
            for key, items in by_sku.items():
                raw = self.skus.data.get(key)
                state = SkuState.from_dict(loads(raw)) if raw else SkuState(key.decode())
                changed = False
                for item in items:
                    t = item["t"]
                    if t == "obs":
                        outcome = state.apply(StockObservation.from_wire(item))
                        self._outcome[outcome].inc()
                        if outcome == "applied":
                            changed = True
                            ts = item.get("ts") or now
                            state.changed_at = min(state.changed_at or ts, ts)
                            if state.mapping is None:
                                M.UNMAPPED.inc()
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
                if changed:
                    writes.append((key, dumps(state.to_dict())))
                    if self._unpublished(state):
                        self.debouncer.mark(state.sku, now)
                        self.partition_of[state.sku] = partition
                    else:
                        self.debouncer.discard(state.sku)
        return writes, sends

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
                self.channel_policy(),
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
            if self.decisions_topic is not None:
                value = dumps({"t": "decision", "d": result.decision.model_dump(mode="json")})
                name = self.decisions_topic.get_topic_name()
                out.append((name, line.purchaseOrderNumber.encode(), value))
        name = self.commands_topic.get_topic_name()
        out.extend((name, sku, dumps(c)) for c in commands)
        return out

    def _published_view(self, state: SkuState) -> int | None:
        if not state.publishable():
            return None
        s = self.settings
        return state.availability(
            s.default_amazon_channels, s.default_safety_buffer, self.channel_policy()
        )

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
        if self.needs_scan:
            self.needs_scan = False
            self._scan()
        budget = max(1, int(self.settings.delta_budget_per_s * self.settings.debounce_tick_s))
        due = self.debouncer.pop_due(now, budget, self._catchup_wait())
        sent = 0
        for sku in due:
            sent += await self._publish(sku.encode(), "delta", now)
        if now >= self.next_snapshot:
            self.next_snapshot = now + self.settings.snapshot_interval_s
            self.snapshot_queue = [k for k, _ in self.skus.data.items()]
        while self.snapshot_queue and sent < budget:
            sent += await self._publish(self.snapshot_queue.pop(), "snapshot", now)
        M.PENDING.labels("deltas").set(len(self.debouncer))
        M.OLDEST_PENDING.set(self.debouncer.oldest_age(now))
        if sent:
            M.LAST_SUCCESS.labels("inventory_publish").set(now)

    def _catchup_wait(self) -> float | None:
        """The longer wait while this worker replays a backlog (see Debouncer.pop_due)."""
        monitor = getattr(self.app, "lag_monitor", None)
        if monitor is None:
            return None
        behind = monitor.behind(self.settings.topic_ct_messages, self.sku_topic_name)
        if behind > self.settings.catchup_lag_records:
            return self.settings.catchup_max_wait_s
        return None

    def _scan(self) -> None:
        """After recovery or a rebalance: anything not yet told to Amazon becomes due."""
        now = self.clock()
        for key, raw in self.skus.data.items():
            state = SkuState.from_dict(loads(raw))
            if self._unpublished(state):
                self.debouncer.mark(key.decode(), now)

    def _owned(self, partition: int) -> bool:
        tp = TP(self.sku_topic_name, partition)
        return tp in self.app.consumer.assignment()

    async def _publish(self, key: bytes, kind: str, now: float) -> int:
        """Publish one SKU and record what Amazon was told, in the SKU's own partition.

        The timer writes the store directly (bound to the SKU's partition) between two
        awaits, so no agent batch interleaves with this read-modify-write.
        """
        sku = key.decode()
        partition = self.partition_of.pop(sku, None)
        if partition is None:
            partition = partition_for(key, self.settings.partitions)
        if not self._owned(partition):
            return 0  # moved to another worker in a rebalance: its owner publishes it
        raw = self.skus.data.get(key)
        if raw is None:
            return 0
        state = SkuState.from_dict(loads(raw))
        amount = self._published_view(state)
        if amount is None or (kind == "delta" and amount == state.last_published):
            return 0
        value = inventory_update(state, amount, "delta" if kind == "delta" else "snapshot",
                                 utc_iso(now))  # fmt: skip
        if kind == "delta" and state.changed_at is not None:
            M.DELTA_LATENCY.observe(max(0.0, now - state.changed_at))
        state.last_published, state.published_at, state.changed_at = amount, now, None
        event = PartitionEvent(self.sku_topic_name, partition)
        await self.direct.put(self.skus, key, dumps(state.to_dict()), event)
        await self.direct.send(self.out_topic_name, key, dumps(value))
        M.DELTAS.labels(kind).inc()
        return 1


def _pydantic_reason(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)
