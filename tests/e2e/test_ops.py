"""Operations end to end: a real worker process on a real broker, the SP-API sandbox and the
commercetools emulator over HTTP. A scripted day (stock, mappings, a PO acknowledged and
shipped, a PO held for a missing case size then fixed, one held past its deadline, a bad
record) must show on /metrics, as owned exceptions that open and resolve themselves, on the
status page and the JSON API (behind a bearer token), through the ``streams`` CLI, and in
the finance reconciliation CSV."""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from streams.adapters.commercetools import CommercetoolsClient
from streams.adapters.kafka_admin import create_topics
from streams.config import Settings
from streams.domain.gs1 import with_check_digit
from streams.domain.watchers import iso
from streams.report import month_bounds
from streams.sandbox.amazon import running_sandbox
from tests.support.badinput import po_item, purchase_order
from tests.support.e2e import e2e_sandbox
from tests.support.kafka import produce, unique_settings, wait_for
from tests.support.services import free_port
from tests.support.worker import WorkerProcess, settings_env

pytestmark = [pytest.mark.kafka, pytest.mark.ctmock, pytest.mark.slow]

TOKEN = "ops-test-token-4f1c"
NOW = datetime.now(UTC).replace(microsecond=0)
HAS_ASN = importlib.util.find_spec("streams.agents.asn") is not None


def ts(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


item = po_item  # a PO line


def order(
    number: str, items: list[dict[str, Any]], date: datetime, changed: datetime | None = None
) -> dict[str, Any]:
    return purchase_order(number, items, NOW, date=date, changed=changed)


def stock(entry: dict[str, Any], channel: str) -> dict[str, Any]:
    """The platform message commercetools would deliver for an entry of the emulator."""
    return {
        "notificationType": "Message",
        "projectKey": "p",
        "id": f"msg-{entry['id']}-{entry['version']}",
        "version": 1,
        "sequenceNumber": entry["version"],
        "resource": {"typeId": "inventory-entry", "id": entry["id"]},
        "resourceVersion": entry["version"],
        "type": "InventoryEntryCreated",
        "inventoryEntry": {
            "id": entry["id"],
            "version": entry["version"],
            "sku": entry["sku"],
            "quantityOnStock": entry["quantityOnStock"],
            "availableQuantity": entry["quantityOnStock"],
            "supplyChannel": {"typeId": "channel", "id": channel},
        },
        "createdAt": ts(NOW),
    }


def mapping(sku: str, asin: str, channel: str, units: int | None) -> dict[str, Any]:
    m: dict[str, Any] = {
        "sku": sku,
        "asin": asin,
        "vendorProductIdentifier": f"V{asin}",
        "amazonChannels": [channel],
        "netCost": {"amount": "10.00", "currencyCode": "USD"},
    }
    if units:
        m["unitsPerCase"] = units
    return m


def dispatch(po: str, shipment: str, cartons: list[tuple[int, str, int]]) -> dict[str, Any]:
    """An LTL dispatch: cartons (SSCC serial, SKU, eaches) on one pallet."""
    codes = [with_check_digit(f"00614141{serial:09d}") for serial, _, _ in cartons]
    return {
        "dispatchId": f"D-{shipment}",
        "shipmentId": shipment,
        "purchaseOrderNumber": po,
        "shipFromWarehouse": "wh-1",
        "shippedDate": (NOW - timedelta(hours=1)).isoformat(),
        "estimatedDeliveryDate": (NOW + timedelta(days=2)).isoformat(),
        "shipmentType": "LessThanTruckLoad",
        "transportationMode": "Road",
        "carrierScac": "ODFL",
        "billOfLading": f"BOL-{shipment}",
        "proNumber": f"PRO-{shipment}",
        "isCorrection": False,
        "cartons": [
            {"sscc": code, "items": [{"sku": sku, "quantityEaches": n}]}
            for code, (_, sku, n) in zip(codes, cartons, strict=True)
        ],
        "pallets": [{"sscc": with_check_digit(f"30614141{cartons[0][0] + 500:09d}"),
                     "cartons": codes}],
    }  # fmt: skip


# --- talking to the worker ------------------------------------------------------------------


class Api:
    def __init__(self, s: Settings) -> None:
        self.base = f"http://127.0.0.1:{s.web_port}"

    def get(self, path: str, token: str | None = TOKEN) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        req = urllib.request.Request(self.base + path, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def post(self, path: str, body: Any, token: str | None = TOKEN) -> tuple[int, str]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(
            self.base + path, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def json(self, path: str) -> Any:
        status, body = self.get(path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    async def until(self, what: str, cond: Callable[[], bool], timeout: float = 45.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if cond():
                    return
            except (AssertionError, KeyError, IndexError, TypeError):
                pass
            await asyncio.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}")

    def exceptions(self, status: str = "all") -> list[dict[str, Any]]:
        body: list[dict[str, Any]] = self.json(f"/api/exceptions?status={status}")["exceptions"]
        return body


def about(rec: dict[str, Any]) -> str:
    refs = rec.get("refs") or {}
    if refs.get("purchaseOrderNumber"):
        seq = refs.get("itemSequenceNumber")
        return refs["purchaseOrderNumber"] + (f"#{seq}" if seq else "")
    return str(rec.get("scope", "")).split("@")[0]


def summary(recs: list[dict[str, Any]]) -> set[tuple[str, str, str, str, str]]:
    return {(r["kind"], r["owner"], r["severity"], r["status"], about(r)) for r in recs}


def metric(text: str, name: str, **labels: str) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = rf"^{name}\{{{re.escape(want)}\}} (\S+)$" if labels else rf"^{name} (\S+)$"
    m = re.search(pattern, text, re.M)
    return float(m[1]) if m else None


def summary_of(metrics: str) -> str:
    keep = ("streams_records_total", "streams_acknowledgements", "streams_po_", "streams_exc",
            "streams_ct_commands_total", "streams_asn_total")  # fmt: skip
    return "\n".join(
        ln for ln in metrics.splitlines() if ln.startswith(keep) and not ln.endswith(" 0.0")
    )


def cli(s: Settings, *args: str, token: bool = True) -> subprocess.CompletedProcess[str]:
    env = settings_env(s)
    if not token:
        env.pop("STREAMS_WEB_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env=env, capture_output=True, text=True, timeout=60, cwd=s.data_dir.parent,
    )  # fmt: skip


@pytest.fixture
def ops_settings(kafka: str, ct_api: str, tmp_path: Path) -> Settings:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    s = unique_settings(
        kafka,
        tmp_path,
        web_port=free_port(),
        web_token=SecretStr(TOKEN),
        debounce_window_s=0.3,
        debounce_max_wait_s=2.0,
        debounce_tick_s=0.1,
        po_poller_enabled=False,  # POs come straight to the topic, as from an EDI translator
        tx_poll_interval_s=0.5,
        sandbox_port=port,
        spapi_endpoint=base,
        spapi_lwa_url=f"{base}/auth/o2/token",
        ct_api_url=ct_api,
        ct_auth_url=ct_api,
        ct_project_key=f"ops-{uuid.uuid4().hex[:10]}",
        reconcile_interval_s=3600.0,
        ops_watch_interval_s=0.5,
        sync_stale_s="ingest=4",  # no commercetools message for 4 s: stale
    )
    asyncio.run(create_topics(s))
    return s


async def test_operations_view_of_a_scripted_day(ops_settings: Settings, tmp_path: Path) -> None:
    s = ops_settings
    bs = s.kafka_bootstrap
    tag = s.app_id.removeprefix("t-")[:6].upper()
    ok, hold, late = f"OK{tag}", f"HOLD{tag}", f"LATE{tag}"
    dates = {
        ok: NOW - timedelta(hours=17),  # acknowledged well inside the window
        hold: NOW - timedelta(hours=20),  # held: ack-deadline warning (18 h)
        late: NOW - timedelta(hours=25),  # held past 24 h: critical
    }
    # commercetools holds the stock; the worker applies its reservations there
    async with CommercetoolsClient(s) as ct:
        channel = (await ct.create_channel({"key": f"wh-{tag}", "roles": ["InventorySupply"]}))[
            "id"
        ]
        entries = {}
        for sku, qty in (("SKU-CASE", 30), ("SKU-EACH", 5), ("SKU-NOSIZE", 50)):
            entries[sku] = await ct.create_inventory_entry(
                {"sku": sku, "quantityOnStock": qty,
                 "supplyChannel": {"typeId": "channel", "id": channel}}
            )  # fmt: skip
    await produce(
        bs,
        s.topic_sku_mappings,
        [
            (b"SKU-CASE", mapping("SKU-CASE", "B0CASE0001", channel, 12)),
            (b"SKU-EACH", mapping("SKU-EACH", "B0EACH0001", channel, None)),
            (b"SKU-NOSIZE", mapping("SKU-NOSIZE", "B0NOSIZE01", channel, None)),
        ],
    )
    await produce(
        bs,
        s.topic_ct_messages,
        [*((b"ct", stock(e, channel)) for e in entries.values()), (b"ct", b"{not json")],
    )
    config = e2e_sandbox(s)
    api = Api(s)
    async with running_sandbox(config, port=s.sandbox_port):
        w = WorkerProcess(s, tmp_path / "worker.log").start()
        try:
            w.wait_ready()
            published = await wait_for(
                bs, s.topic_inventory_updates, lambda r: len({x.key for x in r}) == 3
            )
            assert len({x.key for x in published}) == 3, w.tail()
            await produce(
                bs,
                s.topic_purchase_orders,
                [
                    (ok.encode(), order(ok, [item("1", "B0CASE0001", 2, "Cases", 12),
                                             item("2", "B0EACH0001", 8, "Eaches")], dates[ok])),
                    (hold.encode(), order(hold, [item("1", "B0NOSIZE01", 2, "Cases")],
                                          dates[hold])),
                    (late.encode(), order(late, [item("1", "B0NOSIZE01", 1, "Cases")],
                                          dates[late])),
                ],
            )  # fmt: skip

            def acknowledged(number: str) -> bool:
                po = api.json(f"/api/po/{number}")
                return bool(po["acknowledgement"]["status"] == "acknowledged")

            await api.until(f"{ok} acknowledged", lambda: acknowledged(ok))
            first = {
                ("unit-of-measure", "operations", "critical", "open", f"{hold}#1"),
                ("unit-of-measure", "operations", "critical", "open", f"{late}#1"),
                ("ack-deadline", "operations", "warning", "open", hold),
                ("ack-deadline", "operations", "critical", "open", late),
                ("dlq-growth", "platform", "warning", "open", s.topic_ct_messages),
                ("sync-stale", "platform", "critical", "open", "ingest"),
            }

            def first_ones() -> bool:
                recs = api.exceptions()
                # the deadline's root cause follows the PO (undecided for a moment, then held)
                deadlines = [r for r in recs if r["kind"] == "ack-deadline"]
                return summary(recs) == first and all(r["reason"] == "held" for r in deadlines)

            await api.until("the first exceptions", first_ones)
            deadline_warning = next(
                r for r in api.exceptions() if r["kind"] == "ack-deadline" and about(r) == hold
            )
            assert "line 1 is on hold (unit-of-measure)" in deadline_warning["rootCause"]
            assert deadline_warning["runbook"] == "docs/runbooks/ack-deadline.md"

            # the acknowledged PO ships
            if HAS_ASN:
                await produce(
                    bs,
                    s.topic_dispatches,
                    [(ok.encode(), dispatch(ok, f"SHIP-{tag}", [(9001, "SKU-CASE", 24),
                                                               (9002, "SKU-EACH", 5)]))],
                )  # fmt: skip
                await api.until(
                    "the ASN accepted",
                    lambda: api.json(f"/api/po/{ok}")["shipments"][0]["status"] == "accepted",
                )

            # operations fixes the case size; Amazon's next revision of the PO is decided,
            # acknowledged, and both of its exceptions resolve by themselves
            await produce(
                bs,
                s.topic_sku_mappings,
                [(b"SKU-NOSIZE", mapping("SKU-NOSIZE", "B0NOSIZE01", channel, 10))],
            )
            await api.until(
                "the fixed mapping",
                lambda: api.json("/api/sku/SKU-NOSIZE")["mapping"]["unitsPerCase"] == 10,
            )
            revised = order(hold, [item("1", "B0NOSIZE01", 2, "Cases")], dates[hold], NOW)
            await produce(bs, s.topic_purchase_orders, [(hold.encode(), revised)])
            await api.until(f"{hold} acknowledged", lambda: acknowledged(hold))
            settled = {
                ("unit-of-measure", "operations", "critical", "resolved", f"{hold}#1"),
                ("unit-of-measure", "operations", "critical", "open", f"{late}#1"),
                ("ack-deadline", "operations", "warning", "resolved", hold),
                ("ack-deadline", "operations", "critical", "open", late),
                ("dlq-growth", "platform", "warning", "open", s.topic_ct_messages),
                ("sync-stale", "platform", "critical", "open", "ingest"),
            }
            await api.until("exceptions resolved", lambda: summary(api.exceptions()) == settled)
            by_about = {(r["kind"], about(r)): r for r in api.exceptions()}
            fixed = by_about[("unit-of-measure", f"{hold}#1")]
            assert fixed["count"] == 1 and fixed["resolution"] == "line 1 was decided: Accepted"
            assert by_about[("ack-deadline", late)]["reason"] == "held"

            # (a) metrics, once every partition is caught up
            def caught_up() -> bool:
                text = w.metrics()
                lags = re.findall(r"^kafka_consumergroup_group_lag\{.*\} (\S+)$", text, re.M)
                applied = metric(
                    text, "streams_records_total", topic=s.topic_ct_messages, outcome="applied"
                )
                return bool(lags) and all(float(v) == 0 for v in lags) and applied == 3

            await api.until("lag 0 everywhere", caught_up, timeout=30)
            text = w.metrics()
            ct_topic, po_topic = s.topic_ct_messages, s.topic_purchase_orders
            expected: list[tuple[str, dict[str, str], float]] = [
                ("streams_records_total", {"topic": ct_topic, "outcome": "applied"}, 3),
                ("streams_records_total", {"topic": ct_topic, "outcome": "dlq"}, 1),
                ("streams_records_total", {"topic": po_topic, "outcome": "applied"}, 4),
                ("streams_dlq_records_total", {"topic": ct_topic, "reason": "not_json"}, 1),
                ("streams_acknowledgements_total", {"outcome": "built"}, 2),
                ("streams_acknowledgements_total", {"outcome": "submitted"}, 2),
                ("streams_po_line_decisions_total", {"status": "Accepted"}, 2),
                ("streams_po_line_decisions_total", {"status": "Partial"}, 1),
                ("streams_po_line_decisions_total", {"status": "Hold"}, 2),
                ("streams_ct_commands_total", {"action": "reserve", "outcome": "applied"}, 3),
                ("streams_po_unacknowledged", {"age": "over_24h"}, 1),
                ("streams_po_unacknowledged", {"age": "18h_24h"}, 0),
                ("streams_po_unacknowledged", {"age": "6h_18h"}, 0),
                ("streams_po_ack_deadline_breaches_total", {}, 1),
                ("streams_inventory_drift_skus", {"direction": "over"}, 0),
                ("streams_exceptions_open",
                 {"kind": "unit-of-measure", "owner": "operations", "severity": "critical"}, 1),
                ("streams_exceptions_open",
                 {"kind": "dlq-growth", "owner": "platform", "severity": "warning"}, 1),
            ]  # fmt: skip
            if HAS_ASN:
                expected.append(("streams_asn_total", {"outcome": "accepted"}, 1))
            wrong = [
                (name, labels, want, metric(text, name, **labels))
                for name, labels, want in expected
                if metric(text, name, **labels) != want
            ]
            assert wrong == [], f"(name, labels, expected, got): {wrong}\n{summary_of(text)}"
            oldest = metric(text, "streams_po_unacknowledged_oldest_age_seconds")
            assert oldest is not None and 25 * 3600 <= oldest < 26 * 3600

            # (c) the status page and the API
            status, page = api.get("/status")
            assert status == 200
            for text_ in (
                "Open exceptions (4)",
                "operations (2 critical)",
                "platform (1 critical, 1 warning)",
                f"PO {late}",
                "docs/runbooks/unit-of-measure.md",
                "ingest",
                "Consumer lag",
                "href='/metrics'",
                "Recently resolved",
            ):
                assert text_ in page, text_
            sku = api.json("/api/sku/SKU-CASE")
            assert sku["mapping"]["unitsPerCase"] == 12
            channels = [
                (c["channel"], c["available"], c["amazonEligible"]) for c in sku["channels"]
            ]
            assert channels == [(channel, 30, True)]
            assert (sku["availability"], sku["openAllocations"], sku["lastPublished"]) == (6, 24, 6)
            assert sku["drift"] == 0
            assert [(a["line"], a["status"], a["allocatedEaches"]) for a in sku["allocations"]] == [
                (f"{ok}#1", "Accepted", 24)
            ]  # fmt: skip
            (cmd,) = sku["pendingCommands"]
            assert (cmd["eaches"], cmd["channel"]) == (24, channel)
            assert cmd["appliedVersion"] is not None  # commercetools applied it
            po = api.json(f"/api/po/{ok}")
            assert po["state"] == "Acknowledged" and po["poDate"] == iso(dates[ok].timestamp())
            assert po["acknowledgement"]["transactionId"] == po["transaction"]["id"]
            assert po["acknowledgement"]["acknowledged"] is True
            assert [
                (
                    ln["itemSequenceNumber"],
                    ln["eaches"],
                    ln["decision"]["status"],
                    ln["decision"]["accepted"],
                    ln["decision"]["rejectionReason"],
                )
                for ln in po["lines"]
            ] == [("1", 24, "Accepted", 2, None), ("2", 8, "Partial", 5, "TemporarilyUnavailable")]
            if HAS_ASN:
                (shipment,) = po["shipments"]
                assert shipment["shipmentId"] == f"SHIP-{tag}"
                assert shipment["versions"][0]["shippedEaches"] == {"1": 24, "2": 5}
            status, body = api.get("/api/po/NOPE")
            assert status == 404
            assert "this worker (" in json.loads(body)["error"]
            assert json.loads(body)["worker"].endswith(f":{s.web_port}")
            status, body = api.get("/api/sku/NO%2FSUCH")  # SKU codes may hold "/"
            assert status == 404 and "SKU 'NO/SUCH' is not" in json.loads(body)["error"]
            # the token: everything but /metrics and /health
            for path in ("/status", "/api/exceptions", f"/api/po/{ok}", "/api/sku/SKU-CASE"):
                assert api.get(path, token=None)[0] == 401, path
                assert api.get(path, token="wrong")[0] == 401, path
            assert api.get("/metrics", token=None)[0] == 200
            assert api.get("/health", token=None)[0] == 200
            assert TOKEN not in api.get("/api/exceptions", token="wrong")[1]

            # (d) the CLI against this worker
            r = cli(s, "exceptions")
            assert r.returncode == 0, r.stderr
            assert "4 open exception(s)" in r.stdout
            rows = [ln for ln in r.stdout.splitlines() if "operations" in ln or "platform" in ln]
            assert len(rows) == 4, r.stdout
            assert any("ack-deadline" in ln and f"PO {late}" in ln and "critical" in ln
                       for ln in rows)  # fmt: skip
            r = cli(s, "exceptions", "--owner", "platform")
            assert r.returncode == 0 and "dlq-growth" in r.stdout
            assert "unit-of-measure" not in r.stdout
            r = cli(s, "exceptions", "--json")
            assert r.returncode == 0 and json.loads(r.stdout)["count"] == 4
            r = cli(s, "sku", "SKU-CASE")
            assert r.returncode == 0, r.stderr
            assert "SKU SKU-CASE" in r.stdout
            assert "availability for Amazon: 6 = master 30 - buffer 0 - open allocations 24" in (
                r.stdout
            )
            assert "last published: 6" in r.stdout
            assert re.search(rf"{ok}#1\s+Accepted\s+2\s+0\s+0\s+24", r.stdout), r.stdout
            r = cli(s, "po", ok)
            assert r.returncode == 0, r.stderr
            assert "acknowledgement: acknowledged, transaction" in r.stdout
            assert re.search(r"1\s+SKU-CASE\s+2 Cases of 12\s+24\s+Accepted\s+2\s+0\s+0", r.stdout)
            assert re.search(r"2\s+SKU-EACH\s+8 Eaches\s+8\s+Partial\s+5\s+0\s+3\s+Temporarily",
                             r.stdout)  # fmt: skip
            if HAS_ASN:
                assert re.search(rf"SHIP-{tag}\s+accepted\s+Original accepted", r.stdout)
            r = cli(s, "po", "NOPE")
            assert r.returncode == 1 and "PO 'NOPE' is not known" in r.stderr
            r = cli(s, "exceptions", token=False)
            assert r.returncode == 1 and "refused the request (401)" in r.stderr

            # commercetools delivers again: ingest is not stale any more (it would be again
            # 4 s later, so this comes last)
            other = {"id": "other-1", "version": 1, "sku": "SKU-OTHER", "quantityOnStock": 1}
            await produce(bs, s.topic_ct_messages, [(b"ct", stock(other, channel))])
            final = settled - {("sync-stale", "platform", "critical", "open", "ingest")}
            final.add(("sync-stale", "platform", "critical", "resolved", "ingest"))
            await api.until("sync-stale resolved", lambda: summary(api.exceptions()) == final)
            stale = next(r for r in api.exceptions() if r["kind"] == "sync-stale")
            assert stale["resolution"] == "the flow succeeded again" and stale["count"] == 1
            assert stale["scope"] == f"ingest@{stale['scope'].split('@')[1]}"

            # a person closes what no condition resolves (the POST goes through the topic)
            held_late = next(r for r in api.exceptions() if about(r) == f"{late}#1")
            path = f"/api/exceptions/{held_late['id']}/resolve"
            assert api.post(path, {"note": "agreed with Amazon"}, token=None)[0] == 401
            assert api.post(path, {"note": "agreed with Amazon"})[0] == 202

            def resolved_by_hand() -> bool:
                rec = next(r for r in api.exceptions() if r["id"] == held_late["id"])
                return bool(rec["resolution"] == "resolved by hand: agreed with Amazon")

            await api.until("resolved by hand", resolved_by_hand)
        finally:
            w.stop()

    # (e) the reconciliation for finance, from Kafka alone (the worker is stopped). The
    # commercetools order of each PO is what commercetools holds: the sales-order flow (when
    # it runs) created those of the acknowledged POs; the OK PO's is made here otherwise
    prefix = str(getattr(s, "sales_order_number_prefix", "AMZ-"))
    orders: dict[str, str] = {}
    async with CommercetoolsClient(s) as ct:
        if await ct.get_order_by_number(f"{prefix}{ok}") is None:
            await ct.create_order_import(
                {"orderNumber": f"{prefix}{ok}",
                 "totalPrice": {"currencyCode": "USD", "centAmount": 2900}}
            )  # fmt: skip
        for number in (ok, hold, late):
            found = await ct.get_order_by_number(f"{prefix}{number}")
            orders[number] = str(found.get("orderState") or "found") if found else "missing"
    assert orders[ok] != "missing" and orders[late] == "missing"
    month = dates[hold].strftime("%Y-%m")
    out = tmp_path / "reconciliation.csv"
    r = cli(s, "report", "reconciliation", "--month", month, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stdout
    deadline_late = iso((dates[late] + timedelta(hours=24)).timestamp())
    shipped = ["2", "29"] if HAS_ASN else ["0", "0"]
    expected_rows = {
        late: [late, iso(dates[late].timestamp()), "New", "1",
               "1", "0", "0", "0", "0", "0", "0", "0", "0", "0",
               "held", "-", "-", f"{prefix}{late}", orders[late],
               "line 1: ordered in Cases, case size unknown; line 1: on hold (unit-of-measure); "
               f"not acknowledged by the deadline {deadline_late}"],
        hold: [hold, iso(dates[hold].timestamp()), "Acknowledged", "1",
               "2", "20", "2", "20", "0", "0", "0", "0", "0", "0",
               "acknowledged", "Success", "-", f"{prefix}{hold}", orders[hold], ""],
        ok: [ok, iso(dates[ok].timestamp()), "Acknowledged", "2",
             "2", "32", "2", "29", "0", "0", "0", "3", *shipped,
             "acknowledged", "Success", "accepted" if HAS_ASN else "-", f"{prefix}{ok}",
             orders[ok], ""],
    }  # fmt: skip
    start, end = month_bounds(month)
    in_month = [
        expected_rows[n] for n in (late, hold, ok) if start <= dates[n].timestamp() < end
    ]  # by PO date: 25 h, 20 h, 17 h ago
    with out.open(newline="") as f:
        got = list(csv.reader(f))
    assert got[0][:4] == ["po_number", "po_date", "po_state", "lines"]
    assert got[1:-1] == in_month
    sums = [str(sum(int(row[i]) for row in in_month)) for i in range(3, 14)]
    flagged = sum(1 for row in in_month if row[-1])
    assert got[-1] == [f"TOTAL ({len(in_month)} POs)", "", "", *sums, "", "", "", "", "",
                       f"{flagged} PO(s) with discrepancies"]  # fmt: skip


def test_a_key_held_by_another_worker_is_a_404_naming_both() -> None:
    """The table lookup's miss, decided from the assignment (no Kafka needed)."""
    from types import SimpleNamespace

    from faust.types import TP

    from streams.observability.web import missing

    class Table:
        name = "pos"
        changelog_topic = SimpleNamespace(get_topic_name=lambda: "app-pos-changelog")

    def ops(actives: set[TP]) -> Any:
        app = SimpleNamespace(
            producer=SimpleNamespace(key_partition=lambda topic, key: TP(topic, 2)),
            assignor=SimpleNamespace(assigned_actives=lambda: actives),
            router=SimpleNamespace(key_store=lambda table, key: "http://worker-b:6066"),
        )
        return SimpleNamespace(app=app, worker="worker-a:6066")

    body, status = missing(ops(set()), Table(), b"PO1", "PO 'PO1'")
    assert status == 404
    assert body["error"] == (
        "PO 'PO1' is not on this worker (worker-a:6066): partition 2 of table pos belongs to "
        "http://worker-b:6066; ask that worker"
    )
    assert (body["worker"], body["owner"], body["partition"]) == (
        "worker-a:6066", "http://worker-b:6066", 2,
    )  # fmt: skip
    body, _ = missing(ops({TP("app-pos-changelog", 2)}), Table(), b"PO1", "PO 'PO1'")
    assert body["error"].startswith("PO 'PO1' is not known: this worker (worker-a:6066) owns")
