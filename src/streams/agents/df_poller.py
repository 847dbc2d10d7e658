"""Pull Direct Fulfillment orders from SP-API (``getOrders`` 2021-12-28) and publish each one
to ``amazon.df-orders`` (key: purchaseOrderNumber), its ship-to address hashed.

Runs on the consumer group's leader only, when ``STREAMS_DF_ENABLED``. Per DF warehouse
(``STREAMS_DF_SHIP_FROM_PARTY_IDS``) it reads the orders created since its cursor minus an
overlap (orders Amazon lists late), in windows of at most 7 days (Amazon's limit per query),
100 per page following ``nextToken``, oldest first - with no status filter: the worker's own
acknowledgements move orders from ``NEW`` to ``ACCEPTED`` while it pages, and a query per
status would page over a set that shrinks under it and skip orders. Published: an order first
seen ``NEW`` or ``ACCEPTED`` (Amazon's model has no ``ACKNOWLEDGED``), and again when it turns
``CANCELLED`` (the DF flow gives its stock back; a query of its own reaches back 7 days);
other statuses are not this worker's to act on.

Guarantee: every order created in a polled window is published at least once, and once only
in normal operation, across restarts, rebalances and a change of leader: the cursor (per
warehouse) and the orders published (``seen:<PO>``, kept 14 days, longer than any window
plus overlap) live in the compacted one-partition topic ``<app>-df-poller``. An order is
published and its delivery acknowledged before it is marked seen (after each page), and the
cursor moves only after the whole window is done. A worker killed between the delivery and
the write of the page's marks publishes those orders again after the restart (at most one
page per warehouse and status): consumers deduplicate by purchaseOrderNumber, as they must
for a topic upstream producers may also write to.

The customer's address never leaves in clear: ``shipToParty`` (an ``Address`` in this API
version) becomes ``{"addressHash", "countryCode"}`` (HMAC-SHA256 of the normalised address,
keyed with ``STREAMS_DF_PII_KEY``) before the order is published, and neither the address
nor the order is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from streams.adapters.codecs import dumps, loads
from streams.adapters.spapi.df_orders import orders_query
from streams.agents.clients import LazyClient, spapi_client
from streams.agents.cursor_store import replay, write_state
from streams.agents.faustutil import DirectWriter, raw_topic
from streams.agents.po_poller import BACKFILL_MAX, WINDOW, windows
from streams.config import Settings
from streams.observability import metrics as M

log = logging.getLogger(__name__)

CURSOR_PREFIX = b"cursor:"  # + warehouse
SEEN_PREFIX = b"seen:"  # + purchaseOrderNumber
SEEN_DAYS = 14
OPEN = ("NEW", "ACCEPTED")  # first sight of these is published
CANCELLED = "CANCELLED"  # published again when an order seen open turns cancelled
PAGE_LIMIT = 100
# the Address fields, in the order they are hashed
ADDRESS_FIELDS = (
    "name",
    "attention",
    "addressLine1",
    "addressLine2",
    "addressLine3",
    "city",
    "county",
    "district",
    "stateOrRegion",
    "postalCode",
    "countryCode",
    "phone",
)

Records = list[tuple[bytes, bytes | None]]  # state records to write (None = tombstone)


def _norm(value: Any) -> str:
    text = unicodedata.normalize("NFKC", str(value)).casefold()
    return " ".join(text.split())


def address_hash(address: dict[str, Any], key: bytes = b"") -> str:
    """HMAC-SHA256 (hex) of the normalised address: every field, NFKC, case-folded, whitespace
    collapsed, in a fixed order; the same address however it is spaced or cased. Keyed with
    ``STREAMS_DF_PII_KEY`` (as the DF flow's redaction), so a hash cannot be tested against
    guessed addresses without the key."""
    text = "\x1f".join(f"{k}={_norm(address[k])}" for k in ADDRESS_FIELDS if address.get(k))
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def redact_ship_to(order: dict[str, Any], key: bytes = b"") -> dict[str, Any]:
    """``order`` with ``orderDetails.shipToParty`` replaced by its hash and country code
    (a copy; ``order`` is untouched). An order without an address is returned as is."""
    details = order.get("orderDetails")
    if not isinstance(details, dict) or not isinstance(details.get("shipToParty"), dict):
        return order
    address = details["shipToParty"]
    redacted: dict[str, Any] = {"addressHash": address_hash(address, key)}
    if address.get("countryCode"):
        redacted["countryCode"] = str(address["countryCode"])
    return {**order, "orderDetails": {**details, "shipToParty": redacted}}


@dataclass
class DfPollState:
    """The cursor per warehouse and when each published order was published."""

    cursors: dict[str, datetime] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)  # as last published

    def apply(self, key: bytes, value: bytes | None) -> None:
        """One record of the state topic, oldest first."""
        if key.startswith(CURSOR_PREFIX):
            warehouse = key[len(CURSOR_PREFIX) :].decode()
            if value:
                self.cursors[warehouse] = datetime.fromisoformat(loads(value)["cursor"])
        elif key.startswith(SEEN_PREFIX):
            number = key[len(SEEN_PREFIX) :].decode()
            if value is None:
                self.seen.pop(number, None)
                self.status.pop(number, None)
            else:
                mark = loads(value)
                self.seen[number] = float(mark["at"])
                self.status[number] = str(mark.get("status") or "NEW")

    def mark(self, number: str, at: float, status: str = "NEW") -> tuple[bytes, bytes]:
        self.seen[number] = at
        self.status[number] = status
        return SEEN_PREFIX + number.encode(), dumps({"at": at, "status": status})

    def due(self, number: str, status: str) -> bool:
        """Whether an order in ``status`` is to be published (again)."""
        if number not in self.seen:
            return status in OPEN
        return status == CANCELLED and self.status.get(number) != CANCELLED

    def move(self, warehouse: str, cursor: datetime) -> tuple[bytes, bytes]:
        self.cursors[warehouse] = cursor
        return CURSOR_PREFIX + warehouse.encode(), dumps({"cursor": cursor.isoformat()})

    def expire(self, horizon: float) -> Records:
        gone = [n for n, at in self.seen.items() if at < horizon]
        for n in gone:
            del self.seen[n]
            self.status.pop(n, None)
        return [(SEEN_PREFIX + n.encode(), None) for n in gone]


class DfPollCore:
    """The polling rules without Kafka: ``publish(number, order)`` sends one (redacted)
    order and returns once it is acknowledged, ``save(records)`` writes state records."""

    def __init__(
        self,
        settings: Settings,
        spapi: Callable[[], Any],
        publish: Callable[[str, dict[str, Any]], Awaitable[None]],
        save: Callable[[Records], Awaitable[None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.spapi = spapi
        self.publish = publish
        self.save = save
        self.clock = clock
        self._pii_key = settings.df_pii_key.get_secret_value().encode()

    def since(self, state: DfPollState, warehouse: str, now: datetime) -> datetime:
        s = self.settings
        cursor = state.cursors.get(warehouse)
        if cursor is None:
            return now - timedelta(seconds=min(s.df_initial_lookback_s, WINDOW.total_seconds()))
        return max(now - BACKFILL_MAX, cursor - timedelta(seconds=s.df_poll_overlap_s))

    async def poll_once(self, state: DfPollState) -> int:
        now = datetime.fromtimestamp(self.clock(), UTC).replace(microsecond=0)
        published = 0
        for warehouse in self.settings.df_warehouses:
            for start, end in windows(self.since(state, warehouse, now), now):
                published += await self._query(state, warehouse, start, end)
                await self.save([state.move(warehouse, end)])  # the whole window is done
            # cancellations reach back a whole window: Amazon cancels orders long after their
            # creation, and only ever into this status (the set only grows: nothing skipped)
            published += await self._query(state, warehouse, now - WINDOW + timedelta(minutes=1),
                                           now, status=CANCELLED)  # fmt: skip
        expired = state.expire(self.clock() - SEEN_DAYS * 86400)
        if expired:
            await self.save(expired)
        return published

    async def _query(
        self, state: DfPollState, warehouse: str, start: datetime, end: datetime,
        status: str | None = None,
    ) -> int:
        params = orders_query(created_after=start, created_before=end, ship_from_party_id=warehouse,
                              status=status, limit=PAGE_LIMIT, sort_order="ASC")  # fmt: skip
        published = 0
        token: str | None = None
        while True:
            page = await self.spapi().df_get_orders_page(params, token)
            records: Records = []
            for order in page.orders:
                number = order.get("purchaseOrderNumber")
                status = str((order.get("orderDetails") or {}).get("orderStatus") or "NEW")
                if not isinstance(number, str) or not state.due(number, status):
                    continue
                first = number not in state.seen
                await self.publish(number, redact_ship_to(order, self._pii_key))
                records.append(state.mark(number, self.clock(), status))
                if first:  # a cancellation published again is not another order pulled
                    M.DF_ORDERS_PULLED.labels(warehouse).inc()
                published += 1
            if records:
                await self.save(records)
            if not page.next_token:
                return published
            token = page.next_token


async def load_state(settings: Settings, topic: str) -> DfPollState:
    """The poller's state, read straight from its compacted topic."""
    state = DfPollState()
    await replay(settings, topic, state.apply)
    return state


def state_topic_name(settings: Settings) -> str:
    return f"{settings.app_id}-df-poller"


class DfPoller:
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
        self.spapi = LazyClient(spapi_factory, spapi_client(s, hooks=M.SpApiResponses()))
        self.orders_topic = raw_topic(app, s.topic_df_orders)
        self.state_topic = raw_topic(
            app,
            state_topic_name(s),
            partitions=1,
            internal=True,
            config={"cleanup.policy": "compact"},
        )
        self.direct = DirectWriter(app)
        self.state: DfPollState | None = None
        self.core = DfPollCore(s, self.spapi, self._publish, self._save, clock)
        app.timer(s.df_poll_interval_s, on_leader=True, name="df-poller")(self.poll)

    async def _publish(self, number: str, order: dict[str, Any]) -> None:
        # delivered before the order is marked seen
        await (await self.orders_topic.send(key=number.encode(), value=dumps(order)))

    async def _save(self, records: Records) -> None:
        await write_state(self.direct, self.state_topic.get_topic_name(), records)

    async def poll(self) -> None:
        if not self.settings.df_enabled or self.app.rebalancing:
            return
        try:
            if self.state is None:
                await self.state_topic.maybe_declare()  # Faust creates only consumed topics
                self.state = await load_state(self.settings, self.state_topic.get_topic_name())
            published = await self.core.poll_once(self.state)
        except Exception as exc:  # SP-API down: the next tick retries from the saved cursor
            # the type and Amazon's (scrubbed) error text only: never an order or address
            M.DF_POLL_ERRORS.inc()
            log.warning("DF order poll failed: %s: %s", type(exc).__name__, exc)
            return
        M.LAST_SUCCESS.labels("df_poll").set(self.clock())
        if published:
            log.info("published %d new DF orders", published)
