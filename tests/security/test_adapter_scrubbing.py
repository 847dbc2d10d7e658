"""The adapters' own promise: secret values never reach their exceptions' text, whatever
form a server echoes them back in."""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

from streams.adapters.commercetools import CommercetoolsClient
from streams.adapters.spapi import SpApiClient
from streams.config import Settings

REFRESH = "Atzr|planted+refresh/token"
SECRET = "planted|client+secret/x"


def settings() -> Settings:
    return Settings(
        spapi_refresh_token=REFRESH,
        spapi_client_secret=SECRET,
        ct_client_id="cid",
        ct_client_secret=SECRET,
        _env_file=None,  # type: ignore[call-arg]
    )


def test_spapi_scrubs_raw_secrets() -> None:
    api = SpApiClient(settings())
    [e] = api._scrub_errors([{"code": "x", "message": f"got {REFRESH} and {SECRET}"}])
    assert REFRESH not in e["message"] and SECRET not in e["message"]


def test_spapi_scrubs_url_encoded_secrets() -> None:
    api = SpApiClient(settings())
    body = f"grant_type=refresh_token&refresh_token={quote_plus(REFRESH)}&client_secret={quote(SECRET, safe='')}"  # noqa: E501
    [e] = api._scrub_errors([{"code": "invalid_client", "message": f"rejected {body}"}])
    for form in (quote_plus(REFRESH), quote(SECRET, safe="")):
        assert form not in e["message"]


def test_commercetools_redacts_basic_credentials() -> None:
    ct = CommercetoolsClient(settings())
    basic = base64.b64encode(f"cid:{SECRET}".encode()).decode()
    err = ct.http.error(
        "token", 401, {"error": "invalid_client", "error_description": f"Basic {basic}"}
    )
    assert basic not in str(err) and SECRET not in str(err)


async def test_spapi_scrubs_the_restricted_data_token() -> None:
    from streams.adapters.spapi.tokens import _Rdt

    api = SpApiClient(settings())
    source = api.df_orders_rdt()
    rdt = "Atz.sprdt|planted+rdt/value"
    source._rdt = _Rdt(rdt, renew_at=float("inf"))
    assert await source.get() == rdt and rdt not in repr(source)
    [e] = api._scrub_errors([{"code": "Unauthorized", "message": f"bad token {rdt}"}])
    assert rdt not in e["message"] and quote_plus(rdt) not in e["message"]
