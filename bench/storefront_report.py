"""What the storefront-order benchmark (bench/storefront.py) found, from what it recorded:
per order line the time until Amazon was offered the lower amount and until its hold ended,
changes counted twice, the sweep's cost model, and the printed table.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any

import orjson

from bench.harness import rendered
from bench.po_report import pct
from streams.config import Settings

PAGE = 500  # commercetools' largest page
Deltas = dict[str, list[tuple[float, int]]]  # SKU -> (Kafka timestamp s, amount), in order
Gone = dict[int, list[tuple[float, int]]]  # SKU index -> (when, units gone so far), in order


def shown(
    deltas: Deltas, skus: list[str], gone: Gone, stock: int, events: set[float]
) -> dict[str, Any]:
    """Per unit gone at a time in ``events``: how long until the SKU's offered amount (its
    last delta) covers every unit gone so far (amount <= stock - units). 0 when it already
    did: an earlier change was counted twice (see ``under_offered``)."""
    took: list[float] = []
    cases: list[tuple[float, str, float, int]] = []
    covered = 0
    for i, units in gone.items():
        ds = deltas.get(skus[i], [])
        times = [ts for ts, _ in ds]
        for at, cum in units:
            if at not in events:
                continue
            want, k = stock - cum, bisect_right(times, at)
            if k and ds[k - 1][1] <= want:
                covered += 1
                took.append(0.0)
                continue
            t = next((ts for ts, a in ds[k:] if a <= want), None)
            took.append(t - at) if t is not None else None
            cases.append((math.inf if t is None else t - at, skus[i], at, want))
    cases.sort(reverse=True)
    slowest = [
        {"sku": sku, "took_s": None if x == math.inf else round(x, 2), "want": want, "at": at,
         "deltas": [(round(ts - at, 2), a) for ts, a in deltas.get(sku, [])]}
        for x, sku, at, want in cases[:5]
    ]  # fmt: skip
    never = sum(1 for c in cases if c[0] == math.inf)
    return {"s": pct(took), "took": took, "already_covered": covered, "never": never,
            "slowest": slowest}  # fmt: skip


def under_offered(deltas: Deltas, skus: list[str], gone: Gone, stock: int) -> dict[str, int]:
    """Deltas below stock - units gone by then: a change counted twice (for instance the
    sweep applied an order's entry change before the re-read ended its hold)."""
    n = hit = 0
    for i, units in gone.items():
        times = [at for at, _ in units]
        low = sum(
            1 for ts, a in deltas.get(skus[i], [])
            if a < stock - (units[k - 1][1] if (k := bisect_right(times, ts)) else 0)
        )  # fmt: skip
        n, hit = n + low, hit + (low > 0)
    return {"deltas": n, "skus": hit}


def hold_endings(records: list[Any], ordered: dict[str, float]) -> dict[str, Any]:
    """From the SKU changelog (per SKU in write order): when each order line's hold ended,
    and how (settled: the entry's version had moved past the one the hold was placed at)."""
    open_: dict[bytes, dict[str, list[Any]]] = {}
    settled: list[float] = []
    expired: list[float] = []
    for r in records:
        if r.value is None:
            continue
        st = orjson.loads(r.value)
        now = st.get("oh") or {}
        for key, (_, ch, _, base) in open_.get(r.key, {}).items():
            if key not in now and key in ordered:
                v = (st.get("ch", {}).get(ch) or {}).get("v", -1)
                (settled if v > base else expired).append(r.timestamp / 1000 - ordered[key])
        open_[r.key] = now
    return {
        "settled_s": pct(settled),
        "expired_s": pct(expired),
        "settled_within_30s": sum(1 for x in settled if x <= 30.0),
        "still_open_at_end": sum(1 for h in open_.values() for k in h if k in ordered),
    }


def sweep_formula(changes_per_min: float, s: Settings) -> int:
    """requests/min ~ (60 / interval) x ceil((N x (interval + overlap) / 60) / 500)."""
    per_window = changes_per_min * (s.ct_sweep_interval_s + s.ct_sweep_overlap_s) / 60
    return int(60 / s.ct_sweep_interval_s * max(1, math.ceil(per_window / PAGE)))


def cost_model(s: Settings, *rates: float) -> dict[str, Any]:
    """The sweep's requests/min for 1M entries (independent of the catalogue's size) next to
    the full reconcile's: ``reconcile_batch`` entries per ``reconcile_interval_s`` per worker."""
    batch, every = Settings().reconcile_batch, Settings().reconcile_interval_s
    rates_ = sorted({60, 600, *(round(r) for r in rates), 6000, 60_000})
    return {
        "formula": "requests/min = (60 / interval) x ceil((N x (interval + overlap) / 60) / 500)",
        "sweep_requests_per_min": {str(n): sweep_formula(n, s) for n in rates_},
        "reconcile_requests_per_min_per_worker": 60 / every * math.ceil(batch / PAGE),
        "reconcile_hours_per_pass_1M": round(1_000_000 / batch * every / 3600, 2),
    }


def lat(d: dict[str, Any]) -> str:
    return f"{d['p50']} / {d['p99']} / {d['max']}  (n={d['n']})"


def table(res: dict[str, Any]) -> str:
    c, cfg, o, cm = res["catalogue"], res["config"], res["orders"], res["cost_model"]
    h, k, rq, pv = o["hold_ended"], o["counters"], o["requests_by_flow"], o["provisional"]
    mins = (cfg["duration"] + o["last_order_to_holds_ended_s"]) / 60
    holds = " / ".join(
        f"{k.get('holds_' + x, 0):.0f}" for x in ("placed", "duplicate", "settled", "expired")
    )
    rows: list[tuple[str, Any]] = [
        ("catalogue: entries / created in (s) / per s",
         f"{c['entries']} / {c['create_s']} / {c['creates_per_s']} ({c['concurrency']} at a time)"),
        ("catalogue: worker start -> every SKU published (s)",
         c["worker_start_to_all_published_s"]),
        ("catalogue: worker start -> sweep's first window read (s) / its requests",
         f"{c['worker_start_to_first_sweep_done_s']} / {c['first_sweep_requests']}"),
        ("emulator RSS after the catalogue / at the end (MiB)",
         f"{c['emulator_rss_mib']} / {res['emulator_rss_mib_at_end']}"),
        ("orders: load", f"{cfg['rate']:g}/s x {cfg['lines']} lines x {cfg['duration']:g} s = "
         f"{o['orders']} orders, {o['lines']} lines ({o['changes_per_min']} entry changes/min)"),
        (f"orders: silent changes {cfg['ct_delay']:g} +- 3 s later: ok / failed / late p99 (s)",
         f"{o['silent_changes_ok']} / {o['silent_changes_failed'] or 0} / "
         f"{o['silent_change_late_s']['p99']}"),
        ("(a) order -> Amazon delta p50/p99/max (s)", lat(pv["s"])),
        (f"(a) beyond the debounce window ({cfg['debounce_window_s']:g} s)",
         lat(o["provisional_beyond_window_s"])),
        ("(a) within window + 1 s / already covered / never shown",
         f"{o['provisional_within_window_plus_1s']} of {o['lines']} / {pv['already_covered']} / "
         f"{pv['never']}"),
        ("(a) worker's storefront histogram p50 / p99 (bucket le, s)",
         f"{k.get('storefront_histogram_p50_le_s')} / {k.get('storefront_histogram_p99_le_s')}"),
        ("under-offered deltas / SKUs (a change counted twice)",
         f"{o['under_offered']['deltas']} / {o['under_offered']['skus']}"),
        ("(b) order -> hold settled p50/p99/max (s)", lat(h["settled_s"])),
        ("(b) settled within 30 s / expired / open at the end",
         f"{h['settled_within_30s']} / {h['expired_s']['n']} / {h['still_open_at_end']}"),
        ("holds placed / duplicate / settled / expired", holds),
        ("re-reads ok / error (SKUs); sweep entries read",
         f"{k.get('rereads_ok'):.0f} / {k.get('rereads_error'):.0f}; {k.get('sweep_entries'):.0f}"),
        ("orders: requests by flow (via the proxy)",
         ", ".join(f"{n} {v}" for n, v in sorted(rq.items()))),
        ("orders: re-read / sweep requests per min",
         f"{rq.get('reread', 0) / mins:.1f} / {rq.get('sweep', 0) / mins:.1f} (over "
         f"{mins:.2f} min; sweep formula {o['formula_sweep_requests_per_min']})"),
    ]  # fmt: skip
    if sw := res.get("sweep_only"):
        sc = sw["silent_change_to_amazon"]
        rows += [
            ("sweep only: silent changes / per min", f"{sw['changes']} / {sw['changes_per_min']}"),
            ("sweep only: sweep requests/min measured / formula",
             f"{sw['sweep_requests_per_min']} / {sw['formula_requests_per_min']}  "
             f"(all requests: {sw['requests_by_flow']})"),
            ("sweep only: ticks / seconds between p50, max",
             f"{sw['sweep_ticks']} / {sw['tick_gaps_s']['p50']}, {sw['tick_gaps_s']['max']}"),
            ("sweep only: silent change -> Amazon p50/p99/max (s)",
             f"{lat(sc['s'])}, never {sc['never']}"),
        ]  # fmt: skip
    rows += [(f"emulator answer via the proxy: {n} p50/p99/max (s)", lat(d))
             for n, d in sorted(res["emulator_answer_s"].items())]  # fmt: skip
    rows += [
        ("1M entries: sweep requests/min at N changes/min",
         ", ".join(f"{n}: {v}" for n, v in cm["sweep_requests_per_min"].items())),
        ("1M entries: full reconcile (for comparison)",
         f"{cm['reconcile_requests_per_min_per_worker']:g} requests/min per worker, one pass "
         f"{cm['reconcile_hours_per_pass_1M']} h"),
    ]  # fmt: skip
    for ph in ("orders", "sweep_only"):
        if p := res.get(ph):
            cpu = ", ".join(str(p.get(f"{x}_cpu_cores")) for x in
                            ("worker", "broker", "emulator", "bench_and_proxy"))  # fmt: skip
            rows.append((f"{ph}: cpu worker, broker, emulator, bench (cores); load",
                         f"{cpu}; machine busy {p['machine_cpu_busy']}, "
                         f"load {p['loadavg_1m_at_start']}"))  # fmt: skip
    wl = res.get("worker_log", {})
    rows.append(("worker log: errors / timers overlapping",
                 f"{wl.get('errors')} / {wl.get('timers_overlapping') or 'none'}"))  # fmt: skip

    return rendered(
        "storefront-order benchmark",
        res,
        rows,
        broker=f"broker: {res['broker']}; commercetools: {res['commercetools']}",
    )
