"""The DF sender and transaction poller with hand-written fakes of the SP-API client, the
df_orders table and the topics: sent once, validated first, refusals and failed
transactions reported (the real client and sandbox: tests/e2e/test_direct_fulfillment.py)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from types import SimpleNamespace
from typing import Any

import orjson

from streams.adapters.spapi import SpApiError
from streams.agents.df_orders import DfOrderFlow
from streams.domain import df_book
from streams.domain.df_orders import redact
from streams.domain.df_record import DfRecord
from tests.unit.test_df_orders import ctx, decided, df_order


class FakeSpApi:
    def __init__(self, fail: SpApiError | None = None, tx: str = "Success") -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail
        self.tx = tx

    async def df_submit_acknowledgement(self, body: dict[str, Any]) -> str:
        self.sent.append(("ack", body))
        if self.fail is not None:
            raise self.fail
        return f"TX{len(self.sent)}"

    async def get_df_transaction(self, txid: str) -> dict[str, Any]:
        return {"transactionId": txid, "status": self.tx, "errors": [{"code": "E", "message": "m"}]}


class FakeTopic:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, dict[str, Any]]] = []

    async def send(self, key: bytes, value: bytes) -> None:
        self.sent.append((key, orjson.loads(value)))


class FakeReports:
    def __init__(self) -> None:
        self.raised: list[tuple[str, str]] = []

    async def send(self, kind: str, refs: Any, cause: str) -> None:
        self.raised.append((kind, cause))


def flow(spapi: FakeSpApi, table: dict[bytes, bytes]) -> DfOrderFlow:
    f = DfOrderFlow.__new__(DfOrderFlow)  # no Faust app: the fakes stand in for its parts
    f.spapi = lambda: spapi  # type: ignore[assignment,method-assign]
    f.df_orders = table
    f.events_topic = FakeTopic()  # type: ignore[assignment]
    f.reports = FakeReports()  # type: ignore[assignment]
    f.clock = lambda: 100.0
    f.pending_tx = {}
    f.recent_sends = OrderedDict()
    f.needs_scan = False
    f.app = SimpleNamespace(rebalancing=False)  # type: ignore[assignment]
    f.settings = SimpleNamespace(tx_processing_success_s=900.0)  # type: ignore[assignment]
    return f


def built() -> tuple[DfRecord, dict[str, Any]]:
    rec, _ = df_book.apply(None, {"t": "order", "raw": redact(df_order())}, ctx())
    assert rec is not None
    _, eff = df_book.apply(rec, {"t": "decisions", "ds": decided(rec, {"SKU-1": 5})}, ctx())
    return rec, eff.outbox[0]


def test_an_acknowledgement_is_sent_once_and_its_transaction_polled() -> None:
    rec, item = built()
    table = {b"DF1": orjson.dumps(rec.to_json())}
    api = FakeSpApi(tx="Failure")
    f = flow(api, table)
    asyncio.run(f._send(b"DF1", item))
    [(kind, body)] = api.sent
    assert kind == "ack" and body["orderAcknowledgements"][0]["purchaseOrderNumber"] == "DF1"
    [(key, msg)] = f.events_topic.sent  # type: ignore[attr-defined]
    assert key == b"DF1" and msg["t"] == "submitted" and msg["txid"] == "TX1"
    # what df-events makes of it; the same outbox record again is not sent a second time
    df_book.apply(rec, msg, ctx())
    table[b"DF1"] = orjson.dumps(rec.to_json())
    asyncio.run(f._send(b"DF1", item))
    assert len(api.sent) == 1
    # nor is a different body for the same order
    asyncio.run(f._send(b"DF1", {**item, "hash": "another"}))
    assert len(api.sent) == 1
    # the poller: Failure goes back to df-events, which raises the owned exception
    f.pending_tx = dict(df_book.processing(rec))
    asyncio.run(f.poll_transactions())
    tx = f.events_topic.sent[-1][1]  # type: ignore[attr-defined]
    assert tx["t"] == "tx" and tx["tx"]["status"] == "Failure" and not f.pending_tx
    _, eff = df_book.apply(rec, tx, ctx())
    assert [e[0] for e in eff.exceptions] == ["df-ack-transaction-failed"]


def test_an_invalid_acknowledgement_is_not_sent() -> None:
    rec, item = built()
    bad = {**item, "body": {**item["body"], "acknowledgementStatus": {"code": "X"}}}
    api = FakeSpApi()
    rec.ack["hash"] = bad["hash"] = "digest-of-the-bad-body"  # the record holds this one
    f = flow(api, {b"DF1": orjson.dumps(rec.to_json())})
    asyncio.run(f._send(b"DF1", bad))
    assert api.sent == []
    [(kind, cause)] = f.reports.raised  # type: ignore[attr-defined]
    assert kind == "df-ack-rejected" and "not sent, invalid" in cause and "two-digit" in cause


def test_a_refused_acknowledgement_is_reported_back() -> None:
    rec, item = built()
    api = FakeSpApi(fail=SpApiError(400, "submitAcknowledgement", [{"code": "InvalidInput",
                                                                    "message": "no"}]))  # fmt: skip
    f = flow(api, {b"DF1": orjson.dumps(rec.to_json())})
    asyncio.run(f._send(b"DF1", item))
    [(_, msg)] = f.events_topic.sent  # type: ignore[attr-defined]
    assert msg["t"] == "refused" and "InvalidInput" in msg["error"]
    _, eff = df_book.apply(rec, msg, ctx())
    assert [e[0] for e in eff.exceptions] == ["df-ack-rejected"]


def test_a_resent_copy_is_not_submitted_before_its_first_submission_is_applied() -> None:
    """The redelivery rule (df_book.redelivered) may put the acknowledgement on the outbox
    again while the first copy's "submitted" still waits in df-events: Amazon gets it once."""
    rec, item = built()
    api = FakeSpApi()
    f = flow(api, {b"DF1": orjson.dumps(rec.to_json())})  # the record: built, not submitted
    asyncio.run(f._send(b"DF1", item))
    asyncio.run(f._send(b"DF1", item))
    assert len(api.sent) == 1 and len(f.events_topic.sent) == 1  # type: ignore[attr-defined]
