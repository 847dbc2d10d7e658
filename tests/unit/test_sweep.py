"""The changed-since sweep's windows and its missed-notification rule (domain/sweep.py)."""

from __future__ import annotations

from streams.domain.sweep import missed_want, windows

KW = {"overlap": 20.0, "grace": 5.0, "max_window": 300.0, "initial_lookback": 600.0}


def test_first_sweep_looks_back_and_later_ones_overlap_the_cursor() -> None:
    assert windows(None, 1000.0, **KW) == [(400.0, 700.0), (700.0, 995.0)]
    assert windows(980.0, 1000.0, **KW) == [(960.0, 995.0)]


def test_nothing_to_read_inside_the_grace() -> None:
    assert windows(1000.0, 1000.0, **{**KW, "overlap": 0.0}) == []


def test_a_long_outage_is_read_in_bounded_windows_without_gaps() -> None:
    got = windows(0.0, 3600.0, **KW)
    assert got[0][0] == -20.0 and got[-1][1] == 3595.0
    assert all(b - a <= 300.0 for a, b in got)
    assert all(got[i][1] == got[i + 1][0] for i in range(len(got) - 1))


def test_missed_changes_raise_the_exception_only_past_the_threshold() -> None:
    assert missed_want(4, 900, 5, "w1") is None
    want = missed_want(5, 900, 5, "w1")
    assert want is not None and want.kind == "ct-notifications-missed"
    assert "5 inventory change(s)" in want.cause and want.id == missed_want(9, 900, 5, "w1").id  # type: ignore[union-attr]
