"""What the product reads at run time ships inside the package and is found with
importlib.resources, so an installed wheel works outside the checkout."""

from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path

from streams.adapters import amazon_models

ROOT = Path(__file__).resolve().parents[2]


def test_amazon_models_are_package_data() -> None:
    package = Path(str(files("streams")))
    assert amazon_models.MODELS_DIR == package / "schemas" / "amazon"
    for name in amazon_models.MODELS.values():
        assert (amazon_models.MODELS_DIR / name).is_file(), name


def test_the_package_link_is_the_repository_schemas() -> None:
    link = ROOT / "src" / "streams" / "schemas"
    assert link.is_symlink() and link.resolve() == (ROOT / "schemas").resolve()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = data["tool"]["setuptools"]["package-data"]["streams"]
    assert {"schemas/*.json", "schemas/**/*.json"} <= set(patterns)
