"""The retail senders' shares of Amazon's plans follow the Faust app's assignment."""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

from streams.adapters.spapi import SpApiClient
from streams.agents.spapi_budget import RetailBudget, retail_shares
from streams.config import Settings
from streams.domain.rate_budget import Share


class TP(NamedTuple):
    topic: str
    partition: int


class FakeSignal:
    def __init__(self) -> None:
        self.receivers: list[Any] = []

    def connect(self, fn: Any) -> None:
        self.receivers.append(fn)

    def send(self, *args: Any) -> None:
        for fn in self.receivers:
            asyncio.run(fn("app", *args, signal=self))


class FakeApp:
    def __init__(self) -> None:
        self.on_partitions_revoked = FakeSignal()
        self.on_partitions_assigned = FakeSignal()


S = Settings(partitions=6)
ACKS, ASNS = S.topic_po_acknowledgements, S.topic_shipment_confirmations


def test_shares_by_topic() -> None:
    assigned = [TP(ACKS, 0), TP(ACKS, 3), TP(ASNS, 1), TP(S.topic_purchase_orders, 2)]
    assert retail_shares(S, assigned) == {
        "submitAcknowledgement": Share(2, 6),
        "SubmitShipmentConfirmations": Share(1, 6),
        "getTransaction": Share(3, 12),
    }
    assert retail_shares(S, ()) == {
        "submitAcknowledgement": Share(0, 6),
        "SubmitShipmentConfirmations": Share(0, 6),
        "getTransaction": Share(0, 12),
    }


def test_a_rebalance_narrows_the_shared_client_and_restores_it() -> None:
    app = FakeApp()
    client = SpApiClient(S)  # no request is made: only its limits are read
    RetailBudget(app, S, lambda: client)  # type: ignore[arg-type]
    assert client.rate_limit("submitAcknowledgement") == (10.0, 10)
    app.on_partitions_revoked.send(set())
    assert client.rate_limit("submitAcknowledgement") == (0.0, 0)
    assert client.rate_limit("getTransaction") == (0.0, 0)
    app.on_partitions_assigned.send({TP(ACKS, p) for p in (0, 1)} | {TP(ASNS, 5)})
    rate, burst = client.rate_limit("submitAcknowledgement")
    assert (round(rate, 6), burst) == (round(10 / 3, 6), 3)
    rate, burst = client.rate_limit("getTransaction")  # plan 10/s burst 20, 3 of 12
    assert (round(rate, 6), burst) == (2.5, 5)
    assert client.rate_limit("getPurchaseOrders") == (10.0, 10)  # the leader's, unsplit
