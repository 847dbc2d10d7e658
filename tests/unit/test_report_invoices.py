"""The reconciliation report's invoice part (pure): per PO line ordered / accepted /
shipped / invoiced, amounts, and the differences that join the PO row's discrepancies."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from streams.domain.invoice_book import InvoiceBook
from streams.report import build_rows, reconcile_po
from streams.report_invoices import invoice_lines, invoiced_totals
from streams.report_run import _invoice_report
from tests.unit.test_invoices import NOW, RULES, model_check, pos_record, terms


def shipments(**shipped: dict[str, int]) -> dict[str, Any]:
    return {
        "shipments": {
            sid: {"status": "accepted", "versions": [{"status": "accepted", "shipped": lines}]}
            for sid, lines in shipped.items()
        }
    }


def test_lines_show_what_was_invoiced_and_what_shipped_without_an_invoice() -> None:
    lines = [("1", "Cases", 12, 4, 4, "1.995"), ("2", "Eaches", 1, 10, 8, "7.33")]
    po = pos_record("PO1", *lines)
    book = InvoiceBook("PO1")
    book.on_shipment("S1", "d1", {"1": 24, "2": 3}, terms(*lines), RULES, model_check, NOW)
    ships = shipments(S1={"1": 24, "2": 3}, S2={"2": 2})  # S2 accepted, not invoiced yet
    one, two = invoice_lines(po, ships, book.to_json())
    assert (one.ordered_eaches, one.accepted_eaches, one.shipped_eaches) == (48, 48, 24)
    assert (one.invoiced_eaches, one.invoiced_cases, one.invoiced_amount) == (24, "2", "47.88")
    assert one.invoices == "INV-PO1-1 (queued)" and one.differences == ""
    assert (two.shipped_eaches, two.invoiced_eaches, two.shipped_not_invoiced) == (5, 3, 2)
    assert two.invoiced_cases == "-" and two.differences == "2 shipped, not invoiced"
    assert invoiced_totals([one, two]) == {"USD": Decimal("69.87")}
    row = reconcile_po(po, ships, now=0.0, deadline_s=1e12, invoices=book.to_json())
    assert "line 2: 2 shipped, not invoiced" in row.discrepancies


def test_a_refused_invoice_bills_nothing_and_is_a_discrepancy() -> None:
    lines = [("1", "Eaches", 1, 10, 10, "1.00")]
    book = InvoiceBook("PO1")
    book.on_shipment("S1", "d1", {"1": 4}, terms(*lines), RULES, model_check, NOW)
    book.on_submitted("INV-PO1-1", book.invoices["INV-PO1-1"]["digest"], "tx", 1.0)
    book.on_transaction("INV-PO1-1", "tx", "Failure", [{"code": "X", "message": "y"}], NOW)
    po = pos_record("PO1", *lines)
    (line,) = invoice_lines(po, shipments(S1={"1": 4}), book.to_json())
    assert (line.invoiced_eaches, line.invoiced_amount, line.invoices) == (0, "0", "-")
    row = reconcile_po(
        po, shipments(S1={"1": 4}), now=0.0, deadline_s=1e12, invoices=book.to_json()
    )
    assert "invoice INV-PO1-1 failed" in row.discrepancies


def test_the_report_writes_the_lines_csv_beside_the_po_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [("1", "Eaches", 1, 10, 10, "2.50")]
    po = {**pos_record("PO1", *lines), "poDate": 1.0}
    book = InvoiceBook("PO1")
    book.on_shipment("S1", "d1", {"1": 4}, terms(*lines), RULES, model_check, NOW)
    rows = build_rows(
        {"PO1": po}, {}, "1970-01", now=2.0, deadline_s=1e12, invoices={"PO1": book.to_json()}
    )
    sources = {
        "pos": {"PO1": po},
        "shipments": {"PO1": shipments(S1={"1": 4})},
        "invoices": {"PO1": book.to_json()},
    }
    _invoice_report(rows, sources, tmp_path / "reconciliation-1970-01.csv")
    with (tmp_path / "reconciliation-1970-01-lines.csv").open() as f:
        got = list(csv.DictReader(f))
    assert [
        (r["line"], r["shipped_eaches"], r["invoiced_eaches"], r["invoiced_amount"]) for r in got
    ] == [("1", "4", "4", "10.00")]
    assert "invoiced (net) 10.00 USD" in capsys.readouterr().out
