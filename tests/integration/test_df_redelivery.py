"""A Direct Fulfillment order's worker SIGKILLed between saving the record and sending the
acknowledgement its last line decision built: the exact state it leaves on the broker,
written before a real worker starts (docs/reliability.md, "a crash between saving a record
and sending its outputs").

The order record was taken in long before (its df-events offset committed); only the
decisions record that built the acknowledgement is uncommitted. Redelivered, it changes
nothing: before ``df_book.redelivered`` only a redelivered *order* repeated the outputs, so
the acknowledgement was lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.adapters.codecs import dumps
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings
from streams.domain import df_ack, df_book
from streams.domain.allocation import allocate
from streams.domain.df_orders import redact
from streams.domain.mapping import SkuMapping
from streams.runtime.kafka import partition_for
from streams.sandbox.amazon import SandboxControl, running_sandbox
from tests.integration.test_po_redelivery import Rec, _send
from tests.support.e2e import at_sandbox, e2e_sandbox, e2e_settings
from tests.support.kafka import read_all, wait_for
from tests.support.worker import WorkerProcess
from tests.unit.test_df_orders import df_order

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

NUMBER, SKU, ASIN = "DFRDL001", "SKU-DFR", "B0DFRDL001"
MAPPING = SkuMapping.model_validate(
    {"sku": SKU, "asin": ASIN, "netCost": {"amount": "5.00", "currencyCode": "USD"}}
)
PII_KEY = "test-key"


@pytest.fixture
def settings(kafka: str, ct_api: str, tmp_path: Path) -> Settings:
    s = e2e_settings(
        kafka, tmp_path, ct_api_url=ct_api, ct_auth_url=ct_api,
        ct_project_key=f"dfr-{tmp_path.name[-8:]}".replace("_", "-"),
        df_enabled=True, df_pii_key=PII_KEY,
        df_poll_interval_s=3600.0, po_poll_interval_s=3600.0,  # the state below is the input
    )  # fmt: skip
    asyncio.run(create_topics(s))
    asyncio.run(_internal_topics(s))
    return at_sandbox(s)


async def _internal_topics(s: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([
            NewTopic(f"{s.app_id}-df-events", s.partitions, 1),
            NewTopic(f"{s.app_id}-df_orders-changelog", s.partitions, 1,
                     topic_configs={"cleanup.policy": "compact"}),
        ])  # fmt: skip
    finally:
        await admin.close()


async def _commit(s: Settings, topic: str, partition: int, offset: int) -> None:
    """The group's committed offset, as the crashed worker had committed it (Faust's
    consumer group is the app id)."""
    c = AIOKafkaConsumer(
        bootstrap_servers=s.kafka_bootstrap, group_id=s.app_id, enable_auto_commit=False
    )
    await c.start()
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        await c.commit({tp: offset})
    finally:
        await c.stop()


def _crashed_state(s: Settings) -> tuple[list[Rec], dict[str, Any], int]:
    """The records a worker killed right after saving the acknowledged record leaves, the
    acknowledgement it built (the outbox item), and the df-events partition."""
    key = NUMBER.encode()
    partition = partition_for(key, s.partitions)
    raw = redact(df_order(NUMBER, (ASIN, 2)), PII_KEY.encode())
    ctx = df_book.Context(
        resolve=lambda asin, vpi: MAPPING if asin == ASIN else None, now=time.time(),
        selling_party=s.spapi_df_selling_party or s.spapi_selling_party,
        ack_within_s=s.df_ack_within_s,
    )  # fmt: skip
    order = {"t": "order", "raw": raw}
    rec, eff = df_book.apply(None, order, ctx)
    assert rec is not None and [i["t"] for i in eff.sku] == ["alloc"]
    [line] = rec.po_lines()
    d = allocate(line, 10, MAPPING, now=ctx.now_dt, backorder_lead_days=0)
    decisions = {"t": "decisions", "ds": [d.model_dump(mode="json")]}
    rec, eff = df_book.apply(rec, decisions, ctx)
    assert rec is not None
    [ack] = eff.outbox
    records: list[Rec] = [
        (f"{s.app_id}-df_orders-changelog", key, dumps(rec.to_json()), partition),
        (f"{s.app_id}-df-events", key, dumps(order), partition),  # offset 0: committed
        (f"{s.app_id}-df-events", key, dumps(decisions), partition),  # offset 1: not
    ]
    return records, ack, partition


async def test_a_df_acknowledgement_lost_in_a_crash_is_sent_once_identical(
    settings: Settings, tmp_path: Path
) -> None:
    s, bs = settings, settings.kafka_bootstrap
    records, ack, partition = _crashed_state(s)
    assert ack["kind"] == "ack"
    assert ack["hash"] == hashlib.sha256(df_ack.encode(ack["body"])).hexdigest()
    await _send(bs, records)
    await _commit(s, f"{s.app_id}-df-events", partition, 1)
    async with running_sandbox(e2e_sandbox(s), port=s.sandbox_port) as url, \
            aiohttp.ClientSession() as http:  # fmt: skip
        control = SandboxControl(url, http)
        await control.add_df_orders([df_order(NUMBER, (ASIN, 2))])  # the sandbox knows it
        w = WorkerProcess(s, tmp_path / "worker.log").start()
        try:
            w.wait_ready()
            outbox = f"{s.app_id}-df-outbox"
            sent = await wait_for(bs, outbox, bool, timeout=40)
            assert sent, "the built acknowledgement was never sent again\n" + w.tail()
            await wait_for(
                bs, f"{s.app_id}-df-events",
                lambda r: any(x.json().get("t") == "submitted" for x in r),
            )  # fmt: skip
            await asyncio.sleep(3)  # a second send would have happened by now
            sent = await read_all(bs, outbox)
            assert [(r.key, r.json()) for r in sent] == [(NUMBER.encode(), ack)]
            received = await control.received("submitAcknowledgement.df")
            assert [e["status"] for e in received] == [202], received
            assert received[0]["body"] == {"orderAcknowledgements": [ack["body"]]}
        finally:
            w.stop()
