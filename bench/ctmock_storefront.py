"""Storefront orders through the commercetools emulator and its Kafka subscription.

    python -m bench.ctmock_storefront [--orders 500] [--concurrency 8] [--skus 50]
                                      [--bootstrap HOST:PORT]

Starts an emulator of this tree on a free port (``streams.sandbox.ctmock.up``), a fresh
project with ``--skus`` inventory entries, and a Platform-format ConfluentCloud subscription
(OrderCreated + InventoryEntryQuantitySet messages) to a fresh topic. Then ``--orders``
``ReserveOnOrder`` storefront orders (cart + order, one line, via
``streams.sandbox.ctmock.storefront.place_order``) with ``--concurrency`` in flight.

Figures: orders/s, place_order latency (cart + order POSTs, p50/p99), delivery latency of each
OrderCreated record (its Kafka timestamp minus the time its place_order started, p50/p99/max),
records delivered vs expected, and the stock left (must equal the seed minus the orders).
Printed and written to ``bench/results/ctmock-storefront-<date>.json``. Needs a broker:
``--bootstrap`` or ``STREAMS_KAFKA_BOOTSTRAP``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from datetime import datetime
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from tests.support.services import free_port

from bench.harness import RESULTS, machine
from streams.config import Settings
from streams.sandbox import ctmock
from streams.sandbox.ctmock.storefront import (
    create_kafka_subscription,
    ensure_products,
    fetch_token,
    place_order,
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def consume(bootstrap: str, topic: str, want: int, timeout: float) -> list[Any]:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(out) < want and time.monotonic() < deadline:
            batch = await c.getmany(tp, timeout_ms=500)
            for msgs in batch.values():
                out.extend(msgs)
        return out
    finally:
        await c.stop()


async def run(a: argparse.Namespace, bootstrap: str, base: str) -> dict[str, Any]:
    project = f"bench-{uuid.uuid4().hex[:8]}"
    topic = f"ctmock-bench-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    root = f"{base}/{project}"
    async with aiohttp.ClientSession() as s:
        token = await fetch_token(s, base, "bench", "bench")
        hdr = {"Authorization": f"Bearer {token}"}
        skus = [f"BENCH-{i}" for i in range(a.skus)]
        seed = a.orders  # enough for every order on any SKU
        for sku in skus:
            async with s.post(
                f"{root}/inventory", json={"sku": sku, "quantityOnStock": seed}, headers=hdr
            ) as r:
                r.raise_for_status()
        await ensure_products(s, base, token, project, skus)
        await create_kafka_subscription(
            s, base, token, project, bootstrap, topic, "bench",
            messages=[{"resourceTypeId": "order", "types": ["OrderCreated"]}],
        )  # fmt: skip

        started: dict[str, float] = {}
        latencies: list[float] = []
        sem = asyncio.Semaphore(a.concurrency)

        async def one(i: int) -> None:
            async with sem:
                number = f"bench-{i}"
                t0 = time.time()
                started[number] = t0
                await place_order(
                    s,
                    base,
                    token,
                    project,
                    {skus[i % len(skus)]: 1},
                    "ReserveOnOrder",
                    order_number=number,
                    ensure=False,
                )
                latencies.append(time.time() - t0)

        t_start = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(a.orders)))
        elapsed = time.monotonic() - t_start

        records = await consume(bootstrap, topic, a.orders + 1, timeout=60)
        delivery: list[float] = []
        for rec in records:
            body = json.loads(rec.value)
            if body.get("type") != "OrderCreated":
                continue
            t0 = started.get(body["order"]["orderNumber"])
            if t0 is not None:
                delivery.append(rec.timestamp / 1000 - t0)
        left = 0
        async with s.get(f"{root}/inventory", params={"limit": "500"}, headers=hdr) as r:
            left = sum(e["availableQuantity"] for e in (await r.json())["results"])
    return {
        "benchmark": "ctmock-storefront",
        "at": datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "params": vars(a) | {"bootstrap": bootstrap},
        "orders_per_s": round(a.orders / elapsed, 1),
        "place_order_s": {
            "p50": round(pct(latencies, 0.5), 4),
            "p99": round(pct(latencies, 0.99), 4),
            "mean": round(statistics.mean(latencies), 4),
        },
        "delivery_s": {
            "p50": round(pct(delivery, 0.5), 4),
            "p99": round(pct(delivery, 0.99), 4),
            "max": round(max(delivery), 4) if delivery else None,
        },
        "delivered": len(delivery),
        "expected": a.orders,
        "stock_left": left,
        "stock_expected": a.skus * a.orders - a.orders,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.ctmock_storefront", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--orders", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--skus", type=int, default=50)
    ap.add_argument("--bootstrap", default=os.environ.get("STREAMS_KAFKA_BOOTSTRAP"))
    ap.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    a = ap.parse_args(argv)
    if not a.bootstrap:
        print("a broker is needed: --bootstrap or STREAMS_KAFKA_BOOTSTRAP", file=sys.stderr)
        return 2
    bootstrap = a.bootstrap
    port = free_port()
    settings = Settings(ct_mock_port=port)
    if ctmock.up(settings, port=port) != 0:
        return 1
    try:
        res = asyncio.run(run(a, bootstrap, f"http://127.0.0.1:{port}"))
    finally:
        ctmock.down(settings, port=port)
    rows = [
        ("orders", f"{a.orders} ({a.concurrency} in flight, {a.skus} SKUs)"),
        ("orders/s", res["orders_per_s"]),
        (
            "place_order p50 / p99 s",
            f"{res['place_order_s']['p50']} / {res['place_order_s']['p99']}",
        ),
        (
            "delivery p50 / p99 / max s",
            " / ".join(str(res["delivery_s"][k]) for k in ("p50", "p99", "max")),
        ),
        ("OrderCreated delivered", f"{res['delivered']} of {res['expected']}"),
        ("stock left", f"{res['stock_left']} (expected {res['stock_expected']})"),
    ]
    for name, value in rows:
        print(f"{name:<28} {value}")
    if not a.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"ctmock-storefront-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps(res, indent=2) + "\n")
        print(f"results: {out}")
    ok = res["delivered"] == res["expected"] and res["stock_left"] == res["stock_expected"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
