"""SP-API errors and response observers, shared by every Amazon API module."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from streams.adapters.http import Hooks

RETRYABLE_STATUSES = frozenset({0, 429, 500, 502, 503, 504})  # 0: no HTTP response at all


class SpApiError(Exception):
    """An SP-API call failed: an HTTP error, or retries ran out (``status`` 0 = no response).

    ``errors`` is Amazon's ErrorList: dicts with ``code``, ``message`` and maybe ``details``.
    ``retry_after`` is the answer's ``Retry-After`` in seconds, when it had one.
    """

    retry_after: float | None = None

    def __init__(
        self,
        status: int,
        operation: str,
        errors: list[dict[str, Any]] | None = None,
        request_id: str | None = None,
    ) -> None:
        self.status = status
        self.operation = operation
        self.errors: list[dict[str, Any]] = errors or []
        self.request_id = request_id
        super().__init__(self._summary())

    def _summary(self) -> str:
        parts = []
        for e in self.errors[:5]:
            text = f"{e.get('code', '?')}: {e.get('message', '')}"
            parts.append(f"{text} ({e['details']})" if e.get("details") else text)
        where = f"HTTP {self.status}" if self.status else "no response"
        return f"{self.operation} failed, {where}: " + ("; ".join(parts) or "no error details")

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE_STATUSES

    @property
    def codes(self) -> list[str]:
        return [str(e.get("code", "")) for e in self.errors]


class SpApiAuthError(SpApiError):
    """Login with Amazon refused the refresh-token exchange (bad client or refresh token)."""


class NoBudgetShare(SpApiError):
    """This worker owns none of the partitions that share Amazon's plan for the operation,
    so it may not send it now (a 429 that never reached Amazon; retry once it owns some)."""

    def __init__(self, operation: str) -> None:
        message = "this worker has no share of the group's usage plan for the operation now"
        super().__init__(429, operation, [{"code": "NoBudgetShare", "message": message}])


class DateWindowError(ValueError):
    """A getPurchaseOrders date range Amazon would refuse (more than 7 days, or reversed)."""


class TransactionFailed(Exception):
    """Amazon processed a submission and rejected it (transaction status ``Failure``)."""

    def __init__(self, transaction_id: str, errors: list[dict[str, Any]]) -> None:
        self.transaction_id = transaction_id
        self.errors = errors
        detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors[:5])
        super().__init__(f"transaction {transaction_id} failed: {detail or 'no error details'}")


# observer of every HTTP exchange (``status`` 0 = no response), e.g. for metrics
SpApiHooks = Hooks


@dataclass
class OperationCounts:
    requests: int = 0
    errors: int = 0  # status 0 or >= 400, 429 included
    throttled: int = 0  # 429
    seconds: float = 0.0


@dataclass
class CountingHooks:
    """A ready-made :class:`SpApiHooks` that counts per operation (tests, demo, bench)."""

    counts: defaultdict[str, OperationCounts] = field(
        default_factory=lambda: defaultdict(OperationCounts)
    )
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)

    def on_response(self, operation: str, status: int, seconds: float) -> None:
        c = self.counts[operation]
        c.requests += 1
        c.seconds += seconds
        c.errors += status == 0 or status >= 400
        c.throttled += status == 429
        self.statuses[operation, status] += 1
