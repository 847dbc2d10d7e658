"""The ASN sender: ``amazon.shipment-confirmations`` -> SP-API ``submitShipmentConfirmations``.

The only writer of ``asn_sent[shipment id]``; it reports each version's outcome ("submitted"
with its transaction, or "rejected") to ``<app>-asn-events``, where the ASN agent applies it.
A version already sent is never sent again (a replay, or republished after a restart).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from streams.adapters.codecs import dumps, loads
from streams.domain.asn_effects import VERSION_HEADER, asn_digest, asn_purchase_order
from streams.domain.asn_model import ModelCheck
from streams.observability import metrics as M

log = logging.getLogger(__name__)

# 4xx answers that say nothing about the ASN: retried like an outage, never an exception
_NOT_ABOUT_THE_ASN = frozenset({401, 403, 408, 429})


class AsnSender:
    def __init__(
        self,
        sent: Any,  # the asn_sent table: shipment id -> {version key: outcome}
        events_topic: Any,
        spapi: Callable[[], Any],
        model_check: ModelCheck,
        clock: Callable[[], float],
    ) -> None:
        self.sent = sent
        self.events_topic = events_topic
        self.spapi = spapi
        self.model_check = model_check
        self.clock = clock

    async def run(self, stream: Any) -> None:
        async for event in stream.events():
            raw_n = (event.headers or {}).get(VERSION_HEADER)
            n = int(raw_n) if raw_n and raw_n.isdigit() else None
            try:
                asn = loads(event.value)
            except (TypeError, ValueError):
                asn = None
            if not isinstance(asn, dict) or not event.key:
                # only this flow writes the topic; anything else is logged, never sent
                msg = event.message
                log.error("%s[%d]@%d is not a keyed ShipmentConfirmation; not sent",
                          msg.topic, msg.partition, msg.offset)  # fmt: skip
                M.ASNS.labels("rejected").inc()
                continue
            await self._send(event.key, asn, n)

    async def _send(self, key: bytes, asn: dict[str, Any], n: int | None) -> None:
        from streams.adapters.spapi import SpApiAuthError, SpApiError

        sid = key.decode()
        po = asn_purchase_order(asn)
        digest = asn_digest(asn)
        version = (digest, n)
        raw_sent = self.sent.get(key)
        sent: dict[str, Any] = loads(raw_sent) if raw_sent else {}
        done = sent.get(_sent_key(version))
        if done is not None:
            # this version was sent (a replay, or republished after a restart): nothing goes
            # to Amazon; the outcome is reported again in case the first report was lost
            M.ASNS.labels("duplicate").inc()
            if po is not None:
                await self.events_topic.send(key=po.encode(), value=dumps(done))
            return
        problems = self.model_check(asn)
        if po is None:
            problems.append("shippedItems: no item names its purchaseOrderNumber")
        if problems:  # the ASN agent checks all of this first; this guards hand-made records
            error = "not sent, invalid against Amazon's model: " + "; ".join(problems[:10])
            await self._outcome(key, sent, po, {"t": "rejected", "error": error}, sid, version)
            return
        assert po is not None
        delay = 1.0
        while True:
            try:
                txid = await self.spapi().submit_shipment_confirmations([asn])
                break
            except SpApiError as exc:
                auth = isinstance(exc, SpApiAuthError)
                if 400 <= exc.status < 500 and exc.status not in _NOT_ABOUT_THE_ASN and not auth:
                    text = f"HTTP {exc.status}: " + (
                        "; ".join(f"{e.get('code')}: {e.get('message')}" for e in exc.errors)
                        or "no error details"
                    )
                    rejected = {"t": "rejected", "error": text}
                    await self._outcome(key, sent, po, rejected, sid, version)
                    return
                log.warning("ASN %s not submitted yet (%s); retrying", sid, exc)
            except Exception as exc:
                log.warning("ASN %s not submitted yet (%s); retrying", sid, type(exc).__name__)
            # an ASN must not be lost: hold this partition and retry, with a capped backoff
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)
        now = self.clock()
        submitted = {"t": "submitted", "txid": txid, "at": now}
        await self._outcome(key, sent, po, submitted, sid, version)
        M.LAST_SUCCESS.labels("asn_submit").set(now)

    async def _outcome(
        self,
        key: bytes,
        sent: dict[str, Any],
        po: str | None,
        outcome: dict[str, Any],
        sid: str,
        version: tuple[str, int | None],
    ) -> None:
        event = {**outcome, "sid": sid, "digest": version[0], "n": version[1]}
        self.sent[key] = dumps({**sent, _sent_key(version): event})
        if po is None:
            log.error("ASN %s names no purchase order; not sent: %s", sid, outcome.get("error"))
            M.ASNS.labels("rejected").inc()
            return
        await self.events_topic.send(key=po.encode(), value=dumps(event))


def _sent_key(version: tuple[str, int | None]) -> str:
    digest, n = version
    return digest if n is None else f"{n}:{digest}"
