"""Find and run ``promtool`` (Prometheus' rule/config checker; Debian package ``prometheus``).

Looked up in this order: ``$PROMTOOL`` (a path), ``promtool`` on ``PATH``, then the usual
install locations. The project's set-up installs it (``apt-get install -y prometheus``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

INSTALL_HINT = (
    "promtool is not installed: `apt-get install -y prometheus` (Debian/Ubuntu) "
    "or set PROMTOOL=/path/to/promtool"
)
_CANDIDATES = ("/usr/bin/promtool", "/usr/local/bin/promtool", "/opt/prometheus/promtool")


def find_promtool() -> str | None:
    """Path of an executable promtool, or None."""
    given = os.environ.get("PROMTOOL")
    if given:
        path = Path(given)
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    found = shutil.which("promtool")
    if found:
        return found
    for candidate in _CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def run_promtool(
    promtool: str, *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``promtool args...``; output (stdout + stderr) in ``.stdout``."""
    return subprocess.run(
        [promtool, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


# .ci/run sets it: there a missing Prometheus tool is a failure, not a skip
REQUIRE_ENV = "REQUIRE_PROMETHEUS_TOOLS"


def tool_missing(hint: str) -> None:
    """Skip the test (saying what to install), or fail it where the tools are required."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{hint} ({REQUIRE_ENV}=1: the Prometheus tools are required here)")
    pytest.skip(hint)
