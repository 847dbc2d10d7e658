"""Shared fixtures: a real Apache Kafka broker for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.services import kafka_bootstrap


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """Bootstrap address of a real broker (started here when STREAMS_KAFKA_BOOTSTRAP is unset)."""
    with kafka_bootstrap() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def ct_api() -> Iterator[str]:
    """Base URL of the commercetools emulator (started here when STREAMS_CT_API_URL is unset)."""
    import os

    given = os.environ.get("STREAMS_CT_API_URL")
    if given:
        yield given.rstrip("/")
        return
    from streams.config import Settings
    from streams.sandbox import ctmock
    from tests.support.services import free_port

    port = free_port()
    settings = Settings(ct_mock_port=port)
    assert ctmock.up(settings, port=port) == 0, "the commercetools emulator did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        ctmock.down(settings, port=port)
