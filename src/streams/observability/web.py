"""The worker's status page and JSON API on Faust's web server (aiohttp underneath).

    GET /status               HTML for people: open exceptions by owner and severity, flows
    GET /api/exceptions       ?owner=&status=open|resolved|all&kind=
    GET /api/sku/{sku}        stock per channel, allocations, holds, commands, last published
    GET /api/po/{number}      lines, decisions, acknowledgement, transaction, shipments
    POST /api/exceptions/{id}/resolve   a person resolves an exception ({"note": "..."})

The server binds ``STREAMS_WEB_HOST`` (loopback by default). With ``STREAMS_WEB_TOKEN`` set,
every path but ``/metrics`` and ``/health`` needs ``Authorization: Bearer <token>``.

Tables are read without a current event, so Faust's store looks the key up in every local
partition. A key another worker owns is answered with 404 naming this worker and, when the
assignor knows it, the owner: this worker cannot see that state.
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from html import escape
from typing import TYPE_CHECKING, Any

import faust
import faust.web
from aiohttp import web as aioweb
from faust.types import TP

from streams.adapters.codecs import dumps, loads
from streams.config import Settings
from streams.domain.exceptions import KINDS
from streams.domain.inventory import SkuState
from streams.domain.purchase_order import load as load_po
from streams.domain.watchers import (
    OWNERS_ORDER,
    SEVERITY_RANK,
    ack_status,
    iso,
    parse_thresholds,
    refs_text,
    sort_exceptions,
)
from streams.observability import metrics as M

if TYPE_CHECKING:
    from streams.agents.ops import OpsFlow

OPEN_PATHS = frozenset({"/metrics", "/health"})
STATUSES = ("open", "resolved", "all")
JSON = "application/json"


# --- security ----------------------------------------------------------------------------


def bearer_guard(token: str) -> Callable[..., Awaitable[aioweb.StreamResponse]]:
    """aiohttp middleware: everything but /metrics and /health needs the bearer token."""
    expected = token.encode()

    @aioweb.middleware
    async def guard(
        request: aioweb.Request,
        handler: Callable[[aioweb.Request], Awaitable[aioweb.StreamResponse]],
    ) -> aioweb.StreamResponse:
        if request.path not in OPEN_PATHS:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            # compare_digest: the time taken says nothing about how much of the token matched
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), expected
            ):
                return aioweb.json_response(
                    {
                        "error": "unauthorized: this worker requires 'Authorization: Bearer "
                        "<token>' (the value of STREAMS_WEB_TOKEN)"
                    },
                    status=401,
                    headers={"WWW-Authenticate": 'Bearer realm="streams"'},
                )
        return await handler(request)

    return guard


def install_guard(app: faust.App, settings: Settings) -> None:
    token = settings.web_token.get_secret_value() if settings.web_token else ""
    if token:
        # before the server starts: aiohttp freezes its middleware list on startup
        app.web.web_app.middlewares.append(bearer_guard(token))  # type: ignore[attr-defined]


# --- views -------------------------------------------------------------------------------


def register(app: faust.App, settings: Settings, ops: OpsFlow) -> None:
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
        body = sku_view(state, settings, ops.offered(state))
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


def missing(ops: OpsFlow, table: Any, key: bytes, what: str) -> tuple[dict[str, Any], int]:
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


def sku_view(state: SkuState, s: Settings, offered: int | None = None) -> dict[str, Any]:
    """``offered``: what the inventory flow would tell Amazon now (None: not offered)."""
    m = state.mapping
    channels = s.default_amazon_channels
    buffer = m.safetyBuffer if m is not None and m.safetyBuffer else s.default_safety_buffer
    publishable = state.publishable() and offered is not None
    availability = offered if offered is not None else state.availability(channels, buffer)
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
                "amazonEligible": m is None or m.eligible(ch, None, channels),
                "updatedAt": e.at,
            }
            for ch, e in sorted(state.channels.items())
        ],
        "masterTotal": state.master_total(channels),
        "safetyBuffer": buffer,
        "openAllocations": state.allocated,
        "availability": availability,
        "lastPublished": state.last_published,
        "publishedAt": _iso_or_none(state.published_at),
        "drift": (state.last_published or 0) - availability if publishable else None,
        "unpublishedSince": _iso_or_none(state.changed_at),
        "allocations": allocations,
        "holds": state.holds,
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


# --- the status page ---------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3} .critical{color:#b00020;font-weight:bold} .warning{color:#a15c00}
.ok{color:#1b7a1b} .stale{color:#b00020;font-weight:bold} small{color:#666}
"""


def _metric_rows(metric: Any) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in metric.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    ]


def render_status(ops: OpsFlow, table: Mapping[str, Mapping[str, Any]], now: float) -> str:
    s = ops.settings
    e = escape
    open_ = sort_exceptions(r for r in table.values() if r.get("status") == "open")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>streams status - {e(ops.worker)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Stream processor status</h1><p>Worker <b>{e(ops.worker)}</b>, application "
        f"<b>{e(s.app_id)}</b>, at {e(iso(now))}. Rebalancing: "
        f"{'yes' if ops.app.rebalancing else 'no'}. "
        "<a href='/metrics'>/metrics</a> (Prometheus) &middot; <a href='/health'>/health</a>"
        " &middot; <a href='/api/exceptions'>/api/exceptions</a> (JSON; also "
        "<code>/api/sku/&lt;sku&gt;</code>, <code>/api/po/&lt;number&gt;</code>)</p>",
        "<p><small>An <b>exception</b> is a problem a team must act on. <b>critical</b>: act "
        "now; <b>warning</b>: act today. Each one says why it happened and links its runbook; "
        "most resolve themselves once their cause is fixed. Owners: operations (POs, master "
        "data), finance (prices, reconciliation), ecommerce (what Amazon shows), fulfilment "
        "(shipments, ASNs), platform (workers, Kafka, integrations).</small></p>",
        f"<h2>Open exceptions ({len(open_)})</h2>",
    ]
    if not open_:
        parts.append("<p class='ok'>None.</p>")
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in open_:
        groups[str(r.get("owner"))].append(r)
    for owner, recs in groups.items():
        by_sev: dict[str, int] = defaultdict(int)
        for r in recs:
            by_sev[str(r.get("severity"))] += 1
        counts = ", ".join(
            f"{n} {sev}" for sev, n in sorted(by_sev.items(), key=lambda kv: SEVERITY_RANK[kv[0]])
        )
        parts.append(f"<h3>{e(owner)} ({counts})</h3><table><tr><th>severity</th><th>kind</th>")
        parts.append(
            "<th>about</th><th>root cause</th><th>first seen</th><th>last seen</th>"
            "<th>count</th><th>runbook</th></tr>"
        )
        for r in recs:
            sev = str(r.get("severity"))
            parts.append(
                f"<tr><td class='{e(sev)}'>{e(sev)}</td><td>{e(str(r.get('kind')))}</td>"
                f"<td>{e(refs_text(r.get('refs')) or str(r.get('scope') or ''))}</td>"
                f"<td>{e(str(r.get('rootCause')))}</td><td>{e(str(r.get('firstSeen')))}</td>"
                f"<td>{e(str(r.get('lastSeen')))}</td><td>{e(str(r.get('count')))}</td>"
                f"<td><a href='{e(ops.runbook_url(r))}'>{e(str(r.get('kind')))}.md</a></td></tr>"
            )
        parts.append("</table>")

    thresholds = parse_thresholds(s.sync_stale_s)
    parts.append(
        "<h2>Flows</h2><p><small>Last success of each flow on <em>this</em> worker "
        "(streams_last_success_timestamp_seconds). A flow is judged stale past its "
        "threshold (STREAMS_SYNC_STALE_S) only while this worker does its work.</small></p>"
        "<table><tr><th>flow</th><th>last success</th><th>ago</th><th>threshold</th>"
        "<th>state</th></tr>"
    )
    for labels, value in sorted(_metric_rows(M.LAST_SUCCESS), key=lambda x: x[0]["flow"]):
        flow = labels["flow"]
        limit = thresholds.get(flow)
        ago = now - value
        state = "not judged" if limit is None else ("stale" if ago > limit else "ok")
        parts.append(
            f"<tr><td>{e(flow)}</td><td>{e(iso(value))}</td><td>{ago:.0f} s</td>"
            f"<td>{'-' if limit is None else f'{limit:.0f} s'}</td>"
            f"<td class='{'stale' if state == 'stale' else 'ok'}'>{state}</td></tr>"
        )
    parts.append("</table>")

    lag: dict[str, float] = defaultdict(float)
    partitions: dict[str, int] = defaultdict(int)
    for labels, value in _metric_rows(M.LAG):
        lag[labels["topic"]] += value
        partitions[labels["topic"]] += 1
    parts.append(
        "<h2>Consumer lag</h2><p><small>Records not processed yet on the partitions this "
        "worker owns (refreshed every 5 s).</small></p><table><tr><th>topic</th>"
        "<th>partitions here</th><th>lag</th></tr>"
    )
    for topic in sorted(lag):
        parts.append(
            f"<tr><td>{e(topic)}</td><td>{partitions[topic]}</td><td>{lag[topic]:.0f}</td></tr>"
        )
    parts.append("</table><h2>Queues</h2><table><tr><th>queue</th><th>length</th></tr>")
    for labels, value in sorted(_metric_rows(M.PENDING), key=lambda x: x[0]["queue"]):
        parts.append(f"<tr><td>{e(labels['queue'])}</td><td>{value:.0f}</td></tr>")
    parts.append("</table><h2>Dead letters since start</h2><table><tr><th>source topic</th>")
    parts.append("<th>reason</th><th>records</th></tr>")
    for labels, value in sorted(_metric_rows(M.DLQ), key=lambda x: tuple(x[0].values())):
        parts.append(
            f"<tr><td>{e(labels['topic'])}</td><td>{e(labels['reason'])}</td>"
            f"<td>{value:.0f}</td></tr>"
        )
    parts.append("</table>")
    resolved = [r for r in table.values() if r.get("status") == "resolved"]
    resolved.sort(key=lambda r: str(r.get("resolvedAt") or r.get("lastSeen")), reverse=True)
    parts.append(
        f"<h2>Recently resolved ({len(resolved)} kept)</h2><table><tr><th>kind</th>"
        "<th>owner</th><th>about</th><th>resolved</th><th>why</th></tr>"
    )
    for r in resolved[:20]:
        parts.append(
            f"<tr><td>{e(str(r.get('kind')))}</td><td>{e(str(r.get('owner')))}</td>"
            f"<td>{e(refs_text(r.get('refs')) or str(r.get('scope') or ''))}</td>"
            f"<td>{e(str(r.get('resolvedAt') or r.get('lastSeen')))}</td>"
            f"<td>{e(str(r.get('resolution') or ''))}</td></tr>"
        )
    parts.append(
        f"</table><p><small>Exception kinds: {e(', '.join(sorted(KINDS)))}; each has a "
        "runbook page docs/runbooks/&lt;kind&gt;.md.</small></p></body></html>"
    )
    return "".join(parts)
