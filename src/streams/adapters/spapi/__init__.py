"""Amazon Selling Partner API client for the vendor operations this project uses.

One module per Amazon API (:mod:`.orders`, :mod:`.shipping`, :mod:`.df_inventory`,
:mod:`.transactions`) on a shared :mod:`.transport` (LWA, rate limits, retries, errors).
"""

from streams.adapters.spapi.client import PATHS, SpApiClient
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

__all__ = [
    "DF_VERSIONS",
    "LWA_OPERATION",
    "MAX_WINDOW",
    "PATHS",
    "PO_STATES",
    "RETRYABLE_STATUSES",
    "CountingHooks",
    "DateWindowError",
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
