"""The invoice sender with hand-written fakes: the intent is durable before the request
leaves, a body sent before is never sent again, an uncertain send is resent marked."""

from __future__ import annotations

from functools import partial
from typing import Any

from streams.adapters import amazon_models
from streams.adapters.codecs import dumps, loads
from streams.adapters.spapi import SpApiError
from streams.agents.invoice_sender import InvoiceSender
from streams.domain.invoice import build_invoice
from streams.domain.invoice_book import invoice_digest
from tests.unit.test_invoices import NOW, RULES, terms

model_check = partial(amazon_models.validate, "vendorInvoices", "Invoice")


class Topic:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, dict[str, Any]]] = []

    async def send(self, key: bytes, value: bytes) -> None:
        self.sent.append((key, loads(value)))


class Amazon:
    def __init__(self, table: dict[bytes, bytes], fail: list[Exception] | None = None) -> None:
        self.table = table
        self.fail = fail or []
        self.calls: list[tuple[str, Any]] = []  # (state of invoice_sent at the call, body)

    def __call__(self) -> Amazon:
        return self

    async def submit_invoices(self, invoices: list[dict[str, Any]]) -> str:
        self.calls.append((loads(self.table[b"INV-PO1-1"])["state"], invoices))
        if self.fail:
            raise self.fail.pop(0)
        return f"tx{len(self.calls)}"


def rig(
    fail: list[Exception] | None = None,
) -> tuple[InvoiceSender, dict[bytes, bytes], Amazon, Topic, list[str]]:
    table: dict[bytes, bytes] = {}
    amazon, topic, flushed = Amazon(table, fail), Topic(), []

    async def flush() -> None:
        flushed.append(loads(table[b"INV-PO1-1"])["state"])

    sender = InvoiceSender(table, topic, amazon, model_check, lambda: 100.0, flush)
    return sender, table, amazon, topic, flushed


def invoice() -> dict[str, Any]:
    return build_invoice(
        "INV-PO1-1", terms(("1", "Eaches", 1, 10, 10, "1.00")), {"1": 2}, RULES, NOW
    )


async def test_the_intent_is_flushed_before_the_request_and_a_replay_sends_nothing() -> None:
    sender, _table, amazon, topic, flushed = rig()
    body = invoice()
    await sender._send(b"INV-PO1-1", body)
    assert flushed == ["sending"] and [state for state, _ in amazon.calls] == ["sending"]
    assert topic.sent == [
        (
            b"PO1",
            {
                "t": "submitted",
                "txid": "tx1",
                "at": 100.0,
                "resent": False,
                "number": "INV-PO1-1",
                "digest": invoice_digest(body),
            },
        )
    ]
    await sender._send(b"INV-PO1-1", body)  # replayed, or republished after a restart
    assert len(amazon.calls) == 1 and topic.sent[1] == topic.sent[0]


async def test_a_crash_after_the_intent_resends_marked_and_a_4xx_is_rejected() -> None:
    sender, table, amazon, topic, _ = rig()
    body = invoice()
    table[b"INV-PO1-1"] = dumps({"digest": invoice_digest(body), "state": "sending"})
    await sender._send(b"INV-PO1-1", body)
    assert len(amazon.calls) == 1 and topic.sent[0][1]["resent"] is True

    sender, table, amazon, topic, _ = rig(
        [SpApiError(400, "submitInvoices", [{"code": "InvalidInput", "message": "x"}])]
    )
    await sender._send(b"INV-PO1-1", invoice())
    ((_, event),) = topic.sent
    assert event["t"] == "rejected" and "InvalidInput: x" in event["error"]


async def test_another_body_under_a_used_number_is_never_sent() -> None:
    sender, table, amazon, topic, _ = rig()
    table[b"INV-PO1-1"] = dumps({"digest": "other", "state": "done", "outcome": {}})
    await sender._send(b"INV-PO1-1", invoice())
    assert amazon.calls == [] and topic.sent == []


async def test_a_df_invoice_goes_to_submit_invoice_and_its_outcome_to_the_df_book() -> None:
    from streams.domain.df_invoice import to_df_invoice

    class DfAmazon:
        calls: list[dict[str, Any]] = []

        def __call__(self) -> DfAmazon:
            return self

        async def df_submit_invoice(self, body: dict[str, Any]) -> str:
            self.calls.append(body)
            return "dftx1"

    table: dict[bytes, bytes] = {}
    topic, amazon = Topic(), DfAmazon()
    checked: list[str] = []

    def df_check(body: Any) -> list[str]:
        checked.append(body["invoiceNumber"])
        return []

    async def flush() -> None:
        pass

    sender = InvoiceSender(table, topic, amazon, model_check, lambda: 100.0, flush, df_check)
    body = to_df_invoice(build_invoice(
        "INV-DF-PO1-1", terms(("1", "Eaches", 1, 10, 10, "1.00")), {"1": 2}, RULES, NOW
    ))  # fmt: skip
    await sender._send(b"INV-DF-PO1-1", body)
    await sender._send(b"INV-DF-PO1-1", body)  # redelivered: reported again, not sent again
    assert amazon.calls == [{"invoices": [body]}] and checked == ["INV-DF-PO1-1"]
    assert [k for k, _ in topic.sent] == [b"DF-PO1", b"DF-PO1"]
    assert topic.sent[0][1]["txid"] == "dftx1"
