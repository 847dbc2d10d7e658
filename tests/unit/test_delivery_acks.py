"""DeliveryAcks: a batch's events are acked once its records are delivered, not before, and
never when a delivery fails."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.runtime.acks import DeliveryAcks, DeliveryFailed


class FakeStream:
    def __init__(self) -> None:
        self.acked: list[Any] = []

    async def ack(self, event: Any) -> bool:
        self.acked.append(event)
        return True


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_events_are_acked_only_once_their_records_are_delivered() -> None:
    stream = FakeStream()
    acks = DeliveryAcks(stream, in_flight=4)
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    await acks.add(["a1", "a2"], [first])
    await acks.add(["b1"], [second])
    await settle()
    assert stream.acked == []
    assert len(acks) == 2
    second.set_result(None)  # a later batch may be delivered first: acked on its own
    await settle()
    assert stream.acked == ["b1"]
    first.set_result(None)
    await settle()
    assert stream.acked == ["b1", "a1", "a2"]
    assert len(acks) == 0


async def test_a_batch_without_records_is_acked_without_a_further_add() -> None:
    stream = FakeStream()
    acks = DeliveryAcks(stream)
    await acks.add(["e"], [])
    await settle()
    assert stream.acked == ["e"]  # no later batch is needed to ack it (rebalance, stop)


async def test_add_waits_for_the_oldest_batch_beyond_the_bound() -> None:
    stream = FakeStream()
    acks = DeliveryAcks(stream, in_flight=1)
    loop = asyncio.get_running_loop()
    first = loop.create_future()
    await acks.add(["a"], [first])
    adding = asyncio.ensure_future(acks.add(["b"], [loop.create_future()]))
    await settle()
    assert not adding.done()  # two in flight, one allowed: waits
    first.set_result(None)
    await asyncio.wait_for(adding, 1)
    await settle()
    assert stream.acked == ["a"]


async def test_a_failed_delivery_leaves_its_events_unacked_and_stops_the_agent() -> None:
    stream = FakeStream()
    acks = DeliveryAcks(stream)
    loop = asyncio.get_running_loop()
    failing, fine = loop.create_future(), loop.create_future()
    await acks.add(["lost"], [failing, fine])
    fine.set_result(None)
    failing.set_exception(OSError("broker gone"))
    await settle()
    assert stream.acked == []
    with pytest.raises(DeliveryFailed, match="broker gone"):
        await acks.add(["next"], [])
    await settle()
    assert stream.acked == []  # nothing after the failure is acked either
