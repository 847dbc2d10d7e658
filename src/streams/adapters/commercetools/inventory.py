"""Inventory entries: reads (paged by id cursor), creates, and updates that answer a 409 by
re-reading and re-deciding, never by blindly overwriting."""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

from streams.adapters.commercetools.errors import CommercetoolsError, UpdateOutcomeUnknown
from streams.adapters.commercetools.transport import Action, CtTransport, Json, seg

Variables = Mapping[str, str | Sequence[str]]
DecideResult = Sequence[Action] | None
Decide = Callable[[Json], DecideResult | Awaitable[DecideResult]]

RELATIVE_ACTIONS = frozenset({"addQuantity", "removeQuantity"})
MAX_LIMIT = 500  # API maximum page size
# Pages at least this big make a chance-sorted page from a server that ignores `sort`
# (probability 1/20!) impossible in practice; see query_inventory.
MIN_PAGE = 20
CURSOR_VAR = "streamsAfterId"


def variable_params(variables: Variables | None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, value in (variables or {}).items():
        if isinstance(value, str):
            out.append((f"var.{name}", value))
        else:  # repeated var.<name> = a list input, e.g. `sku in :skus`
            out.extend((f"var.{name}", v) for v in value)
    return out


class InventoryApi:
    def __init__(self, http: CtTransport, *, max_conflict_retries: int = 10) -> None:
        self._http = http
        self.max_conflict_retries = max_conflict_retries

    async def get(self, entry_id: str) -> Json | None:
        entry: Json | None = await self._http.call(
            "GET", f"/inventory/{seg(entry_id)}", operation="inventory.get", allow_404=True
        )
        return entry

    async def query(
        self, where: str | None = None, variables: Variables | None = None, limit: int = MAX_LIMIT
    ) -> AsyncIterator[Json]:
        """Every entry matching ``where`` in ascending ``id`` order (see
        :meth:`~streams.adapters.commercetools.CommercetoolsClient.query_inventory`).

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
        base = variable_params(variables)
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
            page = await self._http.call(
                "GET", "/inventory", operation="inventory.query", params=params
            )
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
            page = await self._http.call(
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

    async def create(self, draft: Json) -> Json:
        entry: Json = await self._http.call(
            "POST", "/inventory", operation="inventory.create", kind="create", body=draft
        )
        return entry

    async def update(
        self,
        entry_id: str,
        version: int,
        actions: Sequence[Action],
        *,
        retry_conflicts: bool = True,
        decide: Decide | None = None,
    ) -> Json:
        """Apply ``actions`` at ``version``; a 409 is answered as
        :meth:`~streams.adapters.commercetools.CommercetoolsClient.update_inventory` says."""
        path = f"/inventory/{seg(entry_id)}"
        todo = list(actions)
        conflicts = 0
        while True:
            try:
                return await self._http.update(path, "inventory.update", version, todo)
            except UpdateOutcomeUnknown:
                raise
            except CommercetoolsError as exc:
                if not (
                    retry_conflicts
                    and exc.status == 409
                    and exc.has_code("ConcurrentModification")
                    and conflicts < self.max_conflict_retries
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
                entry = await self.get(entry_id)
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
