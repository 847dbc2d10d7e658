"""A test's own HTTP server: an aiohttp application on a free loopback port."""

from __future__ import annotations

from aiohttp import web


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on 127.0.0.1 at a port the system picks: its runner and base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def shutdown(runner: web.AppRunner | None) -> None:
    """Stop serving (nothing when ``runner`` is None: never started or stopped already)."""
    if runner is not None:
        await runner.cleanup()
