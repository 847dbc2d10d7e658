"""Ingest (docs/architecture.md) off Faust's per-event path.

    ct.messages ──────────┐  raw aiokafka consumer, group ``<app>-ingest``
    master.sku-mappings ──┴─> bundles on <app>-sku-events, one per SKU partition per batch

commercetools' Kafka destination writes every delivery with one fixed key, so all of
ct.messages sits in one partition and must be re-keyed by SKU. Faust pays ~90 µs of
consume/deliver machinery per event, twice (here and in the SKU agent); this stage reads
with ``getmany``, parses, and sends one *bundle* record per SKU partition per batch
(each item carries its SKU, and goes to the partition Kafka's partitioner gives that SKU,
so the SKU agent sees one event per bundle and per-SKU order is kept).

Stateless and at-least-once: offsets are committed only once every bundle, dead letter
and mapping-index write of the batch is delivered. After a failure the batch is read
again (seek back); the SKU state drops what it has already seen (message id, version).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, cast

import faust
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from streams.adapters.codecs import decode_record, dlq_record, dumps, reason_class
from streams.agents.rawstage import Batch, RawStage
from streams.config import Settings
from streams.domain import product_index
from streams.domain.ctmessages import (
    BadRecord,
    Ignored,
    NeedsFetch,
    StockObservation,
    observation_from_entry,
    parse_delivery,
)
from streams.domain.ctorders import NeedsOrder, OrderEffect, resolve
from streams.domain.mapping import SkuMapping
from streams.domain.ports import InventoryEntryReader, OrderReader
from streams.observability import metrics as M
from streams.runtime.kafka import partition_for
from streams.runtime.store import TableStore, read_partition

log = logging.getLogger(__name__)

FETCH_ATTEMPTS = 5
BUNDLE = "bundle"


def ingest_group(s: Settings) -> str:
    """The consumer group of this stage (its lag is reported under this name)."""
    return f"{s.app_id}-ingest"


def pydantic_reason(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


class Bundler:
    """Items grouped by the SKU partition they belong to, cut into bundles of at most
    ``max_items`` (a bundle must stay far below Kafka's 1 MB record limit)."""

    def __init__(self, partitions: int, max_items: int) -> None:
        self.partitions = partitions
        self.max_items = max_items
        self.by_partition: dict[int, list[dict[str, Any]]] = defaultdict(list)

    def add(self, sku: str, item: dict[str, Any]) -> None:
        # partition_for remembers the SKUs it was asked for: no cache of the batch's own
        self.by_partition[partition_for(sku.encode(), self.partitions)].append(item)

    def everywhere(self, item: dict[str, Any]) -> None:
        """``item`` to every SKU partition (a delete that names only its entry: the
        partition whose states hold the entry applies it)."""
        for p in range(self.partitions):
            self.by_partition[p].append(item)

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_partition.values())

    def bundles(self) -> list[tuple[int, bytes]]:
        out = []
        for p, items in self.by_partition.items():
            for i in range(0, len(items), self.max_items):
                out.append((p, dumps({"t": BUNDLE, "items": items[i : i + self.max_items]})))
        return out


class IngestService(RawStage):
    """The raw consumer of the two inventory input topics (see the module docstring)."""

    name = "ingest"
    with_producer = True

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        *,
        sku_topic: str,
        products: Any,  # the ``products`` GlobalTable: sku/asin/vpi index for POs
        reader: InventoryEntryReader | None,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        s = settings
        super().__init__(
            app,
            s,
            topics=(s.topic_ct_messages, s.topic_sku_mappings),
            group_id=ingest_group(s),
            batch_max=s.batch_max,
            within_s=s.batch_within_s,
            clock=clock,
            **kwargs,
        )
        self.sku_topic = sku_topic
        self.products = products
        self.reader = reader
        self.ct = s.topic_ct_messages
        self.maps = s.topic_sku_mappings
        self._dlq = {self.ct: s.dlq_topic(self.ct), self.maps: s.dlq_topic(self.maps)}
        self._out = {
            t: {
                o: M.RECORDS.labels(t, o)
                for o in ("applied", "ignored", "fetched", "dlq", "order", "by_entry")
            }
            for t in (self.ct, self.maps)
        }
        self._dlq_reasons: list[tuple[str, str]] = []  # of the batch in flight
        # mapping records of the batch in flight by partition: (sku:<sku>, json or None)
        self._map_records: dict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)
        self._products = TableStore(app, products)

    def after_batch(self, batch: Batch, n: int) -> None:
        if any(tp.topic == self.ct for tp in batch):  # "ingest" = commercetools' feed
            M.LAST_SUCCESS.labels("ingest").set(self.clock())

    # --- one batch ----------------------------------------------------------------------
    async def process(self, batch: Batch) -> int:
        """Parse, re-key and send one batch; returns the number of records handled."""
        assert self.producer is not None
        bundler = Bundler(self.settings.partitions, self.settings.ingest_bundle_max)
        futures: list[asyncio.Future[Any]] = []
        counts: dict[tuple[str, str], int] = defaultdict(int)
        self._dlq_reasons = []
        self._map_records.clear()
        n = 0
        # master data first: a mapping and stock changes read together apply in that order
        for tp, records in sorted(batch.items(), key=lambda kv: kv[0].topic != self.maps):
            for rec in records:
                n += 1
                if tp.topic == self.maps:
                    outcome = await self._mapping(rec, bundler, futures)
                else:
                    outcome = await self._delivery(rec, bundler, futures)
                counts[(tp.topic, outcome)] += 1
        futures.extend(await self._index())
        for partition, value in bundler.bundles():
            futures.append(await self.producer.send(self.sku_topic, value, partition=partition))
        if futures:
            await asyncio.gather(*futures)
        # counted once delivered: a retried batch is not counted twice
        for (topic, outcome), k in counts.items():
            if outcome != "forwarded":  # counted by the SKU agent as applied/duplicate/stale
                self._out[topic][outcome].inc(k)
        for topic, reason in self._dlq_reasons:
            M.DLQ.labels(topic, reason).inc()
        return n

    async def _delivery(
        self, rec: ConsumerRecord, bundler: Bundler, futures: list[asyncio.Future[Any]]
    ) -> str:
        fetched = False
        try:
            try:
                record = decode_record(rec.value, self.ct)
            except ValueError as exc:
                raise BadRecord(str(exc)) from None
            parsed = parse_delivery(record)
            if isinstance(parsed, NeedsFetch):
                got = await self._fetch(parsed)
                if got is None:
                    return "ignored"
                parsed, fetched = got, True
            elif isinstance(parsed, NeedsOrder):
                order = await self._read_order(parsed)
                if order is None:
                    return "ignored"
                parsed, fetched = resolve(parsed, order), True
            if isinstance(parsed, OrderEffect):
                return self._order(parsed, rec, bundler)
        except BadRecord as exc:
            futures.append(await self._dead_letter(rec, str(exc)))
            return "dlq"
        except Exception as exc:  # a bug must neither stop the partition nor lose the record
            log.exception(
                "ingest: unexpected error on %s@%d", rec.topic, rec.offset,
                extra={"topic": rec.topic, "partition": rec.partition, "offset": rec.offset},
            )  # fmt: skip
            reason = f"internal error: {type(exc).__name__}: {str(exc)[:200]}"
            futures.append(await self._dead_letter(rec, reason))
            return "dlq"
        if isinstance(parsed, Ignored):
            return "ignored"
        if fetched:
            self._out[self.ct]["fetched"].inc()
        wire = parsed.to_wire()
        wire["ts"] = rec.timestamp / 1000.0 if rec.timestamp is not None else None
        if isinstance(parsed, StockObservation) and not parsed.sku:
            # the entry's SKU is known only where its state is (domain/entry_index.py)
            wire["src"] = "entry"  # counted here, not by the partition that applies it
            bundler.everywhere(wire)
            return "by_entry"
        bundler.add(parsed.sku, wire)
        return "forwarded"

    def _order(self, effect: OrderEffect, rec: ConsumerRecord, bundler: Bundler) -> str:
        """A storefront order's holds and re-reads, re-keyed by SKU like stock events."""
        ts = rec.timestamp / 1000.0 if rec.timestamp is not None else None
        for h in effect.holds:
            item = {"t": "hold", "sku": h.sku, "ch": h.channel, "q": h.quantity, "k": h.key}
            bundler.add(h.sku, {**item, "ts": ts})
        for t in effect.touches:
            bundler.add(t.sku, {"t": "touch", "sku": t.sku, "ch": t.channel, "ts": ts})
        return "order" if effect.holds or effect.touches else "ignored"

    async def _fetch(self, n: NeedsFetch) -> StockObservation | None:
        if self.reader is None:
            raise BadRecord(
                f"notification for inventory-entry {n.entry_id} has no payload and no "
                "commercetools client is configured to fetch it"
            )
        entry = await self._read(
            f"inventory-entry {n.entry_id}", self.reader.get_inventory_entry, n.entry_id
        )
        if entry is None:
            # deleted since: its InventoryEntryDeleted / ResourceDeleted tells the rest
            M.FETCHES.labels("gone").inc()
            return None
        M.FETCHES.labels("ok").inc()
        return observation_from_entry(entry, n.msg_id, n.seq)

    async def _read_order(self, n: NeedsOrder) -> dict[str, Any] | None:
        reader = cast(OrderReader | None, self.reader)
        if reader is None or not hasattr(reader, "get_order"):
            raise BadRecord(
                f"delivery for order {n.order_id} needs the order and no commercetools "
                "client is configured to read it"
            )
        order = await self._read(f"order {n.order_id}", reader.get_order, n.order_id)
        # an order gone since: its lines' stock is caught by the re-read of its SKUs or the
        # changed-since sweep
        M.FETCHES.labels("gone" if order is None else "ok").inc()
        return order

    async def _read(
        self, what: str, call: Callable[[str], Awaitable[dict[str, Any] | None]], ident: str
    ) -> dict[str, Any] | None:
        """``call(ident)`` with retries; a read that keeps failing dead-letters the record
        (the DLQ keeps it for replay; the sweep and the reconciliation repair the SKU)."""
        for attempt in range(FETCH_ATTEMPTS):
            try:
                return await call(ident)
            except Exception as exc:
                M.FETCHES.labels("error").inc()
                log.warning(
                    "reading %s failed (%s), attempt %d", what, type(exc).__name__, attempt + 1
                )
                if attempt + 1 == FETCH_ATTEMPTS:
                    raise BadRecord(f"could not fetch {what}: {type(exc).__name__}") from None
                await asyncio.sleep(0.2 * 2**attempt)
        return None  # pragma: no cover - the loop returns or raises

    async def _mapping(
        self, rec: ConsumerRecord, bundler: Bundler, futures: list[asyncio.Future[Any]]
    ) -> str:
        key: bytes | None = rec.key
        try:
            if not key:
                raise BadRecord("record has no key (the key must be the SKU)")
            sku = key.decode("utf-8")
            mapping: dict[str, Any] | None = None
            if rec.value is not None:  # None = tombstone: the mapping is deleted
                try:
                    m = SkuMapping.model_validate(decode_record(rec.value, self.maps))
                except ValidationError as exc:
                    raise BadRecord(f"invalid mapping: {pydantic_reason(exc)}") from None
                except ValueError as exc:
                    raise BadRecord(str(exc)) from None
                if m.sku != sku:
                    raise BadRecord(f"key {sku!r} differs from value sku {m.sku!r}")
                mapping = m.model_dump(mode="json")
        except (BadRecord, UnicodeDecodeError) as exc:
            futures.append(await self._dead_letter(rec, str(exc)))
            return "dlq"
        except Exception as exc:  # never lose a record to a bug: dead-letter it
            log.exception("mappings: unexpected error")
            reason = f"internal error: {type(exc).__name__}: {str(exc)[:200]}"
            futures.append(await self._dead_letter(rec, reason))
            return "dlq"
        value = dumps(mapping) if mapping is not None else None
        self._map_records[rec.partition].append((product_index.SKU + key, value))
        bundler.add(sku, {"t": "map", "sku": sku, "m": mapping})
        return "applied"

    async def _index(self) -> list[asyncio.Future[Any]]:
        """The batch's mappings into ``products``: per partition (the mapping's own, as
        Faust would place them) one WriteBatch with the index derived, and one changelog
        record per mapping (the last of its SKU), even an unchanged one: a redelivery after
        a crash between the store write and the send must send it again."""
        futs: list[asyncio.Future[Any]] = []
        for partition, records in self._map_records.items():
            writes = product_index.derive(records, read_partition(self.products, partition).get)
            last = dict(records)  # per SKU the last record, in first-seen order
            futs.extend(
                await self._products.put_many(
                    partition, writes, changelog=list(last.items()), producer=self.producer
                )
            )
        self._map_records.clear()
        return futs

    async def _dead_letter(self, rec: ConsumerRecord, error: str) -> asyncio.Future[Any]:
        assert self.producer is not None
        value = dlq_record(
            rec.value if isinstance(rec.value, bytes) else None,
            error,
            topic=rec.topic,
            partition=rec.partition,
            offset=rec.offset,
            timestamp=rec.timestamp / 1000.0 if rec.timestamp is not None else None,
            failed_at=self.clock(),
        )
        fut = await self.producer.send(
            self._dlq[rec.topic],
            dumps(value),
            key=rec.key,
            headers=[("dlq.error", error[:500].encode()), ("dlq.topic", rec.topic.encode())],
        )
        self._dlq_reasons.append((rec.topic, reason_class(error)))
        log.info(
            "dead-lettered %s[%d]@%d: %s", rec.topic, rec.partition, rec.offset, error,
            extra={"topic": rec.topic, "partition": rec.partition, "offset": rec.offset},
        )  # fmt: skip
        return fut
