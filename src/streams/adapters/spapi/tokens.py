"""Tokens API (2021-03-01): Restricted Data Tokens for operations that return PII.

Amazon's DF ``getOrders``/``getOrder`` return the customer's ship-to address, so they are
called with a Restricted Data Token (RDT) instead of the LWA access token. One RDT covers
both DF order resources (``getOrders``' path and ``getOrder``'s template with
``{purchaseOrderNumber}``, so one token serves every order); it is cached until shortly
before its ``expiresIn`` (a minute, or 10% of short test lifetimes) and renewed once when
Amazon refuses it. RDTs are secrets like access tokens: never logged, scrubbed from errors.
Usage plan (the model's description): 1 request per second, burst 10.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.adapters.spapi.errors import SpApiError
from streams.adapters.spapi.transport import Transport
from streams.adapters.spapi.validation import checked

log = logging.getLogger(__name__)

OPERATION = "createRestrictedDataToken"
PATHS = {OPERATION: "/tokens/2021-03-01/restrictedDataToken"}
PLAN = (1.0, 10)  # Amazon's usage plan for createRestrictedDataToken
DF_ORDERS_PATH = "/vendor/directFulfillment/orders/2021-12-28/purchaseOrders"
# the restricted resources of the DF orders API (GET both)
DF_ORDER_RESOURCES: tuple[tuple[str, str], ...] = (
    ("GET", DF_ORDERS_PATH),
    ("GET", DF_ORDERS_PATH + "/{purchaseOrderNumber}"),
)


@dataclass
class _Rdt:
    value: str = field(repr=False)
    renew_at: float  # monotonic


class RdtSource:
    """The RDT for one set of resources, as a :class:`~.transport.TokenSource`."""

    def __init__(self, api: TokensApi, resources: Sequence[tuple[str, str]]) -> None:
        self._api = api
        self._resources = tuple(resources)
        self._rdt: _Rdt | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<RdtSource {len(self._resources)} resources>"

    @property
    def value(self) -> str | None:
        return self._rdt.value if self._rdt else None

    async def get(self) -> str:
        rdt = self._rdt
        if rdt is not None and time.monotonic() < rdt.renew_at:
            return rdt.value
        async with self._lock:  # one request, however many callers wait for it
            rdt = self._rdt
            if rdt is None or time.monotonic() >= rdt.renew_at:
                value, ttl = await self._api.create_restricted_data_token(self._resources)
                rdt = self._rdt = _Rdt(value, time.monotonic() + ttl - min(60.0, ttl * 0.1))
            return rdt.value

    def invalidate(self, value: str) -> None:
        if self._rdt is not None and self._rdt.value == value:
            self._rdt = None


class TokensApi(Transport):
    _df_rdt: RdtSource | None = None

    async def create_restricted_data_token(
        self, resources: Sequence[tuple[str, str]], target_application: str | None = None
    ) -> tuple[str, float]:
        """A new RDT for ``(method, path)`` ``resources``: ``(token, expiresIn seconds)``."""
        body: dict[str, Any] = {
            "restrictedResources": [{"method": m, "path": p} for m, p in resources]
        }
        if target_application:
            body["targetApplication"] = target_application
        checked("tokens", "CreateRestrictedDataTokenRequest", body)
        data = await self._call(OPERATION, "POST", PATHS[OPERATION], body=body)
        token = data.get("restrictedDataToken")
        if not isinstance(token, str) or not token:
            raise SpApiError(
                200, OPERATION, [{"code": "InvalidResponse", "message": "no restrictedDataToken"}]
            )
        ttl = float(data.get("expiresIn") or 3600)
        log.info("Restricted Data Token obtained for %d resources; valid for %ss",
                 len(resources), int(ttl))  # fmt: skip
        return token, ttl

    def df_orders_rdt(self) -> RdtSource:
        """The cached RDT source of the DF orders reads."""
        if self._df_rdt is None:
            self._df_rdt = RdtSource(self, DF_ORDER_RESOURCES)
        return self._df_rdt

    def _extra_secrets(self) -> list[str]:
        value = self._df_rdt.value if self._df_rdt else None
        return [value] if value else []
