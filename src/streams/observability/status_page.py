"""The status page for people: open exceptions by owner and severity, flows, lag, queues,
dead letters and what was resolved lately (``GET /status``, see :mod:`.web`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from html import escape
from typing import Any

from streams.domain.exceptions import KINDS
from streams.domain.watchers import SEVERITY_RANK, iso, parse_thresholds, refs_text, sort_exceptions
from streams.observability import metrics as M
from streams.observability.status import StatusSource, samples

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3} .critical{color:#b00020;font-weight:bold} .warning{color:#a15c00}
.ok{color:#1b7a1b} .stale{color:#b00020;font-weight:bold} small{color:#666}
"""


def render_status(ops: StatusSource, table: Mapping[str, Mapping[str, Any]], now: float) -> str:
    s = ops.settings
    e = escape
    open_ = sort_exceptions(r for r in table.values() if r.get("status") == "open")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>streams status - {e(ops.worker)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Stream processor status</h1><p>Worker <b>{e(ops.worker)}</b>, application "
        f"<b>{e(s.app_id)}</b>, at {e(iso(now))}. Rebalancing: "
        f"{'yes' if ops.app.rebalancing else 'no'}. "
        "<a href='/metrics'>/metrics</a> (Prometheus) &middot; <a href='/readyz'>/readyz</a>"
        " &middot; <a href='/livez'>/livez</a> &middot; <a href='/health'>/health</a>"
        " &middot; <a href='/api/exceptions'>/api/exceptions</a> (JSON; also "
        "<code>/api/sku/&lt;sku&gt;</code>, <code>/api/po/&lt;number&gt;</code>)</p>",
        "<p><small>An <b>exception</b> is a problem a team must act on. <b>critical</b>: act "
        "now; <b>warning</b>: act today. Each one says why it happened and links its runbook; "
        "most resolve themselves once their cause is fixed. Owners: operations (POs, master "
        "data), finance (prices, reconciliation), ecommerce (what Amazon shows), fulfilment "
        "(shipments, ASNs), platform (workers, Kafka, integrations).</small></p>",
        f"<h2>Open exceptions ({len(open_)})</h2>",
    ]
    if not open_:
        parts.append("<p class='ok'>None.</p>")
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in open_:
        groups[str(r.get("owner"))].append(r)
    for owner, recs in groups.items():
        by_sev: dict[str, int] = defaultdict(int)
        for r in recs:
            by_sev[str(r.get("severity"))] += 1
        counts = ", ".join(
            f"{n} {sev}" for sev, n in sorted(by_sev.items(), key=lambda kv: SEVERITY_RANK[kv[0]])
        )
        parts.append(f"<h3>{e(owner)} ({counts})</h3><table><tr><th>severity</th><th>kind</th>")
        parts.append(
            "<th>about</th><th>root cause</th><th>first seen</th><th>last seen</th>"
            "<th>count</th><th>runbook</th></tr>"
        )
        for r in recs:
            sev = str(r.get("severity"))
            parts.append(
                f"<tr><td class='{e(sev)}'>{e(sev)}</td><td>{e(str(r.get('kind')))}</td>"
                f"<td>{e(refs_text(r.get('refs')) or str(r.get('scope') or ''))}</td>"
                f"<td>{e(str(r.get('rootCause')))}</td><td>{e(str(r.get('firstSeen')))}</td>"
                f"<td>{e(str(r.get('lastSeen')))}</td><td>{e(str(r.get('count')))}</td>"
                f"<td><a href='{e(ops.runbook_url(r))}'>{e(str(r.get('kind')))}.md</a></td></tr>"
            )
        parts.append("</table>")

    thresholds = parse_thresholds(s.sync_stale_s)
    parts.append(
        "<h2>Flows</h2><p><small>Last success of each flow on <em>this</em> worker "
        "(streams_last_success_timestamp_seconds). A flow is judged stale past its "
        "threshold (STREAMS_SYNC_STALE_S) only while this worker does its work.</small></p>"
        "<table><tr><th>flow</th><th>last success</th><th>ago</th><th>threshold</th>"
        "<th>state</th></tr>"
    )
    for labels, value in sorted(samples(M.LAST_SUCCESS), key=lambda x: x[0]["flow"]):
        flow = labels["flow"]
        limit = thresholds.get(flow)
        ago = now - value
        state = "not judged" if limit is None else ("stale" if ago > limit else "ok")
        parts.append(
            f"<tr><td>{e(flow)}</td><td>{e(iso(value))}</td><td>{ago:.0f} s</td>"
            f"<td>{'-' if limit is None else f'{limit:.0f} s'}</td>"
            f"<td class='{'stale' if state == 'stale' else 'ok'}'>{state}</td></tr>"
        )
    parts.append("</table>")

    lag: dict[str, float] = defaultdict(float)
    partitions: dict[str, int] = defaultdict(int)
    for labels, value in samples(M.LAG):
        lag[labels["topic"]] += value
        partitions[labels["topic"]] += 1
    parts.append(
        "<h2>Consumer lag</h2><p><small>Records not processed yet on the partitions this "
        "worker owns (refreshed every 5 s).</small></p><table><tr><th>topic</th>"
        "<th>partitions here</th><th>lag</th></tr>"
    )
    for topic in sorted(lag):
        parts.append(
            f"<tr><td>{e(topic)}</td><td>{partitions[topic]}</td><td>{lag[topic]:.0f}</td></tr>"
        )
    parts.append("</table><h2>Queues</h2><table><tr><th>queue</th><th>length</th></tr>")
    for labels, value in sorted(samples(M.PENDING), key=lambda x: x[0]["queue"]):
        parts.append(f"<tr><td>{e(labels['queue'])}</td><td>{value:.0f}</td></tr>")
    parts.append("</table><h2>Dead letters since start</h2><table><tr><th>source topic</th>")
    parts.append("<th>reason</th><th>records</th></tr>")
    for labels, value in sorted(samples(M.DLQ), key=lambda x: tuple(x[0].values())):
        parts.append(
            f"<tr><td>{e(labels['topic'])}</td><td>{e(labels['reason'])}</td>"
            f"<td>{value:.0f}</td></tr>"
        )
    parts.append("</table>")
    resolved = [r for r in table.values() if r.get("status") == "resolved"]
    resolved.sort(key=lambda r: str(r.get("resolvedAt") or r.get("lastSeen")), reverse=True)
    parts.append(
        f"<h2>Recently resolved ({len(resolved)} kept)</h2><table><tr><th>kind</th>"
        "<th>owner</th><th>about</th><th>resolved</th><th>why</th></tr>"
    )
    for r in resolved[:20]:
        parts.append(
            f"<tr><td>{e(str(r.get('kind')))}</td><td>{e(str(r.get('owner')))}</td>"
            f"<td>{e(refs_text(r.get('refs')) or str(r.get('scope') or ''))}</td>"
            f"<td>{e(str(r.get('resolvedAt') or r.get('lastSeen')))}</td>"
            f"<td>{e(str(r.get('resolution') or ''))}</td></tr>"
        )
    parts.append(
        f"</table><p><small>Exception kinds: {e(', '.join(sorted(KINDS)))}; each has a "
        "runbook page docs/runbooks/&lt;kind&gt;.md.</small></p></body></html>"
    )
    return "".join(parts)
