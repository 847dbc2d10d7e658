"""commercetools HTTP API client (aiohttp): OAuth2 client credentials, inventory, custom
Types, channels, orders. :class:`CommercetoolsClient` is the one client every flow uses."""

from streams.adapters.commercetools.client import CommercetoolsClient
from streams.adapters.commercetools.errors import (
    AMBIGUOUS_STATUS,
    TRANSIENT_STATUS,
    AuthError,
    CommercetoolsError,
    Kind,
    UpdateOutcomeUnknown,
)
from streams.adapters.commercetools.inventory import (
    CURSOR_VAR,
    MAX_LIMIT,
    MIN_PAGE,
    RELATIVE_ACTIONS,
    Decide,
    DecideResult,
    Variables,
)
from streams.adapters.commercetools.transport import Action, Json
from streams.adapters.http import Hooks as ClientHooks

__all__ = [
    "AMBIGUOUS_STATUS",
    "CURSOR_VAR",
    "MAX_LIMIT",
    "MIN_PAGE",
    "RELATIVE_ACTIONS",
    "TRANSIENT_STATUS",
    "Action",
    "AuthError",
    "ClientHooks",
    "CommercetoolsClient",
    "CommercetoolsError",
    "Decide",
    "DecideResult",
    "Json",
    "Kind",
    "UpdateOutcomeUnknown",
    "Variables",
]
