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
import time
from collections import defaultdict
from collections.abc import Awaitable
from typing import Any, cast

import faust
from faust.types import EventT

from streams.adapters.codecs import dumps
from streams.adapters.commercetools import CommercetoolsClient
from streams.agents.clients import LazyClient
from streams.agents.ct_command_applier import Abandoned, CommandApplier, Result
from streams.agents.reports import DeadLetters, ExceptionReporter
from streams.config import Settings
from streams.domain.ctmessages import BadRecord
from streams.domain.exceptions import Refs
from streams.domain.inventory_commands import InventoryCommand, parse_command
from streams.observability import metrics as M
from streams.runtime.consumer import release_unacked
from streams.topics import WEEK_MS

log = logging.getLogger(__name__)

EXCEPTION_KIND = "ct-command-failed"


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
