"""Fault injection for the SP-API sandbox: 5xx, latency, 429 storms, failed transactions.

Configured up front (``SandboxConfig.faults``) or at runtime through ``POST /_sandbox/faults``
with the camelCase JSON that :func:`faults_from_json` reads and :meth:`FaultState.to_json`
writes. Operation keys are SP-API operationIds; ``"*"`` applies to every operation.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

WILDCARD = "*"


@dataclass
class OperationFaults:
    error_rate: float = 0.0  # probability that a request gets ``error_status``
    error_status: int = 503  # 500 or 503
    fail_next: int = 0  # the next N requests get ``error_status``
    latency_s: float = 0.0  # added before the request is handled
    throttle_next: int = 0  # 429 storm: the next N requests get 429
    throttle_for_s: float = 0.0  # 429 storm: every request for T seconds gets 429


@dataclass
class TransactionFaults:
    fail_next: int = 0  # the next N accepted submissions end in Failure
    purchase_orders: set[str] = field(default_factory=set)  # submissions naming these fail
    code: str = "INVALID_ORDER_ID"  # Amazon's own sandbox failure example
    message: str = "Invalid order ID."


@dataclass
class Faults:
    operations: dict[str, OperationFaults] = field(default_factory=dict)
    transactions: TransactionFaults | None = None  # None: leave the current plan as it is


_OP_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "errorRate": ("error_rate", float),
    "errorStatus": ("error_status", int),
    "failNext": ("fail_next", int),
    "latencyMs": ("latency_s", lambda v: float(v) / 1000),
    "throttleNext": ("throttle_next", int),
    "throttleForS": ("throttle_for_s", float),
}


def faults_from_json(data: dict[str, Any]) -> Faults:
    """Parse ``{"operations": {op: {...}}, "transactionFailures": {...}}``; ValueError if bad."""
    if not isinstance(data, dict):
        raise ValueError("faults must be a JSON object")
    unknown = set(data) - {"operations", "transactionFailures", "clear"}
    if unknown:
        raise ValueError(f"unknown fault keys: {sorted(unknown)}")
    out = Faults()
    for op, spec in (data.get("operations") or {}).items():
        if not isinstance(spec, dict) or set(spec) - set(_OP_KEYS):
            raise ValueError(f"operations.{op}: expected keys among {sorted(_OP_KEYS)}")
        kwargs = {_OP_KEYS[k][0]: _OP_KEYS[k][1](v) for k, v in spec.items()}
        of = OperationFaults(**kwargs)
        if of.error_status not in (500, 502, 503, 504):
            raise ValueError(f"operations.{op}.errorStatus must be a 5xx status")
        if not 0.0 <= of.error_rate <= 1.0:
            raise ValueError(f"operations.{op}.errorRate must be within 0..1")
        out.operations[str(op)] = of
    tx = data.get("transactionFailures")
    if tx is not None:
        if not isinstance(tx, dict) or set(tx) - {"next", "purchaseOrders", "code", "message"}:
            raise ValueError("transactionFailures: expected next, purchaseOrders, code, message")
        out.transactions = TransactionFaults(
            fail_next=int(tx.get("next", 0)),
            purchase_orders={str(p) for p in tx.get("purchaseOrders", [])},
            code=str(tx.get("code", TransactionFaults.code)),
            message=str(tx.get("message", TransactionFaults.message)),
        )
    return out


@dataclass
class _OpState:
    faults: OperationFaults
    throttle_until: float = 0.0  # monotonic deadline of a timed 429 storm


class FaultState:
    """The live, mutable fault plan. Counters count down as requests consume them."""

    def __init__(self, faults: Faults | None = None, seed: int = 0) -> None:
        self._rng = random.Random(f"faults-{seed}")
        self._ops: dict[str, _OpState] = {}
        self.transactions = TransactionFaults()
        self.apply(faults or Faults(), clear=True)

    def apply(self, faults: Faults, *, clear: bool = False) -> None:
        """Install ``faults``; operations named replace their previous plan."""
        if clear:
            self._ops.clear()
            self.transactions = TransactionFaults()
        now = time.monotonic()
        for op, of in faults.operations.items():
            of = replace(of)  # keep the caller's config object pristine
            self._ops[op] = _OpState(of, now + of.throttle_for_s if of.throttle_for_s else 0.0)
        if faults.transactions is not None:
            tx = faults.transactions
            self.transactions = replace(tx, purchase_orders=set(tx.purchase_orders))

    def _plans(self, operation: str) -> list[_OpState]:
        return [s for key in (operation, WILDCARD) if (s := self._ops.get(key)) is not None]

    def latency(self, operation: str) -> float:
        return max((s.faults.latency_s for s in self._plans(operation)), default=0.0)

    def throttled(self, operation: str) -> bool:
        """True when a 429 storm covers this request (consumes one of ``throttle_next``)."""
        now = time.monotonic()
        for s in self._plans(operation):
            if s.throttle_until > now:
                return True
            if s.faults.throttle_next > 0:
                s.faults.throttle_next -= 1
                return True
        return False

    def server_error(self, operation: str) -> int | None:
        """A 5xx status to answer with instead of handling the request, or None."""
        for s in self._plans(operation):
            if s.faults.fail_next > 0:
                s.faults.fail_next -= 1
                return s.faults.error_status
            if s.faults.error_rate and self._rng.random() < s.faults.error_rate:
                return s.faults.error_status
        return None

    def transaction_failure(self, purchase_orders: set[str]) -> list[dict[str, str]] | None:
        """Errors for a submission that must end in Failure, or None for Success."""
        tx = self.transactions
        hit = sorted(purchase_orders & tx.purchase_orders)
        if hit:
            return [{"code": tx.code, "message": tx.message, "details": ",".join(hit)}]
        if tx.fail_next > 0:
            tx.fail_next -= 1
            return [{"code": tx.code, "message": tx.message}]
        return None

    def to_json(self) -> dict[str, Any]:
        now = time.monotonic()
        ops = {}
        for op, s in self._ops.items():
            f = s.faults
            ops[op] = {
                "errorRate": f.error_rate,
                "errorStatus": f.error_status,
                "failNext": f.fail_next,
                "latencyMs": round(f.latency_s * 1000, 3),
                "throttleNext": f.throttle_next,
                "throttleForS": round(max(0.0, s.throttle_until - now), 3),
            }
        tx = self.transactions
        return {
            "operations": ops,
            "transactionFailures": {
                "next": tx.fail_next,
                "purchaseOrders": sorted(tx.purchase_orders),
                "code": tx.code,
                "message": tx.message,
            },
        }
