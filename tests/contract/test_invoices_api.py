"""submitInvoices: the client against the sandbox over real HTTP (model check, transaction
status, duplicate numbers, faults)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest

from streams.adapters import amazon_models
from streams.adapters.spapi import SpApiError, TransactionFailed
from streams.domain.invoice import InvoiceRules, build_invoice
from tests.contract.test_spapi_client import rig
from tests.unit.test_invoices import terms

model_check = partial(amazon_models.validate, "vendorInvoices", "Invoice")


def invoice(number: str) -> dict[str, Any]:
    t = terms(("1", "Cases", 6, 4, 4, "4.99"), ("2", "Eaches", 1, 3, 3, "0.35"))
    rules = InvoiceRules(remit_to={"partyId": "VENDOR1"})
    body = build_invoice(number, t, {"1": 12, "2": 3}, rules, datetime.now(UTC))
    assert model_check(body) == []
    return body


async def test_an_invoice_is_accepted_then_its_number_cannot_bill_again() -> None:
    async with rig() as r:
        body = invoice("INV-PO1-1")
        tid = await r.client.submit_invoices([body])
        assert (await r.client.get_transaction(tid))["status"] == "Processing"
        final = await r.client.wait_for_transaction(tid, timeout_s=10, poll_s=0.1)
        assert final["status"] == "Success"
        [sent] = await r.control.received("submitInvoices")
        assert sent["status"] == 202 and sent["body"] == {"invoices": [body]}
        # the same number again: Amazon takes the request and fails its transaction
        again = await r.client.submit_invoices([body])
        with pytest.raises(TransactionFailed, match="DuplicateInvoiceNumber"):
            await r.client.wait_for_transaction(again, timeout_s=10, poll_s=0.1)


async def test_a_body_against_the_model_or_its_rules_is_a_400_with_the_reasons() -> None:
    async with rig() as r:
        body = invoice("INV-PO1-2")
        del body["items"][0]["purchaseOrderNumber"]  # mandatory for an Invoice
        with pytest.raises(SpApiError) as caught:
            await r.client.submit_invoices([body])
        assert caught.value.status == 400
        assert "purchaseOrderNumber" in str(caught.value.errors)
        del body["remitToParty"]
        with pytest.raises(SpApiError) as caught:
            await r.client.submit_invoices([body])
        assert "remitToParty" in str(caught.value.errors)


async def test_transaction_failures_and_throttling_follow_the_fault_plan() -> None:
    async with rig() as r:
        await r.control.set_faults({"transactionFailures": {"purchaseOrders": ["PO1"]}})
        tid = await r.client.submit_invoices([invoice("INV-PO1-3")])
        status = await r.client.wait_for_transaction(
            tid, timeout_s=10, poll_s=0.1, raise_on_failure=False
        )
        assert status["status"] == "Failure" and status["errors"][0]["details"] == "PO1"
        await r.control.set_faults(
            {"clear": True, "operations": {"submitInvoices": {"throttleNext": 2}}}
        )
        tid = await r.client.submit_invoices([invoice("INV-PO1-4")])  # the client rides 429s out
        assert (await r.client.wait_for_transaction(tid, poll_s=0.1))["status"] == "Success"
        statuses = [e["status"] for e in await r.control.received("submitInvoices")]
        assert statuses.count(429) == 2
