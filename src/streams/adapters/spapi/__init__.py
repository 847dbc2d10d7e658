"""Amazon Selling Partner API client for the vendor operations this project uses.

One module per Amazon API (:mod:`.orders`, :mod:`.shipping`, :mod:`.df_inventory`,
:mod:`.transactions`, :mod:`.df_orders`, :mod:`.df_shipping`, :mod:`.tokens`) on a shared
:mod:`.transport` (LWA, rate limits, retries, errors).
"""

from streams.adapters.spapi.client import PATHS, SpApiClient
from streams.adapters.spapi.df_orders import DF_STATUSES, DfOrdersPage
from streams.adapters.spapi.errors import (
    RETRYABLE_STATUSES,
    CountingHooks,
    DateWindowError,
    NoBudgetShare,
    OperationCounts,
    SpApiAuthError,
    SpApiError,
    SpApiHooks,
    TransactionFailed,
)
from streams.adapters.spapi.orders import MAX_WINDOW, PO_STATES, check_window
from streams.adapters.spapi.transactions import DF_VERSIONS
from streams.adapters.spapi.transport import LWA_OPERATION, RetryPolicy
from streams.adapters.spapi.validation import InvalidBody

__all__ = [
    "DF_STATUSES",
    "DF_VERSIONS",
    "LWA_OPERATION",
    "MAX_WINDOW",
    "PATHS",
    "PO_STATES",
    "RETRYABLE_STATUSES",
    "CountingHooks",
    "DateWindowError",
    "DfOrdersPage",
    "InvalidBody",
    "NoBudgetShare",
    "OperationCounts",
    "RetryPolicy",
    "SpApiAuthError",
    "SpApiClient",
    "SpApiError",
    "SpApiHooks",
    "TransactionFailed",
    "check_window",
]
