"""``PartitionStore``: a table's local partitions, read and written by partition number.

Flows that read-modify-write state in batches know the partition they work on; they need no
current event, no per-key routing and no Faust types. A dict-backed ``MemoryPartitionStore``
stands in for it in unit tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

# keys a partitioned table derives locally (never in its changelog) start with 0xFF, which
# no UTF-8 key holds: they sort after every record, so a walk over records stops there
LOCAL_PREFIX = b"\xff"


class PartitionStore(Protocol):
    def get(self, partition: int, key: bytes) -> bytes | None:
        """The stored value of ``key`` in ``partition``, or None."""
        ...

    def items(self, partition: int, from_key: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Records of ``partition`` in key order from ``from_key`` (inclusive); never the
        store's own bookkeeping keys, nor keys derived locally from the records."""
        ...

    async def put_many(
        self,
        partition: int,
        items: Sequence[tuple[bytes, bytes | None]],
        *,
        local: Sequence[tuple[bytes, bytes | None]] = (),
    ) -> list[Any]:
        """Write (None: delete) ``items`` in ``partition`` atomically, and make them durable
        (the changelog); returns what to await for durability. ``local``: keys derived from
        ``items`` (an index), written in the same batch and never made durable: wherever the
        changelog is applied they are derived again."""
        ...

    def put_local(self, partition: int, items: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Write ``items`` in ``partition`` atomically but not durably: a restore from the
        changelog does not see them until ``log_current`` (or a ``put_many``) logs them."""
        ...

    async def log_current(self, partition: int, keys: Sequence[bytes]) -> list[Any]:
        """Make the current values of ``keys`` durable (the changelog)."""
        ...


class MemoryPartitionStore:
    """A ``PartitionStore`` in dicts (for tests): writes are durable at once."""

    def __init__(self) -> None:
        self.partitions: dict[int, dict[bytes, bytes]] = {}

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.partitions.get(partition, {}).get(key)

    def items(self, partition: int, from_key: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        db = self.partitions.get(partition, {})
        for key in sorted(db):
            if key[:1] == LOCAL_PREFIX:  # keys derived locally sort last
                return
            if from_key is None or key >= from_key:
                yield key, db[key]

    async def put_many(
        self,
        partition: int,
        items: Sequence[tuple[bytes, bytes | None]],
        *,
        local: Sequence[tuple[bytes, bytes | None]] = (),
    ) -> list[Any]:
        self.put_local(partition, [*items, *local])
        return []

    def put_local(self, partition: int, items: Sequence[tuple[bytes, bytes | None]]) -> None:
        db = self.partitions.setdefault(partition, {})
        for key, value in items:
            if value is None:
                db.pop(key, None)
            else:
                db[key] = value

    async def log_current(self, partition: int, keys: Sequence[bytes]) -> list[Any]:
        return []
