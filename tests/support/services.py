"""Start what the tests need when the environment does not name it.

Kafka: ``STREAMS_KAFKA_BOOTSTRAP`` if set; else testcontainers where a Docker engine runs;
else the local Apache Kafka jars (``streams.localkafka``) on free ports, stopped by pid.
The commercetools emulator: ``STREAMS_CT_API_URL`` if set; else started on a free port.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def docker_engine() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@contextmanager
def kafka_bootstrap() -> Iterator[str]:
    given = os.environ.get("STREAMS_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    if docker_engine():  # pragma: no cover - no engine on the project's machines
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:3.9.1").with_kraft() as kc:
            yield kc.get_bootstrap_server()
        return
    from streams import localkafka

    home = Path(tempfile.mkdtemp(prefix="streams-kafka-"))
    k = localkafka.LocalKafka(home, free_port(), free_port(), heap="512m")
    localkafka.up(k)
    try:
        yield k.bootstrap
    finally:
        localkafka.down(k)


class EmulatorNotStarted(RuntimeError):
    """The commercetools emulator did not start."""


@contextmanager
def ct_emulator() -> Iterator[str]:
    """Base URL of the commercetools emulator (started here when STREAMS_CT_API_URL is unset)."""
    given = os.environ.get("STREAMS_CT_API_URL")
    if given:
        yield given.rstrip("/")
        return
    from streams.config import Settings
    from streams.sandbox import ctmock

    port = free_port()
    settings = Settings(ct_mock_port=port)
    if ctmock.up(settings, port=port) != 0:
        raise EmulatorNotStarted("the commercetools emulator did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        ctmock.down(settings, port=port)
