"""amazon.inventory-updates -> submitInventoryUpdate end to end: a real worker process on a
real broker sends partial feeds to the SP-API sandbox over HTTP. Checked: the latest amount
of every SKU reaches Amazon, many SKUs per request and never more than the maximum, every
body valid against Amazon's model, no 429 at the client's pace, a 429 storm ridden out
without losing an update and with offsets committed only after Amazon accepted, a failed
transaction (checked on the DF Transaction Status API) and a record that is no inventory item
as owned exceptions."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.adapters.amazon_models import validate as amazon_validate
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings
from streams.sandbox.amazon import SandboxConfig, SandboxControl, running_sandbox
from tests.e2e.test_asn import metric
from tests.support.kafka import partitions_of, produce, read_all, unique_settings
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

OP = "submitInventoryUpdate"
MAX_ITEMS = 400
Batch = list[tuple[bytes | None, Any]]


def update(sku: str, amount: int, **extra: Any) -> dict[str, Any]:
    return {
        "sku": sku,
        "availableQuantity": {"amount": amount, "unitOfMeasure": "Each"},
        "isObsolete": False,
        "vendorProductIdentifier": f"V-{sku}",
        "previousAmount": None,
        "kind": "delta",
        "publishedAt": "2026-11-27T08:15:04.125Z",
        "masterChangedAt": None,
        **extra,
    }


def told(entries: list[dict[str, Any]]) -> dict[str, int]:
    """vendorProductIdentifier -> the last amount Amazon accepted (202), in arrival order."""
    out: dict[str, int] = {}
    for e in entries:
        if e["status"] == 202:
            for item in e["body"]["inventory"]["items"]:
                out[item["vendorProductIdentifier"]] = item["availableQuantity"]["amount"]
    return out


async def committed_vs_end(s: Settings) -> tuple[int, int]:
    """(sum of the group's committed offsets, sum of end offsets) of amazon.inventory-updates."""
    topic = s.topic_inventory_updates
    tps = [TopicPartition(topic, p) for p in await partitions_of(s.kafka_bootstrap, topic)]
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        # the sender reads with its own consumer group (agents/rawstage.py)
        group = f"{s.app_id}-inventory-sender"
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
    records = await read_all(s.kafka_bootstrap, topic)
    end = {p: 0 for p in range(len(tps))}
    for r in records:
        end[r.partition] = max(end[r.partition], r.offset + 1)
    committed = sum(max(0, m.offset) for tp, m in offsets.items() if tp.topic == topic)
    return committed, sum(end.values())


async def until(cond: Any, timeout: float, what: str, w: WorkerProcess) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await cond():
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}\n{w.tail(30)}")


@pytest.fixture
def sender_settings(kafka: str, tmp_path: Path) -> Settings:
    port = free_port()
    dead = free_port()  # no commercetools in this test
    base = f"http://127.0.0.1:{port}"
    s = unique_settings(
        kafka,
        tmp_path,
        web_port=free_port(),
        tx_poll_interval_s=0.5,
        sandbox_port=port,
        spapi_endpoint=base,
        spapi_lwa_url=f"{base}/auth/o2/token",
        spapi_df_warehouse="WH-E2E",
        inventory_max_items=MAX_ITEMS,
        inventory_linger_s=0.5,
        po_poller_enabled=False,
        sales_orders_enabled=False,
        channel_policy_enabled=False,
        ct_api_url=f"http://127.0.0.1:{dead}",
        ct_auth_url=f"http://127.0.0.1:{dead}",
    )
    asyncio.run(create_topics(s))
    return s


@pytest.mark.kafka
@pytest.mark.slow
async def test_updates_reach_amazon_in_batches_through_a_429_storm(
    sender_settings: Settings, tmp_path: Path
) -> None:
    s = sender_settings
    bs, topic = s.kafka_bootstrap, s.topic_inventory_updates
    config = SandboxConfig.from_settings(
        s,
        order_count=0,
        include_amazon_examples=False,
        transaction_processing_s=0.3,
        warehouses=("WH-E2E",),
    )
    async with running_sandbox(config, port=s.sandbox_port) as url, aiohttp.ClientSession() as http:
        control = SandboxControl(url, http)
        w = WorkerProcess(s, tmp_path / "worker.log").start()
        try:
            w.wait_ready()
            # (1) 2,000 SKUs, 500 of them twice: the later amount wins
            first: Batch = [(f"S{i:04d}".encode(), update(f"S{i:04d}", i)) for i in range(2000)]
            again: Batch = [(f"S{i:04d}".encode(), update(f"S{i:04d}", i + 7)) for i in range(500)]
            await produce(bs, topic, first + again)
            want = {f"V-S{i:04d}": i + (7 if i < 500 else 0) for i in range(2000)}

            async def all_told() -> bool:
                got = told(await control.received(OP))
                return all(got.get(k) == v for k, v in want.items())

            await until(all_told, 60, "the first 2,000 SKUs", w)
            entries = await control.received(OP)
            assert [e["status"] for e in entries] == [202] * len(entries)  # not one 429
            sizes = [len(e["body"]["inventory"]["items"]) for e in entries]
            assert max(sizes) <= MAX_ITEMS
            assert sum(sizes) <= len(first) + len(again)
            assert len(entries) <= 10, sizes  # 2,000 SKUs in 400s: 5 at best, not 2,500
            for e in entries:
                assert e["path"].endswith("/warehouses/WH-E2E/items")
                assert e["body"]["inventory"]["isFullUpdate"] is False
                assert e["body"]["inventory"]["sellingParty"] == {"partyId": s.spapi_selling_party}
                problems = amazon_validate(
                    "vendorDirectFulfillmentInventory", "SubmitInventoryUpdateRequest", e["body"]
                )
                assert problems == []
            await until(lambda: _committed_all(s), 20, "offsets committed after acceptance", w)

            # (2) a 429 storm: every request is throttled for 6 s; nothing is committed
            # before Amazon accepts, nothing is lost
            before = len(entries)
            await control.set_faults({"operations": {OP: {"throttleForS": 6}}})
            storm: Batch = [
                (f"S{i:04d}".encode(), update(f"S{i:04d}", 10_000 + i)) for i in range(300)
            ]
            await produce(bs, topic, storm)
            want.update({f"V-S{i:04d}": 10_000 + i for i in range(300)})
            await asyncio.sleep(4.5)  # Faust commits every 2.8 s: it would have by now
            committed, end = await committed_vs_end(s)
            assert committed < end, "offsets committed before Amazon accepted the requests"
            await until(all_told, 60, "the updates sent during the 429 storm", w)
            await until(lambda: _committed_all(s), 20, "offsets committed after the storm", w)
            during = (await control.received(OP))[before:]
            assert 429 in {e["status"] for e in during}
            assert all(e["status"] in (202, 429) for e in during)

            # (3) a transaction that fails, and a record that is no inventory item
            await control.set_faults({"clear": True, "transactionFailures": {"next": 1}})
            await produce(
                bs,
                topic,
                [
                    (b"T0001", update("T0001", 3)),
                    (b"NOID", {**update("NOID", 1), "vendorProductIdentifier": None}),
                ],
            )

            async def kinds() -> set[str]:
                return {r.json()["kind"] for r in await read_all(bs, s.topic_exceptions) if r.value}

            async def both_raised() -> bool:
                return {"inventory-transaction-failed", "inventory-update-rejected"} <= (
                    await kinds()
                )

            await until(both_raised, 30, "the two owned exceptions", w)
            assert "V-T0001" in told(await control.received(OP))
            assert not any("NOID" in str(e["body"]) for e in await control.received(OP)), (
                "a record without identifiers was sent"
            )

            # DF transactions are checked on the DF Transaction Status API, never the retail one
            checks = await control.received("getTransactionStatus")
            assert checks and {e["status"] for e in checks} <= {200, 429}
            assert all(
                e["path"].startswith("/vendor/directFulfillment/transactions/v1/") for e in checks
            )
            assert await control.received("getTransaction") == []

            m = w.metrics()
            assert metric(m, "streams_amazon_inventory_requests_total", outcome="submitted") >= 6
            # every valid record either went to Amazon or was superseded in its batch
            sent = metric(m, "streams_amazon_inventory_items_total", outcome="sent")
            superseded = metric(m, "streams_amazon_inventory_items_total", outcome="superseded")
            assert sent + superseded == len(first) + len(again) + len(storm) + 1
            assert metric(m, "streams_amazon_inventory_items_total", outcome="invalid") == 1
            assert metric(m, "streams_transaction_failures_total", kind="inventory") == 1
            throttled = metric(m, "streams_spapi_responses_total", operation=OP, status="429")
            assert throttled >= 1
        finally:
            w.stop()


async def _committed_all(s: Settings) -> bool:
    committed, end = await committed_vs_end(s)
    return committed == end
