"""The entry index of ``skus`` (domain/entry_index.py): derived from the states wherever they
are written or their changelog is applied, never logged, skipped by walks over the states;
and the SKU agent placing a delete that names only its entry by it (``SkuApply._by_sku``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.agents.inventory_apply import SkuApply
from streams.domain import entry_index
from streams.domain.ctmessages import StockObservation
from streams.domain.entry_index import ENTRY, derive, entry_key, held_entries, held_in_record
from streams.domain.inventory import SkuState
from streams.runtime.ports import LOCAL_PREFIX, MemoryPartitionStore
from streams.runtime.store import (
    DERIVED_LAYOUT,
    LAYOUT_KEY,
    OFFSET_KEY,
    TableStore,
    derived_table,
    read_partition,
)
from tests.unit.test_derived_table import events, rocksdb_table
from tests.unit.test_partition_store import FakeApp


def state(sku: str, *entries: str) -> bytes:
    channels = {f"ch-{e}": {"e": e, "v": 1, "a": 1, "q": 1} for e in entries}
    return orjson.dumps({"dirty": 1, "sku": sku, "ch": channels, "del": {}})


def test_held_entries_are_the_entry_ids_on_the_channels() -> None:
    assert held_entries(orjson.loads(state("A", "e1", "e2"))) == {"e1", "e2"}
    assert held_entries({"sku": "A"}) == set() and held_entries(None) == set()


def test_derive_adds_the_entries_a_state_gains_and_drops_those_it_loses() -> None:
    stored: dict[bytes, bytes] = {}
    first = derive([(b"A", state("A", "e1", "e2"))], stored.get)
    assert first == [(b"A", state("A", "e1", "e2")), (ENTRY + b"e1", b"A"), (ENTRY + b"e2", b"A")]
    stored.update({k: v for k, v in first if v is not None})
    # e1 deleted, e3 new: later records of the batch see the earlier ones
    later = derive([(b"A", state("A", "e2")), (b"A", state("A", "e2", "e3"))], stored.get)
    assert later == [
        (b"A", state("A", "e2")),
        (ENTRY + b"e1", None),
        (b"A", state("A", "e2", "e3")),
        (ENTRY + b"e3", b"A"),
    ]
    # a tombstone drops every entry; a record equal to the stored one changes no index key
    assert derive([(b"A", None)], {b"A": state("A", "e2")}.get) == [
        (b"A", None),
        (ENTRY + b"e2", None),
    ]
    assert derive([(b"A", state("A", "e2"))], {b"A": state("A", "e2")}.get) == [
        (b"A", state("A", "e2"))
    ]


def test_entry_ids_are_read_from_the_stored_bytes_as_json_would_give_them() -> None:
    st = SkuState("SKU-1")
    for n, (ch, entry) in enumerate([("wh-1", "e-1"), ("e", "e-2"), ("wh-3", "e-3")]):
        st.apply(StockObservation("SKU-1", ch, entry, 1, "set", 5, 5, f"m{n}", n, "2026-12-08"))
    st.apply(StockObservation("SKU-1", "wh-3", "e-3", 2, "delete", msg_id="m9", seq=9))
    raw = orjson.dumps(st.to_dict())
    assert held_in_record(raw) == {b"e-1", b"e-2"}  # a channel named "e" is no entry id
    assert held_in_record(raw) == {e.encode() for e in held_entries(orjson.loads(raw))}
    # an id with an escape, or another key order (an older layout): decoded instead
    odd = {"sku": "S", "del": {}, "ch": {"c": {"e": 'quo"te', "v": 1}}}
    assert held_in_record(orjson.dumps(odd)) == {b'quo"te'}
    assert held_in_record(orjson.dumps({**odd, "ch": {}})) == set()
    assert held_in_record(b"") == set() and held_in_record(b"not json") == set()


def test_index_keys_never_collide_with_a_sku_and_are_skipped_in_a_changelog() -> None:
    assert all(not ("SKU-\u00ff-é" + c).encode().startswith(ENTRY) for c in ("", "x"))
    assert derive([(ENTRY + b"e9", b"Z")], {}.get) == []
    assert ENTRY.startswith(LOCAL_PREFIX)  # what the stores skip and sort last


@pytest.fixture
def skus(tmp_path: Path) -> Iterator[Any]:
    yield from rocksdb_table(tmp_path, derived_table, "skus", entry_index.derive)


def test_faust_changelog_apply_derives_the_entry_index(skus: Any) -> None:
    skus.apply_changelog_batch(
        events(skus, 0, 0, [(b"A", state("A", "e1")), (b"B", state("B", "e2", "e3"))])
    )
    db = read_partition(skus, 0)
    assert db.get(ENTRY + b"e1") == b"A" and db.get(ENTRY + b"e3") == b"B"
    assert db.get(OFFSET_KEY) == b"1"
    # a partition first written by this apply: the bulk restore need not re-derive it
    assert db.get(LAYOUT_KEY) == DERIVED_LAYOUT
    skus.apply_changelog_batch(events(skus, 0, 2, [(b"B", state("B", "e3"))]))
    assert db.get(ENTRY + b"e2") is None and db.get(ENTRY + b"e3") == b"B"


async def test_put_many_writes_the_index_locally_and_logs_the_states_only(skus: Any) -> None:
    app = FakeApp()
    ts = TableStore(app, skus)  # type: ignore[arg-type]
    await ts.put_many(1, [(b"A", state("A", "e1"))], local=[(entry_key("e1"), b"A")])
    await asyncio.sleep(0)
    topic = skus.changelog_topic.get_topic_name()
    assert app.producer.sent == [(topic, b"A", state("A", "e1"), 1)]
    assert ts.get(1, entry_key("e1")) == b"A"
    assert read_partition(skus, 1).get(LAYOUT_KEY) == DERIVED_LAYOUT  # new partition
    # walks over the states see the states only
    await ts.put_many(1, [(b"\xc3\xa9", state("é"))])
    assert [k for k, _ in ts.items(1)] == [b"A", b"\xc3\xa9"]
    assert [k for k, _ in ts.items(1, from_key=b"B")] == [b"\xc3\xa9"]


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def inc(self, k: int = 1) -> None:
        self.n += k


def placer(store: MemoryPartitionStore) -> SkuApply:
    apply = SkuApply.__new__(SkuApply)  # only what _by_sku reads
    apply.store = store
    apply._entry_deletes = {"placed": Counter(), "elsewhere": Counter()}
    return apply


def delete(entry: str) -> tuple[bytes, dict[str, Any]]:
    return b"", {"t": "obs", "sku": "", "e": entry, "k": "delete", "v": 9, "src": "entry"}


def test_a_delete_naming_only_its_entry_joins_the_sku_holding_it() -> None:
    store = MemoryPartitionStore()
    store.put_local(0, [(b"A", state("A", "e1")), (entry_key("e1"), b"A")])
    apply = placer(store)
    change = (b"B", {"t": "obs", "sku": "B", "e": "e2", "k": "set", "v": 1})
    by_sku = apply._by_sku(0, [delete("e1"), change, delete("e2"), delete("e-other")])
    # e1 by the stored index; e2 by the batch's own earlier item (not stored yet); e-other
    # is held by no state here (another partition's, or none): dropped
    assert list(by_sku) == [b"A", b"B"]
    assert by_sku[b"A"] == [{**delete("e1")[1], "sku": "A"}]
    assert by_sku[b"B"] == [change[1], {**delete("e2")[1], "sku": "B"}]
    assert apply._entry_deletes["placed"].n == 2 and apply._entry_deletes["elsewhere"].n == 1
