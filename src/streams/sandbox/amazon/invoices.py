"""The sandbox's Vendor Invoices API (``vendorInvoices`` ``submitInvoices``).

The body is validated against Amazon's model (``SubmitInvoicesRequest``) plus the rules its
descriptions state: at least one invoice; ``purchaseOrderNumber`` on every item of an
``Invoice``; ``netCost`` above zero; quantities above zero; ``creditNoteDetails`` only on a
``CreditNote``. A valid request is answered 202 with a retail transaction (served by the
retail ``getTransaction``), Processing first, then Success or Failure. Faults come from the
sandbox's fault plan like every operation's (429, 5xx, latency, failed transactions by PO).

Amazon refuses an invoice number it already holds; here that is a transaction ending in
``Failure`` with code ``DuplicateInvoiceNumber`` (the submission is accepted for processing,
as Amazon checks business rules asynchronously).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from streams.adapters.amazon_models import validate
from streams.sandbox.amazon.state import BODY, STATE, _errors, _json, _problems_to_errors

SUBMIT = "submitInvoices"
OPERATIONS: dict[str, tuple[str, str]] = {SUBMIT: ("POST", "/vendor/payments/v1/invoices")}
DUPLICATE = "DuplicateInvoiceNumber"


def invoice_problems(body: Any) -> list[str]:
    problems = validate("vendorInvoices", "SubmitInvoicesRequest", body)
    if problems:
        return problems
    invoices = body.get("invoices") or []
    if not invoices:
        problems.append("invoices: at least one invoice is required")
    for i, inv in enumerate(invoices):
        for j, item in enumerate(inv.get("items") or []):
            where = f"invoices/{i}/items/{j}"
            if inv["invoiceType"] == "Invoice" and not item.get("purchaseOrderNumber"):
                problems.append(
                    f"{where}/purchaseOrderNumber: mandatory when invoiceType is Invoice"
                )
            if inv["invoiceType"] == "Invoice" and "creditNoteDetails" in item:
                problems.append(f"{where}/creditNoteDetails: only for credit notes")
            if not _above_zero(item["netCost"].get("amount")):
                problems.append(f"{where}/netCost: price must not be zero or negative")
            if item["invoicedQuantity"]["amount"] <= 0:
                problems.append(f"{where}/invoicedQuantity/amount: must be greater than zero")
    return problems


def _above_zero(v: object) -> bool:
    try:
        return Decimal(str(v)) > 0
    except InvalidOperation:
        return False


async def submit_invoices(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = request[BODY]
    problems = invoice_problems(body)
    if problems:
        return _errors(request, 400, _problems_to_errors(problems))
    held = _numbers(state)
    pos = {
        po
        for inv in body["invoices"]
        for item in inv.get("items") or []
        if (po := item.get("purchaseOrderNumber"))
    }
    tx = state.new_transaction(SUBMIT, pos)
    dupes = [inv["id"] for inv in body["invoices"] if (inv["invoiceType"], inv["id"]) in held]
    if dupes and tx.errors is None:
        tx.errors = [
            {"code": DUPLICATE, "message": "Duplicate invoice number", "details": ",".join(dupes)}
        ]
    if tx.errors is None:  # Amazon holds them now
        held.update((inv["invoiceType"], inv["id"]) for inv in body["invoices"])
    return _json(request, 202, {"payload": {"transactionId": tx.transaction_id}})


def _numbers(state: Any) -> set[tuple[str, str]]:
    """The (type, number) pairs the sandbox holds; emptied with the sandbox's reset (which
    replaces its transactions)."""
    held: tuple[object, set[tuple[str, str]]] | None = getattr(state, "_invoice_numbers", None)
    if held is None or held[0] is not state.transactions:
        held = (state.transactions, set())
        state._invoice_numbers = held
    return held[1]


def received_invoices(state: Any) -> list[dict[str, Any]]:
    """Every invoice the sandbox was sent (accepted for processing), oldest first."""
    out: list[dict[str, Any]] = []
    for entry in state.received.get(SUBMIT, ()):
        if entry.get("status") == 202:
            out.extend((entry.get("body") or {}).get("invoices") or [])
    return out


HANDLERS = {SUBMIT: submit_invoices}
