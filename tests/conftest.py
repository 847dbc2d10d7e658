"""Shared fixtures: a real Apache Kafka broker for the whole session."""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

# one local broker: the product's default replication (3) is for managed clusters
os.environ.setdefault("STREAMS_KAFKA_REPLICATION_FACTOR", "1")

from tests.support.kafka import delete_topics, topic_names
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


@pytest.fixture(scope="module", autouse=True)
def _drop_module_topics() -> Iterator[None]:
    """With a broker of the test run's own (scripts/test.sh), delete each module's topics after it.

    Every test makes topics of its own; a broker holds an open file per partition segment, and
    a whole suite's topics would pass the machine's open-file limit, killing the broker mid-run.
    """
    bootstrap = os.environ.get("STREAMS_KAFKA_BOOTSTRAP")
    if not bootstrap or os.environ.get("STREAMS_TEST_DROP_TOPICS") != "1":
        yield
        return
    before = asyncio.run(topic_names(bootstrap))
    yield
    try:
        asyncio.run(delete_topics(bootstrap, asyncio.run(topic_names(bootstrap)) - before))
    except Exception as exc:  # cleanup must not fail a test; the next module tries again
        warnings.warn(f"could not delete this module's topics: {exc!r}", stacklevel=1)


# read once, so a test that unsets it for the product still gets it here
_AMAZON_MODELS_DIR = os.environ.get("STREAMS_AMAZON_MODELS_DIR", "").strip()


@pytest.fixture
def amazon_models_dir() -> Path:
    """Amazon's models the product does not ship (DF orders/shipping/transactions, Tokens):
    ``STREAMS_AMAZON_MODELS_DIR``, or the test is skipped."""
    value = _AMAZON_MODELS_DIR
    if not value or not Path(value).is_dir():
        pytest.skip("STREAMS_AMAZON_MODELS_DIR is not set: Amazon's DF/Tokens models missing")
    return Path(value)
