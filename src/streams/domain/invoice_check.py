"""The check an invoice passes before it is sent: Amazon's model plus the rules finance needs.

Any violation means nothing is sent and finance gets an ``invoice-invalid`` exception with
every violation in it. The rules:

* Amazon's ``Invoice`` model (the vendored ``vendorInvoices.json``);
* every item names the PO, a line of it, in the unit and case size Amazon ordered;
* invoiced <= shipped: the eaches billed per line are at most what the accepted shipment
  confirmations being invoiced shipped;
* invoiced <= accepted: with every earlier invoice of the PO, at most what our
  acknowledgement accepted (Accepted + Backordered) per line;
* price = the PO's net cost, unless finance set an override for the line and it is within
  the tolerance;
* totals: each line's net and tax recomputed from quantity x price, their sums equal the
  invoice's tax details and total, to the cent;
* one currency (the PO's) everywhere;
* no second invoice: the invoice number was never used, and no shipment is invoiced twice;
* the invoice date is not before the PO's date.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from streams.domain.asn_model import seq_key
from streams.domain.invoice import (
    InvoiceRules,
    PoTerms,
    decimal_of,
    invoice_eaches,
    line_amounts,
)

ModelCheck = Callable[[Any], list[str]]


@dataclass(frozen=True)
class InvoiceViolation:
    code: str
    field: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class InvoiceContext:
    terms: PoTerms
    rules: InvoiceRules
    model_check: ModelCheck
    shipped: Mapping[str, int]  # seq_key -> eaches the invoiced shipments shipped
    invoiced_before: Mapping[str, int] = field(default_factory=dict)  # other live invoices
    used_numbers: Collection[str] = ()
    shipments: Collection[str] = ()  # shipment ids this invoice bills
    invoiced_shipments: Collection[str] = ()  # shipment ids live invoices already bill


def validate_invoice(invoice: Mapping[str, Any], ctx: InvoiceContext) -> list[InvoiceViolation]:
    out: list[InvoiceViolation] = []

    def v(code: str, where: str, message: str) -> None:
        out.append(InvoiceViolation(code, where, message))

    for problem in ctx.model_check(invoice):
        where, _, message = problem.partition(": ")
        v("AMAZON_MODEL", where, message)
    terms, rules = ctx.terms, ctx.rules
    number = invoice.get("id")
    if number in ctx.used_numbers:
        v("DUPLICATE_NUMBER", "id", f"invoice number {number} was used before")
    twice = sorted(set(ctx.shipments) & set(ctx.invoiced_shipments))
    if twice:
        v("ALREADY_INVOICED", "items", f"shipment(s) {', '.join(twice)} already invoiced")
    if invoice.get("invoiceType") != "Invoice":
        v("INVOICE_TYPE", "invoiceType", "only invoices are built here (credit notes: docs)")
    date = _date(invoice.get("date"))
    if date is None:
        v("INVALID_DATE", "date", f"not a date-time: {invoice.get('date')!r}")
    elif terms.po_date is not None and date < terms.po_date:
        v("DATE_BEFORE_PO", "date", f"{invoice.get('date')} is before the PO date")
    currency = terms.currency()
    total = invoice.get("invoiceTotal") or {}
    if total.get("currencyCode") != currency:
        v(
            "CURRENCY_MISMATCH",
            "invoiceTotal/currencyCode",
            f"{total.get('currencyCode')} but the PO is priced in {currency}",
        )
    seen: set[str] = set()
    net_sum = tax_sum = Decimal(0)
    items = list(invoice.get("items") or ())
    if not items:
        v("NO_ITEMS", "items", "an invoice bills at least one item")
    for i, item in enumerate(items):
        where = f"items/{i}"
        key = seq_key(str(item.get("itemSequenceNumber")))
        if key in seen:
            v("DUPLICATE_ITEM_SEQUENCE", f"{where}/itemSequenceNumber", f"line {key} twice")
        seen.add(key)
        if item.get("purchaseOrderNumber") != terms.number:
            v(
                "PO_MISMATCH",
                f"{where}/purchaseOrderNumber",
                f"{item.get('purchaseOrderNumber')!r} is not PO {terms.number}",
            )
        line = terms.line(key)
        if line is None:
            v("UNKNOWN_LINE", f"{where}/itemSequenceNumber", f"PO {terms.number} has no line {key}")
            continue
        qty = item.get("invoicedQuantity") or {}
        size = qty.get("unitSize") if qty.get("unitOfMeasure") == "Cases" else 1
        if qty.get("unitOfMeasure") != line.unit or (
            line.unit == "Cases" and size != line.unit_size
        ):
            v(
                "UNIT_MISMATCH",
                f"{where}/invoicedQuantity",
                f"{qty.get('amount')} {qty.get('unitOfMeasure')} (of {qty.get('unitSize')}) but "
                f"Amazon ordered {line.unit}"
                + (f" of {line.unit_size}" if line.unit == "Cases" else ""),
            )
        amount = qty.get("amount")
        if not isinstance(amount, int) or amount <= 0:
            v(
                "NON_POSITIVE_QUANTITY",
                f"{where}/invoicedQuantity/amount",
                f"quantity must be above zero, got {amount!r}",
            )
            continue
        if line.asin and item.get("amazonProductIdentifier") not in (None, line.asin):
            v(
                "IDENTIFIER_MISMATCH",
                f"{where}/amazonProductIdentifier",
                f"{item.get('amazonProductIdentifier')} but the PO line is {line.asin}",
            )
        cost = item.get("netCost") or {}
        price = decimal_of(cost.get("amount"))
        if cost.get("currencyCode") != currency:
            v(
                "CURRENCY_MISMATCH",
                f"{where}/netCost/currencyCode",
                f"{cost.get('currencyCode')} but the PO is priced in {currency}",
            )
        if price is None or price <= 0:
            v("INVALID_PRICE", f"{where}/netCost/amount", "price must be a decimal above zero")
            continue
        _check_price(terms, line.key, line.net_cost, price, rules, f"{where}/netCost", v)
        if currency is None:
            continue
        net, tax = line_amounts(amount * (size or 1), price, currency, rules)
        net_sum += net
        tax_sum += tax
        _check_line_tax(item, net, tax, rules, where, v)
    billed = invoice_eaches(invoice, terms)
    for key, n in sorted(billed.items()):
        line = terms.line(key)
        if line is None:
            continue
        shipped = ctx.shipped.get(key, 0)
        if n > shipped:
            v(
                "EXCEEDS_SHIPPED",
                f"line {key}",
                f"invoices {n} eaches, the accepted shipment(s) shipped {shipped}",
            )
        before = ctx.invoiced_before.get(key, 0)
        if before + n > line.acknowledged:
            v(
                "EXCEEDS_ACCEPTED",
                f"line {key}",
                f"{before} eaches invoiced before + {n} now > {line.acknowledged} accepted",
            )
    if currency is not None:
        expected = net_sum + tax_sum
        got = decimal_of(total.get("amount"))
        if got != expected:
            v(
                "TOTALS",
                "invoiceTotal/amount",
                f"{total.get('amount')} but the lines add up to {format(expected, 'f')}",
            )
        if rules.tax_type:
            taxes = invoice.get("taxDetails") or []
            got_tax = sum(
                (decimal_of((t.get("taxAmount") or {}).get("amount")) or Decimal(0) for t in taxes),
                Decimal(0),
            )
            if got_tax != tax_sum:
                v(
                    "TOTALS",
                    "taxDetails",
                    f"tax {format(got_tax, 'f')} but the lines' tax is {format(tax_sum, 'f')}",
                )
    return out


def _check_price(
    terms: PoTerms,
    key: str,
    po_price: Decimal | None,
    price: Decimal,
    rules: InvoiceRules,
    where: str,
    v: Callable[[str, str, str], None],
) -> None:
    if po_price is None:
        v("MISSING_PRICE", where, "the PO line has no netCost to compare with")
        return
    if price == po_price:
        return
    override = rules.price_overrides.get(f"{terms.number}/{key}")
    if override is None or override != price:
        v(
            "PRICE_MISMATCH",
            where,
            f"{format(price, 'f')} but the PO's net cost is {format(po_price, 'f')} "
            "(no finance override for this line)",
        )
        return
    if abs(price - po_price) > po_price * rules.price_tolerance:
        v(
            "PRICE_MISMATCH",
            where,
            f"override {format(price, 'f')} is more than the tolerance "
            f"({format(rules.price_tolerance, 'f')}) from the PO's {format(po_price, 'f')}",
        )


def _check_line_tax(
    item: Mapping[str, Any],
    net: Decimal,
    tax: Decimal,
    rules: InvoiceRules,
    where: str,
    v: Callable[[str, str, str], None],
) -> None:
    if not rules.tax_type:
        return
    details = item.get("taxDetails") or []
    got = sum(
        (decimal_of((t.get("taxAmount") or {}).get("amount")) or Decimal(0) for t in details),
        Decimal(0),
    )
    if got != tax:
        v("TOTALS", f"{where}/taxDetails", f"tax {format(got, 'f')}, expected {format(tax, 'f')}")
    taxable = [decimal_of((t.get("taxableAmount") or {}).get("amount")) for t in details]
    if any(t is not None and t != net for t in taxable):
        v("TOTALS", f"{where}/taxDetails", f"taxable amount is not the line's {format(net, 'f')}")


def _date(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
