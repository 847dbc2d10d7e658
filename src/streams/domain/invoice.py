"""Vendor invoices (SP-API ``vendorInvoices`` ``submitInvoices``): the builder.

Pure: no Faust, no I/O. What is invoiced is what Amazon accepted as shipped: the eaches of
a shipment confirmation whose transaction ended in Success (or, in ``per-po`` mode, of all
accepted shipments of a PO once it is fully shipped). The builder turns those eaches into
Amazon's ``Invoice``:

* quantities in the unit Amazon ordered: ``Cases`` of the PO line's case size, or
  ``Eaches`` (the acknowledgement's conversion; eaches that make no whole case cannot be
  invoiced in Cases and are refused, never rounded);
* ``netCost`` = the PO line's net cost *per each* (Amazon's orders model: "net cost of an
  item per each"), so a line's amount is eaches x netCost, whatever the unit;
* amounts in :class:`~decimal.Decimal`, each line rounded half-up to the currency's minor
  unit, tax per line from configuration, totals = the sum of the rounded lines (they add
  up to the cent by construction, and the check recomputes them).

The check before sending is :mod:`streams.domain.invoice_check`; the per-PO record and its
decisions are :mod:`streams.domain.invoice_book`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from streams.domain.asn_model import seq_key
from streams.domain.purchase_order import load as load_po

InvoiceMode = Literal["per-shipment", "per-po"]
# ISO 4217 currencies without minor units among Amazon's vendor marketplaces' neighbours
_ZERO_DECIMALS = frozenset({"JPY", "KRW", "CLP", "ISK", "VND"})
# the Invoice fields an order's party address maps to (orders say postalCode)
_ADDRESS_FIELDS = (
    "name",
    "addressLine1",
    "addressLine2",
    "addressLine3",
    "city",
    "county",
    "district",
    "stateOrRegion",
    "postalOrZipCode",
    "countryCode",
    "phone",
)


class InvoiceBuildError(ValueError):
    """The shipment cannot be expressed as an invoice; ``problems`` say why (code, field,
    message), for finance's exception."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        super().__init__("; ".join(f"[{c}] {f}: {m}" for c, f, m in problems))
        self.problems = problems


@dataclass(frozen=True)
class InvoiceRules:
    """What configuration contributes to every invoice (the ``STREAMS_INVOICE_*`` settings)."""

    remit_to: Mapping[str, Any]  # PartyIdentification: who is paid
    ship_from: Mapping[str, Any] | None = None
    tax_type: str | None = None  # Amazon's TaxDetails.taxType, e.g. "VAT"; None: no tax lines
    tax_rate: Decimal = Decimal(0)  # a fraction: 0.20 = 20 %
    price_tolerance: Decimal = Decimal(0)  # a fraction of the PO price
    # "PO/itemSequenceNumber" -> unit price finance approved instead of the PO's
    price_overrides: Mapping[str, Decimal] = field(default_factory=dict)
    number_pattern: str = "INV-{po}-{seq}"
    mode: InvoiceMode = "per-shipment"
    # the body Amazon's API takes when it is not the vendorInvoices Invoice (Direct
    # Fulfillment: df_invoice.to_df_invoice); the model check then judges the rendered body
    render: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None

    def number(self, po: str, seq: int) -> str:
        return self.number_pattern.format(po=po, seq=seq)


def po_of_number(pattern: str, number: str) -> str | None:
    """The PO an invoice number names under ``pattern`` (None: it does not fit)."""
    parts = re.split(r"(\{po\}|\{seq\})", pattern)
    regex = "".join(
        "(?P<po>.+?)" if p == "{po}" else r"(?P<seq>\d+)" if p == "{seq}" else re.escape(p)
        for p in parts
    )
    m = re.fullmatch(regex, number)
    return m["po"] if m else None


@dataclass(frozen=True)
class TermsLine:
    """One PO line as acknowledged: what an invoice of it may say."""

    seq: str  # itemSequenceNumber as Amazon wrote it in the PO
    asin: str | None
    vendor_id: str | None
    unit: str  # Cases | Eaches, as Amazon ordered
    unit_size: int  # eaches per ordering unit (1 for Eaches)
    net_cost: Decimal | None
    currency: str | None
    priced_by_weight: bool
    acknowledged: int  # eaches: accepted + backordered (backordered ships later)

    @property
    def key(self) -> str:
        return seq_key(self.seq)


@dataclass(frozen=True)
class PoTerms:
    """The PO as the invoice rules read it (from the purchase-order flow's ``pos`` record)."""

    number: str
    po_date: datetime | None
    selling_party: str
    bill_to: Mapping[str, Any] | None
    ship_to: Mapping[str, Any] | None
    lines: Mapping[str, TermsLine]  # seq_key -> line
    closed: bool = False

    def line(self, seq: str | int) -> TermsLine | None:
        return self.lines.get(seq_key(str(seq)))

    def currency(self) -> str | None:
        return next((ln.currency for ln in self.lines.values() if ln.currency), None)


def terms_from_record(po: Mapping[str, Any] | None, selling_party: str) -> PoTerms | str:
    """The PO's invoice terms, or why it cannot be invoiced (a sentence for finance)."""
    if po is None:
        return "the PO is unknown here (not received from Amazon)"
    rec = load_po(po)
    number = rec.number or "?"
    if not rec.is_acknowledged() and not rec.closed:
        return f"PO {number} is not acknowledged (no acknowledgement submitted for its revision)"
    details = (rec.order or {}).get("orderDetails") or {}
    lines: dict[str, TermsLine] = {}
    for seq, line in rec.lines.items():
        d = rec.decisions.get(seq) or {}
        qty = line.get("orderedQuantity") or {}
        unit = qty.get("unitOfMeasure") or "Eaches"
        size = int(d.get("unitSize") or qty.get("unitSize") or line.get("unitSize") or 1)
        if unit != "Cases":
            size = 1
        cost = line.get("netCost") or {}
        lines[seq_key(seq)] = TermsLine(
            seq=seq,
            asin=line.get("amazonProductIdentifier"),
            vendor_id=line.get("vendorProductIdentifier"),
            unit=unit,
            unit_size=size,
            net_cost=_decimal(cost.get("amount")),
            currency=cost.get("currencyCode"),
            priced_by_weight=bool(cost.get("unitOfMeasure")),
            acknowledged=(int(d.get("accepted", 0)) + int(d.get("backordered", 0))) * size,
        )
    po_date = None
    if isinstance(details.get("purchaseOrderDate"), str):
        po_date = datetime.fromisoformat(details["purchaseOrderDate"].replace("Z", "+00:00"))
    elif rec.po_date is not None:
        po_date = datetime.fromtimestamp(rec.po_date, UTC)
    return PoTerms(
        number=number,
        po_date=po_date,
        selling_party=rec.selling_party(selling_party),
        bill_to=invoice_party(details.get("billToParty")),
        ship_to=invoice_party(details.get("shipToParty")),
        lines=lines,
        closed=rec.closed,
    )


def invoice_party(party: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An order's PartyIdentification as the invoice model spells it (``postalOrZipCode``);
    an address missing a field the invoice model requires is left out, the party id kept."""
    if not party or not party.get("partyId"):
        return None
    out: dict[str, Any] = {"partyId": party["partyId"]}
    addr = dict(party.get("address") or {})
    if "postalCode" in addr:
        addr.setdefault("postalOrZipCode", addr.pop("postalCode"))
    address = {k: addr[k] for k in _ADDRESS_FIELDS if isinstance(addr.get(k), str) and addr[k]}
    if all(k in address for k in ("name", "addressLine1", "countryCode")):
        if len(address["countryCode"]) == 2:
            out["address"] = address
    tax = party.get("taxInfo") or {}
    if tax.get("taxRegistrationNumber") and tax.get("taxRegistrationType"):
        out["taxRegistrationDetails"] = [
            {
                "taxRegistrationType": tax["taxRegistrationType"],
                "taxRegistrationNumber": tax["taxRegistrationNumber"],
            }
        ]
    return out


# ---------------------------------------------------------------- money


def minor_unit(currency: str) -> Decimal:
    return Decimal(1) if currency in _ZERO_DECIMALS else Decimal("0.01")


def to_cents(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def money(amount: Decimal, currency: str) -> dict[str, str]:
    """Amazon's ``Money`` with a plain decimal string ("10.20", never "1E+1")."""
    return {"currencyCode": currency, "amount": format(amount, "f")}


def line_amounts(
    eaches: int, unit_price: Decimal, currency: str, rules: InvoiceRules
) -> tuple[Decimal, Decimal]:
    """(net, tax) of one invoice line, each rounded half-up to the minor unit."""
    net = to_cents(unit_price * eaches, currency)
    tax = to_cents(net * rules.tax_rate, currency) if rules.tax_type else Decimal(0)
    return net, tax


def unit_price(terms: PoTerms, line: TermsLine, rules: InvoiceRules) -> Decimal | None:
    override = rules.price_overrides.get(f"{terms.number}/{line.key}")
    return override if override is not None else line.net_cost


# ---------------------------------------------------------------- the builder


def build_invoice(
    number: str,
    terms: PoTerms,
    eaches: Mapping[str, int],  # seq_key -> eaches to invoice (accepted ASN quantities)
    rules: InvoiceRules,
    now: datetime,
) -> dict[str, Any]:
    """Amazon's ``Invoice`` for ``eaches`` of ``terms``' lines; InvoiceBuildError when a
    line cannot be invoiced as shipped (unknown line, no price, partial case, ...)."""
    problems: list[tuple[str, str, str]] = []
    items: list[dict[str, Any]] = []
    currency = terms.currency()
    net_total = tax_total = Decimal(0)
    for key in sorted(eaches, key=_seq_order):
        n = eaches[key]
        where = f"line {key}"
        line = terms.line(key)
        if n <= 0:
            continue
        if line is None:
            problems.append(("UNKNOWN_LINE", where, f"PO {terms.number} has no line {key}"))
            continue
        price = unit_price(terms, line, rules)
        if price is None or line.currency is None:
            problems.append(("MISSING_PRICE", where, "the PO line has no netCost"))
            continue
        if line.priced_by_weight:
            problems.append(
                ("PRICED_BY_WEIGHT", where, "priced by weight: invoicing needs the weights")
            )
            continue
        if line.currency != currency:
            problems.append(
                ("CURRENCY_MISMATCH", where, f"{line.currency} on a PO priced in {currency}")
            )
            continue
        if n % line.unit_size:
            problems.append(
                (
                    "PARTIAL_CASE",
                    where,
                    f"{n} eaches are no whole number of Cases of {line.unit_size}",
                )
            )
            continue
        net, tax = line_amounts(n, price, currency, rules)
        net_total += net
        tax_total += tax
        items.append(_item(terms.number, line, n, price, currency, net, tax, rules))
    if not items and not problems:
        problems.append(("NO_ITEMS", "items", "nothing shipped to invoice"))
    if problems:
        raise InvoiceBuildError(problems)
    assert currency is not None
    invoice: dict[str, Any] = {
        "invoiceType": "Invoice",
        "id": number,
        "date": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "remitToParty": dict(rules.remit_to),
    }
    if terms.ship_to:
        invoice["shipToParty"] = dict(terms.ship_to)
    if rules.ship_from:
        invoice["shipFromParty"] = dict(rules.ship_from)
    if terms.bill_to:
        invoice["billToParty"] = dict(terms.bill_to)
    invoice["invoiceTotal"] = money(net_total + tax_total, currency)
    if rules.tax_type:
        invoice["taxDetails"] = [
            _tax(rules, tax_total, net_total, currency),
        ]
    invoice["items"] = items
    return invoice


def _item(
    po: str,
    line: TermsLine,
    eaches: int,
    price: Decimal,
    currency: str,
    net: Decimal,
    tax: Decimal,
    rules: InvoiceRules,
) -> dict[str, Any]:
    qty: dict[str, Any] = {"amount": eaches // line.unit_size, "unitOfMeasure": line.unit}
    if line.unit == "Cases":
        qty["unitSize"] = line.unit_size
    item: dict[str, Any] = {"itemSequenceNumber": int(line.key) if line.key.isdigit() else 0}
    if line.asin:
        item["amazonProductIdentifier"] = line.asin
    if line.vendor_id:
        item["vendorProductIdentifier"] = line.vendor_id
    item["invoicedQuantity"] = qty
    item["netCost"] = money(price, currency)
    item["purchaseOrderNumber"] = po
    if rules.tax_type:
        item["taxDetails"] = [_tax(rules, tax, net, currency)]
    return item


def _tax(rules: InvoiceRules, tax: Decimal, taxable: Decimal, currency: str) -> dict[str, Any]:
    assert rules.tax_type is not None
    return {
        "taxType": rules.tax_type,
        "taxRate": format(rules.tax_rate, "f"),
        "taxAmount": money(tax, currency),
        "taxableAmount": money(taxable, currency),
    }


def _seq_order(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (1 << 62, key)


def _decimal(v: object) -> Decimal | None:
    if isinstance(v, Decimal):
        return v
    if isinstance(v, (str, int)) and not isinstance(v, bool):
        try:
            d = Decimal(v)
        except InvalidOperation:
            return None
        return d if d.is_finite() else None
    return None


def decimal_of(v: object) -> Decimal | None:
    """A Decimal from Amazon's Decimal string (or an int); None when it is none."""
    return _decimal(v)


def invoice_eaches(invoice: Mapping[str, Any], terms: PoTerms) -> dict[str, int]:
    """Eaches per PO line (seq_key) an invoice bills: its quantities in the PO's units."""
    out: dict[str, int] = {}
    for item in invoice.get("items") or ():
        key = seq_key(str(item.get("itemSequenceNumber")))
        qty = item.get("invoicedQuantity") or {}
        line = terms.line(key)
        size = qty.get("unitSize") or (line.unit_size if line else 1)
        n = int(qty.get("amount") or 0) * (int(size) if qty.get("unitOfMeasure") == "Cases" else 1)
        out[key] = out.get(key, 0) + n
    return out
