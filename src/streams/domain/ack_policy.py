"""What the acknowledgement sender and the transaction poller do with Amazon's answers (pure).

* A refused ``submitAcknowledgement`` (:func:`on_refusal`): 401/403 or a refused login are
  about our credentials, not the acknowledgements: keep them and retry, telling operations
  once. Another 4xx but 429 is about the request: several acknowledgements are sent again in
  halves, down to single ones, so those Amazon accepts go through and each refusal names its
  PO (a 413, body too large, splits the same way); a single one is rejected. Anything else
  (429, 5xx, no answer) is retried with a capped backoff (:func:`next_delay`).
* Amazon's 15-minute rule (:func:`transaction_outcome`): a transaction still Processing
  ``processing_success_s`` after its submission counts as a success.
"""

from __future__ import annotations

from typing import Literal

Refusal = Literal["credentials", "split", "reject", "retry"]

MAX_DELAY_S = 60.0


def on_refusal(status: int | None, n: int, *, auth_error: bool = False) -> Refusal:
    """What to do with a request of ``n`` acknowledgements that failed with ``status``."""
    if auth_error or status in (401, 403):
        return "credentials"
    if status is not None and 400 <= status < 500 and status != 429:
        return "split" if n > 1 else "reject"
    return "retry"


def halves(n: int) -> tuple[slice, slice]:
    half = n // 2
    return slice(0, half), slice(half, n)


def next_delay(delay: float) -> float:
    return min(delay * 2, MAX_DELAY_S)


def transaction_outcome(
    status: str, submitted_at: float, now: float, processing_success_s: float
) -> str:
    """``status`` as the flow acts on it: Processing past the limit is Success (Amazon)."""
    if status == "Processing" and now - submitted_at >= processing_success_s:
        return "Success"
    return status


def settled(status: str) -> bool:
    return status in ("Success", "Failure")
