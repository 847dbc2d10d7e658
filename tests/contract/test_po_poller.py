"""The purchase-order poller against the SP-API sandbox over real HTTP, and its state on a
real broker: after 10 days down it misses nothing the sandbox still returns (backfilled in
7-day windows, state-only closes and item cancellations included), publishes each revision
once, and no state record comes near Kafka's 1 MB record limit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.adapters.codecs import dumps
from streams.adapters.spapi import SpApiClient
from streams.agents.po_poller import (
    SEEN_PREFIX,
    STATE_KEY,
    WINDOW,
    PollCore,
    PollState,
    Records,
    load_state,
    windows,
)
from streams.config import Settings
from streams.sandbox.amazon import SandboxConfig, SandboxControl, running_sandbox
from tests.contract.test_spapi_client import make_settings
from tests.support.badinput import po_item, purchase_order

KAFKA_MAX_RECORD = 1_048_576


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def closed_state_only(number: str, created: datetime, closed: datetime) -> dict[str, Any]:
    """Closed by Amazon without any change to its items: only the state and its date move."""
    o = purchase_order(number, [po_item("1", "B0POLL0001", 4)], date=created)
    o["purchaseOrderState"] = "Closed"
    o["orderDetails"]["purchaseOrderStateChangedDate"] = _iso(closed)
    return o


def item_cancelled(number: str, created: datetime, changed: datetime) -> dict[str, Any]:
    items = [po_item("1", "B0POLL0001", 4), po_item("2", "B0POLL0002", 0)]
    return purchase_order(number, items, date=created, changed=changed)


class Sink:
    def __init__(self) -> None:
        self.published: list[str] = []
        self.saved: list[Records] = []

    async def publish(self, number: str, order: dict[str, Any]) -> None:
        self.published.append(number)

    async def save(self, records: Records) -> None:
        self.saved.append(records)


def test_windows_cover_the_gap_in_steps_within_seven_days() -> None:
    end = datetime(2026, 12, 6, tzinfo=UTC)
    got = list(windows(end - timedelta(days=10), end))
    assert len(got) == 2 and got[0][0] == end - timedelta(days=10) and got[-1][1] == end
    assert all(b - a <= WINDOW for a, b in got)
    assert all(got[i][1] == got[i + 1][0] for i in range(len(got) - 1))


async def test_a_poller_down_for_ten_days_misses_nothing_the_sandbox_returns() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    day = timedelta(days=1)
    orders = [
        purchase_order("POLL0001", [po_item("1", "B0POLL0001", 2)], date=now - 9 * day),
        purchase_order("POLL0002", [po_item("1", "B0POLL0001", 2)], date=now - 2 * day),
        closed_state_only("POLL0003", now - 12 * day, now - 3 * day),
        item_cancelled("POLL0004", now - 11 * day, now - 5 * day),
        purchase_order(
            "POLL0005", [po_item("1", "B0POLL0001", 3)], date=now - 8 * day, changed=now - day
        ),
        # before the gap and unchanged since: nothing to fetch
        purchase_order("POLL0006", [po_item("1", "B0POLL0001", 1)], date=now - 20 * day),
    ]
    config = SandboxConfig.from_settings(
        make_settings("http://127.0.0.1"), order_count=0, include_amazon_examples=False
    )
    async with (
        running_sandbox(config) as url,
        aiohttp.ClientSession() as http,
        SpApiClient(make_settings(url)) as client,
    ):
        await SandboxControl(url, http).add_orders(orders)
        sink = Sink()
        core = PollCore(make_settings(url), lambda: client, sink.publish, sink.save)
        state = PollState(cursor=now - 10 * day)
        published = await core.poll_once(state)
        assert sorted(sink.published) == [f"POLL000{i}" for i in range(1, 6)]
        assert published == 5
        assert state.cursor is not None and state.cursor >= now
        # the cursor was saved after each 7-day window, not only at the end
        cursors = [v for recs in sink.saved for k, v in recs if k == STATE_KEY]
        assert len(cursors) >= 2
        # polled again: every revision is known, nothing is published twice
        assert await core.poll_once(state) == 0
        assert len(sink.published) == 5
        # Amazon cancels an item of a PO published before: its new revision comes through
        later = item_cancelled("POLL0002", now - 2 * day, now - timedelta(minutes=1))
        await SandboxControl(url, http).add_orders([later])
        assert await core.poll_once(state) == 1 and sink.published[-1] == "POLL0002"
    assert max(len(v or b"") for recs in sink.saved for _, v in recs) < 200


def test_state_records_stay_small_however_many_pos_are_remembered() -> None:
    """The earlier format kept every PO seen in 14 days in one record (~89 bytes each: past
    ~11k POs a record Kafka refuses by default). Now each PO is its own small record."""
    legacy = PollState()
    seen = {f"PO{i:08d}": ["2026-12-01T00:00:00Z|New|2026-12-01T00:00:00Z", 1.7e9 + i]
            for i in range(20_000)}  # fmt: skip
    big = dumps({"cursor": "2026-12-06T00:00:00+00:00", "seen": seen})
    assert len(big) > KAFKA_MAX_RECORD  # what the earlier format would have written
    legacy.apply(STATE_KEY, big)
    records = legacy.migration()
    assert len(records) == 20_001
    assert max(len(v or b"") for _, v in records) < 200
    assert legacy.migration() == []  # once
    # read back: the same state
    again = PollState()
    for k, v in records:
        again.apply(k, v)
    assert again.seen == legacy.seen and again.cursor == legacy.cursor
    # forgotten after 14 days with a tombstone
    gone = again.expire(horizon=1.7e9 + 10)
    assert len(gone) == 10 and all(v is None for _, v in gone)
    assert gone[0][0].startswith(SEEN_PREFIX) and len(again.seen) == 19_990


@pytest.mark.kafka
async def test_state_round_trips_through_a_compacted_topic(kafka: str) -> None:
    s = Settings(kafka_bootstrap=kafka)
    topic = f"t-po-poller-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        compact = {"cleanup.policy": "compact"}
        await admin.create_topics([NewTopic(topic, 1, 1, topic_configs=compact)])
    finally:
        await admin.close()
    state = PollState(cursor=datetime(2026, 12, 6, tzinfo=UTC))
    records = [state.mark("PO1", "r1", 100.0), state.mark("PO2", "r2", 200.0),
               state.cursor_record(), *state.expire(150.0)]  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await producer.start()
    try:
        for k, v in records:
            await producer.send_and_wait(topic, v, key=k, partition=0)
    finally:
        await producer.stop()
    loaded = await load_state(s, topic)
    assert loaded.cursor == datetime(2026, 12, 6, tzinfo=UTC)
    assert loaded.seen == {"PO2": ("r2", 200.0)}  # PO1 forgotten by its tombstone


async def test_the_sandbox_closes_a_po_received_or_cancelled_and_the_poller_says_which() -> None:
    """Closed alone does not say how a PO ended: the poller asks getPurchaseOrdersStatus
    before it publishes a Closed PO and reports what Amazon received first."""
    now = datetime.now(UTC).replace(microsecond=0)
    config = SandboxConfig.from_settings(
        make_settings("http://127.0.0.1"), order_count=0, include_amazon_examples=False
    )
    orders = [
        purchase_order(n, [po_item("1", "B0POLL0001", 6), po_item("2", "B0POLL0002", 2)],
                       date=now - timedelta(hours=5))
        for n in ("RCVD0001", "CNCL0001")
    ]  # fmt: skip
    async with (
        running_sandbox(config) as url,
        aiohttp.ClientSession() as http,
        SpApiClient(make_settings(url)) as client,
    ):
        control = SandboxControl(url, http)
        await control.add_orders(orders)
        at = _iso(now - timedelta(minutes=1))
        received = await control.close_order("RCVD0001", "received", at=at, received={"1": 6})
        cancelled = await control.close_order("CNCL0001", "cancelled", at=at)
        assert received["purchaseOrderState"] == cancelled["purchaseOrderState"] == "Closed"
        assert "purchaseOrderChangedDate" not in received["orderDetails"]  # state only
        amounts = [i["orderedQuantity"]["amount"] for i in cancelled["orderDetails"]["items"]]
        assert amounts == [0, 0]
        status = await client.get_purchase_order_status("RCVD0001")
        assert status is not None and status["purchaseOrderStatus"] == "OPEN"  # 2 not received
        recv = {i["itemSequenceNumber"]: i["receivingStatus"] for i in status["itemStatus"]}
        assert (
            recv["1"]["receiveStatus"] == "RECEIVED"
            and recv["1"]["receivedQuantity"]["amount"] == 6
        )
        assert recv["2"]["receiveStatus"] == "NOT_RECEIVED"
        assert await client.get_purchase_order_status("NOSUCHPO") is None
        found = [o["purchaseOrderNumber"] async for o in client.get_purchase_orders(
            changed_after=now - timedelta(hours=1), changed_before=now, po_item_state="Cancelled"
        )]  # fmt: skip
        assert found == ["CNCL0001"]

        events: list[tuple[str, str]] = []
        sink = Sink()

        async def publish(number: str, order: dict[str, Any]) -> None:
            events.append(("order", number))

        async def report(number: str, items: dict[str, Any]) -> None:
            events.append(("received", number))
            assert items == {"1": {"amount": 6, "unitOfMeasure": "Eaches"}}

        core = PollCore(make_settings(url), lambda: client, publish, sink.save, received=report)
        await core.poll_once(PollState(cursor=now - timedelta(hours=2)))
    # what Amazon received goes out ahead of the Closed PO; a cancelled one received nothing
    assert events.index(("received", "RCVD0001")) < events.index(("order", "RCVD0001"))
    assert ("order", "CNCL0001") in events and ("received", "CNCL0001") not in events
