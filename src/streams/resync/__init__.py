"""``streams resync commercetools``: compare commercetools' inventory with the worker's state.

The worker's per-SKU state lives in its table ``skus``, whose changelog topic
``<app_id>-skus-changelog`` holds every write (key = SKU, value = ``SkuState.to_dict()`` as
JSON). The changelog is read first (latest value per key), then every inventory entry is
paged from commercetools, so a state version can only legitimately be at or behind what
commercetools shows. Entries that differ are listed; with ``apply`` each is published to
``ct.messages`` as a commercetools ``ResourceUpdated`` change notification (``ResourceDeleted``
for entries gone from commercetools), so the normal ingest path reads the entry and repairs
the state with commercetools' own version ordering: no second write path into the state.

:class:`Reconciler` does the same check for a bounded slice of entries per call, for a
timer inside the worker (see its docstring for wiring).
"""

from streams.resync.changelog import changelog_topic, read_states
from streams.resync.compare import (
    Difference,
    ResyncReport,
    compare_entry,
    resource_deleted,
    resource_updated,
)
from streams.resync.full import resync, run_resync
from streams.resync.reconciler import Publish, Reconciler, SliceReport, worker_views

__all__ = [
    "Difference",
    "Publish",
    "Reconciler",
    "ResyncReport",
    "SliceReport",
    "changelog_topic",
    "compare_entry",
    "read_states",
    "resource_deleted",
    "resource_updated",
    "resync",
    "run_resync",
    "worker_views",
]
