"""Shared fixtures: a real Apache Kafka broker for the whole session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# one local broker: the product's default replication (3) is for managed clusters
os.environ.setdefault("STREAMS_KAFKA_REPLICATION_FACTOR", "1")

from tests.support.services import ct_emulator, kafka_bootstrap


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """Bootstrap address of a real broker (started here when STREAMS_KAFKA_BOOTSTRAP is unset)."""
    with kafka_bootstrap() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def ct_api() -> Iterator[str]:
    """Base URL of the commercetools emulator (started here when STREAMS_CT_API_URL is unset)."""
    with ct_emulator() as url:
        yield url
