"""The ``products`` layout (domain/product_index.py): one ``sku:`` record per mapping, the
``asin:``/``vpi:`` reverse index derived from those wherever they are applied; changelogs
of the old layout (index records too) load to the same index, alone or mixed with new."""

from __future__ import annotations

from typing import Any

import orjson

from streams.domain.product_index import Write, derive, lookup


def none(key: bytes) -> bytes | None:
    return None


def m(sku: str, asin: str | None = None, vpi: str | None = None) -> bytes:
    value: dict[str, Any] = {"sku": sku, "asin": asin}
    if vpi:
        value["vendorProductIdentifier"] = vpi
    return orjson.dumps(value)


def rec(sku: str, value: bytes | None) -> Write:
    return (b"sku:" + sku.encode(), value)


def apply(db: dict[bytes, bytes], records: list[Write], chunk: int = 1000) -> dict[bytes, bytes]:
    """``records`` applied to ``db`` in chunks, as the store paths do (one batch each)."""
    for i in range(0, len(records), chunk):
        for k, v in derive(records[i : i + chunk], db.get):
            if v is None:
                db.pop(k, None)
            else:
                db[k] = v
    return db


def old_layout(records: list[Write], db: dict[bytes, bytes]) -> list[Write]:
    """What the old ingest wrote to the changelog for ``records``: the index keys, then
    the mapping (tombstones of stale index keys included)."""
    out: list[Write] = []
    for key, value in records:
        sku = key[4:]
        old = orjson.loads(db[key]) if key in db else {}
        new = orjson.loads(value) if value else {}
        for field, prefix in (("asin", b"asin:"), ("vendorProductIdentifier", b"vpi:")):
            if old.get(field) and old.get(field) != new.get(field):
                k = prefix + old[field].encode()
                if db.get(k) == sku:
                    out.append((k, None))
                    db.pop(k, None)
            if new.get(field):
                out.append((prefix + new[field].encode(), sku))
                db[prefix + new[field].encode()] = sku
        out.append((key, value))
        if value is None:
            db.pop(key, None)
        else:
            db[key] = value
    return out


HISTORY = [
    rec("A", m("A", "B000000001", "V-1")),
    rec("B", m("B", "B000000002")),
    rec("A", m("A", "B000000009", "V-1")),  # a new ASIN: the old key goes
    rec("C", m("C", "B000000002")),  # claims B's ASIN
    rec("B", None),  # B deleted: the ASIN now names C, so it stays
    rec("D", m("D", None, "V-4")),
    rec("D", None),
    rec("E", m("E", "B000000005")),
]

WANT = {
    b"sku:A": m("A", "B000000009", "V-1"),
    b"asin:B000000009": b"A",
    b"vpi:V-1": b"A",
    b"sku:C": m("C", "B000000002"),
    b"asin:B000000002": b"C",
    b"sku:E": m("E", "B000000005"),
    b"asin:B000000005": b"E",
}


def test_the_index_follows_the_mappings() -> None:
    assert apply({}, HISTORY) == WANT
    assert apply({}, HISTORY, chunk=1) == WANT  # batch boundaries do not matter


def test_a_new_mapping_is_its_record_and_its_index_keys() -> None:
    writes = derive([rec("A", m("A", "B000000001", "V-1"))], none)
    assert sorted(writes) == sorted(
        [(b"asin:B000000001", b"A"), (b"vpi:V-1", b"A"), (b"sku:A", m("A", "B000000001", "V-1"))]
    )


def test_a_record_equal_to_the_stored_one_writes_nothing() -> None:
    db = apply({}, HISTORY)
    assert derive([rec("A", m("A", "B000000009", "V-1"))], db.get) == []


def test_an_old_layout_changelog_loads_to_the_same_index() -> None:
    legacy = old_layout(HISTORY, {})
    assert any(k.startswith(b"asin:") for k, _ in legacy)
    assert apply({}, legacy) == WANT
    # compaction keeps the last record per key, in offset order: a stale index key whose
    # tombstone survives, or whose mapping record was overwritten, still comes out right
    last: dict[bytes, tuple[int, bytes | None]] = {}
    for i, (k, v) in enumerate(legacy):
        last[k] = (i, v)
    compacted = [(k, v) for k, (i, v) in sorted(last.items(), key=lambda kv: kv[1][0])]
    assert apply({}, compacted) == WANT


def test_old_and_new_layouts_mixed_give_the_same_index() -> None:
    head, tail = HISTORY[:4], HISTORY[4:]
    mixed = old_layout(head, {}) + tail
    assert apply({}, mixed) == WANT
    # a store filled by the old layout, then new records applied to it
    db = apply({}, old_layout(head, {}))
    assert apply(db, tail) == WANT


def test_a_stale_key_of_the_old_layout_does_not_survive_in_the_store() -> None:
    """An old-layout store (index keys written by the old ingest) moved on by new records:
    the stale keys of a mapping that changes are dropped locally."""
    db: dict[bytes, bytes] = {}
    old_layout([rec("A", m("A", "B000000001"))], db)
    assert db[b"asin:B000000001"] == b"A"
    apply(db, [rec("A", m("A", "B000000002"))])
    assert b"asin:B000000001" not in db and db[b"asin:B000000002"] == b"A"


def test_other_keys_are_applied_as_they_are() -> None:
    assert derive([(b"other", b"1"), (b"gone", None)], none) == [
        (b"other", b"1"),
        (b"gone", None),
    ]


def test_lookup_by_asin_then_vendor_id() -> None:
    db = apply({}, HISTORY)
    assert lookup(db.get, "B000000009", None) == WANT[b"sku:A"]
    assert lookup(db.get, "B0UNKNOWN1", "V-1") == WANT[b"sku:A"]  # by vendor id
    assert lookup(db.get, "B000000002", "V-1") == WANT[b"sku:C"]  # the ASIN first
    assert lookup(db.get, "B000000001", None) is None  # A's old ASIN
    assert lookup(db.get, None, "V-4") is None  # D, deleted
    assert lookup(db.get, None, None) is None
