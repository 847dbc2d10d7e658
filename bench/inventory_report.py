"""The inventory benchmark's printed table."""

from __future__ import annotations

from typing import Any

import bench.harness as h


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
        if pr.get("gc_pause_s") is not None:
            share = pr["gc_pause_s"] / max(1e-9, pr["ready_to_done_s"])
            rows.append(("(c) worker garbage-collector pauses s (of the phase)",
                         f"{pr['gc_pause_s']} ({share:.1%})"))  # fmt: skip
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
        if "mapping_load_s" in pr:
            rows.append(("(c) mapping load s (ingest start -> all applied)",
                         f"{pr['mapping_load_s']}"))  # fmt: skip
            rows.append(("(c) products records per mapping",
                         f"{pr['products_records_per_mapping']}"))  # fmt: skip
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
    lw = r.get("latency", {}).get("records_written")
    if lw:
        rows.append(("(d) Kafka records written per ct event", f"{lw['per_ct_event']}"))
        for name, count in sorted(lw["by_topic"].items(), key=lambda x: -x[1]):
            rows.append((f"    {name.replace(r['config']['app_id'], '<app>')}", f"{count}"))
    if "profile" in r.get("latency", {}):
        rows.append(("(d) worker profile (py-spy, % of samples)", ""))
        for name, pct in r["latency"]["profile"].get("buckets_pct", []):
            rows.append((f"    {name}", f"{pct}"))
        for name, pct in r["latency"]["profile"].get("self_pct", [])[:12]:
            rows.append((f"    self: {name}", f"{pct}"))
    if "product" in r and "profile" in r["product"]:
        rows.append(("(c) worker profile (py-spy, % of samples)", ""))
        for name, pct in r["product"]["profile"].get("buckets_pct", []):
            rows.append((f"    {name}", f"{pct}"))
    if "worker_log" in r:
        wl = r["worker_log"]
        timers = h.timers_text(wl)
        rows.append(
            (
                "worker log: buffer-full warnings / errors / timers overlapping",
                f"{wl['producer_buffer_full']} / {wl['errors']} / {timers}",
            )
        )

    return h.rendered("inventory benchmark", r, rows)
