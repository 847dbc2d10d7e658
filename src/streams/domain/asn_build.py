"""Dispatch -> ASN: build an SP-API ``ShipmentConfirmation`` from a dispatch and its PO.

``build_shipment_confirmation`` joins a WMS dispatch (eaches) with the PO and its
acknowledgement (``PoState``) and writes what physically left: it never rounds or drops, so a
bad dispatch yields an ASN that states the problem (a partial case stays in Eaches, an
unordered SKU gets its own item) and :mod:`streams.domain.asn_check` names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from streams.domain.asn_model import Party, PoState, asn_seq, iso
from streams.domain.dispatch import Dispatch, DispatchItem
from streams.domain.gs1 import SSCC_AI
from streams.domain.mapping import SkuMapping


def build_shipment_confirmation(
    dispatch: Dispatch,
    po_state: PoState,
    items_data: Mapping[str, SkuMapping],
    now: datetime,
    *,
    ship_from: Party | None = None,
    sscc_with_ai: bool = False,
) -> dict[str, Any]:
    """The ``ShipmentConfirmation`` for ``dispatch``; check it with the validator below.

    Items keep their PO line's sequence number (so Amazon and we can tie them to the line);
    quantities are in the acknowledged unit. ``items_data`` (commercetools SKU master data)
    fills identifiers a line lacks and names SKUs that are not on the PO. ``ship_from`` is
    the vendor's ship-from party as Amazon knows it (default: the warehouse key).
    ``sscc_with_ai`` prefixes SSCCs with their "00" Application Identifier.
    """
    items = _ItemAssigner(po_state, items_data)
    carton_seq: dict[str, str] = {}  # SSCC -> cartonSequenceNumber, for pallet references
    for i, c in enumerate(dispatch.cartons, 1):
        carton_seq.setdefault(c.sscc, f"{i:03d}")

    def identifier(sscc: str) -> list[dict[str, str]]:
        number = SSCC_AI + sscc if sscc_with_ai else sscc
        return [{"containerIdentificationType": "SSCC", "containerIdentificationNumber": number}]

    def contents(goods: tuple[DispatchItem, ...]) -> list[dict[str, Any]]:
        eaches: dict[str, int] = {}
        for good in goods:
            for seq, n in items.assign(good.sku, good.quantityEaches):
                eaches[seq] = eaches.get(seq, 0) + n
        return [
            {"itemReference": seq, "shippedQuantity": items.quantity(seq, n)}
            for seq, n in eaches.items()
        ]

    cartons: list[dict[str, Any]] = []
    for i, c in enumerate(dispatch.cartons, 1):
        carton: dict[str, Any] = {
            "cartonIdentifiers": identifier(c.sscc),
            "cartonSequenceNumber": f"{i:03d}",
        }
        if c.trackingNumber:
            carton["trackingNumber"] = c.trackingNumber
        carton["items"] = contents(c.items)
        cartons.append(carton)

    pallets: list[dict[str, Any]] = []
    for p in dispatch.pallets:
        pallet: dict[str, Any] = {"palletIdentifiers": identifier(p.sscc)}
        if p.cartons:
            # an SSCC that names no carton stays as is; the validator reports it
            refs = [carton_seq.get(s, s) for s in p.cartons]
            pallet["cartonReferenceDetails"] = {
                "cartonCount": len(refs),
                "cartonReferenceNumbers": refs,
            }
        if p.items:
            pallet["items"] = contents(p.items)
        pallets.append(pallet)

    asn: dict[str, Any] = {
        "shipmentIdentifier": dispatch.shipmentId,
        "shipmentConfirmationType": "Replace" if dispatch.isCorrection else "Original",
        "shipmentType": dispatch.shipmentType,
        "shipmentStructure": _structure(dispatch),
    }
    transport = _transportation(dispatch)
    if transport:
        asn["transportationDetails"] = transport
    if dispatch.amazonReferenceNumber:
        asn["amazonReferenceNumber"] = dispatch.amazonReferenceNumber
    asn["shipmentConfirmationDate"] = iso(now)
    asn["shippedDate"] = iso(dispatch.shippedDate)
    if dispatch.estimatedDeliveryDate:
        asn["estimatedDeliveryDate"] = iso(dispatch.estimatedDeliveryDate)
    asn["sellingParty"] = po_state.sellingParty.for_shipment()
    asn["shipFromParty"] = (
        ship_from.for_shipment() if ship_from else {"partyId": dispatch.shipFromWarehouse}
    )
    asn["shipToParty"] = po_state.shipToParty.for_shipment()
    asn["shipmentMeasurements"] = (
        {"palletCount": len(pallets)} if pallets else {"cartonCount": len(cartons)}
    )
    asn["shippedItems"] = items.shipped_items(dispatch.purchaseOrderNumber)
    if cartons:
        asn["cartons"] = cartons
    if pallets:
        asn["pallets"] = pallets
    return asn


def submit_request(*confirmations: Mapping[str, Any]) -> dict[str, Any]:
    """The ``SubmitShipmentConfirmationsRequest`` body for one or more confirmations."""
    return {"shipmentConfirmations": [dict(c) for c in confirmations]}


class _ItemAssigner:
    """Turns dispatched (SKU, eaches) into ASN items: PO lines first, unordered SKUs after."""

    def __init__(self, po: PoState, items_data: Mapping[str, SkuMapping]) -> None:
        self._data = items_data
        ordered = sorted(po.lines, key=lambda x: _seq_order(x.itemSequenceNumber))
        self._lines = {asn_seq(x.itemSequenceNumber): x for x in ordered}
        self._by_sku: dict[str, list[str]] = {}
        for seq, line in self._lines.items():
            self._by_sku.setdefault(line.sku, []).append(seq)
        # room left on each line, so a SKU on two lines fills them in order
        self._room = {seq: line.acknowledged_eaches for seq, line in self._lines.items()}
        self._extra: dict[str, str] = {}  # SKU not on the PO -> its ASN item
        self._sku = {seq: line.sku for seq, line in self._lines.items()}
        self._eaches: dict[str, int] = dict.fromkeys(self._lines, 0)

    def assign(self, sku: str, eaches: int) -> list[tuple[str, int]]:
        seqs = self._by_sku.get(sku) or [self._extra_seq(sku)]
        out: list[tuple[str, int]] = []
        left = eaches
        for i, seq in enumerate(seqs):
            # the last line takes any excess: an over-shipment is reported, not hidden
            take = left if i == len(seqs) - 1 else min(left, self._room.get(seq, 0))
            if take:
                out.append((seq, take))
                self._room[seq] = self._room.get(seq, 0) - take
                self._eaches[seq] += take
                left -= take
        return out

    def _extra_seq(self, sku: str) -> str:
        if sku not in self._extra:
            n = max((int(s) for s in self._eaches if s.isascii() and s.isdigit()), default=0)
            seq = f"{n + 1:03d}"
            self._extra[sku] = seq
            self._sku[seq] = sku
            self._eaches[seq] = 0
        return self._extra[sku]

    def quantity(self, seq: str, eaches: int) -> dict[str, Any]:
        """``eaches`` in the acknowledged unit; a partial case stays in Eaches (never rounded)."""
        line = self._lines.get(seq)
        if line and line.unitOfMeasure == "Cases" and eaches % line.case_size == 0:
            return {
                "amount": eaches // line.case_size,
                "unitOfMeasure": "Cases",
                "unitSize": line.case_size,
            }
        return {"amount": eaches, "unitOfMeasure": "Eaches"}

    def shipped_items(self, po_number: str) -> list[dict[str, Any]]:
        out = []
        for seq, eaches in self._eaches.items():
            if not eaches:
                continue
            line = self._lines.get(seq)
            master = self._data.get(self._sku[seq])
            asin = (line.asin if line else None) or (master.asin if master else None)
            vpi = (line.vendorProductIdentifier if line else None) or (
                master.vendorProductIdentifier if master else None
            )
            if line is None and not asin and not vpi:
                vpi = self._sku[seq]  # so the "not acknowledged" violation names the SKU
            item: dict[str, Any] = {"itemSequenceNumber": seq}
            if asin:
                item["amazonProductIdentifier"] = asin
            if vpi:
                item["vendorProductIdentifier"] = vpi
            item["shippedQuantity"] = self.quantity(seq, eaches)
            item["itemDetails"] = {"purchaseOrderNumber": po_number}
            out.append(item)
        return out


def _seq_order(s: str) -> tuple[int, int, str]:
    return (0, int(s), "") if s.isascii() and s.isdigit() else (1, 0, s)


def _structure(d: Dispatch) -> str:
    # Assortment is the general case: a single-SKU carton is a one-item assortment.
    if not d.pallets:
        return "LooseAssortmentCase"
    return "PalletizedAssortmentCase" if d.cartons else "PalletOfItems"


def _transportation(d: Dispatch) -> dict[str, str]:
    out: dict[str, str] = {}
    if d.carrierScac:
        out["carrierScac"] = d.carrierScac.strip().upper()
    # PRO first; a parcel shipment's reference is its (master) tracking number
    ref = d.proNumber or next(iter(d.trackingNumbers), None)
    if ref is None and d.shipmentType == "SmallParcel":
        ref = next((c.trackingNumber for c in d.cartons if c.trackingNumber), None)
    if ref:
        out["carrierShipmentReferenceNumber"] = ref
    if d.transportationMode:
        out["transportationMode"] = d.transportationMode
    if d.billOfLading:
        out["billOfLadingNumber"] = d.billOfLading
    return out
