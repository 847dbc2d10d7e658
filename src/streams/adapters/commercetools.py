"""commercetools HTTP API client (aiohttp): OAuth2 client credentials, inventory, channels, orders.

Behaviour follows docs/commercetools.md: token cached until shortly
before ``expires_in`` and re-fetched once on a 401; 502/503/504 and connection errors retried
with jittered exponential backoff; 409 ConcurrentModification answered by re-reading and
re-deciding, never by blindly overwriting. Secrets (client secret, tokens) are kept in
``SecretStr`` and scrubbed from error messages; they never reach logs or reprs.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self
from urllib.parse import quote

import aiohttp
import orjson
from pydantic import SecretStr
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from streams.adapters.codecs import redact
from streams.config import Settings

if TYPE_CHECKING:
    from streams.domain.ports import InventoryEntryReader, InventoryQuery, OrderReader

log = logging.getLogger(__name__)

Json = dict[str, Any]
Action = dict[str, Any]
Variables = Mapping[str, str | Sequence[str]]
DecideResult = Sequence[Action] | None
Decide = Callable[[Json], DecideResult | Awaitable[DecideResult]]
# how a request may be retried: "read" (idempotent), "versioned" (an update guarded by
# `version`: re-sending the same body applies at most once), "create" (not idempotent)
Kind = Literal["read", "versioned", "create"]

TRANSIENT_STATUS = frozenset({502, 503, 504})
# 502/504 come from a gateway that may have forwarded the request: the write may have landed
AMBIGUOUS_STATUS = frozenset({502, 504})
RELATIVE_ACTIONS = frozenset({"addQuantity", "removeQuantity"})
MAX_LIMIT = 500  # API maximum page size
# Pages at least this big make a chance-sorted page from a server that ignores `sort`
# (probability 1/20!) impossible in practice; see query_inventory.
MIN_PAGE = 20
CURSOR_VAR = "streamsAfterId"


class CommercetoolsError(Exception):
    """A non-success answer, carrying the API's ErrorResponse (``statusCode``/``errors``).

    ``status`` is 0 when no HTTP answer arrived (connection error or timeout).
    """

    def __init__(self, status: int, errors: list[dict[str, Any]], message: str) -> None:
        super().__init__(status, errors, message)
        self.status = status
        self.errors = errors
        self.message = message

    def __str__(self) -> str:
        return f"commercetools {self.status}: {self.message}"

    @property
    def codes(self) -> list[str]:
        return [str(e.get("code")) for e in self.errors if isinstance(e, dict)]

    def has_code(self, code: str) -> bool:
        return code in self.codes

    @property
    def current_version(self) -> int | None:
        """``currentVersion`` of a ConcurrentModification error, when the API sent one."""
        for e in self.errors:
            v = e.get("currentVersion") if isinstance(e, dict) else None
            if isinstance(v, int):
                return v
        return None


class AuthError(CommercetoolsError):
    """The token endpoint refused or failed (after its own retries). Requests waiting for
    the token were not sent, so callers' retry loops do not repeat it."""


class UpdateOutcomeUnknown(CommercetoolsError):
    """An update attempt got no definite answer (timeout, 502/504, dropped connection) and
    the request then failed: it may or may not have been applied. Not re-sent, because a
    relative action could apply twice and a re-decided one could build on our own write;
    re-read the resource and reconcile."""


class ClientHooks(Protocol):
    """Observer of every HTTP exchange (metrics). ``status`` is 0 when no answer arrived."""

    def on_response(self, operation: str, status: int, seconds: float) -> None: ...


class _Token:
    __slots__ = ("renew_at", "secret")

    def __init__(self, value: str, renew_at: float) -> None:
        self.secret = SecretStr(value)
        self.renew_at = renew_at

    def __repr__(self) -> str:
        return "_Token(****)"


@dataclass
class _SendState:
    ambiguous: bool = False


def _seg(value: str) -> str:
    """One URL path segment (ids, keys and order numbers are caller data)."""
    return quote(value, safe="")


def _is_ambiguous(exc: BaseException) -> bool:
    if isinstance(exc, AuthError):
        return False  # no token, nothing sent
    if isinstance(exc, CommercetoolsError):
        return exc.status in AMBIGUOUS_STATUS
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return False  # never connected: the request was not sent
    return isinstance(exc, aiohttp.ClientError | TimeoutError)


def _retryable(kind: Kind, exc: BaseException) -> bool:
    if isinstance(exc, AuthError):
        return False  # already retried by the token fetch itself
    if isinstance(exc, CommercetoolsError):
        if kind == "create":
            return exc.status == 503  # OverCapacity/PendingOperation: not carried out
        return exc.status in TRANSIENT_STATUS
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return True
    if isinstance(exc, aiohttp.ClientError | TimeoutError):
        # a create has no version guard: after a lost answer a retry could duplicate it
        return kind != "create"
    return False


def _variable_params(variables: Variables | None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, value in (variables or {}).items():
        if isinstance(value, str):
            out.append((f"var.{name}", value))
        else:  # repeated var.<name> = a list input, e.g. `sku in :skus`
            out.extend((f"var.{name}", v) for v in value)
    return out


class CommercetoolsClient:
    """Async client for one commercetools project; use as ``async with``.

    ``session`` may be shared (it is then not closed here); it must not set
    ``raise_for_status``. ``hooks.on_response`` sees every exchange, token requests included.
    """

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession | None = None,
        *,
        hooks: ClientHooks | None = None,
        max_attempts: int = 5,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        max_conflict_retries: int = 10,
    ) -> None:
        self._api = settings.ct_api_url.rstrip("/")
        self._auth_url = settings.ct_auth_url.rstrip("/")
        self._project = settings.ct_project_key
        self._client_id = settings.ct_client_id
        self._client_secret = settings.ct_client_secret
        self._scopes = settings.ct_scopes.strip()
        self._timeout = aiohttp.ClientTimeout(total=settings.ct_timeout_s)
        self._session = session
        self._own_session = session is None
        self._hooks = hooks
        self._max_attempts = max(1, max_attempts)
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._max_conflict_retries = max_conflict_retries
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"CommercetoolsClient(project={self._project!r}, api={self._api!r})"

    async def __aenter__(self) -> Self:
        self._get_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    # --- HTTP plumbing -----------------------------------------------------------------
    def _redact(self, text: str) -> str:
        secrets = [self._client_secret.get_secret_value()]
        if self._token is not None:
            secrets.append(self._token.secret.get_secret_value())
        return redact(text, secrets, basic_user=self._client_id)

    def _error(self, operation: str, status: int, body: Any) -> CommercetoolsError:
        errors: list[dict[str, Any]] = []
        message = f"HTTP {status}"
        if isinstance(body, dict):
            raw = body.get("errors")
            if isinstance(raw, list):
                errors = [e for e in raw if isinstance(e, dict)]
            elif "error" in body:  # OAuth2 (RFC 6749 §5.2) style from the auth endpoint
                errors = [{"code": body["error"], "message": body.get("error_description", "")}]
            message = str(body.get("message") or (errors[0].get("message") if errors else message))
        return CommercetoolsError(status, errors, self._redact(f"{operation}: {message}"))

    def _emit(self, operation: str, status: int, seconds: float) -> None:
        log.debug("commercetools %s -> %s in %.3fs", operation, status or "no answer", seconds)
        if self._hooks is not None:
            try:
                self._hooks.on_response(operation, status, seconds)
            except Exception:  # a metrics bug must not fail the call
                log.exception("commercetools hook failed for %s", operation)

    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        params: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: aiohttp.BasicAuth | None = None,
    ) -> tuple[int, Any]:
        """One HTTP request; returns (status, parsed JSON body or None)."""
        hdrs = dict(headers or {})
        data: Any = None
        if body is not None:
            data = orjson.dumps(body)
            hdrs["Content-Type"] = "application/json"
        elif form is not None:
            data = dict(form)
        started = time.perf_counter()
        status = 0
        try:
            async with self._get_session().request(
                method,
                url,
                params=list(params) if params else None,
                data=data,
                headers=hdrs,
                auth=auth,
                timeout=self._timeout,
            ) as resp:
                status = resp.status
                raw = await resp.read()
        finally:
            self._emit(operation, status, time.perf_counter() - started)
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = None  # e.g. an HTML error page from a proxy
        return status, parsed

    async def _retrying(
        self,
        operation: str,
        kind: Kind,
        once: Callable[[], Awaitable[Any]],
        state: _SendState | None = None,
    ) -> Any:
        """Run ``once`` with jittered exponential backoff on transient failures."""
        st = state or _SendState()

        async def tracked() -> Any:
            try:
                return await once()
            except Exception as exc:
                if _is_ambiguous(exc):
                    st.ambiguous = True
                raise

        def before_sleep(rs: RetryCallState) -> None:
            exc = rs.outcome.exception() if rs.outcome else None
            log.warning(
                "commercetools %s attempt %d failed (%s); retrying",
                operation,
                rs.attempt_number,
                exc if isinstance(exc, CommercetoolsError) else type(exc).__name__,
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=wait_exponential_jitter(
                initial=self._backoff_initial,
                max=self._backoff_max,
                jitter=self._backoff_initial,
            ),
            retry=retry_if_exception(lambda e: _retryable(kind, e)),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await tracked()
        except (aiohttp.ClientError, TimeoutError) as exc:
            # str(exc) of aiohttp errors names host/port at most, never headers
            err = [{"code": "TransportError", "message": type(exc).__name__}]
            raise CommercetoolsError(
                0, err, self._redact(f"{operation}: no answer ({type(exc).__name__}: {exc})")
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # --- auth ------------------------------------------------------------------------
    async def _get_token(self) -> _Token:
        tok = self._token
        if tok is not None and time.monotonic() < tok.renew_at:
            return tok
        async with self._token_lock:  # one fetch for all concurrent callers
            tok = self._token
            if tok is None or time.monotonic() >= tok.renew_at:
                tok = self._token = await self._fetch_token()
            return tok

    def _invalidate(self, tok: _Token) -> None:
        # only the token that got the 401: a concurrent caller may have renewed it already
        if self._token is tok:
            self._token = None

    async def _fetch_token(self) -> _Token:
        fields = {"grant_type": "client_credentials"}
        if self._scopes:
            fields["scope"] = self._scopes
        url = f"{self._auth_url}/oauth/token"
        basic = aiohttp.BasicAuth(self._client_id, self._client_secret.get_secret_value())

        async def once() -> Json:
            # The RAML declares grant_type/scope as query parameters, clients usually send a
            # form body, and the Node emulator reads scope only from the query: send both.
            status, body = await self._exchange(
                "POST", url, operation="token", params=list(fields.items()), form=fields, auth=basic
            )
            if status != 200 or not isinstance(body, dict):
                raise self._error("token", status, body)
            return body

        try:
            body: Json = await self._retrying("token", "read", once)
        except CommercetoolsError as exc:
            raise AuthError(exc.status, exc.errors, exc.message) from exc
        value = body.get("access_token")
        if not isinstance(value, str) or not value:
            raise AuthError(200, [], "token: response without access_token")
        expires_in = float(body.get("expires_in") or 3600)
        # renew ahead of expiry (a fifth of the lifetime, at most 5 minutes) so a request
        # never leaves with a token that expires in flight
        renew_at = time.monotonic() + expires_in - min(300.0, expires_in / 5)
        return _Token(value, renew_at)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        kind: Kind = "read",
        params: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
        allow_404: bool = False,
        state: _SendState | None = None,
    ) -> Any:
        """An authenticated project request; returns the JSON body (None for an allowed 404)."""
        url = f"{self._api}/{_seg(self._project)}{path}"

        async def send() -> tuple[int, Any]:
            tok = await self._get_token()
            auth = {"Authorization": f"Bearer {tok.secret.get_secret_value()}"}
            status, data = await self._exchange(
                method, url, operation=operation, params=params, body=body, headers=auth
            )
            if status == 401:  # expired or revoked early: new token, retry once
                self._invalidate(tok)
                tok = await self._get_token()
                auth = {"Authorization": f"Bearer {tok.secret.get_secret_value()}"}
                status, data = await self._exchange(
                    method, url, operation=operation, params=params, body=body, headers=auth
                )
            return status, data

        async def once() -> Any:
            status, data = await send()
            if 200 <= status < 300:
                return data
            if status == 404 and allow_404:
                return None
            raise self._error(operation, status, data)

        return await self._retrying(operation, kind, once, state)

    async def _update(
        self, path: str, operation: str, version: int, actions: Sequence[Action]
    ) -> Json:
        """A versioned update; re-sending the same version after a lost answer is safe."""
        state = _SendState()
        try:
            result: Json = await self._call(
                "POST",
                path,
                operation=operation,
                kind="versioned",
                body={"version": version, "actions": list(actions)},
                state=state,
            )
        except CommercetoolsError as exc:
            if state.ambiguous and (exc.status in (0, 409) or exc.status >= 500):
                raise UpdateOutcomeUnknown(
                    exc.status,
                    exc.errors,
                    f"{operation}: an earlier attempt got no answer, outcome unknown "
                    f"({exc.message})",
                ) from exc
            raise
        return result

    # --- inventory -------------------------------------------------------------------
    async def get_inventory_entry(self, entry_id: str) -> Json | None:
        """The entry as the API's JSON, or None when it does not exist."""
        entry: Json | None = await self._call(
            "GET", f"/inventory/{_seg(entry_id)}", operation="inventory.get", allow_404=True
        )
        return entry

    async def query_inventory(
        self,
        where: str | None = None,
        variables: Variables | None = None,
        limit: int = MAX_LIMIT,
    ) -> AsyncIterator[Json]:
        """Every entry matching ``where`` (a Query Predicate; ``:name`` placeholders bound by
        ``variables``), in ascending ``id`` order. ``limit`` is the page size (20..500).

        Pages by ``sort=id asc`` + ``id > :last`` because ``offset`` is capped at 10000.
        A server that ignores ``sort`` (the Node emulator over HTTP) would make that cursor
        skip entries, so every full page is checked to be id-sorted; the first one that is
        not switches this scan to limit/offset paging (storage order is stable there), with
        de-duplication and a client-side sort so callers see the same order either way. The
        fallback buffers the rest of the scan in memory and is bounded by the offset cap;
        it exists for emulators, real projects take the cursor path.
        """
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be within 1..{MAX_LIMIT}")
        if variables and CURSOR_VAR in variables:
            raise ValueError(f"variable name {CURSOR_VAR!r} is reserved")
        page_size = max(limit, MIN_PAGE)
        base = _variable_params(variables)
        after: str | None = None
        while True:
            clauses = [f"({where})"] if where else []
            params = list(base)
            if after is not None:
                clauses.append(f"id > :{CURSOR_VAR}")
                params.append((f"var.{CURSOR_VAR}", after))
            if clauses:
                params.append(("where", " and ".join(clauses)))
            params += [("sort", "id asc"), ("limit", str(page_size)), ("withTotal", "false")]
            page = await self._call("GET", "/inventory", operation="inventory.query", params=params)
            results: list[Json] = list(page.get("results") or [])
            ids = [str(r["id"]) for r in results]
            if len(results) < page_size:
                # the last page holds every remaining match whatever the server's order
                for r in sorted(results, key=lambda r: str(r["id"])):
                    yield r
                return
            if ids != sorted(ids):
                async for r in self._offset_scan(params, results, page_size):
                    yield r
                return
            for r in results:
                yield r
            after = ids[-1]

    async def _offset_scan(
        self, params: list[tuple[str, str]], first: list[Json], page_size: int
    ) -> AsyncIterator[Json]:
        """Fallback for servers that ignore ``sort``: limit/offset over the same query."""
        seen: dict[str, Json] = {str(r["id"]): r for r in first}
        offset = len(first)
        while True:
            page = await self._call(
                "GET",
                "/inventory",
                operation="inventory.query",
                params=[*params, ("offset", str(offset))],
            )
            results: list[Json] = list(page.get("results") or [])
            for r in results:
                seen.setdefault(str(r["id"]), r)
            if len(results) < page_size:
                break
            offset += len(results)
        for key in sorted(seen):
            yield seen[key]

    async def inventory_by_sku(self, sku: str) -> list[Json]:
        """All entries of one SKU (one per supply channel, plus the channel-less one)."""
        return [e async for e in self.query_inventory("sku = :sku", {"sku": sku})]

    def inventory_by_channel(self, channel_id: str) -> AsyncIterator[Json]:
        """Every entry supplied by one channel (warehouse)."""
        return self.query_inventory("supplyChannel(id = :channelId)", {"channelId": channel_id})

    async def inventory_of_skus(self, skus: Sequence[str]) -> list[Json]:
        """All entries of many SKUs in one query (paged past 500 entries)."""
        if not skus:
            return []
        return [e async for e in self.query_inventory("sku in :skus", {"skus": list(skus)})]

    def inventory_modified_between(self, start: str, end: str) -> AsyncIterator[Json]:
        """Entries whose ``lastModifiedAt`` lies in [start, end] (ISO-8601), in id order: a
        closed window is complete whatever order the server sorts by."""
        where = "lastModifiedAt >= :modifiedFrom and lastModifiedAt <= :modifiedTo"
        return self.query_inventory(where, {"modifiedFrom": start, "modifiedTo": end})

    async def create_inventory_entry(self, draft: Json) -> Json:
        entry: Json = await self._call(
            "POST", "/inventory", operation="inventory.create", kind="create", body=draft
        )
        return entry

    async def update_inventory(
        self,
        entry_id: str,
        version: int,
        actions: Sequence[Action],
        *,
        retry_conflicts: bool = True,
        decide: Decide | None = None,
    ) -> Json:
        """Apply ``actions`` at ``version``; returns the updated entry.

        On 409 ConcurrentModification (with ``retry_conflicts``):

        * with ``decide``: re-read the entry and send ``decide(entry)`` at its version
          (None or no actions = nothing left to do, the fresh entry is returned). This is how
          absolute actions (changeQuantity) are retried: re-decided, never overwritten;
        * else, if every action is relative (add/removeQuantity): re-send them at the
          error's ``currentVersion``, or at a re-read version when the error has none;
        * else the 409 is raised: re-sending absolute actions would clobber the other writer.

        Only a 409 proves the attempt was not applied; after a timeout or 502/504 a later
        failure raises ``UpdateOutcomeUnknown`` instead of re-sending anything.
        """
        path = f"/inventory/{_seg(entry_id)}"
        todo = list(actions)
        conflicts = 0
        while True:
            try:
                return await self._update(path, "inventory.update", version, todo)
            except UpdateOutcomeUnknown:
                raise
            except CommercetoolsError as exc:
                if not (
                    retry_conflicts
                    and exc.status == 409
                    and exc.has_code("ConcurrentModification")
                    and conflicts < self._max_conflict_retries
                ):
                    raise
                conflicts += 1
                relative = all(a.get("action") in RELATIVE_ACTIONS for a in todo)
                if decide is None and not relative:
                    raise
                # small jittered pause so competing writers do not collide in lockstep
                await asyncio.sleep(random.uniform(0, min(0.5, 0.005 * 2**conflicts)))
                if decide is None and exc.current_version is not None:
                    version = exc.current_version
                    continue
                entry = await self.get_inventory_entry(entry_id)
                if entry is None:
                    raise CommercetoolsError(
                        404,
                        [{"code": "ResourceNotFound", "message": f"{entry_id} is gone"}],
                        f"inventory.update: entry {entry_id} was deleted during a retry",
                    ) from exc
                version = int(entry["version"])
                if decide is not None:
                    decided = decide(entry)
                    if inspect.isawaitable(decided):
                        decided = await decided
                    if not decided:
                        return entry
                    todo = list(decided)

    # --- channels --------------------------------------------------------------------
    async def channel_by_key(self, key: str) -> Json | None:
        channel: Json | None = await self._call(
            "GET", f"/channels/key={_seg(key)}", operation="channel.get", allow_404=True
        )
        return channel

    async def create_channel(self, draft: Json) -> Json:
        channel: Json = await self._call(
            "POST", "/channels", operation="channel.create", kind="create", body=draft
        )
        return channel

    # --- orders (finance feature) ----------------------------------------------------
    async def create_order_import(self, draft: Json) -> Json:
        """POST /orders/import (an OrderImportDraft); 201 on the API, 200 on the emulator."""
        order: Json = await self._call(
            "POST", "/orders/import", operation="order.import", kind="create", body=draft
        )
        return order

    async def get_order(self, order_id: str) -> Json | None:
        order: Json | None = await self._call(
            "GET", f"/orders/{_seg(order_id)}", operation="order.get", allow_404=True
        )
        return order

    async def get_order_by_number(self, order_number: str) -> Json | None:
        order: Json | None = await self._call(
            "GET",
            f"/orders/order-number={_seg(order_number)}",
            operation="order.get",
            allow_404=True,
        )
        return order

    async def update_order(self, order_id: str, version: int, actions: Sequence[Action]) -> Json:
        """A versioned order update; a 409 is raised for the caller to re-read and re-decide."""
        return await self._update(f"/orders/{_seg(order_id)}", "order.update", version, actions)


if TYPE_CHECKING:

    def _satisfies_port(client: CommercetoolsClient) -> InventoryEntryReader:
        return client  # mypy checks CommercetoolsClient against the port

    def _satisfies_order_port(client: CommercetoolsClient) -> OrderReader:
        return client

    def _satisfies_query_port(client: CommercetoolsClient) -> InventoryQuery:
        return client
