"""A new deployment's first start: the worker creates its internal topics and joins its group
once. Subscribed before the broker's metadata showed a topic just created, it would rebalance
a second time at the consumer's next metadata refresh (5 s), pausing every flow."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.adapters.kafka_admin import create_topics
from streams.runtime.conductor import wait_for_partitions
from tests.support.e2e import e2e_settings
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.kafka]


async def test_a_topic_just_created_is_waited_for_until_it_has_partitions(kafka: str) -> None:
    name = f"settle-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    client = AIOKafkaClient(bootstrap_servers=kafka)
    await admin.start()
    await client.bootstrap()
    try:
        await admin.create_topics([NewTopic(name, 6, 1)])
        missing = await wait_for_partitions(client.fetch_all_metadata, [name], 10.0)
        assert missing == []
        meta = await client.fetch_all_metadata()
        assert meta.partitions_for_topic(name) == set(range(6))
        # a topic that never comes is named at the timeout
        assert await wait_for_partitions(client.fetch_all_metadata, [name + "-x"], 0.3) == [
            name + "-x"
        ]
    finally:
        await admin.delete_topics([name])
        await admin.close()
        await client.close()


async def test_a_first_start_subscribes_once_its_topics_have_partitions(
    kafka: str, tmp_path: Path
) -> None:
    # its own app id: every internal topic is new; every flow, so every topic
    s = e2e_settings(kafka, tmp_path, invoices_enabled=True, df_enabled=True)
    await create_topics(s)
    w = WorkerProcess(s, tmp_path / "worker.log").start()
    try:
        w.wait_ready(90)
        joined = f"Joined group '{s.app_id}' (generation 1)"
        for _ in range(300):  # up to 60 s
            if joined in w.log_path.read_text():
                break
            await asyncio.sleep(0.2)
        # beyond the consumer's next metadata refresh, when a topic it subscribed to without
        # partitions would have shown up and started a second rebalance
        await asyncio.sleep(7)
        log = w.log_path.read_text()
    finally:
        w.stop()
    assert joined in log, w.tail()
    # the worker's conductor waited for them (on a warm broker the race is rare; on a broker
    # started seconds before, as in the demo, it was seen in 5 of 12 first starts)
    assert "topics, all with partitions in the broker's metadata" in log, w.tail(80)
    assert f"Joined group '{s.app_id}' (generation 2)" not in log, w.tail(80)
