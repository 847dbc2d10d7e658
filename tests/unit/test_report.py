"""The reconciliation report's rows (pure): quantities in cases and eaches from ``pos`` and
``shipments`` records, statuses, discrepancies, totals, month selection and the CSV."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from streams.domain.po_close import shipped_eaches
from streams.domain.watchers import iso
from streams.report import (
    COLUMNS,
    asn_status,
    build_rows,
    month_bounds,
    reconcile_po,
    totals,
    write_csv,
)

H = 3600.0
PO_DATE = 1_801_000_000.0  # 2027-01-26T...Z
NOW = PO_DATE + 2 * H
DEADLINE = 24 * H


def line(amount: int, unit: str, size: int | None = None, sku: str = "S") -> dict[str, Any]:
    qty: dict[str, Any] = {"amount": amount, "unitOfMeasure": unit}
    if size:
        qty["unitSize"] = size
    eaches = amount * (size or 1) if unit == "Eaches" or size else None
    return {"sku": sku, "orderedQuantity": qty, "eaches": eaches, "unitSize": size}


def decision(accepted: int, backordered: int = 0, rejected: int = 0, size: int = 1) -> dict:
    return {"accepted": accepted, "backordered": backordered, "rejected": rejected,
            "unitSize": size, "status": "Partial"}  # fmt: skip


def record(number: str, lines: dict, decisions: dict, **extra: Any) -> dict[str, Any]:
    rec = {"po": number, "state": "New", "rev": "r1", "poDate": PO_DATE, "lines": lines,
           "decisions": decisions}  # fmt: skip
    rec.update(extra)
    return rec


ACKED = {
    "state": "Acknowledged",
    "ack": {"rev": "r1", "hash": "h", "txid": "tx-1", "submittedAt": PO_DATE + 600},
    "tx": {"id": "tx-1", "status": "Success"},
}


def book(*shipments: tuple[str, str, dict[str, int]]) -> dict[str, Any]:
    return {
        "po": "X",
        "shipments": {
            sid: {"status": status, "versions": [{"status": status, "shipped": shipped}]}
            for sid, status, shipped in shipments
        },
    }


def test_an_acknowledged_and_shipped_po() -> None:
    po = record(
        "PO1",
        {"1": line(3, "Cases", 12), "2": line(8, "Eaches")},
        {"1": decision(2, backordered=1, size=12), "2": decision(5, rejected=3)},
        **ACKED,
    )
    shipments = book(("SHIP-A", "accepted", {"1": 24, "2": 5}))
    row = reconcile_po(po, shipments, now=NOW, deadline_s=DEADLINE, ct_order="Open")
    assert row.cells() == [
        "PO1", iso(PO_DATE), "Acknowledged", "2",
        "3", "44",  # ordered: 3 cases; 36 + 8 eaches
        "2", "29",  # accepted: 2 cases; 24 + 5
        "1", "12",  # backordered
        "0", "3",  # rejected
        "2", "29",  # shipped: 24 eaches = 2 cases; + 5 eaches
        "acknowledged", "Success", "accepted", "AMZ-PO1", "Open", "",
    ]  # fmt: skip


def test_discrepancies() -> None:
    po = record(
        "PO2",
        {"1": line(2, "Cases", 10), "2": line(4, "Eaches"), "3": line(1, "Cases")},
        {
            "1": decision(3, size=10),  # acknowledged more than ordered
            "2": decision(4),
            "3": {"status": "Hold", "hold": {"kind": "unit-of-measure", "reason": "no size"}},
        },
        ack={"rev": "r1", "txid": "t", "submittedAt": PO_DATE + 30 * H},
        tx={"id": "t", "status": "Processing"},
    )
    # line 2 shipped 6 of 4; a Replace of shipment A counts once (its last version)
    shipments = {
        "shipments": {
            "A": {
                "status": "submitted",
                "versions": [
                    {"status": "accepted", "shipped": {"002": 2}},
                    {"status": "submitted", "shipped": {"002": 6, "001": 15}},
                ],
            },
            "B": {"status": "invalid", "versions": []},
        }
    }
    row = reconcile_po(po, shipments, now=PO_DATE + 40 * H, deadline_s=DEADLINE)
    assert (row.ordered_cases, row.ordered_eaches) == (3, 24)  # line 3's size is unknown
    assert (row.accepted_cases, row.accepted_eaches) == (3, 34)
    assert (row.shipped_cases, row.shipped_eaches) == (1.5, 21)
    assert row.cells()[12] == "1.5"
    assert row.ack_status == "submitted" and row.transaction_status == "Processing"
    assert row.asn_status == "1 invalid, 1 submitted"
    assert row.ct_order == "-"
    assert row.discrepancies.split("; ") == [
        "line 1: acknowledged 3 > ordered 2",
        "line 2: shipped 6 eaches > acknowledged 4",
        "line 3: ordered in Cases, case size unknown",
        "line 3: on hold (unit-of-measure)",
        "acknowledged 30.0 h after the PO date (deadline 24.0 h)",
        "shipment B invalid",
    ]


def test_not_acknowledged_by_the_deadline() -> None:
    po = record("PO3", {"1": line(1, "Eaches")}, {})
    early = reconcile_po(po, None, now=PO_DATE + 23 * H, deadline_s=DEADLINE)
    assert early.discrepancies == "line 1: no decision"
    late = reconcile_po(po, None, now=PO_DATE + 25 * H, deadline_s=DEADLINE)
    assert late.discrepancies == (
        f"line 1: no decision; not acknowledged by the deadline {iso(PO_DATE + DEADLINE)}"
    )
    assert (late.ack_status, late.transaction_status, late.asn_status) == ("pending", "-", "-")
    failed = record(
        "PO4", {"1": line(1, "Eaches")}, {"1": decision(1)},
        ack={"rev": "r1", "txid": "t"}, tx={"id": "t", "status": "Failure"},
    )  # fmt: skip
    row = reconcile_po(failed, None, now=PO_DATE + 25 * H, deadline_s=DEADLINE)
    assert row.ack_status == "failed"
    assert row.discrepancies.endswith("acknowledgement transaction failed")
    # submitted for an older revision only: the current one is not acknowledged
    older = record(
        "PO4", {"1": line(1, "Eaches")}, {"1": decision(1)}, ack={"rev": "r0", "txid": "t"}
    )
    row = reconcile_po(older, None, now=PO_DATE + 25 * H, deadline_s=DEADLINE)
    assert f"not acknowledged by the deadline {iso(PO_DATE + DEADLINE)}" in row.discrepancies


def test_totals_and_month_selection(tmp_path: Path) -> None:
    in_month = record("PO5", {"1": line(2, "Cases", 6)}, {"1": decision(2, size=6)}, **ACKED)
    other = record("PO6", {"1": line(1, "Eaches")}, {"1": decision(1)}, **ACKED)
    other["poDate"] = month_bounds("2027-02")[0]  # the first second of the next month
    early = record("PO7", {"1": line(5, "Eaches")}, {"1": decision(0, rejected=5)}, **ACKED)
    early["poDate"] = PO_DATE - 1
    month = "2027-01"
    assert month_bounds(month)[0] <= early["poDate"] < PO_DATE < month_bounds(month)[1]
    pos = {"PO5": in_month, "PO6": other, "PO7": early}
    rows = build_rows(pos, {}, month, now=NOW, deadline_s=DEADLINE, ct_orders={"PO5": "Open"})
    assert [r.po_number for r in rows] == ["PO7", "PO5"]  # by date
    assert [r.ct_order for r in rows] == ["-", "Open"]
    total = totals(rows)
    assert total.cells()[:14] == [
        "TOTAL (2 POs)", "", "", "2", "2", "17", "2", "12", "0", "0", "0", "5", "0", "0",
    ]  # fmt: skip
    assert total.discrepancies == "0 PO(s) with discrepancies"
    path = tmp_path / "r.csv"
    write_csv([*rows, total], path)
    with path.open(newline="") as f:
        got = list(csv.reader(f))
    assert got[0] == list(COLUMNS)
    assert [r[0] for r in got[1:]] == ["PO7", "PO5", "TOTAL (2 POs)"]


def test_month_bounds() -> None:
    start, end = month_bounds("2026-12")
    assert iso(start) == "2026-12-01T00:00:00.000Z" and iso(end) == "2027-01-01T00:00:00.000Z"
    for bad in ("2026-13", "2026-1", "26-01", "2026/01"):
        with pytest.raises(ValueError):
            month_bounds(bad)


def test_shipments_helpers() -> None:
    assert shipped_eaches(None) == {} and asn_status(None) == "-"
    b = book(("A", "accepted", {"1": 4}), ("B", "accepted", {"001": 2}), ("C", "failed", {"1": 9}))
    assert shipped_eaches(b) == {"1": 6}  # a failed confirmation shipped nothing Amazon knows
    assert asn_status(b) == "2 accepted, 1 failed"
    assert asn_status(book(("A", "accepted", {}))) == "accepted"
