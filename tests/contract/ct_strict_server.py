"""A small, strict commercetools stand-in (aiohttp, 127.0.0.1) for what the Node emulator lacks.

It follows docs/commercetools.md: OAuth2 client credentials with
Basic auth and a configurable ``expires_in``; inventory query (Query Predicates with
``var.*``, ``sort``, ``limit`` <= 500, ``offset`` <= 10000), get and update with the
quantity actions (``addQuantity`` included, stock may go negative) and a version check that
answers 409 ConcurrentModification with or without ``currentVersion``; channels; and fault
injection (next N answers 5xx, with or without applying the request, delays, forced 401s,
a concurrent writer slipped in before an update). Error bodies that the reference has as
examples are served verbatim from ``tests/fixtures/commercetools``.
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from tests.support.httpserver import serve, shutdown

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "commercetools"
Json = dict[str, Any]


def example(name: str) -> Json:
    """A reference example payload, unchanged."""
    data: Json = orjson.loads((FIXTURES / name).read_bytes())
    return data


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _err(status: int, code: str, message: str, **extra: Any) -> web.Response:
    body = {
        "statusCode": status,
        "message": message,
        "errors": [{"code": code, "message": message, **extra}],
    }
    return _json(body, status)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


# --- Query Predicates (the subset the client and tests use) ----------------------------
_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)|(?P<var>:[A-Za-z_][\w]*)'
    r"|(?P<op>>=|<=|!=|<>|=|>|<|\(|\)|,)|(?P<word>[A-Za-z_][\w.]*))"
)


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"malformed predicate near {text[pos : pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup
        value = m.group(kind or "")
        if kind == "str":
            out.append(("val", orjson.loads(value)))
        elif kind == "num":
            out.append(("val", float(value) if "." in value else int(value)))
        elif kind == "word" and value.lower() in ("and", "or", "not", "in", "is", "defined"):
            out.append(("kw", value.lower()))
        elif kind == "word" and value in ("true", "false"):
            out.append(("val", value == "true"))
        else:
            out.append((kind or "", value))
    return out


Pred = Callable[[Any], bool]


class _Parser:
    def __init__(self, text: str, variables: Mapping[str, list[str]]) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.vars = variables

    def peek(self) -> tuple[str, Any] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, kind: str | None = None, value: Any = None) -> tuple[str, Any]:
        tok = self.peek()
        if tok is None or (kind and tok[0] != kind) or (value is not None and tok[1] != value):
            raise ValueError(f"unexpected {tok!r} in predicate, wanted {kind} {value}")
        self.i += 1
        return tok

    def parse(self) -> Pred:
        pred = self.or_expr()
        if self.peek() is not None:
            raise ValueError(f"trailing {self.peek()!r} in predicate")
        return pred

    def or_expr(self) -> Pred:
        parts = [self.and_expr()]
        while self.peek() == ("kw", "or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda o: any(p(o) for p in parts))

    def and_expr(self) -> Pred:
        parts = [self.unary()]
        while self.peek() == ("kw", "and"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda o: all(p(o) for p in parts))

    def unary(self) -> Pred:
        if self.peek() == ("kw", "not"):
            self.take()
            inner = self.unary()
            return lambda o: not inner(o)
        if self.peek() == ("op", "("):
            self.take()
            inner = self.or_expr()
            self.take("op", ")")
            return inner
        return self.comparison()

    def value(self) -> Any:
        kind, v = self.take()
        if kind == "val":
            return v
        if kind == "var":
            values = self.vars.get(v[1:])
            if values is None:
                raise ValueError(f"missing variable {v}")
            return values[0] if len(values) == 1 else values
        raise ValueError(f"expected a value, got {v!r}")

    def comparison(self) -> Pred:
        _, name = self.take("word")
        tok = self.peek()
        if tok == ("op", "("):  # nested: field(predicate)
            self.take()
            inner = self.or_expr()
            self.take("op", ")")
            return lambda o: (
                isinstance(o, dict) and isinstance(o.get(name), dict) and inner(o[name])
            )
        if tok == ("kw", "is"):
            self.take()
            negate = self.peek() == ("kw", "not")
            if negate:
                self.take()
            self.take("kw", "defined")
            return lambda o: (isinstance(o, dict) and name in o) != negate
        if tok == ("kw", "in") or tok == ("kw", "not"):
            negate = tok == ("kw", "not")
            if negate:
                self.take()
            self.take("kw", "in")
            if self.peek() == ("op", "("):
                self.take()
                items = [self.value()]
                while self.peek() == ("op", ","):
                    self.take()
                    items.append(self.value())
                self.take("op", ")")
            else:
                v = self.value()
                items = v if isinstance(v, list) else [v]
            return lambda o: isinstance(o, dict) and name in o and ((o[name] in items) != negate)
        _, op = self.take("op")
        rhs = self.value()
        ops: dict[str, Callable[[Any, Any], bool]] = {
            "=": lambda a, b: a == b,
            "!=": lambda a, b: a != b,
            "<>": lambda a, b: a != b,
            ">": lambda a, b: a > b,
            "<": lambda a, b: a < b,
            ">=": lambda a, b: a >= b,
            "<=": lambda a, b: a <= b,
        }
        fn = ops[op]

        def check(o: Any) -> bool:
            if not isinstance(o, dict) or name not in o:
                return False
            try:
                return fn(o[name], rhs)
            except TypeError:
                return False

        return check


def compile_predicate(text: str, variables: Mapping[str, list[str]]) -> Pred:
    return _Parser(text, variables).parse()


# --- server ----------------------------------------------------------------------------
@dataclass
class Fault:
    status: int
    apply: bool = False  # carry the request out, then answer the fault (a lost answer)
    delay: float = 0.0
    retry_after: str | None = None  # the answer's Retry-After header


@dataclass
class StrictServer:
    project_key: str = "strict-project"
    client_id: str = "strict-client"
    client_secret: str = "strict-secret-value"
    expires_in: int = 172800
    honour_sort: bool = True
    # 409 with currentVersion (like the Node mock) or the reference example without it
    conflict_current_version: bool = True
    inventory: dict[str, Json] = field(default_factory=dict)
    channels: dict[str, Json] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> loop time of expiry
    token_requests: list[Mapping[str, Any]] = field(default_factory=list)
    log: list[tuple[str, str, int]] = field(default_factory=list)  # method, path?query, status
    faults: deque[Fault] = field(default_factory=deque)
    forced_401: int = 0
    token_faults: deque[int] = field(default_factory=deque)  # statuses for next token calls
    # entry id -> actions a "concurrent writer" applies just before the next update of it
    interleave: dict[str, list[Json]] = field(default_factory=dict)
    url: str = ""
    _runner: web.AppRunner | None = None

    # --- control ---------------------------------------------------------------------
    def fail_next(
        self,
        n: int,
        status: int = 503,
        *,
        apply: bool = False,
        delay: float = 0.0,
        retry_after: str | None = None,
    ) -> None:
        self.faults.extend(Fault(status, apply, delay, retry_after) for _ in range(n))

    def force_401(self, n: int = 1) -> None:
        self.forced_401 += n

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def seed_inventory(
        self, n: int, *, sku_prefix: str = "SEED", channel_id: str | None = None
    ) -> list[str]:
        """Add ``n`` entries directly (no HTTP) for paging tests; returns their ids."""
        ids = []
        for i in range(n):
            draft: Json = {"sku": f"{sku_prefix}-{i:05d}", "quantityOnStock": i}
            if channel_id:
                draft["supplyChannel"] = {"typeId": "channel", "id": channel_id}
            ids.append(self._new_entry(draft)["id"])
        return ids

    def requests(self, method: str | None = None, contains: str = "") -> list[tuple[str, str, int]]:
        return [r for r in self.log if (method is None or r[0] == method) and contains in r[1]]

    async def start(self) -> str:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/oauth/token", self._token)
        pk = "/{project}"
        app.router.add_get(pk + "/inventory", self._query_inventory)
        app.router.add_post(pk + "/inventory", self._create_inventory)
        app.router.add_get(pk + "/inventory/{id}", self._get_inventory)
        app.router.add_post(pk + "/inventory/{id}", self._update_inventory)
        app.router.add_post(pk + "/channels", self._create_channel)
        app.router.add_get(pk + "/channels/{ref}", self._get_channel)
        self._runner, self.url = await serve(app)
        return self.url

    async def stop(self) -> None:
        await shutdown(self._runner)
        self._runner = None

    # --- plumbing --------------------------------------------------------------------
    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        resp: web.StreamResponse = await self._dispatch(request, handler)
        self.log.append((request.method, request.path_qs, resp.status))
        return resp

    async def _dispatch(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if request.path == "/oauth/token":
            resp: web.StreamResponse = await handler(request)
            return resp
        if request.match_info.get("project") != self.project_key:
            return _err(404, "ResourceNotFound", f"project {request.match_info.get('project')!r}")
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        loop = asyncio.get_running_loop()
        if self.forced_401 > 0:
            self.forced_401 -= 1
            return _json(example("Error/AuthErrorResponse.json"), 401)
        if token not in self.tokens or self.tokens[token] <= loop.time():
            return _json(example("Error/AuthErrorResponse.json"), 401)
        if self.faults:
            fault = self.faults.popleft()
            if fault.apply:
                await handler(request)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            codes = {502: "BadGateway", 503: "OverCapacity", 504: "GatewayTimeout", 500: "General"}
            answer = _err(
                fault.status, codes.get(fault.status, "General"), f"injected {fault.status}"
            )
            if fault.retry_after is not None:
                answer.headers["Retry-After"] = fault.retry_after
            return answer
        resp = await handler(request)
        return resp

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        q = request.query
        self.token_requests.append({"query": dict(q), "form": {k: str(v) for k, v in form.items()}})
        if self.token_faults:
            status = self.token_faults.popleft()
            return _err(status, "OverCapacity" if status == 503 else "General", "injected")
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            msg = "Please provide valid client credentials using HTTP Basic Authentication."
            body = {
                "statusCode": 401,
                "message": msg,
                "errors": [{"code": "invalid_client", "message": msg}],
                "error": "invalid_client",
            }
            return _json(body, 401)
        grant = q.get("grant_type") or form.get("grant_type")
        if grant != "client_credentials":
            return _err(400, "unsupported_grant_type", f"grant_type {grant!r} not supported")
        scope = str(q.get("scope") or form.get("scope") or f"manage_project:{self.project_key}")
        token = uuid.uuid4().hex
        self.tokens[token] = asyncio.get_running_loop().time() + self.expires_in
        return _json(
            {
                "access_token": token,
                "expires_in": self.expires_in,
                "scope": scope,
                "token_type": "Bearer",
            }
        )

    # --- inventory -------------------------------------------------------------------
    def _channel_ref(self, ref: Json) -> Json | None:
        if "id" in ref and "key" in ref:
            return None
        for ch in self.channels.values():
            if ch["id"] == ref.get("id") or ("key" in ref and ch["key"] == ref["key"]):
                return {"typeId": "channel", "id": ch["id"]}
        return None

    def _new_entry(self, draft: Json) -> Json:
        now = _now()
        entry: Json = {
            "id": str(uuid.uuid4()),
            "version": 1,
            "createdAt": now,
            "lastModifiedAt": now,
            **{k: v for k, v in draft.items() if k != "supplyChannel"},
            "availableQuantity": draft["quantityOnStock"],
        }
        if "supplyChannel" in draft:
            entry["supplyChannel"] = draft["supplyChannel"]
        self.inventory[entry["id"]] = entry
        return entry

    async def _create_inventory(self, request: web.Request) -> web.Response:
        draft = orjson.loads(await request.read())
        for name in ("sku", "quantityOnStock"):
            if name not in draft:
                return _err(
                    400, "RequiredField", f"A value is required for field {name}.", field=name
                )
        if "supplyChannel" in draft:
            ref = self._channel_ref(draft["supplyChannel"])
            if ref is None:
                return _err(400, "InvalidJsonInput", "supplyChannel must name one existing channel")
            draft["supplyChannel"] = ref
        for e in self.inventory.values():
            if e["sku"] == draft["sku"] and e.get("supplyChannel") == draft.get("supplyChannel"):
                return _err(400, "DuplicateField", "sku and supplyChannel exist", field="sku")
        return _json(self._new_entry(draft), 201)

    async def _get_inventory(self, request: web.Request) -> web.Response:
        entry = self.inventory.get(request.match_info["id"])
        if entry is None:
            rid = request.match_info["id"]
            return _err(404, "ResourceNotFound", f"The Resource with ID '{rid}' was not found.")
        return _json(entry)

    async def _query_inventory(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            limit = int(q.get("limit", "20"))
            offset = int(q.get("offset", "0"))
        except ValueError:
            return _err(400, "InvalidInput", "limit/offset must be integers")
        if not 0 <= limit <= 500 or not 0 <= offset <= 10000:
            return _err(400, "InvalidInput", "limit must be 0..500 and offset 0..10000")
        variables: dict[str, list[str]] = {}
        for k, v in q.items():
            if k.startswith("var."):
                variables.setdefault(k[4:], []).append(v)
        try:
            preds = [compile_predicate(w, variables) for w in q.getall("where", [])]
        except ValueError as exc:
            return _err(400, "InvalidInput", f"Malformed parameter: where: {exc}")
        rows = [e for e in self.inventory.values() if all(p(e) for p in preds)]
        if self.honour_sort:
            for spec in reversed(q.getall("sort", [])):
                name, _, direction = spec.partition(" ")
                rows.sort(
                    key=lambda e, n=name: (e.get(n) is None, e.get(n) or 0),  # type: ignore[misc]
                    reverse=direction.strip() == "desc",
                )
        page = rows[offset : offset + limit]
        body: Json = {"limit": limit, "offset": offset, "count": len(page), "results": page}
        if q.get("withTotal", "true") != "false":
            body["total"] = len(rows)
        return _json(body)

    async def _update_inventory(self, request: web.Request) -> web.Response:
        entry_id = request.match_info["id"]
        entry = self.inventory.get(entry_id)
        if entry is None:
            return _err(
                404, "ResourceNotFound", f"The Resource with ID '{entry_id}' was not found."
            )
        if entry_id in self.interleave:  # another writer gets in first
            self._apply(entry, self.interleave.pop(entry_id))
        body = orjson.loads(await request.read())
        if not isinstance(body.get("version"), int):
            return _err(
                400, "RequiredField", "A value is required for field version.", field="version"
            )
        if body["version"] != entry["version"]:
            if not self.conflict_current_version:
                return _json(example("error.example.json"), 409)
            msg = (
                f"Object {entry_id} has a different version than expected. "
                f"Expected: {body['version']} - Actual: {entry['version']}."
            )
            return _err(409, "ConcurrentModification", msg, currentVersion=entry["version"])
        try:
            updated = self._apply(dict(entry), body.get("actions") or [])
        except ValueError as exc:
            return _err(400, "InvalidInput", str(exc))
        self.inventory[entry_id] = updated
        return _json(updated)

    def _apply(self, entry: Json, actions: list[Json]) -> Json:
        """All actions or none; one version step per request; negative stock allowed."""
        work = dict(entry)
        for a in actions:
            kind = a.get("action")
            if kind in ("addQuantity", "removeQuantity", "changeQuantity"):
                qty = a.get("quantity")
                if not isinstance(qty, int):
                    raise ValueError(f"{kind}: quantity must be an integer")
                if kind == "addQuantity":
                    work["quantityOnStock"] += qty
                elif kind == "removeQuantity":
                    work["quantityOnStock"] -= qty
                else:
                    work["quantityOnStock"] = qty
                work["availableQuantity"] = work["quantityOnStock"]  # no reservations here
            elif kind == "setRestockableInDays":
                if a.get("restockableInDays") is None:
                    work.pop("restockableInDays", None)
                else:
                    work["restockableInDays"] = a["restockableInDays"]
            elif kind == "setKey":
                if a.get("key") is None:
                    work.pop("key", None)
                else:
                    work["key"] = a["key"]
            else:
                raise ValueError(f"Invalid action {kind}")
        work["version"] = entry["version"] + 1
        work["lastModifiedAt"] = _now()
        entry.clear()
        entry.update(work)
        return entry

    # --- channels --------------------------------------------------------------------
    async def _create_channel(self, request: web.Request) -> web.Response:
        draft = orjson.loads(await request.read())
        if not draft.get("key"):
            return _err(400, "RequiredField", "A value is required for field key.", field="key")
        if any(c["key"] == draft["key"] for c in self.channels.values()):
            return _err(
                400, "DuplicateField", "A duplicate value was found for field key.", field="key"
            )
        roles = draft.get("roles", ["InventorySupply"])
        if not roles:
            return _err(400, "InvalidOperation", "A channel needs at least one role.")
        now = _now()
        channel = {
            "id": str(uuid.uuid4()),
            "version": 1,
            "createdAt": now,
            "lastModifiedAt": now,
            **draft,
            "roles": roles,
        }
        self.channels[channel["id"]] = channel
        return _json(channel, 201)

    async def _get_channel(self, request: web.Request) -> web.Response:
        ref = request.match_info["ref"]
        for ch in self.channels.values():
            if (ref.startswith("key=") and ch["key"] == ref[4:]) or ch["id"] == ref:
                return _json(ch)
        return _err(404, "ResourceNotFound", f"The Resource with ID '{ref}' was not found.")
