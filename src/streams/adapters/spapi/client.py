"""``SpApiClient``: every Amazon vendor API this project calls, on one transport."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import aiohttp

from streams.adapters.spapi import (
    df_inventory,
    df_orders,
    df_payments,
    df_shipping,
    invoices,
    orders,
    shipping,
    tokens,
    transactions,
)
from streams.adapters.spapi.df_inventory import DfInventoryApi
from streams.adapters.spapi.df_orders import DfOrdersApi
from streams.adapters.spapi.df_payments import DfPaymentsApi
from streams.adapters.spapi.df_shipping import DfShippingApi
from streams.adapters.spapi.errors import SpApiHooks
from streams.adapters.spapi.invoices import VendorInvoicesApi
from streams.adapters.spapi.orders import VendorOrdersApi
from streams.adapters.spapi.shipping import VendorShipmentsApi
from streams.adapters.spapi.transactions import TransactionsApi
from streams.adapters.spapi.transport import RetryPolicy

if TYPE_CHECKING:
    from streams.config import Settings

# operationId -> path template (the DF transaction path also takes the API version)
PATHS: dict[str, str] = {
    **orders.PATHS,
    **shipping.PATHS,
    **df_inventory.PATHS,
    **transactions.PATHS,
    **df_orders.PATHS,
    **df_shipping.PATHS,
    **tokens.PATHS,
    **invoices.PATHS,
    **df_payments.PATHS,
}
# Amazon's default usage plans: 10/s burst 10 everywhere, except the retail getTransaction's
# burst 20 (twice the burst) and createRestrictedDataToken's 1/s burst 10
DOUBLE_BURST = frozenset({transactions.RETAIL})
FIXED_PLANS = {tokens.OPERATION: tokens.PLAN}


class SpApiClient(
    VendorOrdersApi,
    VendorShipmentsApi,
    DfInventoryApi,
    TransactionsApi,
    DfOrdersApi,
    DfShippingApi,
    VendorInvoicesApi,
    DfPaymentsApi,
):
    """Async SP-API client; ``async with SpApiClient(settings) as api: ...``.

    Pass ``session`` to share an aiohttp session (the client then leaves it open). ``hooks``
    observes every exchange; ``retry`` bounds the retries; ``rate_limits`` overrides the
    per-operation ``(rate per second, burst)`` taken from ``settings`` (the group's plan;
    :meth:`set_share` narrows it to this worker's part).
    """

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession | None = None,
        *,
        hooks: SpApiHooks | None = None,
        retry: RetryPolicy | None = None,
        rate_limits: Mapping[str, tuple[float, int]] | None = None,
    ) -> None:
        rate, burst = settings.spapi_rate_per_s, settings.spapi_burst
        plans = {op: (rate, burst * 2 if op in DOUBLE_BURST else burst) for op in PATHS}
        plans.update(rate_limits or {})
        # Amazon's own plan, unless the settings or ``rate_limits`` ask for less
        for op, (r, b) in FIXED_PLANS.items():
            plans[op] = (min(r, plans[op][0]), min(b, plans[op][1]))
        super().__init__(settings, session, hooks=hooks, retry=retry, plans=plans)
        self.df_transactions_version = settings.spapi_df_transactions_version

    async def __aenter__(self) -> SpApiClient:
        return self
