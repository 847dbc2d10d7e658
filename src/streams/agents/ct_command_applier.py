"""Applies inventory commands to commercetools, each exactly once (see
:mod:`streams.agents.ct_commands` for how); no Kafka here: the flow and tests drive it."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from streams.adapters.commercetools import (
    AuthError,
    CommercetoolsClient,
    CommercetoolsError,
    UpdateOutcomeUnknown,
)
from streams.agents.ct_ledger import LedgerRefused, LedgerTypes
from streams.domain.inventory_commands import InventoryCommand, Plan, entry_channel, plan_update
from streams.observability import metrics as M

log = logging.getLogger(__name__)

Outcome = Literal["applied", "duplicate", "dlq"]


class Abandoned(Exception):
    """Retrying stopped because the worker is rebalancing or stopping; not an outcome."""


@dataclass(frozen=True)
class Result:
    command: InventoryCommand
    outcome: Outcome
    entry_id: str | None = None
    version: int | None = None  # entry version that reflects the command
    reason: str | None = None


class CommandApplier:
    """Applies commands to commercetools; no Kafka here (the flow and tests drive it)."""

    def __init__(
        self,
        client: CommercetoolsClient,
        *,
        type_key: str,
        host_types: Sequence[str] = (),
        keep: int = 200,
        retry_s: float = 600.0,
        relative: bool = False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        abort: Callable[[], bool] = lambda: False,
    ) -> None:
        self.client = client
        self.type_key = type_key
        self.ledger = LedgerTypes(client, type_key=type_key, host_types=host_types)
        self.keep = keep
        self.chunk = max(1, keep // 2)  # the ids of one update never fall out of the ledger
        self.retry_s = retry_s
        self.relative = relative
        self.sleep = sleep
        self.abort = abort
        self._entry_ids: dict[tuple[str, str], str] = {}  # (sku, channel) -> entry id

    async def find_entry(self, sku: str, channel: str) -> dict[str, Any] | None:
        """The (sku, channel) entry, freshly read."""
        key = (sku, channel)
        cached = self._entry_ids.get(key)
        if cached is not None:
            entry = await self.client.get_inventory_entry(cached)
            if entry is not None and entry.get("sku") == sku and entry_channel(entry) == channel:
                return entry
            self._entry_ids.pop(key, None)
        matches = [
            e for e in await self.client.inventory_by_sku(sku) if entry_channel(e) == channel
        ]
        if not matches:
            return None
        if len(matches) > 1:  # the API forbids it; emulators do not check
            log.warning("%d inventory entries for (%s, %r); using %s", len(matches), sku,
                        channel, matches[0]["id"])  # fmt: skip
        if len(self._entry_ids) > 100_000:
            self._entry_ids.clear()
        self._entry_ids[key] = str(matches[0]["id"])
        return matches[0]

    async def apply(self, commands: Sequence[InventoryCommand]) -> list[Result]:
        """Apply commands of ONE (sku, supplyChannel), in order. Every outcome a command can
        have (applied, duplicate, dead-lettered) is a result; only cancellation and
        :class:`Abandoned` (``abort()`` said stop retrying) escape."""
        if not commands:
            return []
        sku, channel = commands[0].sku, commands[0].supplyChannel
        assert all((c.sku, c.supplyChannel) == (sku, channel) for c in commands)
        results: list[Result] = []
        for i in range(0, len(commands), self.chunk):
            results += await self._apply_chunk(sku, channel, list(commands[i : i + self.chunk]))
        return results

    async def _apply_chunk(
        self, sku: str, channel: str, chunk: list[InventoryCommand]
    ) -> list[Result]:
        deadline = time.monotonic() + self.retry_s
        maybe_ours: set[str] = set()  # sent in an update whose answer was lost
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.ledger.ensure()
                entry = await self.find_entry(sku, channel)
                if entry is None:
                    where = f"supply channel {channel!r}" if channel else "no supply channel"
                    reason = f"unknown inventory entry: no entry for sku {sku!r} with {where}"
                    return [Result(c, "dlq", reason=reason) for c in chunk]
                await self.ledger.check(entry)
                return await self._update(entry, chunk, maybe_ours)
            except LedgerRefused as exc:  # configuration: fail loudly, do not retry
                log.error("commands for %s not applied: %s", sku, exc, extra={"sku": sku})
                return [Result(c, "dlq", reason=str(exc)) for c in chunk]
            except UpdateOutcomeUnknown as exc:
                # may or may not have landed: the next read's marker says which
                log.warning(
                    "command update for %s outcome unknown (%s); re-reading", sku, exc,
                    extra={"sku": sku},
                )  # fmt: skip
                maybe_ours.update(c.commandId for c in chunk)
                error: Exception = exc
            except AuthError as exc:  # configuration, not the command: keep retrying
                error = exc
            except CommercetoolsError as exc:
                error = exc
                if exc.status == 404:  # entry deleted under us: look it up again
                    self._entry_ids.pop((sku, channel), None)
                elif exc.status == 400 and exc.has_code("ReferencedResourceNotFound"):
                    self.ledger.invalidate()  # our Type was deleted: create it again
                elif exc.status == 400:
                    # a definite refusal (e.g. a custom type without our field): not retried
                    reason = f"commercetools rejected the update: {exc}"
                    return [Result(c, "dlq", reason=reason) for c in chunk]
            except Exception as exc:  # a bug or an unexpected answer: retry, never drop
                log.exception("applying commands for %s failed", sku, extra={"sku": sku})
                error = exc
            for c in chunk:
                M.CT_COMMANDS.labels(c.action, "error").inc()
            if time.monotonic() >= deadline:
                reason = f"gave up after {attempt} attempts: {type(error).__name__}: {error}"
                return [Result(c, "dlq", reason=reason) for c in chunk]
            if self.abort():
                raise Abandoned(f"{sku}: stopped retrying ({type(error).__name__}: {error})")
            await self.sleep(min(30.0, 0.5 * 2 ** min(attempt, 6)) * random.uniform(0.5, 1.0))

    def _plan(self, entry: dict[str, Any], chunk: list[InventoryCommand]) -> Plan:
        return plan_update(
            entry, chunk, type_key=self.type_key, keep=self.keep, relative=self.relative
        )

    async def _update(
        self, entry: dict[str, Any], chunk: list[InventoryCommand], maybe_ours: set[str]
    ) -> list[Result]:
        plan = self._plan(entry, chunk)
        final: list[Plan] = [plan]
        if plan.actions:

            def decide(fresh: dict[str, Any]) -> list[dict[str, Any]] | None:
                # after a 409: plan again from what the entry holds now
                p = self._plan(fresh, chunk)
                final[0] = p
                return p.actions or None

            updated = await self.client.update_inventory(
                str(entry["id"]), plan.version, plan.actions, decide=decide
            )
        else:
            updated = entry
        version = int(updated["version"])
        done = final[0]
        eid = str(entry["id"])
        out = [Result(c, "applied", eid, version) for c in done.todo]
        out += [
            Result(c, "applied" if c.commandId in maybe_ours else "duplicate", eid, version)
            for c in done.duplicates
        ]
        order = {c.commandId: i for i, c in enumerate(chunk)}
        return sorted(out, key=lambda r: order.get(r.command.commandId, 0))
