"""The demo's live view fits the terminal it is shown in, 80x24 as well as 160x48: no line
wider than the terminal, no more lines than it has, and every id shown whole or by the part
that tells it apart from the others (it once cut SKUs and POs to "SKU-00…")."""

from __future__ import annotations

import io
import re

import pytest
from rich.cells import cell_len
from rich.console import Console

from streams.config import Settings
from streams.demo.layout import Column, Section, distinct, join_fitting, share
from streams.demo.traffic import World
from streams.demo.view import View, render
from streams.sandbox.amazon.generator import default_catalogue

POS = ("7K2MX9QA", "7K2MX9QB", "P4TTR2ZB", "Q8W2E3R4", "Z9Y8X7W6", "AB12CD34")


def busy() -> tuple[Settings, World, View]:
    """A view with every panel full: more rows than a small terminal can show."""
    s = Settings()
    w = World(default_catalogue(40))
    w.channels = {k: f"6f1c2a9e-{n}111-4c4c-9d9d-00000000000{n}"
                  for n, k in enumerate(("wh-east", "wh-west", "store-nyc"))}  # fmt: skip
    w.sent.update(changes=123456, duplicates=1200, bad=37, pos=170, orders=8800,
                  order_lines=19000, orders_cancelled=41, orders_out_of_stock=22,
                  dispatches=99)  # fmt: skip
    v = View()
    for i in range(1, 9):
        v.deltas.appendleft({"sku": f"SKU-{i:05d}", "buyerProductIdentifier": w.catalogue[i].asin,
                             "availableQuantity": {"amount": 1000 + i}, "previousAmount": 990 + i,
                             "kind": "delta"})  # fmt: skip
    cases = {"amount": 5, "unitOfMeasure": "Cases", "unitSize": 6}
    ack = {"acknowledgementCode": "Accepted", "acknowledgedQuantity": cases}
    for n, po in enumerate(POS):
        v.acks.appendleft({"purchaseOrderNumber": po, "items": [{"itemAcknowledgements": [ack]}]})
        v.commands.appendleft({"purchaseOrderNumber": po, "sku": f"SKU-{n + 11:05d}",
                               "supplyChannel": w.channels["wh-west"], "action": "reserve",
                               "quantity": 30, "commandId": f"{po}-1"})  # fmt: skip
    for i in range(5):
        v.exceptions.appendleft({"kind": "ack-deadline-near", "owner": "operations",
                                 "refs": {"po": POS[i], "sku": f"SKU-{i + 20:05d}"},
                                 "rootCause": "the PO is 20 h old and not acknowledged; "
                                              "Amazon's window closes at 24 h"})  # fmt: skip
        v.exception_kinds[f"e{i}"] = "ack-deadline-near"
    for i in range(3):
        v.dlq.appendleft(f"not JSON: Expecting value: line 1 column 1 (char 0) at offset {i}")
    for i in range(4):
        v.asns.appendleft({"shipmentIdentifier": f"ASN-{POS[i]}-1",
                           "shipmentConfirmationType": "Original"})  # fmt: skip
    v.counts = {s.topic_inventory_updates: 98765, s.topic_shipment_confirmations: 4}
    return s, w, v


def shown(width: int, height: int) -> list[str]:
    """What a terminal of that size shows (rich wraps what is too wide: that would count)."""
    s, w, v = busy()
    console = Console(width=width, height=height, file=io.StringIO(), record=True,
                      color_system=None, force_terminal=True)  # fmt: skip
    console.print(render(s, w, v, width=width, height=height))
    return console.export_text().rstrip("\n").split("\n")


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 30), (160, 48)])
def test_the_view_fits_the_terminal(size: tuple[int, int]) -> None:
    width, height = size
    lines = shown(width, height)
    assert len(lines) <= height
    assert max(cell_len(ln) for ln in lines) <= width
    text = "\n".join(lines)
    titles = ("availability sent to Amazon", "acknowledgements to Amazon",
              "reservations → commercetools", "owned exceptions", "ct.messages.dlq")  # fmt: skip
    for title in titles:
        assert title in text, title
    assert "Ctrl-C stops" in text


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_ids_are_shown_whole(size: tuple[int, int]) -> None:
    text = "\n".join(shown(*size))
    # the newest row of each panel is there, its ids whole
    assert re.search(r"^SKU-00008\s+B0\w{8}\s+1008", text, re.M)
    # (a panel on the right of a wide terminal starts after two spaces)
    assert re.search(r"(^|  )AB12CD34\s+1\s+30", text, re.M)
    assert re.search(r"(^|  )AB12CD34\s+SKU-00016\s+wh-west\s+-30", text, re.M)
    assert "po=Z9Y8X7W6 sku=SKU-00024" in text
    assert "ASN-Q8W2E3R4-1 (Original)" in text
    # no id is cut anywhere
    assert not re.search(r"(SKU-\d{0,4}|ASN-\w*|po=\w{0,7}|B0\w{0,7})…", text)
    skus = re.findall(r"SKU-\d+", text)
    assert skus and all(len(x) == len("SKU-00001") for x in skus)


def test_a_wide_terminal_shows_more_rows_than_a_small_one() -> None:
    small, wide = "\n".join(shown(80, 24)), "\n".join(shown(160, 48))
    assert all(f"SKU-{i:05d}" in wide for i in range(1, 9))  # all eight deltas
    assert "SKU-00001" not in small
    assert all(po in wide for po in POS)
    # two panels side by side on a wide terminal: the panels' titles share a line
    assert any("availability sent" in ln and "acknowledgements" in ln for ln in wide.split("\n"))


def test_distinct_elides_the_shared_part_and_never_makes_two_ids_alike() -> None:
    assert distinct(["SKU-00017", "SKU-00012"], 9) == ["SKU-00017", "SKU-00012"]
    assert distinct(["SKU-00017", "SKU-00012"], 5) == ["…0017", "…0012"]
    # the tails agree for four characters: showing fewer would make them one
    ids = ["A-1-XY", "B-1-XY"]
    out = distinct(ids, 3)
    assert len(set(out)) == 2 and all(
        i.endswith(o.lstrip("…")) for i, o in zip(ids, out, strict=True)
    )


def test_a_narrow_section_drops_columns_before_it_cuts_ids() -> None:
    sec = Section("t", [Column("SKU", is_id=True, priority=9), Column("ASIN", is_id=True),
                        Column("now", priority=8), Column("why", flex=True)])  # fmt: skip
    long = [f"VENDOR-CATALOGUE-SKU-{i:05d}" for i in (17, 12, 3)]
    sec.rows = [[sku, "B0AVH6DY4T", "12", "a reason that is long"] for sku in long]
    lines = sec.lines(30, 3)
    assert all(cell_len(ln) <= 30 for ln in lines)
    rows = lines[2:]
    assert len({r.split()[0] for r in rows}) == 3  # still three different SKUs
    assert all(full.endswith(r.split()[0].lstrip("…")) for full, r in zip(long, rows, strict=True))
    assert all(r.split()[1] == "12" for r in rows)  # "now" kept, ASIN and the reason left out
    wide = sec.lines(100, 3)
    assert long[0] in wide[2] and "B0AVH6DY4T" in wide[2] and "a reason that is long" in wide[2]


def test_rows_are_shared_so_every_panel_shows_some() -> None:
    assert share(5, [8, 6, 6, 5]) == [2, 1, 1, 1]
    assert share(100, [8, 6, 1]) == [8, 6, 1]
    assert share(0, [3, 3]) == [0, 0]


def test_lists_of_ids_are_cut_between_ids() -> None:
    ids = ["ASN-1 (Original)", "ASN-2 (Original)", "ASN-3 (Original)"]
    assert join_fitting(ids, 100) == ", ".join(ids)
    assert join_fitting(ids, 30) == "ASN-1 (Original), +2 more"
