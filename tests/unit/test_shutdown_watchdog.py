"""The worker's stop is bounded: ``STREAMS_SHUTDOWN_GRACE_S`` after the stop signal the
process exits, whatever step of the orderly stop hangs."""

from __future__ import annotations

import threading

from streams.worker import arm_shutdown_watchdog


def test_the_watchdog_exits_once_the_grace_is_over() -> None:
    fired = threading.Event()
    codes: list[int] = []

    def exit_now(code: int) -> None:
        codes.append(code)
        fired.set()

    timer = arm_shutdown_watchdog(0.05, exit_now)
    assert timer is not None and timer.daemon  # never keeps the process alive itself
    assert fired.wait(5)
    assert codes == [70]


def test_an_orderly_stop_within_the_grace_is_left_alone() -> None:
    codes: list[int] = []
    timer = arm_shutdown_watchdog(30.0, codes.append)
    assert timer is not None
    timer.cancel()  # the process ended first: nothing fires
    timer.join(1)
    assert codes == []


def test_grace_zero_waits_for_the_orderly_stop_however_long() -> None:
    assert arm_shutdown_watchdog(0.0, lambda code: None) is None
