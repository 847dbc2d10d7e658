"""DF submitInvoice: the client against the sandbox over real HTTP (an invoice built by the
product's rules from a sandbox DF order, its DF transaction, duplicate numbers, faults)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from streams.adapters import amazon_models
from streams.adapters.spapi import SpApiError, TransactionFailed
from streams.domain import df_invoice
from streams.domain.invoice import InvoiceRules
from streams.domain.invoice_book import InvoiceBook
from tests.contract.test_df_apis import rig


def df_terms(order: dict[str, Any]) -> dict[str, Any]:
    """What the DF flow hands the invoice flow of a sandbox order (every line accepted)."""
    d = order["orderDetails"]
    return {
        "number": order["purchaseOrderNumber"],
        "orderDate": d["orderDate"],
        "sellingParty": d["sellingParty"]["partyId"],
        "shipFrom": d["shipFromParty"]["partyId"],
        "lines": {
            i["itemSequenceNumber"]: {
                "asin": i.get("buyerProductIdentifier"),
                "vendorId": i.get("vendorProductIdentifier"),
                "netCost": i["netPrice"],
                "accepted": i["orderedQuantity"]["amount"],
            }
            for i in d["items"]
        },
    }


def invoice_of(order: dict[str, Any], seq: int = 0) -> dict[str, Any]:
    df = df_terms(order)
    terms = df_invoice.terms_from_df(df, "VNDR1", None)
    assert not isinstance(terms, str)
    rules = InvoiceRules(
        remit_to={"partyId": df["sellingParty"]},
        ship_from={"partyId": df["shipFrom"]},
        render=df_invoice.to_df_invoice,
    )
    book = InvoiceBook(df_invoice.book_key(df["number"]), {"seq": seq})
    shipped = {k: ln.acknowledged for k, ln in terms.lines.items()}
    check = partial(amazon_models.validate, "df-payments", "InvoiceDetail")
    eff = book.on_shipment("D1", "h", shipped, terms, rules, check, datetime.now(UTC))
    assert eff.exceptions == [], eff.exceptions
    [(_, body)] = eff.publish
    return body


async def test_a_df_invoice_is_a_df_transaction_and_its_number_cannot_bill_again() -> None:
    async with rig() as r:
        [order] = await r.control.add_df_orders(count=1)
        body = invoice_of(order)
        tid = await r.client.df_submit_invoice({"invoices": [body]})
        status = await r.client.wait_for_transaction(tid, direct_fulfillment=True, poll_s=0.05)
        assert status == {"transactionId": tid, "status": "Success"}
        [sent] = await r.control.received("submitInvoice")
        assert sent["status"] == 202 and sent["body"] == {"invoices": [body]}
        with pytest.raises(SpApiError) as caught:  # a DF transaction, not a retail one
            await r.client.get_transaction(tid)
        assert caught.value.status == 404
        again = await r.client.df_submit_invoice({"invoices": [body]})
        with pytest.raises(TransactionFailed, match="DuplicateInvoiceNumber"):
            await r.client.wait_for_transaction(again, direct_fulfillment=True, poll_s=0.05)


async def test_an_unknown_order_fails_and_a_broken_body_is_a_400() -> None:
    async with rig() as r:
        [order] = await r.control.add_df_orders(count=1)
        body = invoice_of(order)
        for item in body["items"]:
            item["purchaseOrderNumber"] = "ZZZZ9999"
        tid = await r.client.df_submit_invoice({"invoices": [body]})
        with pytest.raises(TransactionFailed, match="INVALID_ORDER_ID"):
            await r.client.wait_for_transaction(tid, direct_fulfillment=True, poll_s=0.05)
        broken = invoice_of(order, seq=1)
        broken["items"][0]["invoicedQuantity"]["amount"] = 0
        with pytest.raises(SpApiError) as caught:
            await r.client.df_submit_invoice({"invoices": [broken]})
        assert caught.value.status == 400 and "invoicedQuantity" in str(caught.value.errors)


async def test_transaction_failures_and_throttling_follow_the_fault_plan() -> None:
    async with rig() as r:
        [order] = await r.control.add_df_orders(count=1)
        number = order["purchaseOrderNumber"]
        await r.control.set_faults({
            "operations": {"submitInvoice": {"throttleNext": 2}},
            "transactionFailures": {"purchaseOrders": [number]},
        })  # fmt: skip
        tid = await r.client.df_submit_invoice({"invoices": [invoice_of(order)]})
        assert await r.control.statuses("submitInvoice") == [429, 429, 202]
        status = await r.client.wait_for_transaction(
            tid, direct_fulfillment=True, poll_s=0.05, raise_on_failure=False
        )
        assert status["status"] == "Failure"


async def test_the_client_checks_amazons_model_before_sending(amazon_models_dir: Path) -> None:
    from streams.adapters.spapi.validation import InvalidBody

    async with rig() as r:
        [order] = await r.control.add_df_orders(count=1)
        body = invoice_of(order)
        del body["shipFromParty"]  # required by Amazon's InvoiceDetail
        with pytest.raises(InvalidBody, match="shipFromParty"):
            await r.client.df_submit_invoice({"invoices": [body]})
        assert await r.control.statuses("submitInvoice") == []
