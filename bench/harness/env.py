"""Where a benchmark runs: paths, the machine and product version it records, CPU meters,
the broker (given or a local one), worker settings, results, subprocess helpers."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.services import free_port

from streams.config import Settings

REPO = Path(__file__).resolve().parents[2]  # bench/harness/env.py -> the repository


RESULTS = REPO / "bench" / "results"


RUN_ROOT = REPO / ".run" / "bench"  # git-ignored: logs, state, raw profiles


PROJECT = "bench-project"


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
    fields.update(worker_overrides(getattr(a, "set", None) or []))
    return Settings(**fields)


def worker_overrides(items: list[str]) -> dict[str, str]:
    """``--set STREAMS_NAME=value`` (or ``name=value``) as settings fields. A ``STREAMS_*``
    variable in the environment sets the worker's setting too; ``--set`` puts it in the
    command line the results JSON records, so the run can be repeated from it."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        field = name.lower().removeprefix("streams_")
        if not sep or field not in Settings.model_fields:
            raise SystemExit(f"--set {item!r}: not NAME=VALUE of a setting")
        out[field] = value
    return out


def sandbox_settings(
    bootstrap: str, work: Path, partitions: int, name: str, **overrides: Any
) -> Settings:
    """A worker against the SP-API sandbox (on a free port, ``sandbox_port``) without
    commercetools (its URLs point at a port nothing listens on), sales orders and the
    warehouse policy off, every topic of the run named after its app id
    ``bench-<name>-<tag>``; ``overrides`` are further settings."""
    sandbox_port = free_port()
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: no commercetools here
    base = f"http://127.0.0.1:{sandbox_port}"
    fields: dict[str, Any] = {
        "kafka_bootstrap": bootstrap,
        "app_id": f"bench-{name}-{uuid.uuid4().hex[:8]}",
        "data_dir": work / "worker-data",
        "web_port": free_port(),
        "partitions": partitions,
        "broker_session_timeout_s": 10.0,
        "sandbox_port": sandbox_port,
        "spapi_endpoint": base,
        "spapi_lwa_url": f"{base}/auth/o2/token",
        "sales_orders_enabled": False,
        "channel_policy_enabled": False,
        "ct_api_url": dead,
        "ct_auth_url": dead,
        **overrides,
    }
    for field_name in Settings.model_fields:
        if field_name.startswith("topic_"):  # every topic of the run names the app id
            default = Settings.model_fields[field_name].default
            fields[field_name] = f"{default}.{fields['app_id']}"
    return Settings(**fields)


def run_and_report(name: str, a: Any, amain: Any, table: Any) -> int:
    """The common end of a benchmark's ``main``: ``amain(a, bootstrap)`` on ``a.bootstrap``
    (or a local broker), its table printed, its JSON saved unless ``a.no_save``."""
    import asyncio

    with broker(a.bootstrap) as (bootstrap, _):
        res = asyncio.run(amain(a, bootstrap))
    print()
    print(table(res))
    if not a.no_save:
        print(f"\nresults: {save_result(name, res)}")
    return 0
