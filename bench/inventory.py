"""Inventory benchmark: ceiling, naive Faust baseline, the product, and delta latency.

    python -m bench.inventory [--messages N] [--skus K] [--channels 3] [--rate R]
                              [--duration D] [--bootstrap HOST:PORT] [--profile]

One run, one broker, one pre-filled topic set:

1. generate N commercetools ``InventoryEntryQuantitySet`` messages (Platform format) over K
   SKUs x C supply channels, with increasing resource versions per inventory entry, and a
   SKU mapping for every SKU; produce them into a fresh, unique topic set;
2. (a) ceiling: raw aiokafka consume + orjson decode of the whole ``ct.messages`` topic;
3. (b) naive baseline: ``bench/naive_agent.py`` (one Faust table write per event) as a
   worker process, timed from its first to its last event;
4. (c) the product: ``streams worker`` with a fresh app id on the same topic, timed from
   /health answering to ``sum(streams_records_total{topic=<ct>})`` reaching N; then every
   SKU's last published delta is checked against the expected availability;
5. (d) latency: with the worker caught up, produce at R msg/s for D s and measure, per
   delta, produce time of the first change it covers -> its Kafka timestamp.

Figures are printed and written to ``bench/results/inventory-<date>.json``. Without
``--bootstrap`` (or ``STREAMS_KAFKA_BOOTSTRAP``) a local Apache Kafka is started from the
jars on free ports and stopped by pid at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import datetime as dt
import json
import os
import platform
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from tests.support.services import free_port
from tests.support.worker import WorkerProcess

from streams.adapters.kafka_admin import create_topics
from streams.config import Settings

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
RUN_ROOT = REPO / ".run" / "bench"  # git-ignored: logs, state, raw profiles
PROJECT = "bench-project"


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------
@dataclass
class Entry:
    entry_id: str
    version: int = 0
    available: int = 0
    on_stock: int = 0


@dataclass
class Dataset:
    skus: list[str]
    channels: list[str]
    entries: dict[tuple[int, int], Entry] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    def entry(self, s: int, c: int) -> Entry:
        e = self.entries.get((s, c))
        if e is None:
            e = Entry(str(uuid.UUID(int=self.rng.getrandbits(128), version=4)))
            self.entries[(s, c)] = e
        return e

    def total(self, s: int) -> int:
        """What the product should publish for SKU index s (every channel eligible)."""
        return sum(
            max(0, e.available)
            for c in range(len(self.channels))
            if (e := self.entries.get((s, c))) is not None
        )

    def quantity_set(self, s: int, c: int, available: int, at: str) -> bytes:
        """Apply one change to the model and return its ct.messages record."""
        e = self.entry(s, c)
        old_a, old_q = e.available, e.on_stock
        e.version += 1
        e.available = available
        e.on_stock = available + self.rng.randint(0, 20)  # some units reserved
        sku = self.skus[s]
        msg = {
            "notificationType": "Message",
            "projectKey": PROJECT,
            "id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "version": 1,
            "sequenceNumber": e.version,
            "resource": {"typeId": "inventory-entry", "id": e.entry_id},
            "resourceVersion": e.version,
            "resourceUserProvidedIdentifiers": {"sku": sku},
            "type": "InventoryEntryQuantitySet",
            "oldQuantityOnStock": old_q,
            "newQuantityOnStock": e.on_stock,
            "oldAvailableQuantity": old_a,
            "newAvailableQuantity": e.available,
            "sku": sku,
            "supplyChannel": {"typeId": "channel", "id": self.channels[c]},
            "createdAt": at,
            "lastModifiedAt": at,
        }
        return orjson.dumps(msg)


def make_dataset(skus: int, channels: int, seed: int) -> Dataset:
    rng = random.Random(seed)
    chans = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(channels)]
    return Dataset([f"SKU-{i:07d}" for i in range(skus)], chans, rng=rng)


def mapping_record(i: int, sku: str) -> bytes:
    return orjson.dumps(
        {
            "sku": sku,
            "asin": f"B{i:09d}",
            "vendorProductIdentifier": f"VP-{i:08d}",
            "unitsPerCase": 6,
            "amazonUnitOfMeasure": "Eaches",
            "safetyBuffer": 0,
            "obsolete": False,
        }
    )


def iso_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------------------
# machine and process accounting
# --------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    jars = sorted((REPO / ".cache" / "kafka" / "libs").glob("kafka_2.13-*.jar"))
    import aiokafka
    import faust
    import rocksdict  # noqa: F401

    return {
        "nproc": os.cpu_count(),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "faust": faust.__version__,
        "aiokafka": aiokafka.__version__,
        "kafka_jars": jars[-1].name.removeprefix("kafka_2.13-").removesuffix(".jar")
        if jars
        else "",
    }


def product_version() -> dict[str, Any]:
    """The commit measured, and the files under src/ that differed from it."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = [line[3:] for line in git("status", "--porcelain", "--", "src").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "src_changes": dirty}


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return float(sum(parts) - idle), float(sum(parts))


class Meter:
    """Wall time, CPU of the given processes, and machine-wide CPU over one phase."""

    def __init__(self, **pids: int) -> None:
        self.pids = pids
        self.t0 = time.time()
        self.cpu0 = {k: proc_cpu(p) for k, p in pids.items()}
        self.m0 = machine_busy()
        self.load0 = os.getloadavg()[0]

    def read(self) -> dict[str, Any]:
        wall = time.time() - self.t0
        m1 = machine_busy()
        out: dict[str, Any] = {
            "wall_s": round(wall, 3),
            "machine_cpu_busy": round((m1[0] - self.m0[0]) / max(1.0, m1[1] - self.m0[1]), 3),
            "loadavg_1m_at_start": round(self.load0, 2),
        }
        for k, p in self.pids.items():
            out[f"{k}_cpu_cores"] = round((proc_cpu(p) - self.cpu0[k]) / max(wall, 1e-9), 3)
        return out


def pid_listening(port: int) -> int | None:
    """Pid of the process listening on a local TCP port (the broker), best effort."""
    try:
        out = subprocess.run(
            ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    marker = "pid="
    if marker in out:
        with contextlib.suppress(ValueError):
            return int(out.split(marker, 1)[1].split(",", 1)[0])
    return None


# --------------------------------------------------------------------------------------
# kafka helpers
# --------------------------------------------------------------------------------------
async def produce_all(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    """Produce as fast as aiokafka goes (batched, linger); returns seconds taken."""
    p = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=10,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
        acks=1,
    )
    await p.start()
    try:
        t0 = time.perf_counter()
        futs = [await p.send(topic, key=k, value=v) for k, v in records]
        await p.flush()
        for f in futs:
            f.result()
        return time.perf_counter() - t0
    finally:
        await p.stop()


async def consume_ceiling(bootstrap: str, topic: str, expect: int) -> tuple[int, float]:
    """Raw aiokafka consume + orjson decode of the whole topic: (records, seconds)."""
    c = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    await c.start()
    try:
        parts = c.partitions_for_topic(topic) or set()
        if not parts:
            await c._client.force_metadata_update()
            parts = c.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await c.end_offsets(tps)
        total = sum(end.values())
        n = 0
        t0 = time.perf_counter()
        while n < total:
            batch = await c.getmany(*tps, timeout_ms=500, max_records=10_000)
            for msgs in batch.values():
                for m in msgs:
                    orjson.loads(m.value)
                n += len(msgs)
        return n, time.perf_counter() - t0
    finally:
        await c.stop()


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record currently in ``topic`` (all partitions up to their end offsets)."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        await c._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await c.end_offsets(tps)
        out: list[Any] = []
        while True:
            pos = [await c.position(tp) for tp in tps]
            if all(p >= end[tp] for p, tp in zip(pos, tps, strict=True)):
                return out
            batch = await c.getmany(*tps, timeout_ms=500, max_records=10_000)
            for msgs in batch.values():
                out.extend(msgs)
    finally:
        await c.stop()


def deltas_of(records: list[Any]) -> list[tuple[str, int, int]]:
    """(sku, amount, kafka timestamp ms) of every delta record, in timestamp order."""
    out = []
    for r in records:
        v = orjson.loads(r.value)
        if v.get("kind") == "delta":
            out.append((v["sku"], v["availableQuantity"]["amount"], r.timestamp))
    out.sort(key=lambda x: x[2])
    return out


# --------------------------------------------------------------------------------------
# worker metrics
# --------------------------------------------------------------------------------------
def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def metric_sum(m: dict[Any, float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, lbl), v in m.items() if n == name and want <= set(lbl))


def records_by_outcome(m: dict[Any, float], topic: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for (n, lbl), v in m.items():
        d = dict(lbl)
        if n == "streams_records_total" and d.get("topic") == topic:
            out[d["outcome"]] = int(v)
    return out


def histogram_quantile(m: dict[Any, float], name: str, q: float) -> float | None:
    buckets = sorted(
        (float(dict(lbl)["le"]), v) for (n, lbl), v in m.items() if n == f"{name}_bucket"
    )
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    for le, count in buckets:
        if count >= rank:
            return le
    return None


# --------------------------------------------------------------------------------------
# subprocesses
# --------------------------------------------------------------------------------------
@contextlib.contextmanager
def broker(bootstrap: str | None) -> Iterator[tuple[str, int | None]]:
    """(bootstrap, broker pid when local): ``bootstrap``, or a local Apache Kafka started from
    the jars on free ports and stopped by pid at the end."""
    kafka = None
    if not bootstrap:
        from streams import localkafka

        home = RUN_ROOT / f"kafka-{uuid.uuid4().hex[:6]}"
        kafka = localkafka.LocalKafka(home, free_port(), free_port(), heap="1g")
        print(f"[bench] starting a local Kafka on {kafka.bootstrap}", flush=True)
        localkafka.up(kafka)
        bootstrap = kafka.bootstrap
    local = "127.0.0.1" in bootstrap or "localhost" in bootstrap
    try:
        yield bootstrap, pid_listening(int(bootstrap.rsplit(":", 1)[1])) if local else None
    finally:
        if kafka is not None:
            from streams import localkafka

            localkafka.down(kafka)
            shutil.rmtree(kafka.home, ignore_errors=True)


def save_result(name: str, res: dict[str, Any]) -> Path:
    """``bench/results/<name>-<UTC date-time>.json``; the path relative to the repository."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}-{dt.datetime.now(dt.UTC).strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(res, indent=1) + "\n")
    return out.relative_to(REPO)


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM the process group we created for ``proc``, SIGKILL after ``timeout``."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def log_summary(path: Path) -> dict[str, Any]:
    """Counts of the warnings that tell about load: changelog buffer, overlapping timers."""
    import re

    out: dict[str, Any] = {"producer_buffer_full": 0, "errors": 0, "timers_overlapping": {}}
    overlap = re.compile(r"Timer (\S+) is overlapping \(interval=[\d.]+ runtime=([\d.]+)")
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        if "producer buffer full" in line:
            out["producer_buffer_full"] += 1
        elif "[ERROR]" in line:
            out["errors"] += 1
        elif m := overlap.search(line):
            d = out["timers_overlapping"].setdefault(m[1], {"count": 0, "max_runtime_s": 0.0})
            d["count"] += 1
            d["max_runtime_s"] = max(d["max_runtime_s"], round(float(m[2]), 2))
    return out


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=3) as r:
        return json.loads(r.read())


def tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


# --------------------------------------------------------------------------------------
# phases
# --------------------------------------------------------------------------------------
def run_naive(s: Settings, n: int, work: Path, timeout: float) -> dict[str, Any]:
    port = free_port()
    log = work / "naive.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMS_")}
    env.update(
        BENCH_BOOTSTRAP=s.kafka_bootstrap,
        BENCH_TOPIC=s.topic_ct_messages,
        BENCH_APP_ID=f"{s.app_id}-naive",
        BENCH_DATADIR=str(work / "naive-data"),
        BENCH_PORT=str(port),
    )
    t_start = time.time()
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.naive_agent"],
            cwd=REPO,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/progress"
    try:
        t_ready = None
        meter = None
        deadline = time.monotonic() + timeout
        prog: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"naive agent exited {proc.returncode}: {tail(log)}")
            try:
                prog = get_json(url)
            except OSError:
                time.sleep(0.2)
                continue
            if t_ready is None:
                t_ready = time.time()
                meter = Meter(naive=proc.pid)
            if prog["count"] >= n:
                break
            time.sleep(0.25)
        t_seen = time.time()
        usage = meter.read() if meter else {}
        if prog.get("count", 0) < n:
            raise TimeoutError(f"naive agent handled {prog.get('count')} of {n}: {tail(log)}")
        assert t_ready is not None
        first, last = prog["first"], prog["last"]
        return {
            "events": prog["count"],
            "table_writes": prog["written"],
            "start_to_ready_s": round(t_ready - t_start, 2),
            "first_to_last_s": round(last - first, 3),
            "ready_to_done_s": round(t_seen - t_ready, 3),
            "events_per_s": round(n / (last - first), 1),
            "events_per_s_from_ready": round(n / (t_seen - t_ready), 1),
            **usage,
        }
    finally:
        stop_group(proc)


@dataclass
class Product:
    worker: WorkerProcess
    pid: int
    port: int


async def run_product(
    s: Settings,
    n: int,
    ds: Dataset,
    work: Path,
    timeout: float,
    profile: bool,
    broker_pid: int | None,
) -> tuple[Product, dict[str, Any]]:
    w = WorkerProcess(s, work / "worker.log")
    t_start = time.time()
    w.start()
    assert w.proc is not None
    pid = w.proc.pid
    prod = Product(w, pid, s.web_port)
    w.wait_ready(timeout=120)
    t_ready = time.time()
    pids = {"worker": pid}
    if broker_pid:
        pids["broker"] = broker_pid
    meter = Meter(**pids)
    spy = None
    if profile:
        spy = start_profiler(pid, work / "worker-profile.txt")
    topic = s.topic_ct_messages
    t_first: float | None = None
    t_maps: float | None = None  # all K mappings handled
    m: dict[Any, float] = {}
    done = 0.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if w.proc.poll() is not None:
            raise RuntimeError(f"worker exited {w.proc.returncode}: {w.tail()}")
        try:
            m = scrape(s.web_port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        done = metric_sum(m, "streams_records_total", topic=topic)
        if done > 0 and t_first is None:
            t_first = time.time()
        if t_maps is None and metric_sum(
            m, "streams_records_total", topic=s.topic_sku_mappings
        ) >= len(ds.skus):
            t_maps = time.time()
        if done >= n:
            break
        await asyncio.sleep(0.2)
    t_done = time.time()
    usage = meter.read()
    profile_summary = stop_profiler(spy, work / "worker-profile.txt") if spy else None
    if done < n:
        raise TimeoutError(f"worker handled {done:.0f} of {n} within {timeout:.0f}s: {w.tail()}")
    assert t_first is not None
    res: dict[str, Any] = {
        "events": int(done),
        "outcomes": records_by_outcome(m, topic),
        "mappings_applied": int(
            metric_sum(m, "streams_records_total", topic=s.topic_sku_mappings, outcome="applied")
        ),
        "start_to_ready_s": round(t_ready - t_start, 2),
        "ready_to_first_s": round(t_first - t_ready, 2),
        "ready_to_mappings_done_s": round(t_maps - t_ready, 2) if t_maps else None,
        "ready_to_done_s": round(t_done - t_ready, 3),
        "events_per_s": round(n / (t_done - t_ready), 1),
        "events_per_s_from_first": round(n / max(1e-9, t_done - t_first), 1),
        "under_profiler": profile,
        **usage,
    }
    # drain: every SKU's availability published, then check it against the model
    t_drain0 = time.time()
    drain_deadline = time.monotonic() + max(
        120.0, 3 * len(ds.skus) / s.delta_budget_per_s + s.debounce_max_wait_s
    )
    while time.monotonic() < drain_deadline:
        m = scrape(s.web_port)
        pending = metric_sum(m, "streams_queue_length", queue="deltas")
        mapped = metric_sum(
            m, "streams_records_total", topic=s.topic_sku_mappings, outcome="applied"
        )
        if pending == 0 and mapped >= len(ds.skus) and time.time() - t_drain0 > 1.0:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)  # the last sends of the final tick
    records = await read_topic(s.kafka_bootstrap, s.topic_inventory_updates)
    deltas = deltas_of(records)
    last: dict[str, int] = {}
    per_sku: Counter[str] = Counter()
    repeats = 0
    for sku, amount, _ in deltas:
        if last.get(sku) == amount:
            repeats += 1
        last[sku] = amount
        per_sku[sku] += 1
    wrong = missing = 0
    examples: list[str] = []
    for i, sku in enumerate(ds.skus):
        want = ds.total(i)
        got = last.get(sku)
        if got is None:
            missing += 1
        elif got != want:
            wrong += 1
            if len(examples) < 5:
                examples.append(f"{sku}: published {got}, expected {want}")
    ts = [t for _, _, t in deltas]
    res["backlog_deltas"] = {
        "deltas": len(deltas),
        "skus_with_delta": len(last),
        "skus_expected": len(ds.skus),
        "missing_skus": missing,
        "wrong_final_amount": wrong,
        "repeated_same_amount": repeats,
        "max_deltas_per_sku": max(per_sku.values()) if per_sku else 0,
        "examples": examples,
        "ready_to_last_delta_s": round(max(ts) / 1000 - t_ready, 2) if ts else None,
        "first_to_last_delta_s": round((max(ts) - min(ts)) / 1000, 2) if ts else None,
    }
    counts = await topic_records(s, s.app_id)
    inputs = {s.topic_ct_messages, s.topic_sku_mappings}
    written = {k: v for k, v in counts.items() if v and k not in inputs and "-naive" not in k}
    res["records_written"] = {
        "by_topic": written,
        "total": sum(written.values()),
        "per_ct_event": round(sum(written.values()) / n, 2),
        "note": "Kafka records the product wrote (internal, changelog, output) for N ct "
        "events and K mappings; the naive agent writes one changelog record per event",
    }
    if profile_summary is not None:
        res["profile"] = profile_summary
    return prod, res


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy not found: no profile (pip install py-spy into the venv)", file=sys.stderr)
        return None
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "100",
            "--format",
            "raw",
            "--threads",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_profiler(spy: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
    if spy.poll() is None:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait(5)
    return summarize_profile(out)


# Where a worker sample goes, first match wins: (bucket, substrings of any frame).
PROFILE_BUCKETS = (
    ("event loop idle (select)", ("EpollSelector.select",)),
    ("debounce timer: publish deltas", ("InventoryFlow.tick",)),
    ("sku agent: state read/apply/write", ("InventoryFlow.sku_agent",)),
    ("ingest mappings: validate + products index", ("IngestService._mapping",)),
    ("ingest: parse + bundle to sku-events", ("IngestService.",)),
    ("changelog buffer flush (table writes)", ("ProducerBuffer",)),
    ("aiokafka producer I/O", ("aiokafka/producer/sender", "Sender._")),
    ("Faust consume + deliver to streams", ("Fetcher._fetcher", "Conductor.", "Stream.")),
    ("web /metrics", ("generate_latest", "faust/web/")),
)


def summarize_profile(path: Path, top: int = 25) -> dict[str, Any]:
    """Sample shares from py-spy's collapsed stacks: per bucket, per function (self/inclusive)."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    total = 0
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {"error": f"no profile at {path}"}
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        c = int(count)
        raw = stack.split(";")
        thread = raw[0] if raw[0].startswith("thread (") else ""
        frames = [_fn(f) for f in raw if not f.startswith("thread (")]
        if not frames:
            continue
        total += c
        own[frames[-1]] += c
        for f in set(frames):
            incl[f] += c
        if thread and "MainThread" not in thread:
            buckets["other threads (Faust consumer thread, RocksDB)"] += c
            continue
        for name, marks in PROFILE_BUCKETS:
            if any(m in f for f in raw for m in marks):
                buckets[name] += c
                break
        else:
            buckets["other (event loop, commits, timers)"] += c

    def share(counter: Counter[str], n: int = top) -> list[tuple[str, float]]:
        return [(f, round(100 * v / max(1, total), 1)) for f, v in counter.most_common(n)]

    return {
        "samples": total,
        "buckets_pct": share(buckets, 20),
        "self_pct": share(own),
        "inclusive_pct": share(incl),
        "raw": str(path),
    }


def _fn(frame: str) -> str:
    """``func (path/file.py:123)`` -> ``func (path/file.py)``: lines merged."""
    name, sep, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if sep else frame


async def topic_records(s: Settings, tag: str) -> dict[str, int]:
    """Records written to every topic of this run (end offsets summed over partitions)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        names = sorted(t for t in await admin.list_topics() if tag in t)
    finally:
        await admin.close()
    c = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        await c._client.force_metadata_update()
        out: dict[str, int] = {}
        for name in names:
            tps = [TopicPartition(name, p) for p in sorted(c.partitions_for_topic(name) or ())]
            if tps:
                end = await c.end_offsets(tps)
                out[name] = sum(end.values())
        return out
    finally:
        await c.stop()


async def run_latency(
    s: Settings, ds: Dataset, rate: float, duration: float, settle: float
) -> dict[str, Any]:
    """Produce at ``rate`` for ``duration`` s; match each delta to the changes it covers."""
    bs = s.kafka_bootstrap
    n = int(rate * duration)
    rng = random.Random(4242)
    k, c = len(ds.skus), len(ds.channels)
    # every change raises one channel's stock, so a SKU's total rises strictly with each
    # change and a published amount names exactly the changes it covers
    base = {i: ds.total(i) for i in range(k)}
    plan: list[tuple[int, bytes]] = []
    totals: dict[int, list[int]] = defaultdict(list)  # sku -> total after each change
    for _ in range(n):
        si, ci = rng.randrange(k), rng.randrange(c)
        e = ds.entry(si, ci)
        plan.append(
            (si, ds.quantity_set(si, ci, max(0, e.available) + rng.randint(1, 5), iso_now()))
        )
        totals[si].append(ds.total(si))
    produced: dict[int, list[float]] = defaultdict(list)  # sku -> produce times

    out = AIOKafkaConsumer(bootstrap_servers=bs, enable_auto_commit=False)
    await out.start()
    await out._client.force_metadata_update()
    tps = [
        TopicPartition(s.topic_inventory_updates, p)
        for p in sorted(out.partitions_for_topic(s.topic_inventory_updates) or ())
    ]
    out.assign(tps)
    await out.seek_to_end(*tps)
    for tp in tps:
        await out.position(tp)
    got: list[tuple[str, int, float, float]] = []  # sku, amount, kafka ts, received
    stop = asyncio.Event()

    async def consume() -> None:
        while not stop.is_set():
            batch = await out.getmany(*tps, timeout_ms=200)
            now = time.time()
            for msgs in batch.values():
                for r in msgs:
                    v = orjson.loads(r.value)
                    if v.get("kind") == "delta":
                        got.append(
                            (v["sku"], v["availableQuantity"]["amount"], r.timestamp / 1000, now)
                        )

    consumer = asyncio.create_task(consume())
    p = AIOKafkaProducer(bootstrap_servers=bs, linger_ms=5, acks=1)
    await p.start()
    late = 0
    try:
        t0 = time.time()
        i = 0
        while i < n:
            due = min(n, int((time.time() - t0) * rate) + 1)
            if due - i > rate * 0.1:
                late += 1  # the producer fell >100 ms behind its schedule
            while i < due:
                si, raw = plan[i]
                now = time.time()
                produced[si].append(now)
                await p.send(
                    s.topic_ct_messages, key=b"ct", value=raw, timestamp_ms=int(now * 1000)
                )
                i += 1
            await asyncio.sleep(0.005)
        await p.flush()
        t_end = time.time()
        # until every touched SKU's final total is out, or the settle time is over
        want = {ds.skus[si]: ts[-1] for si, ts in totals.items()}
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            last = {}
            for sku, amount, _, _ in got:
                last[sku] = amount
            if all(last.get(sku) == a for sku, a in want.items()):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)
        t_settled = time.time()
    finally:
        stop.set()
        await consumer
        await p.stop()
        await out.stop()

    index = {sku: i for i, sku in enumerate(ds.skus)}
    window, max_wait = s.debounce_window_s, s.debounce_max_wait_s
    lat, lat_recv, overhead = [], [], []
    covered: dict[int, int] = {}  # sku -> number of changes covered so far
    unexplained = regress = 0
    for sku, amount, ts, recv in sorted(got, key=lambda x: x[2]):
        si = index[sku]
        seq = totals.get(si, [])
        if amount == base[si] and covered.get(si, 0) == 0:
            regress += 1  # a delta re-telling the pre-phase amount
            continue
        kk = bisect.bisect_left(seq, amount)
        if kk >= len(seq) or seq[kk] != amount:
            unexplained += 1
            continue
        done = covered.get(si, 0)
        if kk + 1 <= done:
            regress += 1  # repeats or goes back to an amount already covered
            continue
        first_p = produced[si][done]
        last_p = produced[si][kk]
        covered[si] = kk + 1
        lat.append(ts - first_p)
        lat_recv.append(recv - first_p)
        overhead.append(ts - min(last_p + window, first_p + max_wait))
    lost = sum(1 for si, seq in totals.items() if covered.get(si, 0) < len(seq))

    def pct(xs: list[float]) -> dict[str, float | None]:
        if not xs:
            return {"p50": None, "p99": None, "max": None}
        xs = sorted(xs)
        return {
            "p50": round(statistics.median(xs), 3),
            "p99": round(xs[min(len(xs) - 1, int(0.99 * len(xs)))], 3),
            "max": round(xs[-1], 3),
        }

    return {
        "rate_target": rate,
        "duration_s": duration,
        "produced": n,
        "produce_s": round(t_end - t0, 2),
        "producer_behind_100ms": late,
        "end_to_settled_s": round(t_settled - t_end, 2),
        "settle_limit_s": settle,
        "skus_touched": len(totals),
        "deltas": len(got),
        "debounce_window_s": window,
        "debounce_max_wait_s": max_wait,
        "debounce_tick_s": s.debounce_tick_s,
        "latency_s": pct(lat),
        "latency_minus_window_s": pct([x - window for x in lat]),
        "latency_receive_s": pct(lat_recv),
        "beyond_debounce_rule_s": pct(overhead),
        "skus_final_not_published": lost,
        "deltas_unexplained_amount": unexplained,
        "deltas_repeated_or_regressed": regress,
    }


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------
def bench_settings(bootstrap: str, work: Path, a: argparse.Namespace) -> Settings:
    tag = uuid.uuid4().hex[:8]
    fields: dict[str, Any] = {
        "kafka_bootstrap": bootstrap,
        "app_id": f"bench-{tag}",
        "data_dir": work / "worker-data",
        "web_port": free_port(),
        "partitions": a.partitions,
        "broker_session_timeout_s": 10.0,
        "debounce_window_s": a.debounce_window,
    }
    # neither the SP-API nor commercetools runs here: the poller, the inventory sender (to
    # Amazon), the warehouse policy and sales orders (from/to commercetools) are off; the
    # figures are those of the inventory path up to amazon.inventory-updates
    for flag in (
        "po_poller_enabled",
        "inventory_sender_enabled",
        "channel_policy_enabled",
        "sales_orders_enabled",
    ):
        if flag in Settings.model_fields:
            fields[flag] = False
    for name in Settings.model_fields:
        if name.startswith("topic_"):
            fields[name] = f"{Settings.model_fields[name].default}.bench-{tag}"
    return Settings(**fields)


def table(res: dict[str, Any]) -> str:
    r = res
    rows: list[tuple[str, str]] = []
    cfg = r["config"]
    rows.append(
        ("messages / SKUs / channels", f"{cfg['messages']} / {cfg['skus']} / {cfg['channels']}")
    )
    rows.append(("record size (bytes, mean)", f"{r['data']['mean_record_bytes']:.0f}"))
    rows.append(("produce ct.messages (msg/s)", f"{r['data']['produce_msgs_per_s']:,.0f}"))
    if "ceiling" in r:
        rows.append(
            (
                "(a) ceiling: aiokafka consume + orjson (ev/s)",
                f"{r['ceiling']['events_per_s']:,.0f}",
            )
        )
    if "naive" in r:
        nv = r["naive"]
        rows.append(
            (
                "(b) naive per-event table agent (ev/s)",
                f"{nv['events_per_s']:,.0f}  (from ready: {nv['events_per_s_from_ready']:,.0f};"
                f" cpu {nv.get('naive_cpu_cores', 0):.2f} cores)",
            )
        )
    if "product" in r:
        pr = r["product"]
        rows.append(
            (
                "(c) product, worker ready -> N applied (ev/s)",
                f"{pr['events_per_s']:,.0f}  (from first event: "
                f"{pr['events_per_s_from_first']:,.0f}; cpu {pr.get('worker_cpu_cores', 0):.2f}"
                f" cores{', UNDER PROFILER' if pr['under_profiler'] else ''})",
            )
        )
        ratios = r.get("ratios", {})
        if "product_vs_ceiling" in ratios:
            rows.append(("(c)/(a) product vs ceiling", f"{ratios['product_vs_ceiling']:.4f}"))
        if "product_vs_naive" in ratios:
            rows.append(("(c)/(b) product vs naive", f"{ratios['product_vs_naive']:.2f}x"))
        rows.append(
            (
                "(c) worker ready -> first ct event / all mappings applied (s)",
                f"{pr['ready_to_first_s']} / {pr.get('ready_to_mappings_done_s')}",
            )
        )
        bd = pr["backlog_deltas"]
        rows.append(
            (
                "backlog: deltas / SKUs published / expected",
                f"{bd['deltas']} / {bd['skus_with_delta']} / {bd['skus_expected']}",
            )
        )
        rows.append(
            (
                "backlog: wrong final / missing / repeated",
                f"{bd['wrong_final_amount']} / {bd['missing_skus']} / {bd['repeated_same_amount']}",
            )
        )
        rows.append(("backlog: worker ready -> last delta (s)", f"{bd['ready_to_last_delta_s']}"))
    if "latency" in r:
        lt = r["latency"]
        rows.append(
            (
                f"(d) latency @ {lt['rate_target']:.0f}/s x {lt['duration_s']:.0f}s, "
                f"window {lt['debounce_window_s']}s: p50 / p99 / max (s)",
                "{p50} / {p99} / {max}".format(**lt["latency_s"]),
            )
        )
        rows.append(
            (
                "(d) latency minus window: p50 / p99 / max (s)",
                "{p50} / {p99} / {max}".format(**lt["latency_minus_window_s"]),
            )
        )
        rows.append(
            (
                "(d) beyond the debounce rule: p50 / p99 / max (s)",
                "{p50} / {p99} / {max}".format(**lt["beyond_debounce_rule_s"]),
            )
        )
        rows.append(
            (
                "(d) deltas / SKUs touched / final not published",
                f"{lt['deltas']} / {lt['skus_touched']} / {lt['skus_final_not_published']}",
            )
        )
        rows.append(
            (
                "(d) deltas unexplained / repeated",
                f"{lt['deltas_unexplained_amount']} / {lt['deltas_repeated_or_regressed']}",
            )
        )
        rows.append(
            (
                "(d) ct events still unhandled at the end / settle (s)",
                f"{lt.get('ct_events_not_yet_handled')} / {lt['end_to_settled_s']}"
                f" (limit {lt['settle_limit_s']:.0f})",
            )
        )
    if "product" in r and "records_written" in r["product"]:
        rw = r["product"]["records_written"]
        rows.append(("(c) Kafka records written per ct event", f"{rw['per_ct_event']}"))
        for name, count in sorted(rw["by_topic"].items(), key=lambda x: -x[1]):
            rows.append((f"    {name.replace(r['config']['app_id'], '<app>')}", f"{count}"))
    if "product" in r and "profile" in r["product"]:
        rows.append(("(c) worker profile (py-spy, % of samples)", ""))
        for name, pct in r["product"]["profile"].get("buckets_pct", []):
            rows.append((f"    {name}", f"{pct}"))
    if "worker_log" in r:
        wl = r["worker_log"]
        timers = ", ".join(
            f"{k} x{v['count']} (max {v['max_runtime_s']}s)"
            for k, v in wl["timers_overlapping"].items()
        )
        rows.append(
            (
                "worker log: buffer-full warnings / errors / timers overlapping",
                f"{wl['producer_buffer_full']} / {wl['errors']} / {timers or 'none'}",
            )
        )
    w = max(len(k) for k, _ in rows)
    mc = r["machine"]
    head = [
        f"inventory benchmark  {r['date']}",
        f"machine: {mc['nproc']} CPU ({mc['cpu']}), {mc['ram_gib']} GiB RAM, Python "
        f"{mc['python']}, faust {mc['faust']}, aiokafka {mc['aiokafka']}, "
        f"Kafka jars {mc['kafka_jars'] or '?'}",
        f"broker: {r['broker']}",
        f"rerun:   {r['command']}",
        "",
    ]
    return "\n".join(head + [f"{k.ljust(w)}  {v}" for k, v in rows])


async def amain(a: argparse.Namespace, bootstrap: str, broker_pid: int | None) -> dict[str, Any]:
    stamp = dt.datetime.now(dt.UTC)
    work = RUN_ROOT / stamp.strftime("%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    s = bench_settings(bootstrap, work, a)
    res: dict[str, Any] = {
        "date": stamp.isoformat(timespec="seconds"),
        "command": "python -m bench.inventory " + " ".join(shlex.quote(x) for x in sys.argv[1:]),
        "machine": machine(),
        "product_version": product_version(),
        "broker": bootstrap,
        "config": {
            "messages": a.messages,
            "skus": a.skus,
            "channels": a.channels,
            "partitions": s.partitions,
            "ct_messages_partitions": s.ct_messages_partitions,
            "batch_max": s.batch_max,
            "batch_within_s": s.batch_within_s,
            "debounce_window_s": s.debounce_window_s,
            "debounce_tick_s": s.debounce_tick_s,
            "delta_budget_per_s": s.delta_budget_per_s,
            "app_id": s.app_id,
            "ct_topic": s.topic_ct_messages,
            "seed": a.seed,
        },
        "workdir": str(work),
    }
    print(f"[bench] topics *.{s.app_id}, work dir {work}", flush=True)
    await create_topics(s)

    # -- data ---------------------------------------------------------------------------
    ds = make_dataset(a.skus, a.channels, a.seed)
    t = time.perf_counter()
    ct_records: list[tuple[bytes, bytes]] = []
    at = iso_now()
    for _ in range(a.messages):
        si, ci = ds.rng.randrange(a.skus), ds.rng.randrange(a.channels)
        ct_records.append((b"ct", ds.quantity_set(si, ci, ds.rng.randint(0, 500), at)))
    maps = [(sku.encode(), mapping_record(i, sku)) for i, sku in enumerate(ds.skus)]
    gen_s = time.perf_counter() - t
    sizes = [len(v) for _, v in ct_records]
    map_s = await produce_all(bootstrap, s.topic_sku_mappings, maps)
    ct_s = await produce_all(bootstrap, s.topic_ct_messages, ct_records)
    res["data"] = {
        "generate_s": round(gen_s, 2),
        "mean_record_bytes": round(statistics.mean(sizes), 1),
        "min_record_bytes": min(sizes),
        "max_record_bytes": max(sizes),
        "entries_touched": len(ds.entries),
        "mappings": len(maps),
        "produce_mappings_s": round(map_s, 2),
        "produce_ct_s": round(ct_s, 2),
        "produce_msgs_per_s": round(a.messages / ct_s, 1),
    }
    del ct_records, maps
    print(
        f"[bench] produced {a.messages} ct.messages in {ct_s:.1f}s "
        f"({a.messages / ct_s:,.0f}/s) and {a.skus} mappings",
        flush=True,
    )

    # -- (a) ceiling ----------------------------------------------------------------------
    meter = Meter()
    got, secs = await consume_ceiling(bootstrap, s.topic_ct_messages, a.messages)
    res["ceiling"] = {
        "events": got,
        "seconds": round(secs, 3),
        "events_per_s": round(got / secs, 1),
        **meter.read(),
    }
    print(f"[bench] (a) ceiling {got / secs:,.0f} ev/s", flush=True)

    # -- (b) naive --------------------------------------------------------------------------
    if not a.skip_naive:
        res["naive"] = await asyncio.to_thread(run_naive, s, a.messages, work, a.timeout)
        print(f"[bench] (b) naive {res['naive']['events_per_s']:,.0f} ev/s", flush=True)

    # -- (c) product and (d) latency ----------------------------------------------------------
    prod = None
    try:
        prod, res["product"] = await run_product(
            s, a.messages, ds, work, a.timeout, a.profile, broker_pid
        )
        pr = res["product"]
        print(f"[bench] (c) product {pr['events_per_s']:,.0f} ev/s", flush=True)
        res["ratios"] = {
            "product_vs_ceiling": round(pr["events_per_s"] / res["ceiling"]["events_per_s"], 4)
        }
        if "naive" in res:
            res["ratios"]["product_vs_naive"] = round(
                pr["events_per_s"] / res["naive"]["events_per_s"], 3
            )
        if a.duration > 0:
            meter = Meter(worker=prod.pid)
            res["latency"] = await run_latency(
                s, ds, a.rate, a.duration, settle=s.debounce_max_wait_s + 30
            )
            res["latency"].update(meter.read())
            m = scrape(s.web_port)
            handled = metric_sum(m, "streams_records_total", topic=s.topic_ct_messages)
            res["latency"]["ct_events_not_yet_handled"] = int(
                a.messages + res["latency"]["produced"] - handled
            )
            res["latency"]["worker_histogram_p50_le_s"] = histogram_quantile(
                m, "streams_inventory_delta_latency_seconds", 0.5
            )
            res["latency"]["worker_histogram_p99_le_s"] = histogram_quantile(
                m, "streams_inventory_delta_latency_seconds", 0.99
            )
            print(
                "[bench] (d) latency p50 {p50} p99 {p99} max {max}".format(
                    **res["latency"]["latency_s"]
                ),
                flush=True,
            )
    finally:
        if prod is not None:
            prod.worker.stop()
            res["worker_log"] = log_summary(work / "worker.log")
        if not a.keep_state:
            for d in ("worker-data", "naive-data"):
                shutil.rmtree(work / d, ignore_errors=True)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.inventory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--messages", type=int, default=50_000, help="ct.messages records (N)")
    ap.add_argument("--skus", type=int, default=10_000, help="distinct SKUs (K)")
    ap.add_argument("--channels", type=int, default=3, help="supply channels per SKU")
    ap.add_argument(
        "--partitions",
        type=int,
        default=Settings.model_fields["partitions"].default,
        help="STREAMS_PARTITIONS for the SKU-keyed topics and state",
    )
    ap.add_argument("--rate", type=float, default=2000.0, help="latency phase: messages/s")
    ap.add_argument(
        "--duration",
        type=float,
        default=20.0,
        help="latency phase: seconds of sustained load (0 skips it)",
    )
    ap.add_argument(
        "--debounce-window",
        type=float,
        default=Settings.model_fields["debounce_window_s"].default,
        help="STREAMS_DEBOUNCE_WINDOW_S for the worker",
    )
    ap.add_argument(
        "--bootstrap",
        default=os.environ.get("STREAMS_KAFKA_BOOTSTRAP"),
        help="Kafka to use (default: start a local one on free ports)",
    )
    ap.add_argument("--skip-naive", action="store_true", help="skip the naive baseline (b)")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the worker during (c) (slows it: the figure is marked)",
    )
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per phase at most")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep-state", action="store_true", help="keep the RocksDB dirs")
    ap.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    a = ap.parse_args(argv)

    with broker(a.bootstrap) as (bootstrap, broker_pid):
        res = asyncio.run(amain(a, bootstrap, broker_pid))
    print()
    print(table(res))
    if not a.no_save:
        print(f"\nresults: {save_result('inventory', res)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
