"""The typed ``pos`` record: one meaning of "acknowledged" for every reader, the revision
rule, old records loading, the PO flow's messages and Amazon's answers (pure rules)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streams.domain import ack_policy, po_book, po_messages
from streams.domain.asn_state import po_state_from_record
from streams.domain.po_messages import (
    AckFailed,
    Acknowledged,
    AckSubmitted,
    Allocate,
    Closed,
    Decisions,
    OrderTaken,
    Received,
    Release,
    TxChecked,
    sku_message,
)
from streams.domain.purchase_order import (
    SCHEMA_VERSION,
    PurchaseOrderRecord,
    decision_revision,
    is_acknowledged,
)
from streams.domain.sales_orders import build_sales_order
from streams.domain.watchers import ack_deadline_want
from tests.unit.test_sales_orders import ITEMS, MAPPINGS, STOCK, pos_record, raw_order

H = 3600.0
T0 = 1_800_000_000.0


def record(**extra: Any) -> dict[str, Any]:
    """A version-0 record (no ``"v"``), as the flow stored it before this schema, with every
    line decided (one accepted in full, one in part) and no acknowledgement built yet."""
    rec = pos_record(raw_order(ITEMS[:2]), STOCK)
    del rec["ack"]
    rec.update(poDate=T0 - 30 * H, receivedAt=T0 - 30 * H)
    rec.update(extra)
    return rec


REV = record()["rev"]
OLD_REV = "2000-01-01T00:00:00+00:00"


def readers(po: dict[str, Any]) -> dict[str, bool]:
    """Whether each reader of the record treats the PO as acknowledged."""
    asn = po_state_from_record(po, "VEND1")
    want = ack_deadline_want(po, T0, 18 * H, 24 * H)
    so = build_sales_order(po, order_type_key="o", line_type_key="l")
    return {
        "record": is_acknowledged(po),
        "asn": not isinstance(asn, str),
        "watcher": want is None,
        "sales-orders": so is not None,
    }


SUBMITTED = {"rev": REV, "hash": "h", "builtAt": T0 - 29 * H, "txid": "tx-1",
             "submittedAt": T0 - 29 * H}  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        # the three readers used to disagree on each of these
        pytest.param({}, False, id="nothing built"),
        pytest.param({"ack": {"rev": REV, "hash": "h"}}, False, id="built, not submitted"),
        pytest.param({"ack": {**SUBMITTED, "rev": OLD_REV}}, False, id="submitted, older rev"),
        pytest.param({"ack": SUBMITTED}, True, id="submitted, processing"),
        pytest.param(
            {"ack": SUBMITTED, "tx": {"id": "tx-1", "status": "Failure"}}, False, id="tx failed"
        ),
        pytest.param(
            {"ack": SUBMITTED, "tx": {"id": "tx-1", "status": "Success"}}, True, id="tx success"
        ),
        pytest.param(
            {"ack": {**SUBMITTED, "txid": "tx-2"}, "tx": {"id": "tx-1", "status": "Failure"}},
            True,
            id="an older tx failed",
        ),
        pytest.param({"state": "Acknowledged"}, True, id="Amazon shows it acknowledged"),
    ],
)
def test_every_reader_agrees_on_acknowledged(extra: dict[str, Any], expected: bool) -> None:
    po = record(**extra)
    assert readers(po) == dict.fromkeys(("record", "asn", "watcher", "sales-orders"), expected)


def test_a_closed_po_owes_no_acknowledgement_and_ships_nothing() -> None:
    po = record(state="Closed", ack=SUBMITTED)
    assert ack_deadline_want(po, T0, 18 * H, 24 * H) is None
    assert "Closed" in str(po_state_from_record(po, "VEND1"))


def test_an_old_record_loads_and_is_stored_with_the_schema_version() -> None:
    old = record(ack=SUBMITTED, tx={"id": "tx-1", "status": "Processing", "checkedAt": 5.0})
    assert "v" not in old
    old["future"] = {"kept": True}  # a key this version does not know is carried along
    rec = PurchaseOrderRecord.from_json(old)
    assert rec.version == 0 and rec.ack.txid == "tx-1" and rec.tx.status == "Processing"
    stored = rec.to_json()
    assert stored == {"v": SCHEMA_VERSION, **old}
    again = PurchaseOrderRecord.from_json(stored)
    assert again.version == SCHEMA_VERSION and again.to_json() == stored


def test_a_record_of_a_newer_schema_loads_what_this_version_knows() -> None:
    newer = {**record(ack=SUBMITTED), "v": SCHEMA_VERSION + 1, "later": [1]}
    rec = PurchaseOrderRecord.from_json(newer)
    assert rec.version == SCHEMA_VERSION + 1 and rec.is_acknowledged()
    assert rec.to_json()["later"] == [1]
    with pytest.raises(ValueError, match="schema version"):
        PurchaseOrderRecord.from_json({"v": "one", "po": "PO1"})


@pytest.mark.parametrize(
    ("rev", "state", "change"),
    [
        (REV, "New", "duplicate"),
        (OLD_REV, "Acknowledged", "stale"),
        (REV, "Acknowledged", "state"),
        (REV, "Closed", "new"),  # a close is always planned
        ("2027-01-16T08:00:00+00:00", "New", "new"),
    ],
)
def test_revision_rule(rev: str, state: str, change: str) -> None:
    assert PurchaseOrderRecord.from_json(record()).revision_change(rev, state) == change
    assert PurchaseOrderRecord().revision_change(rev, state) == "new"


def test_decisions_of_another_revision_or_redelivered_are_not_new() -> None:
    rec = PurchaseOrderRecord.from_json(record(decisions={}))
    d = record()["decisions"]["1"]
    assert rec.on_decision({**d, "revision": "2027-01-14T08:00:00Z"}) is False
    assert rec.on_decision(d) is True
    assert rec.on_decision(dict(d)) is False
    assert decision_revision(REV.replace("+00:00", "Z")) == REV
    assert decision_revision(None) is None and decision_revision("nope") is None


def test_ready_to_acknowledge_once_per_revision_and_never_held() -> None:
    rec = PurchaseOrderRecord.from_json(record())
    assert rec.ready_to_acknowledge()
    rec.on_built("h", T0)
    assert not rec.ready_to_acknowledge() and rec.built_for_current()
    held = PurchaseOrderRecord.from_json(record())
    held.decisions["1"] = {**held.decisions["1"], "hold": {"kind": "k", "reason": "r"}}
    assert not held.ready_to_acknowledge() and list(held.held()) == ["1"]
    assert not PurchaseOrderRecord.from_json(record(decisions={})).ready_to_acknowledge()


def test_a_submission_of_replaced_bytes_is_not_taken_for_the_new_acknowledgement() -> None:
    rec = PurchaseOrderRecord.from_json(record(ack={"rev": REV, "hash": "new"}))
    assert rec.on_ack_submitted("tx-old", T0, "old") is False
    assert not rec.is_acknowledged()
    assert rec.on_ack_submitted("tx-new", T0, "new") is True
    assert rec.is_acknowledged() and rec.tx.status == "Processing"
    legacy = PurchaseOrderRecord.from_json(record(ack={"rev": REV, "hash": "h"}))
    assert legacy.on_ack_submitted("tx", T0) is True  # a message from before the digest


def test_success_of_an_older_revisions_transaction_does_not_acknowledge_the_new_one() -> None:
    rec = PurchaseOrderRecord.from_json(record(ack={**SUBMITTED, "rev": OLD_REV}))
    rec.on_tx({"id": "tx-1", "status": "Success"})
    assert rec.state == "New" and not rec.is_acknowledged()
    cur = PurchaseOrderRecord.from_json(record(ack=SUBMITTED, tx={"id": "tx-1"}))
    cur.on_tx({"id": "tx-1", "status": "Success", "checkedAt": T0})
    assert cur.state == "Acknowledged" and cur.tx.checked_at == T0
    cur.on_ack_failed("400: bad")
    assert cur.ack.error == "400: bad" and cur.ack.txid == "tx-1"


def test_selling_party_of_the_po_else_the_default() -> None:
    assert PurchaseOrderRecord.from_json(record()).selling_party("DEF") == "VENDOR1"
    assert PurchaseOrderRecord().selling_party("DEF") == "DEF"


# --- messages: the wire form stays what the flow always wrote ---------------------------

WIRE = [
    (OrderTaken({"po": "PO1"}), {"t": "order", "raw": {"po": "PO1"}}),
    (Received({"1": {"amount": 2}}), {"t": "received", "items": {"1": {"amount": 2}}}),
    (Decisions(({"x": 1},), one=True), {"t": "decision", "d": {"x": 1}}),
    (Decisions(({"x": 1}, {"x": 2})), {"t": "decisions", "ds": [{"x": 1}, {"x": 2}]}),
    (AckSubmitted("tx", 5.0, 2), {"t": "ack-submitted", "txid": "tx", "at": 5.0, "n": 2}),
    (AckSubmitted("tx", 5.0, 1, "d"),
     {"t": "ack-submitted", "txid": "tx", "at": 5.0, "n": 1, "hash": "d"}),
    (AckFailed("e"), {"t": "ack-failed", "error": "e"}),
    (TxChecked({"id": "tx"}), {"t": "tx", "tx": {"id": "tx"}}),
    (Closed(), {"t": "closed"}),
    (Acknowledged(), {"t": "acked"}),
]  # fmt: skip


@pytest.mark.parametrize(("msg", "wire"), WIRE)
def test_messages_round_trip_in_their_wire_form(msg: Any, wire: dict[str, Any]) -> None:
    assert po_messages.to_json(msg) == wire
    assert po_messages.from_json(wire) == msg


def test_an_unknown_kind_is_ignored_and_sku_messages_keep_their_form() -> None:
    assert po_messages.from_json({"t": "from-the-future"}) is None
    assert sku_message(Allocate("S", {"a": 1})) == {"t": "alloc", "sku": "S", "line": {"a": 1}}
    assert sku_message(Release("S", {"a": 1}, 3)) == {
        "t": "release", "sku": "S", "line": {"a": 1}, "keep": 3,
    }  # fmt: skip


# --- Amazon's answers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "n", "auth", "what"),
    [
        (401, 3, False, "credentials"),
        (403, 1, False, "credentials"),
        (None, 2, True, "credentials"),
        (400, 4, False, "split"),
        (413, 2, False, "split"),
        (400, 1, False, "reject"),
        (429, 4, False, "retry"),
        (503, 1, False, "retry"),
        (None, 1, False, "retry"),
    ],
)
def test_refusal_policy(status: int | None, n: int, auth: bool, what: str) -> None:
    assert ack_policy.on_refusal(status, n, auth_error=auth) == what


def test_halves_cover_every_acknowledgement_once() -> None:
    items = list(range(5))
    a, b = ack_policy.halves(len(items))
    assert items[a] == [0, 1] and items[b] == [2, 3, 4]
    assert [ack_policy.next_delay(d) for d in (1.0, 32.0, 60.0)] == [2.0, 60.0, 60.0]


def test_amazons_15_minute_rule() -> None:
    limit = 900.0
    assert ack_policy.transaction_outcome("Processing", 0.0, 899.0, limit) == "Processing"
    assert ack_policy.transaction_outcome("Processing", 0.0, 900.0, limit) == "Success"
    assert ack_policy.transaction_outcome("Failure", 0.0, 5000.0, limit) == "Failure"
    assert ack_policy.settled("Success") and not ack_policy.settled("Processing")


# --- the flow's rules on one PO (po_book): effects, no I/O -----------------------------


def ctx(now: float = T0, shipped: dict[str, int] | None = None) -> po_book.Context:
    return po_book.Context(
        resolve=lambda asin, vpi: MAPPINGS.get(asin or ""),
        now=now,
        backorder_lead_days=7,
        shipped=lambda: dict(shipped or {}),
    )


def test_a_new_revision_sends_known_lines_to_their_sku_and_decides_unknown_ones() -> None:
    raw = raw_order(ITEMS)
    po, eff = po_book.apply(None, OrderTaken(raw), ctx())
    assert po is not None and po.number == "PO1" and po.received_at == T0
    assert eff.records == "applied" and eff.changed and eff.decided
    assert [(type(m).__name__, m.sku) for m in eff.sku] == [
        ("Allocate", "SKU-CASE"), ("Allocate", "SKU EACH/1"),
    ]  # fmt: skip
    assert list(po.decisions) == ["3"]  # the unknown product: rejected here
    assert po.decisions["3"]["rejected"] == 2
    assert po_book.acknowledge(po, ctx(), "DEF") is None  # lines 1 and 2 undecided
    again, eff = po_book.apply(po, OrderTaken(raw), ctx())
    # a redelivery: the record changes not, the undecided lines go to their SKU again (the
    # record may have been saved by a worker that crashed before sending them)
    assert again is po and eff.records == "duplicate" and not eff.changed
    assert [(type(m).__name__, m.sku) for m in eff.sku] == [
        ("Allocate", "SKU-CASE"), ("Allocate", "SKU EACH/1"),
    ]  # fmt: skip
    po.on_decision({**po.decisions["3"], "itemSequenceNumber": "1"})
    po.on_decision({**po.decisions["3"], "itemSequenceNumber": "2"})
    _, eff = po_book.apply(po, OrderTaken(raw), ctx())
    assert eff.records == "duplicate" and not eff.sku  # every line decided: nothing to ask


def test_every_line_decided_builds_the_acknowledgement_once() -> None:
    po = PurchaseOrderRecord.from_json(record())
    body = po_book.acknowledge(po, ctx(), "DEF")
    assert isinstance(body, bytes) and b'"partyId":"VENDOR1"' in body
    assert po.built_for_current() and po.ack.built_at == T0
    assert po_book.acknowledge(po, ctx(), "DEF") is None


def test_a_built_acknowledgement_never_sent_is_rebuilt_identical_until_submitted() -> None:
    """A crash after the record (with the acknowledgement's hash) was saved and before the
    acknowledgement was sent: the redelivery rebuilds the same bytes, at the time it was
    built, and nothing once Amazon took it or the decisions no longer give those bytes."""
    po = PurchaseOrderRecord.from_json(record())
    assert po_book.unsent_acknowledgement(po, "DEF") is None  # nothing built yet
    body = po_book.acknowledge(po, ctx(now=T0 + 0.123456), "DEF")
    assert isinstance(body, bytes)
    saved = PurchaseOrderRecord.from_json(orjson.loads(orjson.dumps(po.to_json())))
    assert po_book.unsent_acknowledgement(saved, "DEF") == body  # later, from the stored record
    tampered = PurchaseOrderRecord.from_json(orjson.loads(orjson.dumps(po.to_json())))
    first = next(iter(tampered.decisions))
    tampered.decisions[first] = {**tampered.decisions[first], "accepted": 0}
    assert po_book.unsent_acknowledgement(tampered, "DEF") is None  # other bytes: not ours
    po_book.apply(saved, AckSubmitted("tx-1", T0, 1, saved.ack.hash), ctx())
    assert po_book.unsent_acknowledgement(saved, "DEF") is None  # submitted: the sender has it


def test_submission_and_transaction_effects() -> None:
    po = PurchaseOrderRecord.from_json(record(ack={"rev": REV, "hash": "h"}))
    _, eff = po_book.apply(po, AckSubmitted("tx-1", T0, 1, "h"), ctx())
    assert eff.changed and eff.watch == ("tx-1", T0) and eff.notices == [Acknowledged()]
    assert eff.latency == 30 * H
    _, eff = po_book.apply(po, TxChecked({"id": "tx-1", "status": "Processing"}), ctx())
    assert eff.settled is None
    _, eff = po_book.apply(po, TxChecked({"id": "tx-1", "status": "Success"}), ctx())
    assert eff.settled == "tx-1" and po.state == "Acknowledged"
    _, eff = po_book.apply(po, AckSubmitted("tx-0", T0, 1, "other"), ctx())
    assert not eff.changed and eff.watch is None and eff.notices == []
    assert po_book.apply(None, AckFailed("x"), ctx()) == (None, po_book.Effects())


def test_a_closed_po_releases_what_never_shipped_and_tells_sales_orders() -> None:
    po = PurchaseOrderRecord.from_json(record())
    closed = raw_order(ITEMS[:2])
    closed["purchaseOrderState"] = "Closed"
    po, eff = po_book.apply(po, OrderTaken(closed), ctx())
    assert po is not None and po.closed and eff.closed == "cancelled"
    assert eff.notices == [Closed()]
    assert [(m.sku, m.keep) for m in eff.sku if isinstance(m, Release)] == [
        ("SKU-CASE", 0), ("SKU EACH/1", 0),
    ]  # fmt: skip
    assert po.close is not None and po.close["outcome"] == "cancelled"


def test_a_redelivered_closed_revision_releases_again_with_the_stored_keep() -> None:
    """A crash after the Closed revision's record was saved and before its releases (and the
    sales-order flow's notice) were sent: the redelivery sends them again, keeping what the
    stored close plan says shipped (the SKU partition repeats a release it made)."""
    po = PurchaseOrderRecord.from_json(record())
    closed = raw_order(ITEMS[:2])
    closed["purchaseOrderState"] = "Closed"
    first_seq = next(iter(po.lines))
    po, first = po_book.apply(po, OrderTaken(closed), ctx(shipped={first_seq: 3}))
    assert po is not None
    saved = PurchaseOrderRecord.from_json(orjson.loads(orjson.dumps(po.to_json())))
    again, eff = po_book.apply(saved, OrderTaken(closed), ctx(shipped={}))
    assert again is saved and eff.records == "duplicate" and not eff.changed
    assert eff.closed is None and eff.notices == [Closed()]
    assert [(m.sku, m.line, m.keep) for m in eff.sku if isinstance(m, Release)] == [
        (m.sku, m.line, m.keep) for m in first.sku if isinstance(m, Release)
    ]
    assert next(m.keep for m in eff.sku if isinstance(m, Release)) == 3


def test_a_redelivered_held_decision_raises_its_exception_again_and_changes_nothing() -> None:
    """A crash after a decision with a hold was saved and before its owned exception was
    sent: the PO would be neither acknowledged nor an owned exception. The redelivered
    decision raises it again; a decision not stored (another revision) raises nothing."""
    po = PurchaseOrderRecord.from_json(record(decisions={}))
    d = {**record()["decisions"]["1"], "hold": {"kind": "price-mismatch", "reason": "r"}}
    _, eff = po_book.apply(po, Decisions((d,), one=True), ctx())
    assert eff.changed and eff.decided
    assert [(k, r.itemSequenceNumber) for k, r, _ in eff.exceptions] == [("price-mismatch", "1")]
    _, again = po_book.apply(po, Decisions((d,), one=True), ctx())
    assert not again.changed and not again.decided
    assert again.exceptions == eff.exceptions
    other = {**d, "revision": "2027-01-14T08:00:00Z"}
    _, eff = po_book.apply(po, Decisions((other,), one=True), ctx())
    assert eff.exceptions == [] and not eff.changed
