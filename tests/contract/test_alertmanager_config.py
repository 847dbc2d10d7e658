"""prometheus/alertmanager.example.yml: Alertmanager accepts it (``amtool check-config``),
every owner team and severity routes to that team's receiver (``amtool config routes
test``), and its inhibit rules name alerts that exist.

amtool comes from the Debian package ``prometheus-alertmanager`` (scripts/setup.sh --dev
installs it); the tests skip, saying so, only when it is missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import miniyaml
from tests.support.promtool import tool_missing

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "prometheus" / "alertmanager.example.yml"
ALERTS = REPO / "prometheus" / "alerts.yml"
OWNERS = ("operations", "ecommerce", "finance", "fulfilment", "platform")


@pytest.fixture(scope="module")
def amtool() -> str:
    given = os.environ.get("AMTOOL")
    path = (given if os.access(given, os.X_OK) else None) if given else shutil.which("amtool")
    if path is None:
        tool_missing(
            "amtool is not installed: `apt-get install -y prometheus-alertmanager` "
            "(Debian/Ubuntu) or set AMTOOL=/path/to/amtool"
        )
    assert path is not None
    return path


def run(amtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([amtool, *args], capture_output=True, text=True, timeout=60, check=False)


def test_alertmanager_accepts_the_config(amtool: str) -> None:
    result = run(amtool, "check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("owner", OWNERS)
@pytest.mark.parametrize("severity", ["critical", "warning"])
def test_each_team_gets_its_alerts(amtool: str, owner: str, severity: str) -> None:
    want = f"{owner}-page" if severity == "critical" else owner
    labels = [f"owner={owner}", f"severity={severity}", "alertname=StreamsAnything"]
    result = run(amtool, "config", "routes", "test", f"--config.file={CONFIG}", *labels)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [want]


def test_an_alert_without_a_known_owner_reaches_platform(amtool: str) -> None:
    result = run(amtool, "config", "routes", "test", f"--config.file={CONFIG}", "owner=nobody")
    assert result.stdout.split() == ["platform"]


def test_inhibit_rules_name_existing_alerts() -> None:
    doc = miniyaml.load_file(CONFIG)
    alerts = {
        r["alert"] for g in miniyaml.load_file(ALERTS)["groups"] for r in g["rules"] if "alert" in r
    }
    named: set[str] = set()
    for rule in doc["inhibit_rules"]:
        for matcher in [*rule["source_matchers"], *rule["target_matchers"]]:
            named.update(re.findall(r'alertname="(\w+)"', matcher))
    assert named and named <= alerts, sorted(named - alerts)
    # every team named by an alert's owner label has a receiver
    receivers = {r["name"] for r in doc["receivers"]}
    assert {*OWNERS, *(f"{o}-page" for o in OWNERS)} <= receivers
