"""The PO flow's agent on a no-op redelivery (hand-written fakes of the Faust app): the
outputs of the stored record are repeated only by a process that did not queue them itself
(a restarted worker, or the partition's new owner), so a live worker sends each once."""

from __future__ import annotations

from typing import Any

from streams.domain.po_messages import OrderTaken
from streams.domain.purchase_order import PurchaseOrderRecord
from tests.unit.test_ack_sender import FakeApi, make
from tests.unit.test_purchase_order_record import record
from tests.unit.test_sales_orders import ITEMS, raw_order


def outputs(out: list[Any], topic: str) -> list[bytes]:
    return [value for name, _, value, _ in out if name == topic]


async def test_a_built_acknowledgement_is_repeated_by_a_new_process_only_once() -> None:
    f, _ = make(FakeApi())
    topic = f.settings.topic_po_acknowledgements
    po = PurchaseOrderRecord.from_json(record())
    out: list[Any] = []
    f._maybe_acknowledge(b"PO1", po, out)
    [built] = outputs(out, topic)
    f._resend_acknowledgement(b"PO1", po, out)  # a no-op message in the same process
    assert outputs(out, topic) == [built]  # queued here already: not again
    restarted, _ = make(FakeApi())  # the worker killed after saving the record
    again: list[Any] = []
    restarted._resend_acknowledgement(b"PO1", po, again)
    restarted._resend_acknowledgement(b"PO1", po, again)
    assert outputs(again, topic) == [built]  # once, the same bytes


async def test_undecided_lines_are_sent_again_by_a_new_process_only() -> None:
    f, _ = make(FakeApi())
    po = PurchaseOrderRecord.from_json(record(decisions={}))
    raw = raw_order(ITEMS[:2])
    f._remember(b"PO1", f"sku:{po.rev}:{po.state}")  # this process sent the revision's lines
    out: list[Any] = []
    f._apply(b"PO1", po, OrderTaken(raw), out)
    assert outputs(out, "sku") == []
    restarted, _ = make(FakeApi())
    restarted._apply(b"PO1", po, OrderTaken(raw), out)
    assert len(outputs(out, "sku")) >= 1  # the lines' bundles, to their SKU partitions
    before = len(out)
    restarted._apply(b"PO1", po, OrderTaken(raw), out)
    assert len(out) == before  # and only once
