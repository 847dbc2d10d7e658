"""STREAMS_LOG_FORMAT=json: one JSON object per line with ts, level, logger, msg and the
sku / po / topic / offset fields where known, and the redaction filter still applied."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import orjson

SECRET = "ct-secret-planted-9f3e2"
TOKEN = "Atzr|json-planted-refresh/token"

# as the worker does: setup_logging, then Faust's worker installs its handlers from
# json_logging_config (dictConfig replaces the root handlers)
SCRIPT = textwrap.dedent(
    """
    import logging, logging.config
    from streams.config import load_settings
    from streams.observability.logging import (
        json_logging_config, log_fields, register_secret, setup_logging,
    )

    s = load_settings()
    setup_logging(s)
    if s.log_format == "json":
        logging.config.dictConfig(json_logging_config(s.log_level))
    register_secret("late-token-abcdef")
    log = logging.getLogger("streams.agents.test")
    log.info("dead-lettered %s@%d", "ct.messages", 7,
             extra={"topic": "ct.messages", "partition": 0, "offset": 7})
    with log_fields(sku="SKU-1"):
        log.warning("secret %s and late-token-abcdef in the message", s.ct_client_secret
                    .get_secret_value())
    log.info("PO %s", "PO-9", extra={"po": "PO-9", "sku": "leak %s" % s.ct_client_secret
                                         .get_secret_value()})
    try:
        raise RuntimeError("refresh token " + s.spapi_refresh_token.get_secret_value())
    except RuntimeError:
        log.exception("call failed")
    logging.getLogger("aiokafka").error("a library's line")
    """
)


def run_json_logging(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STREAMS_")}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_json_lines_carry_the_fields_and_no_secret() -> None:
    done = run_json_logging(
        STREAMS_LOG_FORMAT="json",
        STREAMS_CT_CLIENT_SECRET=SECRET,
        STREAMS_SPAPI_REFRESH_TOKEN=TOKEN,
        STREAMS_SPAPI_CLIENT_ID="amzn1.application-oa2-client.test",
    )
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stderr and TOKEN not in done.stderr
    assert "late-token-abcdef" not in done.stderr
    lines = [orjson.loads(line) for line in done.stderr.splitlines()]
    assert len(lines) == 5
    for line in lines:
        assert {"ts", "level", "logger", "msg"} <= set(line)
        assert line["ts"].endswith("+00:00")
    dlq, ctx, po, exc, lib = lines
    assert dlq["msg"] == "dead-lettered ct.messages@7"
    assert (dlq["topic"], dlq["partition"], dlq["offset"]) == ("ct.messages", 0, 7)
    assert ctx["sku"] == "SKU-1" and ctx["level"] == "WARNING" and "****" in ctx["msg"]
    assert po["po"] == "PO-9" and po["sku"] == "leak ****" and "sku" not in dlq
    assert exc["level"] == "ERROR" and "RuntimeError" in exc["exc"] and "****" in exc["exc"]
    assert lib["logger"] == "aiokafka" and lib["msg"] == "a library's line"


def test_text_is_the_default() -> None:
    done = run_json_logging(STREAMS_CT_CLIENT_SECRET=SECRET)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines and not any(line.startswith("{") for line in lines)
    assert "INFO streams.agents.test: dead-lettered ct.messages@7" in lines[0]
    assert SECRET not in done.stderr
