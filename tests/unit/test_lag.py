"""Lag arithmetic of the lag monitor."""

from streams.observability.lag import partition_lag


def test_lag_is_end_offset_minus_next_to_process() -> None:
    assert partition_lag(100, 60, None) == 40
    assert partition_lag(100, None, 59) == 40  # nothing committed yet: the read position
    assert partition_lag(100, None, None) == 100
    assert partition_lag(None, 5, 5) == 0
    assert partition_lag(10, 12, None) == 0  # never negative
