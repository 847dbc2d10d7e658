"""A Closed purchase order is not always a cancellation (pure rules): what shipped stays out
of stock, only what was accepted and never shipped goes back, and finance's order says how
the PO ended (Complete with its shipped eaches, or Cancelled)."""

from __future__ import annotations

from typing import Any

from streams.domain.po_close import plan_close, received_eaches, seq_key
from streams.domain.sales_order_sync import plan_sync
from streams.domain.sales_orders import CLOSE_FIELD, SHIPPED_FIELD
from tests.unit.test_sales_orders import ITEMS, STOCK, build, existing_from, pos_record, raw_order
from tests.unit.test_warehouse_policy import NOW, allocate, policy, rule, state


def po_doc() -> dict[str, Any]:
    # line 1: 24 eaches accepted (2 cases), line 2: 5 accepted, line 3 rejected
    return pos_record(raw_order(ITEMS), STOCK)


def test_fully_shipped_is_received_and_gives_nothing_back() -> None:
    po = po_doc()
    plan = plan_close(po["lines"], po["decisions"], {"1": 24, "2": 5})
    assert plan.outcome == "received"
    assert (plan.accepted, plan.shipped) == (29, 29)
    assert [ln.released for ln in plan.lines] == [0, 0, 0]
    assert plan.keep("1") == 24 and plan.keep("2") == 5


def test_nothing_shipped_is_a_cancellation_that_gives_everything_back() -> None:
    po = po_doc()
    plan = plan_close(po["lines"], po["decisions"], {})
    assert plan.outcome == "cancelled"
    assert [ln.released for ln in plan.lines] == [24, 5, 0]
    assert plan.keep("1") == 0


def test_part_shipped_gives_back_only_what_never_shipped() -> None:
    po = po_doc()
    plan = plan_close(po["lines"], po["decisions"], {"1": 12})
    assert plan.outcome == "partially-received"
    assert [ln.released for ln in plan.lines] == [12, 5, 0]
    js = plan.to_json()
    assert js["shipped"] == 12 and js["lines"]["1"] == {
        "accepted": 24, "shipped": 12, "released": 12,
    }  # fmt: skip


def test_amazons_received_quantity_counts_when_no_asn_of_ours_says_so() -> None:
    po = po_doc()
    plan = plan_close(po["lines"], po["decisions"], {"1": 12}, received={"1": 24, "2": 5})
    assert plan.outcome == "received"


def test_sequence_numbers_match_however_they_are_padded() -> None:
    assert seq_key("00003") == seq_key("3") == "3"
    assert seq_key("A1") == "A1"


# --- the SKU side: a release keeps what shipped -------------------------------------------------
def test_a_release_keeps_the_shipped_eaches_and_a_redelivery_repeats_only_the_release() -> None:
    s = state({"A": 50})
    p = policy(rule("A", prio=1))
    assert allocate(s, 20, p) == [("A", 20)]
    cmds = s.release_line("PO1#1", "PO1", "1", NOW, p, keep=15)
    assert [(c["action"], c["quantity"]) for c in cmds] == [("release", 5)]
    again = s.release_line("PO1#1", "PO1", "1", NOW, p, keep=15)
    assert again == cmds  # same command ids: commercetools applies them once


def test_a_fully_shipped_line_sends_no_command_at_all() -> None:
    s = state({"A": 50})
    p = policy(rule("A", prio=1))
    allocate(s, 20, p)
    assert s.release_line("PO1#1", "PO1", "1", NOW, p, keep=20) == []
    assert s.release_line("PO1#1", "PO1", "1", NOW, p, keep=20) == []  # redelivered


# --- finance: the order --------------------------------------------------------------------------
def test_a_received_po_completes_its_order_as_shipped() -> None:
    po = po_doc()
    so = build(po)
    assert so is not None
    close = plan_close(po["lines"], po["decisions"], {"1": 24, "2": 5}).to_json()
    plan = plan_sync(existing_from(so.draft()), so, closed=True, close=close)
    assert plan.kind == "update"
    assert {"action": "changeOrderState", "orderState": "Complete"} in plan.actions
    assert {"action": "changeShipmentState", "shipmentState": "Shipped"} in plan.actions
    assert {"action": "setCustomField", "name": SHIPPED_FIELD, "value": 29} in plan.actions
    assert {"action": "setCustomField", "name": CLOSE_FIELD, "value": "received"} in plan.actions
    assert not any(a.get("orderState") == "Cancelled" for a in plan.actions)
    # imported after the close: Complete at once, with the shipped eaches
    draft = plan_sync(None, so, closed=True, close=close).draft
    assert draft is not None
    assert (draft["orderState"], draft["shipmentState"]) == ("Complete", "Shipped")
    assert draft["custom"]["fields"][SHIPPED_FIELD] == 29


def test_a_part_received_po_is_complete_with_a_partial_shipment() -> None:
    po = po_doc()
    so = build(po)
    assert so is not None
    close = plan_close(po["lines"], po["decisions"], {"1": 12}).to_json()
    plan = plan_sync(existing_from(so.draft()), so, closed=True, close=close)
    assert {"action": "changeShipmentState", "shipmentState": "Partial"} in plan.actions
    assert {"action": "changeOrderState", "orderState": "Complete"} in plan.actions
    assert {"action": "setCustomField", "name": SHIPPED_FIELD, "value": 12} in plan.actions


def test_a_cancelled_po_cancels_its_order_and_says_so() -> None:
    po = po_doc()
    so = build(po)
    assert so is not None
    close = plan_close(po["lines"], po["decisions"], {}).to_json()
    plan = plan_sync(existing_from(so.draft()), so, closed=True, close=close)
    assert {"action": "changeOrderState", "orderState": "Cancelled"} in plan.actions
    assert not any(a["action"] == "changeShipmentState" for a in plan.actions)
    assert {"action": "setCustomField", "name": CLOSE_FIELD, "value": "cancelled"} in plan.actions
    # applied: nothing more to do on redelivery
    done = existing_from(so.draft(), orderState="Cancelled")
    assert plan_sync(done, so, closed=True, close=close).kind == "none"


def test_amazons_received_quantity_in_cases_counts_in_eaches() -> None:
    po = po_doc()
    got = received_eaches(
        po["lines"],
        {"1": {"amount": 2, "unitOfMeasure": "Cases", "unitSize": 12},
         "00002": {"amount": 3, "unitOfMeasure": "Eaches"}},
    )  # fmt: skip
    assert got == {"1": 24, "2": 3}
