"""The image: the Dockerfile passes hadolint and builds from the wheel with the pinned lock,
non-root, with no build tools in the final stage; requirements.lock is what was tested.

No Docker engine runs here, so the build itself is not run; tests/deploy/test_package_data.py
runs the final stage's install commands (binary wheels, no index, no resolver) in a venv."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from streams.config import Settings

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
LOCK = REPO / "requirements.lock"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    ins = instructions()
    last = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    return ins[last:]


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    out = subprocess.run(
        [hadolint, "--failure-threshold", "style", "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and out.stdout == "", out.stdout + out.stderr


def test_final_stage_installs_the_wheel_with_the_lock_and_nothing_else() -> None:
    runs = " && ".join(a for w, a in final_stage() if w == "RUN")
    assert "pip install" in runs
    for flag in ("--no-index", "--no-deps", "--only-binary=:all:", "-r /tmp/requirements.lock"):
        assert flag in runs, flag
    assert "/wheels/vc_ct_streams-*.whl" in runs
    assert "pip check" in runs
    assert re.search(r"pip uninstall --yes .*\bpip\b", runs), "pip stays in the image"
    # no compiler, no package manager installs, nothing built in the final stage
    for tool in ("apt-get install", "apk add", "gcc", "build-essential", "pip wheel", "-e ."):
        assert tool not in runs, tool
    # the wheel is built in the build stage from this project
    first = instructions()[: len(instructions()) - len(final_stage())]
    assert any(w == "RUN" and "pip wheel" in a and " ." in a for w, a in first)


def test_final_stage_runs_as_a_numeric_non_root_user() -> None:
    users = [a for w, a in final_stage() if w == "USER"]
    assert users, "no USER: the image would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, users[-1]
    assert gid == "" or (gid.isdigit() and int(gid) != 0), users[-1]


def test_image_settings_match_the_product() -> None:
    env = " ".join(a for w, a in final_stage() if w == "ENV")
    assert "STREAMS_DATA_DIR=/app/.data" in env
    assert "STREAMS_WEB_HOST=0.0.0.0" in env
    assert ("EXPOSE", str(Settings().web_port)) in final_stage()
    assert final_stage()[-1] == ("CMD", '["streams", "worker"]')


def ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore's rule: the last matching pattern wins, ``!`` re-includes; a pattern
    matching a parent directory excludes what is under it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat.removeprefix("!").removeprefix("**/")
        if any(fnmatch.fnmatchcase(p, pat) or fnmatch.fnmatchcase(p.split("/")[-1], pat)
               for p in (prefixes if not neg else [path])):  # fmt: skip
            verdict = not neg
    return verdict


def test_dockerignore_keeps_what_the_build_copies() -> None:
    patterns = [
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    copies = [a.split() for w, a in instructions() if w == "COPY" and "--from" not in a]
    sources = [s.rstrip("/") for args in copies for s in args[:-1]]
    # what the wheel build reads (tests/deploy/test_package_data.py copies the same)
    inputs = {"pyproject.toml", "README.md", "MANIFEST.in", "requirements.lock", "src", "schemas"}
    assert inputs <= set(sources)
    for src in sources:
        assert (REPO / src).exists(), src
        assert not ignored(src, patterns), f"{src} is copied but .dockerignore drops it"
    assert ignored("prometheus/prometheus.yml", patterns) and ignored("tests/x.py", patterns)
    # the package data the wheel links to goes into the build context
    links = [REPO / "src" / "streams" / "schemas", *(REPO / "src" / "streams" / "_data").iterdir()]
    for link in links:
        assert link.is_symlink(), link
        rel = link.resolve().relative_to(REPO)
        assert any(s == str(rel) or s.startswith(f"{rel}/") for s in sources), rel


def _pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for ln in lines:
        if ln.strip() and not ln.startswith("#"):
            name, _, version = ln.strip().partition("==")
            out[re.sub(r"[-_.]+", "-", name).lower()] = version
    return out


def test_lock_pins_the_declared_dependencies_at_their_versions() -> None:
    declared = _pins(
        tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    )
    locked = _pins(LOCK.read_text().splitlines())
    assert {n: locked.get(n) for n in declared} == declared


def test_lock_is_the_tested_venv() -> None:
    # the venv running the tests installed with -c requirements.lock (scripts/setup.sh)
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "lock.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
