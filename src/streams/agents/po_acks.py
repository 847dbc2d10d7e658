"""The acknowledgement sender and the transaction poller of the purchase-order flow.

    amazon.po-acknowledgements ──ack-sender──> SP-API submitAcknowledgement
                                      └─ ack-submitted / ack-failed ──> <app>-po-events
    timer tx-status ──> SP-API getTransaction ──> tx ──> <app>-po-events

The sender puts the acknowledgements waiting together into one ``submitAcknowledgement``
request (at most ``ack_batch_max``, ``ack_batch_max_bytes``), embedding each one's bytes as
built; one transaction is then polled per request, and reported to each of its POs. Neither
writes the ``pos`` table: what they learn goes to po-events, applied by the PO flow. What to
do with Amazon's answers is :mod:`streams.domain.ack_policy`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.types import EventT

from streams.adapters.amazon_models import validate as amazon_validate
from streams.adapters.codecs import dumps, loads
from streams.agents.clients import LazyClient
from streams.agents.faustutil import read_partition
from streams.config import Settings
from streams.domain import ack_policy, po_messages
from streams.domain.acknowledgement import plan_requests, validate_acknowledgement
from streams.domain.exceptions import Refs
from streams.domain.po_messages import AckFailed, AckSubmitted, TxChecked
from streams.domain.purchase_order import PurchaseOrderRecord
from streams.observability import metrics as M

log = logging.getLogger(__name__)

RECENT_ACKS = 10_000  # acknowledgements this worker submitted, remembered to skip redeliveries

Report = Callable[[str, Refs, str], Awaitable[None]]  # kind, refs, cause: an exception


@dataclass
class _PendingAck:
    event: EventT
    key: bytes
    body: bytes
    digest: str

    @property
    def number(self) -> str:
        return self.key.decode()


class AckSender:
    """Submits built acknowledgements and follows their transactions (own SP-API rate
    budget: the app's shared client)."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        spapi: LazyClient,
        pos: Any,  # the PO flow's ``pos`` table: read only
        events_topic: Any,  # <app>-po-events
        report: Report,
        clock: Callable[[], float],
    ) -> None:
        self.app = app
        self.settings = settings
        self.spapi = spapi
        self.pos = pos
        self.events_topic = events_topic
        self.report = report
        self.clock = clock
        # txid -> (the POs whose acknowledgement it carried, submitted at)
        self.pending_tx: dict[str, tuple[set[str], float]] = {}
        # PO -> digest of the acknowledgement this worker submitted last (redeliveries)
        self._submitted: OrderedDict[bytes, str] = OrderedDict()
        self.needs_scan = True  # after a rebalance: find the transactions still Processing

    async def ack_sender(self, stream: Any) -> None:  # faust.Stream (StreamT lacks noack_take)
        s = self.settings
        # noack_take: a record is acked once Amazon took (or finally refused) its request; a
        # batch fills at most one burst of full requests, the rest waits for the next
        size = s.ack_batch_max * max(1, s.spapi_burst)
        async for batch in stream.noack_take(size, s.po_batch_within_s):
            started = time.perf_counter()
            events = cast(list[EventT], batch)
            await self._send_acks(events)
            for ev in events:
                await stream.ack(ev)
            M.BATCH_SECONDS.labels("ack-sender").observe(time.perf_counter() - started)
            batch = events = []  # Faust waits for handed-out events to be released

    async def _send_acks(self, events: list[EventT]) -> None:
        """Submit the acknowledgements of ``events``: each valid one that was not submitted
        already, several per request, in the order they were built."""
        s = self.settings
        pending: list[_PendingAck] = []
        queued: set[tuple[bytes, str]] = set()
        for ev in events:
            key, body = cast(bytes, ev.key), cast(bytes, ev.value)
            digest = hashlib.sha256(body).hexdigest()
            if (key, digest) in queued or self._submitted.get(key) == digest:
                M.ACKS.labels("duplicate").inc()
                continue  # the same bytes twice (a redelivery): submitted once
            # the PO's partition of the ``pos`` store (the topics are co-partitioned)
            raw = read_partition(self.pos, ev.message.partition).get(key)
            stored = PurchaseOrderRecord.from_json(loads(raw)).ack if raw else None
            if stored is not None and stored.hash == digest and stored.txid:
                M.ACKS.labels("duplicate").inc()
                continue  # this exact acknowledgement was submitted already
            ack = loads(body)
            problems = amazon_validate("vendorOrders", "OrderAcknowledgement", ack)
            problems += validate_acknowledgement(ack)
            if problems:
                refs = Refs(purchaseOrderNumber=ack.get("purchaseOrderNumber"))
                cause = "not sent, invalid: " + "; ".join(problems)
                await self.report("ack-rejected", refs, cause)
                M.ACKS.labels("invalid").inc()
                continue
            queued.add((key, digest))
            pending.append(_PendingAck(ev, key, body, digest))
        plan = plan_requests(
            [(p.number, p.body) for p in pending], s.ack_batch_max, s.ack_batch_max_bytes
        )
        for indexes in plan:
            await self._submit_request([pending[i] for i in indexes])

    async def _submit_request(self, acks: list[_PendingAck]) -> None:
        """One ``submitAcknowledgement`` request, retried until Amazon takes it or refuses it.

        A refused request of several acknowledgements is sent again in halves, down to single
        ones, so the acknowledgements Amazon accepts go through and each refusal names its PO;
        a 413 (body too large) splits the same way.
        """
        from streams.adapters.spapi import SpApiAuthError, SpApiError

        delay = 1.0
        auth_reported = False
        while True:
            try:
                txid = await self.spapi().submit_acknowledgement([a.body for a in acks])
                break
            except SpApiError as exc:
                what = ack_policy.on_refusal(
                    exc.status, len(acks), auth_error=isinstance(exc, SpApiAuthError)
                )
                if what == "credentials" and not auth_reported:
                    auth_reported = True
                    for a in acks:
                        await self.report(
                            "ack-rejected", Refs(purchaseOrderNumber=a.number),
                            f"SP-API refused our credentials ({exc.status}); the "
                            "acknowledgement is kept and retried",
                        )  # fmt: skip
                if what == "split":
                    log.info(
                        "submitAcknowledgement of %d acknowledgements refused (%s); "
                        "sending them again in halves", len(acks), exc.status,
                    )  # fmt: skip
                    M.ACKS.labels("split").inc()
                    for part in ack_policy.halves(len(acks)):
                        await self._submit_request(acks[part])
                    return
                if what == "reject":
                    a = acks[0]
                    text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in exc.errors)
                    await self.report(
                        "ack-rejected", Refs(purchaseOrderNumber=a.number),
                        f"Amazon rejected the request: {text}",
                    )  # fmt: skip
                    await self.events_topic.send(key=a.key, value=_encode(AckFailed(text)))
                    M.ACKS.labels("rejected").inc()
                    return
                log.warning(
                    "%d acknowledgement(s) not submitted yet (%s, first PO %s); retrying",
                    len(acks), exc.status, acks[0].number,
                )  # fmt: skip
            except Exception as exc:
                log.warning(
                    "%d acknowledgement(s), first PO %s: %s; retrying",
                    len(acks), acks[0].number, type(exc).__name__,
                )  # fmt: skip
            # the acks must not be lost: keep their partitions waiting, with a capped backoff
            await asyncio.sleep(delay)
            delay = ack_policy.next_delay(delay)
        now = self.clock()
        for a in acks:
            submitted = AckSubmitted(txid, now, len(acks), a.digest)
            await self.events_topic.send(key=a.key, value=_encode(submitted))
            self._submitted[a.key] = a.digest
            self._submitted.move_to_end(a.key)
        while len(self._submitted) > RECENT_ACKS:
            self._submitted.popitem(last=False)
        M.ACKS.labels("submitted").inc(len(acks))
        M.BATCH_EVENTS.labels("ack-sender").observe(len(acks))
        M.LAST_SUCCESS.labels("ack_submit").set(now)

    # --- transaction status (timer; never writes tables: reports as po-events) ----------
    async def poll_transactions(self) -> None:
        """One ``getTransaction`` per request; its outcome goes to each PO it carried."""
        if self.app.rebalancing:
            return
        if self.needs_scan:
            self.needs_scan = False
            for _, raw in self.pos.items():
                po = PurchaseOrderRecord.from_json(loads(raw))
                if po.tx.status == "Processing" and po.tx.id and po.number:
                    at = po.ack.submitted_at
                    at = self.clock() if at is None else at
                    self.pending_tx.setdefault(po.tx.id, (set(), at))[0].add(po.number)
        for txid, (numbers, submitted) in list(self.pending_tx.items()):
            try:
                status = await self.spapi().get_transaction(txid)
            except Exception as exc:
                log.warning("transaction %s status unknown: %s", txid, type(exc).__name__)
                continue
            now = self.clock()
            state = ack_policy.transaction_outcome(
                status.get("status", "Processing"), submitted, now,
                self.settings.tx_processing_success_s,
            )  # fmt: skip
            if state == "Processing":
                continue
            errors = status.get("errors") or []
            pos = sorted(numbers)
            if state == "Failure":
                text = _errors_text(errors) or "Failure"
                others = (
                    f" (the request carried {len(pos)} acknowledgements: {', '.join(pos[:20])})"
                    if len(pos) > 1
                    else ""
                )
                for po_number in pos:
                    await self.report(
                        "ack-transaction-failed",
                        Refs(purchaseOrderNumber=po_number, transactionId=txid),
                        f"Amazon could not process the acknowledgement: {text}{others}",
                    )
                M.TX_FAILURES.labels("acknowledgement").inc()
            self.pending_tx.pop(txid, None)
            record = {"id": txid, "status": state, "errors": errors, "checkedAt": now}
            for po_number in pos:
                await self.events_topic.send(
                    key=po_number.encode(), value=_encode(TxChecked(record))
                )


def _encode(msg: AckSubmitted | AckFailed | TxChecked) -> bytes:
    return dumps(po_messages.to_json(msg))


def _errors_text(errors: list[dict[str, Any]]) -> str:
    return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
