"""A local Amazon SP-API sandbox (retail procurement, Direct Fulfillment, Tokens), on aiohttp.

Behaves like the parts of Amazon our adapter touches: LWA refresh-token exchange, access
tokens that expire, per-operation token buckets answering 429, request bodies validated
against Amazon's own models (schemas/amazon) plus the rules Amazon only *describes*
(netCost on acknowledgements), asynchronous transactions, and purchase orders from a seeded
generator. ``/_sandbox/*`` is an unauthenticated control API for tests and the demo.
Binds 127.0.0.1 only: it checks credentials, but it is still a test double.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web

from streams.sandbox.amazon import (
    control_api,
    df_orders,
    df_payments,
    df_shipping,
    df_transactions,
    invoices,
    lifecycle,
    lwa,
    retail_orders,
    submissions,
    tokens,
)
from streams.sandbox.amazon.middleware import _api_middleware
from streams.sandbox.amazon.state import STATE, SandboxConfig, SandboxState, add_operations

if TYPE_CHECKING:
    from streams.config import Settings

__all__ = ["HOST", "OPERATIONS", "SandboxConfig", "create_sandbox_app", "main", "running_sandbox"]

HOST = "127.0.0.1"

# the SP-API operations served, one module per API (each with OPERATIONS and HANDLERS):
# operationId -> (method, path); the paths are Amazon's, from its models
_APIS = (
    retail_orders,
    submissions,
    df_transactions,
    lifecycle,
    df_orders,
    df_shipping,
    tokens,
    invoices,
    df_payments,
)
OPERATIONS: dict[str, tuple[str, str]] = {k: v for m in _APIS for k, v in m.OPERATIONS.items()}


def create_sandbox_app(config: SandboxConfig | None = None) -> web.Application:
    app = web.Application(middlewares=[_api_middleware], client_max_size=10 * 1024**2)
    app[STATE] = SandboxState(config or SandboxConfig())
    for api in _APIS:
        add_operations(app, api.OPERATIONS, api.HANDLERS)
    app.router.add_post(lwa.PATH, lwa.lwa_token)
    control_api.install(app)
    lifecycle.install(app)  # closing POs
    return app


@contextlib.asynccontextmanager
async def running_sandbox(
    config: SandboxConfig | None = None, port: int = 0, host: str = HOST
) -> AsyncIterator[str]:
    """Serve the sandbox on 127.0.0.1:``port`` (0 = any free port); yields the base URL."""
    runner = web.AppRunner(create_sandbox_app(config), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        yield f"http://{host}:{bound}"
    finally:
        await runner.cleanup()


async def _serve(config: SandboxConfig, port: int, host: str = HOST) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_sandbox(config, port, host) as url:
        print(
            f"Amazon SP-API sandbox on {url}  (LWA: {url}/auth/o2/token, control: "
            f"{url}/_sandbox/received; seed {config.seed}). Ctrl-C or SIGTERM stops it.",
            flush=True,
        )
        await stop.wait()
    print("sandbox stopped", flush=True)


def main(settings: Settings, port: int | None = None, seed: int = 1) -> int:
    """``streams sandbox amazon``: serve until SIGINT/SIGTERM; accepts ``settings``' LWA creds."""
    config = SandboxConfig.from_settings(settings, seed=seed)
    try:
        port = settings.sandbox_port if port is None else port
        asyncio.run(_serve(config, port, settings.sandbox_host))
    except OSError as exc:  # typically: port already in use
        print(f"cannot serve the sandbox: {exc}", file=sys.stderr)
        return 1
    return 0
