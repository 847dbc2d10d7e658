"""The shared reporting helpers of the flows (agents/reports.py, agents/clients.py), with
hand-written fakes of the topics and clients; the flows' e2e tests cover them against Kafka."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from streams.agents.clients import LazyClient
from streams.agents.reports import DeadLetters, ExceptionReporter, internal_error
from streams.domain.exceptions import Refs, exception_id
from streams.observability import metrics as M

NOW = 1_700_000_000.0


@dataclass
class FakeTopic:
    sent: list[dict[str, Any]] = field(default_factory=list)
    declared: int = 0

    async def send(self, **kwargs: Any) -> str:
        self.sent.append(kwargs)
        return f"sent-{len(self.sent)}"

    async def maybe_declare(self) -> None:
        self.declared += 1


def counter(metric: Any, *labels: str) -> float:
    return float(metric.labels(*labels)._value.get())


def test_exception_reporter_sends_the_record_keyed_by_id_and_counts_it() -> None:
    topic = FakeTopic()
    reports = ExceptionReporter(topic, lambda: NOW)
    refs = Refs(purchaseOrderNumber="PO1", shipmentId="S1")
    before = counter(M.EXCEPTIONS, "asn-invalid", "fulfilment", "open")
    exc = asyncio.run(reports.send("asn-invalid", refs, "no SSCC"))
    assert exc.id == exception_id("asn-invalid", refs)
    (msg,) = topic.sent
    assert msg["key"] == exc.id.encode()
    rec = orjson.loads(msg["value"])
    assert (rec["kind"], rec["status"], rec["rootCause"]) == ("asn-invalid", "open", "no SSCC")
    assert rec["lastSeen"].startswith("2023-11-14T22:13:20")
    assert counter(M.EXCEPTIONS, "asn-invalid", "fulfilment", "open") == before + 1


def test_exception_reporter_applies_the_flows_owner_and_severity_and_logs_only_opens(
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = FakeTopic()
    log = logging.getLogger("test.reports")
    reports = ExceptionReporter(
        topic, lambda: NOW, kinds={"sales-order-failed": ("finance", "critical")}, log=log
    )
    refs = Refs(purchaseOrderNumber="PO1")
    with caplog.at_level(logging.WARNING, logger="test.reports"):
        asyncio.run(reports.send("sales-order-failed", refs, "HTTP 500"))
        asyncio.run(reports.send("sales-order-failed", refs, "fine now", status="resolved"))
    opened, resolved = (orjson.loads(m["value"]) for m in topic.sent)
    assert (opened["owner"], opened["severity"]) == ("finance", "critical")
    assert resolved["status"] == "resolved"
    assert [r.getMessage() for r in caplog.records] == ["sales-order-failed: HTTP 500"]


def test_record_is_what_send_sends() -> None:
    topic = FakeTopic()
    reports = ExceptionReporter(topic, lambda: NOW)
    refs = Refs(sku="MUG")
    _, key, value = reports.record("ct-command-failed", refs, "409")
    asyncio.run(reports.send("ct-command-failed", refs, "409"))
    assert topic.sent == [{"key": key, "value": value}]


def event(value: bytes) -> Any:
    msg = SimpleNamespace(topic="wms.dispatches", partition=2, offset=41, timestamp=NOW, key=b"k")
    return SimpleNamespace(value=value, message=msg)


def test_dead_letters_send_the_raw_record_with_reason_and_count_the_source() -> None:
    dlq = FakeTopic()
    letters = DeadLetters(dlq, lambda: NOW, source="wms.dispatches")
    before = counter(M.RECORDS, "wms.dispatches", "dlq")
    result = asyncio.run(letters.send(event(b"{not json"), "not JSON"))
    assert result == "sent-1"
    (msg,) = dlq.sent
    assert msg["key"] == b"k"
    assert msg["headers"]["dlq.error"] == b"not JSON"
    rec = orjson.loads(msg["value"])
    assert rec["error"] == "not JSON"
    assert rec["source"] == {"topic": "wms.dispatches", "partition": 2, "offset": 41}
    assert rec["valueText"] == "{not json"
    assert counter(M.RECORDS, "wms.dispatches", "dlq") == before + 1
    assert dlq.declared == 0


def test_dead_letters_declare_their_topic_once_when_asked() -> None:
    dlq = FakeTopic()
    letters = DeadLetters(dlq, lambda: NOW, declare=True)
    for _ in range(3):
        asyncio.run(letters.send(event(b"x"), "bad"))
    assert (dlq.declared, len(dlq.sent)) == (1, 3)


def test_internal_error_names_the_type_and_is_bounded() -> None:
    assert internal_error(KeyError("sku")) == "internal error: KeyError: 'sku'"
    assert len(internal_error(ValueError("x" * 1000))) == 300


class FakeClient:
    made = 0

    def __init__(self) -> None:
        FakeClient.made += 1
        self.closed = False

    async def close(self) -> None:
        self.closed = True


def test_lazy_client_makes_one_client_and_closes_it() -> None:
    FakeClient.made = 0
    lazy: LazyClient[FakeClient] = LazyClient(None, FakeClient)
    asyncio.run(lazy.close())  # nothing made: nothing to close
    assert FakeClient.made == 0
    first = lazy()
    assert lazy() is first and FakeClient.made == 1
    asyncio.run(lazy.close())
    assert first.closed
    assert lazy() is not first and FakeClient.made == 2  # a new one after close


def test_lazy_client_prefers_the_factory() -> None:
    shared = FakeClient()
    lazy = LazyClient(lambda: shared, FakeClient)
    assert lazy() is shared
