"""Moved to :mod:`streams.runtime.storeopts`; re-exported for existing imports."""

from streams.runtime.storeopts import MIB, memory_bound_mib, table_options

__all__ = ["MIB", "memory_bound_mib", "table_options"]
