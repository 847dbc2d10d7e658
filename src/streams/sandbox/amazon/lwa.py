"""Login with Amazon: the refresh-token exchange that hands out access tokens."""

from __future__ import annotations

import hmac
import secrets
import time
from datetime import UTC, datetime

from aiohttp import web

from streams.sandbox.amazon.state import STATE, _json

LWA_OPERATION = "lwaToken"
PATH = "/auth/o2/token"


async def lwa_token(request: web.Request) -> web.Response:
    state = request.app[STATE]
    cfg = state.config
    form = await request.post()
    grant, refresh = str(form.get("grant_type", "")), str(form.get("refresh_token", ""))
    client_id, client_secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))

    def lwa_error(status: int, error: str, description: str) -> web.Response:
        return _json(request, status, {"error": error, "error_description": description})

    if grant != "refresh_token":
        resp = lwa_error(
            400,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the server.",
        )
    elif not (refresh and client_id and client_secret):
        resp = lwa_error(400, "invalid_request", "The request is missing a required parameter.")
    elif not (
        hmac.compare_digest(client_id, cfg.client_id)
        and hmac.compare_digest(client_secret, cfg.client_secret)
    ):
        resp = lwa_error(401, "invalid_client", "Client authentication failed.")
    elif not hmac.compare_digest(refresh, cfg.refresh_token):
        resp = lwa_error(
            400, "invalid_grant", "The request has an invalid grant parameter : refresh_token"
        )
    else:
        # real access tokens start "Atza|" and run to 350+ characters
        token = "Atza|" + secrets.token_urlsafe(270)
        state.tokens[token] = time.monotonic() + cfg.token_ttl_s
        resp = _json(
            request,
            200,
            {
                "access_token": token,
                "refresh_token": refresh,
                "token_type": "bearer",
                "expires_in": cfg.token_ttl_s,
            },
        )
    body = {
        k: ("****" if k in ("client_secret", "refresh_token") else str(v)) for k, v in form.items()
    }  # never keep secrets, not even in a test double
    state.record(
        LWA_OPERATION,
        {
            "operation": LWA_OPERATION,
            "method": "POST",
            "path": request.path,
            "body": body,
            "status": resp.status,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        },
    )
    return resp
