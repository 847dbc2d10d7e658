"""The inventory sender's accepted requests, watched until Amazon settles them: each tick
checks the oldest few with the DF Transaction Status API (``getTransactionStatus``); a
``Failure`` becomes an ``inventory-transaction-failed`` exception. Held in memory: after a
restart those not settled yet are not checked again (the next snapshot re-sends their
amounts anyway)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from streams.config import Settings
from streams.domain.exceptions import Refs
from streams.observability import metrics as M

log = logging.getLogger(__name__)

MAX_TX_CHECKS_PER_TICK = 50
Report = Callable[[str, Refs, str], Awaitable[Any]]


@dataclass(frozen=True)
class Submitted:
    warehouse: str
    items: int
    at: float  # the flow's clock
    skus: list[str]  # the first few, for the exception text


class TxWatch:
    def __init__(
        self,
        settings: Settings,
        spapi: Callable[[], Any],
        clock: Callable[[], float],
        report: Report,
        *,
        failed_kind: str,
    ) -> None:
        self.settings = settings
        self.spapi = spapi
        self.clock = clock
        self.report = report
        self.failed_kind = failed_kind
        self.pending: dict[str, Submitted] = {}

    def watch(self, txid: str, warehouse: str, items: int, skus: list[str]) -> None:
        self.pending[txid] = Submitted(warehouse, items, self.clock(), skus[:5])

    async def tick(self) -> None:
        oldest = sorted(self.pending.items(), key=lambda kv: kv[1].at)
        for txid, sub in oldest[:MAX_TX_CHECKS_PER_TICK]:
            try:
                status = await self.spapi().get_df_transaction(txid)
            except Exception as exc:
                log.warning("inventory transaction %s status unknown: %s", txid, type(exc).__name__)
                continue
            state = status.get("status", "Processing")
            if (
                state == "Processing"
                and self.clock() - sub.at >= self.settings.tx_processing_success_s
            ):
                state = "Success"  # Amazon: still Processing after 15 minutes = processed
            if state == "Processing":
                continue
            self.pending.pop(txid, None)
            if state == "Failure":
                M.TX_FAILURES.labels("inventory").inc()
                await self.report(
                    self.failed_kind,
                    Refs(transactionId=txid),
                    f"Amazon could not process the inventory update for warehouse "
                    f"{sub.warehouse} ({sub.items} items, SKUs {', '.join(sub.skus)}...): "
                    + (errors_text(status.get("errors") or []) or "Failure"),
                )
            else:
                M.LAST_SUCCESS.labels("inventory_transaction").set(self.clock())


def errors_text(errors: list[dict[str, Any]]) -> str:
    return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors[:10])
