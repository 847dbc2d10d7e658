"""Package data: what the code opens is found through ``streams.package_data`` (in the checkout
via the symlinks ``src/streams/schemas`` and ``src/streams/_data/*``, in a wheel as copied
files), and a wheel installed
into a fresh venv works outside the checkout with only ``requirements.lock`` beside it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from streams import package_data
from streams.adapters import amazon_models

REPO = Path(__file__).resolve().parents[2]


def test_package_data_is_the_documented_repository_files() -> None:
    # one copy of each file: the package's view is the top-level directory itself
    assert package_data.schemas_dir().resolve() == REPO / "schemas"
    assert package_data.amazon_models_dir().resolve() == REPO / "schemas" / "amazon"
    assert package_data.alert_rules_path().resolve() == REPO / "prometheus" / "alerts.yml"
    assert package_data.kafka_pom_path().resolve() == REPO / "kafka" / "pom.xml"
    assert amazon_models.MODELS_DIR == package_data.amazon_models_dir()
    for topic in ("ct.messages", "master.sku-mappings", "wms.dispatches", "dlq"):
        assert package_data.topic_schema_path(topic).is_file(), topic


# modules that look for the checkout only for their own state dirs (.cache, .run), and fall
# back to the working directory when installed
STATE_ONLY = {"src/streams/sandbox/ctmock/__init__.py", "src/streams/localkafka.py"}


def test_no_module_reaches_into_the_checkout_by_path() -> None:
    # parents[...] of a module is the repository only in a checkout; a wheel has none
    found = {
        str(p.relative_to(REPO))
        for p in (REPO / "src" / "streams").rglob("*.py")
        if "parents[" in p.read_text()
    }
    assert found <= STATE_ONLY
    for name in found:
        assert 'if not (REPO / "pyproject.toml").is_file():' in (REPO / name).read_text(), name


# validates a topic example and an Amazon model from the installed package, cwd outside the repo
PROBE = textwrap.dedent(
    """
    import json, sys
    from jsonschema import Draft202012Validator
    import streams
    from streams import package_data
    from streams.adapters import amazon_models
    from streams.sandbox import ctmock

    where = str(streams.__file__)
    assert "site-packages" in where, where
    schema = json.loads(package_data.topic_schema_path("master.sku-mappings").read_text())
    example = package_data.schemas_dir() / "examples" / "master.sku-mappings" / "sku-1001.json"
    doc = json.loads(example.read_text())
    assert list(Draft202012Validator(schema).iter_errors(doc)) == []
    bad = dict(doc, unitsPerCase="twelve")
    assert list(Draft202012Validator(schema).iter_errors(bad)), "a bad record passed"
    ack = amazon_models.example("vendorOrders", "getPurchaseOrders")
    assert ack, "no Amazon example"
    item = {"amount": 3, "unitOfMeasure": "Eaches"}
    assert amazon_models.validate("vendorOrders", "ItemQuantity", item) == []
    assert amazon_models.validate("vendorOrders", "ItemQuantity", {"amount": "3"}) != []
    assert package_data.alert_rules_path().is_file()
    assert package_data.kafka_pom_path().is_file()
    assert (ctmock.HERE / "server.mjs").is_file() and (ctmock.HERE / "package-lock.json").is_file()
    assert (package_data.amazon_models_dir() / "LICENSE-NOTE.md").is_file()
    print("ok", package_data.schemas_dir())
    """
)


def _copy_sources(dst: Path) -> None:
    """What the build reads, symlinks kept (so the build sees the checkout's layout)."""
    for name in ("pyproject.toml", "README.md", "MANIFEST.in"):
        shutil.copy2(REPO / name, dst / name)
    for name in ("src", "schemas", "prometheus", "kafka"):
        shutil.copytree(
            REPO / name,
            dst / name,
            symlinks=True,
            ignore=shutil.ignore_patterns("__pycache__", "node_modules", "*.egg-info"),
        )


@pytest.mark.slow
def test_wheel_installs_and_finds_its_data_outside_the_checkout(tmp_path: Path) -> None:
    src, dist, venv, elsewhere = (tmp_path / n for n in ("src", "dist", "venv", "elsewhere"))
    for d in (src, dist, elsewhere):
        d.mkdir()
    _copy_sources(src)
    # nothing of the checkout on the path (PYTHONPATH=src would make pip see it installed)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-q", "-w", str(dist), str(src)], check=True, env=env
    )
    (wheel,) = dist.glob("vc_ct_streams-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    vpip = [str(venv / "bin" / "python"), "-m", "pip"]
    # the Dockerfile's steps: binary wheels of the lock, installed with no index and no
    # resolver; pip check then proves the lock closed
    lock = REPO / "requirements.lock"
    fetch = [*pip, "download", "-q", "--only-binary=:all:", "--no-deps", "-d", str(dist)]
    subprocess.run([*fetch, "-r", str(lock)], check=True, env=env, cwd=elsewhere)
    install = [*vpip, "install", "-q", "--no-index", "--find-links", str(dist), "--no-deps"]
    install += ["--only-binary=:all:", "-r", str(lock), str(wheel)]
    subprocess.run(install, check=True, env=env, cwd=elsewhere)
    subprocess.run([*vpip, "check"], check=True, env=env, cwd=elsewhere)
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", PROBE],
        cwd=elsewhere,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok ") and str(venv) in out.stdout
    # the command is installed too, and a secret given as a file is read and masked
    secret = tmp_path / "ct-secret"
    secret.write_text("s3cr3t-from-a-file\n")
    env_cli = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
               "STREAMS_CT_CLIENT_SECRET_FILE": str(secret)}  # fmt: skip
    cfg = subprocess.run([str(venv / "bin" / "streams"), "config"], cwd=elsewhere,
                         env=env_cli, capture_output=True, text=True)  # fmt: skip
    assert cfg.returncode == 0, cfg.stderr
    assert "STREAMS_CT_CLIENT_SECRET=****" in cfg.stdout and "s3cr3t" not in cfg.stdout
