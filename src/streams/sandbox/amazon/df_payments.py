"""The sandbox's Direct Fulfillment Payments API (v1): ``submitInvoice``.

The body is validated against Amazon's model (``SubmitInvoiceRequest``) when it is available
(``STREAMS_AMAZON_MODELS_DIR``), else only the structure the sandbox needs to answer (an
invoice number, items naming a PO and a line); always the rules its descriptions state: at
least one invoice, ``netCost`` above zero, quantities above zero. A valid request is answered
202 with a Direct Fulfillment transaction (the DF Transaction Status API), Processing first,
then Success or Failure; faults come from the sandbox's fault plan (429, 5xx, latency, failed
transactions by PO). An order the sandbox does not know, or a number it already holds, ends
the transaction in ``Failure`` (``DuplicateInvoiceNumber`` as the retail invoices do).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from streams.adapters.amazon_models import available, validate
from streams.sandbox.amazon.df_orders import unknown_lines
from streams.sandbox.amazon.invoices import DUPLICATE, _above_zero, _numbers
from streams.sandbox.amazon.state import BODY, STATE, _errors, _json, _problems_to_errors

API = "df-payments"
SUBMIT = "submitInvoice"
OPERATIONS: dict[str, tuple[str, str]] = {
    SUBMIT: ("POST", "/vendor/directFulfillment/payments/v1/invoices")
}


def _structure(body: Any) -> list[str]:
    invoices = body.get("invoices") if isinstance(body, dict) else None
    if not isinstance(invoices, list) or not invoices:
        return ["invoices: at least one invoice is required"]
    problems = []
    for i, inv in enumerate(invoices):
        if not isinstance(inv, dict) or not isinstance(inv.get("invoiceNumber"), str):
            problems.append(f"invoices/{i}/invoiceNumber: required")
            continue
        items = inv.get("items")
        if not isinstance(items, list) or not items:
            problems.append(f"invoices/{i}/items: at least one item is required")
            continue
        for j, item in enumerate(items):
            ok = isinstance(item, dict) and all(
                isinstance(item.get(k), str) for k in ("purchaseOrderNumber", "itemSequenceNumber")
            )
            ok = ok and isinstance((item.get("invoicedQuantity") or {}).get("amount"), int)
            if not ok:
                problems.append(
                    f"invoices/{i}/items/{j}: purchaseOrderNumber, itemSequenceNumber and "
                    "invoicedQuantity are required"
                )
    return problems


def invoice_problems(body: Any) -> list[str]:
    problems = validate(API, "SubmitInvoiceRequest", body) if available(API) else []
    problems = problems or _structure(body)
    if problems:
        return problems
    for i, inv in enumerate(body["invoices"]):
        for j, item in enumerate(inv["items"]):
            where = f"invoices/{i}/items/{j}"
            if not _above_zero((item.get("netCost") or {}).get("amount")):
                problems.append(f"{where}/netCost: price must not be zero or negative")
            if item["invoicedQuantity"]["amount"] <= 0:
                problems.append(f"{where}/invoicedQuantity/amount: must be greater than zero")
    return problems


async def submit_invoice(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = request[BODY]
    problems = invoice_problems(body)
    if problems:
        return _errors(request, 400, _problems_to_errors(problems))
    by_po: dict[str, list[str]] = {}
    for inv in body["invoices"]:
        for item in inv["items"]:
            by_po.setdefault(item["purchaseOrderNumber"], []).append(item["itemSequenceNumber"])
    errors = [e for po, seqs in by_po.items() if (e := unknown_lines(state.df_orders, po, seqs))]
    tx = state.new_transaction(SUBMIT, set(by_po), errors or None)
    held = _numbers(state)
    numbers = [inv["invoiceNumber"] for inv in body["invoices"]]
    dupes = [n for n in numbers if ("DF", n) in held]
    if dupes and tx.errors is None:
        tx.errors = [
            {"code": DUPLICATE, "message": "Duplicate invoice number", "details": ",".join(dupes)}
        ]
    if tx.errors is None:  # Amazon holds them now
        held.update(("DF", n) for n in numbers)
    return _json(request, 202, {"payload": {"transactionId": tx.transaction_id}})


def received_df_invoices(state: Any) -> list[dict[str, Any]]:
    """Every DF invoice the sandbox was sent (accepted for processing), oldest first."""
    out: list[dict[str, Any]] = []
    for entry in state.received.get(SUBMIT, ()):
        if entry.get("status") == 202:
            out.extend((entry.get("body") or {}).get("invoices") or [])
    return out


HANDLERS = {SUBMIT: submit_invoice}
