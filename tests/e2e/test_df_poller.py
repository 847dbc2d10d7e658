"""DF orders end to end: the SP-API sandbox (over HTTP, with Restricted Data Tokens) -> the
DF poller of a real worker process -> ``amazon.df-orders`` on a real broker.

Orders are pulled across pages and two warehouses, the worker is SIGKILLed once its cursor
is saved and restarted after more orders arrive (some created before the cursor, inside the
overlap): every order is on the topic exactly once, and no customer address is in clear on
the topic, its DLQ, the poller's state topic or the worker's log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from streams.adapters.kafka_admin import create_topics
from streams.agents.df_poller import CURSOR_PREFIX, state_topic_name
from streams.config import Settings
from streams.sandbox.amazon import SandboxControl, running_sandbox
from tests.support.e2e import at_sandbox, e2e_sandbox, e2e_settings
from tests.support.kafka import read_all, wait_for
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

WAREHOUSES = ("WH-DF1", "WH-DF2")


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def df_settings(kafka: str, ct_api: str, tmp_path: Path) -> Settings:
    s = e2e_settings(
        kafka,
        tmp_path,
        ct_api_url=ct_api,
        ct_auth_url=ct_api,
        ct_project_key=f"df-{tmp_path.name[-8:]}".replace("_", "-"),
        df_enabled=True,
        df_ship_from_party_ids=WAREHOUSES,
        df_poll_interval_s=1.0,
        # the other flows stay quiet: this test is about the DF intake
        po_poller_enabled=False,
        inventory_sender_enabled=False,
        ct_sweep_enabled=False,
    )
    asyncio.run(create_topics(s))
    return s


def numbers(records: list[Any]) -> list[str]:
    return [r.key.decode() for r in records]


def first_sights(records: list[Any]) -> list[Any]:
    """The records of orders as first seen (NEW/ACCEPTED): an order the worker rejects is
    CANCELLED by Amazon and published once more with that status."""
    return [r for r in records if r.json()["orderDetails"]["orderStatus"] != "CANCELLED"]


async def cursors_saved(s: Settings) -> set[str]:
    records = await read_all(s.kafka_bootstrap, state_topic_name(s))
    return {
        r.key[len(CURSOR_PREFIX) :].decode() for r in records if r.key.startswith(CURSOR_PREFIX)
    }


async def test_df_orders_are_pulled_across_pages_and_a_crash_none_missed_none_twice(
    df_settings: Settings, tmp_path: Path
) -> None:
    s = at_sandbox(df_settings)
    bs, topic = s.kafka_bootstrap, s.topic_df_orders
    config = e2e_sandbox(s, df_order_count=0)
    now = datetime.now(UTC)
    async with running_sandbox(config, port=s.sandbox_port) as url, aiohttp.ClientSession() as http:
        control = SandboxControl(url, http)
        planted: list[dict[str, Any]] = []
        # 150 + 110 orders: two pages per warehouse and status NEW; some already ACCEPTED
        for i, (wh, count) in enumerate((("WH-DF1", 150), ("WH-DF2", 110))):
            for j in range(count // 10):
                at = iso(now - timedelta(hours=10, minutes=i * 30 + j))
                planted += await control.add_df_orders(count=10, warehouse=wh, createdAt=at,
                                                       seed=100 * i + j)  # fmt: skip
        log = tmp_path / "worker.log"
        w = WorkerProcess(s, log).start()
        try:
            w.wait_ready()
            records = await wait_for(bs, topic, lambda r: len(first_sights(r)) >= 260, timeout=90)
            records = first_sights(records)
            assert sorted(numbers(records)) == sorted(o["purchaseOrderNumber"] for o in planted)
            deadline = asyncio.get_running_loop().time() + 30
            while await cursors_saved(s) != set(WAREHOUSES):
                assert asyncio.get_running_loop().time() < deadline, w.tail()
                await asyncio.sleep(0.5)
            metrics = w.metrics()
            assert 'streams_df_orders_pulled_total{warehouse="WH-DF1"} 150.0' in metrics
        finally:
            w.kill()  # SIGKILL: no shutdown hooks
        # while it is down: new orders, and late-listed ones created before the cursor
        later = await control.add_df_orders(
            count=25, warehouse="WH-DF1", seed=7, createdAt=iso(datetime.now(UTC))
        )
        late = await control.add_df_orders(
            count=15, warehouse="WH-DF2", seed=8, createdAt=iso(now - timedelta(minutes=20))
        )
        planted += later + late
        w = WorkerProcess(s, log).start()
        try:
            w.wait_ready()
            records = await wait_for(bs, topic, lambda r: len(first_sights(r)) >= 300, timeout=90)
            await asyncio.sleep(3)  # a few more polls: nothing further may come
            records = await read_all(bs, topic)
        finally:
            w.stop()
        cancelled = numbers([r for r in records if r not in first_sights(records)])
        assert len(cancelled) == len(set(cancelled))  # a cancellation is published once
        got = numbers(first_sights(records))
        assert len(got) == len(set(got)) == 300  # none twice
        assert set(got) == {o["purchaseOrderNumber"] for o in planted}  # none missed
        # every order verbatim but for the address; the RDT was used for the reads
        by_number = {o["purchaseOrderNumber"]: o for o in planted}
        for r in records:
            value = r.json()
            original = by_number[r.key.decode()]
            ship_to = value["orderDetails"]["shipToParty"]
            assert set(ship_to) == {"addressHash", "countryCode"}
            assert value["orderDetails"]["items"] == original["orderDetails"]["items"]
        assert set(await control.statuses("getOrders")) == {200}
        assert await control.statuses("createRestrictedDataToken")

    # the address is nowhere in clear: topic, DLQ, poller state, worker log
    everything = log.read_bytes()
    for t in (topic, s.dlq_topic(topic), state_topic_name(s)):
        everything += b"".join((r.key or b"") + (r.value or b"") for r in await read_all(bs, t))
    for o in planted:
        address = o["orderDetails"]["shipToParty"]
        for field in ("name", "addressLine1", "phone"):
            assert address[field].encode() not in everything, field
        assert orjson.dumps(address) not in everything
