"""The import graph of ``src/streams`` (read from the sources, every import counted: at
module level, in functions and under ``TYPE_CHECKING``): no cycle, and each layer imports
only layers below it.

    domain  <-  adapters  <-  observability  <-  runtime  <-  agents  <-  app  <-  worker / cli

``domain`` imports nothing of the product but itself; ``observability`` never imports
``agents`` (the status page reads a ``StatusSource`` Protocol the ops flow implements).
A new top-level module or package is given its layer in ``LAYERS``.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import streams

ROOT = Path(streams.__file__).parent

# group (``streams.<first part>``) -> layer; a module may import its own group and groups of a
# lower layer, and groups of its own layer only without a cycle between them
LAYERS: dict[str, int] = {
    "streams.domain": 0,
    "streams": 0,  # the package itself: __version__
    "streams.config": 0,
    "streams.settings": 0,  # the groups streams.config.Settings is composed of
    "streams.topics": 0,
    "streams.procutil": 0,
    "streams.package_data": 0,  # files shipped with the package
    "streams.adapters": 1,
    "streams.schemas_gen": 1,  # topic schemas from the domain models
    "streams.contracts": 3,  # streams validate / publish: schemas, models, Kafka
    "streams.observability": 2,
    "streams.views": 2,
    "streams.runtime": 3,  # what the product relies on of Faust's internals
    "streams.rebalance": 3,
    "streams.restore": 3,
    "streams.resync": 3,
    "streams.doctor": 3,  # streams doctor: reads Kafka, commercetools, Amazon
    "streams.dlq": 3,  # streams dlq replay
    "streams.report_sources": 3,  # what the report reads (Kafka, commercetools)
    "streams.report": 3,
    "streams.report_run": 3,
    "streams.report_invoices": 3,  # the report's invoice part
    "streams.sandbox": 3,
    "streams.localkafka": 3,
    "streams.agents": 4,
    "streams.app": 5,
    "streams.demo": 5,
    "streams.worker": 6,
    "streams.cli": 7,
    "streams.__main__": 8,
}
# deferred-import cycles that predate this test; it fails on any other, and on one of these
# once it is gone (then strike it here)
KNOWN_CYCLES: list[frozenset[str]] = []


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The product's modules ``name`` imports (``from a import b`` names ``a.b`` when that is
    a module, else ``a``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package up
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            subs = [f"{base}.{a.name}" for a in node.names]
            targets = [s for s in subs if s in known] or [base]
        else:
            continue
        for t in targets:
            if t == "streams" or t.startswith("streams."):
                while t not in known and "." in t:  # an attribute of a module
                    t = t.rpartition(".")[0]
                yield t


@functools.cache
def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    g: dict[str, set[str]] = {}
    for name, path in mods.items():
        # a module is loaded inside its packages: importing one of them is no cycle
        ancestors = {name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)}
        g[name] = {t for t in imports_of(name, path, known) if t != name and t not in ancestors}
    return g


def group(name: str) -> str:
    return ".".join(name.split(".")[:2])


def cycles(g: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[frozenset[str]] = []
    for root in sorted(g):
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(g.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(frozenset(comp))
    return out


def test_every_module_has_a_layer() -> None:
    missing = sorted({group(m) for m in modules()} - set(LAYERS))
    assert not missing, f"give these a layer in LAYERS: {missing}"


def test_no_import_cycle_between_modules() -> None:
    found = cycles(graph())
    new = [sorted(c) for c in found if c not in KNOWN_CYCLES]
    assert not new, f"import cycles: {new}"
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in found]
    assert not gone, f"no longer a cycle, strike from KNOWN_CYCLES: {gone}"


def test_no_import_cycle_between_layers() -> None:
    g: dict[str, set[str]] = {}
    for src, targets in graph().items():
        g.setdefault(group(src), set()).update(group(t) for t in targets if group(t) != group(src))
    assert not cycles(g), f"packages import each other: {[sorted(c) for c in cycles(g)]}"


def violations(g: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, targets in sorted(g.items()):
        a = group(src)
        for t in sorted(targets):
            b = group(t)
            if a != b and (a == "streams.domain" or LAYERS.get(b, 99) > LAYERS.get(a, -1)):
                bad.append(f"{src} -> {t}")
    return bad


def test_each_layer_imports_only_layers_below() -> None:
    bad = violations(graph())
    assert not bad, "layer violations:\n" + "\n".join(bad)


def test_the_checks_find_a_planted_cycle_and_upward_imports() -> None:
    g = {"streams.a.x": {"streams.a.y"}, "streams.a.y": {"streams.a.x"}, "streams.a.z": set()}
    assert cycles(g) == [frozenset({"streams.a.x", "streams.a.y"})]
    planted = {
        "streams.observability.web": {"streams.agents.ops", "streams.domain.inventory"},
        "streams.domain.inventory": {"streams.config"},  # the domain takes no settings
        "streams.agents.ops": {"streams.app"},
    }
    assert violations(planted) == [
        "streams.agents.ops -> streams.app",
        "streams.domain.inventory -> streams.config",
        "streams.observability.web -> streams.agents.ops",
    ]
