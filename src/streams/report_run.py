"""``streams report reconciliation``: read the state, build the rows (:mod:`streams.report`),
write the CSVs and print the table. Kafka and commercetools are read through
:mod:`streams.report_sources`."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streams.config import Settings
from streams.report import (
    Row,
    _fmt,
    build_rows,
    ct_order_number,
    df_rows,
    month_bounds,
    order_prefix,
    totals,
    write_csv,
)
from streams.report_invoices import (
    df_invoice_lines,
    invoice_lines,
    invoiced_totals,
    write_lines_csv,
)
from streams.report_sources import ReportError, lookup_ct_orders, read_changelog

# --- I/O: Kafka, commercetools (streams.report_sources), the terminal ------------------


async def _collect(
    s: Settings, month: str, sources: dict[str, Any] | None = None
) -> tuple[list[Row], list[str]]:
    """The rows; ``sources`` (when given) receives the records read ("pos", "shipments",
    "invoices")."""
    notes: list[str] = []
    try:
        pos = await read_changelog(s, f"{s.app_id}-pos-changelog")
    except ReportError as exc:
        raise ReportError(
            f"no purchase-order state: {exc} (has a worker with STREAMS_APP_ID={s.app_id} run?)"
        ) from None
    try:
        books = await read_changelog(s, f"{s.app_id}-shipments-changelog")
    except ReportError as exc:
        books = {}
        notes.append(f"no shipment state ({exc}): shipped quantities are 0, ASN status '-'")
    bills = await _invoice_books(s, notes)
    if sources is not None:
        sources.update(pos=pos, shipments=books, invoices=bills)
    now = time.time()
    prefix = order_prefix(s)
    rows = build_rows(pos, books, month, now=now, deadline_s=s.ack_deadline_s,
                      order_prefix=prefix, invoices=bills)  # fmt: skip
    orders, why = await lookup_ct_orders(
        s, [r.po_number for r in rows], lambda po: ct_order_number(po, prefix)
    )
    if why is not None:
        notes.append(f"commercetools not reachable ({why}): commercetools order shown as '-'")
    if orders:
        rows = build_rows(pos, books, month, now=now, deadline_s=s.ack_deadline_s,
                          ct_orders=orders, order_prefix=prefix, invoices=bills)  # fmt: skip
    try:  # Direct Fulfillment orders, when the DF flow has run
        dfs = await read_changelog(s, f"{s.app_id}-df_orders-changelog")
        rows += df_rows(dfs, month, bills)
        if sources is not None:
            sources["df"] = dfs
    except ReportError as exc:
        notes.append(f"no Direct Fulfillment order state ({exc}): no DF rows")
    return rows, notes


async def _invoice_books(s: Settings, notes: list[str]) -> dict[str, Any]:
    if not getattr(s, "invoices_enabled", False):
        return {}
    try:
        return await read_changelog(s, f"{s.app_id}-invoices-changelog")
    except ReportError as exc:
        notes.append(f"no invoice state ({exc}): nothing shows as invoiced")
        return {}


def reconciliation(settings: Settings, month: str, out: str | Path | None = None) -> int:
    try:
        month_bounds(month)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = Path(out) if out else Path(f"reconciliation-{month}.csv")
    sources: dict[str, Any] = {}
    try:
        rows, notes = asyncio.run(_collect(settings, month, sources))
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_csv([*rows, totals(rows)], path)
    _print(rows, month)
    if getattr(settings, "invoices_enabled", False):
        _invoice_report(rows, sources, path)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    flagged = sum(1 for r in rows if r.discrepancies)
    print(
        f"wrote {path}: {len(rows)} purchase order(s) dated {month}, {flagged} with discrepancies"
    )
    return 0


def _print(rows: list[Row], month: str) -> None:
    from rich import box
    from rich.table import Table

    from streams.views import console

    table = Table(title=f"Purchase-order reconciliation {month}", box=box.SIMPLE_HEAD)
    heads = ("PO", "date", "ordered cs/ea", "accepted cs/ea", "backordered cs/ea",
             "rejected cs/ea", "shipped cs/ea", "ack", "tx", "ASN", "commercetools",
             "discrepancies")  # fmt: skip
    for h in heads:
        table.add_column(h, overflow="fold")

    def pair(r: Row, name: str) -> str:
        return f"{_fmt(getattr(r, name + '_cases'))}/{_fmt(getattr(r, name + '_eaches'))}"

    for r in [*rows, totals(rows)]:
        table.add_row(
            r.po_number, r.po_date[:10], pair(r, "ordered"), pair(r, "accepted"),
            pair(r, "backordered"), pair(r, "rejected"), pair(r, "shipped"), r.ack_status,
            r.transaction_status, r.asn_status,
            f"{r.ct_order_number} {r.ct_order}".strip(), r.discrepancies,
        )  # fmt: skip
    console().print(table)


def _invoice_report(rows: list[Row], sources: Mapping[str, Any], path: Path) -> None:
    """Per PO line: ordered / accepted / shipped / invoiced, next to the PO report."""
    pos, books, bills = sources["pos"], sources["shipments"], sources["invoices"]
    lines = [
        ln
        for r in rows
        if r.po_number in pos
        for ln in invoice_lines(pos[r.po_number], books.get(r.po_number), bills.get(r.po_number))
    ]
    dfs = sources.get("df") or {}  # Direct Fulfillment orders: rows DF-<PO>, records <PO>
    lines += [
        ln
        for r in rows
        if r.po_number.startswith("DF-") and r.po_number[3:] in dfs
        for ln in df_invoice_lines(dfs[r.po_number[3:]], bills.get(r.po_number))
    ]
    lines_path = path.with_name(path.stem + "-lines.csv")
    write_lines_csv(lines, lines_path)
    amounts = ", ".join(f"{format(v, 'f')} {c}" for c, v in sorted(invoiced_totals(lines).items()))
    print(f"wrote {lines_path}: {len(lines)} PO line(s); invoiced (net) {amounts or 'nothing'}")
