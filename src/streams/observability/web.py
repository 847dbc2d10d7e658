"""The worker's status page and JSON API on Faust's web server (aiohttp underneath).

    GET /status               HTML for people: open exceptions by owner and severity, flows
    GET /api/exceptions       ?owner=&status=open|resolved|all&kind=
    GET /api/sku/{sku}        stock per channel, allocations, holds (PO lines and storefront
                              orders), commands, last published
    GET /api/po/{number}      lines, decisions, acknowledgement, transaction, shipments
    POST /api/exceptions/{id}/resolve   a person resolves an exception ({"note": "..."})

The server binds ``STREAMS_WEB_HOST`` (loopback by default). With ``STREAMS_WEB_TOKEN`` set,
every path but ``/metrics`` and ``/health`` needs ``Authorization: Bearer <token>``.

Tables are read without a current event, so Faust's store looks the key up in every local
partition. A key another worker owns is answered with 404 naming this worker and, when the
assignor knows it, the owner: this worker cannot see that state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import faust
import faust.web
from faust.types import TP

from streams.adapters.codecs import dumps, loads
from streams.config import Settings
from streams.domain.availability import Defaults, buffer_of, eligible_channels, offered
from streams.domain.inventory import SkuState
from streams.domain.purchase_order import load as load_po
from streams.domain.warehouse_policy import ChannelPolicy
from streams.domain.watchers import (
    OWNERS_ORDER,
    ack_status,
    iso,
    sort_exceptions,
)
from streams.observability.auth import install_guard
from streams.observability.status import StatusSource
from streams.observability.status_page import render_status

STATUSES = ("open", "resolved", "all")
JSON = "application/json"


# --- views -------------------------------------------------------------------------------


def register(app: faust.App, settings: Settings, ops: StatusSource) -> None:
    """The status page and the JSON API, answered from ``ops``."""
    install_guard(app, settings)

    def reply(view: Any, body: Any, status: int = 200) -> Any:
        return view.bytes(dumps(body), content_type=JSON, status=status)

    @app.page("/status", name="ops_status")
    async def status_page(view: Any, request: Any) -> Any:
        return view.html(render_status(ops, ops.all_exceptions(), ops.clock()))

    @app.page("/api/exceptions", name="ops_api_exceptions")
    async def api_exceptions(view: Any, request: Any) -> Any:
        owner = request.query.get("owner") or None
        status = request.query.get("status") or "open"
        kind = request.query.get("kind") or None
        if owner is not None and owner not in OWNERS_ORDER:
            return reply(
                view, {"error": f"unknown owner {owner!r}; one of {', '.join(OWNERS_ORDER)}"}, 400
            )
        if status not in STATUSES:
            return reply(view, {"error": f"status must be one of {', '.join(STATUSES)}"}, 400)
        found = select(ops.all_exceptions().values(), owner=owner, status=status, kind=kind)
        body = {
            "worker": ops.worker,
            "owner": owner,
            "status": status,
            "count": len(found),
            "exceptions": [{**r, "runbookUrl": ops.runbook_url(r)} for r in found],
        }
        return reply(view, body)

    class ResolveView(faust.web.View):
        """POST /api/exceptions/{id}/resolve ({"note": "..."} optional): a person closes an
        exception no condition resolves (a price agreed, a command replayed). It goes
        through ops.exceptions like any resolution; a watcher raises it again if its
        condition still holds."""

        async def post(self, request: Any, exc_id: str) -> Any:
            raw = ops.exceptions.get(exc_id.encode())
            if raw is None:
                return reply(self, {"error": f"no exception {exc_id!r}"}, 404)
            rec = loads(raw)
            if rec.get("status") != "open":
                return reply(self, {"id": exc_id, "status": rec.get("status")}, 200)
            note = ""
            if request.can_read_body:
                try:
                    note = str((await request.json()).get("note") or "")[:500]
                except (ValueError, AttributeError):
                    return reply(self, {"error": 'body must be JSON: {"note": "..."}'}, 400)
            await ops.resolve_by_hand(rec, note)
            return reply(self, {"id": exc_id, "status": "resolving", "worker": ops.worker}, 202)

    app.page("/api/exceptions/{exc_id}/resolve", name="ops_api_resolve")(ResolveView)

    @app.page("/api/sku/{sku:.+}", name="ops_api_sku")  # SKUs may hold "/"
    async def api_sku(view: Any, request: Any, sku: str) -> Any:
        table = ops.skus
        if table is None:
            return reply(view, {"error": "the inventory flow does not run here"}, 404)
        raw = table.get(sku.encode())
        if raw is None:
            return reply(view, *missing(ops, table, sku.encode(), f"SKU {sku!r}"))
        state = SkuState.from_dict(loads(raw))
        body = sku_view(state, ops.defaults, ops.policy())
        body["worker"] = ops.worker
        body["exceptions"] = [
            {**r, "runbookUrl": ops.runbook_url(r)}
            for r in sort_exceptions(ops.all_exceptions().values())
            if (r.get("refs") or {}).get("sku") == sku and r.get("status") == "open"
        ]
        return reply(view, body)

    @app.page("/api/po/{number:.+}", name="ops_api_po")
    async def api_po(view: Any, request: Any, number: str) -> Any:
        table = ops.pos
        if table is None:
            return reply(view, {"error": "the purchase-order flow does not run here"}, 404)
        raw = table.get(number.encode())
        if raw is None:
            return reply(view, *missing(ops, table, number.encode(), f"PO {number!r}"))
        shipments = ops.shipments
        book = None
        if shipments is not None:  # keyed and partitioned like ``pos``: local when it is
            raw_book = shipments.get(number.encode())
            book = loads(raw_book) if raw_book else {"po": number, "shipments": {}}
        body = po_view(loads(raw), book, settings, ops.clock())
        body["worker"] = ops.worker
        body["exceptions"] = [
            {**r, "runbookUrl": ops.runbook_url(r)}
            for r in sort_exceptions(ops.all_exceptions().values())
            if (r.get("refs") or {}).get("purchaseOrderNumber") == number
        ]
        return reply(view, body)


def missing(ops: StatusSource, table: Any, key: bytes, what: str) -> tuple[dict[str, Any], int]:
    """404: unknown here, or held by another worker (then named when the assignor knows)."""
    app = ops.app
    topic = table.changelog_topic.get_topic_name()
    partition: int | None = None
    try:
        partition = app.producer.key_partition(topic, key).partition
    except Exception:  # metadata not known yet
        partition = None
    local = partition is not None and TP(topic, partition) in app.assignor.assigned_actives()
    owner: str | None = None
    if local:
        error = (
            f"{what} is not known: this worker ({ops.worker}) owns its partition "
            f"{partition} of table {table.name} and holds no state for it"
        )
    else:
        try:
            owner = str(app.router.key_store(table.name, key))
        except Exception:
            owner = None
        where = f"partition {partition}" if partition is not None else "its partition"
        error = (
            f"{what} is not on this worker ({ops.worker}): {where} of table {table.name} "
            f"belongs to {owner or 'another worker'}; ask that worker"
        )
    return {"error": error, "worker": ops.worker, "partition": partition, "owner": owner}, 404


def select(
    recs: Any, *, owner: str | None = None, status: str = "open", kind: str | None = None
) -> list[dict[str, Any]]:
    out = [
        dict(r)
        for r in recs
        if (owner is None or r.get("owner") == owner)
        and (status == "all" or r.get("status") == status)
        and (kind is None or r.get("kind") == kind)
    ]
    return [dict(r) for r in sort_exceptions(out)]


# --- JSON shapes (pure) ------------------------------------------------------------------


def _iso_or_none(ts: Any) -> str | None:
    return iso(float(ts)) if isinstance(ts, int | float) else None


def sku_view(state: SkuState, defaults: Defaults, policy: ChannelPolicy | None) -> dict[str, Any]:
    """The SKU as the inventory flow sees it: every figure by the rule it publishes by
    (:func:`streams.domain.availability.offered`, under the same warehouse policy)."""
    m = state.mapping
    channels = defaults.channels
    eligible = eligible_channels(state, defaults, policy)
    buffer = buffer_of(state, defaults, policy)
    offer = offered(state, defaults, policy)
    publishable = offer is not None
    availability = state.availability(channels, defaults.buffer, policy)
    allocations = []
    for key, entry in sorted(state.lines.items()):
        d = entry.get("decision") or {}
        hold = d.get("hold") or None
        allocations.append(
            {
                "line": key,
                "status": d.get("status"),
                "ordered": d.get("orderedQuantity"),
                "accepted": d.get("accepted", 0),
                "backordered": d.get("backordered", 0),
                "rejected": d.get("rejected", 0),
                "unitSize": d.get("unitSize"),
                "allocatedEaches": d.get("allocatedEaches", 0),
                "released": bool(entry.get("released")),
                "hold": hold.get("reason") if isinstance(hold, dict) else None,
            }
        )
    return {
        "sku": state.sku,
        "mapping": m.model_dump(mode="json") if m is not None else None,
        "publishable": publishable,
        "channels": [
            {
                "channel": ch,
                "entryId": e.entry_id,
                "version": e.version,
                "available": e.available,
                "onStock": e.on_stock,
                "amazonEligible": ch in eligible,
                "updatedAt": e.at,
            }
            for ch, e in sorted(state.channels.items())
        ],
        "masterTotal": state.master_total(channels, policy),
        "safetyBuffer": buffer,
        "openAllocations": state.allocated,
        "availability": availability,
        "lastPublished": state.last_published,
        "publishedAt": _iso_or_none(state.published_at),
        "drift": (state.last_published or 0) - availability if publishable else None,
        "unpublishedSince": _iso_or_none(state.changed_at),
        "allocations": allocations,
        "holds": state.holds,
        # storefront orders commercetools does not show yet (domain/order_holds.py)
        "orderHolds": [
            {
                "key": key,
                "quantity": h.quantity,
                "channel": h.channel,
                "placedAt": _iso_or_none(h.placed),
                "baseVersion": h.base,
            }
            for key, h in sorted(state.orders.open.items())
        ],
        "rereadAt": _iso_or_none(state.reread_at),
        "pendingCommands": [
            {"commandId": cid, "eaches": p[0], "channel": p[1], "appliedVersion": p[2]}
            for cid, p in sorted(state.pending.items())
        ],
    }


def po_view(
    po: Mapping[str, Any], book: Mapping[str, Any] | None, s: Settings, now: float
) -> dict[str, Any]:
    rec = load_po(po)
    ack = rec.ack
    tx = rec.tx.to_json()
    if "checkedAt" in tx:
        tx["checkedAt"] = _iso_or_none(tx["checkedAt"])
    po_date = po.get("poDate")
    decisions = po.get("decisions") or {}
    lines = []
    for seq, line in sorted((po.get("lines") or {}).items(), key=lambda kv: _seq(kv[0])):
        d = decisions.get(seq)
        decision = None
        if d is not None:
            hold = d.get("hold") or None
            decision = {
                "status": d.get("status"),
                "accepted": d.get("accepted", 0),
                "backordered": d.get("backordered", 0),
                "rejected": d.get("rejected", 0),
                "rejectionReason": d.get("rejectionReason"),
                "unitSize": d.get("unitSize"),
                "allocatedEaches": d.get("allocatedEaches", 0),
                "scheduledShipDate": d.get("scheduledShipDate"),
                "netCost": d.get("netCost"),
                "hold": f"{hold.get('kind')}: {hold.get('reason')}" if hold else None,
                "findings": [f.get("kind") for f in d.get("findings") or []],
                "decidedAt": d.get("decidedAt"),
            }
        lines.append(
            {
                "itemSequenceNumber": seq,
                "sku": line.get("sku"),
                "asin": line.get("amazonProductIdentifier"),
                "vendorProductIdentifier": line.get("vendorProductIdentifier"),
                "ordered": line.get("orderedQuantity"),
                "eaches": line.get("eaches"),
                "hold": line.get("hold"),
                "decision": decision,
            }
        )
    return {
        "purchaseOrderNumber": po.get("po"),
        "state": po.get("state"),
        "revision": po.get("rev"),
        "poDate": _iso_or_none(po_date),
        "receivedAt": _iso_or_none(po.get("receivedAt")),
        "ackDeadline": _iso_or_none(float(po_date) + s.ack_deadline_s) if po_date else None,
        "ageSeconds": round(now - float(po_date), 1) if po_date else None,
        "acknowledgement": {
            "status": ack_status(po),
            "acknowledged": rec.is_acknowledged(),  # as the ASN flow and sales orders see it
            "revision": ack.rev,
            "builtAt": _iso_or_none(ack.built_at),
            "submittedAt": _iso_or_none(ack.submitted_at),
            "transactionId": ack.txid,
            "error": ack.error,
        },
        "transaction": tx or None,
        "lines": lines,
        "asnFlow": book is not None,
        "shipments": None if book is None else shipments_view(book),
    }


def shipments_view(book: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for sid, sh in sorted((book.get("shipments") or {}).items()):
        out.append(
            {
                "shipmentId": sid,
                "status": sh.get("status"),
                "violations": sh.get("violations") or [],
                "versions": [
                    {
                        "type": v.get("type"),
                        "status": v.get("status"),
                        "dispatchId": v.get("dispatchId"),
                        "confirmedAt": v.get("confirmedAt"),
                        "transactionId": v.get("txid"),
                        "shippedEaches": v.get("shipped") or {},
                        "error": v.get("error"),
                    }
                    for v in sh.get("versions") or []
                ],
            }
        )
    return out


def _seq(s: str) -> tuple[int, str]:
    return (int(s), s) if s.isascii() and s.isdigit() else (1 << 30, s)
