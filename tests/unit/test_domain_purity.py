"""The domain core imports no framework or I/O library (cosmicpython's rule)."""

from __future__ import annotations

import ast
from pathlib import Path

import streams.domain

FORBIDDEN = {
    "faust",
    "mode",
    "aiokafka",
    "aiohttp",
    "rocksdict",
    "prometheus_client",
    "requests",
    "streams.adapters",
    "streams.agents",
    "streams.app",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_domain_imports_nothing_forbidden() -> None:
    root = Path(streams.domain.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert files
    for f in files:
        bad = {
            m
            for m in imported_modules(f)
            if any(m == x or m.startswith(x + ".") for x in FORBIDDEN)
        }
        assert not bad, f"{f.name} imports {bad}"
