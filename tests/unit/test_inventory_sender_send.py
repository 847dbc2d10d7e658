"""The inventory sender's send path with a fake SP-API client: 413 halves, a 4xx refusal is
an owned exception and not retried, outages are retried (and reported once stalled), and a
rebalance abandons the batch for redelivery."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from streams.adapters.spapi import NoBudgetShare, SpApiError
from streams.agents.inventory_sender import Abandoned, InventorySenderFlow
from streams.config import Settings
from streams.domain.inventory_feed import InventoryRequest, item_details
from streams.domain.rate_budget import Share


class FakeTopic:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    async def send(self, key: bytes, value: bytes) -> None:
        self.sent.append((key, value))


class FakeApp:
    rebalancing = False
    should_stop = False

    def topic(self, name: str, **kwargs: Any) -> FakeTopic:
        return FakeTopic()

    def agent(self, *args: Any, **kwargs: Any) -> Any:
        return lambda fn: fn

    def timer(self, *args: Any, **kwargs: Any) -> Any:
        return lambda fn: fn


class FakeApi:
    """Answers each submit with the next outcome: an exception to raise, or a txid."""

    def __init__(self, outcomes: list[Any], max_items: int | None = None) -> None:
        self.outcomes = outcomes
        self.max_items = max_items
        self.calls: list[int] = []
        self.parties: list[str | None] = []
        self.checked: list[str] = []  # transaction ids asked of the DF status API
        self.shares: list[tuple[tuple[str, ...], Share]] = []

    def set_share(self, operations: Any, share: Share) -> None:
        self.shares.append((tuple(operations), share))

    def rate_limit(self, operation: str) -> tuple[float, int]:
        share = self.shares[-1][1] if self.shares else Share(1, 1)
        return 10.0 * share.owned / share.total, 10

    async def get_df_transaction(self, txid: str) -> dict[str, Any]:
        self.checked.append(txid)
        return {"transactionId": txid, "status": "Success"}

    async def get_transaction(self, txid: str) -> dict[str, Any]:
        raise AssertionError("a DF transaction asked of the retail Transaction Status API")

    async def submit_inventory_update(
        self, warehouse: str, items: list[dict[str, Any]], **kwargs: Any
    ) -> str:
        self.calls.append(len(items))
        self.parties.append(kwargs.get("selling_party"))
        if self.max_items is not None and len(items) > self.max_items:
            raise SpApiError(413, "submitInventoryUpdate", [{"code": "TooLarge", "message": ""}])
        out = self.outcomes.pop(0) if self.outcomes else f"tx-{len(self.calls)}"
        if isinstance(out, BaseException):
            raise out
        return str(out)


def request(n: int) -> InventoryRequest:
    items = []
    for i in range(n):
        sku, item = item_details(
            {
                "sku": f"S{i:03d}",
                "availableQuantity": {"amount": i, "unitOfMeasure": "Each"},
                "isObsolete": False,
                "vendorProductIdentifier": f"V{i}",
            }
        )
        items.append((sku, item))
    return InventoryRequest("WH1", tuple(items))


def flow(api: FakeApi, **settings: Any) -> tuple[InventorySenderFlow, FakeApp, list[float]]:
    app = FakeApp()
    now = [1_000.0]
    f = InventorySenderFlow(
        app,  # type: ignore[arg-type]
        Settings(**settings),
        clock=lambda: now[0],
        spapi_factory=lambda: api,
    )

    async def no_wait(seconds: float) -> None:
        if app.rebalancing:
            raise Abandoned("rebalance")
        now[0] += seconds

    f._sleep = no_wait  # type: ignore[method-assign]
    return f, app, now


def exceptions(f: InventorySenderFlow) -> list[dict[str, Any]]:
    topic: FakeTopic = f.exceptions_topic  # type: ignore[assignment]
    return [orjson.loads(v) for _, v in topic.sent]


def test_too_large_is_sent_in_halves() -> None:
    api = FakeApi([], max_items=3)
    f, _, _ = flow(api)
    asyncio.run(f._send(request(10)))
    assert api.calls == [10, 5, 2, 3, 5, 2, 3]
    assert sum(n for n in api.calls if n <= 3) == 10
    assert len(f.pending_tx) == 4 and exceptions(f) == []


def test_a_refusal_is_an_exception_and_not_retried() -> None:
    refused = SpApiError(400, "submitInventoryUpdate", [{"code": "InvalidInput", "message": "x"}])
    api = FakeApi([refused])
    f, _, _ = flow(api)
    asyncio.run(f._send(request(3)))
    assert api.calls == [3]
    [rec] = exceptions(f)
    assert rec["kind"] == "inventory-update-rejected" and rec["owner"] == "ecommerce"
    assert "InvalidInput" in rec["rootCause"] and "S000" in rec["rootCause"]
    assert f.pending_tx == {}


def test_outages_are_retried_and_reported_once_stalled() -> None:
    outage = [SpApiError(503, "submitInventoryUpdate") for _ in range(12)]
    api = FakeApi([*outage, SpApiError(429, "submitInventoryUpdate"), "tx-ok"])
    f, _, _ = flow(api, inventory_stalled_after_s=60)
    asyncio.run(f._send(request(2)))
    assert len(api.calls) == 14 and "tx-ok" in f.pending_tx
    kinds = [(r["kind"], r["status"]) for r in exceptions(f)]
    assert kinds == [("inventory-send-stalled", "open"), ("inventory-send-stalled", "resolved")]


def test_a_rebalance_abandons_the_request() -> None:
    api = FakeApi([SpApiError(503, "submitInventoryUpdate")])
    f, app, _ = flow(api)
    app.rebalancing = True
    with pytest.raises(Abandoned):
        asyncio.run(f._send(request(2)))
    assert f.pending_tx == {}


def test_an_invalid_body_is_not_sent() -> None:
    api = FakeApi([])
    f, _, _ = flow(api)
    bad = InventoryRequest("WH1", (("S1", {"availableQuantity": {"amount": "7"}}),))
    asyncio.run(f._send(bad))
    assert api.calls == []
    [rec] = exceptions(f)
    assert rec["kind"] == "inventory-update-rejected" and "model" in rec["rootCause"]


def test_the_feed_names_the_df_vendor_code_when_it_differs_from_the_retail_one() -> None:
    api = FakeApi([])
    f, _, _ = flow(api)
    asyncio.run(f._send(request(1)))
    f, _, _ = flow(api, spapi_selling_party="RETAIL1", spapi_df_selling_party="DFCODE1")
    asyncio.run(f._send(request(1)))
    assert api.parties == ["VENDOR1", "DFCODE1"]


def test_transactions_are_checked_on_the_df_api_with_a_share_of_the_budget() -> None:
    api = FakeApi([])
    f, _, _ = flow(api)
    asyncio.run(f._send(request(2)))
    [txid] = f.pending_tx
    f.assigned(0, 6)  # a rebalance took every partition: no share of the plan, no checks
    assert api.shares == [(("submitInventoryUpdate", "getTransactionStatus"), Share(0, 6))]
    asyncio.run(f.tick())
    assert api.checked == [] and txid in f.pending_tx
    f.assigned(2, 6)
    assert api.shares[-1][1] == Share(2, 6)
    asyncio.run(f.tick())
    assert api.checked == [txid] and f.pending_tx == {}


def test_no_share_of_the_plan_abandons_the_batch_without_a_stall() -> None:
    api = FakeApi([NoBudgetShare("submitInventoryUpdate")])
    f, _, _ = flow(api, inventory_stalled_after_s=0)
    with pytest.raises(Abandoned):
        asyncio.run(f._send(request(2)))
    assert api.calls == [2] and f.pending_tx == {} and exceptions(f) == []
