"""Storefront-order benchmark: commercetools order -> Amazon delta, hold settled, and what the
re-reads and the changed-since sweep cost commercetools.

    python -m bench.storefront [--skus K] [--rate R] [--lines L] [--duration D] [--ct-delay S]
                               [--sweep-changes N] [--bootstrap HOST:PORT] [--ct-url URL]

One broker, one commercetools emulator (started on a free port unless ``--ct-url``), one fresh
topic set and app id, one ``streams worker`` whose commercetools client talks to the emulator
through a counting proxy in this process (so every request is attributed to the re-reader,
the sweep or anything else by its query predicate):

1. catalogue: K inventory entries on one channel created in the emulator over HTTP, their
   mappings on ``master.sku-mappings`` and ``InventoryEntryCreated`` on ``ct.messages``; wait
   until every SKU was published once;
2. orders: R ``OrderCreated`` (ReserveOnOrder) per second for D s, each of L distinct random
   SKUs x 1 unit; each touched entry is decremented in the emulator ``--ct-delay`` +- 3 s
   later with no message, as commercetools does;
3. per line: order produced -> first ``amazon.inventory-updates`` record for the SKU that
   reflects it (provisional), and -> the hold ending in the SKU's state (read from the
   ``<app>-skus-changelog``: settled when the entry version moved past the hold's);
4. sweep only: N silent changes per minute, no orders: what the sweep alone asks, and how
   long a silent change takes to reach Amazon.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import shlex
import shutil
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from tests.support import storefront as sf
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

import bench.harness as h
from bench.ctproxy import CountingProxy
from bench.po_phase import create_internal_topics
from bench.po_report import pct
from bench.storefront_report import (
    Deltas,
    cost_model,
    hold_endings,
    shown,
    sweep_formula,
    table,
    under_offered,
)
from streams.adapters.commercetools import CommercetoolsClient
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings

RECORDED = (  # the run's arguments and the worker settings the figures depend on
    "skus rate lines duration ct_delay sweep_changes sweep_duration stock concurrency seed"
).split()
SETTINGS = (
    "app_id partitions debounce_window_s ct_order_settle_delay_s ct_order_reread_jitter_s "
    "ct_reread_batch ct_reread_tick_s ct_sweep_interval_s ct_sweep_overlap_s ct_sweep_grace_s"
).split()


# --------------------------------------------------------------------------------------
# commercetools side: the catalogue in the emulator, and silent changes
# --------------------------------------------------------------------------------------
@dataclass
class Catalogue:
    skus: list[str]
    channel: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    locks: dict[int, asyncio.Lock] = field(default_factory=dict)
    gone: dict[int, list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))
    late: list[float] = field(default_factory=list)  # per silent change: s after it was due
    failures: Counter[str] = field(default_factory=Counter)

    def take(self, i: int, at: float) -> None:
        """One more unit of SKU i gone at ``at``: Amazon must be offered one less from then."""
        units = self.gone[i]
        units.append((at, (units[-1][1] if units else 0) + 1))


async def create_entries(ct: CommercetoolsClient, cat: Catalogue, stock: int, conc: int) -> float:
    sem = asyncio.Semaphore(conc)
    ref = {"typeId": "channel", "id": cat.channel}

    async def one(sku: str) -> dict[str, Any]:
        async with sem:
            draft = {"sku": sku, "quantityOnStock": stock, "supplyChannel": ref}
            return await ct.create_inventory_entry(draft)

    t0 = time.perf_counter()
    cat.entries = list(await asyncio.gather(*(one(sku) for sku in cat.skus)))
    return time.perf_counter() - t0


def one_less(e: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"action": "changeQuantity", "quantity": e["quantityOnStock"] - 1}]


async def decrement(ct: CommercetoolsClient, cat: Catalogue, i: int, due: float) -> float:
    """One unit less on SKU i's entry at its version (re-decided on a 409), with no message:
    what commercetools does for an order. Returns when it was done."""
    async with cat.locks.setdefault(i, asyncio.Lock()):
        e = cat.entries[i]
        try:
            cat.entries[i] = await ct.update_inventory(
                e["id"], e["version"], one_less(e), decide=one_less
            )
        except Exception as exc:
            cat.failures[type(exc).__name__] += 1
            raise
    done = time.time()
    cat.late.append(max(0.0, done - due))
    return done


def created(entry: dict[str, Any]) -> bytes:
    """The InventoryEntryCreated message commercetools sends for ``entry``."""
    return orjson.dumps(
        {"notificationType": "Message", "projectKey": "bench", "id": str(uuid.uuid4()),
         "version": 1, "sequenceNumber": 1, "resourceVersion": entry["version"],
         "resource": {"typeId": "inventory-entry", "id": entry["id"]},
         "type": "InventoryEntryCreated", "inventoryEntry": entry,
         "createdAt": entry["createdAt"]}
    )  # fmt: skip


def counters(port: int) -> dict[str, float]:
    m = h.scrape(port)
    out = {f"holds_{o}": h.metric_sum(m, "streams_order_holds_total", outcome=o)
           for o in ("placed", "duplicate", "settled", "expired")}  # fmt: skip
    for r in ("ok", "error"):
        out[f"rereads_{r}"] = h.metric_sum(m, "streams_ct_rereads_total", result=r)
    out["sweep_entries"] = h.metric_sum(m, "streams_ct_sweep_entries_total")
    for k in ("expected", "missed"):
        out[f"sweep_findings_{k}"] = h.metric_sum(m, "streams_ct_sweep_findings_total", kind=k)
    for (name, lbl), v in m.items():
        if name == "streams_ct_responses_total":
            out["ct_responses {operation} {status}".format(**dict(lbl))] = v
    for q in (0.5, 0.99):
        name = "streams_storefront_to_amazon_seconds"
        out[f"storefront_histogram_p{int(q * 100)}_le_s"] = h.histogram_quantile(m, name, q) or 0
    return out


def diff(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: round(b.get(k, 0) - a.get(k, 0), 1) for k in sorted(set(a) | set(b))}


def rss_mib(pid: int | None) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (OSError, TypeError):
        return None
    kb = next((int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS:")), 0)
    return round(kb / 1024, 1)


# --------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------
def bench_settings(bootstrap: str, work: Path, a: argparse.Namespace, ct: str, api: str) -> Any:
    s = h.bench_settings(bootstrap, work, a)  # fresh topics and app id, SP-API flows off
    project = f"{s.app_id}-project"
    return s.model_copy(
        update={
            "ct_api_url": api,  # through the counting proxy
            "ct_auth_url": ct,
            "ct_project_key": project,
            "ct_scopes": f"manage_project:{project}",
            # the full reconcile is off: over the emulator (which ignores sort) each of its
            # slices becomes an offset scan of the whole catalogue; its cost is stated instead
            "reconcile_interval_s": 10 * 365 * 86400.0,
        }
    )


@dataclass
class Run:
    a: argparse.Namespace
    s: Settings
    ct: CommercetoolsClient
    proxy: CountingProxy
    w: WorkerProcess
    pids: dict[str, int]
    rng: random.Random
    cat: Catalogue | None = None

    async def until(self, cond: Any, what: str) -> float:
        """Seconds until ``await cond()`` holds (the worker must stay up)."""
        t0, deadline = time.time(), time.monotonic() + self.a.timeout
        while time.monotonic() < deadline:
            if self.w.proc is not None and self.w.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.w.tail()}")
            if await cond():
                return time.time() - t0
            await asyncio.sleep(0.5)
        raise TimeoutError(f"{what} not within {self.a.timeout:.0f}s: {self.w.tail()}")

    async def catalogue(self) -> dict[str, Any]:
        a, s, bs = self.a, self.s, self.s.kafka_bootstrap
        await create_topics(s)
        await create_internal_topics(s)
        chan = await self.ct.create_channel({"key": f"wh-{s.app_id}", "roles": ["InventorySupply"]})
        cat = self.cat = Catalogue([f"SKU-{i:07d}" for i in range(a.skus)], chan["id"])
        took = await create_entries(self.ct, cat, a.stock, a.concurrency)
        print(f"[bench] {a.skus} entries created in {took:.1f}s", flush=True)
        out = {"entries": a.skus, "create_s": round(took, 1), "concurrency": a.concurrency,
               "creates_per_s": round(a.skus / took, 1), "emulator_rss_mib": rss_mib(
                   self.pids.get("emulator"))}  # fmt: skip
        maps = [(sku.encode(), h.mapping_record(i, sku)) for i, sku in enumerate(cat.skus)]
        await h.produce_all(bs, s.topic_sku_mappings, maps)
        await h.produce_all(bs, s.topic_ct_messages, [(b"ct", created(e)) for e in cat.entries])
        t_start = time.time()
        self.w.start()
        assert self.w.proc is not None
        self.pids["worker"] = self.w.proc.pid
        self.w.wait_ready(timeout=120)
        published: set[str] = set()

        async def all_published() -> bool:
            m = h.scrape(s.web_port)
            if h.metric_sum(m, "streams_records_total", topic=s.topic_ct_messages) < a.skus:
                return False
            if h.metric_sum(m, "streams_queue_length", queue="deltas") > 0:
                return False
            recs = await h.read_topic(bs, s.topic_inventory_updates)
            published.update(sku for sku, _, _ in h.deltas_of(recs))
            return len(published) >= a.skus

        await self.until(all_published, "every SKU published")
        out["worker_start_to_all_published_s"] = round(time.time() - t_start, 1)

        # the sweep's first window (STREAMS_CT_SWEEP_INITIAL_LOOKBACK_S) holds the whole new
        # catalogue; its bundles would queue ahead of the first orders' holds
        async def swept() -> bool:
            return counters(s.web_port)["sweep_entries"] >= a.skus

        await self.until(swept, "the sweep's first window")
        out["worker_start_to_first_sweep_done_s"] = round(time.time() - t_start, 1)
        out["first_sweep_requests"] = self.proxy.counts["sweep"]
        return out

    async def orders(self, ordered: dict[str, float], events: set[float]) -> dict[str, Any]:
        a, s, ct, cat = self.a, self.s, self.ct, self.cat
        assert cat is not None
        tasks: list[asyncio.Task[float]] = []

        async def later(i: int, due: float) -> float:
            await asyncio.sleep(max(0.0, due - time.time()))
            return await decrement(ct, cat, i, due)

        c0, p0, meter = counters(s.web_port), Counter(self.proxy.counts), h.Meter(**self.pids)
        producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, linger_ms=5)
        await producer.start()
        n_orders, n_lines = int(a.rate * a.duration), int(a.rate * a.duration) * a.lines
        try:
            t0 = time.monotonic()
            for n in range(n_orders):
                await asyncio.sleep(max(0.0, t0 + n / a.rate - time.monotonic()))
                picks = self.rng.sample(range(a.skus), a.lines)
                lines = [sf.line_item(cat.skus[i], 1, cat.channel) for i in picks]
                o = sf.order(lines, mode="ReserveOnOrder")
                msg = sf.order_created(o)
                msg["createdAt"] = msg["lastModifiedAt"] = h.iso_now()
                at = time.time()
                await producer.send(s.topic_ct_messages, orjson.dumps(msg), key=b"ct")
                events.add(at)
                for i, li in zip(picks, lines, strict=True):
                    ordered[f"{o['id']}:{li['id']}"] = at
                    cat.take(i, at)
                    delay = self.rng.uniform(max(0.0, a.ct_delay - 3), a.ct_delay + 3)
                    tasks.append(asyncio.create_task(later(i, at + delay)))
            send_s = time.monotonic() - t0
            await producer.flush()
        finally:
            await producer.stop()
        done = await asyncio.gather(*tasks, return_exceptions=True)

        async def holds_ended() -> bool:
            c = diff(c0, counters(s.web_port))
            return c["holds_placed"] >= n_lines <= c["holds_settled"] + c["holds_expired"]

        drain = await self.until(holds_ended, "every hold ended")
        await asyncio.sleep(s.debounce_window_s + 1.5)
        per_min = n_lines / a.duration * 60
        return {
            "orders": n_orders, "lines": n_lines, "changes_per_min": round(per_min),
            "formula_sweep_requests_per_min": sweep_formula(per_min, s),
            "send_s": round(send_s, 2),
            "silent_changes_ok": sum(isinstance(x, float) for x in done),
            "silent_changes_failed": dict(cat.failures), "silent_change_late_s": pct(cat.late),
            "last_order_to_holds_ended_s": round(drain, 1),
            "counters": diff(c0, counters(s.web_port)),
            "requests_by_flow": dict(Counter(self.proxy.counts) - p0), **meter.read(),
        }  # fmt: skip

    async def sweep_only(self, events: set[float]) -> dict[str, Any]:
        """Silent changes at ``--sweep-changes``/min and no orders: only the sweep reads."""
        a, s, cat = self.a, self.s, self.cat
        assert cat is not None
        await asyncio.sleep(s.ct_sweep_overlap_s)  # the order phase's changes leave the window
        c0, p0, meter = counters(s.web_port), Counter(self.proxy.counts), h.Meter(**self.pids)
        tick0 = len(self.proxy.times["sweep"])

        async def silent(i: int) -> None:
            at = await decrement(self.ct, cat, i, time.time())
            cat.take(i, at)
            events.add(at)

        t0, changes = time.monotonic(), []
        for n in range(int(a.sweep_changes * a.sweep_duration / 60)):
            await asyncio.sleep(max(0.0, t0 + n * 60 / a.sweep_changes - time.monotonic()))
            changes.append(asyncio.create_task(silent(self.rng.randrange(a.skus))))
        await asyncio.gather(*changes, return_exceptions=True)
        elapsed = time.monotonic() - t0
        await asyncio.sleep(s.ct_sweep_interval_s + s.ct_sweep_grace_s + s.debounce_window_s + 3)
        minutes = (time.monotonic() - t0) / 60
        by_flow = dict(Counter(self.proxy.counts) - p0)
        sweeps = self.proxy.times["sweep"][tick0:]
        ticks = [x for j, x in enumerate(sweeps) if j == 0 or x - sweeps[j - 1] > 2]
        return {
            "changes": len(events), "changes_per_min": round(len(events) / elapsed * 60),
            "minutes_counted": round(minutes, 2), "requests_by_flow": by_flow,
            "sweep_requests_per_min": round(by_flow.get("sweep", 0) / minutes, 1),
            "formula_requests_per_min": sweep_formula(a.sweep_changes, s),
            "sweep_ticks": len(ticks), "tick_gaps_s": pct([b - a for a, b in pairwise(ticks)]),
            "counters": diff(c0, counters(s.web_port)), **meter.read(),
        }  # fmt: skip


async def amain(a: argparse.Namespace, bootstrap: str, broker_pid: int | None) -> dict[str, Any]:
    from streams.sandbox import ctmock

    stamp = dt.datetime.now(dt.UTC)
    work = h.RUN_ROOT / f"sf-{stamp.strftime('%Y%m%d-%H%M%S')}"
    work.mkdir(parents=True, exist_ok=True)
    emu_port = None if a.ct_url else free_port()
    ct_url = a.ct_url or f"http://127.0.0.1:{emu_port}"
    proxy, proxy_port = CountingProxy(ct_url), free_port()
    s = bench_settings(bootstrap, work, a, ct_url, f"http://127.0.0.1:{proxy_port}")
    if emu_port is not None and ctmock.up(s, port=emu_port) != 0:
        raise SystemExit("the commercetools emulator did not start")
    pids = {"bench_and_proxy": os.getpid()}
    local_ct = "127.0.0.1" in ct_url and h.pid_listening(int(ct_url.rsplit(":", 1)[1]))
    pids.update({k: v for k, v in (("broker", broker_pid), ("emulator", local_ct)) if v})
    res: dict[str, Any] = {
        "date": stamp.isoformat(timespec="seconds"),
        "command": "python -m bench.storefront " + " ".join(shlex.quote(x) for x in sys.argv[1:]),
        "machine": h.machine(), "product_version": h.product_version(), "broker": bootstrap,
        "commercetools": ct_url + ("" if a.ct_url else " (emulator started by the bench)"),
        "config": {**{k: getattr(a, k) for k in RECORDED}, **{k: getattr(s, k) for k in SETTINGS}},
        "workdir": str(work),
    }  # fmt: skip
    print(f"[bench] topics *.{s.app_id}, commercetools {ct_url} {s.ct_project_key}", flush=True)
    w = WorkerProcess(s, work / "worker.log")
    try:
        async with CommercetoolsClient(s.model_copy(update={"ct_api_url": ct_url})) as ct:
            await proxy.start(proxy_port)
            run = Run(a, s, ct, proxy, w, pids, random.Random(a.seed))
            res["catalogue"] = await run.catalogue()
            print(f"[bench] every SKU published: {res['catalogue']}", flush=True)
            ordered: dict[str, float] = {}  # hold key -> when its order was produced
            order_events: set[float] = set()
            silent_events: set[float] = set()
            res["orders"] = await run.orders(ordered, order_events)
            print(f"[bench] orders: {res['orders']['requests_by_flow']}", flush=True)
            if a.sweep_duration > 0:
                res["sweep_only"] = await run.sweep_only(silent_events)
            await outcome(run, res, ordered, order_events, silent_events)
    finally:
        await proxy.stop()
        w.stop()
        res["worker_log"] = h.log_summary(work / "worker.log")
        if emu_port is not None:
            ctmock.down(s, port=emu_port)
        if not a.keep_state:
            shutil.rmtree(work / "worker-data", ignore_errors=True)
    return res


async def outcome(
    run: Run, res: dict[str, Any], ordered: dict[str, float], orders: set[float], silent: set[float]
) -> None:
    s, cat, stock = run.s, run.cat, run.a.stock
    assert cat is not None
    deltas: Deltas = defaultdict(list)
    for sku, amount, ts in h.deltas_of(
        await h.read_topic(s.kafka_bootstrap, s.topic_inventory_updates)
    ):
        deltas[sku].append((ts / 1000, amount))  # fmt: skip
    o, window = res["orders"], s.debounce_window_s
    got = shown(deltas, cat.skus, cat.gone, stock, orders)
    took = got.pop("took")
    o["provisional"] = got
    o["provisional_beyond_window_s"] = pct([max(0.0, x - window) for x in took])
    o["provisional_within_window_plus_1s"] = sum(1 for x in took if x <= window + 1)
    changelog = await h.read_topic(s.kafka_bootstrap, f"{s.app_id}-skus-changelog")
    o["hold_ended"] = hold_endings(changelog, ordered)
    o["under_offered"] = under_offered(deltas, cat.skus, cat.gone, stock)
    if "sweep_only" in res:
        res["sweep_only"]["silent_change_to_amazon"] = got = shown(
            deltas, cat.skus, cat.gone, stock, silent
        )
        got.pop("took")
    res["emulator_answer_s"] = {k: pct(v) for k, v in run.proxy.seconds.items()}
    res["requests_by_status"] = dict(run.proxy.statuses)
    res["emulator_rss_mib_at_end"] = rss_mib(run.pids.get("emulator"))
    res["cost_model"] = cost_model(s, o["changes_per_min"], run.a.sweep_changes)


OPTIONS: list[tuple[str, type, Any, str]] = [
    ("--skus", int, 50_000, "inventory entries (one per SKU)"),
    ("--rate", float, 50.0, "orders per second"),
    ("--lines", int, 3, "lines per order (distinct SKUs, 1 unit each)"),
    ("--duration", float, 60.0, "seconds of orders"),
    ("--ct-delay", float, 5.0, "each line's silent change this +- 3 s after its order"),
    ("--sweep-changes", float, 3000.0, "sweep-only phase: silent changes per minute"),
    ("--sweep-duration", float, 60.0, "sweep-only phase: seconds (0 skips it)"),
    ("--stock", int, 1000, "units per entry at the start"),
    ("--concurrency", int, 16, "entry creates in flight"),
    ("--partitions", int, Settings.model_fields["partitions"].default, "STREAMS_PARTITIONS"),
    ("--debounce-window", float, Settings.model_fields["debounce_window_s"].default,
     "STREAMS_DEBOUNCE_WINDOW_S"),
    ("--bootstrap", str, os.environ.get("STREAMS_KAFKA_BOOTSTRAP"),
     "Kafka to use (default: start a local one on free ports)"),
    ("--ct-url", str, None, "a running commercetools emulator (default: start one)"),
    ("--timeout", float, 900.0, "seconds per wait at most"),
    ("--seed", int, 1, "random seed"),
]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.storefront",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for flag, typ, default, text in OPTIONS:
        ap.add_argument(flag, type=typ, default=default, help=text)
    ap.add_argument("--keep-state", action="store_true", help="keep the worker's RocksDB dir")
    ap.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    a = ap.parse_args(argv)
    if a.lines > a.skus:
        raise SystemExit("--lines must not exceed --skus")
    with h.broker(a.bootstrap) as (bootstrap, broker_pid):
        res = asyncio.run(amain(a, bootstrap, broker_pid))
    print()
    print(table(res))
    if not a.no_save:
        print(f"\nresults: {h.save_result('storefront', res)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
