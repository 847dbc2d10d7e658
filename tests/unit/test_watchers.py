"""Watcher rules with a fake clock: each exception opens when its condition holds (long
enough), escalates, resolves itself when the condition clears, and merges into one record."""

from __future__ import annotations

from typing import Any

import pytest

from streams.domain.exceptions import Refs, exception_id
from streams.domain.watchers import (
    DriftTracker,
    GrowthWindow,
    Outbox,
    Want,
    ack_deadline_want,
    ack_status,
    acknowledged,
    age_band,
    dlq_wants,
    drift_totals,
    expired,
    hold_wants,
    iso,
    merge,
    parse_thresholds,
    po_judged,
    po_resolution,
    reconcile,
    scope_judged,
    sort_exceptions,
    stale_wants,
    unmapped_wants,
)

H = 3600.0
T0 = 1_800_000_000.0  # the fake clock's epoch
WARN, DEADLINE = 18 * H, 24 * H


class FakeTable:
    """The exceptions table as the agent keeps it: every sent record merged in."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def apply(self, records: list[dict[str, Any]]) -> None:
        for rec in records:
            merged = merge(self.rows.get(rec["id"]), rec)
            if merged is not None:
                self.rows[rec["id"]] = merged

    def open(self) -> list[dict[str, Any]]:
        return [r for r in self.rows.values() if r["status"] == "open"]


REV = "2027-01-15T08:00:00+00:00"  # the revision po() records are at


def po(number: str = "PO1", age_h: float = 0.0, **extra: Any) -> dict[str, Any]:
    """A ``pos`` record dated ``age_h`` hours before T0, one line decided Accepted."""
    rec: dict[str, Any] = {
        "po": number,
        "state": "New",
        "rev": REV,
        "poDate": T0 - age_h * H,
        "lines": {
            "1": {"sku": "SKU-1", "orderedQuantity": {"amount": 2, "unitOfMeasure": "Cases"}}
        },
        "decisions": {"1": {"purchaseOrderNumber": number, "sku": "SKU-1", "status": "Accepted"}},
    }
    rec.update(extra)
    return rec


def held(number: str = "PO1", age_h: float = 0.0) -> dict[str, Any]:
    hold = {"kind": "unit-of-measure", "owner": "operations", "reason": "no case size"}
    return po(
        number,
        age_h,
        decisions={"1": {"purchaseOrderNumber": number, "sku": "SKU-1", "status": "Hold",
                         "hold": hold}},
    )  # fmt: skip


def watch_pos(
    table: FakeTable,
    outbox: Outbox,
    pos: list[dict[str, Any]],
    now: float,
    known: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[dict[str, Any]]:
    """One tick of the PO watcher, as OpsFlow._watch_pos runs it."""
    local = {p["po"]: p for p in pos}
    wants: list[Want] = []
    for p in pos:
        w = ack_deadline_want(p, now, WARN, DEADLINE)
        if w is not None:
            wants.append(w)
        wants += hold_wants(p, now)
        wants += unmapped_wants(p, lambda asin, vpi: asin in known)
    judged = [r for r in table.open() if po_judged(r, local)]
    out = reconcile(wants, judged, table.rows.get, now, outbox, lambda r: po_resolution(r, local))
    table.apply(out)
    return out


# --- acknowledgement deadline ------------------------------------------------------------


def test_ack_deadline_warns_escalates_and_resolves_when_acknowledged() -> None:
    table, outbox = FakeTable(), Outbox()
    p = held("PO1", age_h=17.5)
    assert watch_pos(table, outbox, [p], T0) == [
        r for r in table.rows.values() if r["kind"] == "unit-of-measure"
    ]  # only the hold: 17.5 h is before the warning
    kinds = {r["kind"]: r for r in table.open()}
    assert set(kinds) == {"unit-of-measure"}

    # 18.5 h: a warning that names why (the held line) and when the deadline is
    sent = watch_pos(table, outbox, [p], T0 + 1 * H)
    assert [(r["kind"], r["severity"], r["status"]) for r in sent] == [
        ("ack-deadline", "warning", "open")
    ]
    deadline = table.rows[exception_id("ack-deadline", Refs(purchaseOrderNumber="PO1"))]
    assert deadline["owner"] == "operations"
    assert "line 1 is on hold (unit-of-measure): no case size" in deadline["rootCause"]
    assert iso(p["poDate"] + DEADLINE) in deadline["rootCause"]

    # the next ticks say nothing new
    assert watch_pos(table, outbox, [p], T0 + 1 * H + 30) == []
    assert watch_pos(table, outbox, [p], T0 + 2 * H) == []

    # past 24 h: the same exception, critical, counted again, first seen kept
    sent = watch_pos(table, outbox, [p], T0 + 7 * H)
    assert [(r["kind"], r["severity"]) for r in sent] == [("ack-deadline", "critical")]
    deadline = table.rows[deadline["id"]]
    assert (deadline["severity"], deadline["count"], deadline["status"]) == ("critical", 2, "open")
    assert deadline["firstSeen"] == iso(T0 + 1 * H) and deadline["lastSeen"] == iso(T0 + 7 * H)
    assert "the deadline passed 0.5 h ago" in deadline["rootCause"]

    # decided and acknowledged: both resolve by themselves
    done = po("PO1", age_h=17.5, ack={"rev": REV, "txid": "tx-1", "submittedAt": T0 + 7 * H})
    sent = watch_pos(table, outbox, [done], T0 + 7.1 * H)
    assert sorted((r["kind"], r["status"]) for r in sent) == [
        ("ack-deadline", "resolved"),
        ("unit-of-measure", "resolved"),
    ]
    assert table.open() == []
    assert table.rows[deadline["id"]]["resolvedAt"] == iso(T0 + 7.1 * H)
    assert watch_pos(table, outbox, [done], T0 + 8 * H) == []


def test_a_new_reason_updates_the_root_cause() -> None:
    table, outbox = FakeTable(), Outbox()
    undecided = po("PO7", age_h=19, decisions={})
    (sent,) = watch_pos(table, outbox, [undecided], T0)
    assert "1 of 1 line(s) have no allocation decision yet" in sent["rootCause"]
    assert watch_pos(table, outbox, [undecided], T0 + 600) == []  # the age moved: no news
    p = held("PO7", age_h=19)
    sent = watch_pos(table, outbox, [p], T0 + 660)
    deadline = next(r for r in sent if r["kind"] == "ack-deadline")
    assert "line 1 is on hold (unit-of-measure)" in deadline["rootCause"]
    rec = table.rows[deadline["id"]]
    assert (rec["count"], rec["reason"], rec["severity"]) == (2, "held", "warning")


def test_po_acknowledged_within_the_window_raises_nothing() -> None:
    table, outbox = FakeTable(), Outbox()
    p = po("PO2", age_h=1, ack={"rev": REV, "txid": "tx"}, tx={"id": "tx", "status": "Success"})
    for h in (0, 20, 30):
        assert watch_pos(table, outbox, [p], T0 + h * H) == []


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (po(), False),
        (po(ack={"rev": REV, "txid": "t"}), True),
        (po(ack={"rev": REV, "txid": "t"}, tx={"id": "t", "status": "Failure"}), False),
        (po(state="Acknowledged"), True),  # acknowledged at Amazon another way
        (po(state="Closed"), True),
        # submitted for an older revision: the current one is owed an acknowledgement
        (po(ack={"rev": "2027-01-14T08:00:00+00:00", "txid": "t"}), False),
    ],
)
def test_acknowledged(record: dict[str, Any], expected: bool) -> None:
    assert acknowledged(record) is expected


def test_a_failed_transaction_is_not_an_acknowledgement() -> None:
    p = po(
        age_h=25,
        ack={"rev": REV, "txid": "t", "hash": "h"},
        tx={"id": "t", "status": "Failure", "errors": [{"code": "X", "message": "bad"}]},
    )
    w = ack_deadline_want(p, T0, WARN, DEADLINE)
    assert w is not None and w.level == "critical"
    assert "transaction t for the acknowledgement failed (X: bad)" in w.cause
    assert ack_status(p) == "failed"


@pytest.mark.parametrize(
    ("record", "status"),
    [
        (po(), "pending"),
        (held(), "held"),
        (po(ack={"rev": REV, "hash": "h"}), "built"),
        (po(ack={"rev": REV, "error": "400"}), "rejected"),
        # what was submitted for an earlier revision does not make the current one submitted
        (po(ack={"rev": "2027-01-14T08:00:00+00:00", "hash": "h", "txid": "t"}), "pending"),
        (po(ack={"rev": REV, "txid": "t"}, tx={"id": "t", "status": "Processing"}), "submitted"),
        (po(ack={"rev": REV, "txid": "t"}, tx={"id": "t", "status": "Success"}), "acknowledged"),
        (po(state="Closed", ack={"rev": REV, "txid": "t"}), "closed"),
    ],
)
def test_ack_status(record: dict[str, Any], status: str) -> None:
    assert ack_status(record) == status


def test_age_bands_follow_the_settings() -> None:
    assert [age_band(h * H, WARN, DEADLINE) for h in (0, 5.9, 6, 17.9, 18, 23.9, 24, 99)] == [
        "lt_6h", "lt_6h", "6h_18h", "6h_18h", "18h_24h", "18h_24h", "over_24h", "over_24h",
    ]  # fmt: skip
    assert age_band(3 * H, 2 * H, 4 * H) == "18h_24h"  # a tighter warning moves the band


def test_ack_failures_resolve_once_a_later_acknowledgement_went_through() -> None:
    table, outbox = FakeTable(), Outbox()
    failed = Want(
        "ack-transaction-failed", Refs(purchaseOrderNumber="PO3", transactionId="t1"), "failed"
    )
    table.apply([failed.record(T0)])
    p = po("PO3", age_h=1, ack={"rev": REV, "txid": "t1"}, tx={"id": "t1", "status": "Failure"})
    assert watch_pos(table, outbox, [p], T0 + 60) == []  # still failed: stays open
    p = po("PO3", age_h=1, ack={"rev": REV, "txid": "t2"}, tx={"id": "t2", "status": "Processing"})
    assert watch_pos(table, outbox, [p], T0 + 120) == []  # not known to have worked yet
    p = po("PO3", age_h=1, ack={"rev": REV, "txid": "t2"}, tx={"id": "t2", "status": "Success"})
    sent = watch_pos(table, outbox, [p], T0 + 180)
    assert [(r["kind"], r["status"]) for r in sent] == [("ack-transaction-failed", "resolved")]


def test_the_watcher_judges_only_pos_it_holds() -> None:
    table, outbox = FakeTable(), Outbox()
    other = Want("ack-deadline", Refs(purchaseOrderNumber="ELSEWHERE"), "x", "warning")
    table.apply([other.record(T0)])
    assert watch_pos(table, outbox, [po("PO1", ack={"rev": REV, "txid": "t"})], T0 + 60) == []
    assert table.rows[other.id]["status"] == "open"


def test_hold_kept_open_while_held_and_raised_again_if_it_was_resolved() -> None:
    table, outbox = FakeTable(), Outbox()
    p = held("PO4")
    # the PO flow raised it already: the watcher keeps it as it is
    table.apply([hold_wants(p, T0)[0].record(T0)])
    assert watch_pos(table, outbox, [p], T0 + 60) == []
    (rec,) = table.open()
    assert rec["count"] == 1 and rec["refs"]["itemSequenceNumber"] == "1"
    assert rec["id"] == exception_id(
        "unit-of-measure", Refs(purchaseOrderNumber="PO4", itemSequenceNumber="1", sku="SKU-1")
    )  # the id the purchase-order flow raised it under
    # resolved by mistake while the line is still held: it reopens
    table.apply([{**rec, "status": "resolved", "lastSeen": iso(T0 + 61)}])
    sent = watch_pos(table, outbox, [p], T0 + 120)
    assert [(r["kind"], r["status"]) for r in sent] == [("unit-of-measure", "open")]
    rec = table.rows[rec["id"]]
    assert (rec["status"], rec["count"], rec["firstSeen"]) == ("open", 2, iso(T0))
    assert rec["reopenedAt"] == iso(T0 + 120)


def test_a_fresh_hold_is_kept_not_raised_by_the_watcher() -> None:
    """The PO flow raises a hold as it decides; the watcher must not race it."""
    table, outbox = FakeTable(), Outbox()
    p = held("PO5")
    p["decisions"]["1"]["decidedAt"] = iso(T0)
    (fresh,) = hold_wants(p, T0 + 30, grace_s=60)
    assert fresh.keep_only
    assert reconcile([fresh], [], table.rows.get, T0 + 30, outbox, str) == []
    table.apply([fresh.record(T0)])  # the PO flow's record arrives: kept, not resolved
    assert reconcile([fresh], table.open(), table.rows.get, T0 + 31, outbox, str) == []
    table.rows.clear()  # lost somehow: after the grace the watcher raises it itself
    (old,) = hold_wants(p, T0 + 61, grace_s=60)
    sent = reconcile([old], [], table.rows.get, T0 + 61, outbox, str)
    assert [(r["kind"], r["status"]) for r in sent] == [("unit-of-measure", "open")]


def test_unmapped_product_opens_for_ecommerce_and_resolves_once_mapped() -> None:
    table, outbox = FakeTable(), Outbox()
    p = po(
        "PO6",
        lines={"1": {"sku": None, "amazonProductIdentifier": "B0UNKNOWN1",
                     "orderedQuantity": {"amount": 2, "unitOfMeasure": "Eaches"}}},
        decisions={"1": {"status": "Rejected", "rejected": 2,
                         "rejectionReason": "InvalidProductIdentifier"}},
        ack={"rev": REV, "txid": "t"}, tx={"id": "t", "status": "Success"},
    )  # fmt: skip
    sent = watch_pos(table, outbox, [p], T0)
    assert [(r["kind"], r["owner"], r["severity"]) for r in sent] == [
        ("unmapped-sku", "ecommerce", "warning")
    ]
    assert "ASIN B0UNKNOWN1 on PO PO6 line 1" in sent[0]["rootCause"]
    assert watch_pos(table, outbox, [p], T0 + 60) == []
    sent = watch_pos(table, outbox, [p], T0 + 120, known={"B0UNKNOWN1"})
    assert [(r["kind"], r["status"]) for r in sent] == [("unmapped-sku", "resolved")]
    assert "names the product now" in sent[0]["resolution"]


# --- merging into the table --------------------------------------------------------------


def test_merge_counts_keeps_first_seen_resolves_and_reopens() -> None:
    w = Want("unit-of-measure", Refs(purchaseOrderNumber="P", itemSequenceNumber="1"), "cause")
    first = merge(None, w.record(T0))
    assert first is not None and (first["count"], first["status"]) == (1, "open")
    assert merge(first, w.record(T0)) is None  # a redelivery changes nothing
    again = merge(first, Want(w.kind, w.refs, "new cause").record(T0 + 10))
    assert again is not None
    assert (again["count"], again["firstSeen"], again["lastSeen"], again["rootCause"]) == (
        2, iso(T0), iso(T0 + 10), "new cause",
    )  # fmt: skip
    resolved = merge(again, {**again, "status": "resolved", "lastSeen": iso(T0 + 20)})
    assert resolved is not None
    assert (resolved["status"], resolved["resolvedAt"], resolved["lastSeen"]) == (
        "resolved", iso(T0 + 20), iso(T0 + 10),
    )  # fmt: skip
    assert merge(resolved, {**again, "status": "resolved", "lastSeen": iso(T0 + 30)}) is None
    reopened = merge(resolved, w.record(T0 + 40))
    assert reopened is not None
    assert (reopened["status"], reopened["count"], reopened["firstSeen"]) == ("open", 3, iso(T0))
    assert "resolvedAt" not in reopened


def test_resolved_exceptions_expire() -> None:
    rec = {"status": "resolved", "resolvedAt": iso(T0), "lastSeen": iso(T0 - 5)}
    assert not expired(rec, T0 + 10, 3600)
    assert expired(rec, T0 + 3600, 3600)
    assert not expired({"status": "open", "lastSeen": iso(T0)}, T0 + 1e9, 1)


def test_outbox_does_not_repeat_what_the_table_does_not_show_yet() -> None:
    box = Outbox(ttl_s=100)
    assert box.due("x", ("open", "warning"), None, T0)
    assert not box.due("x", ("open", "warning"), None, T0 + 1)  # not applied yet
    assert box.due("x", ("open", "critical"), ("open", "warning"), T0 + 2)  # escalation
    assert not box.due("x", ("open", "critical"), ("open", "critical"), T0 + 3)  # applied
    assert box.sent == {}
    assert box.due("y", ("open", "warning"), None, T0)
    assert box.due("y", ("open", "warning"), None, T0 + 100)  # never applied: sent again
    box.prune(T0 + 500)
    assert box.sent == {}


# --- inventory drift -----------------------------------------------------------------------


def test_drift_opens_after_the_delay_and_resolves_when_published() -> None:
    tracker = DriftTracker(tolerance=2, after_s=300)
    assert tracker.observe("A", 10, 11, T0) is None  # within the tolerance
    assert tracker.observe("A", 10, 4, T0) is None  # drifting, not for long yet
    assert tracker.observe("A", 10, 4, T0 + 299) is None
    d = tracker.observe("A", 10, 3, T0 + 300)
    assert d is not None and (d.diff, d.direction, d.since) == (7, "over", T0)
    w = d.want_exception(T0 + 300)
    assert (w.kind, w.refs.sku, w.level) == ("inventory-drift", "A", "warning")
    assert "told 10 eaches of SKU A, the master implies 3 now" in w.cause
    assert "overselling" in w.cause
    assert tracker.observe("A", 3, 3, T0 + 301) is None and "A" not in tracker.since
    assert tracker.observe("A", 3, 4, T0 + 302) is None  # a new drift starts over


def test_drift_totals_and_unmapped_skus() -> None:
    tracker = DriftTracker(tolerance=0, after_s=0)
    drifts = [
        tracker.observe("A", 10, 4, T0),
        tracker.observe("B", None, 5, T0),  # never published: Amazon offers nothing
        tracker.observe("C", 1, 2, T0),
    ]
    assert tracker.observe("D", 7, None, T0) is None  # unmapped: never told Amazon
    found = [d for d in drifts if d is not None]
    assert drift_totals(found) == {"over": (1, 6), "under": (2, 6)}
    tracker.keep_only({"A"})
    assert set(tracker.since) == {"A"}


def test_drift_exception_raised_once_and_resolved() -> None:
    table, outbox = FakeTable(), Outbox()
    tracker = DriftTracker(tolerance=0, after_s=60)

    def tick(told: int, want: int, now: float) -> list[dict[str, Any]]:
        d = tracker.observe("A", told, want, now)
        wants = [d.want_exception(now)] if d else []
        judged = [r for r in table.open() if "A" not in tracker.since]
        out = reconcile(wants, judged, table.rows.get, now, outbox, lambda r: "in sync")
        table.apply(out)
        return out

    assert tick(5, 2, T0) == []
    assert [r["kind"] for r in tick(5, 2, T0 + 61)] == ["inventory-drift"]
    assert tick(5, 1, T0 + 62) == []  # open already (the cause text may change)
    assert [r["status"] for r in tick(1, 1, T0 + 63)] == ["resolved"]


# --- stale syncs, dead letters ----------------------------------------------------------------


def test_parse_thresholds() -> None:
    assert parse_thresholds("ingest=21600, po_poll = 900.5,") == {
        "ingest": 21600.0,
        "po_poll": 900.5,
    }
    assert parse_thresholds("") == {}
    with pytest.raises(ValueError):
        parse_thresholds("ingest")


def test_sync_stale_raised_and_resolved_per_worker() -> None:
    table, outbox = FakeTable(), Outbox()
    thresholds = {"ingest": 600.0, "po_poll": 60.0}
    owned = {"ingest": True, "po_poll": False}

    def tick(last: dict[str, float], now: float, worker: str = "w1:6066") -> list[dict[str, Any]]:
        wants = stale_wants(last, thresholds, owned.__getitem__, now, worker)
        judged = [r for r in table.open() if scope_judged(r, "sync-stale", worker)]
        out = reconcile(wants, judged, table.rows.get, now, outbox, lambda r: "ok again")
        table.apply(out)
        return out

    assert tick({"ingest": T0}, T0 + 600) == []
    sent = tick({"ingest": T0, "po_poll": T0}, T0 + 601)  # po_poll: not this worker's job
    assert [(r["kind"], r["owner"], r["severity"], r["scope"]) for r in sent] == [
        ("sync-stale", "platform", "critical", "ingest@w1:6066")
    ]
    assert "flow ingest last succeeded 601 s ago on worker w1:6066" in sent[0]["rootCause"]
    # a worker where the flow is fresh neither raises nor resolves another worker's
    assert tick({"ingest": T0 + 690}, T0 + 700, worker="w2:6066") == []
    assert len(table.open()) == 1
    assert [r["status"] for r in tick({"ingest": T0 + 800}, T0 + 801)] == ["resolved"]
    assert tick({}, T0 + 900) == []  # never succeeded here: not judged


def test_dlq_growth_within_the_window() -> None:
    table, outbox = FakeTable(), Outbox()
    window = GrowthWindow(600, started=T0)

    def tick(totals: dict[str, float], now: float) -> list[dict[str, Any]]:
        wants = dlq_wants(window.observe(totals, now), 600, "w1:6066")
        judged = [r for r in table.open() if scope_judged(r, "dlq-growth", "w1:6066")]
        out = reconcile(wants, judged, table.rows.get, now, outbox, lambda r: "quiet")
        table.apply(out)
        return out

    assert tick({}, T0 + 10) == []
    sent = tick({"ct.messages": 1}, T0 + 20)  # the first dead letter since start counts
    assert [(r["kind"], r["owner"], r["scope"]) for r in sent] == [
        ("dlq-growth", "platform", "ct.messages@w1:6066")
    ]
    assert "1 record(s) from ct.messages went to ct.messages.dlq" in sent[0]["rootCause"]
    assert tick({"ct.messages": 1}, T0 + 500) == []
    assert tick({"ct.messages": 1}, T0 + 615) == []  # the T0+10 baseline: still within
    assert [r["status"] for r in tick({"ct.messages": 1}, T0 + 625)] == ["resolved"]
    assert [r["status"] for r in tick({"ct.messages": 3}, T0 + 700)] == ["open"]
    assert table.open()[0]["count"] == 2


def test_sort_owner_then_severity_then_newest() -> None:
    recs = [
        {"id": "a", "owner": "platform", "severity": "critical", "lastSeen": "2027-01-01"},
        {"id": "b", "owner": "operations", "severity": "warning", "lastSeen": "2027-01-03"},
        {"id": "c", "owner": "operations", "severity": "critical", "lastSeen": "2027-01-01"},
        {"id": "d", "owner": "operations", "severity": "critical", "lastSeen": "2027-01-02"},
    ]
    assert [r["id"] for r in sort_exceptions(recs)] == ["d", "c", "b", "a"]


def test_a_revised_po_says_the_earlier_acknowledgement_does_not_cover_it() -> None:
    earlier = "2027-01-14T08:00:00+00:00"
    p = po(age_h=25, ack={"rev": earlier, "hash": "h", "txid": "t"})
    w = ack_deadline_want(p, T0, WARN, DEADLINE)
    assert w is not None and w.level == "critical" and w.reason == "revised"
    assert f"acknowledged for revision {earlier} does not cover it" in w.cause
