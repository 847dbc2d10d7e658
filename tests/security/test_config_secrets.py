"""Secrets come only from the environment or files (``STREAMS_<NAME>_FILE``), and ``streams
config`` never prints one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pydantic import SecretStr

from streams.config import SECRET_FIELDS, Settings, env_name


def planted(name: str) -> str:
    return f"PLANTED|{name}|s3cr3t+/="


def secret_fields() -> list[str]:
    return [n for n, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)]


def test_every_secret_setting_is_a_secret_str_with_a_file_variant() -> None:
    assert set(secret_fields()) == set(SECRET_FIELDS)


def test_file_variants(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SECRET_FIELDS:
        monkeypatch.delenv(env_name(name), raising=False)
        path = tmp_path / name
        path.write_text(planted(name) + "\n", encoding="utf-8")  # the newline is trimmed
        monkeypatch.setenv(f"{env_name(name)}_FILE", str(path))
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    for name in SECRET_FIELDS:
        value = getattr(s, name)
        assert isinstance(value, SecretStr) and value.get_secret_value() == planted(name)
        assert planted(name) not in repr(s) and planted(name) not in str(s.masked())
    # the variable itself wins over the file
    monkeypatch.setenv(env_name("ct_client_secret"), "direct-value")
    assert Settings(_env_file=None).ct_client_secret.get_secret_value() == "direct-value"  # type: ignore[call-arg]


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env=env,
        cwd=cwd,  # no stray .env file
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_config_command_masks_every_secret(tmp_path: Path) -> None:
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("STREAMS_")}
    for i, name in enumerate(SECRET_FIELDS):
        if i % 2:  # half straight from the environment, half from files
            env[env_name(name)] = planted(name)
        else:
            (tmp_path / name).write_text(planted(name), encoding="utf-8")
            env[f"{env_name(name)}_FILE"] = str(tmp_path / name)
    env["STREAMS_KAFKA_SECURITY_PROTOCOL"] = "SASL_SSL"
    env["STREAMS_KAFKA_SASL_USERNAME"] = "svc-user"
    done = run_cli(["config"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout + done.stderr
    for name in SECRET_FIELDS:
        for form in (planted(name), quote(planted(name), safe=""), "s3cr3t"):
            assert form not in out, f"{name} leaked by `streams config`"
        assert f"{env_name(name)}=****" in done.stdout
    assert "STREAMS_KAFKA_SASL_USERNAME=svc-user" in done.stdout  # not a secret: shown
