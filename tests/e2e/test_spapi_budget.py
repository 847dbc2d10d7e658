"""Three workers in one consumer group share Amazon's usage plan instead of keeping one each.

Real worker processes on the real broker send ``amazon.inventory-updates`` to the SP-API
sandbox, whose token buckets are at Amazon's default plan (10 requests/s, burst 10) for
``submitInventoryUpdate`` and the DF ``getTransactionStatus``. Each worker alone keeps 90%
of the plan, so three that did not split it would send up to 27 requests/s and meet 429s.
Checked: not one 429 on either operation, every SKU's latest amount accepted, every offset
committed, each worker sent (the budget follows the assignment), and the DF transactions
checked; then one worker leaves mid-drain and the two left re-split the plan, still
without a 429. No timing is asserted."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from streams.adapters.kafka_admin import create_topics
from streams.config import Settings
from streams.sandbox.amazon import SandboxConfig, SandboxControl, running_sandbox
from tests.e2e.test_asn import metric
from tests.e2e.test_inventory_sender import committed_vs_end, told, update
from tests.support.kafka import produce, unique_settings
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

OPS = ("submitInventoryUpdate", "getTransactionStatus")
WORKERS = 3
SKUS = 3000
MAX_ITEMS = 25  # many small requests: 3,000 SKUs need 120 at least, far past one burst


def group_settings(kafka: str, tmp_path: Path) -> Settings:
    port, dead = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    return unique_settings(
        kafka,
        tmp_path,
        partitions=6,
        tx_poll_interval_s=0.5,
        sandbox_port=port,
        spapi_endpoint=base,
        spapi_lwa_url=f"{base}/auth/o2/token",
        spapi_df_warehouse="WH-GROUP",
        inventory_max_items=MAX_ITEMS,
        inventory_linger_s=0.3,
        po_poller_enabled=False,
        sales_orders_enabled=False,
        channel_policy_enabled=False,
        ct_api_url=f"http://127.0.0.1:{dead}",
        ct_auth_url=f"http://127.0.0.1:{dead}",
    )


def budget(w: WorkerProcess, op: str) -> float:
    return metric(w.metrics(), "streams_spapi_budget_requests_per_second", operation=op)


async def until(cond: Any, timeout: float, what: str, workers: list[WorkerProcess]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await cond():
            return
        await asyncio.sleep(0.25)
    tails = "\n---\n".join(w.tail(15) for w in workers)
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


@pytest.mark.kafka
@pytest.mark.slow
async def test_three_workers_stay_within_one_plan_and_drain(kafka: str, tmp_path: Path) -> None:
    s = group_settings(kafka, tmp_path)
    await create_topics(s)
    config = SandboxConfig.from_settings(
        s,
        order_count=0,
        include_amazon_examples=False,
        transaction_processing_s=0.3,
        warehouses=("WH-GROUP",),
        max_received=100_000,
    )  # Amazon's default plan: 10/s, burst 10, enforced
    workers = [
        WorkerProcess(
            s.model_copy(update={"data_dir": tmp_path / f"data-{i}", "web_port": free_port()}),
            tmp_path / f"worker-{i}.log",
        )
        for i in range(WORKERS)
    ]
    async with running_sandbox(config, port=s.sandbox_port) as url, aiohttp.ClientSession() as http:
        control = SandboxControl(url, http)
        try:
            for w in workers:
                w.start()
            for w in workers:
                await asyncio.to_thread(w.wait_ready, 90)

            async def split_three_ways() -> bool:  # every worker owns a part of the topic
                try:
                    return all(budget(w, OPS[0]) > 0 for w in workers)
                except (OSError, AssertionError):
                    return False

            await until(split_three_ways, 60, "the group to share the partitions", workers)
            shares = [budget(w, OPS[0]) for w in workers]
            assert sum(shares) <= s.spapi_rate_per_s + 1e-9, shares

            batch = [(f"S{i:05d}".encode(), update(f"S{i:05d}", i)) for i in range(SKUS)]
            again = [(f"S{i:05d}".encode(), update(f"S{i:05d}", i + 5)) for i in range(0, SKUS, 3)]
            await produce(s.kafka_bootstrap, s.topic_inventory_updates, batch + again)
            want = {f"V-S{i:05d}": i + (5 if i % 3 == 0 else 0) for i in range(SKUS)}

            async def all_told() -> bool:
                got = told(await control.received(OPS[0]))
                return all(got.get(k) == v for k, v in want.items())

            async def all_committed() -> bool:
                committed, end = await committed_vs_end(s)
                return committed == end

            await until(all_told, 180, "every SKU's latest amount at Amazon", workers)
            await until(all_committed, 30, "every offset committed", workers)

            async def checked() -> bool:  # the DF transaction checks drain as well
                got = await control.received(OPS[1])
                return sum(e["status"] == 200 for e in got) >= len(await control.received(OPS[0]))

            await until(checked, 60, "every DF transaction checked", workers)
            sent = await control.received(OPS[0])
            assert len(sent) >= SKUS // MAX_ITEMS  # the plan was really tested
            for op in OPS:
                statuses = {e["status"] for e in await control.received(op)}
                assert statuses == {202 if op == OPS[0] else 200}, (op, statuses)
            per_worker = [
                metric(w.metrics(), "streams_spapi_responses_total", operation=OPS[0], status="202")
                for w in workers
            ]
            assert all(n > 0 for n in per_worker), per_worker
            assert sum(per_worker) == len(sent)
            assert await control.received("getTransaction") == []  # DF ones never go retail

            # a worker leaves while the group drains: the two left re-split the plan
            more = [(f"S{i:05d}".encode(), update(f"S{i:05d}", i + 9)) for i in range(SKUS)]
            await produce(s.kafka_bootstrap, s.topic_inventory_updates, more)
            want = {f"V-S{i:05d}": i + 9 for i in range(SKUS)}
            await asyncio.to_thread(workers[2].stop)
            left = workers[:2]

            async def split_two_ways() -> bool:
                try:
                    return all(budget(w, OPS[0]) >= s.spapi_rate_per_s * 0.9 / 2 for w in left)
                except (OSError, AssertionError):
                    return False

            await until(split_two_ways, 60, "the two workers left to share the plan", left)
            assert sum(budget(w, OPS[0]) for w in left) <= s.spapi_rate_per_s + 1e-9
            await until(all_told, 180, "every SKU's amount after the worker left", left)
            await until(all_committed, 30, "every offset committed after it left", left)
            await until(checked, 60, "every DF transaction checked after it left", left)
            for op in OPS:
                statuses = {e["status"] for e in await control.received(op)}
                assert statuses == {202 if op == OPS[0] else 200}, (op, statuses)
        finally:
            for w in workers:
                w.stop()
