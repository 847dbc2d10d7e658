"""The changed-since sweep's rules (pure): which time windows to read, and when what it finds
means the commercetools subscription is losing notifications.

The sweep reads inventory entries whose ``lastModifiedAt`` lies in a closed window
[cursor - overlap, now - grace]: the overlap re-reads what commercetools may have stamped
late (order-driven changes show up to ~10 s after the order). The agent passes grace 0 (it
reads up to now) and keeps the cursor ``STREAMS_CT_SWEEP_GRACE_S`` behind, judging only the
older changes: a change's own notification has that long to arrive first, so that what the
sweep applies before any message did is a change no message announced.
"""

from __future__ import annotations

from streams.domain.exceptions import Refs
from streams.domain.watchers import Want


def windows(
    cursor: float | None,
    now: float,
    *,
    overlap: float,
    grace: float,
    max_window: float,
    initial_lookback: float,
) -> list[tuple[float, float]]:
    """The windows to read, oldest first, each at most ``max_window`` long; the cursor moves
    to each window's end once it has been read."""
    start = now - initial_lookback if cursor is None else cursor - overlap
    end = now - grace
    out: list[tuple[float, float]] = []
    while start < end:
        stop = min(end, start + max_window)
        out.append((start, stop))
        start = stop
    return out


def missed_want(missed: float, window_s: float, threshold: int, worker: str) -> Want | None:
    """The owned exception once the sweep keeps applying changes no notification brought."""
    if missed < threshold:
        return None
    cause = (
        f"the changed-since sweep applied {missed:.0f} inventory change(s) in the last "
        f"{window_s:.0f} s that no commercetools notification had delivered (worker {worker}): "
        "the subscription is losing or not sending messages, so Amazon hears of those "
        "changes only at the sweep's pace (seconds become tens of seconds)"
    )
    return Want("ct-notifications-missed", Refs(), cause, scope=f"sweep@{worker}")
