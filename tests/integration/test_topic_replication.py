"""Topic replication on a real broker: the default (3) is what managed Kafka requires; a
cluster with fewer brokers is refused with advice, not with a broker error mid-start."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.adapters.kafka_admin import ReplicationError, check_topics, create_topics
from streams.config import Settings
from tests.support.kafka import unique_settings

pytestmark = [pytest.mark.kafka]


def test_the_default_is_safe_for_managed_kafka() -> None:
    assert Settings.model_fields["kafka_replication_factor"].default == 3


async def test_more_replicas_than_brokers_is_refused_with_advice(
    kafka: str, tmp_path: Path
) -> None:
    s = unique_settings(kafka, tmp_path, kafka_replication_factor=3)  # the test broker is one
    with pytest.raises(ReplicationError, match="STREAMS_KAFKA_REPLICATION_FACTOR=1"):
        await create_topics(s)
    problems = await check_topics(s)
    assert problems[0].topic == "(cluster)" and "has 1 broker" in problems[0].problem
    local = unique_settings(kafka, tmp_path, kafka_replication_factor=1)
    created, _ = await create_topics(local)
    assert created
    assert not [p for p in await check_topics(local) if p.topic == "(cluster)"]
