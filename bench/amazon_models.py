"""Checking bodies against Amazon's models: jsonschema, the hand-written checker, jsonschema-rs.

    python -m bench.amazon_models [--bodies 200] [--rounds 5] [--no-save]

Per body, the time to answer "valid or not" for an acknowledgement (vendorOrders
``OrderAcknowledgement``, as the acknowledgement sender checks each one) and for an ASN
(vendorShipments ``ShipmentConfirmation``, as the ASN flow checks each one): with Python's
``jsonschema`` (draft 4, what ``amazon_models.validate`` reports errors with), with the
hand-written compiler of ``streams.adapters.fast_schema`` when it is still in the tree, and
with ``jsonschema-rs``. The bodies are valid ones (the common case: the answer is "yes") and
as many mutated ones. The best of ``--rounds`` rounds is printed (microseconds per body).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft4Validator

from streams.adapters import amazon_models
from streams.sandbox.amazon.generator import OrderGenerator, acknowledgement_for

REPO = Path(__file__).resolve().parents[1]
ASN_EXAMPLES = REPO / "schemas" / "examples" / "amazon.shipment-confirmations"
ODD: list[Any] = [None, True, 0, 1, -3, 1.0, 2.5, "", "x", "Cases", [], {}]


def acknowledgements(n: int) -> list[dict[str, Any]]:
    gen = OrderGenerator(seed=11)
    rng = random.Random(3)
    out: list[dict[str, Any]] = []
    while len(out) < n:
        order = gen.order()
        if order["orderDetails"]["items"]:
            code = rng.choice(["Accepted", "Backordered", "Rejected"])
            out.append(acknowledgement_for(order, code=code))
    return out


def asns(n: int) -> list[dict[str, Any]]:
    base = [orjson.loads(p.read_bytes()) for p in sorted(ASN_EXAMPLES.glob("*.json"))]
    return [copy.deepcopy(base[i % len(base)]) for i in range(n)]


def mutated(docs: list[dict[str, Any]], seed: int) -> list[Any]:
    rng = random.Random(seed)
    out = []
    for doc in docs:
        d = copy.deepcopy(doc)
        node: Any = d
        while True:  # walk down to a random leaf's parent
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            k = rng.choice(keys)
            if isinstance(node[k], dict | list) and node[k] and rng.random() < 0.7:
                node = node[k]
                continue
            node[k] = rng.choice(ODD)
            break
        out.append(d)
    return out


def checkers(api: str, definition: str) -> dict[str, Callable[[Any], bool]]:
    m = amazon_models.model(api)
    root = {"$ref": f"#/definitions/{definition}", "definitions": m["definitions"]}
    py = Draft4Validator(root)
    out: dict[str, Callable[[Any], bool]] = {"jsonschema": py.is_valid}
    try:  # the hand-written checker, while it exists
        fast = importlib.import_module("streams.adapters.fast_schema")
        check = fast.checker(api, definition)
        if check is not None:
            out["hand-written"] = check
    except ImportError:
        pass
    import jsonschema_rs

    out["jsonschema-rs"] = jsonschema_rs.Draft4Validator(root, validate_formats=False).is_valid
    return out


def per_body_us(check: Callable[[Any], bool], docs: list[Any], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for d in docs:
            check(d)
        best = min(best, time.perf_counter() - t)
    return best / len(docs) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bodies", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args()
    sets = {
        ("vendorOrders", "OrderAcknowledgement"): acknowledgements(a.bodies),
        ("vendorShipments", "ShipmentConfirmation"): asns(a.bodies),
    }
    res: dict[str, Any] = {"bodies": a.bodies, "rounds": a.rounds, "results": {}}
    print(f"{'body':<40}{'checker':<15}{'valid µs':>10}{'mutated µs':>12}{'agree':>7}")
    for (api, definition), docs in sets.items():
        bad = mutated(docs, seed=5)
        cs = checkers(api, definition)
        truth = [cs["jsonschema"](d) for d in docs + bad]
        for name, check in cs.items():
            agree = sum(check(d) == t for d, t in zip(docs + bad, truth, strict=True))
            v_us = per_body_us(check, docs, a.rounds)
            m_us = per_body_us(check, bad, a.rounds)
            res["results"][f"{definition}/{name}"] = {
                "valid_us": round(v_us, 2),
                "mutated_us": round(m_us, 2),
                "agree": agree,
                "of": len(truth),
            }
            label = f"{api}.{definition}"
            print(f"{label:<40}{name:<15}{v_us:>10.1f}{m_us:>12.1f}{agree:>4}/{len(truth)}")
    if not a.no_save:
        from bench.inventory import save_result

        print("saved", save_result("amazon-models", res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
