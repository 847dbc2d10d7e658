"""Pull new and changed purchase orders from SP-API and publish each ``Order`` verbatim.

Runs on the consumer group's leader only. Its cursor and the revisions it has published live
in a compacted internal topic, so a restart (or another worker taking over) resumes without
publishing a PO again. Downstream intake deduplicates by revision as well.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.adapters.codecs import dumps, loads
from streams.adapters.kafka_admin import client_kwargs
from streams.agents.clients import LazyClient, spapi_client
from streams.agents.faustutil import raw_topic
from streams.config import Settings
from streams.observability import metrics as M

log = logging.getLogger(__name__)
STATE_KEY = b"cursor"
SEEN_DAYS = 14  # forget published revisions after this long (> Amazon's 7-day window)


def revision_key(order: dict[str, Any]) -> str:
    d = order.get("orderDetails") or {}
    return "|".join(
        [
            str(d.get("purchaseOrderChangedDate") or d.get("purchaseOrderDate") or ""),
            str(order.get("purchaseOrderState") or ""),
            str(d.get("purchaseOrderStateChangedDate") or ""),
        ]
    )


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
        self.state: dict[str, Any] | None = None
        app.timer(s.po_poll_interval_s, on_leader=True, name="po-poller")(self.poll)

    async def _load_state(self) -> dict[str, Any]:
        """The last cursor record, read straight from the compacted topic."""
        c = AIOKafkaConsumer(**client_kwargs(self.settings), enable_auto_commit=False)
        await c.start()
        try:
            tp = TopicPartition(self.state_topic.get_topic_name(), 0)
            c.assign([tp])
            await c.seek_to_beginning(tp)
            end = (await c.end_offsets([tp]))[tp]
            state: dict[str, Any] = {}
            while await c.position(tp) < end:
                for msgs in (await c.getmany(tp, timeout_ms=1000)).values():
                    for m in msgs:
                        if m.key == STATE_KEY and m.value:
                            state = loads(m.value)
            return state
        finally:
            await c.stop()

    async def poll(self) -> None:
        if not self.settings.po_poller_enabled or self.app.rebalancing:
            return
        try:
            if self.state is None:
                await self.state_topic.maybe_declare()  # Faust creates only consumed topics
                self.state = await self._load_state()
            published = await self._poll_once(self.state)
        except Exception as exc:  # SP-API down: the next tick retries from the same cursor
            log.warning("purchase-order poll failed: %s: %s", type(exc).__name__, exc)
            return
        M.LAST_SUCCESS.labels("po_poll").set(self.clock())
        if published:
            log.info("published %d new or changed purchase orders", published)

    async def _poll_once(self, state: dict[str, Any]) -> int:
        s = self.settings
        now = datetime.fromtimestamp(self.clock(), UTC)
        # a minute inside Amazon's 7-day limit, so clock skew never makes the window too wide
        floor = now - timedelta(seconds=min(s.po_initial_lookback_s, 7 * 86400 - 60))
        overlap = timedelta(seconds=s.po_poll_overlap_s)
        cursor = datetime.fromisoformat(state["cursor"]) if state.get("cursor") else floor
        since = max(floor, cursor - overlap)
        seen: dict[str, list[Any]] = state.setdefault("seen", {})
        published = 0
        queries = (
            {"created_after": since, "created_before": now},
            {"changed_after": since, "changed_before": now, "is_po_changed": True},
        )
        for query in queries:
            async for order in self.spapi().get_purchase_orders(**query):
                number = order.get("purchaseOrderNumber")
                if not isinstance(number, str):
                    continue
                rev = revision_key(order)
                if seen.get(number, [None])[0] == rev:
                    continue
                await self.po_topic.send(key=number.encode(), value=dumps(order))
                seen[number] = [rev, self.clock()]
                published += 1
        horizon = self.clock() - SEEN_DAYS * 86400
        state["seen"] = {k: v for k, v in seen.items() if v[1] >= horizon}
        state["cursor"] = now.isoformat()
        await self.state_topic.send(key=STATE_KEY, value=dumps(state))
        M.PO_POLLED.inc(published)
        return published
