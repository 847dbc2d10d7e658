"""Vendor Orders API (``vendorOrders`` v1): purchase orders and their acknowledgements.

Application role: Amazon Fulfillment (or Inventory and Order Tracking).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import orjson

from streams.adapters.spapi.errors import DateWindowError
from streams.adapters.spapi.transport import Transport

MAX_WINDOW = timedelta(days=7)  # getPurchaseOrders: "The date range must not exceed 7 days"
PO_STATES = ("New", "Acknowledged", "Closed")

PATHS = {
    "getPurchaseOrders": "/vendor/orders/v1/purchaseOrders",
    "getPurchaseOrder": "/vendor/orders/v1/purchaseOrders/{}",
    "getPurchaseOrdersStatus": "/vendor/orders/v1/purchaseOrdersStatus",
    "submitAcknowledgement": "/vendor/orders/v1/acknowledgements",
}


def _as_datetime(value: datetime | str) -> datetime:
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _iso(value: datetime | str) -> str:
    return _as_datetime(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_window(kind: str, after: datetime | str | None, before: datetime | str | None) -> None:
    """Raise :class:`DateWindowError` unless ``after..before`` (before: now) is within 7 days."""
    if after is None:
        return
    start = _as_datetime(after)
    end = _as_datetime(before) if before is not None else datetime.now(UTC)
    if end < start:
        raise DateWindowError(
            f"getPurchaseOrders: {kind}Before ({_iso(end)}) is earlier than "
            f"{kind}After ({_iso(start)})"
        )
    if end - start > MAX_WINDOW:
        raise DateWindowError(
            f"getPurchaseOrders: {kind}After {_iso(start)} to {kind}Before "
            f"{_iso(end) if before is not None else 'now'} spans {end - start}; Amazon allows at "
            "most 7 days per query, so split the range into 7-day windows"
        )


class VendorOrdersApi(Transport):
    def get_purchase_orders(
        self,
        *,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        changed_after: datetime | str | None = None,
        changed_before: datetime | str | None = None,
        purchase_order_state: str | None = None,
        include_details: bool = True,
        sort_order: str | None = None,
        is_po_changed: bool | None = None,
        po_item_state: str | None = None,
        ordering_vendor_code: str | None = None,
        limit: int = 100,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every matching ``Order``, following ``nextToken`` page by page.

        Raises :class:`DateWindowError` right away (before any request) when a created or
        changed range exceeds Amazon's 7 days; with only ``*_after`` the range ends now.
        """
        if not 1 <= limit <= 100:
            raise ValueError("getPurchaseOrders: limit must be between 1 and 100")
        if purchase_order_state is not None and purchase_order_state not in PO_STATES:
            raise ValueError(f"getPurchaseOrders: purchase_order_state must be one of {PO_STATES}")
        if sort_order is not None and sort_order not in ("ASC", "DESC"):
            raise ValueError("getPurchaseOrders: sort_order must be ASC or DESC")
        check_window("created", created_after, created_before)
        check_window("changed", changed_after, changed_before)
        params: dict[str, str] = {"limit": str(limit)}
        dates = {
            "createdAfter": created_after,
            "createdBefore": created_before,
            "changedAfter": changed_after,
            "changedBefore": changed_before,
        }
        params.update({k: _iso(v) for k, v in dates.items() if v is not None})
        if not include_details:
            params["includeDetails"] = "false"
        if is_po_changed is not None:
            params["isPOChanged"] = "true" if is_po_changed else "false"
        optional = {
            "purchaseOrderState": purchase_order_state,
            "sortOrder": sort_order,
            "poItemState": po_item_state,
            "orderingVendorCode": ordering_vendor_code,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        return self._purchase_order_pages(params)

    async def _purchase_order_pages(self, params: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        query = dict(params)
        while True:
            data = await self._call(
                "getPurchaseOrders", "GET", PATHS["getPurchaseOrders"], params=query
            )
            payload = data.get("payload") or {}
            for order in payload.get("orders") or []:
                yield order
            token = (payload.get("pagination") or {}).get("nextToken")
            if not token:
                return
            query = {**params, "nextToken": token}

    async def get_purchase_order(self, purchase_order_number: str) -> dict[str, Any]:
        path = PATHS["getPurchaseOrder"].format(quote(purchase_order_number, safe=""))
        data = await self._call("getPurchaseOrder", "GET", path)
        payload: dict[str, Any] = data.get("payload") or {}
        return payload

    async def get_purchase_order_status(self, purchase_order_number: str) -> dict[str, Any] | None:
        """Amazon's ``OrderStatus`` of one PO (``getPurchaseOrdersStatus``), or None: what
        it received per item, and what was acknowledged."""
        params = {"purchaseOrderNumber": purchase_order_number}
        data = await self._call(
            "getPurchaseOrdersStatus", "GET", PATHS["getPurchaseOrdersStatus"], params=params
        )
        for status in (data.get("payload") or {}).get("ordersStatus") or []:
            if status.get("purchaseOrderNumber") == purchase_order_number:
                return dict(status)
        return None

    async def submit_acknowledgement(
        self, acknowledgements: Sequence[Mapping[str, Any] | bytes]
    ) -> str:
        """Send one or more ``OrderAcknowledgement`` in one request; returns the transactionId
        (a retail transaction: :meth:`get_transaction`).

        An acknowledgement given as bytes (its canonical JSON) is embedded in the body as is,
        so a resend carries exactly the same bytes.
        """
        entries = [orjson.Fragment(a) if isinstance(a, bytes) else a for a in acknowledgements]
        return await self._submit(
            "submitAcknowledgement",
            PATHS["submitAcknowledgement"],
            {"acknowledgements": entries},
            entries,
        )
