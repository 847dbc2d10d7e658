"""A counting HTTP proxy between a worker and the commercetools emulator, for benchmarks.

The worker's ``STREAMS_CT_API_URL`` points here; every request is forwarded to the emulator
and counted by the flow that made it, which its query predicate tells: the storefront
re-reader asks ``sku in :skus``, the changed-since sweep ``lastModifiedAt`` windows. Both
report as operation ``inventory.query`` in the worker's own metrics.

It also works around one emulator gap: the emulator's query-string parser drops a
variable given more than 20 times (``var.skus=...`` x 21 matches nothing), which
commercetools accepts; such lists are written into the predicate instead
(``sku in ("A", "B", ...)``), which the emulator evaluates the same way.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter, defaultdict
from typing import Any

import aiohttp
from aiohttp import web

LIST_LIMIT = 20  # values per query-string variable the emulator's parser keeps


def kind_of(request: web.Request) -> str:
    """Which flow asked: the re-reader (``sku in``), the sweep (``lastModifiedAt``), other."""
    if request.method == "GET" and request.path.endswith("/inventory"):
        where = request.query.get("where", "")
        if "sku in" in where:
            return "reread"
        return "sweep" if "lastModifiedAt" in where else "inventory.query other"
    parts = request.path.strip("/").split("/")
    return f"{request.method} {parts[1] if len(parts) > 1 else parts[0]}"


def inline_lists(query: Any) -> list[tuple[str, str]]:
    """The query's parameters, with every variable of more than LIST_LIMIT values written
    into the predicate as a literal list."""
    lists = {k for k in query if k.startswith("var.") and len(query.getall(k)) > LIST_LIMIT}
    where = query.get("where")
    if not lists or where is None:
        return list(query.items())
    for k in lists:
        literal = "(" + ", ".join(json.dumps(v) for v in query.getall(k)) + ")"
        where = re.sub(rf":{re.escape(k[4:])}\b", literal.replace("\\", "\\\\"), where)
    kept = [(k, v) for k, v in query.items() if k not in lists and k != "where"]
    return [*kept, ("where", where)]


class CountingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.counts: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.seconds: dict[str, list[float]] = defaultdict(list)  # emulator answer times
        self.times: dict[str, list[float]] = defaultdict(list)  # when each request came
        self.http: aiohttp.ClientSession | None = None
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        assert self.http is not None
        kind = kind_of(request)
        self.times[kind].append(time.time())
        keep = ("Authorization", "Content-Type")
        headers = {k: v for k, v in request.headers.items() if k in keep}
        t0 = time.perf_counter()
        async with self.http.request(
            request.method,
            self.upstream + request.path,
            params=inline_lists(request.query),
            data=await request.read() or None,
            headers=headers,
        ) as r:
            body = await r.read()
            ctype = r.headers.get("Content-Type", "application/json")
            status = r.status
        self.counts[kind] += 1
        self.statuses[f"{kind} {status}"] += 1
        self.seconds[kind].append(time.perf_counter() - t0)
        return web.Response(body=body, status=status, headers={"Content-Type": ctype})

    async def start(self, port: int) -> str:
        """Serve on 127.0.0.1:port; returns the base URL."""
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.http is not None:
            await self.http.close()
