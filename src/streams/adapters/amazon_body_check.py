"""Amazon's model check of a DF ``SubmitInventoryUpdateRequest``, fast enough for every
request the inventory sender makes (see :class:`BodyCheck`)."""

from __future__ import annotations

from typing import Any

from streams.adapters.amazon_models import model as amazon_model
from streams.adapters.amazon_models import validate as amazon_validate

API = "vendorDirectFulfillmentInventory"
# schema keywords whose outcome depends only on an instance's keys and JSON types
_SHAPE_KEYWORDS = frozenset({"type", "properties", "required", "description", "$ref", "items"})


def _shape_only(defs: dict[str, Any], name: str, seen: set[str] | None = None) -> bool:
    """Whether definition ``name`` (and all it refers to) constrains keys and types only."""
    seen = set() if seen is None else seen
    if name in seen:
        return True
    seen.add(name)

    def walk(schema: Any) -> bool:
        if not isinstance(schema, dict) or set(schema) - _SHAPE_KEYWORDS:
            return False
        if "$ref" in schema and not _shape_only(defs, schema["$ref"].rsplit("/", 1)[-1], seen):
            return False
        if "items" in schema and not walk(schema["items"]):
            return False
        return all(walk(p) for p in (schema.get("properties") or {}).values())

    return name in defs and walk(defs[name])


def _shape(value: Any) -> Any:
    """An instance's keys and JSON types, recursively (bool apart from int)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _shape(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", *(_shape(v) for v in value))
    return type(value).__name__


class BodyCheck:
    """Amazon's model check of a ``SubmitInventoryUpdateRequest``, every item included.

    Validating 1,000 items with jsonschema takes about 0.1 s, which at Amazon's 10 requests/s
    would be a whole core. The model's ``ItemDetails`` constrains keys and JSON types only
    (no enum, pattern, bounds or formats), so an item's validity is decided by its shape: the
    envelope is validated as is, each distinct item shape once. Should the vendored model
    ever constrain values, every item is validated in full again (checked at start).
    """

    def __init__(self) -> None:
        defs = amazon_model(API)["definitions"]
        items = (defs.get("InventoryUpdate") or {}).get("properties", {}).get("items", {})
        self.by_shape = items.get("items") == {"$ref": "#/definitions/ItemDetails"} and (
            _shape_only(defs, "ItemDetails")
        )
        self._seen: dict[Any, list[str]] = {}

    def __call__(self, body: dict[str, Any]) -> list[str]:
        inventory = body.get("inventory")
        if not isinstance(inventory, dict):
            return amazon_validate(API, "SubmitInventoryUpdateRequest", body)
        items = inventory.get("items")
        if not self.by_shape or not isinstance(items, list):
            return amazon_validate(API, "SubmitInventoryUpdateRequest", body)
        envelope = {**body, "inventory": {**inventory, "items": []}}
        problems = amazon_validate(API, "SubmitInventoryUpdateRequest", envelope)
        for j, item in enumerate(items):
            key = _shape(item)
            found = self._seen.get(key)
            if found is None:
                found = self._seen[key] = amazon_validate(API, "ItemDetails", item)
            where = f"inventory/items/{j}"
            problems += [
                where + p.removeprefix("(root)") if p.startswith("(root)") else f"{where}/{p}"
                for p in found
            ]
        return problems
