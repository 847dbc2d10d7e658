"""Field readers shared by the commercetools message parsers (:mod:`.ctmessages` for
inventory entries, :mod:`.ctorders` for orders): typed reads that raise :class:`BadRecord`
naming the field."""

from __future__ import annotations

from typing import Any

NO_CHANNEL = ""  # the channel-less InventoryEntry of a SKU


class BadRecord(ValueError):
    """A record that can never be processed; it goes to the DLQ with this reason."""


def get(d: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in d or d[key] is None:
        raise BadRecord(f"{where}.{key} is missing")
    v = d[key]
    # bool is an int in Python; a JSON true is never a valid quantity or version
    # JSON Schema's integer (the ct.messages contract): 40.0 is the integer 40 (while exact)
    if isinstance(v, float) and int in _tuple(typ) and v.is_integer() and abs(v) <= 2**53:
        v = int(v)
    if not isinstance(v, typ) or (isinstance(v, bool) and bool not in _tuple(typ)):
        raise BadRecord(f"{where}.{key} must be {_tname(typ)}, got {type(v).__name__}")
    return v


def opt(d: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    return None if d.get(key) is None else get(d, key, typ, where)


def _tuple(t: type | tuple[type, ...]) -> tuple[type, ...]:
    return t if isinstance(t, tuple) else (t,)


def _tname(t: type | tuple[type, ...]) -> str:
    names = {"str": "a string", "int": "an integer", "dict": "an object", "list": "an array"}
    return " or ".join(names.get(x.__name__, x.__name__) for x in _tuple(t))


def channel(d: dict[str, Any], where: str) -> str:
    ref = d.get("supplyChannel")
    if ref is None:
        return NO_CHANNEL
    if not isinstance(ref, dict):
        raise BadRecord(f"{where}.supplyChannel must be an object")
    cid = ref.get("id") or ref.get("key")
    if not isinstance(cid, str) or not cid:
        raise BadRecord(f"{where}.supplyChannel has no id")
    return cid


def quantity(d: dict[str, Any], key: str, where: str) -> int:
    v: int = get(d, key, int, where)
    if abs(v) > 10**12:
        raise BadRecord(f"{where}.{key}={v} is out of range")
    return v
