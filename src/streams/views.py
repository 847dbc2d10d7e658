"""``streams exceptions | sku | po``: the worker's JSON API, printed for people (or as JSON).

They ask the worker at ``http://STREAMS_WEB_HOST:STREAMS_WEB_PORT`` (with the bearer token
when ``STREAMS_WEB_TOKEN`` is set). Exit code 0 when the answer was found, 1 when it was
not, or when the worker could not be asked; the reason goes to stderr.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from rich import box
from rich.console import Console
from rich.table import Table

from streams.config import Settings
from streams.domain.watchers import refs_text, sort_exceptions


class ApiError(Exception):
    pass


def base_url(s: Settings) -> str:
    host = s.web_host
    if host in ("0.0.0.0", ""):  # a wildcard bind: ask over loopback
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{s.web_port}"


def fetch(s: Settings, path: str, timeout: float = 10.0) -> tuple[int, Any]:
    """(HTTP status, decoded JSON body); ApiError when the worker cannot be asked."""
    url = base_url(s) + path
    headers = {"Accept": "application/json"}
    if s.web_token is not None and s.web_token.get_secret_value():
        headers["Authorization"] = f"Bearer {s.web_token.get_secret_value()}"
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise ApiError(
                f"the worker at {base_url(s)} refused the request (401): set STREAMS_WEB_TOKEN "
                "to the worker's token"
            ) from None
        try:
            body = json.loads(exc.read())
        except ValueError:
            body = {"error": f"HTTP {exc.code}"}
        return exc.code, body
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiError(
            f"cannot reach the worker at {base_url(s)} ({reason}); is `streams worker` running "
            "with this STREAMS_WEB_HOST / STREAMS_WEB_PORT?"
        ) from None


def console() -> Console:
    # not a terminal (a pipe, a test): wide enough that rows do not wrap mid-word
    out = Console()
    return out if out.is_terminal else Console(width=200)


def _run(s: Settings, path: str, as_json: bool, show: Any) -> int:
    try:
        status, body = fetch(s, path)
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"error: {body.get('error') or f'HTTP {status}'}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(body, indent=2, sort_keys=True))
    else:
        show(console(), body)
    return 0


# --- streams exceptions ------------------------------------------------------------------


def show_exceptions(settings: Settings, owner: str | None = None, as_json: bool = False) -> int:
    query = {"status": "open", **({"owner": owner} if owner else {})}
    return _run(settings, f"/api/exceptions?{urlencode(query)}", as_json, _print_exceptions)


def _print_exceptions(out: Console, body: Mapping[str, Any]) -> None:
    recs = sort_exceptions(body.get("exceptions") or [])
    who = f" owned by {body['owner']}" if body.get("owner") else ""
    if not recs:
        out.print(f"No open exceptions{who} (worker {body.get('worker')}).")
        return
    table = Table(title=f"{len(recs)} open exception(s){who}", box=box.SIMPLE_HEAD)
    for col in ("owner", "severity", "kind", "about", "root cause", "last seen", "count"):
        table.add_column(col, overflow="fold")
    for r in recs:
        sev = str(r.get("severity"))
        style = "bold red" if sev == "critical" else ("yellow" if sev == "warning" else "")
        table.add_row(
            str(r.get("owner")),
            f"[{style}]{sev}[/]" if style else sev,
            str(r.get("kind")),
            refs_text(r.get("refs")) or str(r.get("scope") or ""),
            str(r.get("rootCause")),
            str(r.get("lastSeen")),
            str(r.get("count")),
        )
    out.print(table)
    kinds = sorted({str(r.get("kind")) for r in recs})
    out.print("Runbooks: " + ", ".join(f"docs/runbooks/{k}.md" for k in kinds))


# --- streams sku ---------------------------------------------------------------------------


def show_sku(settings: Settings, sku: str, as_json: bool = False) -> int:
    return _run(settings, f"/api/sku/{quote(sku, safe='')}", as_json, _print_sku)


def _print_sku(out: Console, b: Mapping[str, Any]) -> None:
    m = b.get("mapping") or {}
    out.print(f"[bold]SKU {b['sku']}[/]  (worker {b.get('worker')})")
    if m:
        size = m.get("unitsPerCase") or "-"
        out.print(
            f"mapping: ASIN {m.get('asin') or '-'}, vendor id "
            f"{m.get('vendorProductIdentifier') or '-'}, units per case {size}, Amazon channels "
            f"{', '.join(m.get('amazonChannels') or []) or 'all'}, safety buffer "
            f"{m.get('safetyBuffer', 0)}{', OBSOLETE' if m.get('obsolete') else ''}"
        )
    else:
        out.print("mapping: none (not offered to Amazon)")
    out.print(
        f"availability for Amazon: {b['availability']} = master {b['masterTotal']} - buffer "
        f"{b['safetyBuffer']} - open allocations {b['openAllocations']}"
    )
    published, drift = b.get("lastPublished"), b.get("drift")
    out.print(
        f"last published: {'-' if published is None else published} at "
        f"{b.get('publishedAt') or '-'}; drift {'-' if drift is None else drift}"
    )
    t = Table(title="stock per channel", box=box.SIMPLE_HEAD)
    for col in ("channel", "available", "on stock", "for Amazon", "entry", "version", "updated"):
        t.add_column(col)
    for c in b.get("channels") or []:
        t.add_row(
            c["channel"], str(c["available"]), str(c["onStock"]),
            "yes" if c["amazonEligible"] else "no", c["entryId"], str(c["version"]),
            str(c.get("updatedAt") or "-"),
        )  # fmt: skip
    out.print(t)
    if b.get("allocations"):
        t = Table(title="allocations (PO lines)", box=box.SIMPLE_HEAD)
        for col in ("line", "status", "accepted", "backordered", "rejected", "eaches", "note"):
            t.add_column(col, overflow="fold")
        for a in b["allocations"]:
            note = a.get("hold") or ("released" if a.get("released") else "")
            t.add_row(
                a["line"], str(a.get("status")), str(a.get("accepted")),
                str(a.get("backordered")), str(a.get("rejected")),
                str(a.get("allocatedEaches")), note,
            )  # fmt: skip
        out.print(t)
    if b.get("pendingCommands"):
        t = Table(title="commands not yet reflected by commercetools", box=box.SIMPLE_HEAD)
        for col in ("command", "eaches", "channel", "applied at version"):
            t.add_column(col)
        for p in b["pendingCommands"]:
            applied = "-" if p.get("appliedVersion") is None else str(p["appliedVersion"])
            t.add_row(p["commandId"], str(p["eaches"]), str(p["channel"]), applied)
        out.print(t)
    _print_exceptions_short(out, b.get("exceptions") or [])


# --- streams df ----------------------------------------------------------------------------


def show_df(settings: Settings, number: str, as_json: bool = False) -> int:
    return _run(settings, f"/api/df/{quote(number, safe='')}", as_json, _print_df)


def _print_df(out: Console, b: Mapping[str, Any]) -> None:
    ack = b.get("acknowledgement") or {}
    late = " [red]LATE[/]" if b.get("late") else ""
    out.print(
        f"[bold]DF order {b['purchaseOrderNumber']}[/]  {b.get('outcome')}, ordered "
        f"{b.get('orderDate')}, acknowledge by {b.get('ackBy')}, ship by {b.get('shipBy')}{late}"
    )
    out.print(
        f"acknowledgement: code {ack.get('code') or '-'}, {ack.get('status') or 'not built'}"
        + (f", transaction {ack['transactionId']}" if ack.get("transactionId") else "")
        + (f", errors: {ack['errors']}" if ack.get("errors") else "")
    )
    t = Table(title="lines (eaches)", box=box.SIMPLE_HEAD)
    for col in ("line", "SKU", "ordered", "accepted", "allocated", "decision"):
        t.add_column(col, overflow="fold")
    for ln in b.get("lines") or []:
        t.add_row(
            str(ln["itemSequenceNumber"]), str(ln.get("sku") or "-"), str(ln.get("ordered")),
            str(ln.get("accepted", "-")), str(ln.get("allocatedEaches", "-")),
            str(ln.get("status") or "undecided"),
        )  # fmt: skip
    out.print(t)
    for sh in b.get("shipments") or []:
        problems = "; ".join(sh.get("problems") or [])
        out.print(f"dispatch {sh['dispatchId']}: {sh.get('status')} {problems}".rstrip())


# --- streams po ----------------------------------------------------------------------------


def show_po(settings: Settings, number: str, as_json: bool = False) -> int:
    return _run(settings, f"/api/po/{quote(number, safe='')}", as_json, _print_po)


def _qty(q: Mapping[str, Any] | None) -> str:
    if not q:
        return "-"
    size = f" of {q['unitSize']}" if q.get("unitSize") else ""
    return f"{q.get('amount')} {q.get('unitOfMeasure') or '?'}{size}"


def _print_po(out: Console, b: Mapping[str, Any]) -> None:
    ack = b.get("acknowledgement") or {}
    tx = b.get("transaction") or {}
    out.print(
        f"[bold]PO {b['purchaseOrderNumber']}[/]  state {b.get('state')}, dated "
        f"{b.get('poDate')}, acknowledgement deadline {b.get('ackDeadline')} "
        f"(worker {b.get('worker')})"
    )
    line = f"acknowledgement: {ack.get('status')}"
    if ack.get("transactionId"):
        line += f", transaction {ack['transactionId']} {tx.get('status') or ''}".rstrip()
    if ack.get("submittedAt"):
        line += f", submitted {ack['submittedAt']}"
    if ack.get("error"):
        line += f", error: {ack['error']}"
    out.print(line)
    t = Table(title="lines", box=box.SIMPLE_HEAD)
    for col in ("line", "SKU", "ordered", "eaches", "decision", "accepted", "backordered",
                "rejected", "note"):  # fmt: skip
        t.add_column(col, overflow="fold")
    for ln in b.get("lines") or []:
        d = ln.get("decision") or {}
        note = d.get("hold") or d.get("rejectionReason") or ln.get("hold") or ""
        t.add_row(
            ln["itemSequenceNumber"], str(ln.get("sku") or "-"), _qty(ln.get("ordered")),
            "-" if ln.get("eaches") is None else str(ln["eaches"]),
            str(d.get("status") or "undecided"), str(d.get("accepted", "-")),
            str(d.get("backordered", "-")), str(d.get("rejected", "-")), note,
        )  # fmt: skip
    out.print(t)
    if b.get("shipments") is None:
        out.print("shipments: the ASN flow does not run on this worker")
    elif not b["shipments"]:
        out.print("shipments: none")
    else:
        t = Table(title="shipments (ASNs)", box=box.SIMPLE_HEAD)
        for col in ("shipment", "status", "confirmations", "problems"):
            t.add_column(col, overflow="fold")
        for sh in b["shipments"]:
            versions = ", ".join(
                f"{v.get('type')} {v.get('status')}" for v in sh.get("versions") or []
            )
            problems = "; ".join(
                f"[{v.get('code')}] {v.get('message')}" for v in sh.get("violations") or []
            )
            t.add_row(sh["shipmentId"], str(sh.get("status")), versions or "-", problems)
        out.print(t)
    _print_exceptions_short(out, b.get("exceptions") or [])


def _print_exceptions_short(out: Console, recs: list[Mapping[str, Any]]) -> None:
    if not recs:
        out.print("exceptions: none")
        return
    t = Table(title="exceptions", box=box.SIMPLE_HEAD)
    for col in ("status", "severity", "kind", "owner", "root cause"):
        t.add_column(col, overflow="fold")
    for r in recs:
        t.add_row(
            str(r.get("status")), str(r.get("severity")), str(r.get("kind")),
            str(r.get("owner")), str(r.get("rootCause")),
        )  # fmt: skip
    out.print(t)


# --- streams invoice -----------------------------------------------------------------------


def show_invoice(settings: Settings, number: str, as_json: bool = False) -> int:
    return _run(settings, f"/api/invoice/{quote(number, safe='')}", as_json, _print_invoice)


def _print_invoice(out: Console, b: Mapping[str, Any]) -> None:
    out.print(
        f"[bold]invoice {b['invoiceNumber']}[/]  PO {b['purchaseOrderNumber']}"
        + (" (Direct Fulfillment)" if b.get("program") == "direct-fulfillment" else "")
        + f", {b.get('status')}"
        f", dated {b.get('date')}, total {b.get('total')} {b.get('currency')} "
        f"(worker {b.get('worker')})"
    )
    line = f"shipments: {', '.join(b.get('shipments') or []) or '-'}"
    if b.get("transactionId"):
        line += f"; transaction {b['transactionId']}"
    if b.get("resent"):
        line += " (sent again after a crash)"
    out.print(line)
    for key in ("error", "note"):
        if b.get(key):
            out.print(f"{key}: {b[key]}")
    for e in b.get("errors") or []:
        out.print(f"Amazon: {e.get('code')}: {e.get('message')}")
    t = Table(title="lines", box=box.SIMPLE_HEAD)
    for col in ("line", "eaches", "net amount"):
        t.add_column(col)
    for ln in b.get("lines") or []:
        t.add_row(str(ln["itemSequenceNumber"]), str(ln["eaches"]), str(ln.get("netAmount")))
    out.print(t)
    _print_exceptions_short(out, b.get("exceptions") or [])
