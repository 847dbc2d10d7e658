"""The state-at-scale benchmark's profile buckets, source record and printed table."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Any

import bench.harness as h
from bench.harness import (
    stop_profiler,
)

# Where a worker sample goes during start-up, first match wins.
PROFILE_BUCKETS = (
    ("event loop idle (select)", ("EpollSelector.select",)),
    ("_scan after rebalance (every SKU decoded)", ("InventoryFlow._scan",)),
    ("hourly snapshot (key list)", ("InventoryFlow.tick",)),
    ("table recovery (changelog -> RocksDB)", ("Recovery.", "apply_changelog_batch")),
    ("Faust consume + deliver", ("Fetcher._fetcher", "Conductor.", "Stream.")),
    ("RocksDB open", ("_open_for_partition", "RocksDBOptions.open")),
    ("web", ("faust/web/",)),
)


def stop_profiler_buckets(spy: Any, out: Path) -> dict[str, Any]:
    summary = stop_profiler(spy, out)
    summary.pop("buckets_pct", None)  # bench.inventory's buckets are the inventory flow's
    summary["buckets_pct"] = buckets(out)
    return summary


def buckets(path: Path) -> list[tuple[str, float]]:
    counts: dict[str, int] = {}
    total = 0
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not stack or not n.isdigit():
                continue
            c = int(n)
            total += c
            frames = stack.split(";")
            if frames[0].startswith("thread (") and "MainThread" not in frames[0]:
                name = "other threads (Faust consumer thread, RocksDB)"
            else:
                name = next(
                    (b for b, marks in PROFILE_BUCKETS if any(m in stack for m in marks)),
                    "other (event loop, agents, timers)",
                )
            counts[name] = counts.get(name, 0) + c
    return [(k, round(100 * v / max(1, total), 1)) for k, v in
            sorted(counts.items(), key=lambda x: -x[1])]  # fmt: skip


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------
def streams_source(src: Path | None = None) -> dict[str, Any]:
    """Which product code runs (PYTHONPATH may point at another worktree): its commit, the
    files under src/ that differ from it, and the diff when it is not this checkout."""
    if src is None:
        import streams

        src = Path(streams.__file__).resolve().parents[1]
    src = src.resolve()
    root = src.parent

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                  text=True, timeout=10).stdout  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = [ln[3:] for ln in git("status", "--porcelain", "--", "src").splitlines()]
    return {
        "src": str(src),
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "src_changes": dirty,
        "diff_src": git("diff", "--", "src")[:20000] if root != h.REPO else "",
    }


def table(res: dict[str, Any]) -> str:
    cfg, fl, pv = res["config"], res["fill"], res["product"]
    rows: list[tuple[str, str]] = [
        (
            "SKUs / channels / recent ids per entry / partitions",
            f"{cfg['skus']:,} / {cfg['channels']} / {cfg['recent_ids']} / {cfg['partitions']}",
        ),
        (
            "state record (bytes, mean) / total (MiB)",
            f"{fl['state_bytes_mean']:.0f} / {fl['state_bytes_total'] / 2**20:,.0f}",
        ),
        (
            "changelog records: skus / products",
            f"{fl['skus_records']:,} / {fl['products_records']:,}",
        ),
        (
            "fill: produced in (s)",
            f"{fl['produce_s']} ({fl['records_per_s']:,}/s)"
            if fl.get("records_per_s")
            else "reused the topics of an earlier run",
        ),
    ]
    if rc := res.get("restore_ceiling"):
        rows.append(
            (
                "restore ceiling: raw aiokafka -> rocksdict WriteBatch",
                f"{rc['records']:,} records in {rc['seconds']} s ({rc['records_per_s']:,}/s)",
            )
        )  # fmt: skip
    for ph in res["phases"]:
        n = ph["phase"]
        fm = ph["faust_log_s"]
        rows += [
            (f"[{n}] READY: probe delta on Kafka (s from start)", f"{ph['ready_s']}"),
            (f"[{n}]   the same minus the {cfg['debounce_window_s']} s debounce window",
             f"{ph['ready_minus_debounce_window_s']}"),
            (f"[{n}]   web up / recovery complete (log) / not rebalancing (s)",
             f"{ph['web_up_s']} / {fm.get('recovery_complete')} / "
             f"{ph['recovered_and_not_rebalancing_s']}"),
            (f"[{n}]   probe applied (metric) / longest /health stall (s)",
             f"{ph['probe_applied_s']} / {ph['longest_health_stall_s']}"),
            (f"[{n}] PEAK RSS (VmHWM) / at end (MiB)",
             f"{ph['peak_rss_mib']} / {ph['rss_at_end_mib']} (anon {ph['rss_anon_at_end_mib']})"),
            (f"[{n}] worker CPU (cores) / machine busy / load before",
             f"{ph.get('worker_cpu_cores', 0):.2f} / {ph['machine_cpu_busy']:.2f} / "
             f"{ph['loadavg_before'][0]}"),
            (f"[{n}] data dir before / after (MiB)",
             f"{ph['data_dir_mib_before']} / {ph['data_dir_mib_after']}"),
            (f"[{n}] timers overlapping (max runtime s)",
             ", ".join(f"{k} {v}" for k, v in fm["timers_overlapping_max_runtime_s"].items())
             or "none"),
        ]  # fmt: skip
        if "profile" in ph:
            rows.append((f"[{n}] profile (py-spy, % of samples)", ""))
            rows += [(f"    {k}", f"{v}") for k, v in ph["profile"].get("buckets_pct", [])]

    return h.rendered(
        "state at scale benchmark",
        res,
        rows,
        broker=(
            f"broker: {res['broker']}   product: {pv['src']} @ {pv['commit']}"
            f"{' + ' + ','.join(pv['src_changes']) if pv['src_changes'] else ''}"
        ),
        notes=[
            "targets: ready <= 15 s from local state, <= 120 s from the changelog, RSS <= 512 MiB"
        ],
    )
