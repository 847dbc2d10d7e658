"""Write the topic schemas of the model-parsed input topics from the models the worker uses.

    python -m streams.schemas_gen            # (re)write schemas/<topic>.schema.json
    python -m streams.schemas_gen --check    # exit 1 when a committed file differs

``master.sku-mappings``, ``wms.dispatches`` and ``ct.inventory-commands`` are parsed with
pydantic models (``SkuMapping``, ``Dispatch``, ``InventoryCommand``); their published JSON
Schemas are generated from those models, so the worker and the contract cannot drift apart
(a test fails when the committed files are not what this module writes). The models use the
strict field types of ``streams.domain.contract_types``. The other schemas in ``schemas/``
are written by hand: the outputs the product produces (checked against what it emits) and
``ct.messages``, parsed field by field (checked against the parser on mutated records).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from streams.domain.dispatch import Dispatch
from streams.domain.inventory_commands import InventoryCommand
from streams.domain.mapping import SkuMapping
from streams.package_data import schemas_dir

SCHEMAS_DIR = schemas_dir()  # package data: found in a wheel install too
DRAFT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class Contract:
    """One topic's schema: the model and what the file says about the topic around it."""

    topic: str
    model: type[BaseModel]
    id: str
    title: str
    description: str
    key: str  # the value field the record's key must equal (the README's topic table)
    defs: dict[str, str] = field(default_factory=dict)  # model name -> name in $defs

    @property
    def path(self) -> Path:
        return SCHEMAS_DIR / f"{self.topic}.schema.json"


CONTRACTS: dict[str, Contract] = {
    c.topic: c
    for c in (
        Contract(
            "master.sku-mappings",
            SkuMapping,
            "master.sku-mappings.schema.json",
            "master.sku-mappings value: master data of one SKU",
            "Compacted topic, key = the commercetools SKU (must equal `sku`); a tombstone (null "
            "value) deletes the mapping. SKUs without a mapping are never sent to Amazon. "
            "`amazonChannels` lists the supply channels (ids or keys) whose stock may serve "
            "Amazon; empty = STREAMS_DEFAULT_AMAZON_CHANNELS, and when that is empty too, every "
            "channel. Further properties are allowed and ignored.",
            key="sku",
            defs={"Money": "money"},
        ),
        Contract(
            "wms.dispatches",
            Dispatch,
            "urn:vc-ct-streams:schema:wms.dispatches",
            "WMS dispatch",
            "Value of topic wms.dispatches (key: purchaseOrderNumber): one shipment leaving a "
            "warehouse for one Amazon purchase order, quantities in eaches. The schema checks "
            "structure only. Amazon's ASN rules (SSCC check digit, SCAC format, "
            "PRO/tracking/BOL per shipment type, quantities against the acknowledgement) are "
            "checked when the ASN is built, so a breach becomes a named exception for the "
            "fulfilment team instead of a dead letter. Unknown properties are allowed and "
            "ignored.",
            key="purchaseOrderNumber",
            defs={"DispatchItem": "item", "DispatchCarton": "carton", "DispatchPallet": "pallet"},
        ),
        Contract(
            "ct.inventory-commands",
            InventoryCommand,
            "ct.inventory-commands.schema.json",
            "ct.inventory-commands value: one reservation or release to apply to commercetools",
            "Key = the SKU (must equal `sku`). The worker applies each command exactly once to "
            "the inventory entry of (`sku`, `supplyChannel`): `reserve` lowers its "
            "quantityOnStock by `quantity`, `release` raises it. `commandId` is the dedupe key: "
            "a command with an id already applied to that entry is not applied again (the "
            "entry's custom field `streamsAppliedCommands` records the ids). A command for an "
            "entry that does not exist, or one this schema rejects, goes to "
            "`ct.inventory-commands.dlq` with the reason. Further properties are allowed and "
            "ignored.",
            key="sku",
        ),
    )
}

# what a schema is about first, its parts and description last; the rest in pydantic's order
_FIRST = ("$ref", "type", "enum", "const", "required", "anyOf")
_LAST = ("properties", "additionalProperties", "description")


def _order(d: dict[str, Any]) -> dict[str, Any]:
    head = {k: d[k] for k in _FIRST if k in d}
    tail = {k: d[k] for k in _LAST if k in d}
    return head | {k: v for k, v in d.items() if k not in head and k not in tail} | tail


def _nullable(d: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [{type: T, ...}, {type: null}]`` -> ``{type: [T, null], ...}`` where equal.

    Only for a plain typed branch: with enum/const/$ref, null would need its own branch."""
    branches = d.get("anyOf")
    if not isinstance(branches, list) or len(branches) != 2 or branches[1] != {"type": "null"}:
        return d
    first = branches[0]
    if not isinstance(first.get("type"), str) or {"enum", "const", "$ref"} & set(first):
        return d
    out = {k: v for k, v in d.items() if k != "anyOf"}
    return {**first, **out, "type": [first["type"], "null"]}


def _clean(node: Any, renames: dict[str, str], *, names: bool = False) -> Any:
    """Drop pydantic's generated titles, rename $defs, collapse nullables, order keys.

    ``names``: ``node`` maps property (or definition) names to schemas, not keywords."""
    if isinstance(node, list):
        return [_clean(v, renames) for v in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {k: _clean(v, renames) for k, v in node.items()}
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k == "title":
            continue
        if k == "$ref" and isinstance(v, str):
            name = v.removeprefix("#/$defs/")
            out[k] = f"#/$defs/{renames.get(name, name)}"
        else:
            out[k] = _clean(v, renames, names=k in ("properties", "$defs"))
    return _order(_nullable(out))


def generate(topic: str) -> dict[str, Any]:
    """The JSON Schema of ``topic``'s value, from its model."""
    c = CONTRACTS[topic]
    raw = c.model.model_json_schema(mode="validation")
    defs = {c.defs.get(k, k): v for k, v in raw.pop("$defs", {}).items()}
    body = _clean(raw, c.defs)
    body.pop("description", None)  # the model's docstring: the contract's text replaces it
    doc: dict[str, Any] = {
        "$schema": DRAFT,
        "$id": c.id,
        "title": c.title,
        "description": c.description,
        **body,
    }
    if defs:
        doc["$defs"] = _clean(defs, c.defs, names=True)
    return doc


def _dump(node: Any, indent: str = "") -> str:
    """JSON with two-space indents; arrays of scalars and one-keyword objects on one line."""
    inner = indent + "  "
    if isinstance(node, list):
        if all(not isinstance(v, dict | list) for v in node):
            return json.dumps(node, ensure_ascii=False)
        return "[\n" + ",\n".join(inner + _dump(v, inner) for v in node) + "\n" + indent + "]"
    if isinstance(node, dict):
        if not node:
            return "{}"
        if len(node) == 1 and not isinstance(next(iter(node.values())), dict | list):
            return json.dumps(node, ensure_ascii=False)
        items = [f"{inner}{json.dumps(k)}: {_dump(v, inner)}" for k, v in node.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    return json.dumps(node, ensure_ascii=False)


def render(topic: str) -> str:
    return _dump(generate(topic)) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m streams.schemas_gen", description=__doc__)
    ap.add_argument("--check", action="store_true", help="only report files that differ")
    a = ap.parse_args(argv)
    stale = []
    for topic, c in CONTRACTS.items():
        text = render(topic)
        current = c.path.read_text() if c.path.is_file() else None
        if current == text:
            continue
        stale.append(c.path.name)
        if not a.check:
            c.path.write_text(text)
    verb = "differs from its model" if a.check else "written"
    for name in stale:
        print(f"schemas/{name}: {verb}")
    return 1 if a.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
