"""One state-at-scale phase: a worker started on the filled changelogs, watched from start
to recovered (log milestones, /health, RSS, a probe event's delta) and stopped."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from tests.support.worker import WorkerProcess

import bench.harness as h
from bench.harness import (
    Meter,
    metric_sum,
    scrape,
    start_profiler,
)
from bench.state_scale_fill import StateGen
from bench.state_scale_report import stop_profiler_buckets, streams_source
from streams.config import Settings


# --------------------------------------------------------------------------------------
# one worker start, measured
# --------------------------------------------------------------------------------------
class RssSampler(threading.Thread):
    """VmRSS of ``pid`` every ``every`` s; VmHWM (the kernel's peak RSS) at the end."""

    def __init__(self, pid: int, t0: float, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.t0, self.every = pid, t0, every
        self.samples: list[tuple[float, int]] = []  # (s since start, RSS MiB)
        self.hwm_mib = 0
        self.stop_ev = threading.Event()

    def status(self) -> dict[str, int]:
        out = {}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0]) // 1024
        return out

    def run(self) -> None:
        while not self.stop_ev.is_set():
            st = self.status()
            if "VmRSS" in st:
                self.samples.append((round(time.time() - self.t0, 2), st["VmRSS"]))
                self.hwm_mib = max(self.hwm_mib, st.get("VmHWM", 0))
            self.stop_ev.wait(self.every)

    def finish(self) -> dict[str, Any]:
        st = self.status()  # read before the process ends
        self.stop_ev.set()
        self.join(5)
        self.hwm_mib = max(self.hwm_mib, st.get("VmHWM", 0))
        peak_at = max(self.samples, key=lambda x: x[1]) if self.samples else (None, None)
        # a compact series: one sample per second at most
        series: list[tuple[float, int]] = []
        for t, r in self.samples:
            if not series or t - series[-1][0] >= 1.0:
                series.append((t, r))
        return {
            "peak_rss_mib": self.hwm_mib,
            "peak_sampled_at_s": peak_at[0],
            "rss_at_end_mib": st.get("VmRSS"),
            "rss_anon_at_end_mib": st.get("RssAnon"),
            "rss_file_at_end_mib": st.get("RssFile"),
            "rss_series_mib": series,
        }


LOG_TS = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] \[\d+\] \[(\w+)\] (.*)$")


MILESTONES = {
    "restoring": "Restoring state from changelog topics",
    "done_reading": "Done reading from changelog topics",
    "recovery_complete": "Recovery complete",
    "worker_ready": "Worker ready",
}


def log_milestones(path: Path, since_byte: int, t0: float) -> dict[str, Any]:
    """Seconds from the process start to Faust's recovery log lines (last occurrence)."""
    out: dict[str, Any] = {}
    overlap = re.compile(r"Timer (\S+) is overlapping \(interval=[\d.]+ runtime=([\d.]+)")
    timers: dict[str, float] = {}
    with path.open("rb") as fh:
        fh.seek(since_byte)
        for raw in fh:
            line = raw.decode(errors="replace").rstrip("\n")
            m = LOG_TS.match(line)
            if not m:
                continue
            ts = dt.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            for name, text in MILESTONES.items():
                if text in m[3]:
                    out[name] = round(ts - t0, 2)
            if o := overlap.search(m[3]):
                timers[o[1]] = max(timers.get(o[1], 0.0), round(float(o[2]), 2))
    out["timers_overlapping_max_runtime_s"] = timers
    return out


def health(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return json.loads(r.read()) if r.status == 200 else None
    except (OSError, ValueError):
        return None


async def probe_event(s: Settings, gen: StateGen, i: int, step: int) -> tuple[str, int]:
    """Produce one new stock change for SKU i; returns (sku, the amount Amazon must be told)."""
    ds = h.Dataset([gen.sku(i)], gen.channel_ids)
    for c in range(gen.c):
        eid, version, available, on_stock = gen.entry(i, c)
        ds.entries[(0, c)] = h.Entry(eid, version + step - 1, available, on_stock)
    e = ds.entry(0, 0)
    raw = ds.quantity_set(0, 0, e.available + 7 * step, h.iso_now())
    p = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks=1)
    await p.start()
    try:
        await p.send_and_wait(s.topic_ct_messages, raw, key=b"ct")
    finally:
        await p.stop()
    return gen.sku(i), ds.total(0)


class DeltaWatch:
    """Deltas on amazon.inventory-updates from now on: sku -> [(amount, kafka ts s)]."""

    def __init__(self, s: Settings) -> None:
        self.s = s
        self.seen: dict[str, list[tuple[int, float]]] = {}
        self.count = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        c = self.c = AIOKafkaConsumer(
            bootstrap_servers=self.s.kafka_bootstrap, enable_auto_commit=False
        )
        await c.start()
        await c._client.force_metadata_update()
        topic = self.s.topic_inventory_updates
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        c.assign(tps)
        await c.seek_to_end(*tps)
        for tp in tps:
            await c.position(tp)
        self._task = asyncio.create_task(self._run(tps))

    async def _run(self, tps: list[TopicPartition]) -> None:
        while not self._stop.is_set():
            try:
                batch = await self.c.getmany(*tps, timeout_ms=100)
            except KafkaError as exc:  # a slow broker (the fill, a busy machine): try again
                print(f"[bench] delta watch: {exc!r}", file=sys.stderr, flush=True)
                await asyncio.sleep(0.5)
                continue
            for msgs in batch.values():
                for r in msgs:
                    v = orjson.loads(r.value)
                    self.count += 1
                    self.seen.setdefault(v["sku"], []).append(
                        (v["availableQuantity"]["amount"], r.timestamp / 1000)
                    )

    def when(self, sku: str, amount: int) -> float | None:
        for a, ts in self.seen.get(sku, ()):
            if a == amount:
                return ts
        return None

    async def stop(self) -> None:
        self._stop.set()
        if self._task:
            await self._task
        with contextlib.suppress(KafkaError, asyncio.CancelledError):
            await self.c.stop()


async def run_phase(
    name: str,
    s: Settings,
    gen: StateGen,
    probe_sku: int,
    step: int,
    work: Path,
    a: argparse.Namespace,
    broker_pid: int | None,
    pythonpath: str | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Start the worker, measure it to ready and ``--settle`` s beyond, stop it. Past
    ``timeout`` the phase ends with ``ready_s`` None and the recovery progress so far."""
    log = work / "worker.log"
    since = log.stat().st_size if log.exists() else 0
    data = Path(s.data_dir)
    res: dict[str, Any] = {
        "phase": name,
        "data_dir_mib_before": round(du(data) / 2**20, 1),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }
    watch = DeltaWatch(s)
    await watch.start()
    sku, amount = await probe_event(s, gen, probe_sku, step)
    res["probe"] = {"sku": sku, "amount": amount}
    w = WorkerProcess(s, log)
    saved = os.environ.get("PYTHONPATH")
    if pythonpath is not None:
        os.environ["PYTHONPATH"] = pythonpath  # the worker runs this product code
        res["pythonpath"] = pythonpath
        res["product"] = streams_source(Path(pythonpath.split(os.pathsep)[0]))
    t0 = time.time()
    try:
        w.start()
    finally:
        if pythonpath is not None:
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved
    assert w.proc is not None
    pid = w.proc.pid
    pids = {"worker": pid, **({"broker": broker_pid} if broker_pid else {})}
    meter = Meter(**pids)
    rss = RssSampler(pid, t0)
    rss.start()
    spy = start_profiler(pid, work / f"profile-{name}.txt") if a.profile else None
    t_web = t_ready_health = t_applied = t_delta = None
    last_ok: float | None = None
    stall = 0.0
    deadline = time.monotonic() + (timeout or a.timeout)
    settle_until: float | None = None
    ct = s.topic_ct_messages
    try:
        while time.monotonic() < deadline:
            if w.proc.poll() is not None:
                raise RuntimeError(f"worker exited {w.proc.returncode}: {w.tail()}")
            hv = await asyncio.to_thread(health, s.web_port)
            now = time.time()
            if hv is not None:
                if last_ok is not None:
                    stall = max(stall, now - last_ok)
                last_ok = now
                t_web = t_web or now
                if t_ready_health is None and not hv.get("rebalancing"):
                    ms = log_milestones(log, since, t0)
                    if "recovery_complete" in ms:
                        t_ready_health = now
                if t_applied is None:
                    with contextlib.suppress(OSError):
                        m = await asyncio.to_thread(scrape, s.web_port)
                        if metric_sum(m, "streams_records_total", topic=ct, outcome="applied"):
                            t_applied = time.time()
            if t_delta is None:
                t_delta = watch.when(sku, amount)
                if t_delta is not None:
                    settle_until = time.monotonic() + a.settle
            if settle_until is not None and time.monotonic() >= settle_until:
                break
            await asyncio.sleep(0.1)
        usage = meter.read()
        mem = rss.finish()
    finally:
        if spy is not None:
            res["profile"] = stop_profiler_buckets(spy, work / f"profile-{name}.txt")
        t_stop = time.time()
        w.stop(timeout=120)
        res["stop_s"] = round(time.time() - t_stop, 2)
        await watch.stop()
    if t_delta is None:
        if timeout is None:
            raise TimeoutError(f"{name}: no probe delta within {a.timeout:.0f}s: {w.tail()}")
        res.update(recovery_progress(log, since, t0))
        t_delta = t0 - s.debounce_window_s  # nothing published: the figures below are None

    def since0(t: float | None) -> float | None:
        return round(t - t0, 2) if t is not None else None

    done = "timed_out_after_s" not in res
    res.update(
        {
            "ready_s": since0(t_delta) if done else None,
            "ready_minus_debounce_window_s": round(t_delta - t0 - s.debounce_window_s, 2)
            if done
            else None,
            "web_up_s": since0(t_web),
            "recovered_and_not_rebalancing_s": since0(t_ready_health),
            "probe_applied_s": since0(t_applied),
            "probe_delta_s": since0(t_delta) if done else None,
            "faust_log_s": log_milestones(log, since, t0),
            "longest_health_stall_s": round(stall, 2),
            "deltas_seen": watch.count,
            "settle_s": a.settle,
            **mem,
            **usage,
            "data_dir_mib_after": round(du(data) / 2**20, 1),
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        }
    )
    return res


REMAINING = re.compile(r"total remaining=(\d+)")


def recovery_progress(path: Path, since_byte: int, t0: float) -> dict[str, Any]:
    """When a phase timed out: Faust's "total remaining" over time, and the rate it gives."""
    points: list[tuple[float, int]] = []
    with path.open("rb") as fh:
        fh.seek(since_byte)
        for raw in fh:
            line = raw.decode(errors="replace")
            m, r = LOG_TS.match(line), REMAINING.search(line)
            if m and r:
                ts = dt.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                points.append((round(ts - t0, 1), int(r[1])))
    out: dict[str, Any] = {"timed_out_after_s": round(time.time() - t0, 1)}
    if len(points) >= 2:
        (ta, ra), (tb, rb) = points[0], points[-1]
        rate = (ra - rb) / max(1e-9, tb - ta)
        out.update(
            {
                "recovery_remaining_first": points[0],
                "recovery_remaining_last": points[-1],
                "recovery_records_per_s": round(rate),
                "recovery_estimated_total_s": round(tb + rb / rate) if rate > 0 else None,
            }
        )
    return out


def du(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total
