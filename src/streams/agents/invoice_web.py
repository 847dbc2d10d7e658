"""``GET /api/invoice/{number}`` on the worker's web server (``streams invoice <number>``).

The invoice's PO is read off its number (``STREAMS_INVOICE_NUMBER_PATTERN``), and the PO's
``invoices`` record is local when this worker owns the PO's partition; else the answer is a
404 naming this worker (the same rule as ``/api/po``). The bearer-token guard of the web
server covers this path like every other.
"""

from __future__ import annotations

from typing import Any

import faust

from streams.adapters.codecs import dumps, loads
from streams.domain.df_orders import df_number
from streams.domain.exception_display import sort_exceptions
from streams.domain.invoice import po_of_number
from streams.domain.invoice_book import InvoiceBook

JSON = "application/json"


def invoice_view(book: InvoiceBook, number: str) -> dict[str, Any] | None:
    """What ``streams invoice`` shows (pure); None when the book has no such invoice."""
    inv = book.invoices.get(number)
    if inv is None:
        return None
    out: dict[str, Any] = {
        "invoiceNumber": number,
        "purchaseOrderNumber": book.po,  # DF-<PO> for a Direct Fulfillment order
        "program": "direct-fulfillment" if df_number(book.po) else "retail",
        "status": inv["status"],
        "date": inv.get("date"),
        "total": inv.get("total"),
        "currency": inv.get("currency"),
        "shipments": list(inv.get("sids") or []),
        "lines": [
            {"itemSequenceNumber": k, "eaches": n, "netAmount": (inv.get("amounts") or {}).get(k)}
            for k, n in sorted(inv["lines"].items(), key=lambda kv: _order(kv[0]))
        ],
        "transactionId": inv.get("txid"),
        "resent": bool(inv.get("resent")),
    }
    for key in ("errors", "error", "note"):
        if inv.get(key):
            out[key] = inv[key]
    return out


def register(app: faust.App, pattern: str, invoices: Any, ops: Any) -> None:
    """The page, answered from the ``invoices`` table and the ops flow's exceptions."""

    def reply(view: Any, body: Any, status: int = 200) -> Any:
        return view.bytes(dumps(body), content_type=JSON, status=status)

    @app.page("/api/invoice/{number:.+}", name="invoices_api_invoice")
    async def api_invoice(view: Any, request: Any, number: str) -> Any:
        po = po_of_number(pattern, number)
        if po is None:
            return reply(view, {"error": f"{number!r} does not fit the invoice number pattern "
                                         f"{pattern!r}"}, 404)  # fmt: skip
        raw = invoices.get(po.encode())
        body = invoice_view(InvoiceBook(po, loads(raw)), number) if raw else None
        if body is None:
            from streams.observability.web import missing

            return reply(view, *missing(ops, invoices, po.encode(), f"invoice {number!r}"))
        body["worker"] = ops.worker
        body["exceptions"] = [
            {**r, "runbookUrl": ops.runbook_url(r)}
            for r in sort_exceptions(ops.all_exceptions().values())
            if (r.get("refs") or {}).get("purchaseOrderNumber") == po
            and str(r.get("kind", "")).startswith("invoice-")
        ]
        return reply(view, body)


def _order(seq: str) -> tuple[int, str]:
    return (int(seq), seq) if seq.isdigit() else (1 << 30, seq)
