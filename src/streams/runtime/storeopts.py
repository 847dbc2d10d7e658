"""RocksDB options of the worker's tables, from the settings.

Faust opens one RocksDB database per table partition (``skus`` with 6 partitions is 6
databases, a global table too) and its defaults size each one for a large dedicated host:
3 memtables of 64 MiB and a 2 GiB block cache *per database*. A worker holding a few tables
of 6 partitions could therefore grow to tens of GB, and in practice grows with the data it
reads: a scan of 1M SKU states fills the block caches with the whole state. These options
bound each database instead; what one database may hold in memory is about

    write_buffer_size * max_write_buffer_number + block_cache_size

Usage, per table (a fresh dict each time: Faust pops ``driver`` from the dict it is given)::

    app.Table("skus", ..., options=table_options(settings))
"""

from __future__ import annotations

from typing import Any

from streams.config import Settings

MIB = 1024 * 1024


def table_options(settings: Settings) -> dict[str, Any]:
    """The ``options`` of a Faust table: rocksdict, with bounded memtables and block cache."""
    s = settings
    return {
        "driver": "rocksdict",
        "write_buffer_size": s.rocksdb_write_buffer_mb * MIB,
        "max_write_buffer_number": s.rocksdb_max_write_buffers,
        "block_cache_size": s.rocksdb_block_cache_mb * MIB,
    }


def memory_bound_mib(settings: Settings, databases: int) -> int:
    """What ``databases`` RocksDB databases may hold in memtables and block caches (MiB)."""
    s = settings
    per_db = s.rocksdb_write_buffer_mb * s.rocksdb_max_write_buffers + s.rocksdb_block_cache_mb
    return per_db * databases
