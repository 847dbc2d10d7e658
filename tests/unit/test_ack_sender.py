"""The acknowledgement sender with a fake SP-API client: several acknowledgements per request,
a refused or too large request sent again in halves, redeliveries submitted once, and a
failed transaction reported for each PO it carried."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson

from streams.adapters.spapi import SpApiError
from streams.agents.purchase_orders import PurchaseOrderFlow
from streams.config import Settings
from streams.domain.acknowledgement import encode_acknowledgement
from streams.domain.po_messages import AckSubmitted
from streams.domain.purchase_order import PurchaseOrderRecord


class FakeTopic:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[tuple[bytes, bytes]] = []

    def get_topic_name(self) -> str:
        return self.name

    async def send(self, key: bytes, value: bytes) -> None:
        self.sent.append((key, value))


class FakeStore:
    def __init__(self) -> None:
        self.dbs: dict[int, dict[bytes, bytes]] = {}

    def _db_for_partition(self, partition: int) -> dict[bytes, bytes]:
        return self.dbs.setdefault(partition, {})


class FakeApp:
    rebalancing = False

    def __init__(self) -> None:
        self.topics: dict[str, FakeTopic] = {}
        self.on_rebalance_complete = SimpleNamespace(connect=lambda fn: fn)

    def topic(self, name: str, **kwargs: Any) -> FakeTopic:
        return self.topics.setdefault(name, FakeTopic(name))

    def Table(self, name: str, **kwargs: Any) -> Any:
        return SimpleNamespace(data=FakeStore(), items=lambda: [])

    def agent(self, *args: Any, **kwargs: Any) -> Any:
        return lambda fn: fn

    def timer(self, *args: Any, **kwargs: Any) -> Any:
        return lambda fn: fn


class FakeApi:
    """Refuses (400) any request carrying a PO of ``refuse``, answers 413 above ``max_acks``."""

    def __init__(self, refuse: frozenset[str] = frozenset(), max_acks: int | None = None) -> None:
        self.refuse = refuse
        self.max_acks = max_acks
        self.requests: list[list[str]] = []
        self.bodies: list[list[bytes]] = []
        self.status: dict[str, dict[str, Any]] = {}

    async def submit_acknowledgement(self, acks: list[bytes]) -> str:
        numbers = [orjson.loads(a)["purchaseOrderNumber"] for a in acks]
        self.requests.append(numbers)
        if self.max_acks is not None and len(acks) > self.max_acks:
            raise SpApiError(413, "submitAcknowledgement", [{"code": "TooLarge", "message": "x"}])
        if self.refuse & set(numbers):
            raise SpApiError(
                400, "submitAcknowledgement", [{"code": "InvalidInput", "message": "no"}]
            )
        self.bodies.append(list(acks))
        return f"tx-{len(self.bodies)}"

    async def get_transaction(self, txid: str) -> dict[str, Any]:
        return self.status.get(txid, {"transactionId": txid, "status": "Processing"})


def ack(po: str) -> bytes:
    return encode_acknowledgement(
        {
            "purchaseOrderNumber": po,
            "sellingParty": {"partyId": "VENDOR1"},
            "acknowledgementDate": "2024-03-01T12:00:00Z",
            "items": [
                {
                    "itemSequenceNumber": "1",
                    "orderedQuantity": {"amount": 2, "unitOfMeasure": "Eaches"},
                    "netCost": {"currencyCode": "USD", "amount": "1.00"},
                    "itemAcknowledgements": [
                        {
                            "acknowledgementCode": "Accepted",
                            "acknowledgedQuantity": {"amount": 2, "unitOfMeasure": "Eaches"},
                        }
                    ],
                }
            ],
        }
    )


def event(po: str, body: bytes | None = None) -> Any:
    return SimpleNamespace(
        key=po.encode(), value=body or ack(po), message=SimpleNamespace(partition=0)
    )


def make(api: FakeApi, **settings: Any) -> tuple[PurchaseOrderFlow, FakeApp]:
    app = FakeApp()
    s = Settings(app_id="t", **settings)
    f = PurchaseOrderFlow(
        app,  # type: ignore[arg-type]
        s,
        sku_topic=FakeTopic("sku"),  # type: ignore[arg-type]
        products={},
        clock=lambda: 1_000.0,
        spapi_factory=lambda: api,
    )
    return f, app


def sent(app: FakeApp, name: str) -> list[tuple[str, dict[str, Any]]]:
    return [(k.decode(), orjson.loads(v)) for k, v in app.topics[name].sent]


async def test_waiting_acknowledgements_go_in_one_request_as_built() -> None:
    api = FakeApi()
    f, app = make(api)
    events = [event(po) for po in ("A", "B", "C")]
    await f.acks._send_acks(events)
    assert api.requests == [["A", "B", "C"]]
    assert api.bodies == [[e.value for e in events]]  # the built bytes, unchanged
    submitted = sent(app, "t-po-events")
    assert [(k, v["t"], v["txid"], v["n"]) for k, v in submitted] == [
        (po, "ack-submitted", "tx-1", 3) for po in ("A", "B", "C")
    ]


async def test_the_count_bounds_a_request() -> None:
    api = FakeApi()
    f, _ = make(api, ack_batch_max=2)
    await f.acks._send_acks([event(po) for po in "ABCDE"])
    assert api.requests == [["A", "B"], ["C", "D"], ["E"]]


async def test_a_refused_request_is_sent_again_in_halves_down_to_the_culprit() -> None:
    api = FakeApi(refuse=frozenset({"B"}))
    f, app = make(api)
    await f.acks._send_acks([event(po) for po in ("A", "B", "C")])
    assert api.requests == [["A", "B", "C"], ["A"], ["B", "C"], ["B"], ["C"]]
    assert [b for body in api.bodies for b in body] == [ack("A"), ack("C")]
    events = sent(app, "t-po-events")
    assert [(k, v["t"]) for k, v in events] == [
        ("A", "ack-submitted"), ("B", "ack-failed"), ("C", "ack-submitted")
    ]  # fmt: skip
    [exc] = [v for _, v in sent(app, f.settings.topic_exceptions)]
    assert exc["kind"] == "ack-rejected" and exc["refs"]["purchaseOrderNumber"] == "B"


async def test_a_too_large_request_is_split() -> None:
    api = FakeApi(max_acks=2)
    f, _ = make(api)
    await f.acks._send_acks([event(po) for po in "ABCDE"])
    accepted = [orjson.loads(b)["purchaseOrderNumber"] for body in api.bodies for b in body]
    assert accepted == list("ABCDE")
    assert all(len(body) <= 2 for body in api.bodies)


async def test_redeliveries_and_newer_revisions() -> None:
    api = FakeApi()
    f, _ = make(api)
    newer = ack("A").replace(
        b'"amount":2,"unitOfMeasure":"Eaches"}}]', b'"amount":1,"unitOfMeasure":"Eaches"}}]'
    )
    await f.acks._send_acks([event("A"), event("B"), event("A"), event("A", newer)])
    # the same bytes twice: once; a newer acknowledgement of A: in the next request
    assert api.requests == [["A", "B"], ["A"]]
    assert api.bodies[1] == [newer]
    await f.acks._send_acks([event("B")])  # redelivered after it was submitted
    assert len(api.requests) == 2


async def test_a_failed_transaction_is_reported_for_each_of_its_pos() -> None:
    api = FakeApi()
    f, app = make(api)
    await f.acks._send_acks([event(po) for po in ("A", "B")])
    f.acks.needs_scan = False
    for po in ("A", "B"):  # as po-events records the submission
        rec = PurchaseOrderRecord(number=po)
        f._apply(po.encode(), rec, AckSubmitted("tx-1", 999.0), [])
    assert f.pending_tx == {"tx-1": ({"A", "B"}, 999.0)}
    api.status["tx-1"] = {
        "transactionId": "tx-1",
        "status": "Failure",
        "errors": [{"code": "INVALID_ORDER_ID", "message": "Invalid order ID."}],
    }
    await f.acks.poll_transactions()
    assert f.pending_tx == {}
    failed = [v for _, v in sent(app, f.settings.topic_exceptions)]
    assert sorted(v["refs"]["purchaseOrderNumber"] for v in failed) == ["A", "B"]
    assert {v["kind"] for v in failed} == {"ack-transaction-failed"}
    assert all("INVALID_ORDER_ID" in v["rootCause"] for v in failed)
    tx = [(k, v["tx"]["status"]) for k, v in sent(app, "t-po-events") if v["t"] == "tx"]
    assert tx == [("A", "Failure"), ("B", "Failure")]
