"""``streams doctor`` through the entry point against the real broker, the commercetools
emulator and the SP-API sandbox: every check passes with the right settings, and a wrong
setting fails its check, naming the setting, with exit 1."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from streams.adapters.kafka_admin import create_topics
from streams.config import Settings, env_name
from streams.sandbox.amazon import SandboxConfig, running_sandbox
from tests.support.kafka import unique_settings
from tests.support.services import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.ctmock]

ENTRY = Path(sys.executable).with_name("streams")
ENV_FIELDS = ("kafka_bootstrap", "kafka_replication_factor", "partitions", "ct_api_url",
              "ct_auth_url", "spapi_endpoint", "spapi_lwa_url")  # fmt: skip


def env_of(s: Settings) -> dict[str, str]:
    fields = [n for n in type(s).model_fields if n.startswith("topic_")] + list(ENV_FIELDS)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STREAMS_")}
    return {**clean, **{env_name(n): str(getattr(s, n)) for n in fields}}


async def doctor(env: dict[str, str], **more: str) -> tuple[int, list[str]]:
    cmd = [str(ENTRY)] if ENTRY.exists() else [sys.executable, "-m", "streams"]
    proc = await asyncio.create_subprocess_exec(
        *cmd, "doctor", env={**env, **more}, cwd=Path(__file__).parent,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert b"Traceback" not in err, err.decode()
    assert proc.returncode is not None
    return proc.returncode, out.decode().splitlines()


def failing(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("FAIL")]


@pytest.fixture
async def world(kafka: str, ct_api: str, tmp_path: Path) -> Any:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    s = unique_settings(
        kafka, tmp_path, kafka_replication_factor=1, ct_api_url=ct_api, ct_auth_url=ct_api,
        sandbox_port=port, spapi_endpoint=base, spapi_lwa_url=f"{base}/auth/o2/token",
    )  # fmt: skip
    await create_topics(s)
    async with running_sandbox(SandboxConfig.from_settings(s, order_count=0), port=port):
        yield s


async def test_every_check_passes_against_the_real_services(world: Settings) -> None:
    code, lines = await doctor(env_of(world))
    assert code == 0, lines
    assert not failing(lines)
    names = {line.split()[1] for line in lines}
    assert {"kafka", "commercetools", "amazon"} <= names
    assert any("kafka topics" in line and "STREAMS_PARTITIONS=3" in line for line in lines)
    assert any("amazon endpoint" in line and "readable" in line for line in lines)


async def test_a_wrong_refresh_token_fails_the_lwa_check_and_names_it(world: Settings) -> None:
    code, lines = await doctor(env_of(world), STREAMS_SPAPI_REFRESH_TOKEN="Atzr|revoked-one")
    assert code == 1
    [line] = failing(lines)
    assert "amazon token (LWA)" in line and "HTTP 400" in line and "invalid_grant" in line
    assert "STREAMS_SPAPI_REFRESH_TOKEN" in line and "revoked-one" not in "\n".join(lines)


async def test_a_partition_count_the_topics_do_not_have_fails(world: Settings) -> None:
    code, lines = await doctor(env_of(world), STREAMS_PARTITIONS="4")
    assert code == 1
    bad = failing(lines)
    assert bad and all("STREAMS_PARTITIONS=4" in line for line in bad)
    assert any(world.topic_purchase_orders in line for line in bad)


async def test_scopes_without_the_ones_the_product_needs_fail(world: Settings) -> None:
    scopes = f"view_products:{world.ct_project_key}"
    code, lines = await doctor(env_of(world), STREAMS_CT_SCOPES=scopes)
    assert code == 1
    [line] = failing(lines)
    assert "commercetools scopes" in line and "manage_products" in line
    assert "manage_types" in line and "STREAMS_CT_SCOPES" in line


async def test_a_topic_with_another_config_fails(world: Settings, kafka: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(
            ConfigResourceType.TOPIC, world.topic_sku_mappings, {"cleanup.policy": "delete"}
        )])  # fmt: skip
    finally:
        await admin.close()
    code, lines = await doctor(env_of(world))
    assert code == 1
    [line] = failing(lines)
    assert world.topic_sku_mappings in line
    assert "cleanup.policy=delete but the contract says cleanup.policy=compact" in line


async def test_an_unreachable_broker_fails_the_kafka_check(world: Settings) -> None:
    code, lines = await doctor(env_of(world), STREAMS_KAFKA_BOOTSTRAP="127.0.0.1:1")
    assert code == 1
    [line] = failing(lines)
    assert "STREAMS_KAFKA_BOOTSTRAP=127.0.0.1:1" in line
