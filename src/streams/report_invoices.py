"""The invoice part of ``streams report reconciliation``: per PO line, what was ordered,
accepted, shipped and invoiced (eaches, and Amazon's cases for case lines), the amount
invoiced, and the differences finance must look at.

Source: the invoice flow's ``invoices`` table changelog (``<app_id>-invoices-changelog``),
beside the ``pos`` and ``shipments`` changelogs the report already reads. Only *live*
invoices count (queued, submitted or accepted at Amazon): a refused invoice billed nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import astuple, dataclass, fields
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from streams.domain.asn_model import seq_key
from streams.domain.invoice_book import InvoiceBook
from streams.domain.po_close import shipped_eaches


@dataclass(frozen=True)
class LineRow:
    po_number: str
    line: str
    unit: str
    unit_size: int
    ordered_eaches: int
    accepted_eaches: int  # accepted + backordered: what our acknowledgement took on
    shipped_eaches: int
    invoiced_eaches: int
    invoiced_cases: str  # "-" for an Eaches line
    invoiced_amount: str  # net, before tax
    currency: str
    shipped_not_invoiced: int
    invoices: str
    differences: str

    def cells(self) -> list[str]:
        return [str(v) for v in astuple(self)]


LINE_COLUMNS = tuple(f.name for f in fields(LineRow))


def invoice_lines(
    po: Mapping[str, Any],
    shipments: Mapping[str, Any] | None,
    invoices: Mapping[str, Any] | None,
    shipped: Mapping[str, int] | None = None,
) -> list[LineRow]:
    """One row per PO line (pure): ``po`` a ``pos`` record, then its ``shipments`` and
    ``invoices`` records (None: that flow has nothing for the PO); ``shipped`` (eaches per
    line) instead of ``shipments`` for a DF order (:func:`df_invoice_lines`)."""
    number = str(po.get("po"))
    book = InvoiceBook(number, invoices) if invoices else None
    billed = book.invoiced_eaches() if book else {}
    amounts = book.invoiced_amounts() if book else {}
    by_line: dict[str, list[str]] = {}
    for n, inv in (book.live() if book else {}).items():
        for key in inv["lines"]:
            by_line.setdefault(key, []).append(f"{n} ({inv['status']})")
    shipped = dict(shipped) if shipped is not None else shipped_eaches(shipments)
    decisions = po.get("decisions") or {}
    rows: list[LineRow] = []
    for seq, line in sorted((po.get("lines") or {}).items(), key=lambda kv: _order(kv[0])):
        key = seq_key(seq)
        qty = line.get("orderedQuantity") or {}
        unit = str(qty.get("unitOfMeasure") or "Eaches")
        d = decisions.get(seq) or {}
        size = int(d.get("unitSize") or qty.get("unitSize") or line.get("unitSize") or 1)
        size = size if unit == "Cases" else 1
        ordered = int(line.get("eaches") or int(qty.get("amount") or 0) * size)
        accepted = (int(d.get("accepted") or 0) + int(d.get("backordered") or 0)) * size
        n_shipped = shipped.get(key, 0)
        n_billed = billed.get(key, 0)
        problems = []
        if n_billed > n_shipped:
            problems.append(f"invoiced {n_billed} > shipped {n_shipped}")
        if n_billed > accepted:
            problems.append(f"invoiced {n_billed} > accepted {accepted}")
        if n_shipped > accepted:
            problems.append(f"shipped {n_shipped} > accepted {accepted}")
        if book is not None and n_shipped > n_billed:
            problems.append(f"{n_shipped - n_billed} shipped, not invoiced")
        cost = line.get("netCost") or {}
        rows.append(
            LineRow(
                po_number=number,
                line=seq,
                unit=unit,
                unit_size=size,
                ordered_eaches=ordered,
                accepted_eaches=accepted,
                shipped_eaches=n_shipped,
                invoiced_eaches=n_billed,
                invoiced_cases=_cases(n_billed, size) if unit == "Cases" else "-",
                invoiced_amount=format(amounts.get(key, Decimal(0)), "f"),
                currency=str(cost.get("currencyCode") or "-"),
                shipped_not_invoiced=max(0, n_shipped - n_billed),
                invoices=", ".join(by_line.get(key, [])) or "-",
                differences="; ".join(problems),
            )
        )
    return rows


def df_shipped(rec: Mapping[str, Any]) -> dict[str, int]:
    """Eaches per line of a DF order's confirmations Amazon took (a ``df_orders`` record)."""
    out: dict[str, int] = {}
    for sh in (rec.get("shipments") or {}).values():
        if sh.get("confirmTx"):
            for i in (sh.get("confirmBody") or {}).get("items") or ():
                key = seq_key(str(i["itemSequenceNumber"]))
                out[key] = out.get(key, 0) + int(i["shippedQuantity"]["amount"])
    return out


def df_invoice_lines(rec: Mapping[str, Any], invoices: Mapping[str, Any] | None) -> list[LineRow]:
    """One row per line of a DF order (``df_orders`` record; its invoice book is DF-<PO>)."""
    po = {"po": f"DF-{rec['number']}", "lines": rec.get("lines") or {},
          "decisions": rec.get("decisions") or {}}  # fmt: skip
    return invoice_lines(po, None, invoices, shipped=df_shipped(rec))


def invoice_discrepancies(
    po: Mapping[str, Any], shipments: Mapping[str, Any] | None, invoices: Mapping[str, Any] | None
) -> list[str]:
    """What the PO row's discrepancies gain: invoice differences per line, and invoices or
    shipments the invoice flow could not bill."""
    if not invoices:
        return []
    out = [f"line {r.line}: {r.differences}" for r in invoice_lines(po, shipments, invoices)
           if r.differences]  # fmt: skip
    book = InvoiceBook(str(po.get("po")), invoices)
    for number, inv in sorted(book.invoices.items()):
        if inv["status"] in ("failed", "rejected"):
            out.append(f"invoice {number} {inv['status']}")
    for sid in book.to_retry():
        if book.shipments[sid]["status"] == "invalid":
            out.append(f"shipment {sid} not invoiced (invoice-invalid)")
    return out


def write_lines_csv(rows: Iterable[LineRow], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(LINE_COLUMNS)
        for r in rows:
            w.writerow(r.cells())


def invoiced_totals(rows: Iterable[LineRow]) -> dict[str, Decimal]:
    """Currency -> net amount invoiced."""
    out: dict[str, Decimal] = {}
    for r in rows:
        out[r.currency] = out.get(r.currency, Decimal(0)) + Decimal(r.invoiced_amount)
    return out


def _cases(eaches: int, size: int) -> str:
    f = Fraction(eaches, size)
    return str(f.numerator) if f.denominator == 1 else f"{float(f):.3f}"


def _order(seq: str) -> tuple[int, str]:
    return (int(seq), seq) if seq.isascii() and seq.isdigit() else (1 << 30, seq)
