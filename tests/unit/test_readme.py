"""The README documents every setting and starts with exactly the two commands."""

from __future__ import annotations

import re
from pathlib import Path

from streams.config import Settings, env_name

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [env_name(f) for f in Settings.model_fields if f"`{env_name(f)}`" not in README]
    assert missing == []


def test_no_undocumented_variables_are_named() -> None:
    named = set(re.findall(r"`(STREAMS_[A-Z0-9_]+)`", README))
    known = {env_name(f) for f in Settings.model_fields}
    extra = {n for n in named - known if not n.endswith(("_FILE", "_"))}
    assert extra == set()


def test_readme_starts_with_the_two_commands() -> None:
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    commands = [ln.split("#")[0].strip() for ln in first_block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
