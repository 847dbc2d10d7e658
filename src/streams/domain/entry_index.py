"""Inventory entry id -> SKU, for deletes that name only the entry, derived from SKU states.

commercetools' ``ResourceDeleted`` notification carries ``resourceUserProvidedIdentifiers``
only when the resource has user-provided identifiers, and a ``PayloadNotIncluded``
``InventoryEntryDeleted`` message carries no SKU at all; the entry is gone, so it cannot be
read back either. An entry belongs to one SKU, and that SKU's state names it (``ch``), so
each ``skus`` store partition keeps the index of its own states' entries next to them:
``ENTRY + <entry id>`` -> SKU, written with the state in one WriteBatch and derived from
the state records wherever the changelog is applied (recovery, standbys, the bulk
restore). The changelog carries states only: no record per entry.

Such a delete goes to every SKU partition; the one whose index holds the entry applies it,
the others have nothing to remove.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

# 0xFF never occurs in UTF-8, so no SKU key starts with it, and every index key sorts after
# every state: a walk over a partition's states stops at the first one
ENTRY = b"\xffentry:"

Write = tuple[bytes, bytes | None]  # key, value (None: delete)
Getter = Callable[[bytes], bytes | None]


def entry_key(entry_id: str) -> bytes:
    return ENTRY + entry_id.encode()


def held_entries(state: dict[str, Any] | None) -> set[str]:
    """The entry ids a stored state (``SkuState.to_dict()``) holds on its channels."""
    if not state:
        return set()
    channels = state.get("ch")
    if not isinstance(channels, dict):
        return set()
    return {e["e"] for e in channels.values() if isinstance(e, dict) and e.get("e")}


def index_writes(sku: bytes, was: set[bytes], now: set[bytes]) -> list[Write]:
    """The index changes of ``sku``'s state going from holding entries ``was`` to ``now``
    (entry ids as UTF-8)."""
    if not was:  # a new state (every record of a restore into an empty store): no set work
        return [(ENTRY + e, sku) for e in sorted(now)]
    out: list[Write] = [(ENTRY + e, None) for e in sorted(was - now)]
    out.extend((ENTRY + e, sku) for e in sorted(now - was))
    return out


# a stored state's channels, as SkuState.to_dict writes them: "ch" right before "del", each
# entry's id under "e" (no other key of an entry, and no channel id, is followed by a string
# there). Read without decoding the state: the bulk restore derives a million of them
_CH, _DEL, _E = b'"ch":{', b'},"del":', b'"e":"'


def held_in_record(raw: bytes | None) -> set[bytes]:
    """The entry ids (UTF-8) the stored state ``raw`` holds; a layout other than the one
    above, or an id with an escape in it, is decoded as JSON instead."""
    if not raw:
        return set()
    start = raw.find(_CH)
    end = raw.find(_DEL, start) if start >= 0 else -1
    if end < 0 or raw.find(b"\\", start, end) >= 0:
        return _held_decoded(raw)
    out = set()
    i = raw.find(_E, start, end)
    while i >= 0:
        j = raw.find(b'"', i + len(_E), end)
        if j < 0:
            return _held_decoded(raw)
        out.add(raw[i + len(_E) : j])
        i = raw.find(_E, j, end)
    return out


def _held_decoded(raw: bytes) -> set[bytes]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return set()
    return {e.encode() for e in held_entries(value)} if isinstance(value, dict) else set()


def derive(records: Iterable[Write], get: Getter) -> list[Write]:
    """The writes that apply ``skus`` changelog ``records`` (in order, of one store
    partition read through ``get``) with the entry index: each record, and the index keys
    of the entries its state gained or lost. Index keys in a changelog (none are written
    there) are skipped. Later records see the writes of earlier ones."""
    pending: dict[bytes, bytes | None] = {}  # states written by earlier records
    out: list[Write] = []
    for key, value in records:
        if key.startswith(ENTRY):
            continue
        old = pending[key] if key in pending else get(key)
        pending[key] = value
        out.append((key, value))
        if old == value:
            continue
        out.extend(index_writes(key, held_in_record(old), held_in_record(value)))
    return out
