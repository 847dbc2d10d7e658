"""The worker's Prometheus endpoint, scraped and summed for benchmark figures."""

from __future__ import annotations

import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families


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
