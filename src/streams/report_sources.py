"""Where the reconciliation report reads from: the flows' changelog topics (Kafka) and the
commercetools orders. The report itself is :mod:`streams.report`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from streams.config import Settings


class ReportError(Exception):
    pass


async def read_changelog(s: Settings, topic: str, timeout_s: float = 120.0) -> dict[str, Any]:
    """Latest JSON value per key of a changelog topic; ReportError if the topic is missing."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from streams.adapters.codecs import loads
    from streams.adapters.kafka_admin import client_kwargs, topic_partitions

    consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_kwargs(s))
    try:
        await consumer.start()
    except Exception as exc:
        raise ReportError(f"cannot reach Kafka at {s.kafka_bootstrap}: {exc}") from None
    try:
        partitions = await topic_partitions(s, topic)
        if not partitions:
            raise ReportError(f"topic {topic} does not exist")
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        latest: dict[bytes, bytes] = {}
        todo = {tp for tp in tps if end[tp] > 0}
        deadline = time.monotonic() + timeout_s
        while todo:
            if time.monotonic() > deadline:
                raise ReportError(f"reading {topic} took longer than {timeout_s:.0f} s")
            batch = await consumer.getmany(*todo, timeout_ms=500)
            for records in batch.values():
                for m in records:
                    if m.key is None:
                        continue
                    if m.value is None:
                        latest.pop(m.key, None)
                    else:
                        latest[m.key] = m.value
            for tp in list(todo):
                if await consumer.position(tp) >= end[tp]:
                    todo.discard(tp)
        return {k.decode("utf-8", "replace"): loads(v) for k, v in latest.items()}
    finally:
        await consumer.stop()


async def lookup_ct_orders(
    s: Settings, numbers: list[str], order_number: Callable[[str], str]
) -> tuple[dict[str, str], str | None]:
    """PO -> the state of its commercetools order (``order_number(PO)``; "missing" when
    none), and why the lookup was given up (then every PO shows "-")."""
    if not numbers:
        return {}, None
    from streams.adapters.commercetools import CommercetoolsClient

    out: dict[str, str] = {}
    timeout = s.ct_timeout_s + 5
    async with CommercetoolsClient(s, max_attempts=2, backoff_max_s=1.0) as ct:
        gate = asyncio.Semaphore(8)

        async def one(po: str) -> None:
            async with gate:
                number = order_number(po)
                order = await asyncio.wait_for(ct.get_order_by_number(number), timeout)
            out[po] = str(order.get("orderState") or "found") if order else "missing"

        try:
            await one(numbers[0])  # one probe: an unreachable project fails once, not N times
        except Exception as exc:
            return {}, f"{type(exc).__name__}: {str(exc)[:200]}"
        results = await asyncio.gather(*(one(n) for n in numbers[1:]), return_exceptions=True)
        for n, r in zip(numbers[1:], results, strict=True):
            if isinstance(r, BaseException):
                out[n] = "-"
    return out, None
