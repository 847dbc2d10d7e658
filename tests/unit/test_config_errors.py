"""A configuration error names the STREAMS_* variable and the problem in one line, with no
traceback, and exits 2, whatever the command (run through the ``streams`` entry point)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ENTRY = Path(sys.executable).with_name("streams")


def streams(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STREAMS_")}
    cmd = [str(ENTRY)] if ENTRY.exists() else [sys.executable, "-m", "streams"]
    return subprocess.run(
        [*cmd, *args], env={**clean, **env}, capture_output=True, text=True, timeout=60,
        check=False, cwd=Path(__file__).parent,  # no .env of the checkout
    )  # fmt: skip


BAD = [
    ({"STREAMS_PARTITIONS": "six"}, "STREAMS_PARTITIONS: Input should be a valid integer"),
    ({"STREAMS_BULK_RESTORE": "maybe"}, "STREAMS_BULK_RESTORE: Input should be a valid boolean"),
    ({"STREAMS_LOG_FORMAT": "xml"}, "STREAMS_LOG_FORMAT: Input should be 'text' or 'json'"),
    ({"STREAMS_DEFAULT_AMAZON_CHANNELS": "a,b"}, "STREAMS_DEFAULT_AMAZON_CHANNELS: not a JSON"),
    (
        {"STREAMS_CT_CLIENT_SECRET_FILE": "/nonexistent/secret"},
        "STREAMS_CT_CLIENT_SECRET_FILE=/nonexistent/secret: cannot read it",
    ),
    (
        {"STREAMS_KAFKA_SECURITY_PROTOCOL": "SSL", "STREAMS_KAFKA_SSL_CAFILE": "/nonexistent/ca"},
        "STREAMS_KAFKA_SSL_CAFILE=/nonexistent/ca: no such file",
    ),
    (
        {"STREAMS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "STREAMS_KAFKA_SASL_USERNAME": "u"},
        "STREAMS_KAFKA_SASL_PASSWORD is not set but STREAMS_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
    ),
    (
        {"STREAMS_SPAPI_REGION": "eu", "STREAMS_SPAPI_ENDPOINT": "https://sellingpartnerapi-na.amazon.com"},
        "STREAMS_SPAPI_ENDPOINT https://sellingpartnerapi-na.amazon.com is Amazon's na endpoint",
    ),
]  # fmt: skip
COMMANDS = [
    ["config"],
    ["topics", "check"],
    ["worker"],
    ["doctor"],
    ["dlq", "replay", "ct.messages.dlq", "--dry-run"],
    ["report", "reconciliation", "--month", "2026-01"],
]


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("streams: configuration error: STREAMS_")
    return line


@pytest.mark.parametrize(("env", "said"), BAD, ids=[next(iter(e)) for e, _ in BAD])
def test_a_bad_setting_is_one_line_naming_it(env: dict[str, str], said: str) -> None:
    assert said in one_line(streams("config", **env))


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_refuses_the_same_way(command: list[str]) -> None:
    line = one_line(streams(*command, STREAMS_PARTITIONS="0"))
    assert "STREAMS_PARTITIONS: Input should be greater than or equal to 1" in line


def test_an_unreachable_kafka_names_the_bootstrap() -> None:
    done = streams("topics", "check", STREAMS_KAFKA_BOOTSTRAP="127.0.0.1:1")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("streams: configuration error: STREAMS_KAFKA_BOOTSTRAP=127.0.0.1:1")
