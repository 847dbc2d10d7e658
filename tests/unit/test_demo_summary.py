"""The demo's summary: latency per delta as bench/ computes it, the health verdict the CI
smoke test applies to two runs in a row, and the plain text printed off a terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.demo.check import main as check_main
from streams.demo.summary import (
    delta_latencies,
    percentiles,
    plain_text,
    problems,
    summarize,
)

W, MAX = 2.0, 10.0


def test_percentiles_as_bench_reports_them() -> None:
    assert percentiles([]) == {"n": 0, "p50": None, "p99": None, "max": None}
    assert percentiles(float(x) for x in range(100, 0, -1)) == {
        "n": 100, "p50": 50.5, "p99": 100.0, "max": 100.0,
    }  # fmt: skip
    assert percentiles([3.0, 1.0, 2.0])["p99"] == 3.0


def test_quiet_after_the_last_change_counts_from_last_change_plus_window() -> None:
    lat, beyond = delta_latencies({"A": [100.0, 100.5, 101.0]}, [("A", 100.0, 103.2)], W, MAX)
    assert lat == [pytest.approx(3.2)]
    assert beyond == [pytest.approx(0.2)]  # 103.2 - (101 + 2)


def test_the_next_delta_ends_what_a_delta_covers() -> None:
    # 103.05 arrived while the first delta went out: the second delta reflects it
    changes = {"A": [100.0, 101.0, 103.05]}
    deltas = [("A", 103.05, 105.45), ("A", 100.0, 103.1)]  # any order
    _, beyond = delta_latencies(changes, deltas, W, MAX)
    assert beyond == [pytest.approx(0.1), pytest.approx(0.4)]


def test_steady_changes_count_from_the_first_change_plus_max_wait() -> None:
    changes = {"A": [float(t) for t in range(13)]}
    _, beyond = delta_latencies(changes, [("A", 0.0, 10.3)], W, MAX)
    assert beyond == [pytest.approx(0.3)]


def test_changes_after_the_delta_are_not_covered_by_it() -> None:
    _, beyond = delta_latencies({"A": [100.0, 104.0]}, [("A", 100.0, 102.3)], W, MAX)
    assert beyond == [pytest.approx(0.3)]


def test_a_delta_without_a_demo_change_counts_from_its_first_time() -> None:
    # a PO allocation moved the amount: masterChangedAt is the worker's own clock
    _, beyond = delta_latencies({"A": [10.0]}, [("A", 200.0, 202.5)], W, MAX)
    assert beyond == [pytest.approx(0.5)]


def test_deltas_for_changes_before_the_traffic_are_left_out() -> None:
    changes = {"A": [50.0, 70.0]}
    lat, _ = delta_latencies(changes, [("A", 50.0, 65.0), ("A", 70.0, 72.1)], W, MAX, since=60.0)
    assert lat == [pytest.approx(2.1)]


def summary(**over: Any) -> dict[str, Any]:
    ct = "ct.messages"
    metrics = {
        f'streams_records_total{{outcome="applied",topic="{ct}"}}': 600.0,
        f'streams_records_total{{outcome="duplicate",topic="{ct}"}}': 20.0,
        'streams_po_polled_total{source="sp-api"}': 133.0,
        'streams_acknowledgements_total{outcome="submitted"}': 108.0,
    }
    args: dict[str, Any] = dict(
        duration_s=30.04, ready_s=8.61, sent={"changes": 500, "duplicates": 20, "bad": 4, "pos": 1},
        seen={"availability": 190, "acknowledgements": 108, "reservations": 190, "asns": 2},
        exceptions={"asn-invalid": 1}, dead_letters=4, metrics=metrics, ct_topic=ct,
        changes={"A": [100.0, 101.0]}, deltas=[("A", 100.0, 103.2)], since=90.0,
        window=W, max_wait=MAX,
    )  # fmt: skip
    args.update(over)
    return summarize(**args)


def test_summary_counts_the_worker_the_pos_and_the_latency() -> None:
    s = summary()
    assert s["duration_s"] == 30.0 and s["worker_ready_s"] == 8.6
    assert s["worker"] == {"applied": 600, "duplicate": 20, "stale": 0, "dlq": 0}
    assert s["purchase_orders"]["pulled"] == 133
    assert s["purchase_orders"]["acknowledged"] == 108
    assert s["availability"]["beyond_debounce_rule_s"]["p99"] == pytest.approx(0.2)
    assert s["availability"]["change_to_published_s"]["p50"] == pytest.approx(3.2)
    assert orjson.loads(orjson.dumps(s)) == s  # the --json document


def test_a_healthy_run_has_no_problems() -> None:
    assert problems(summary(), p99_bound_s=10) == []


def test_problems_name_what_a_broken_second_run_shows() -> None:
    broken = summary(
        exceptions={"ct-command-failed": 3},
        metrics={},
        deltas=[("A", 100.0, 160.0)],
    )
    assert problems(broken, p99_bound_s=10) == [
        "3 ct-command-failed exception(s)",
        "no purchase order acknowledged",
        "p99 beyond the debounce rule 57.0s > 10s",
    ]
    assert problems(summary(deltas=[]), 10) == [
        "no availability published for the demo's stock changes"
    ]


def test_plain_text_is_one_summary_without_terminal_markup() -> None:
    text = plain_text(summary())
    assert text.startswith("demo summary: 30s of traffic, worker ready after 8.6s\n")
    assert "beyond the debounce rule (window 2s, max wait 10s): p50 0.20s / p99 0.20s" in text
    assert "133 pulled, 108 acknowledged" in text
    assert "owned exceptions: asn-invalid 1; dead letters: 4" in text
    assert "\x1b" not in text and "[b]" not in text and "mean" not in text
    assert "worker never ready" in plain_text(summary(ready_s=None, deltas=[]))


def test_check_fails_when_the_second_run_is_broken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "run1.json", tmp_path / "run2.json"
    first.write_bytes(orjson.dumps(summary()))
    second.write_bytes(orjson.dumps(summary(exceptions={"ct-command-failed": 2})))
    assert check_main([str(first), str(first)]) == 0
    assert check_main([str(first), str(second), "--p99-bound", "10"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-2].endswith("healthy")
    assert out[-1].endswith("2 ct-command-failed exception(s)")
