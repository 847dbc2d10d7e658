"""Outside APIs misbehaving under a running worker: the SP-API sandbox's fault injection
(429 storms, 5xx, slow answers, acknowledgement transactions ending in Failure) and a fault
proxy in front of the commercetools emulator (``tests/support/ctfaults.py``: 503 storms,
lost answers (504 after the update was applied), 409 storms from a concurrent writer, slow
answers, tokens that expire every few seconds and forced 401s), while the mixed workload of
``scenario.py`` runs.

Checks: nothing lost or doubled (the invariants of docs/reliability.md, every PO exactly one
acknowledgement content at the sandbox, lag 0); the rate limits were respected (every 429
the sandbox answered was an injected one: none came from its token buckets, which enforce
the same budget the worker is configured with); every failure surfaces as a metric on
``/metrics`` (``streams_spapi_responses_total``, ``streams_ct_responses_total``,
``streams_transaction_failures_total``) in exactly the numbers the sandbox and the proxy
answered, and a transaction Failure as the owned ``ack-transaction-failed`` exception on
``ops.exceptions``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from streams.adapters.kafka_admin import create_topics
from streams.sandbox.amazon import SandboxControl, running_sandbox
from tests.reliability.group import agent_crashes, lag_total, sandbox_ack_contents, settle_group
from tests.reliability.harness import sandbox_port, scrape, workload_sandbox, workload_settings
from tests.reliability.scenario import Scenario, assigned, ready
from tests.support.ctfaults import CtFaultProxy
from tests.support.kafka import produce, read_all
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.kafka, pytest.mark.ctmock, pytest.mark.slow]

SEED = int(os.environ.get("STREAMS_API_FAULTS_SEED", "7171"))
RATE, BURST = 5.0, 5  # the sandbox's budget per operation, and the worker's setting

SPAPI_OPS = ("getPurchaseOrders", "submitAcknowledgement", "getTransaction",
             "SubmitShipmentConfirmations", "submitInventoryUpdate")  # fmt: skip


async def sandbox_statuses(url: str) -> Counter[tuple[str, int]]:
    out: Counter[tuple[str, int]] = Counter()
    async with aiohttp.ClientSession() as http:
        seen = await SandboxControl(url, http).received()
    for e in seen:
        out[(str(e.get("operation")), int(e.get("status", 0)))] += 1
    return out


async def faults_left(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/_sandbox/faults") as r:
            data: dict[str, Any] = await r.json()
    left = {
        op: {k: v for k, v in f.items() if k in ("throttleNext", "failNext") and v}
        for op, f in data["operations"].items()
    }
    return {op: f for op, f in left.items() if f}


async def set_faults(url: str, faults: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as http:
        await SandboxControl(url, http).set_faults(faults)


async def until(cond: Any, timeout: float, step: Any = None) -> bool:
    """Until ``await cond()`` is true, running ``await step()`` between checks (traffic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await cond():
            return True
        if step is not None:
            await step()
        await asyncio.sleep(2.0)
    return bool(await cond())


async def test_api_faults_lose_nothing_and_surface(ct_api: str, kafka: str, tmp_path: Path) -> None:
    proxy = CtFaultProxy(ct_api, token_expires_in=10)
    proxy_url = await proxy.start()
    s = workload_settings(
        kafka, tmp_path, proxy_url, "faults", spapi_rate_per_s=RATE, spapi_burst=BURST
    )
    direct = s.model_copy(update={"ct_api_url": ct_api, "ct_auth_url": ct_api})
    await create_topics(s)
    config = workload_sandbox(s, rate_per_s=RATE, burst=BURST, enforce_rate_limits=True)
    started = time.monotonic()
    w = WorkerProcess(s, tmp_path / "worker.log")
    injected: Counter[str] = Counter()
    failing_po = ""
    try:
        async with running_sandbox(config, port=sandbox_port(s)) as url:
            sc = Scenario(direct, url, SEED)  # the test's own writes go straight to the emulator
            by_entry: dict[str, tuple[str, str]] = {}

            async def concurrent_writer(entry_id: str) -> None:
                """Another writer (storefront / ERP) changes the entry first: a real 409."""
                sku, ch = by_entry[entry_id]
                entry = await sc.change_stock(sku, ch, 3)
                await produce(s.kafka_bootstrap, s.topic_ct_messages, [(b"ct", sc.message(entry))])
                sc.counts["stock messages"] += 1
                sc.counts["concurrent writes"] += 1

            try:
                await sc.setup()
                by_entry = {eid: key for key, eid in sc.entries.items()}
                w.start()
                await ready(w)
                await sc.step()
                await assigned(w)

                # 1. SP-API 429 storms, then 5xx on every operation the worker uses
                storm = {"submitAcknowledgement": 6, "getPurchaseOrders": 4,
                         "getTransaction": 4, "SubmitShipmentConfirmations": 3}  # fmt: skip
                await set_faults(url, {"operations": {
                    op: {"throttleNext": n} for op, n in storm.items()}})  # fmt: skip
                injected["spapi 429"] += sum(storm.values())
                assert await until(lambda: _none(faults_left(url)), 90, sc.step), await faults_left(
                    url
                )
                errors = {"submitAcknowledgement": (3, 503), "getPurchaseOrders": (3, 500),
                          "getTransaction": (2, 503),
                          "SubmitShipmentConfirmations": (2, 502)}  # fmt: skip
                await set_faults(url, {"operations": {
                    op: {"failNext": n, "errorStatus": st}
                    for op, (n, st) in errors.items()}})  # fmt: skip
                injected["spapi 5xx"] += sum(n for n, _ in errors.values())
                assert await until(lambda: _none(faults_left(url)), 90, sc.step), await faults_left(
                    url
                )
                # 2. slow SP-API answers (1.5 s each, all operations) for two bursts
                await set_faults(url, {"operations": {"*": {"latencyMs": 1500}}})
                await sc.step()
                await sc.step()
                await set_faults(url, {"operations": {"*": {"latencyMs": 0}}})
                injected["spapi slow bursts"] += 2
                # 3. the next PO's acknowledgement transaction ends in Failure
                failing_po = f"CR{len(sc.po_numbers) + 1:06d}"
                await set_faults(url, {"transactionFailures": {"purchaseOrders": [failing_po]}})
                await sc.step()
                injected["spapi transaction failures"] += 1

                # 4. commercetools: 503 storm, lost answers, 409 storm, slow, 401s
                proxy.fail_next(4, 503)
                proxy.fail_next(2, 504, apply=True)  # applied, then the answer is lost
                proxy.conflict_next(5, concurrent_writer)
                proxy.delay_next(4, 1.5)
                proxy.force_401(3)

                async def proxy_done() -> bool:
                    return not any(proxy.pending().values())

                assert await until(proxy_done, 120, sc.step), proxy.pending()
                injected["ct 503"] += 4
                injected["ct 504 after applying"] += 2
                injected["ct 409 (concurrent writer)"] += 5
                injected["ct slow"] += 4
                injected["ct forced 401"] += 3
                await set_faults(url, {"clear": True})
                await sc.step()

                report, lag = await settle_group(s, sc, url)
                acks = await sandbox_ack_contents(url)
                statuses = await sandbox_statuses(url)
                m = scrape(w)
                alive = w.proc is not None and w.proc.poll() is None
                exceptions = [x.json() for x in await read_all(kafka, s.topic_exceptions)]
            finally:
                w.stop(timeout=15)
                await sc.close()
    finally:
        await proxy.stop()

    crashes = agent_crashes(w.log_path)
    ct_seen = Counter(e.status for e in proxy.log if not e.path.startswith("/oauth/"))
    metric_ct = {st: int(m.total("streams_ct_responses_total", status=str(st)))
                 for st in (401, 409, 503, 504)}  # fmt: skip
    sandbox_429 = sum(n for (op, st), n in statuses.items() if st == 429)
    print(
        f"api faults: {time.monotonic() - started:.0f}s, injected {dict(injected)}, workload "
        f"{dict(sc.counts)}, sandbox answers {dict(statuses)}, proxy answers {dict(ct_seen)} "
        f"(token renewals {sum(1 for e in proxy.log if e.path.startswith('/oauth/'))}), "
        f"ct metric {metric_ct}, invariants {'hold' if report.ok else 'VIOLATED'} "
        f"(checked {dict(report.checked)}), agent crashes {len(crashes)}"
    )
    assert alive, w.tail()
    assert lag_total(lag) == 0, lag
    assert crashes == [], "\n".join(crashes[:5])
    assert report.ok, report.summary()
    # nothing lost, nothing doubled at Amazon
    missing = set(sc.po_numbers) - set(acks)
    assert not missing, f"POs the sandbox never got an acknowledgement for: {sorted(missing)}"
    doubled = {po: len(c) for po, c in acks.items() if len(c) != 1}
    assert not doubled, doubled
    # rate limits: every 429 was an injected one, none came from the sandbox's buckets
    assert sandbox_429 == injected["spapi 429"], (sandbox_429, injected["spapi 429"])
    # every SP-API answer but 2xx surfaces in streams_spapi_responses_total, exactly
    for (op, st), n in statuses.items():
        if st >= 400 and op in SPAPI_OPS:
            got = int(m.total("streams_spapi_responses_total", operation=op, status=str(st)))
            assert got == n, f"{op} {st}: the sandbox answered {n}, /metrics shows {got}"
    # the transaction Failure: a metric and the owned exception
    assert m.total("streams_transaction_failures_total", kind="acknowledgement") >= 1
    kinds = {(e.get("kind"), (e.get("refs") or {}).get("purchaseOrderNumber")) for e in exceptions}
    assert ("ack-transaction-failed", failing_po) in kinds, sorted(kinds, key=str)[:20]
    # every commercetools failure surfaces in streams_ct_responses_total, exactly
    for st in (401, 409, 503, 504):
        assert metric_ct[st] == ct_seen[st], (st, metric_ct[st], ct_seen[st])
    assert ct_seen[503] == 4 and ct_seen[504] == 2 and ct_seen[401] >= 3
    assert ct_seen[409] >= 5


async def _none(coro: Any) -> bool:
    return not await coro
