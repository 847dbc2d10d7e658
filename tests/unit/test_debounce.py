"""Debounce with an injected clock."""

from __future__ import annotations

from streams.domain.debounce import Debouncer


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
