"""Direct Fulfillment invoices (pure rules): a DF order's accepted shipment -> one DF
``InvoiceDetail`` built by the retail invoice rules, totals to the cent, over-invoicing
refused, a redelivery billing nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from jsonschema import Draft202012Validator

from streams.adapters import amazon_models
from streams.agents.invoice_web import invoice_view
from streams.domain import df_book, df_invoice
from streams.domain.df_record import DfRecord
from streams.domain.invoice import InvoiceRules, po_of_number
from streams.domain.invoice_book import InvoiceBook, invoice_digest
from streams.report import df_rows
from streams.report_invoices import df_invoice_lines
from tests.unit.test_invoices import TOPIC_SCHEMA

NOW = datetime(2024, 3, 14, 9, 30, tzinfo=UTC)
no_model = partial(lambda body: [])


def record(shipped: dict[str, int], accepted: dict[str, int] | None = None) -> DfRecord:
    prices = {"1": "10.33", "2": "0.07"}
    accepted = accepted or {"1": 3, "2": 5}
    lines = {
        seq: {
            "purchaseOrderNumber": "DF-DFPO0001",
            "itemSequenceNumber": seq,
            "amazonProductIdentifier": f"B0ASIN000{seq}",
            "vendorProductIdentifier": f"SKU-{seq}",
            "netCost": {"currencyCode": "EUR", "amount": price},
            "orderedQuantity": {"amount": accepted[seq], "unitOfMeasure": "Each"},
        }
        for seq, price in prices.items()
    }
    items = [
        {"itemSequenceNumber": int(s), "shippedQuantity": {"amount": n, "unitOfMeasure": "Each"}}
        for s, n in shipped.items()
    ]
    return DfRecord(
        number="DFPO0001",
        order={
            "orderDetails": {
                "orderDate": "2024-03-13T08:00:00Z",
                "sellingParty": {"partyId": "VNDR1"},
                "shipFromParty": {"partyId": "DFWH1"},
            }
        },
        lines=lines,
        received_at=0.0,
        ack_by=0.0,
        ship_by=0.0,
        decisions={s: {"accepted": n} for s, n in accepted.items()},
        outcome="accepted",
        ack={"txid": "t0"},
        shipments={
            "D1": {
                "status": "confirmed",
                "confirmHash": "h1",
                "confirmTx": "C1",
                "confirmBody": {"items": items},
            }
        },
    )


def rules(**kw: Any) -> InvoiceRules:
    return InvoiceRules(
        remit_to={"partyId": "VNDR1"},
        ship_from={"partyId": "DFWH1"},
        render=df_invoice.to_df_invoice,
        **kw,
    )


def invoice(rec: DfRecord, book: InvoiceBook | None = None, check: Any = no_model,
            **kw: Any) -> tuple[InvoiceBook, Any]:  # fmt: skip
    ev = df_invoice.shipment_event(rec, "D1")
    terms = df_invoice.terms_from_df(ev["df"], "VNDR1", {"partyId": "AMZN-BILL"})
    book = book or InvoiceBook(df_invoice.book_key(rec.number))
    eff = book.on_shipment("D1", ev["digest"], ev["shipped"], terms, rules(**kw), check, NOW)
    return book, eff


def test_a_confirmed_shipment_is_one_df_invoice_exact_to_the_cent() -> None:
    book, eff = invoice(record({"1": 3, "2": 5}), tax_type="VAT", tax_rate=Decimal("0.19"))
    assert eff.outcomes == ["built"]
    [(number, body)] = eff.publish
    assert number == "INV-DF-DFPO0001-1" == body["invoiceNumber"]
    assert body["invoiceDate"] == "2024-03-14T09:30:00Z"
    assert body["shipFromParty"] == {"partyId": "DFWH1"}
    assert body["billToParty"] == {"partyId": "AMZN-BILL"}
    assert body["remitToParty"] == {"partyId": "VNDR1"}
    # 3 x 10.33 = 30.99, 5 x 0.07 = 0.35; VAT 19 %: 5.8881 -> 5.89, 0.0665 -> 0.07
    assert body["invoiceTotal"] == {"currencyCode": "EUR", "amount": "37.30"}
    assert body["taxTotals"][0]["taxAmount"] == {"currencyCode": "EUR", "amount": "5.96"}
    one, two = body["items"]
    assert one == {
        "itemSequenceNumber": "1",
        "buyerProductIdentifier": "B0ASIN0001",
        "vendorProductIdentifier": "SKU-1",
        "invoicedQuantity": {"amount": 3, "unitOfMeasure": "Each"},
        "netCost": {"currencyCode": "EUR", "amount": "10.33"},
        "purchaseOrderNumber": "DFPO0001",
        "taxDetails": [{"taxType": "VAT", "taxRate": "0.19",
                        "taxAmount": {"currencyCode": "EUR", "amount": "5.89"},
                        "taxableAmount": {"currencyCode": "EUR", "amount": "30.99"}}],
    }  # fmt: skip
    assert two["invoicedQuantity"]["amount"] == 5
    entry = book.invoices[number]
    assert entry["digest"] == invoice_digest(body) and entry["lines"] == {"1": 3, "2": 5}
    assert "id" not in body and "invoiceType" not in body  # DF shape, not the retail one
    assert list(TOPIC_SCHEMA.iter_errors(body)) == []  # amazon.invoices takes it as it is
    retail_only = {**TOPIC_SCHEMA.schema, "oneOf": [{"$ref": "#/$defs/invoice"}]}
    assert list(Draft202012Validator(retail_only).iter_errors(body)) != []


def test_streams_invoice_shows_a_df_invoice() -> None:
    book, _ = invoice(record({"1": 3}))
    assert po_of_number("INV-{po}-{seq}", "INV-DF-DFPO0001-1") == book.po == "DF-DFPO0001"
    view = invoice_view(book, "INV-DF-DFPO0001-1")
    assert view is not None and view["program"] == "direct-fulfillment"
    assert (view["status"], view["total"], view["lines"]) == (
        "queued", "30.99", [{"itemSequenceNumber": "1", "eaches": 3, "netAmount": "30.99"}]
    )  # fmt: skip


def test_redelivered_confirmation_bills_nothing_twice() -> None:
    rec = record({"1": 3})
    book, first = invoice(rec)
    _, again = invoice(rec, book)
    assert len(first.publish) == 1
    assert again.publish == [] and again.outcomes == ["duplicate"]
    assert book.data["seq"] == 1


def test_invoicing_more_than_accepted_is_refused_nothing_sent() -> None:
    book, eff = invoice(record({"1": 4}, accepted={"1": 3, "2": 5}))
    assert eff.publish == [] and eff.outcomes == ["invalid"]
    [exc] = eff.exceptions
    assert exc["kind"] == "invoice-invalid" and exc["owner"] == "finance"
    assert "EXCEEDS_ACCEPTED" in exc["rootCause"]
    assert exc["refs"]["purchaseOrderNumber"] == "DF-DFPO0001"
    assert book.invoices == {}


def test_a_line_without_net_price_is_refused() -> None:
    rec = record({"1": 3})
    rec.lines["1"]["netCost"] = None
    _, eff = invoice(rec)
    assert eff.publish == [] and "MISSING_PRICE" in eff.exceptions[0]["rootCause"]


def test_the_rendered_body_is_judged_by_the_model_check() -> None:
    _, eff = invoice(record({"1": 3}), check=lambda body: ["items/0/netCost: broken"])
    assert eff.publish == []
    assert "[AMAZON_MODEL] items/0/netCost: broken" in eff.exceptions[0]["rootCause"]


def test_df_invoice_validates_against_amazons_model(amazon_models_dir: object) -> None:
    check = partial(amazon_models.validate, "df-payments", "InvoiceDetail")
    _, eff = invoice(record({"1": 3, "2": 5}), check=check, tax_type="VAT",
                     tax_rate=Decimal("0.2"))  # fmt: skip
    [(_, body)] = eff.publish
    assert amazon_models.model_path("df-payments") is not None
    assert amazon_models.validate("df-payments", "SubmitInvoiceRequest", {"invoices": [body]}) == []


def test_the_reconciliation_report_shows_what_a_df_order_invoiced() -> None:
    rec = record({"1": 3})
    book, _ = invoice(rec)
    lines = df_invoice_lines(rec.to_json(), book.to_json())
    got = [(r.po_number, r.line, r.accepted_eaches, r.shipped_eaches, r.invoiced_eaches,
            r.invoiced_amount, r.currency, r.invoices, r.differences) for r in lines]  # fmt: skip
    assert got == [
        ("DF-DFPO0001", "1", 3, 3, 3, "30.99", "EUR", "INV-DF-DFPO0001-1 (queued)", ""),
        ("DF-DFPO0001", "2", 5, 0, 0, "0", "EUR", "-", ""),
    ]
    [row] = df_rows({"DFPO0001": rec.to_json()}, "2024-03", {"DF-DFPO0001": book.to_json()})
    assert row.po_number == "DF-DFPO0001" and row.discrepancies == "shipped 3 of 8 eaches"
    unbilled = {"DF-DFPO0001": InvoiceBook("DF-DFPO0001").to_json()}
    [row] = df_rows({"DFPO0001": rec.to_json()}, "2024-03", unbilled)
    assert "line 1: 3 shipped, not invoiced" in row.discrepancies


def test_df_book_hands_an_accepted_confirmation_on_also_when_redelivered() -> None:
    rec = record({"1": 3})
    rec.shipments["D1"].update(status="submitted", confirmStatus=None)
    ctx = df_book.Context(resolve=lambda a, v: None, now=0.0, selling_party="V", ack_within_s=1)
    msg = {"t": "tx", "kind": "confirm", "sid": "D1", "tx": {"id": "C1", "status": "Success"}}
    _, eff = df_book.apply(rec, msg, ctx)
    assert eff.confirmed == ["D1"] and rec.shipments["D1"]["status"] == "confirmed"
    _, again = df_book.apply(rec, msg, ctx)  # the invoice book drops it as a duplicate
    assert again.confirmed == ["D1"] and not again.changed
    failed = {**msg, "tx": {"id": "C1", "status": "Failure"}}
    rec.shipments["D1"]["confirmStatus"] = None
    _, eff = df_book.apply(rec, failed, ctx)
    assert eff.confirmed == []
