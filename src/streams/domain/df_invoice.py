"""Direct Fulfillment invoices (``vendorDirectFulfillmentPayments`` ``submitInvoice``).

Pure: no Faust, no I/O. A DF invoice is the retail invoice's rules on a DF order: the DF
order's record is read as :class:`~streams.domain.invoice.PoTerms` (lines in ``Each``,
``netCost`` = the order line's ``netPrice``, accepted = the line's accepted eaches), the
retail builder, check and book do the rest (numbers, money, totals, no second invoice), and
:func:`to_df_invoice` renders the result as Amazon's DF ``InvoiceDetail``. The invoice book
keeps DF orders under ``DF-<PO>``, so their invoice numbers (``INV-DF-<PO>-1``) never meet a
retail PO's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from streams.domain.asn_model import seq_key
from streams.domain.df_orders import df_po_key
from streams.domain.df_record import DfRecord
from streams.domain.invoice import PoTerms, TermsLine, decimal_of

UNIT = "Each"  # the only unit of DF orders (their ItemQuantity), and of the invoice


def is_df_invoice(body: Mapping[str, Any]) -> bool:
    """A DF ``InvoiceDetail`` (``invoiceNumber``) rather than a retail ``Invoice`` (``id``)."""
    return "invoiceNumber" in body


def invoice_number(body: Mapping[str, Any]) -> str | None:
    n = body.get("invoiceNumber") if is_df_invoice(body) else body.get("id")
    return n if isinstance(n, str) else None


def shipment_event(rec: DfRecord, sid: str) -> dict[str, Any]:
    """What the invoice flow needs of a DF shipment Amazon accepted: the eaches the
    confirmation shipped per line and the order's terms (no address: the record has none)."""
    sh = rec.shipments[sid]
    shipped: dict[str, int] = {}
    for item in (sh.get("confirmBody") or {}).get("items") or ():
        key = seq_key(str(item.get("itemSequenceNumber")))
        shipped[key] = shipped.get(key, 0) + int((item.get("shippedQuantity") or {})["amount"])
    details = rec.details()
    return {
        "t": "shipment",
        "sid": sid,
        "digest": sh.get("confirmHash"),
        "shipped": shipped,
        "df": {
            "number": rec.number,
            "orderDate": details.get("orderDate"),
            "sellingParty": (details.get("sellingParty") or {}).get("partyId"),
            "shipFrom": (details.get("shipFromParty") or {}).get("partyId"),
            "lines": {
                seq: {
                    "asin": ln.get("amazonProductIdentifier"),
                    "vendorId": ln.get("vendorProductIdentifier"),
                    "netCost": ln.get("netCost"),
                    "accepted": int((rec.decisions.get(seq) or {}).get("accepted") or 0),
                }
                for seq, ln in rec.lines.items()
            },
        },
    }


def terms_from_df(
    df: Mapping[str, Any] | None, selling_party: str, bill_to: Mapping[str, Any] | None
) -> PoTerms | str:
    """A DF order's invoice terms (from :func:`shipment_event`'s ``df``), or why not."""
    if not df:
        return "the DF order's terms are unknown here (no accepted shipment seen)"
    lines: dict[str, TermsLine] = {}
    for seq, ln in (df.get("lines") or {}).items():
        cost = ln.get("netCost") or {}
        lines[seq_key(seq)] = TermsLine(
            seq=seq,
            asin=ln.get("asin"),
            vendor_id=ln.get("vendorId"),
            unit=UNIT,
            unit_size=1,
            net_cost=decimal_of(cost.get("amount")),
            currency=cost.get("currencyCode"),
            priced_by_weight=False,
            acknowledged=int(ln.get("accepted") or 0),
        )
    date = df.get("orderDate")
    return PoTerms(
        number=str(df["number"]),
        po_date=datetime.fromisoformat(date.replace("Z", "+00:00")) if date else None,
        selling_party=df.get("sellingParty") or selling_party,
        bill_to=dict(bill_to) if bill_to else None,
        ship_to=None,
        lines=lines,
    )


def book_key(number: str) -> str:
    """The invoice book's key of a DF order (the DF exceptions' PO reference too)."""
    return df_po_key(number)


def _party(party: Mapping[str, Any]) -> dict[str, Any]:
    """A party in DF spelling: the DF Address says ``postalCode`` (retail: postalOrZipCode)."""
    out = dict(party)
    if isinstance(out.get("address"), Mapping):
        addr = dict(out["address"])
        if "postalOrZipCode" in addr:
            addr.setdefault("postalCode", addr.pop("postalOrZipCode"))
        out["address"] = addr
    return out


def to_df_invoice(invoice: Mapping[str, Any]) -> dict[str, Any]:
    """The retail ``Invoice`` the builder made, as Amazon's DF ``InvoiceDetail``."""
    out: dict[str, Any] = {
        "invoiceNumber": invoice["id"],
        "invoiceDate": invoice["date"],
        "remitToParty": _party(invoice["remitToParty"]),
    }
    if invoice.get("shipFromParty"):
        out["shipFromParty"] = _party(invoice["shipFromParty"])
    if invoice.get("billToParty"):
        out["billToParty"] = _party(invoice["billToParty"])
    out["invoiceTotal"] = dict(invoice["invoiceTotal"])
    if invoice.get("taxDetails"):
        out["taxTotals"] = [dict(t) for t in invoice["taxDetails"]]
    items = []
    for item in invoice["items"]:
        it: dict[str, Any] = {"itemSequenceNumber": str(item["itemSequenceNumber"])}
        if item.get("amazonProductIdentifier"):
            it["buyerProductIdentifier"] = item["amazonProductIdentifier"]
        if item.get("vendorProductIdentifier"):
            it["vendorProductIdentifier"] = item["vendorProductIdentifier"]
        qty = item["invoicedQuantity"]
        it["invoicedQuantity"] = {"amount": qty["amount"], "unitOfMeasure": qty["unitOfMeasure"]}
        it["netCost"] = dict(item["netCost"])
        it["purchaseOrderNumber"] = item["purchaseOrderNumber"]
        if item.get("taxDetails"):
            it["taxDetails"] = [dict(t) for t in item["taxDetails"]]
        items.append(it)
    out["items"] = items
    return out
