"""Bearer-token guard of the worker's web server: with ``STREAMS_WEB_TOKEN`` set, every path
but ``/metrics``, ``/health`` and the probes (``/livez``, ``/readyz``) needs
``Authorization: Bearer <token>``."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

import faust
from aiohttp import web as aioweb
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from streams.config import Settings

# what Prometheus and the orchestrator's probes ask for carries no token
OPEN_PATHS = frozenset({"/metrics", "/health", "/livez", "/readyz"})


def bearer_guard(token: str) -> Callable[..., Awaitable[aioweb.StreamResponse]]:
    """aiohttp middleware: everything but OPEN_PATHS needs the bearer token."""
    expected = token.encode()

    @aioweb.middleware
    async def guard(
        request: aioweb.Request,
        handler: Callable[[aioweb.Request], Awaitable[aioweb.StreamResponse]],
    ) -> aioweb.StreamResponse:
        if request.path not in OPEN_PATHS:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            # compare_digest: the time taken says nothing about how much of the token matched
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), expected
            ):
                return aioweb.json_response(
                    {
                        "error": "unauthorized: this worker requires 'Authorization: Bearer "
                        "<token>' (the value of STREAMS_WEB_TOKEN)"
                    },
                    status=401,
                    headers={"WWW-Authenticate": 'Bearer realm="streams"'},
                )
        return await handler(request)

    return guard


def install_guard(app: faust.App, settings: Settings) -> None:
    token = settings.web_token.get_secret_value() if settings.web_token else ""
    if token:
        web = app.web
        if not isinstance(web, AiohttpWeb):  # the guard is aiohttp middleware
            raise RuntimeError(f"STREAMS_WEB_TOKEN needs Faust's aiohttp web driver, not {web!r}")
        # before the server starts: aiohttp freezes its middleware list on startup
        web.web_app.middlewares.append(bearer_guard(token))
