"""Every file a doc, comment or docstring of the product names exists in the repository: a
reader cannot open a page that is not there (``*.md`` anywhere, and repository paths such as
``schemas/x.json`` or ``src/streams/y.py``; GitHub links to this repository count by path)."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = (
    "README.md",
    "src",
    "docs",
    "schemas",
    "scripts",
    "tests",
    "bench",
    "prometheus",
    "grafana",
)
SUFFIXES = {".py", ".md", ".sh", ".json", ".yml", ".yaml", ".toml", ".mjs", ".js", ".txt"}
TOP = r"(?:docs|schemas|scripts|tests|bench|src/streams|prometheus|grafana|deploy)"
# a name ends before a character that cannot be part of it; `<kind>.md` templates and
# placeholders (`{x}.md`, `$X.md`, `*.md`) are no file names
NAME = re.compile(
    r"(?<![\w<{$*.-])(?:[\w./-]*github\.com/vc-ct-streams/vc-ct-streams/blob/[\w.-]+/)?"
    rf"(?P<name>(?:\.{{1,2}}/)*[A-Za-z0-9_][\w./-]*\.md|{TOP}/[\w./-]+\.(?:json|py|sh|yml|yaml|md|mjs|csv))"
    r"(?![\w/<{])"
)  # fmt: skip
# copies of upstream files and their notes: paths there are the upstream repository's, so
# only bare names (``NOTES.md``) are judged; bench results record the files of their day
UPSTREAM = ("tests/fixtures/commercetools/", "schemas/amazon/")
SKIPPED = ("bench/results/", "tests/unit/test_doc_references.py")


def named_files() -> list[tuple[Path, int, str]]:
    out: list[tuple[Path, int, str]] = []
    for top in SCANNED:
        base = ROOT / top
        files = [base] if base.is_file() else sorted(base.rglob("*"))
        for f in files:
            rel = f.relative_to(ROOT).as_posix()
            generated = "node_modules" in f.parts or any(p.endswith(".egg-info") for p in f.parts)
            if not f.is_file() or f.suffix not in SUFFIXES or generated:
                continue
            if rel.startswith(SKIPPED):
                continue
            upstream = rel.startswith(UPSTREAM)
            text = f.read_text(encoding="utf-8", errors="replace")
            for m in NAME.finditer(text):
                name = m["name"].rstrip(".")
                if upstream and "/" in name:
                    continue
                # code builds paths of its own (tmp files, examples): there only page names
                # are judged; docs and comments are judged on every repository path
                if f.suffix == ".py" and not name.endswith(".md"):
                    continue
                out.append((f, text.count("\n", 0, m.start()) + 1, name))
    return out


@functools.cache
def repository_names() -> frozenset[str]:
    """Every file name in the repository (hidden directories and node_modules aside)."""
    names: set[str] = set()
    for _, dirs, filenames in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "node_modules"]
        names.update(filenames)
    return frozenset(names)


def exists(source: Path, name: str) -> bool:
    if any((base / name).exists() for base in (source.parent, ROOT, ROOT / "docs")):
        return True
    # a bare name (``LICENSE-NOTE.md`` of a directory the code names) exists somewhere
    return "/" not in name and name in repository_names()


def test_every_named_file_exists() -> None:
    found = named_files()
    missing = [
        f"{f.relative_to(ROOT)}:{line}: {name}" for f, line, name in found if not exists(f, name)
    ]
    assert missing == [], "names of files that are not in the repository:\n" + "\n".join(missing)


def test_the_check_sees_references() -> None:
    # the scan finds the kinds of reference it is meant to judge (so an empty result means
    # every name resolved, not that nothing was looked at)
    names = {name for _, _, name in named_files()}
    assert {"docs/topics.md", "docs/commercetools.md", "schemas/dlq.schema.json"} <= names
    assert "docs/runbooks/StreamsWorkerDown.md" in names  # from a GitHub link
    assert not exists(ROOT / "README.md", "DESIGN.md")
    assert not exists(ROOT / "README.md", "docs/no-such-page.md")
