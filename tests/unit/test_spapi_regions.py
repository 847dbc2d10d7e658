"""Amazon's SP-API endpoints by region, and how the settings derive and check them."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from streams.config import Settings, config_error
from streams.domain.spapi_regions import (
    LWA_TOKEN_URL,
    AmazonHost,
    amazon_host,
    endpoint_for,
    endpoint_problem,
)

REAL = {"spapi_client_id": "amzn1.application-oa2-client.abc", "spapi_refresh_token": "Atzr|x"}


@pytest.mark.parametrize(
    ("region", "production", "sandbox"),
    [
        ("na", "https://sellingpartnerapi-na.amazon.com", "https://sandbox.sellingpartnerapi-na.amazon.com"),
        ("eu", "https://sellingpartnerapi-eu.amazon.com", "https://sandbox.sellingpartnerapi-eu.amazon.com"),
        ("fe", "https://sellingpartnerapi-fe.amazon.com", "https://sandbox.sellingpartnerapi-fe.amazon.com"),
    ],
)  # fmt: skip
def test_the_region_table(region: Any, production: str, sandbox: str) -> None:
    assert endpoint_for(region) == production
    assert endpoint_for(region, sandbox=True) == sandbox
    assert amazon_host(production) == AmazonHost(region, False)
    assert amazon_host(sandbox + "/") == AmazonHost(region, True)
    assert amazon_host(production.upper().replace("HTTPS", "https")) == AmazonHost(region, False)
    assert LWA_TOKEN_URL == "https://api.amazon.com/auth/o2/token"


def test_hosts_that_are_not_amazons_are_not_judged() -> None:
    for url in ("http://127.0.0.1:8787", "https://proxy.example.com", "https://amazon.com"):
        assert amazon_host(url) is None
        assert endpoint_problem(url, "eu", True) is None
    with pytest.raises(ValueError):
        endpoint_for("us")  # type: ignore[arg-type]


def test_contradictions_are_named() -> None:
    na = "https://sellingpartnerapi-na.amazon.com"
    problem = endpoint_problem(na, "eu", None)
    assert problem and "na endpoint" in problem and "STREAMS_SPAPI_REGION is eu" in problem
    assert endpoint_problem(na, "na", None) is None
    assert endpoint_problem(na, "na", False) is None
    sandbox_problem = endpoint_problem(na, "na", True)
    assert sandbox_problem and "STREAMS_SPAPI_SANDBOX is true" in sandbox_problem


def test_without_credentials_the_local_sandbox_is_used() -> None:
    s = Settings(sandbox_port=8799)
    assert s.spapi_local
    assert s.spapi_endpoint == "http://127.0.0.1:8799"
    assert s.spapi_lwa_url == "http://127.0.0.1:8799/auth/o2/token"
    assert set(s.derived) == {"spapi_endpoint", "spapi_lwa_url"}
    assert "local sandbox" in s.derived["spapi_endpoint"]


@pytest.mark.parametrize("region", ["na", "eu", "fe"])
def test_with_credentials_amazons_hosts_follow_the_region(region: Any) -> None:
    s = Settings(spapi_region=region, **REAL)
    assert s.spapi_endpoint == f"https://sellingpartnerapi-{region}.amazon.com"
    assert s.spapi_lwa_url == LWA_TOKEN_URL
    sandbox = Settings(spapi_region=region, spapi_sandbox=True, **REAL)
    assert sandbox.spapi_endpoint == f"https://sandbox.sellingpartnerapi-{region}.amazon.com"
    assert sandbox.spapi_lwa_url == LWA_TOKEN_URL
    assert "sandbox" in sandbox.derived["spapi_endpoint"]


def test_explicit_values_are_kept_and_not_reported_as_derived() -> None:
    s = Settings(
        spapi_endpoint="https://sellingpartnerapi-eu.amazon.com", spapi_region="eu", **REAL
    )
    assert s.spapi_endpoint == "https://sellingpartnerapi-eu.amazon.com"
    assert s.spapi_lwa_url == LWA_TOKEN_URL and set(s.derived) == {"spapi_lwa_url"}
    own = Settings(spapi_endpoint="http://127.0.0.1:9", spapi_lwa_url="http://127.0.0.1:9/t")
    assert own.derived == {} and own.spapi_lwa_url == "http://127.0.0.1:9/t"
    copy = Settings().model_copy(update={"spapi_endpoint": "http://127.0.0.1:1"})
    assert "spapi_endpoint" not in copy.derived


def test_an_endpoint_of_another_region_is_a_clear_error() -> None:
    with pytest.raises(ValueError) as caught:
        Settings(spapi_region="eu", spapi_endpoint="https://sellingpartnerapi-na.amazon.com")
    line = config_error(caught.value)
    assert "\n" not in line
    assert "is Amazon's na endpoint but STREAMS_SPAPI_REGION is eu" in line


def _streams(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STREAMS_")}
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_streams_refuses_to_start_with_one_line() -> None:
    done = _streams(
        "config",
        STREAMS_SPAPI_REGION="eu",
        STREAMS_SPAPI_ENDPOINT="https://sellingpartnerapi-na.amazon.com",
    )
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("streams: configuration error: STREAMS_SPAPI_ENDPOINT")


def test_streams_config_shows_what_was_derived() -> None:
    done = _streams(
        "config",
        STREAMS_SPAPI_REGION="fe",
        STREAMS_SPAPI_CLIENT_ID="amzn1.application-oa2-client.x",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    i = lines.index("STREAMS_SPAPI_ENDPOINT=https://sellingpartnerapi-fe.amazon.com")
    assert lines[i - 1].startswith("# STREAMS_SPAPI_ENDPOINT derived: Amazon's fe host")
    assert f"STREAMS_SPAPI_LWA_URL={LWA_TOKEN_URL}" in lines
    assert not any(ln.startswith("# STREAMS_SPAPI_REGION") for ln in lines)
