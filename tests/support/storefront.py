"""commercetools order messages as a subscription delivers them (Platform format), for tests.

Shapes follow commercetools' Message and Order representations: the message fields at top
level, the full Order in ``order`` for OrderCreated / OrderImported / OrderDeleted.
"""

from __future__ import annotations

import uuid
from typing import Any


def line_item(
    sku: str,
    quantity: int,
    channel: str | None = None,
    mode: str | None = None,
    line_id: str | None = None,
) -> dict[str, Any]:
    li: dict[str, Any] = {
        "id": line_id or str(uuid.uuid4()),
        "productId": str(uuid.uuid4()),
        "name": {"en": sku},
        "variant": {"id": 1, "sku": sku},
        "price": {"value": {"type": "centPrecision", "currencyCode": "EUR", "centAmount": 1000}},
        "quantity": quantity,
        "lineItemMode": "Standard",
        "priceMode": "Platform",
        "state": [{"quantity": quantity, "state": {"typeId": "state", "id": "initial"}}],
    }
    if channel is not None:
        li["supplyChannel"] = {"typeId": "channel", "id": channel}
    if mode is not None:
        li["inventoryMode"] = mode
    return li


def order(
    lines: list[dict[str, Any]],
    mode: str | None = "ReserveOnOrder",
    order_id: str | None = None,
    state: str = "Open",
    version: int = 1,
) -> dict[str, Any]:
    o: dict[str, Any] = {
        "id": order_id or str(uuid.uuid4()),
        "version": version,
        "orderNumber": f"SF-{uuid.uuid4().hex[:8]}",
        "createdAt": "2026-12-06T10:00:00.000Z",
        "lastModifiedAt": "2026-12-06T10:00:00.000Z",
        "lineItems": lines,
        "customLineItems": [],
        "totalPrice": {"type": "centPrecision", "currencyCode": "EUR", "centAmount": 1000},
        "orderState": state,
        "origin": "Customer",
    }
    if mode is not None:
        o["inventoryMode"] = mode
    return o


def message(
    mtype: str, order_id: str, seq: int = 1, version: int = 1, **fields: Any
) -> dict[str, Any]:
    return {
        "notificationType": "Message",
        "projectKey": "demo-project",
        "id": str(uuid.uuid4()),
        "version": 1,
        "sequenceNumber": seq,
        "resource": {"typeId": "order", "id": order_id},
        "resourceVersion": version,
        "resourceUserProvidedIdentifiers": {"orderNumber": "SF-1"},
        "type": mtype,
        "createdAt": "2026-12-06T10:00:00.000Z",
        "lastModifiedAt": "2026-12-06T10:00:00.000Z",
        **fields,
    }


def order_created(o: dict[str, Any], mtype: str = "OrderCreated") -> dict[str, Any]:
    return message(mtype, o["id"], version=o["version"], order=o)


def state_changed(order_id: str, new: str, old: str = "Open", seq: int = 2) -> dict[str, Any]:
    return message("OrderStateChanged", order_id, seq, seq, orderState=new, oldOrderState=old)


def cloudevent(platform: dict[str, Any]) -> dict[str, Any]:
    """The same delivery in the CloudEvents format."""
    rtype = platform["resource"]["typeId"]
    return {
        "specversion": "1.0",
        "id": platform["id"],
        "type": f"com.commercetools.{rtype}.message.{platform['type']}",
        "source": f"/demo-project/{rtype}s",
        "subject": platform["resource"]["id"],
        "time": platform["createdAt"],
        "sequence": str(platform["sequenceNumber"]),
        "sequencetype": "Integer",
        "dataref": f"/demo-project/messages/{platform['id']}",
        "data": platform,
    }
