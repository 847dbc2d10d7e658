"""Purchase orders (DESIGN.md flows 4-6): intake, line routing, decisions, acknowledgements.

    SP-API poller ──> amazon.purchase-orders (key: PO) ──intake──> table ``pos``
                                 │ one allocation request per line, re-keyed by SKU
                                 └──> <app>-sku-events ──SKU agent── decision ──┐
                                                         └─> ct.inventory-commands
    <app>-po-events (key: PO) <─────────────────────────────────────────────────┘
        └─ every line decided ─> amazon.po-acknowledgements ──sender──> SP-API
                                                                    └─> transaction status

Allocation runs on the partition that owns the SKU's stock, so no two POs can sell the same
units. The acknowledgement is built once per PO revision and stored; a resend is identical.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import EventT
from pydantic import ValidationError

from streams.adapters.amazon_models import validate as amazon_validate
from streams.adapters.codecs import decode_record, dlq_record, dumps, loads, reason_class, utc_iso
from streams.agents.faustutil import raw_topic
from streams.config import Settings
from streams.domain.acknowledgement import (
    AcknowledgementNotReady,
    build_acknowledgement,
    encode_acknowledgement,
    validate_acknowledgement,
)
from streams.domain.allocation import LineDecision, allocate
from streams.domain.exceptions import Refs, raise_exception, to_record
from streams.domain.mapping import SkuMapping
from streams.domain.purchase_orders import Order, PoLine, split_lines
from streams.observability import metrics as M

log = logging.getLogger(__name__)


class PurchaseOrderFlow:
    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        sku_topic: faust.TopicT,
        products: Any,
        clock: Callable[[], float] = time.time,
        spapi_factory: Callable[[], Any] | None = None,
    ) -> None:
        s = self.settings = settings
        self.app = app
        self.clock = clock
        self.sku_topic = sku_topic
        self.products = products  # GlobalTable: asin:/vpi: -> sku, sku: -> mapping json
        self._spapi_factory = spapi_factory
        self._spapi: Any = None
        self.po_topic = raw_topic(app, s.topic_purchase_orders)
        self.events_topic = raw_topic(
            app, f"{s.app_id}-po-events", partitions=s.partitions, internal=True
        )
        self.ack_topic = raw_topic(app, s.topic_po_acknowledgements)
        self.exceptions_topic = raw_topic(app, s.topic_exceptions)
        self.dlq = raw_topic(app, s.dlq_topic(s.topic_purchase_orders))
        self.pos = app.Table(
            "pos",
            partitions=s.partitions,
            key_type=bytes,
            value_type=bytes,
            options={"driver": "rocksdict"},
        )
        self.pending_tx: dict[str, tuple[str, float]] = {}  # txid -> (PO, submitted at)
        self.needs_scan = True
        app.agent(self.po_topic, name="po-intake")(self.intake)
        app.agent(self.events_topic, name="po-events")(self.po_events)
        app.agent(self.ack_topic, name="ack-sender")(self.ack_sender)
        app.timer(s.tx_poll_interval_s, name="tx-status")(self.poll_transactions)
        app.on_rebalance_complete.connect(self._rescan)  # type: ignore[arg-type]

    async def _rescan(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        self.needs_scan = True

    def spapi(self) -> Any:
        """The acknowledgement path's own SP-API client: its own rate budget."""
        if self._spapi is None:
            if self._spapi_factory is not None:
                self._spapi = self._spapi_factory()
            else:
                from streams.adapters.spapi import SpApiClient

                self._spapi = SpApiClient(self.settings)
        return self._spapi

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- master data lookups (global table) -------------------------------------------
    def resolve(self, asin: str | None, vpi: str | None) -> SkuMapping | None:
        for prefix, ident in ((b"asin:", asin), (b"vpi:", vpi)):
            if not ident:
                continue
            sku = self.products.get(prefix + ident.encode())
            if sku is None:
                continue
            raw = self.products.get(b"sku:" + sku)
            if raw is not None:
                return SkuMapping.model_validate_json(raw)
        return None

    # --- state helpers ----------------------------------------------------------------
    def _load(self, key: bytes) -> dict[str, Any] | None:
        raw = self.pos.get(key)
        return loads(raw) if raw else None

    def _save(self, key: bytes, po: dict[str, Any]) -> None:
        self.pos[key] = dumps(po)

    async def _exception(self, kind: str, refs: Refs, cause: str, *, status: str = "open") -> None:
        exc = raise_exception(kind, refs, cause, utc_iso(self.clock()))
        rec = to_record(exc)
        rec["status"] = status
        await self.exceptions_topic.send(key=exc.id.encode(), value=dumps(rec))
        M.EXCEPTIONS.labels(kind, exc.owner, status).inc()

    # --- intake: amazon.purchase-orders -------------------------------------------------
    async def intake(self, stream: Any) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            await self._intake_one(event)
            M.BATCH_SECONDS.labels("po-intake").observe(time.perf_counter() - started)

    async def _intake_one(self, event: EventT) -> None:
        """Validate and re-key by PO number with our own partitioner: the ``pos`` table is
        written by one agent only, whatever partitioner the upstream producer used."""
        raw: bytes | None = event.value
        try:
            obj = decode_record(raw, self.settings.topic_purchase_orders)
            try:
                order = Order.model_validate(obj)
            except ValidationError as exc:
                raise ValueError(f"not an SP-API Order: {_short(exc)}") from None
            if order.orderDetails is None:
                raise ValueError("Order has no orderDetails (fetched with includeDetails=false)")
            key = order.purchaseOrderNumber.encode()
            if event.key is not None and event.key != key:
                raise ValueError(
                    f"key {event.key!r} is not the PO number {order.purchaseOrderNumber}"
                )
        except ValueError as exc:
            await self._dead_letter(event, str(exc))
            return
        except Exception as exc:  # never lose a record to a bug: dead-letter it
            log.exception("po-intake: unexpected error")
            await self._dead_letter(event, f"internal error: {type(exc).__name__}: {exc}"[:300])
            return
        await self.events_topic.send(key=key, value=dumps({"t": "order", "raw": obj}))

    async def _on_order(self, key: bytes, po: dict[str, Any] | None, raw: Any) -> None:
        topic = self.settings.topic_purchase_orders
        order = Order.model_validate(raw)
        assert order.orderDetails is not None
        po = po or {"decisions": {}, "receivedAt": self.clock()}
        lines = split_lines(order, self.resolve)
        revision = lines[0].revision.isoformat() if lines else ""
        state = order.purchaseOrderState
        if po.get("rev") == revision and po.get("state") == state:
            M.RECORDS.labels(topic, "duplicate").inc()
            return
        if po.get("rev") is not None and revision < po["rev"]:
            M.RECORDS.labels(topic, "stale").inc()
            return
        if po.get("rev") == revision and state != "Closed":
            # only Amazon's state moved (e.g. New -> Acknowledged): nothing to re-decide
            po["state"] = state
            self._save(key, po)
            M.RECORDS.labels(topic, "applied").inc()
            return
        po.update(
            {
                "po": order.purchaseOrderNumber,
                "rev": revision,
                "state": state,
                "order": raw,
                "lines": {ln.itemSequenceNumber: ln.model_dump(mode="json") for ln in lines},
                "poDate": order.orderDetails.purchaseOrderDate.timestamp(),
            }
        )
        self._save(key, po)
        M.RECORDS.labels(topic, "applied").inc()
        for line in lines:
            payload = {"line": line.model_dump(mode="json")}
            if state == "Closed":
                if line.sku:
                    await self._to_sku(line.sku, {"t": "release", **payload})
            elif line.sku is None:
                # unknown product: decided here, there is nothing to allocate anywhere
                d = allocate(
                    line, 0, None, now=self.now(),
                    backorder_lead_days=self.settings.backorder_lead_days,
                )  # fmt: skip
                await self.events_topic.send(
                    key=key, value=dumps({"t": "decision", "d": d.model_dump(mode="json")})
                )
            else:
                await self._to_sku(line.sku, {"t": "alloc", **payload})

    async def _to_sku(self, sku: str, value: dict[str, Any]) -> None:
        await self.sku_topic.send(key=sku.encode(), value=dumps(value))

    async def _dead_letter(self, event: EventT, error: str) -> None:
        msg = event.message
        topic = self.settings.topic_purchase_orders
        value = dlq_record(
            event.value if isinstance(event.value, bytes) else None, error,
            topic=msg.topic, partition=msg.partition, offset=msg.offset,
            timestamp=msg.timestamp, failed_at=self.clock(),
        )  # fmt: skip
        await self.dlq.send(
            key=msg.key, value=dumps(value), headers={"dlq.error": error[:500].encode()}
        )
        M.RECORDS.labels(topic, "dlq").inc()
        M.DLQ.labels(topic, reason_class(error)).inc()

    # --- decisions, acknowledgement state ------------------------------------------------
    async def po_events(self, stream: Any) -> None:
        async for event in stream.events():
            key: bytes = event.key
            item = loads(event.value)
            po = self._load(key)
            t = item["t"]
            if t == "order":
                await self._on_order(key, po, item["raw"])
                continue
            if po is None:
                continue  # about a PO never taken in (e.g. state lost and not recovered)
            if t == "decision":
                await self._on_decision(key, po, LineDecision.model_validate(item["d"]))
            elif t == "ack-submitted":
                po["ack"] = {**po.get("ack", {}), "txid": item["txid"], "submittedAt": item["at"]}
                po["tx"] = {"id": item["txid"], "status": "Processing", "checkedAt": item["at"]}
                self.pending_tx[item["txid"]] = (po["po"], item["at"])
                M.ACK_LATENCY.observe(max(0.0, item["at"] - po.get("receivedAt", item["at"])))
                self._save(key, po)
            elif t == "ack-failed":
                po["ack"] = {**po.get("ack", {}), "error": item["error"]}
                self._save(key, po)
            elif t == "tx":
                po["tx"] = {**po.get("tx", {}), **item["tx"]}
                if item["tx"]["status"] in ("Success", "Failure"):
                    self.pending_tx.pop(po["tx"].get("id", ""), None)
                if item["tx"]["status"] == "Success":
                    po["state"] = "Acknowledged"
                self._save(key, po)

    async def _on_decision(self, key: bytes, po: dict[str, Any], d: LineDecision) -> None:
        if d.revision.isoformat() != po.get("rev"):
            return  # decided on an older revision of the PO; the new one is on its way
        decisions = po.setdefault("decisions", {})
        if decisions.get(d.itemSequenceNumber) == d.model_dump(mode="json"):
            return  # redelivered decision
        decisions[d.itemSequenceNumber] = d.model_dump(mode="json")
        refs = Refs(
            purchaseOrderNumber=d.purchaseOrderNumber,
            itemSequenceNumber=d.itemSequenceNumber,
            sku=d.sku,
        )
        for f in (*d.findings, *((d.hold,) if d.hold else ())):
            await self._exception(f.kind, refs, f.reason)
        # cheap checks on the raw record first: models are built once, when every line is
        # decided, not once per decision (a 100-line PO would cost 100 x 100 validations)
        pending = [n for n in po["lines"] if n not in decisions or decisions[n].get("hold")]
        if pending:
            self._save(key, po)
            return
        lines = [PoLine.model_validate(v) for v in po["lines"].values()]
        decided = {ln.key: LineDecision.model_validate(decisions[ln.itemSequenceNumber])
                   for ln in lines}  # fmt: skip
        ack_state = po.get("ack") or {}
        if ack_state.get("rev") == po["rev"]:
            self._save(key, po)  # already built for this revision
            return
        try:
            ack = build_acknowledgement(
                lines, decided, self.settings.spapi_selling_party, self.now()
            )
        except AcknowledgementNotReady as exc:
            log.info("PO %s not ready: %s", po["po"], exc)
            self._save(key, po)
            return
        body = encode_acknowledgement(ack)
        po["ack"] = {
            "rev": po["rev"],
            "hash": hashlib.sha256(body).hexdigest(),
            "builtAt": self.clock(),
        }
        self._save(key, po)
        await self.ack_topic.send(key=key, value=body)
        M.ACKS.labels("built").inc()

    # --- the acknowledgement sender (own SP-API client, own rate budget) -----------------
    async def ack_sender(self, stream: Any) -> None:
        async for event in stream.events():
            await self._send_ack(event.key, event.value)

    async def _send_ack(self, key: bytes, body: bytes) -> None:
        from streams.adapters.spapi import SpApiAuthError, SpApiError

        po = self._load(key) or {}
        digest = hashlib.sha256(body).hexdigest()
        ack_state = po.get("ack") or {}
        if ack_state.get("hash") == digest and ack_state.get("txid"):
            M.ACKS.labels("duplicate").inc()
            return  # this exact acknowledgement was submitted already
        ack = loads(body)
        problems = amazon_validate("vendorOrders", "OrderAcknowledgement", ack)
        problems += validate_acknowledgement(ack)
        refs = Refs(purchaseOrderNumber=ack.get("purchaseOrderNumber"))
        if problems:
            await self._exception("ack-rejected", refs, "not sent, invalid: " + "; ".join(problems))
            M.ACKS.labels("invalid").inc()
            return
        delay = 1.0
        auth_reported = False
        while True:
            try:
                txid = await self.spapi().submit_acknowledgement([ack])
                break
            except SpApiError as exc:
                # 401/403 and a refused login are about our credentials, not this
                # acknowledgement: keep it and retry (an operator fixes the credentials)
                auth = isinstance(exc, SpApiAuthError) or exc.status in (401, 403)
                if auth and not auth_reported:
                    auth_reported = True
                    await self._exception(
                        "ack-rejected", refs,
                        f"SP-API refused our credentials ({exc.status}); the acknowledgement "
                        "is kept and retried",
                    )  # fmt: skip
                if not auth and exc.status and 400 <= exc.status < 500 and exc.status != 429:
                    text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in exc.errors)
                    await self._exception(
                        "ack-rejected", refs, f"Amazon rejected the request: {text}"
                    )
                    await self.events_topic.send(
                        key=key, value=dumps({"t": "ack-failed", "error": text})
                    )
                    M.ACKS.labels("rejected").inc()
                    return
                log.warning(
                    "acknowledgement of %s not submitted yet (%s); retrying", key, exc.status
                )
            except Exception as exc:
                log.warning("acknowledgement of %s: %s; retrying", key, type(exc).__name__)
            # the ack must not be lost: keep this partition waiting, with a capped backoff
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)
        now = self.clock()
        await self.events_topic.send(
            key=key, value=dumps({"t": "ack-submitted", "txid": txid, "at": now})
        )
        M.ACKS.labels("submitted").inc()
        M.LAST_SUCCESS.labels("ack_submit").set(now)

    # --- transaction status (timer; never writes tables: reports as po-events) ----------
    async def poll_transactions(self) -> None:
        if self.app.rebalancing:
            return
        if self.needs_scan:
            self.needs_scan = False
            for _, raw in self.pos.items():
                po = loads(raw)
                tx = po.get("tx") or {}
                if tx.get("status") == "Processing" and tx.get("id"):
                    self.pending_tx[tx["id"]] = (
                        po["po"],
                        po.get("ack", {}).get("submittedAt", self.clock()),
                    )
        for txid, (po_number, submitted) in list(self.pending_tx.items()):
            try:
                status = await self.spapi().get_transaction(txid)
            except Exception as exc:
                log.warning("transaction %s status unknown: %s", txid, type(exc).__name__)
                continue
            state = status.get("status", "Processing")
            now = self.clock()
            if state == "Processing" and now - submitted >= self.settings.tx_processing_success_s:
                state = "Success"  # Amazon: still Processing after 15 minutes counts as success
            if state == "Processing":
                continue
            errors = status.get("errors") or []
            if state == "Failure":
                text = (
                    "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors) or "Failure"
                )
                await self._exception(
                    "ack-transaction-failed",
                    Refs(purchaseOrderNumber=po_number, transactionId=txid),
                    f"Amazon could not process the acknowledgement: {text}",
                )
                M.TX_FAILURES.labels("acknowledgement").inc()
            self.pending_tx.pop(txid, None)
            await self.events_topic.send(
                key=po_number.encode(),
                value=dumps(
                    {
                        "t": "tx",
                        "tx": {"id": txid, "status": state, "errors": errors, "checkedAt": now},
                    }
                ),
            )


def _short(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def _errors_text(errors: list[dict[str, Any]]) -> str:
    return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
