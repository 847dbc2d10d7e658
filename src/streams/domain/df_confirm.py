"""DF shipment confirmation (and status update) from a WMS dispatch of a DF order:
``submitShipmentConfirmations`` / ``submitShipmentStatusUpdates`` bodies of
vendorDirectFulfillmentShipping 2021-12-28.

A DF dispatch is the usual ``wms.dispatches`` record; a DF shipment additionally needs, per
carton, its ``weight`` (``{"value", "unitOfMeasure": "KG"|"LB"}``, Amazon requires it on a
container) and optionally ``dimensions``; the dispatch may carry ``shipMethod`` (else the
order's) and a carrier ``status`` (``statusCode``, ``reasonCode``, ``statusDateTime``,
``location``: the carrier's scan location, an Address). Whatever cannot make a valid body is
a list of problems: the flow raises a fulfilment exception and sends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from streams.domain.df_ack import _iso, vendor_order_number
from streams.domain.dispatch import Dispatch
from streams.domain.purchase_orders import PoLine


def build_confirmation(
    number: str,
    raw: Mapping[str, Any],
    dispatch: Dispatch,
    lines: Sequence[PoLine],
    decisions: Mapping[str, Mapping[str, Any]],
    selling_party: str,
    ship_method: str | None,
    priority: bool | None,
) -> tuple[dict[str, Any] | None, list[str]]:
    """The ``ShipmentConfirmation`` of a dispatch, or None with the problems."""
    problems: list[str] = []
    by_sku = {ln.sku: ln for ln in lines if ln.sku}
    shipped = dispatch.shipped_eaches()
    for sku, q in shipped.items():
        ln = by_sku.get(sku)
        if ln is None:
            problems.append(f"SKU {sku} is not on DF order {number}")
            continue
        accepted = int((decisions.get(ln.itemSequenceNumber) or {}).get("accepted") or 0)
        if q > accepted:
            problems.append(f"SKU {sku}: {q} shipped, {accepted} acknowledged")
    method = raw.get("shipMethod") or ship_method
    if not method:
        problems.append("no shipMethod on the dispatch or the order")
    if dispatch.pallets:
        problems.append("DF orders ship in cartons (parcels), not pallets")
    raw_cartons = {str(c.get("sscc", ""))[-18:]: c for c in raw.get("cartons") or []}
    containers = []
    for i, carton in enumerate(dispatch.cartons, 1):
        rc = raw_cartons.get(carton.sscc, {})
        tracking = carton.trackingNumber or (
            dispatch.trackingNumbers[i - 1] if i <= len(dispatch.trackingNumbers) else None
        )
        if not tracking:
            problems.append(f"carton {carton.sscc}: no tracking number")
        weight = _weight(rc.get("weight"))
        if weight is None:
            problems.append(f"carton {carton.sscc}: no weight {{value, unitOfMeasure KG|LB}}")
        packed = []
        for it in carton.items:
            ln = by_sku.get(it.sku)
            if ln is None:
                continue
            packed.append({**_ids(ln), "packedQuantity": _each(it.quantityEaches)})
        c: dict[str, Any] = {
            "containerType": "Carton",
            "containerIdentifier": carton.sscc,
            "containerSequenceNumber": i,
            "shipMethod": method,
            "packedItems": packed,
        }
        if tracking:
            c["trackingNumber"] = tracking
        if weight is not None:
            c["weight"] = weight
        if dispatch.carrierScac:
            c["scacCode"] = dispatch.carrierScac
        if isinstance(rc.get("dimensions"), dict):
            c["dimensions"] = rc["dimensions"]
        containers.append(c)
    if problems:
        return None, problems
    details: dict[str, Any] = {
        "shippedDate": _iso(dispatch.shippedDate),
        "shipmentStatus": "SHIPPED",
        "vendorOrderNumber": vendor_order_number(number),
    }
    if priority is not None:
        details["isPriorityShipment"] = priority
    if dispatch.estimatedDeliveryDate is not None:
        details["estimatedDeliveryDate"] = _iso(dispatch.estimatedDeliveryDate)
    items = [
        {**_ids(by_sku[sku]), "shippedQuantity": _each(q)}
        for sku, q in sorted(shipped.items(), key=lambda kv: int(_seq(by_sku[kv[0]])))
    ]
    return {
        "purchaseOrderNumber": number,
        "shipmentDetails": details,
        "sellingParty": {"partyId": selling_party},
        "shipFromParty": {"partyId": dispatch.shipFromWarehouse},
        "items": items,
        "containers": containers,
    }, []


def build_status_update(
    number: str, raw: Mapping[str, Any], dispatch: Dispatch, selling_party: str
) -> tuple[dict[str, Any] | None, list[str]]:
    """The ``ShipmentStatusUpdate`` the dispatch's ``status`` reports (None, [] if none)."""
    st = raw.get("status")
    if st is None:
        return None, []
    if not isinstance(st, dict):
        return None, ["status must be an object"]
    problems = [
        f"status.{k} missing"
        for k in ("statusCode", "reasonCode", "statusDateTime")
        if not isinstance(st.get(k), str) or not st.get(k)
    ]
    tracking = st.get("trackingNumber") or next(iter(dispatch.trackingNumbers), None)
    tracking = tracking or next(
        (c.trackingNumber for c in dispatch.cartons if c.trackingNumber), None
    )
    if not tracking:
        problems.append("status: no tracking number")
    loc = st.get("location")
    if not (isinstance(loc, dict) and loc.get("countryCode") and loc.get("name")
            and loc.get("addressLine1")):  # fmt: skip
        problems.append("status.location needs name, addressLine1 and countryCode")
    if problems:
        return None, problems
    return {
        "purchaseOrderNumber": number,
        "sellingParty": {"partyId": selling_party},
        "shipFromParty": {"partyId": dispatch.shipFromWarehouse},
        "statusUpdateDetails": {
            "trackingNumber": tracking,
            "statusCode": st["statusCode"],
            "reasonCode": st["reasonCode"],
            "statusDateTime": st["statusDateTime"],
            "statusLocationAddress": loc,
        },
    }, []


def _seq(ln: PoLine) -> str:
    s = ln.itemSequenceNumber
    return s if s.isdigit() else "0"


def _ids(ln: PoLine) -> dict[str, Any]:
    out: dict[str, Any] = {"itemSequenceNumber": int(_seq(ln))}
    if ln.amazonProductIdentifier:
        out["buyerProductIdentifier"] = ln.amazonProductIdentifier
    if ln.vendorProductIdentifier:
        out["vendorProductIdentifier"] = ln.vendorProductIdentifier
    return out


def _each(q: int) -> dict[str, Any]:
    return {"amount": q, "unitOfMeasure": "Each"}


def _weight(w: Any) -> dict[str, Any] | None:
    if not isinstance(w, dict) or w.get("unitOfMeasure") not in ("KG", "LB"):
        return None
    v = w.get("value")
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        return None
    try:
        if float(v) <= 0:
            return None
    except ValueError:
        return None
    return {"unitOfMeasure": w["unitOfMeasure"], "value": str(v)}
