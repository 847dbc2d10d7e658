"""Alert rules, dashboards, Prometheus/Grafana provisioning and docker-compose.yml agree with
each other and with the metric catalogue (streams.observability.metrics).

- promtool accepts the rules, their unit tests pass, both Prometheus configs load;
- every PromQL query of the dashboards and runbooks parses (as recording rules, by promtool);
- every metric named in alerts, dashboards and runbooks exists in REGISTRY (or is ``up``);
- every alert has severity, owner, summary, description and a runbook that exists, and a
  unit test where it fires and one where it stays quiet;
- docker-compose.yml publishes ports on 127.0.0.1 only and mounts what the configs expect.

promtool comes from the Debian package ``prometheus``; these tests skip (saying so) only
when it is missing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.config import Settings
from streams.domain.exceptions import KINDS
from streams.observability.metrics import REGISTRY
from tests.support import miniyaml
from tests.support.promtool import INSTALL_HINT, find_promtool, run_promtool, tool_missing

REPO = Path(__file__).resolve().parents[2]
PROM = REPO / "prometheus"
ALERTS = PROM / "alerts.yml"
ALERT_TESTS = PROM / "tests" / "alerts_test.yml"
PROM_CONFIGS = (PROM / "prometheus.yml", PROM / "prometheus.compose.yml")
GRAFANA = REPO / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
RUNBOOKS = REPO / "docs" / "runbooks"
COMPOSE = REPO / "docker-compose.yml"

SEVERITIES = {"critical", "warning"}
OWNERS = {"operations", "ecommerce", "finance", "fulfilment", "platform"}
# metrics Prometheus makes itself, not the worker
PROMETHEUS_OWN = {"up"}
# Grafana's interval variables, replaced before promtool parses a panel query
GRAFANA_INTERVALS = re.compile(r"\$__(rate_interval|interval|range)\b|\$\{__(\w+)\}")


# --- helpers --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def promtool() -> str:
    path = find_promtool()
    if path is None:
        tool_missing(INSTALL_HINT)
    assert path is not None
    return path


def registry_names() -> set[str]:
    """Every series name the worker exposes, in the forms a query uses."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{s}" for s in ("_bucket", "_sum", "_count"))
        elif family.type == "summary":
            names.update(f"{family.name}{s}" for s in ("", "_sum", "_count"))
        else:
            names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "atan2",
}  # fmt: skip
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords and labels left out)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\{[^}]*\}", "", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", "", s)  # ranges and subqueries
    s = _GROUPING.sub("", s)
    s = re.sub(r"\boffset\s+-?[0-9a-z]+", "", s)
    names = {m.group(1) for m in _IDENT.finditer(s)}
    return {n for n in names if n.lower() not in _KEYWORDS}


def for_promtool(expr: str) -> str:
    """A Grafana query as plain PromQL: interval variables become a fixed range."""
    return GRAFANA_INTERVALS.sub("5m", expr)


def alert_rules() -> list[dict[str, Any]]:
    doc = miniyaml.load_file(ALERTS)
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def alert_names() -> list[str]:
    return sorted({r["alert"] for r in alert_rules()})


def walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from walk_panels(panel.get("panels") or [])


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, expr) for every panel target and every variable query of every dashboard."""
    out: list[tuple[str, str]] = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in walk_panels(board.get("panels", [])):
            for target in panel.get("targets", []):
                where = f"{path.name} panel {panel['id']} {panel.get('title')!r} {target['refId']}"
                out.append((where, target["expr"]))
    return out


def dashboard_variable_metrics() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text(encoding="utf-8"))
        for var in board.get("templating", {}).get("list", []):
            if var.get("type") != "query":
                continue
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            m = re.match(r"\s*label_values\(\s*([a-zA-Z_:][\w:]*)\s*[{,]", query)
            if m:
                out.append((f"{path.name} variable {var['name']}", m.group(1)))
    return out


def runbook_queries() -> list[tuple[str, str]]:
    """PromQL in ```promql fences of the runbooks (one query per fence)."""
    out: list[tuple[str, str]] = []
    for path in sorted(RUNBOOKS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        for n, m in enumerate(re.finditer(r"```promql\n(.*?)```", text, re.S)):
            out.append((f"{path.name} query {n + 1}", m.group(1).strip()))
    return out


def check_parses(promtool: str, queries: list[tuple[str, str]], tmp_path: Path) -> None:
    """promtool parses every query, written as recording rules of a temporary rule file."""
    rules = [
        {"record": f"check:query_{i}", "expr": for_promtool(expr)}
        for i, (_, expr) in enumerate(queries)
    ]
    path = tmp_path / "queries.rules.yml"
    # JSON is YAML: no YAML writer needed
    path.write_text(json.dumps({"groups": [{"name": "queries", "rules": rules}]}, indent=1))
    result = run_promtool(promtool, "check", "rules", str(path))
    if result.returncode != 0:
        # promtool names the failing rule: show which query that is
        bad = sorted({int(n) for n in re.findall(r"check:query_(\d+)", result.stdout)})
        where = "\n".join(f"  {queries[i][0]}: {queries[i][1]}" for i in bad)
        pytest.fail(f"promtool rejected a query:\n{result.stdout}\n{where}")


# --- promtool ---------------------------------------------------------------------------
def test_promtool_check_rules(promtool: str) -> None:
    result = run_promtool(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout
    # the YAML reader used below sees the same rules as Prometheus does
    m = re.search(r"SUCCESS: (\d+) rules found", result.stdout)
    assert m, result.stdout
    groups = miniyaml.load_file(ALERTS)["groups"]
    assert int(m.group(1)) == sum(len(g["rules"]) for g in groups)


def test_promtool_test_rules(promtool: str) -> None:
    result = run_promtool(promtool, "test", "rules", str(ALERT_TESTS), cwd=ALERT_TESTS.parent)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("config", PROM_CONFIGS, ids=lambda p: p.name)
def test_prometheus_config_loads(promtool: str, config: Path) -> None:
    result = run_promtool(promtool, "check", "config", str(config))
    assert result.returncode == 0, result.stdout
    doc = miniyaml.load_file(config)
    assert doc["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in doc["scrape_configs"]}
    assert jobs["streams"]["metrics_path"] == "/metrics"  # the alerts select job="streams"


def test_dashboard_queries_parse(promtool: str, tmp_path: Path) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 20
    check_parses(promtool, queries, tmp_path)


def test_runbook_queries_parse(promtool: str, tmp_path: Path) -> None:
    queries = runbook_queries()
    assert queries, "the runbooks give no ```promql query"
    check_parses(promtool, queries, tmp_path)


# --- metric names -------------------------------------------------------------------------
def test_metric_name_extraction() -> None:
    expr = (
        'sum by (topic, le) (rate(streams_records_total{outcome="dlq",instance=~"$x"}[5m] '
        'offset 1d)) / on (topic) group_left max(up{job="streams"}) '
        "and histogram_quantile(0.99, x_bucket) > bool 2 * time()"
    )
    assert metric_names(expr) == {"streams_records_total", "up", "x_bucket"}


def test_every_metric_in_alerts_and_dashboards_exists() -> None:
    known = registry_names() | PROMETHEUS_OWN
    used: list[tuple[str, str]] = [(f"alert {r['alert']}", r["expr"]) for r in alert_rules()]
    used += dashboard_queries() + runbook_queries()
    missing = []
    for where, expr in used:
        names = metric_names(expr)
        assert names, f"{where}: no metric found in {expr!r}"
        missing += [f"{where}: {n}" for n in sorted(names - known)]
    missing += [f"{w}: {n}" for w, n in dashboard_variable_metrics() if n not in known]
    assert not missing, "not in streams.observability.metrics.REGISTRY:\n" + "\n".join(missing)


_SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
# labels Prometheus adds to every scraped series
TARGET_LABELS = {"job", "instance"}


def registry_labels() -> dict[str, set[str]]:
    """Series name -> label names it carries (histogram buckets also carry ``le``)."""
    out: dict[str, set[str]] = {}
    for collector in list(REGISTRY._collector_to_names):  # no public API lists label names
        labels = set(getattr(collector, "_labelnames", ()))
        # prometheus_client's process and GC collectors only collect
        describe = getattr(collector, "describe", collector.collect)
        for family in describe():
            if family.type == "counter":
                out[f"{family.name}_total"] = labels
            elif family.type == "histogram":
                out[f"{family.name}_bucket"] = labels | {"le"}
                out[f"{family.name}_sum"] = out[f"{family.name}_count"] = labels
            else:
                out[family.name] = labels
    return out


def test_label_names_and_values_exist() -> None:
    """Selectors name labels the metric has, and exact values the code can produce."""
    labels = registry_labels()
    source = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "src").rglob("*.py"))
    used = [(f"alert {r['alert']}", r["expr"]) for r in alert_rules()]
    used += dashboard_queries() + runbook_queries()
    problems = []
    for where, expr in used:
        for m in _SELECTOR.finditer(expr):
            name = m.group(1)
            if name not in labels:
                continue  # `up`, or unknown (reported by the metric-name test)
            for label, op, value in _MATCHER.findall(m.group(2)):
                if label in TARGET_LABELS:
                    continue
                if label not in labels[name]:
                    problems.append(f"{where}: {name} has no label {label!r}")
                elif label == "status" and value.isdigit():
                    continue  # an HTTP status: str() of what the server answered
                elif op == "=" and f'"{value}"' not in source:
                    problems.append(f"{where}: {name}{{{label}={value!r}}}: no such value in src/")
    assert not problems, "\n".join(problems)


# The inventory flow's metrics, each shown on a dashboard. A new flow adds its metrics to its
# own dashboard and here.
DASHBOARDED = {
    "streams_records_total", "streams_dlq_records_total", "streams_unmapped_sku_events_total",
    "streams_inventory_updates_total", "streams_queue_length",
    "streams_debounce_oldest_pending_seconds", "streams_inventory_delta_latency_seconds_bucket",
    "streams_agent_batch_duration_seconds_bucket", "streams_agent_batch_events_sum",
    "streams_last_success_timestamp_seconds", "kafka_consumergroup_group_lag",
    "streams_ct_entry_fetches_total",
}  # fmt: skip


# The purchase-order, ASN and API metrics (grafana/dashboards/purchase-orders.json), and the
# process metrics every worker serves.
PO_DASHBOARDED = {
    "streams_po_unacknowledged", "streams_po_unacknowledged_oldest_age_seconds",
    "streams_po_ack_deadline_breaches_total", "streams_acknowledgements_total",
    "streams_po_ack_latency_seconds_bucket", "streams_po_line_decisions_total",
    "streams_po_polled_total", "streams_po_closed_total", "streams_transaction_failures_total",
    "streams_asn_total", "streams_asn_latency_seconds_bucket", "streams_spapi_responses_total",
    "streams_spapi_budget_requests_per_second", "streams_exceptions_open",
    "streams_http_client_request_duration_seconds_bucket",
    "streams_http_client_request_duration_seconds_count", "streams_build_info",
    "process_cpu_seconds_total", "process_resident_memory_bytes", "python_gc_collections_total",
}  # fmt: skip


@pytest.mark.parametrize("wanted", [DASHBOARDED, PO_DASHBOARDED], ids=["inventory", "orders"])
def test_flow_metrics_are_on_dashboards(wanted: set[str]) -> None:
    on_dashboards: set[str] = set()
    for _, expr in dashboard_queries():
        on_dashboards |= metric_names(expr)
    assert wanted <= registry_names()
    assert wanted - on_dashboards == set(), "metrics no dashboard shows"


# --- alerts -------------------------------------------------------------------------------
def test_alerts_have_severity_owner_and_annotations() -> None:
    problems = []
    for rule in alert_rules():
        name, labels, ann = rule["alert"], rule.get("labels") or {}, rule.get("annotations") or {}
        if labels.get("severity") not in SEVERITIES:
            problems.append(f"{name}: severity {labels.get('severity')!r}")
        owner = labels.get("owner", "")
        if owner == "{{ $labels.owner }}":
            # the series' own owner label (owned exceptions): kept by the aggregation, and
            # every owner an exception kind names is a known team
            if not re.search(r"\bby\s*\([^)]*\bowner\b", rule["expr"]):
                problems.append(f"{name}: owner from $labels but the expression drops it")
            if {o for o, _ in KINDS.values()} - OWNERS:
                problems.append(f"{name}: exception kinds name unknown owners")
            teams = ["operations"]
        else:
            # a templated owner: every team it can render must be a known team
            teams = re.findall(r"\}\}([a-z]+)\{\{", owner) if "{{" in owner else [owner]
        if not teams or set(teams) - OWNERS:
            problems.append(f"{name}: owner {owner!r}")
        for key in ("summary", "description", "runbook_url"):
            if not (ann.get(key) or "").strip():
                problems.append(f"{name}: no {key}")
    assert not problems, "\n".join(problems)


def test_every_alert_has_a_runbook() -> None:
    index = (RUNBOOKS / "README.md").read_text(encoding="utf-8")
    problems = []
    for rule in alert_rules():
        name, url = rule["alert"], rule["annotations"]["runbook_url"]
        if not url.endswith(f"/docs/runbooks/{name}.md"):
            problems.append(f"{name}: runbook_url {url!r}")
        page = RUNBOOKS / f"{name}.md"
        if not page.is_file():
            problems.append(f"{name}: {page.relative_to(REPO)} is missing")
            continue
        text = page.read_text(encoding="utf-8")
        for heading in ("## What it means", "## Confirm", "## Act", "## Escalate"):
            if heading not in text:
                problems.append(f"{page.name}: no {heading!r} section")
        if f"({name}.md)" not in index:
            problems.append(f"README.md does not link {name}.md")
    # the other pages are the owned exceptions' runbooks (docs/runbooks/<kind>.md)
    pages = {p.stem for p in RUNBOOKS.glob("*.md")} - {"README"} - set(KINDS)
    problems += [f"{p}.md: no alert of that name" for p in sorted(pages - set(alert_names()))]
    for kind in KINDS:
        page = RUNBOOKS / f"{kind}.md"
        text = page.read_text(encoding="utf-8") if page.is_file() else ""
        for heading in ("## What it means", "## Confirm", "## Act", "## Escalate"):
            if heading not in text:
                problems.append(f"{page.name} (exception kind): no {heading!r} section")
    assert not problems, "\n".join(problems)


def test_flows_kinds_are_in_the_catalogue() -> None:
    """Kinds a flow raises with its own owner and severity are in KINDS with the same ones
    (so each has a runbook page, checked above)."""
    from streams.agents import inventory_sender

    for kind, (owner, severity) in inventory_sender.KINDS.items():
        assert KINDS.get(kind) == (owner, severity), kind


def test_every_alert_is_tested_firing_and_quiet() -> None:
    doc = miniyaml.load_file(ALERT_TESTS)
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in doc["tests"]:
        for check in case.get("alert_rule_test") or []:
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = set(alert_names())
    assert names - fires == set(), "no test where these fire"
    assert names - quiet == set(), "no test where these stay quiet"
    assert (fires | quiet) - names == set(), "tests of alerts that do not exist"


def _threshold(expr: str) -> float:
    """The number an alert expression ends in (``... > 15``)."""
    m = re.search(r">\s*([\d.]+)\s*$", expr.strip())
    assert m, f"no trailing threshold in {expr!r}"
    return float(m.group(1))


def test_thresholds_follow_the_settings() -> None:
    """Thresholds written into the rules match the defaults they were derived from."""
    fields = Settings.model_fields
    max_wait = fields["debounce_max_wait_s"].default
    snapshot = fields["snapshot_interval_s"].default
    rules: dict[str, dict[str, Any]] = {}
    for rule in alert_rules():
        rules.setdefault(rule["alert"], rule)  # the first rule of each name
    latency = _threshold(rules["StreamsInventoryDeltaLatencyHigh"]["expr"])
    assert max_wait < latency <= max_wait + 10, (latency, max_wait)
    buckets = (0.25, 0.5, 1, 2, 2.5, 3, 5, 10, 15, 30, 60, 300)
    assert latency in buckets, "on a bucket boundary the quantile is exact"
    stale = _threshold(rules["StreamsInventoryPublishStale"]["expr"])
    assert stale >= 2 * snapshot, "the hourly snapshot alone must not be able to trip it"
    near = _threshold(rules["StreamsPoAckDeadlineNear"]["expr"])
    assert near == fields["ack_warning_s"].default < fields["ack_deadline_s"].default


# --- grafana ------------------------------------------------------------------------------
def test_dashboards_are_well_formed() -> None:
    assert {p.name for p in DASHBOARDS} >= {
        "flows-overview.json", "inventory.json", "kafka-lag.json", "purchase-orders.json",
    }  # fmt: skip
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text(encoding="utf-8"))
        assert board["uid"] not in uids, f"{path.name}: duplicate uid"
        uids.add(board["uid"])
        assert board.get("id") is None, f"{path.name}: provisioned dashboards carry no id"
        variables = {v["name"] for v in board["templating"]["list"]}
        assert "datasource" in variables
        ids = [p["id"] for p in walk_panels(board["panels"])]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in walk_panels(board["panels"]):
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, f"{path.name} panel {panel['id']} too wide"
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], f"{path.name} panel {panel['id']} has no query"
            for target in panel["targets"]:
                assert target["expr"].strip()
                for var in re.findall(r"\$(\w+)", target["expr"]):
                    assert var.startswith("__") or var in variables, (path.name, var)


def test_grafana_provisioning_matches_compose() -> None:
    ds = miniyaml.load_file(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = miniyaml.load_file(GRAFANA / "provisioning" / "dashboards" / "dashboards.yml")
    (provider,) = providers["providers"]
    compose = miniyaml.load_file(COMPOSE)
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


# --- docker compose -----------------------------------------------------------------------
def test_compose_stack_shape() -> None:
    compose = miniyaml.load_file(COMPOSE)
    services = compose["services"]
    assert set(services) >= {
        "kafka", "topics", "worker", "sandbox-amazon", "commercetools-mock", "prometheus",
        "grafana",
    }  # fmt: skip
    for name, svc in services.items():
        for port in svc.get("ports") or []:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    worker = services["worker"]
    assert worker["build"] == "."
    assert worker["command"] == ["streams", "worker"]
    assert worker["environment"]["STREAMS_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert worker["environment"]["STREAMS_WEB_HOST"] == "0.0.0.0"
    assert services["topics"]["command"] == ["streams", "topics", "create"]
    # Prometheus inside compose scrapes the worker service on the web port
    prom = miniyaml.load_file(PROM / "prometheus.compose.yml")
    targets = [t for job in prom["scrape_configs"] if job["job_name"] == "streams"
               for sc in job["static_configs"] for t in sc["targets"]]  # fmt: skip
    assert targets == [f"worker:{Settings.model_fields['web_port'].default}"]
    command = services["prometheus"]["command"]
    assert "--config.file=/etc/prometheus/prometheus.compose.yml" in command
    assert "./prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim\b", dockerfile, re.M)


def _compose_command() -> tuple[list[str] | None, str]:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"], ""
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy], ""
    why = (
        "the docker CLI has no compose plugin (`docker compose` is an unknown command)"
        if docker
        else "docker is not installed"
    )
    return None, f"{why}, and docker-compose is not installed (Debian: docker-compose)"


def test_docker_compose_config() -> None:
    """`docker compose config -q` validates the file; it needs the CLI, not an engine."""
    command, why = _compose_command()
    if command is None:
        pytest.skip(why)
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
