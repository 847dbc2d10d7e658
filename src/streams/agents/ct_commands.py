"""Command flow: ``ct.inventory-commands`` -> commercetools, each command applied exactly once.

    ct.inventory-commands ──ct_commands──> commercetools (one versioned update per entry)
            │                    ├──> <app>-sku-events  {"t": "applied", ...} (key: SKU)
            │                    └──> ops.exceptions (unknown entry, rejected, gave up)
            └── bad / unknown ─────> ct.inventory-commands.dlq

Exactly once without a distributed transaction: the entry itself records which commands it
has seen (a custom field, see :mod:`streams.domain.inventory_commands`), and the quantity
change and that marker are written by ONE versioned request. So:

* the worker dies after commercetools answered but before the offset commit: the command is
  redelivered, the fresh read shows its id, nothing is written, the confirmation is re-sent;
* two workers (a rebalance) or any other writer race on the entry: the loser's update fails
  with 409 and is re-planned from a fresh read (which may show the command already applied);
* the answer is lost (timeout, 502/504): the entry is re-read and the marker decides;
* commercetools is down: the command is retried (``ct_command_retry_s``, then DLQ and an
  exception); a rebalance or shutdown stops the retries and leaves it uncommitted, so the
  partition's next owner applies it. Events are acked one by one once final, never as a
  batch (see :meth:`CtCommandFlow.agent`).

Confirmations go to the SKU agent, which stops counting an allocation once commercetools'
stock shows it; they are at least once and carry the command id, so repeats are harmless.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import faust
from faust.types import EventT

from streams.adapters.codecs import dumps
from streams.adapters.commercetools import (
    AuthError,
    CommercetoolsClient,
    CommercetoolsError,
    UpdateOutcomeUnknown,
)
from streams.agents.clients import LazyClient
from streams.agents.reports import DeadLetters, ExceptionReporter
from streams.config import Settings
from streams.domain.ctmessages import BadRecord
from streams.domain.exceptions import Refs
from streams.domain.inventory_commands import (
    LEDGER_FIELD,
    InventoryCommand,
    Plan,
    entry_channel,
    ledger_field_definition,
    ledger_host,
    ledger_type_draft,
    parse_command,
    plan_update,
    refusal,
)
from streams.observability import metrics as M
from streams.runtime.consumer import release_unacked
from streams.topics import WEEK_MS

log = logging.getLogger(__name__)

Outcome = Literal["applied", "duplicate", "dlq"]
EXCEPTION_KIND = "ct-command-failed"


class Abandoned(Exception):
    """Retrying stopped because the worker is rebalancing or stopping; not an outcome."""


@dataclass(frozen=True)
class Result:
    command: InventoryCommand
    outcome: Outcome
    entry_id: str | None = None
    version: int | None = None  # entry version that reflects the command
    reason: str | None = None


class LedgerRefused(Exception):
    """The entry's custom Type cannot hold the ledger and may not be changed (see reason)."""


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
        self.host_types = tuple(host_types)
        self._types: dict[str, dict[str, Any]] = {}  # Type id -> Type, as last read or updated
        self.keep = keep
        self.chunk = max(1, keep // 2)  # the ids of one update never fall out of the ledger
        self.retry_s = retry_s
        self.relative = relative
        self.sleep = sleep
        self.abort = abort
        self._ready = False
        self._ready_lock = asyncio.Lock()
        self._entry_ids: dict[tuple[str, str], str] = {}  # (sku, channel) -> entry id

    async def ensure_type(self) -> None:
        """Create the ledger Type once (idempotent; also adds our field to an existing one)."""
        if self._ready:
            return
        async with self._ready_lock:
            if self._ready:
                return
            found = await self.client.get_type_by_key(self.type_key)
            if found is None:
                try:
                    await self.client.create_type(ledger_type_draft(self.type_key))
                except CommercetoolsError as exc:
                    # another worker created it first (DuplicateField) - fine, read it back
                    if exc.status != 400:
                        raise
                    if await self.client.get_type_by_key(self.type_key) is None:
                        raise
            elif not any(f.get("name") == LEDGER_FIELD for f in found.get("fieldDefinitions", [])):
                await self._add_ledger_field(found)
            await self._check_hosts()
            self._ready = True

    async def _add_ledger_field(self, type_: dict[str, Any]) -> dict[str, Any]:
        action = {"action": "addFieldDefinition", "fieldDefinition": ledger_field_definition()}
        try:
            updated = await self.client.update_type(
                str(type_["id"]), int(type_["version"]), [action]
            )
        except CommercetoolsError as exc:
            # added meanwhile (another worker: 400 DuplicateField, or 409): read it back
            if exc.status not in (400, 409):
                raise
            fresh = await self.client.get_type(str(type_["id"]))
            if fresh is None or ledger_host(fresh, self.type_key, ()) != "ok":
                raise
            updated = fresh
        log.info("added the ledger field %s to custom Type %s", LEDGER_FIELD, type_.get("key"))
        self._types[str(updated["id"])] = updated
        return updated

    async def _check_hosts(self) -> None:
        """At start-up: every Type inventory entries may carry either holds the ledger field,
        gets it (a Type named in ``host_types``), or is reported: its entries' commands
        would be refused."""
        for t in await self.client.types_for("inventory-entry"):
            decision = ledger_host(t, self.type_key, self.host_types)
            if decision == "add-field":
                t = await self._add_ledger_field(t)
            elif decision == "refuse":
                log.error("%s", refusal(t))
            self._types[str(t["id"])] = t
        for key in self.host_types:
            if await self.client.get_type_by_key(key) is None:
                log.error("STREAMS_CT_LEDGER_HOST_TYPES names Type %r, which does not exist", key)

    async def _ledger_on(self, entry: dict[str, Any]) -> None:
        """Make sure the entry's custom Type (if any) holds the ledger field, or refuse."""
        custom = entry.get("custom")
        ref = custom.get("type") if isinstance(custom, dict) else None
        if not isinstance(ref, dict) or not ref.get("id"):
            return  # no Type yet: the plan sets ours
        type_id = str(ref["id"])
        t = self._types.get(type_id)
        if t is None:
            t = await self.client.get_type(type_id)
            if t is None:
                return  # deleted meanwhile: the update says what is wrong
            self._types[type_id] = t
        decision = ledger_host(t, self.type_key, self.host_types)
        if decision == "add-field":
            await self._add_ledger_field(t)
        elif decision == "refuse":
            self._types.pop(type_id, None)  # read again next time: someone may add the field
            raise LedgerRefused(refusal(t, str(entry.get("id"))))

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
                await self.ensure_type()
                entry = await self.find_entry(sku, channel)
                if entry is None:
                    where = f"supply channel {channel!r}" if channel else "no supply channel"
                    reason = f"unknown inventory entry: no entry for sku {sku!r} with {where}"
                    return [Result(c, "dlq", reason=reason) for c in chunk]
                await self._ledger_on(entry)
                return await self._update(entry, chunk, maybe_ours)
            except LedgerRefused as exc:  # configuration: fail loudly, do not retry
                log.error("commands for %s not applied: %s", sku, exc)
                return [Result(c, "dlq", reason=str(exc)) for c in chunk]
            except UpdateOutcomeUnknown as exc:
                # may or may not have landed: the next read's marker says which
                log.warning("command update for %s outcome unknown (%s); re-reading", sku, exc)
                maybe_ours.update(c.commandId for c in chunk)
                error: Exception = exc
            except AuthError as exc:  # configuration, not the command: keep retrying
                error = exc
            except CommercetoolsError as exc:
                error = exc
                if exc.status == 404:  # entry deleted under us: look it up again
                    self._entry_ids.pop((sku, channel), None)
                elif exc.status == 400 and exc.has_code("ReferencedResourceNotFound"):
                    self._ready = False  # our Type was deleted: create it again
                elif exc.status == 400:
                    # a definite refusal (e.g. a custom type without our field): not retried
                    reason = f"commercetools rejected the update: {exc}"
                    return [Result(c, "dlq", reason=reason) for c in chunk]
            except Exception as exc:  # a bug or an unexpected answer: retry, never drop
                log.exception("applying commands for %s failed", sku)
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


class CtCommandFlow:
    def __init__(self, app: faust.App, settings: Settings, sku_topic: faust.TopicT) -> None:
        s = self.settings = settings
        self.app = app
        self.sku_topic = sku_topic
        self.topic = app.topic(
            s.topic_inventory_commands, value_serializer="raw", key_serializer="raw"
        )
        # not in streams.topics (only input topics get DLQs there): declared on first use
        self.dlq = app.topic(
            s.dlq_topic(s.topic_inventory_commands),
            partitions=1,
            config={"retention.ms": str(4 * WEEK_MS)},
            value_serializer="raw",
            key_serializer="raw",
        )
        self.exceptions = app.topic(
            s.topic_exceptions, value_serializer="raw", key_serializer="raw"
        )
        # declared on first use: created when missing (topic_allow_declare)
        self.dead_letters = DeadLetters(self.dlq, time.time, declare=True)
        self.reports = ExceptionReporter(self.exceptions, time.time)
        self.ledger = LazyClient(None, lambda: CommercetoolsClient(settings, hooks=M.CtResponses()))
        self._applier: CommandApplier | None = None
        app.agent(self.topic, name="ct_commands")(self.agent)
        app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]

    @property
    def applier(self) -> CommandApplier:
        if self._applier is None:  # lazily: an event loop exists by the first batch
            s = self.settings
            self._applier = CommandApplier(
                self.ledger(),
                type_key=s.ct_ledger_type_key,
                host_types=s.ct_ledger_host_types,
                keep=s.ct_ledger_size,
                retry_s=s.ct_command_retry_s,
                relative=s.ct_quantity_relative,
                abort=self._abort,
            )
        return self._applier

    async def _on_shutdown(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        await self.ledger.close()
        self._applier = None

    async def agent(self, stream: Any) -> None:  # faust.Stream (StreamT lacks noack_take)
        s = self.settings
        # noack_take, not take_events: take_events acks a batch in a ``finally``, so an
        # exception or a cancellation (shutdown) mid-batch would commit commands never
        # applied. Here an event is acked only once its outcome is final and delivered.
        async for batch in stream.noack_take(s.batch_max, s.batch_within_s):
            started = time.perf_counter()
            n = len(batch)
            await self._batch(stream, cast(list[EventT], batch))
            # no reference may outlive the batch: Faust waits for unacked (abandoned)
            # messages to be collected before a rebalance completes
            batch = []
            M.BATCH_SECONDS.labels("ct_commands").observe(time.perf_counter() - started)
            M.BATCH_EVENTS.labels("ct_commands").observe(n)

    def _abort(self) -> bool:
        """Stop retrying: the partitions may move (rebalance) or the worker stops. Unacked
        commands are read again from the committed offset by whoever owns them next."""
        return bool(self.app.rebalancing or self.app.should_stop)

    async def _batch(self, stream: Any, events: list[EventT]) -> None:
        topic = self.settings.topic_inventory_commands
        groups: dict[tuple[str, str], list[tuple[EventT, InventoryCommand]]] = defaultdict(list)
        pending: list[Awaitable[Any]] = []
        finished: list[EventT] = []
        abandoned: list[EventT] = []
        for ev in events:
            try:
                cmd = parse_command(ev.value, ev.key)
            except BadRecord as exc:
                pending.append(await self.dead_letters.send(ev, str(exc)))
                finished.append(ev)
                M.CT_COMMANDS.labels("unknown", "dlq").inc()
                M.RECORDS.labels(topic, "dlq").inc()
                continue
            groups[(cmd.sku, cmd.supplyChannel)].append((ev, cmd))
        gate = asyncio.Semaphore(self.settings.ct_command_concurrency)
        reached = 0  # commands commercetools now reflects (applied or found applied)

        async def run(items: list[tuple[EventT, InventoryCommand]]) -> list[Awaitable[Any]]:
            nonlocal reached
            async with gate:
                begun = time.perf_counter()
                try:
                    results = await self.applier.apply([c for _, c in items])
                except Abandoned as exc:
                    log.warning("%d commands left for redelivery: %s", len(items), exc)
                    abandoned.extend(ev for ev, _ in items)
                    return []
                elapsed = time.perf_counter() - begun
            by_id = {c.commandId: ev for ev, c in items}
            sends: list[Awaitable[Any]] = []
            for r in results:
                M.CT_COMMANDS.labels(r.command.action, r.outcome).inc()
                M.RECORDS.labels(topic, r.outcome).inc()
                M.CT_COMMAND_SECONDS.observe(elapsed)
                if r.outcome == "dlq":
                    sends += await self._failed(by_id[r.command.commandId], r)
                else:
                    reached += 1
                    sends.append(await self._confirm(r))
            finished.extend(ev for ev, _ in items)
            return sends

        for sends in await asyncio.gather(*(run(items) for items in groups.values())):
            pending += sends
        # delivered before acked: a confirmation or dead letter is never lost behind a
        # committed offset
        await asyncio.gather(*pending)
        for ev in finished:
            await stream.ack(ev)
        if abandoned:
            self._let_go(abandoned)
        if reached:
            M.LAST_SUCCESS.labels("ct_commands").set(time.time())

    def _let_go(self, events: list[EventT]) -> None:
        """Leave abandoned events unacked, and stop Faust waiting for them.

        Before a rebalance or shutdown completes, Faust waits until every message it handed
        to a stream is acked or garbage-collected; the stream itself keeps its last event
        alive, so waiting would never end. Untracked but unacked, the offset is not
        committed past them: Faust seeks to the committed offset after the rebalance (or the
        next start does), and the commands are read again.
        """
        release_unacked(self.app, events)

    async def _confirm(self, r: Result) -> Awaitable[Any]:
        c = r.command
        value = {
            "t": "applied",
            "cmd": c.commandId,
            "action": c.action,
            "ch": c.supplyChannel,
            "entry": r.entry_id,
            "v": r.version,
            "q": c.quantity,
        }
        return await self.sku_topic.send(key=c.sku.encode(), value=dumps(value))

    async def _failed(self, ev: EventT, r: Result) -> list[Awaitable[Any]]:
        c = r.command
        reason = r.reason or "failed"
        refs = Refs(
            sku=c.sku,
            purchaseOrderNumber=c.purchaseOrderNumber,
            itemSequenceNumber=c.itemSequenceNumber,
        )
        cause = f"{c.action} of {c.quantity} for {c.sku} (command {c.commandId}): {reason}"
        _, key, value = self.reports.record(EXCEPTION_KIND, refs, cause)
        sent = await self.exceptions.send(key=key, value=value)
        return [sent, await self.dead_letters.send(ev, reason)]
