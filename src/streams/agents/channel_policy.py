"""Warehouse policy flow: the Amazon policy of every supply channel, read from commercetools.

    timer (leader only) ── GET /channels ──> <app>-channel-policy (1 partition, compacted)
                                                   │ policy agent: the only writer
                                                   v
                              GlobalTable ``channel_policy`` (every worker holds it)
                                                   │ read by the SKU agent (allocation,
                                                   v availability) through ``current()``

The rules are :mod:`streams.domain.warehouse_policy`. The timer reads commercetools at start
and every ``channel_policy_refresh_s`` and sends the policy when it changed; it writes no
table. One small agent on a one-partition topic writes the GlobalTable, so every worker's
SKU agent sees the same policy. On every worker the same timer notices a new revision and
has the inventory flow re-examine its SKUs, so availability changed by the policy alone
(no stock event) is published too. Until the first policy arrives, and whenever
commercetools cannot be read, the last known policy (or configuration) applies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import faust

from streams.adapters.codecs import dumps, loads
from streams.adapters.commercetools import CommercetoolsClient, CommercetoolsError
from streams.agents.clients import LazyClient
from streams.agents.faustutil import raw_topic
from streams.agents.storeopts import table_options
from streams.config import Settings
from streams.domain.warehouse_policy import (
    ChannelPolicy,
    channel_policy_type_draft,
    foreign_type_problems,
    missing_fields,
    policy_from_channels,
)
from streams.observability import metrics as M

if TYPE_CHECKING:
    from streams.agents.inventory import InventoryFlow

log = logging.getLogger(__name__)

POLICY_KEY = b"policy"


async def ensure_type(client: CommercetoolsClient, draft: Mapping[str, Any]) -> dict[str, Any]:
    """The custom Type ``draft["key"]``: created when missing, our fields added when it lacks
    them (never changed or removed: operators may have extended it). Idempotent."""
    key = str(draft["key"])
    found = await client.get_type_by_key(key)
    if found is None:
        try:
            return await client.create_type(dict(draft))
        except CommercetoolsError as exc:
            # another worker created it first (DuplicateField): read it back
            if exc.status != 400 or (found := await client.get_type_by_key(key)) is None:
                raise
    add = missing_fields(found, draft)
    if add:
        actions = [{"action": "addFieldDefinition", "fieldDefinition": f} for f in add]
        found = await client.update_type(found["id"], int(found["version"]), actions)
    return found


async def add_fields(client: CommercetoolsClient, key: str, draft: Mapping[str, Any]) -> None:
    """Add ``draft``'s fields to the existing Type ``key`` (never create it: it is an
    operator's Type that channels already carry)."""
    found = await client.get_type_by_key(key)
    if found is None:
        log.error("STREAMS_CT_CHANNEL_POLICY_HOST_TYPES names Type %r, which does not exist", key)
        return
    add = missing_fields(found, draft)
    if add:
        actions = [{"action": "addFieldDefinition", "fieldDefinition": f} for f in add]
        await client.update_type(found["id"], int(found["version"]), actions)
        log.info("added the Amazon policy fields to channel Type %s", key)


class ChannelPolicyFlow:
    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        inventory: InventoryFlow,
        clock: Callable[[], float] = time.time,
    ) -> None:
        s = self.settings = settings
        self.app = app
        self.inventory = inventory
        self.clock = clock
        self.topic = raw_topic(
            app,
            f"{s.app_id}-channel-policy",
            partitions=1,
            internal=True,
            config={"cleanup.policy": "compact"},
        )
        self.table = app.GlobalTable(
            "channel_policy",
            partitions=1,
            key_type=bytes,
            value_type=bytes,
            options=table_options(s),
        )
        # lazily: an event loop exists by the first tick
        self.client = LazyClient(None, lambda: CommercetoolsClient(settings, hooks=M.CtResponses()))
        self._type_ready = False
        self.type_problems: set[str] = set()  # reported once each (see _check_types)
        self._raw: bytes | None = None
        self._policy: ChannelPolicy | None = None
        self._scanned: str | None = None  # revision the inventory flow last re-examined for
        self._next_read = 0.0
        self._next_refresh = 0.0  # at start, then every channel_policy_refresh_s
        inventory.channel_policy = self.current
        app.agent(self.topic, name="channel-policy")(self.agent)
        tick = min(1.0, s.channel_policy_refresh_s)
        app.timer(tick, name="channel-policy-refresh")(self.tick)
        app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]

    # --- the lookup the SKU agent calls (hot path: a clock read, mostly) -------------------
    def current(self) -> ChannelPolicy | None:
        now = time.monotonic()
        if now >= self._next_read:  # a GlobalTable read at most twice a second
            self._next_read = now + 0.5
            self._load()
        return self._policy

    def _load(self) -> None:
        """Take the GlobalTable's policy when it changed."""
        raw = self.table.get(POLICY_KEY)
        if raw is not None and raw != self._raw:
            self._raw = raw
            self._policy = ChannelPolicy.from_dict(loads(raw))

    # --- the one writer of the GlobalTable --------------------------------------------------
    async def agent(self, stream: Any) -> None:
        async for event in stream.events():
            raw: bytes | None = event.value
            if raw is None:
                continue
            try:
                incoming = loads(raw)
                ChannelPolicy.from_dict(incoming)  # refuse what the lookup could not read
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring unreadable channel policy record: %s", exc)
                continue
            stored = self.table.get(POLICY_KEY)
            if stored is not None and loads(stored).get("revision") == incoming.get("revision"):
                continue  # sent twice (e.g. a leader change): nothing new
            self.table[POLICY_KEY] = raw

    # --- timer: every worker watches; the leader also reads commercetools ------------------
    async def tick(self) -> None:
        self._load()
        policy = self._policy
        if policy is not None and policy.revision != self._scanned:
            # availability may change without any stock event: re-examine every SKU (here,
            # not in current(): the SKU agent may have picked the new policy up first)
            self._scanned = policy.revision
            self.inventory.needs_scan = True
            self._report(policy)
            log.info("warehouse policy %s in effect", policy.revision)
        now = self.clock()
        if now < self._next_refresh or not self.app.is_leader():
            return
        self._next_refresh = now + self.settings.channel_policy_refresh_s
        try:
            await self.refresh()
        except Exception:  # a crashed timer would stop the policy for good: log, next time
            M.CHANNEL_POLICY_REFRESHES.labels("error").inc()
            log.exception("warehouse policy refresh failed; the last known one applies")

    async def refresh(self) -> ChannelPolicy | None:
        """Read every channel; send the policy when it differs from the one in effect."""
        client = self.client()
        try:
            if not self._type_ready:
                await ensure_type(client, channel_policy_type_draft(self.type_key))
                for key in self.settings.ct_channel_policy_host_types:
                    await add_fields(client, key, channel_policy_type_draft(key))
                self._type_ready = True
        except Exception as exc:
            # reading still works when the fields are on another Type: go on
            log.warning("could not ensure the channel policy Type %s: %s", self.type_key, exc)
        try:
            channels = await client.all_channels()
        except Exception as exc:
            M.CHANNEL_POLICY_REFRESHES.labels("error").inc()
            log.warning("warehouse policy not refreshed (%s): the last known one applies", exc)
            return None
        await self._check_types(client, channels)
        policy = policy_from_channels(channels, self.clock())
        M.LAST_SUCCESS.labels("channel_policy").set(self.clock())
        for problem in policy.problems:
            log.warning("warehouse policy: %s", problem)
        stored = self.table.get(POLICY_KEY)
        if stored is not None and loads(stored).get("revision") == policy.revision:
            M.CHANNEL_POLICY_REFRESHES.labels("unchanged").inc()
            return policy
        await self.topic.send(key=POLICY_KEY, value=dumps(policy.to_dict()))
        M.CHANNEL_POLICY_REFRESHES.labels("changed").inc()
        return policy

    async def _check_types(
        self, client: CommercetoolsClient, channels: list[dict[str, Any]]
    ) -> None:
        """Loud, once per problem: channels whose own Type cannot carry the policy."""
        try:
            types = {str(t["id"]): t for t in await client.types_for("channel")}
        except Exception as exc:
            log.warning("channel Types not checked: %s", exc)
            return
        hosts = self.settings.ct_channel_policy_host_types
        for problem in foreign_type_problems(channels, types, self.type_key, hosts):
            if problem not in self.type_problems:
                self.type_problems.add(problem)
                log.error("warehouse policy: %s", problem)

    @property
    def type_key(self) -> str:
        return self.settings.ct_channel_policy_type_key

    def _report(self, policy: ChannelPolicy) -> None:
        counts = {"eligible": 0, "ineligible": 0, "unset": 0}
        for rule in policy.rules.values():
            state = {True: "eligible", False: "ineligible", None: "unset"}[rule.eligible]
            counts[state] += 1
        for state, n in counts.items():
            M.CHANNEL_POLICY_CHANNELS.labels(state).set(n)

    async def _on_shutdown(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        await self.client.close()
