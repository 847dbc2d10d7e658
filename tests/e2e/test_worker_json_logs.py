"""A real ``streams worker`` with STREAMS_LOG_FORMAT=json: every line it logs is one JSON
object, a dead letter's line names its topic, partition and offset, and the configured
secrets appear nowhere (the redaction filter survives Faust's logging set-up)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr

from streams.adapters.kafka_admin import create_topics
from tests.support.kafka import produce, unique_settings, wait_for
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SECRET = "ct-json-secret-7c1d9e"


async def test_worker_logs_json_lines_with_fields_and_no_secret(kafka: str, tmp_path: Path) -> None:
    dead = free_port()  # neither commercetools nor SP-API answer in this test
    s = unique_settings(
        kafka, tmp_path, web_port=free_port(), log_format="json",
        ct_client_secret=SecretStr(SECRET), ct_api_url=f"http://127.0.0.1:{dead}",
        ct_auth_url=f"http://127.0.0.1:{dead}", spapi_endpoint=f"http://127.0.0.1:{dead}",
        spapi_lwa_url=f"http://127.0.0.1:{dead}/auth/o2/token", po_poller_enabled=False,
        sales_orders_enabled=False, channel_policy_enabled=False, ct_sweep_enabled=False,
    )  # fmt: skip
    await create_topics(s)
    log = tmp_path / "worker.log"
    w = WorkerProcess(s, log).start()
    try:
        await asyncio.to_thread(w.wait_ready, 90)
        await produce(
            s.kafka_bootstrap, s.topic_ct_messages, [(b"k", b"{not json " + SECRET.encode())]
        )
        dlq = s.dlq_topic(s.topic_ct_messages)
        assert await wait_for(s.kafka_bootstrap, dlq, lambda r: len(r) == 1, timeout=60)
        await asyncio.sleep(1.0)  # the log line follows the send
    finally:
        w.stop()
    text = log.read_text(errors="replace")
    assert SECRET not in text
    lines = [line for line in text.splitlines() if line.strip()]
    records = [orjson.loads(line) for line in lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    [dead_letter] = [r for r in records if r["msg"].startswith("dead-lettered")]
    assert dead_letter["topic"] == s.topic_ct_messages
    assert (dead_letter["partition"], dead_letter["offset"]) == (0, 0)
