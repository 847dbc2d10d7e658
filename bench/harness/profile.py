"""py-spy profiles of a worker during a benchmark, summarised by bucket and by function."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any


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
    ("debounce timer: publish deltas", ("InventoryFlow.tick", "InventoryPublisher.tick")),
    ("sku agent: state read/apply/write", ("InventoryFlow.sku_agent", "SkuApply.sku_agent")),
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
