"""Pull new and changed purchase orders from SP-API and publish each ``Order`` verbatim.

Runs on the consumer group's leader only. Its cursor and the revisions it has published live
in a compacted internal topic, so a restart (or another worker taking over) resumes without
publishing a PO again. Downstream intake deduplicates by revision as well.

Coverage (each window of at most 7 days, Amazon's limit per query):

* created in the window;
* changed in the window, without ``isPOChanged`` (which alone returns only POs whose items,
  ship window or acknowledgement date changed: a close or an acknowledgement by Amazon moves
  only the state), and with ``isPOChanged=true`` as well (Amazon does not say whether its
  default ``false`` filters);
* changed in the window with an item cancelled by Amazon (``poItemState=Cancelled``).

Before a Closed PO is published, ``getPurchaseOrdersStatus`` says what Amazon received of
it; that goes to the PO flow first (``<app>-po-events``, same key), so the close releases
only what was never shipped even when the ASN was sent outside this product
(``STREAMS_PO_CLOSE_STATUS_CHECK``).

After an outage the gap since the cursor is fetched in consecutive 7-day windows (back to
Amazon's 6 months), the cursor saved after each, so a long gap is never skipped and a crash
half-way resumes where it stopped.

State: one small record per key, so none comes near Kafka's 1 MB record limit however many
POs are remembered: ``cursor`` (the end of the last window done) and ``seen:<PO>`` (the
revision published and when). A PO not seen for 14 days is forgotten with a tombstone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from streams.adapters.codecs import dumps, loads
from streams.agents.clients import LazyClient, spapi_client
from streams.agents.cursor_store import replay, write_state
from streams.agents.faustutil import DirectWriter, raw_topic
from streams.config import Settings
from streams.domain import po_messages
from streams.observability import metrics as M

log = logging.getLogger(__name__)
STATE_KEY = b"cursor"
SEEN_PREFIX = b"seen:"
SEEN_DAYS = 14  # forget published revisions after this long (> Amazon's 7-day window)
# a minute inside Amazon's 7-day limit, so clock skew never makes a window too wide
WINDOW = timedelta(days=7) - timedelta(seconds=60)
BACKFILL_MAX = timedelta(days=180)  # Amazon: "available to pull data from the past 6 months"

Records = list[tuple[bytes, bytes | None]]  # state records to write (None = tombstone)


def revision_key(order: dict[str, Any]) -> str:
    d = order.get("orderDetails") or {}
    return "|".join(
        [
            str(d.get("purchaseOrderChangedDate") or d.get("purchaseOrderDate") or ""),
            str(order.get("purchaseOrderState") or ""),
            str(d.get("purchaseOrderStateChangedDate") or ""),
        ]
    )


def windows(
    start: datetime, end: datetime, width: timedelta = WINDOW
) -> Iterator[tuple[datetime, datetime]]:
    """``start..end`` in consecutive windows of at most ``width``."""
    while start < end:
        stop = min(end, start + width)
        yield start, stop
        start = stop


@dataclass
class PollState:
    """What the poller remembers: the cursor and, per PO, the revision it published."""

    cursor: datetime | None = None
    seen: dict[str, tuple[str, float]] = field(default_factory=dict)
    legacy: bool = False  # read from the one-record format: rewrite it in the new one

    def apply(self, key: bytes, value: bytes | None) -> None:
        """One record of the state topic, oldest first."""
        if key == STATE_KEY:
            if not value:
                return
            data = loads(value)
            self.cursor = datetime.fromisoformat(data["cursor"]) if data.get("cursor") else None
            old = data.get("seen")
            if isinstance(old, dict) and old:  # the earlier single-record format
                self.legacy = True
                for number, (rev, at) in old.items():
                    self.seen[number] = (str(rev), float(at))
        elif key.startswith(SEEN_PREFIX):
            number = key[len(SEEN_PREFIX) :].decode()
            if value is None:
                self.seen.pop(number, None)
            else:
                data = loads(value)
                self.seen[number] = (str(data["rev"]), float(data["at"]))

    def mark(self, number: str, rev: str, at: float) -> tuple[bytes, bytes]:
        self.seen[number] = (rev, at)
        return SEEN_PREFIX + number.encode(), dumps({"rev": rev, "at": at})

    def cursor_record(self) -> tuple[bytes, bytes]:
        return STATE_KEY, dumps({"cursor": self.cursor.isoformat() if self.cursor else None})

    def expire(self, horizon: float) -> Records:
        gone = [n for n, (_, at) in self.seen.items() if at < horizon]
        for n in gone:
            del self.seen[n]
        return [(SEEN_PREFIX + n.encode(), None) for n in gone]

    def migration(self) -> Records:
        """The records that carry a legacy state over (once)."""
        if not self.legacy:
            return []
        self.legacy = False
        out: Records = [
            (SEEN_PREFIX + n.encode(), dumps({"rev": rev, "at": at}))
            for n, (rev, at) in self.seen.items()
        ]
        out.append(self.cursor_record())
        return out


class PollCore:
    """The polling rules without Kafka: ``publish(number, order)`` sends one ``Order``,
    ``save(records)`` writes state records; both are awaited before the cursor moves on."""

    def __init__(
        self,
        settings: Settings,
        spapi: Callable[[], Any],
        publish: Callable[[str, dict[str, Any]], Awaitable[None]],
        save: Callable[[Records], Awaitable[None]],
        clock: Callable[[], float] = time.time,
        received: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.spapi = spapi
        self.publish = publish
        self.save = save
        self.clock = clock
        self.received = received

    def queries(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        changed = {"changed_after": start, "changed_before": end}
        return [
            {"created_after": start, "created_before": end},
            changed,
            {**changed, "is_po_changed": True},
            {**changed, "po_item_state": "Cancelled"},
        ]

    async def poll_once(self, state: PollState) -> int:
        s = self.settings
        now = datetime.fromtimestamp(self.clock(), UTC)
        if state.cursor is None:
            since = now - timedelta(seconds=min(s.po_initial_lookback_s, WINDOW.total_seconds()))
        else:
            since = max(now - BACKFILL_MAX, state.cursor - timedelta(seconds=s.po_poll_overlap_s))
            if state.cursor < now - BACKFILL_MAX:
                log.warning(
                    "purchase-order cursor %s is older than the 6 months Amazon keeps: "
                    "fetching from %s", state.cursor.isoformat(), since.isoformat(),
                )  # fmt: skip
        migrated = state.migration()
        if migrated:
            await self.save(migrated)
        published = 0
        for start, end in windows(since, now):
            records: Records = []
            for query in self.queries(start, end):
                async for order in self.spapi().get_purchase_orders(**query):
                    number = order.get("purchaseOrderNumber")
                    if not isinstance(number, str):
                        continue
                    rev = revision_key(order)
                    if state.seen.get(number, (None,))[0] == rev:
                        continue
                    if order.get("purchaseOrderState") == "Closed":
                        await self._report_received(number)
                    await self.publish(number, order)
                    records.append(state.mark(number, rev, self.clock()))
                    published += 1
            state.cursor = end
            records.append(state.cursor_record())
            await self.save(records)  # after each window: a long backfill resumes here
        horizon = self.clock() - SEEN_DAYS * 86400
        expired = state.expire(horizon)
        if expired:
            await self.save(expired)
        M.PO_POLLED.inc(published)
        return published

    async def _report_received(self, number: str) -> None:
        """Before a Closed PO goes out: what Amazon received of it, so its close can tell
        received from cancelled even for shipments sent outside this product."""
        if self.received is None or not self.settings.po_close_status_check:
            return
        status = await self.spapi().get_purchase_order_status(number)
        items = {}
        for item in (status or {}).get("itemStatus") or []:
            qty = (item.get("receivingStatus") or {}).get("receivedQuantity") or {}
            if isinstance(qty.get("amount"), int) and qty["amount"] > 0:
                items[str(item.get("itemSequenceNumber"))] = qty
        if items:
            await self.received(number, items)


async def load_state(settings: Settings, topic: str) -> PollState:
    """The poller's state, read straight from its compacted topic."""
    state = PollState()
    await replay(settings, topic, state.apply)
    return state


class PoPoller:
    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        spapi_factory: Callable[[], Any] | None = None,
    ) -> None:
        s = self.settings = settings
        self.app = app
        self.clock = clock
        # the app's shared SP-API client (one rate budget per worker), made on first use
        self.spapi = LazyClient(spapi_factory, spapi_client(s, hooks=M.SpApiResponses()))
        self.po_topic = raw_topic(app, s.topic_purchase_orders)
        self.state_topic = raw_topic(
            app,
            f"{s.app_id}-po-poller",
            partitions=1,
            internal=True,
            config={"cleanup.policy": "compact"},
        )
        self.direct = DirectWriter(app)
        self.state: PollState | None = None
        # what Amazon received of a Closed PO goes to the PO flow ahead of the Order
        self.po_events = raw_topic(
            app, f"{s.app_id}-po-events", partitions=s.partitions, internal=True
        )
        self.core = PollCore(
            s, self.spapi, self._publish, self._save, clock, received=self._received
        )
        app.timer(s.po_poll_interval_s, on_leader=True, name="po-poller")(self.poll)

    async def _publish(self, number: str, order: dict[str, Any]) -> None:
        await self.po_topic.send(key=number.encode(), value=dumps(order))

    async def _received(self, number: str, items: dict[str, Any]) -> None:
        value = dumps(po_messages.to_json(po_messages.Received(items)))
        await (await self.po_events.send(key=number.encode(), value=value))

    async def _save(self, records: Records) -> None:
        await write_state(self.direct, self.state_topic.get_topic_name(), records)

    async def poll(self) -> None:
        if not self.settings.po_poller_enabled or self.app.rebalancing:
            return
        try:
            if self.state is None:
                await self.state_topic.maybe_declare()  # Faust creates only consumed topics
                self.state = await load_state(self.settings, self.state_topic.get_topic_name())
            published = await self.core.poll_once(self.state)
        except Exception as exc:  # SP-API down: the next tick retries from the saved cursor
            log.warning("purchase-order poll failed: %s: %s", type(exc).__name__, exc)
            return
        M.LAST_SUCCESS.labels("po_poll").set(self.clock())
        if published:
            log.info("published %d new or changed purchase orders", published)
