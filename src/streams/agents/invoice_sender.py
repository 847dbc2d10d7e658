"""The invoice sender: ``amazon.invoices`` -> SP-API ``submitInvoices``.

The only writer of ``invoice_sent[invoice number]``. Before a request leaves, the intent
(``state: sending`` + the body's digest) is written and flushed to the table's changelog, so
a worker that dies mid-send knows on restart that Amazon may hold the invoice: it sends it
again marked ``resent``, and a transaction refused as a duplicate number then means the
first submission stands (the invoice book takes it as accepted). Amazon keys invoices by
their number, so a resend can never bill twice. Outcomes ("submitted" with the transaction,
or "rejected") go to ``<app>-invoice-events``, where the invoice agent applies them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from streams.adapters.codecs import dumps, loads
from streams.domain.df_invoice import book_key, is_df_invoice
from streams.domain.invoice_book import invoice_digest, invoice_purchase_order
from streams.domain.invoice_check import ModelCheck
from streams.observability import metrics as M

log = logging.getLogger(__name__)

# 4xx answers that say nothing about the invoice: retried like an outage
_NOT_ABOUT_THE_INVOICE = frozenset({401, 403, 408, 429})


class InvoiceSender:
    def __init__(
        self,
        sent: Any,  # the invoice_sent table: number -> {digest, state, outcome}
        events_topic: Any,
        spapi: Callable[[], Any],
        model_check: ModelCheck,
        clock: Callable[[], float],
        flush: Callable[[], Awaitable[None]],  # makes the table's writes durable
        df_model_check: ModelCheck | None = None,  # DF InvoiceDetail bodies (df_invoice)
    ) -> None:
        self.df_model_check = df_model_check
        self.sent = sent
        self.events_topic = events_topic
        self.spapi = spapi
        self.model_check = model_check
        self.clock = clock
        self.flush = flush

    async def run(self, stream: Any) -> None:
        async for event in stream.events():
            try:
                invoice = loads(event.value)
            except (TypeError, ValueError):
                invoice = None
            if not isinstance(invoice, dict) or not event.key:
                msg = event.message
                log.error("%s[%d]@%d is not a keyed Invoice; not sent",
                          msg.topic, msg.partition, msg.offset)  # fmt: skip
                M.INVOICES.labels("rejected").inc()
                continue
            await self._send(event.key, invoice)

    async def _send(self, key: bytes, invoice: dict[str, Any]) -> None:
        from streams.adapters.spapi import SpApiAuthError, SpApiError

        number = key.decode()
        df = is_df_invoice(invoice)  # a Direct Fulfillment invoice: submitInvoice, DF-<PO>
        po = invoice_purchase_order(invoice)
        if df and po is not None:
            po = book_key(po)  # the invoice book's key of the DF order
        digest = invoice_digest(invoice)
        raw = self.sent.get(key)
        rec: dict[str, Any] = loads(raw) if raw else {}
        if rec and rec.get("digest") != digest:
            # a number is given once; another body under it is never sent
            log.error("invoice %s: a different body under a number already used; not sent", number)
            M.INVOICES.labels("rejected").inc()
            return
        if rec.get("outcome") is not None:
            M.INVOICES.labels("duplicate").inc()  # sent before: report the outcome again
            if po is not None:
                await self.events_topic.send(key=po.encode(), value=dumps(rec["outcome"]))
            return
        resent = rec.get("state") == "sending"  # the last worker died mid-send
        check = self.df_model_check if df else self.model_check
        problems = check(invoice) if check is not None else ["no DF invoice model check"]
        if po is None:
            problems.append("items: no item names its purchaseOrderNumber")
        if problems:  # the invoice agent checked all of this; this guards hand-made records
            error = "not sent, invalid against Amazon's model: " + "; ".join(problems[:10])
            await self._outcome(key, po, {"t": "rejected", "error": error}, number, digest)
            return
        assert po is not None
        self.sent[key] = dumps({"digest": digest, "state": "sending", "at": self.clock()})
        await self.flush()  # the intent is on Kafka before the request leaves
        delay = 1.0
        while True:
            try:
                if df:
                    txid = await self.spapi().df_submit_invoice({"invoices": [invoice]})
                else:
                    txid = await self.spapi().submit_invoices([invoice])
                break
            except SpApiError as exc:
                auth = isinstance(exc, SpApiAuthError)
                if (
                    400 <= exc.status < 500
                    and exc.status not in _NOT_ABOUT_THE_INVOICE
                    and not auth
                ):
                    text = f"HTTP {exc.status}: " + (
                        "; ".join(f"{e.get('code')}: {e.get('message')}" for e in exc.errors)
                        or "no error details"
                    )
                    await self._outcome(key, po, {"t": "rejected", "error": text}, number, digest)
                    return
                log.warning("invoice %s not submitted yet (%s); retrying", number, exc)
            except Exception as exc:
                log.warning("invoice %s not submitted yet (%s); retrying", number,
                            type(exc).__name__)  # fmt: skip
            # an invoice must not be lost: hold this partition and retry, capped backoff
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)
        now = self.clock()
        submitted = {"t": "submitted", "txid": txid, "at": now, "resent": resent}
        await self._outcome(key, po, submitted, number, digest)
        M.LAST_SUCCESS.labels("invoice_submit").set(now)

    async def _outcome(
        self, key: bytes, po: str | None, outcome: dict[str, Any], number: str, digest: str
    ) -> None:
        event = {**outcome, "number": number, "digest": digest}
        self.sent[key] = dumps({"digest": digest, "state": "done", "outcome": event})
        if po is None:
            log.error("invoice %s names no purchase order; not sent: %s", number,
                      outcome.get("error"))  # fmt: skip
            M.INVOICES.labels("rejected").inc()
            return
        await self.events_topic.send(key=po.encode(), value=dumps(event))
