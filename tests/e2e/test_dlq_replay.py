"""``streams dlq replay`` through the entry point on the real broker: dead letters go back to
their source topic and partition with their original key and bytes; --dry-run, --since and
--filter choose; a second run replays only what is new; --all starts over."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.adapters.codecs import dlq_record
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings
from tests.support.kafka import partitions_of, unique_settings

pytestmark = pytest.mark.kafka

ENTRY = Path(sys.executable).with_name("streams")
DAY = 24 * 3600.0


async def replay(s: Settings, *args: str) -> tuple[int, list[str]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STREAMS_")}
    env = {**clean, "STREAMS_KAFKA_BOOTSTRAP": s.kafka_bootstrap, "STREAMS_APP_ID": s.app_id,
           "STREAMS_PARTITIONS": str(s.partitions)}  # fmt: skip
    cmd = [str(ENTRY)] if ENTRY.exists() else [sys.executable, "-m", "streams"]
    proc = await asyncio.create_subprocess_exec(
        *cmd, "dlq", "replay", *args, env=env, cwd=Path(__file__).parent,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert b"Traceback" not in err, err.decode()
    assert proc.returncode is not None
    return proc.returncode, out.decode().splitlines()


async def source_records(
    s: Settings, topic: str
) -> list[tuple[int, bytes | None, bytes | None, dict[str, bytes]]]:
    c = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tps = [
            TopicPartition(topic, p) for p in sorted(await partitions_of(s.kafka_bootstrap, topic))
        ]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        ends = await c.end_offsets(tps)
        out = []
        for tp in tps:
            while await c.position(tp) < ends[tp]:
                for r in (await c.getmany(tp, timeout_ms=2000)).get(tp, []):
                    out.append((tp.partition, r.key, r.value, dict(r.headers)))
        return out
    finally:
        await c.stop()


async def dead_letter(s: Settings, letters: list[tuple[bytes, bytes, int, str, float]]) -> None:
    p = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap)
    await p.start()
    try:
        for offset, (key, raw, partition, error, failed_at) in enumerate(letters):
            v = dlq_record(raw, error, topic=s.topic_purchase_orders, partition=partition,
                           offset=offset, timestamp=failed_at, failed_at=failed_at)  # fmt: skip
            await p.send_and_wait(s.dlq_topic(s.topic_purchase_orders), orjson.dumps(v), key=key)
    finally:
        await p.stop()


async def test_replay_dry_run_filter_since_and_a_second_run(kafka: str, tmp_path: Path) -> None:
    s = unique_settings(kafka, tmp_path, kafka_replication_factor=1)
    await create_topics(s)
    now = time.time()
    big = b"x" * (70 * 1024)
    await dead_letter(s, [
        (b"PO-1", b'{"purchaseOrderNumber": "PO-1"}', 2, "missing field orderDetails", now),
        (b"PO-2", b'{"purchaseOrderNumber": "PO-2"}', 1, "not JSON: fixed since", now - 2 * DAY),
        (b"PO-3", b"\x00\xffbinary", 0, "orderDate must be a date-time", now),
        (b"PO-4", big, 0, "oversize record", now),
    ])  # fmt: skip
    dlq, src = s.dlq_topic(s.topic_purchase_orders), s.topic_purchase_orders

    code, lines = await replay(s, dlq, "--dry-run")
    assert code == 1  # the truncated one cannot be replayed
    assert sum(line.startswith("would replay") for line in lines) == 3
    assert any("cannot replay" in line and "truncated" in line for line in lines)
    assert await source_records(s, src) == []

    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - DAY))
    code, lines = await replay(s, src, "--since", since, "--filter", "error!~orderDate")
    assert "replayed 1 of 4 dead letters" in lines[-2], lines
    [(partition, key, value, headers)] = await source_records(s, src)
    assert (partition, key, value) == (2, b"PO-1", b'{"purchaseOrderNumber": "PO-1"}')
    assert headers["dlq.replayed-from"] == f"{dlq}@0".encode()

    # a second run: only dead letters written since the first
    await dead_letter(s, [(b"PO-5", b'{"n": 5}', 1, "missing field x", now)])
    code, lines = await replay(s, dlq)
    assert code == 0 and "replayed 1 of 1 dead letters" in lines[-2], lines
    got = await source_records(s, src)
    assert sorted((p, k, v) for p, k, v, _ in got) == [
        (1, b"PO-5", b'{"n": 5}'),
        (2, b"PO-1", b'{"purchaseOrderNumber": "PO-1"}'),
    ]
    code, lines = await replay(s, dlq)
    assert code == 0 and "replayed 0 of 0 dead letters" in lines[-1 - 1]

    # --all starts over: every replayable dead letter again (binary bytes kept as they were)
    code, lines = await replay(s, dlq, "--all", "--filter", "key=PO-3")
    assert "replayed 1 of 5 dead letters" in lines[-2]
    assert (0, b"PO-3", b"\x00\xffbinary") in [
        (p, k, v) for p, k, v, _ in await source_records(s, src)
    ]


async def test_a_bad_filter_or_topic_is_a_configuration_error(kafka: str, tmp_path: Path) -> None:
    s = unique_settings(kafka, tmp_path, kafka_replication_factor=1)
    code, _ = await replay(s, "no.such.topic", "--dry-run")
    assert code == 2
    code, _ = await replay(s, "ct.messages", "--filter", "colour=red")
    assert code == 2


async def test_a_dead_letter_whose_source_topic_is_gone_is_reported(
    kafka: str, tmp_path: Path
) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    s = unique_settings(kafka, tmp_path, kafka_replication_factor=1)
    gone = f"{s.topic_dispatches}.gone"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(f"{gone}.dlq", 1, 1)])
    finally:
        await admin.close()
    v = dlq_record(b"{}", "missing field x", topic=gone, partition=0, offset=3,
                   timestamp=None, failed_at=time.time())  # fmt: skip
    p = AIOKafkaProducer(bootstrap_servers=kafka)
    await p.start()
    try:
        await p.send_and_wait(f"{gone}.dlq", orjson.dumps(v), key=b"PO-9")
    finally:
        await p.stop()
    code, lines = await replay(s, f"{gone}.dlq")
    assert code == 1
    assert any(f"source topic {gone} does not exist" in line for line in lines), lines
    assert "replayed 0 of 1 dead letters" in lines[-2] and "1 cannot be replayed" in lines[-2]
