"""Invoices (pure rules): builder, totals to the cent, units, the pre-send check, the book."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from streams.adapters import amazon_models
from streams.agents.invoice_web import invoice_view
from streams.domain.invoice import (
    InvoiceBuildError,
    InvoiceRules,
    PoTerms,
    build_invoice,
    invoice_eaches,
    po_of_number,
    terms_from_record,
)
from streams.domain.invoice_book import InvoiceBook
from streams.domain.invoice_check import InvoiceContext, validate_invoice

ROOT = Path(__file__).resolve().parents[2]
TOPIC_SCHEMA = Draft202012Validator(
    json.loads((ROOT / "schemas" / "amazon.invoices.schema.json").read_text())
)
NOW = datetime(2024, 3, 14, 9, 30, tzinfo=UTC)
model_check = partial(amazon_models.validate, "vendorInvoices", "Invoice")
RULES = InvoiceRules(
    remit_to={
        "partyId": "VNDR1",
        "address": {"name": "Vendor Inc", "addressLine1": "1 Main St", "countryCode": "US"},
    },
    ship_from={"partyId": "WH1"},
)
VAT = InvoiceRules(remit_to={"partyId": "VNDR1"}, tax_type="VAT", tax_rate=Decimal("0.19"))

Line = tuple[str, str, int, int, int, str]  # seq, unit, unitSize, ordered, accepted, price


def pos_record(
    po: str, *lines: Line, backordered: int = 0, currency: str = "USD"
) -> dict[str, Any]:
    """A ``pos`` record as the purchase-order flow stores it (only what invoices read)."""
    return {
        "v": 1,
        "po": po,
        "rev": "2024-03-10T00:00:00+00:00",
        "state": "Acknowledged",
        "order": {
            "purchaseOrderNumber": po,
            "orderDetails": {
                "purchaseOrderDate": "2024-03-10T00:00:00Z",
                "sellingParty": {"partyId": "VNDR1"},
                "shipToParty": {"partyId": "RNO4"},
                "billToParty": {
                    "partyId": "AMZN-BILL",
                    "address": {
                        "name": "Amazon",
                        "addressLine1": "410 Terry Ave",
                        "city": "Seattle",
                        "postalCode": "98109",
                        "countryCode": "US",
                    },
                },
            },
        },
        "lines": {
            seq: {
                "itemSequenceNumber": seq,
                "amazonProductIdentifier": f"B0{seq:>08}",
                "vendorProductIdentifier": f"SKU-{seq}",
                "orderedQuantity": {
                    "amount": ordered,
                    "unitOfMeasure": unit,
                    **({"unitSize": size} if unit == "Cases" else {}),
                },
                "netCost": {"currencyCode": currency, "amount": price},
            }
            for seq, unit, size, ordered, _, price in lines
        },
        "decisions": {
            seq: {
                "itemSequenceNumber": seq,
                "accepted": accepted,
                "backordered": backordered,
                "unitSize": size,
            }
            for seq, unit, size, _, accepted, _ in lines
        },
    }


def terms(*lines: Line, **kw: Any) -> PoTerms:
    t = terms_from_record(pos_record("PO1", *lines, **kw), "VNDR1")
    assert isinstance(t, PoTerms), t
    return t


def ctx(
    t: PoTerms, shipped: dict[str, int], rules: InvoiceRules = RULES, **kw: Any
) -> InvoiceContext:
    return InvoiceContext(terms=t, rules=rules, model_check=model_check, shipped=shipped, **kw)


# --- builder: totals, units ------------------------------------------------------------------


def test_many_lines_with_odd_prices_add_up_to_the_cent() -> None:
    prices = ["0.333", "19.995", "1.005", "7.10", "0.01", "123.456", "2.675", "9.999"]
    lines = [(str(i + 1), "Eaches", 1, 100, 100, p) for i, p in enumerate(prices)]
    t = terms(*lines)
    shipped = {str(i + 1): 7 + i for i in range(len(prices))}
    inv = build_invoice("INV-PO1-1", t, shipped, VAT, NOW)
    # each line: eaches x price rounded half-up, tax 19 % of it rounded half-up
    nets = [
        (Decimal(p) * (7 + i)).quantize(Decimal("0.01"), "ROUND_HALF_UP")
        for i, p in enumerate(prices)
    ]
    taxes = [(n * Decimal("0.19")).quantize(Decimal("0.01"), "ROUND_HALF_UP") for n in nets]
    assert inv["invoiceTotal"] == {"currencyCode": "USD", "amount": str(sum(nets) + sum(taxes))}
    assert inv["taxDetails"][0]["taxAmount"]["amount"] == str(sum(taxes))
    assert [i["taxDetails"][0]["taxableAmount"]["amount"] for i in inv["items"]] == [
        str(n) for n in nets
    ]
    assert model_check(inv) == []
    assert validate_invoice(inv, ctx(t, shipped, VAT)) == []


def test_cases_are_invoiced_in_cases_of_the_ordered_size_priced_per_each() -> None:
    t = terms(("1", "Cases", 12, 5, 5, "2.50"), ("2", "Eaches", 1, 10, 10, "3.00"))
    inv = build_invoice("INV-PO1-1", t, {"1": 36, "2": 4}, RULES, NOW)
    one, two = inv["items"]
    assert one["invoicedQuantity"] == {"amount": 3, "unitOfMeasure": "Cases", "unitSize": 12}
    assert two["invoicedQuantity"] == {"amount": 4, "unitOfMeasure": "Eaches"}
    assert one["itemSequenceNumber"] == 1 and one["purchaseOrderNumber"] == "PO1"
    assert inv["invoiceTotal"]["amount"] == "102.00"  # 36 x 2.50 + 4 x 3.00
    assert invoice_eaches(inv, t) == {"1": 36, "2": 4}
    assert inv["billToParty"]["address"]["postalOrZipCode"] == "98109"


def test_eaches_that_make_no_whole_case_are_refused_not_rounded() -> None:
    t = terms(("1", "Cases", 12, 5, 5, "2.50"))
    try:
        build_invoice("INV-PO1-1", t, {"1": 30}, RULES, NOW)
    except InvoiceBuildError as exc:
        assert [p[0] for p in exc.problems] == ["PARTIAL_CASE"]
    else:
        raise AssertionError("a partial case was invoiced")


def test_an_invoice_in_eaches_for_a_line_ordered_in_cases_is_a_unit_mismatch() -> None:
    t = terms(("1", "Cases", 12, 5, 5, "2.50"))
    inv = build_invoice("INV-PO1-1", t, {"1": 24}, RULES, NOW)
    inv["items"][0]["invoicedQuantity"] = {"amount": 24, "unitOfMeasure": "Eaches"}
    codes = [v.code for v in validate_invoice(inv, ctx(t, {"1": 24}))]
    assert "UNIT_MISMATCH" in codes


# --- the check -------------------------------------------------------------------------------


def test_over_invoicing_is_refused_against_shipped_and_accepted() -> None:
    t = terms(("1", "Eaches", 1, 10, 6, "1.00"))
    inv = build_invoice("INV-PO1-2", t, {"1": 5}, RULES, NOW)
    assert [v.code for v in validate_invoice(inv, ctx(t, {"1": 4}))] == ["EXCEEDS_SHIPPED"]
    # 3 eaches invoiced before + 5 now > 6 accepted
    codes = [v.code for v in validate_invoice(inv, ctx(t, {"1": 5}, invoiced_before={"1": 3}))]
    assert codes == ["EXCEEDS_ACCEPTED"]


def test_a_price_other_than_the_pos_needs_an_override_within_the_tolerance() -> None:
    t = terms(("1", "Eaches", 1, 10, 10, "10.00"))
    inv = build_invoice("INV-PO1-1", t, {"1": 2}, RULES, NOW)
    inv["items"][0]["netCost"]["amount"] = "10.05"
    inv["invoiceTotal"]["amount"] = "20.10"
    assert [v.code for v in validate_invoice(inv, ctx(t, {"1": 2}))] == ["PRICE_MISMATCH"]
    approved = {"PO1/1": Decimal("10.05")}
    ok = InvoiceRules(
        remit_to={"partyId": "V"}, price_overrides=approved, price_tolerance=Decimal("0.01")
    )
    assert validate_invoice(inv, ctx(t, {"1": 2}, ok)) == []
    tight = InvoiceRules(
        remit_to={"partyId": "V"}, price_overrides=approved, price_tolerance=Decimal("0.001")
    )
    assert [v.code for v in validate_invoice(inv, ctx(t, {"1": 2}, tight))] == ["PRICE_MISMATCH"]
    # the builder uses the override, so the invoice it builds passes
    built = build_invoice("INV-PO1-1", t, {"1": 2}, ok, NOW)
    assert built["items"][0]["netCost"]["amount"] == "10.05"


def test_totals_currency_number_and_shipments_are_checked() -> None:
    t = terms(("1", "Eaches", 1, 10, 10, "1.10"))
    inv = build_invoice("INV-PO1-1", t, {"1": 3}, RULES, NOW)
    inv["invoiceTotal"]["amount"] = "3.31"
    assert [v.code for v in validate_invoice(inv, ctx(t, {"1": 3}))] == ["TOTALS"]
    inv["invoiceTotal"] = {"currencyCode": "EUR", "amount": "3.30"}
    assert [v.code for v in validate_invoice(inv, ctx(t, {"1": 3}))] == ["CURRENCY_MISMATCH"]
    inv["invoiceTotal"] = {"currencyCode": "USD", "amount": "3.30"}
    again = ctx(
        t, {"1": 3}, used_numbers={"INV-PO1-1"}, shipments=["S1"], invoiced_shipments={"S1"}
    )
    assert [v.code for v in validate_invoice(inv, again)] == [
        "DUPLICATE_NUMBER",
        "ALREADY_INVOICED",
    ]


# --- the book --------------------------------------------------------------------------------


def test_an_accepted_shipment_is_invoiced_once_and_a_redelivery_changes_nothing() -> None:
    t = terms(("1", "Cases", 6, 4, 4, "4.99"))
    book = InvoiceBook("PO1")
    eff = book.on_shipment("S1", "d1", {"1": 12}, t, RULES, model_check, NOW)
    assert eff.outcomes == ["built"] and [n for n, _ in eff.publish] == ["INV-PO1-1"]
    again = InvoiceBook("PO1", book.to_json()).on_shipment(
        "S1", "d1", {"1": 12}, t, RULES, model_check, NOW
    )
    assert again.outcomes == ["duplicate"] and not again.publish and not again.changed
    second = book.on_shipment("S2", "d2", {"1": 12}, t, RULES, model_check, NOW)
    assert [n for n, _ in second.publish] == ["INV-PO1-2"]
    assert book.invoiced_eaches() == {"1": 24}


def test_an_over_shipped_line_becomes_a_finance_exception_and_nothing_is_sent() -> None:
    t = terms(("1", "Eaches", 1, 10, 5, "1.00"))
    book = InvoiceBook("PO1")
    eff = book.on_shipment("S1", "d1", {"1": 7}, t, RULES, model_check, NOW)
    assert eff.outcomes == ["invalid"] and not eff.publish
    (rec,) = eff.exceptions
    assert rec["kind"] == "invoice-invalid" and rec["owner"] == "finance"
    assert "EXCEEDS_ACCEPTED" in rec["rootCause"] and rec["runbook"].endswith("invoice-invalid.md")
    assert book.to_retry() == ["S1"] and book.data["seq"] == 0  # no number spent


def test_per_po_mode_waits_until_every_accepted_line_shipped() -> None:
    rules = InvoiceRules(remit_to={"partyId": "V"}, mode="per-po")
    t = terms(("1", "Eaches", 1, 10, 10, "1.00"), ("2", "Eaches", 1, 4, 4, "2.00"))
    book = InvoiceBook("PO1")
    first = book.on_shipment("S1", "d1", {"1": 10}, t, rules, model_check, NOW)
    assert first.outcomes == ["waiting"] and not first.publish
    last = book.on_shipment("S2", "d2", {"2": 4}, t, rules, model_check, NOW)
    ((number, body),) = last.publish
    assert number == "INV-PO1-1" and body["invoiceTotal"]["amount"] == "18.00"
    assert book.invoices[number]["sids"] == ["S1", "S2"]


def test_per_po_mode_invoices_what_a_closed_po_shipped() -> None:
    rules = InvoiceRules(remit_to={"partyId": "V"}, mode="per-po")
    lines: list[Line] = [("1", "Eaches", 1, 10, 10, "1.00")]
    book = InvoiceBook("PO1")
    assert book.on_shipment(
        "S1", "d1", {"1": 6}, terms(*lines), rules, model_check, NOW
    ).outcomes == ["waiting"]
    assert book.waiting() == ["S1"]
    closed = terms_from_record({**pos_record("PO1", *lines), "state": "Closed"}, "V")
    assert isinstance(closed, PoTerms) and closed.closed
    eff = book.on_recheck(closed, rules, model_check, NOW)
    ((_, body),) = eff.publish
    assert body["items"][0]["invoicedQuantity"]["amount"] == 6 and book.waiting() == []


def test_a_failed_transaction_is_a_finance_exception_and_frees_the_shipment() -> None:
    t = terms(("1", "Eaches", 1, 10, 10, "1.00"))
    book = InvoiceBook("PO1")
    ((number, _body),) = book.on_shipment("S1", "d1", {"1": 2}, t, RULES, model_check, NOW).publish
    digest = book.invoices[number]["digest"]
    book.on_submitted(number, digest, "tx1", 1.0)
    eff = book.on_transaction(
        number, "tx1", "Failure", [{"code": "InvalidInvoice", "message": "bad"}], NOW
    )
    assert eff.outcomes == ["failed"] and eff.exceptions[0]["kind"] == "invoice-transaction-failed"
    assert eff.exceptions[0]["refs"]["invoiceNumber"] == "INV-PO1-1"
    assert book.to_retry() == ["S1"] and book.invoiced_eaches() == {}
    retry = book.on_recheck(t, RULES, model_check, NOW)
    assert [n for n, _ in retry.publish] == ["INV-PO1-2"]  # a number is never given twice
    book.on_submitted("INV-PO1-2", book.invoices["INV-PO1-2"]["digest"], "tx2", 2.0)
    done = book.on_transaction("INV-PO1-2", "tx2", "Success", [], NOW)
    assert [(x["kind"], x["status"]) for x in done.exceptions] == [
        ("invoice-transaction-failed", "resolved")
    ]


def test_a_duplicate_refusal_after_an_uncertain_resend_means_the_first_one_stands() -> None:
    t = terms(("1", "Eaches", 1, 10, 10, "1.00"))
    book = InvoiceBook("PO1")
    ((number, _),) = book.on_shipment("S1", "d1", {"1": 2}, t, RULES, model_check, NOW).publish
    book.on_submitted(number, book.invoices[number]["digest"], "tx2", 1.0, resent=True)
    errors = [{"code": "DuplicateInvoice", "message": "Duplicate invoice number"}]
    eff = book.on_transaction(number, "tx2", "Failure", errors, NOW)
    assert eff.outcomes == ["accepted"] and not eff.exceptions
    assert book.invoiced_eaches() == {"1": 2}


# --- property: every invoice of a valid shipment passes Amazon's model, never over-bills ------

prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999.99"), places=3)
line_st = st.tuples(
    st.sampled_from(["Cases", "Eaches"]),
    st.integers(1, 48),
    st.integers(1, 50),
    prices,
    st.integers(0, 50),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(lines=st.lists(line_st, min_size=1, max_size=12), tax=st.booleans())
def test_property_invoices_of_valid_shipments_validate_and_never_exceed_shipped(
    lines: list[tuple[str, int, int, Decimal, int]], tax: bool
) -> None:
    spec: list[Line] = []
    shipped: dict[str, int] = {}
    for i, (unit, size, ordered, price, ship_units) in enumerate(lines):
        seq = str(i + 1)
        size = size if unit == "Cases" else 1
        spec.append((seq, unit, size, ordered, ordered, str(price)))
        units = min(ship_units, ordered)
        if units:
            shipped[seq] = units * size
    if not shipped:
        shipped["1"] = spec[0][2]
    rules = VAT if tax else RULES
    t = terms(*spec)
    book = InvoiceBook("PO1")
    eff = book.on_shipment("S1", "d1", shipped, t, rules, model_check, NOW)
    ((_, body),) = eff.publish
    assert model_check(body) == []
    assert (
        amazon_models.validate("vendorInvoices", "SubmitInvoicesRequest", {"invoices": [body]})
        == []
    )
    assert list(TOPIC_SCHEMA.iter_errors(body)) == []
    billed = invoice_eaches(body, t)
    assert all(billed[k] <= shipped.get(k, 0) for k in billed)
    assert billed == {k: n for k, n in shipped.items() if n}


def test_the_topic_examples_are_amazon_invoices() -> None:
    files = sorted((ROOT / "schemas" / "examples" / "amazon.invoices").glob("*.json"))
    assert files
    df_check = partial(amazon_models.validate, "df-payments", "InvoiceDetail")
    for f in files:
        body = json.loads(f.read_text())
        check = df_check if "invoiceNumber" in body else model_check  # DF: docs/invoices.md
        assert check(body) == [] and list(TOPIC_SCHEMA.iter_errors(body)) == [], f.name


def test_the_invoice_view_and_the_po_an_invoice_number_names() -> None:
    assert po_of_number("INV-{po}-{seq}", "INV-AB-1-12") == "AB-1"
    assert po_of_number("{seq}/{po}", "3/PO9") == "PO9"
    assert po_of_number("INV-{po}-{seq}", "CN-PO1-1") is None
    book = InvoiceBook("PO1")
    t = terms(("1", "Cases", 6, 4, 4, "4.99"))
    book.on_shipment("S1", "d1", {"1": 12}, t, RULES, model_check, NOW)
    view = invoice_view(book, "INV-PO1-1")
    assert view is not None
    assert (view["status"], view["total"], view["shipments"]) == ("queued", "59.88", ["S1"])
    assert view["lines"] == [{"itemSequenceNumber": "1", "eaches": 12, "netAmount": "59.88"}]
    assert invoice_view(book, "INV-PO1-2") is None
