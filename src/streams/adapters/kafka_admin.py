"""Topic creation and checks with aiokafka's admin client, and client security options."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.config import ConfigError, Settings
from streams.topics import TopicSpec, topic_specs


def ssl_context(s: Settings) -> ssl.SSLContext | None:
    if s.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    ctx = ssl.create_default_context(cafile=str(s.kafka_ssl_cafile) if s.kafka_ssl_cafile else None)
    if s.kafka_ssl_certfile:
        ctx.load_cert_chain(
            str(s.kafka_ssl_certfile), str(s.kafka_ssl_keyfile) if s.kafka_ssl_keyfile else None
        )
    return ctx


def client_kwargs(s: Settings) -> dict[str, Any]:
    """aiokafka connection options (TLS/SASL) shared by every raw client we create."""
    kw: dict[str, Any] = {
        "bootstrap_servers": s.kafka_bootstrap,
        "security_protocol": s.kafka_security_protocol,
    }
    ctx = ssl_context(s)
    if ctx is not None:
        kw["ssl_context"] = ctx
    if s.kafka_security_protocol.startswith("SASL"):
        kw["sasl_mechanism"] = s.kafka_sasl_mechanism
        kw["sasl_plain_username"] = s.kafka_sasl_username
        kw["sasl_plain_password"] = (
            s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else None
        )
    return kw


@dataclass(frozen=True)
class TopicProblem:
    topic: str
    problem: str


class ReplicationError(ConfigError):
    """More replicas asked for than the cluster has brokers."""


async def topic_partitions(s: Settings, topic: str) -> list[int]:
    """The topic's partition numbers, ascending; empty when it does not exist."""
    admin = AIOKafkaAdminClient(**client_kwargs(s))
    await admin.start()
    try:
        meta = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if not meta or meta[0].get("error_code", 0) != 0:
        return []
    return sorted(p["partition"] for p in meta[0]["partitions"])


async def _replication_problem(admin: AIOKafkaAdminClient, s: Settings) -> str | None:
    """Why topics cannot be created with ``STREAMS_KAFKA_REPLICATION_FACTOR`` here, if so.

    The default (3) is what managed clusters require (Confluent Cloud refuses fewer); a
    single local broker (``streams kafka up``, the tests, the demo) needs 1."""
    brokers = len((await admin.describe_cluster()).get("brokers") or [])
    if brokers and s.kafka_replication_factor > brokers:
        return (
            f"STREAMS_KAFKA_REPLICATION_FACTOR={s.kafka_replication_factor} but the cluster at "
            f"{s.kafka_bootstrap} has {brokers} broker(s): set "
            f"STREAMS_KAFKA_REPLICATION_FACTOR={brokers} (e.g. 1 for a local single broker)"
        )
    return None


async def create_topics(s: Settings) -> tuple[list[str], list[str]]:
    """Create every topic of the contract that is missing. Returns (created, existing)."""
    specs = topic_specs(s)
    admin = AIOKafkaAdminClient(**client_kwargs(s))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        todo = [t for t in specs if t.name not in existing]
        problem = await _replication_problem(admin, s) if todo else None
        if problem:
            raise ReplicationError(problem)
        created: list[str] = []
        for spec in todo:
            try:
                await admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, s.kafka_replication_factor,
                              topic_configs=spec.config)]
                )  # fmt: skip
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
        return created, sorted(t.name for t in specs if t.name in existing)
    finally:
        await admin.close()


async def check_topics(s: Settings, specs: list[TopicSpec] | None = None) -> list[TopicProblem]:
    """Missing topics and partition counts that disagree with the settings."""
    specs = specs if specs is not None else topic_specs(s)
    admin = AIOKafkaAdminClient(**client_kwargs(s))
    await admin.start()
    try:
        # the worker's own state topics are created at start with the same factor
        replication = await _replication_problem(admin, s)
        found: dict[str, Any] = {}
        for attempt in range(10):
            meta = await admin.describe_topics([t.name for t in specs])
            found = {m["topic"]: m for m in meta if m.get("error_code", 0) == 0}
            if len(found) == len(specs) or attempt == 9:
                break
            await asyncio.sleep(0.5)  # topics created a moment ago may not be in metadata yet
    finally:
        await admin.close()
    problems: list[TopicProblem] = []
    if replication:
        problems.append(TopicProblem("(cluster)", replication))
    for spec in specs:
        m = found.get(spec.name)
        if m is None or m.get("error_code", 0) != 0:
            problems.append(TopicProblem(spec.name, "missing (run `streams topics create`)"))
            continue
        have = len(m["partitions"])
        if spec.copartitioned and have != spec.partitions:
            problems.append(
                TopicProblem(
                    spec.name,
                    f"has {have} partitions but STREAMS_PARTITIONS={spec.partitions}; "
                    "co-partitioned topics and state must agree",
                )
            )
    return problems
