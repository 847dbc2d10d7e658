"""DF order intake speed: the DF poller's rules (``DfPollCore``) with the real SP-API client
against the local sandbox over HTTP, Amazon's usage plans enforced (10/s burst 10 per
operation, createRestrictedDataToken 1/s burst 10), orders redacted as they are published
to an in-memory sink (no Kafka: this measures the Amazon side).

    .venv/bin/python -m bench.df_poll                      # 5000 orders, 2 warehouses
    .venv/bin/python -m bench.df_poll --orders 20000 --warehouses 4

Prints orders/s, pages, 429s and RDT requests; a JSON copy goes to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aiohttp

from bench.inventory import save_result
from streams.adapters.spapi import PATHS, CountingHooks, SpApiClient
from streams.agents.df_poller import DfPollCore, DfPollState, Records
from streams.app import SPAPI_RATE_HEADROOM
from streams.config import Settings
from streams.sandbox.amazon import SandboxConfig, SandboxControl, running_sandbox


async def run(orders: int, warehouses: int) -> dict[str, Any]:
    whs = tuple(f"WH-B{i}" for i in range(1, warehouses + 1))
    config = SandboxConfig(order_count=0, df_order_count=0, include_amazon_examples=False)
    async with running_sandbox(config) as url, aiohttp.ClientSession() as http:
        control = SandboxControl(url, http)
        per = orders // warehouses
        for i, wh in enumerate(whs):
            for j in range(0, per, 500):
                await control.add_df_orders(
                    count=min(500, per - j), warehouse=wh, seed=i * 1000 + j
                )
        s = Settings(spapi_endpoint=url, spapi_lwa_url=url + "/auth/o2/token", df_enabled=True,
                     df_ship_from_party_ids=whs)  # fmt: skip
        hooks = CountingHooks()
        published: list[str] = []
        saved = 0

        async def publish(number: str, order: dict[str, Any]) -> None:
            published.append(number)

        async def save(records: Records) -> None:
            nonlocal saved
            saved += len(records)

        # the worker's client: 90% of each plan, one burst token short (streams.app)
        rate = s.spapi_rate_per_s * SPAPI_RATE_HEADROOM
        limits = {op: (rate, max(1, s.spapi_burst - 1)) for op in PATHS}
        async with SpApiClient(s, hooks=hooks, rate_limits=limits) as client:
            core = DfPollCore(s, lambda: client, publish, save)
            started = time.perf_counter()
            await core.poll_once(DfPollState())
            seconds = time.perf_counter() - started
        statuses = await control.statuses("getOrders")
        return {
            "orders": len(published),
            "unique": len(set(published)),
            "warehouses": warehouses,
            "seconds": round(seconds, 3),
            "orders_per_s": round(len(published) / seconds, 1),
            "pages": statuses.count(200),
            "throttled_429": statuses.count(429),
            "rdt_requests": len(await control.statuses("createRestrictedDataToken")),
            "state_records": saved,
        }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=5000)
    p.add_argument("--warehouses", type=int, default=2)
    a = p.parse_args()
    res = asyncio.run(run(a.orders, a.warehouses))
    print(json.dumps(res, indent=1))
    print("saved", save_result("df_poll", res))


if __name__ == "__main__":
    main()
