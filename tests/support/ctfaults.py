"""A fault-injecting HTTP proxy in front of the commercetools emulator (127.0.0.1).

The worker's commands keep a ledger in a custom field of each inventory entry (Types,
``setCustomType`` / ``setCustomField``), which the strict stand-in of
``tests/contract/ct_strict_server.py`` does not implement; the proxy keeps the emulator's full
behaviour and adds what it lacks:

- ``fail_next(n, status, apply=...)``: the next ``n`` matching requests answer ``status``
  (502/503/504) - before reaching commercetools, or after it carried the request out (a lost
  answer);
- ``conflict_next(n, writer)``: before each of the next ``n`` inventory updates a concurrent
  writer changes that entry (``await writer(entry_id)`` straight at the emulator), so the
  update meets a real 409 ConcurrentModification;
- ``delay_next(n, seconds)``: slow answers;
- ``force_401(n)``: the next ``n`` API requests are refused as with an expired or revoked
  token; ``token_expires_in``: tokens are handed out with this lifetime (the client must
  renew them), and a token older than that is refused with 401 too.

``log`` records every exchange (method, path, status, injected or not).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import orjson
from aiohttp import web

from tests.support.httpserver import serve, shutdown

UPDATE = re.compile(r"^/[^/]+/inventory/[^/?]+$")
HOP = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}


def _error(status: int, code: str, message: str) -> web.Response:
    body = {
        "statusCode": status,
        "message": message,
        "errors": [{"code": code, "message": message}],
    }
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    injected: str = ""  # "", "5xx", "5xx-applied", "401", "expired", "conflict", "delay"


@dataclass
class CtFaultProxy:
    upstream: str
    token_expires_in: int | None = None
    log: list[Exchange] = field(default_factory=list)
    url: str = ""
    _fail: list[tuple[int, bool]] = field(default_factory=list)
    _conflicts: int = 0
    _writer: Callable[[str], Awaitable[None]] | None = None
    _delays: list[float] = field(default_factory=list)
    _force_401: int = 0
    _tokens: dict[str, float] = field(default_factory=dict)  # token -> monotonic expiry
    _runner: web.AppRunner | None = None
    _http: aiohttp.ClientSession | None = None

    # --- control -----------------------------------------------------------------------
    def fail_next(self, n: int, status: int = 503, *, apply: bool = False) -> None:
        self._fail.extend((status, apply) for _ in range(n))

    def conflict_next(self, n: int, writer: Callable[[str], Awaitable[None]]) -> None:
        self._conflicts += n
        self._writer = writer

    def delay_next(self, n: int, seconds: float) -> None:
        self._delays.extend([seconds] * n)

    def force_401(self, n: int) -> None:
        self._force_401 += n

    def pending(self) -> dict[str, int]:
        return {
            "5xx": len(self._fail),
            "conflicts": self._conflicts,
            "delays": len(self._delays),
            "401": self._force_401,
        }

    def count(self, injected: str) -> int:
        return sum(1 for e in self.log if e.injected == injected)

    # --- server ------------------------------------------------------------------------
    async def start(self) -> str:
        self._http = aiohttp.ClientSession(auto_decompress=True)
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.url = await serve(app)
        return self.url

    async def stop(self) -> None:
        await shutdown(self._runner)
        self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _forward(self, request: web.Request, body: bytes) -> tuple[int, bytes, str]:
        assert self._http is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        async with self._http.request(
            request.method, self.upstream + request.path_qs, data=body or None, headers=headers
        ) as r:
            return r.status, await r.read(), r.headers.get("Content-Type", "application/json")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path = request.path
        if path.startswith("/oauth/"):
            status, raw, ctype = await self._forward(request, body)
            if status == 200 and self.token_expires_in is not None:
                data = orjson.loads(raw)
                data["expires_in"] = self.token_expires_in
                self._tokens[data["access_token"]] = time.monotonic() + self.token_expires_in
                raw = orjson.dumps(data)
            self.log.append(Exchange(request.method, path, status))
            return web.Response(body=raw, status=status, content_type="application/json")
        injected = ""
        auth = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self._force_401 > 0:
            self._force_401 -= 1
            self.log.append(Exchange(request.method, path, 401, "401"))
            return _error(401, "invalid_token", "invalid_token")
        expiry = self._tokens.get(auth)
        if self.token_expires_in is not None and expiry is not None and expiry <= time.monotonic():
            self.log.append(Exchange(request.method, path, 401, "expired"))
            return _error(401, "invalid_token", "The access token expired")
        if self._delays:
            await asyncio.sleep(self._delays.pop(0))
            injected = "delay"
        is_update = request.method == "POST" and bool(UPDATE.match(path))
        if is_update and self._fail:
            status, apply = self._fail.pop(0)
            if apply:
                await self._forward(request, body)
            kind = "5xx-applied" if apply else "5xx"
            self.log.append(Exchange(request.method, path, status, kind))
            codes = {502: "BadGateway", 503: "OverCapacity", 504: "GatewayTimeout"}
            return _error(status, codes.get(status, "General"), f"injected {status}")
        if is_update and self._conflicts > 0 and self._writer is not None:
            self._conflicts -= 1
            await self._writer(path.rsplit("/", 1)[1])
            injected = "conflict"
        status, raw, ctype = await self._forward(request, body)
        self.log.append(Exchange(request.method, path, status, injected))
        return web.Response(body=raw, status=status, headers={"Content-Type": ctype})
