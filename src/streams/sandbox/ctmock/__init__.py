"""Runs the local commercetools emulator (``@labdigital/commercetools-mock``) on 127.0.0.1.

``package.json``/``package-lock.json`` next to this file pin the npm package; ``install()``
runs ``npm ci`` into ``.cache/ctmock`` (ignored by git) and ``up()`` starts ``node server.mjs``
detached, records its pid under ``.run/ctmock/`` and stops it by that pid in ``down()``.
``server.mjs`` and the ES modules next to it extend the mock so that it behaves like
commercetools for storefront orders: inventory effects of orders (``OutOfStock``, negative stock
for ``TrackOnly``), Messages and ``GET /messages``, subscription delivery to Kafka, ``addQuantity``,
``sort`` over HTTP. What is emulated, its ``CT_MOCK_*`` variables and what differs from
commercetools: ``docs/commercetools-emulator.md``. ``storefront.py`` has client-side helpers.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from streams.procutil import alive, port_open, stop

if TYPE_CHECKING:
    from streams.config import Settings

HERE = Path(str(resources.files(__name__)))  # the npm files, package data in a wheel
# src/streams/sandbox/ctmock/__init__.py -> parents[4] is the repository root (editable install)
REPO = Path(__file__).resolve().parents[4]
if not (REPO / "pyproject.toml").is_file():  # installed as a wheel: keep state under the cwd
    REPO = Path.cwd()
CACHE = REPO / ".cache" / "ctmock"
RUN = REPO / ".run" / "ctmock"
FILES = (
    "package.json",
    "package-lock.json",
    "server.mjs",
    "hooks.mjs",
    "messages.mjs",
    "query.mjs",
    "inventory.mjs",
    "orders.mjs",
    "changes.mjs",
    "delivery.mjs",
)
STAMP = ".installed-lock.sha256"


def _lock_digest() -> str:
    return hashlib.sha256((HERE / "package-lock.json").read_bytes()).hexdigest()


def install(quiet: bool = True) -> Path:
    """``npm ci`` the pinned emulator into ``.cache/ctmock``; a no-op when that lock is installed.

    Returns the directory holding ``server.mjs`` and ``node_modules``.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    # parallel test sessions may call this at once; npm ci first wipes node_modules
    with (CACHE / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _install_locked(quiet)


def _install_locked(quiet: bool) -> Path:
    # the .mjs files are copied every time: they can change without the lock changing
    for name in FILES:
        shutil.copyfile(HERE / name, CACHE / name)
    stamp = CACHE / STAMP
    digest = _lock_digest()
    installed = (CACHE / "node_modules" / "@labdigital" / "commercetools-mock").is_dir()
    if installed and stamp.is_file() and stamp.read_text().strip() == digest:
        return CACHE
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm (Node.js 20+) is needed for the commercetools emulator")
    # --ignore-scripts: the only install script in the tree is msw's optional postinstall
    cmd = [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"]
    if quiet:
        # hides the known EBADENGINE warning (the package declares node >=22; it runs on 20)
        cmd.append("--loglevel=error")
    stamp.unlink(missing_ok=True)
    # stdout only carries npm's "added N packages" summary; errors go to stderr
    subprocess.run(cmd, cwd=CACHE, check=True, stdout=subprocess.DEVNULL if quiet else None)
    stamp.write_text(digest + "\n")
    return CACHE


def _pid_file(port: int) -> Path:
    # one pid file per port, so a test emulator on a free port never collides with `up`'s
    return RUN / f"ctmock-{port}.pid"


def _is_ours(pid: int) -> bool:
    """The pid still runs our server.mjs (guards against a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return alive(pid)  # no procfs: trust the pid file
    return b"server.mjs" in cmdline


def _read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if alive(pid) and _is_ours(pid) else None


def _token_answers(url: str, settings: Settings) -> bool:
    """POST /oauth/token returns 200: the emulator serves requests, not just the port."""
    query = urllib.parse.urlencode({"grant_type": "client_credentials"})
    basic = base64.b64encode(
        f"{settings.ct_client_id}:{settings.ct_client_secret.get_secret_value()}".encode()
    ).decode()
    req = urllib.request.Request(
        f"{url}/oauth/token?{query}",
        data=b"grant_type=client_credentials",
        method="POST",
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def up(
    settings: Settings,
    port: int | None = None,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start the emulator on 127.0.0.1 (``ct_mock_port`` or ``port``) unless it already runs.

    ``env`` adds variables for the emulator process alone, e.g.
    ``{"CT_MOCK_ORDER_STOCK_DELAY_MS": "2000", "CT_MOCK_DELIVERY_DROP_EVERY": "3"}``.
    """
    port = settings.ct_mock_port if port is None else port
    url = f"http://127.0.0.1:{port}"
    pid_file = _pid_file(port)
    pid = _read_pid(pid_file)
    if pid is not None:
        print(f"commercetools emulator already running at {url} (pid {pid})")
        return 0
    if port_open(port):
        print(f"port {port} is taken by another process; choose another port", file=sys.stderr)
        return 1
    node = shutil.which("node")
    if node is None:
        raise SystemExit("Node.js 20+ is needed for the commercetools emulator")
    home = install()
    RUN.mkdir(parents=True, exist_ok=True)
    log_path = RUN / f"ctmock-{port}.log"
    child_env = {
        **os.environ,
        **(env or {}),
        "CT_MOCK_PORT": str(port),
        "CT_MOCK_PROJECT_KEY": settings.ct_project_key,
    }
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [node, "server.mjs"],
            cwd=home,
            env=child_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives the shell that started it; stopped by pid
        )
    pid_file.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pid_file.unlink(missing_ok=True)
            print(f"emulator exited with {proc.returncode}; see {log_path}", file=sys.stderr)
            return 1
        if _token_answers(url, settings):
            print(f"commercetools emulator at {url} (project {settings.ct_project_key})")
            return 0
        time.sleep(0.1)
    stop(proc.pid)
    pid_file.unlink(missing_ok=True)
    print(f"emulator did not answer on {url} within {timeout:.0f}s", file=sys.stderr)
    return 1


def down(settings: Settings, port: int | None = None) -> int:
    """Stop the emulator on ``ct_mock_port`` (or ``port``) by its pid: SIGTERM, then SIGKILL."""
    port = settings.ct_mock_port if port is None else port
    pid_file = _pid_file(port)
    pid = _read_pid(pid_file)
    pid_file.unlink(missing_ok=True)
    if pid is None:
        others = sorted(
            f.stem.removeprefix("ctmock-") for f in RUN.glob("ctmock-*.pid") if _read_pid(f)
        )
        hint = f" (running on port {', '.join(others)}: pass that port)" if others else ""
        print(f"no commercetools emulator running on port {port}{hint}")
        return 0
    stop(pid)
    # the log matters when a start fails; after a clean stop it is clutter
    (RUN / f"ctmock-{port}.log").unlink(missing_ok=True)
    print(f"stopped commercetools emulator on port {port} (pid {pid})")
    return 0
