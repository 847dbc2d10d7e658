"""Debounce with an injected clock."""

from __future__ import annotations

import random

from streams.domain.debounce import Debouncer, SendBudget, change_time


def test_quiet_window_then_publish() -> None:
    d = Debouncer(window=2.0, max_wait=10.0)
    d.mark("A", 0.0)
    assert d.pop_due(1.9, 10) == []
    assert d.pop_due(2.0, 10) == ["A"]
    assert len(d) == 0


def test_changes_keep_extending_the_window_until_max_wait() -> None:
    d = Debouncer(window=2.0, max_wait=10.0)
    t = 0.0
    while t < 10.0:
        d.mark("A", t)
        assert d.pop_due(t, 10) == []
        t += 1.0
    assert d.pop_due(10.0, 10) == ["A"]  # max wait reached despite steady changes


def test_budget_takes_the_longest_waiting_first() -> None:
    d = Debouncer(window=1.0, max_wait=5.0)
    for i, sku in enumerate(["C", "A", "B"]):
        d.mark(sku, float(i))
    assert d.pop_due(10.0, 2) == ["C", "A"]
    assert d.pop_due(10.0, 2) == ["B"]


def test_discard_and_oldest_age() -> None:
    d = Debouncer(window=1.0, max_wait=5.0)
    d.mark("A", 3.0)
    d.mark("B", 4.0)
    assert d.oldest_age(6.0) == 3.0
    d.discard("A")
    assert "A" not in d and d.oldest_age(6.0) == 2.0
    assert Debouncer(1.0, 5.0).oldest_age(1.0) == 0.0


def test_catch_up_waits_for_the_longer_max_wait_only() -> None:
    d = Debouncer(window=2.0, max_wait=10.0)
    d.mark("A", 0.0)
    assert d.pop_due(5.0, 10, catchup_max_wait=60.0) == []  # quiet, but replaying a backlog
    assert d.pop_due(59.0, 10, catchup_max_wait=60.0) == []
    assert d.pop_due(60.0, 10, catchup_max_wait=60.0) == ["A"]


def test_a_storefront_sale_is_due_within_its_wait_however_busy_the_sku() -> None:
    d = Debouncer(window=2.0, max_wait=10.0)
    d.mark("A", 0.0)
    for t in (1.0, 2.0, 3.0):  # changes every second: never quiet for the window
        d.mark("A", t)
    d.mark("A", 3.5, within=0.5)  # a sale
    assert d.due_at("A") == 4.0
    assert d.pop_due(3.9, 10) == []
    assert d.pop_due(4.0, 10) == ["A"]
    # a catch-up's longer wait does not delay a sale either
    d.mark("B", 10.0, within=0.5)
    assert d.pop_due(10.5, 10, catchup_max_wait=60.0) == ["B"]


def test_change_time_counts_the_pipeline_delay_but_not_a_backlog() -> None:
    assert change_time(None, 100.0, 2.0) == 100.0  # no source time: the processing time
    assert change_time(99.7, 100.0, 2.0) == 99.7  # 0.3 s in the pipeline count as quiet
    assert change_time(100.4, 100.0, 2.0) == 100.0  # a source clock ahead of ours
    assert change_time(40.0, 100.0, 2.0) == 98.0  # a replayed backlog: at most the window


def test_a_change_marked_with_its_source_time_is_due_a_window_after_it() -> None:
    d = Debouncer(window=2.0, max_wait=10.0)
    d.mark("A", change_time(99.7, 100.0, 2.0))
    assert d.pop_due(101.6, 10) == []
    assert d.pop_due(101.7, 10) == ["A"]


def test_out_of_order_change_times_keep_the_earliest_first_and_latest_last() -> None:
    d = Debouncer(window=2.0, max_wait=5.0)
    d.mark("A", 3.0)
    d.mark("A", 1.0)  # an earlier change applied later (another source)
    assert d.due_at("A") == 5.0  # quiet from the latest change, 3.0
    d.mark("A", 4.5)
    assert d.due_at("A") == 6.0  # the max wait from the earliest change, 1.0
    assert d.oldest_age(6.0) == 5.0


def _reference(
    dirty: dict[str, list[float | None]],
    now: float,
    limit: int,
    window: float,
    max_wait: float,
    catchup: float | None,
) -> list[str]:
    """The rule itself, by a scan of every dirty SKU (what the heaps must agree with)."""
    w, mw = window, max_wait
    if catchup is not None:
        w = mw = max(catchup, mw)
    due = []
    for sku, (first, last, by) in dirty.items():
        assert first is not None and last is not None
        at = min(last + w, first + mw, by if by is not None else first + mw)
        if at <= now:
            due.append((at, sku))
    out = [sku for _, sku in sorted(due)[:limit]]
    for sku in out:
        del dirty[sku]
    return out


def test_heaps_agree_with_a_scan_of_every_dirty_sku() -> None:
    rng = random.Random(7)
    window, max_wait = 2.0, 10.0
    d = Debouncer(window, max_wait)
    ref: dict[str, list[float | None]] = {}
    now = 0.0
    for _ in range(20_000):
        now += rng.random() * 0.05
        op = rng.random()
        sku = f"S{rng.randrange(300)}"
        if op < 0.75:
            at = now - rng.random() * 0.5  # source times a little behind, not in order
            within = 0.5 if rng.random() < 0.05 else None
            d.mark(sku, at, within)
            r = ref.setdefault(sku, [at, at, None])
            r[0], r[1] = min(r[0] or at, at), max(r[1] or at, at)
            if within is not None:
                by = at + within
                r[2] = by if r[2] is None else min(r[2], by)
        elif op < 0.78:
            d.discard(sku)
            ref.pop(sku, None)
        else:
            catchup = 30.0 if rng.random() < 0.3 else None
            limit = rng.randrange(1, 20)
            assert d.pop_due(now, limit, catchup) == _reference(
                ref, now, limit, window, max_wait, catchup
            )
        assert len(d) == len(ref)
    firsts = [r[0] for r in ref.values() if r[0] is not None]
    assert d.oldest_age(now) == (max(0.0, now - min(firsts)) if firsts else 0.0)


def test_stale_entries_are_compacted_away() -> None:
    d = Debouncer(window=2.0, max_wait=1e9)
    for i in range(100_000):  # one SKU changing forever: every mark moves its due time
        d.mark("A", float(i) * 0.001)
    entries = len(d._due) + len(d._first) + len(d._by)
    assert entries < 10_000
    assert d.pop_due(1e6, 10) == ["A"]


def test_send_budget_refills_at_its_rate_and_holds_a_second_at_most() -> None:
    b = SendBudget(rate=1000.0, tokens=50.0)
    assert b.take(0.0) == 50
    b.spend(50)
    assert b.take(0.05) == 50  # a tick later: 0.05 s worth
    b.spend(10)  # fewer were due: the rest is kept for a burst
    assert b.take(0.10) == 90
    b.spend(90)
    assert b.take(5.0) == 1000  # a stall of 4.9 s: one second's worth, not 4,900
    b.spend(2000)
    assert b.tokens == 0.0 and b.take(5.0) == 1  # never below one per tick
