"""``streams report reconciliation --month YYYY-MM``: per purchase order dated in the month,
what Amazon ordered, what was acknowledged (accepted, backordered, rejected) and what was
shipped, in cases and in eaches, with the acknowledgement, transaction and ASN status, the
commercetools order, and the discrepancies finance must look at; totals at the end.

Source of truth: the ``pos`` table's changelog (``<app_id>-pos-changelog``) and, when the
ASN flow has run, the ``shipments`` table's changelog, read with aiokafka from the beginning
to the end offsets (latest value per key). No worker needs to run.

Quantities: ``*_cases`` counts the case-ordered lines in Amazon's cases; ``*_eaches`` counts
every line in commercetools eaches (a case line times its case size). A case line whose
size is unknown adds nothing to the eaches and says so in the discrepancies.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from streams.config import Settings
from streams.domain.df_record import DfRecord
from streams.domain.df_record import quantities as df_quantities
from streams.domain.po_close import shipped_eaches
from streams.domain.purchase_order import load as load_po
from streams.domain.watchers import ack_status, hours, iso
from streams.report_invoices import (
    df_invoice_lines,
    invoice_discrepancies,
)

# the commercetools order of a PO is numbered prefix + PO (the sales-order flow's setting
# STREAMS_SALES_ORDER_NUMBER_PREFIX when it exists)
CT_ORDER_PREFIX = "AMZ-"
Number = int | float


@dataclass(frozen=True)
class Row:
    po_number: str
    po_date: str
    po_state: str
    lines: int
    ordered_cases: Number
    ordered_eaches: Number
    accepted_cases: Number
    accepted_eaches: Number
    backordered_cases: Number
    backordered_eaches: Number
    rejected_cases: Number
    rejected_eaches: Number
    shipped_cases: Number
    shipped_eaches: Number
    ack_status: str
    transaction_status: str
    asn_status: str
    ct_order_number: str
    ct_order: str
    discrepancies: str

    def cells(self) -> list[str]:
        return [_fmt(v) for v in astuple(self)]


COLUMNS = tuple(f.name for f in fields(Row))
QUANTITIES = COLUMNS[COLUMNS.index("ordered_cases") : COLUMNS.index("shipped_eaches") + 1]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}".rstrip("0").rstrip(".")
    return str(v)


def _num(x: Fraction) -> Number:
    return int(x) if x.denominator == 1 else float(x)


def ct_order_number(po: str, prefix: str = CT_ORDER_PREFIX) -> str:
    return f"{prefix}{po}"


def order_prefix(s: Settings) -> str:
    return str(getattr(s, "sales_order_number_prefix", CT_ORDER_PREFIX))


def month_bounds(month: str) -> tuple[float, float]:
    """[start, end) of a YYYY-MM month in UTC, as Unix times."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    year, mon = int(month[:4]), int(month[5:])
    start = datetime(year, mon, 1, tzinfo=UTC)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=UTC)
    return start.timestamp(), end.timestamp()


def _seq_key(seq: str) -> str:
    """Sequence numbers compare as numbers: the PO says "1", the ASN "001"."""
    return str(int(seq)) if seq.isascii() and seq.isdigit() else seq


def _seq_order(seq: str) -> tuple[int, str]:
    return (int(seq), seq) if seq.isascii() and seq.isdigit() else (1 << 30, seq)


def asn_status(book: Mapping[str, Any] | None) -> str:
    statuses = Counter(
        str(sh.get("status")) for sh in ((book or {}).get("shipments") or {}).values()
    )
    if not statuses:
        return "-"
    if len(statuses) == 1:
        ((status, n),) = statuses.items()
        return status if n == 1 else f"{n} {status}"
    return ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))


def reconcile_po(
    po: Mapping[str, Any],
    book: Mapping[str, Any] | None,
    *,
    now: float,
    deadline_s: float,
    ct_order: str = "-",
    order_prefix: str = CT_ORDER_PREFIX,
    invoices: Mapping[str, Any] | None = None,
) -> Row:
    """One report row (pure): ``po`` is a ``pos`` record, ``book`` its ``shipments`` record,
    ``invoices`` its ``invoices`` record (invoice differences join the discrepancies)."""
    number = str(po.get("po"))
    decisions = po.get("decisions") or {}
    shipped = shipped_eaches(book)
    q: dict[str, Fraction] = {name: Fraction(0) for name in QUANTITIES}
    problems: list[str] = []
    lines = po.get("lines") or {}
    for seq in sorted(lines, key=_seq_order):
        line = lines[seq]
        ordered = line.get("orderedQuantity") or {}
        amount = int(ordered.get("amount") or 0)
        cases = ordered.get("unitOfMeasure") == "Cases"
        d = decisions.get(seq)
        size: int | None = 1
        if cases:
            size = (d or {}).get("unitSize") or line.get("unitSize") or ordered.get("unitSize")
        if cases:
            q["ordered_cases"] += amount
        if line.get("eaches") is not None:
            q["ordered_eaches"] += int(line["eaches"])
        elif size:
            q["ordered_eaches"] += amount * size
        elif amount:
            problems.append(f"line {seq}: ordered in Cases, case size unknown")
        acknowledged = 0
        if d is None:
            problems.append(f"line {seq}: no decision")
        elif d.get("hold"):
            problems.append(f"line {seq}: on hold ({(d['hold'] or {}).get('kind')})")
        else:
            for part in ("accepted", "backordered", "rejected"):
                n = int(d.get(part) or 0)
                if cases:
                    q[f"{part}_cases"] += n
                q[f"{part}_eaches"] += n * (size or 0)
            acknowledged = int(d.get("accepted") or 0) + int(d.get("backordered") or 0)
            if acknowledged > amount:
                problems.append(f"line {seq}: acknowledged {acknowledged} > ordered {amount}")
        n_shipped = shipped.get(_seq_key(seq), 0)
        if n_shipped:
            q["shipped_eaches"] += n_shipped
            if cases and size:
                q["shipped_cases"] += Fraction(n_shipped, size)
            if n_shipped > acknowledged * (size or 1):
                problems.append(
                    f"line {seq}: shipped {n_shipped} eaches > acknowledged "
                    f"{acknowledged * (size or 1)}"
                )
    status = ack_status(po)
    po_date = po.get("poDate")
    rec = load_po(po)
    if po_date is not None:
        deadline = float(po_date) + deadline_s
        submitted = rec.ack.submitted_at if rec.ack.txid else None
        if not (rec.closed or rec.is_acknowledged()) and now > deadline:
            problems.append(f"not acknowledged by the deadline {iso(deadline)}")
        elif submitted is not None and float(submitted) > deadline:
            problems.append(
                f"acknowledged {hours(float(submitted) - float(po_date))} after the PO date "
                f"(deadline {hours(deadline_s)})"
            )
    if rec.ack_failed():
        problems.append("acknowledgement transaction failed")
    elif rec.ack.error:
        problems.append("acknowledgement rejected by Amazon")
    for sid, sh in sorted(((book or {}).get("shipments") or {}).items()):
        if sh.get("status") in ("invalid", "rejected", "failed", "pending"):
            problems.append(f"shipment {sid} {sh.get('status')}")
    problems.extend(invoice_discrepancies(po, book, invoices))
    return Row(
        po_number=number,
        po_date=iso(float(po_date)) if po_date is not None else "-",
        po_state=str(po.get("state") or "-"),
        lines=len(lines),
        **{name: _num(v) for name, v in q.items()},
        ack_status=status,
        transaction_status=rec.tx.status or "-",
        asn_status=asn_status(book),
        ct_order_number=ct_order_number(number, order_prefix),
        ct_order=ct_order,
        discrepancies="; ".join(problems),
    )


def totals(rows: Iterable[Row]) -> Row:
    rows = list(rows)
    sums = {
        name: _num(sum((Fraction(getattr(r, name)) for r in rows), Fraction(0)))
        for name in QUANTITIES
    }
    flagged = sum(1 for r in rows if r.discrepancies)
    return Row(
        po_number=f"TOTAL ({len(rows)} POs)",
        po_date="",
        po_state="",
        lines=sum(r.lines for r in rows),
        **sums,
        ack_status="",
        transaction_status="",
        asn_status="",
        ct_order_number="",
        ct_order="",
        discrepancies=f"{flagged} PO(s) with discrepancies",
    )


def build_rows(
    pos: Mapping[str, Mapping[str, Any]],
    books: Mapping[str, Mapping[str, Any]],
    month: str,
    *,
    now: float,
    deadline_s: float,
    ct_orders: Mapping[str, str] | None = None,
    order_prefix: str = CT_ORDER_PREFIX,
    invoices: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Row]:
    """Rows for the POs dated in ``month``, by date then number (no totals row)."""
    start, end = month_bounds(month)
    chosen = [
        po for po in pos.values() if po.get("poDate") is not None and start <= po["poDate"] < end
    ]
    chosen.sort(key=lambda po: (po["poDate"], str(po.get("po"))))
    return [
        reconcile_po(
            po,
            books.get(str(po.get("po"))),
            now=now,
            deadline_s=deadline_s,
            ct_order=(ct_orders or {}).get(str(po.get("po")), "-"),
            order_prefix=order_prefix,
            invoices=(invoices or {}).get(str(po.get("po"))),
        )
        for po in chosen
    ]


def df_rows(
    records: Mapping[str, Mapping[str, Any]],
    month: str,
    invoices: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Row]:
    """Rows for the Direct Fulfillment orders dated in ``month`` (``DF-<PO>``, in eaches: DF
    orders have no cases). A DF order is accepted or rejected as a whole, so a rejected
    order's quantity is all rejected, whatever a line had been allocated before. With the
    invoice flow's books (``invoices``, key DF-<PO>) the invoice differences join the notes."""
    start, end = month_bounds(month)
    out = []
    for raw in records.values():
        rec = DfRecord.from_json(raw)
        date = str(rec.details().get("orderDate") or "")
        try:
            at = datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        if not start <= at < end:
            continue
        ordered = sum(int(q["ordered"] or 0) for q in df_quantities(rec))
        accepted = ordered if rec.outcome == "accepted" else 0
        rejected = ordered if rec.outcome == "rejected" else 0
        shipped = sum(
            int(i["shippedQuantity"]["amount"])
            for sh in rec.shipments.values()
            if sh.get("confirmTx")
            for i in (sh.get("confirmBody") or {}).get("items") or []
        )
        notes = []
        if rec.late:
            notes.append("acknowledgement late")
        if rec.outcome == "held":
            notes.append("a line is on hold")
        if accepted and shipped != accepted:
            notes.append(f"shipped {shipped} of {accepted} eaches")
        if invoices:
            bill = invoices.get(f"DF-{rec.number}")
            notes += [f"line {r.line}: {r.differences}" for r in df_invoice_lines(raw, bill)
                      if r.differences]  # fmt: skip
        ack = rec.ack
        out.append(Row(
            f"DF-{rec.number}", date, rec.outcome or "deciding", len(rec.lines),
            0, ordered, 0, accepted, 0, 0, 0, rejected, 0, shipped,
            f"{ack.get('code') or '-'} {ack.get('status') or ('built' if ack else 'none')}",
            str(ack.get("status") or "-"),
            ",".join(sorted({str(sh.get("status")) for sh in rec.shipments.values()})) or "-",
            "-", "-", "; ".join(notes),
        ))  # fmt: skip
    return sorted(out, key=lambda r: (r.po_date, r.po_number))


def write_csv(rows: list[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow(r.cells())
