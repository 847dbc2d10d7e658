"""The ``products`` table's layout: ``sku:<sku>`` -> mapping JSON, the only record its
changelog carries, and the reverse index ``asin:<asin>`` / ``vpi:<vendor id>`` -> sku,
derived locally from those records wherever they are applied (ingest, Faust's changelog
reading, the bulk restore), so every replica has the index without a record per key.

Changelogs written before carried the index keys too; they are skipped on apply: every one
of them came with its ``sku:`` record, from which the same index is derived (and a skipped
stale key cannot outlive compaction, as an applied one whose tombstone was compacted away
could).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

SKU = b"sku:"
ASIN = b"asin:"
VPI = b"vpi:"
# mapping field -> index key prefix
INDEXED = (("asin", ASIN), ("vendorProductIdentifier", VPI))

Write = tuple[bytes, bytes | None]  # key, value (None: delete)
Getter = Callable[[bytes], bytes | None]


def is_index_key(key: bytes) -> bool:
    return key.startswith(ASIN) or key.startswith(VPI)


def _decode(raw: bytes | None) -> Mapping[str, Any]:
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def index_writes(
    sku: bytes, old: Mapping[str, Any], new: Mapping[str, Any], current: Getter
) -> list[Write]:
    """The index changes of ``sku``'s mapping going from ``old`` to ``new`` ({}: none):
    keys of identifiers it no longer has are deleted if they still name this SKU (another
    SKU may have claimed the identifier since), and its identifiers now name it."""
    out: list[Write] = []
    for field, prefix in INDEXED:
        was, now = old.get(field), new.get(field)
        if was and was != now:
            key = prefix + str(was).encode()
            if current(key) == sku:
                out.append((key, None))
        if now:  # (re)claimed by this SKU, as the newest mapping naming it
            out.append((prefix + str(now).encode(), sku))
    return out


def derive(records: Iterable[Write], get: Getter) -> list[Write]:
    """The writes that apply changelog ``records`` (in order, of one store partition read
    through ``get``) with their index: each ``sku:`` record and its index changes, legacy
    index records skipped, a record equal to what is stored skipped (its index is there).
    Later records see the writes of earlier ones."""
    pending: dict[bytes, bytes | None] = {}

    def now(key: bytes) -> bytes | None:
        return pending[key] if key in pending else get(key)

    out: list[Write] = []
    for key, value in records:
        if not key.startswith(SKU):
            if is_index_key(key):
                continue  # derived from the sku: records instead
            writes: list[Write] = [(key, value)]  # not ours: as Faust would apply it
        else:
            old = now(key)
            if old == value:
                continue
            sku = key[len(SKU) :]
            writes = [*index_writes(sku, _decode(old), _decode(value), now), (key, value)]
        for k, v in writes:
            pending[k] = v
        out.extend(writes)
    return out


def lookup(get: Getter, asin: str | None, vpi: str | None) -> bytes | None:
    """The stored mapping JSON of the SKU an Amazon line names, by ASIN first, then by
    vendor product id (``get``: the table's read); None when neither is mapped. Callers
    (the PO and DF flows) know nothing of the layout above."""
    for prefix, ident in ((ASIN, asin), (VPI, vpi)):
        if not ident:
            continue
        sku = get(prefix + ident.encode())
        raw = get(SKU + sku) if sku is not None else None
        if raw is not None:
            return raw
    return None
